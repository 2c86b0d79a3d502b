/**
 * MySQL / MariaDB driver (`mysql://`, `mariadb://`), over ONE mysql2 connection (promise API).
 *
 * Mapping (docs/mysql.md has the full table and the measurements behind it):
 *  - Flavour and version: @@version / @@version_comment ('MariaDB' in either -> MariaDB). The version
 *    label is VERSION() as the server reports it.
 *  - node id: @@server_uuid (MySQL); MariaDB has none: `<@@server_id>@<@@hostname>:<@@port>`.
 *    cluster id: replication has no shared identity, so none (--cluster-id, else 'default').
 *  - One shard, the whole dataset. Role: from the replication channels (rows of SHOW REPLICA STATUS /
 *    SHOW ALL SLAVES STATUS) and read_only / super_read_only (parse.ts nodeRole): replicating ->
 *    secondary; channels all stopped -> secondary if read-only, else unknown; no channel -> primary,
 *    or unknown if read-only. A multi-source replica is still ONE shard (its channels feed one
 *    dataset; a channel name is local to the replica and names no shard its sources know), with the
 *    worst channel's lag.
 *  - Lag: Seconds_Behind_Source/Master, absent when the SQL thread is stopped (NULL: unknown); while
 *    the IO thread is not connected, or connected but silent for longer than the source's heartbeat
 *    period allows, the time since the link was last seen healthy (the server says NULL or 0, or a
 *    relay-log-only value that hides the outage). See channelLagSeconds.
 *  - Last operation: MySQL 8 replica: the original commit time of the last applied transaction
 *    (performance_schema); otherwise the time the GTID position was first seen to advance, or where
 *    there are no GTIDs, the time writes_total was.
 *  - Commit offset: MariaDB: sum of seq_no over @@gtid_current_pos ('gtid_seq_no'); MySQL with
 *    gtid_mode=ON: transactions in @@gtid_executed ('transactions').
 *  - Clients: Threads_connected minus this connection and, on MariaDB, minus the replicas' binlog
 *    dump connections (Slaves_connected). Reads: Com_select + Qcache_hits. Writes: the DML Com_*
 *    counters (WRITE_COUNTERS).
 *
 * The exporter's own statements are SHOW statements, which count in Com_show_*, not in Com_select;
 * the one SELECT (performance_schema, MySQL replicas only) is subtracted from reads.
 *
 * Heartbeat mode (drivers/mysql/heartbeat.ts): the primary upserts one row of datastore_exporter.heartbeat
 * in one autocommit statement, the session set read-write around it. Every exporter, with --heartbeat
 * or not (the table is fixed, so another exporter's heartbeats are kept out too), reads the row after
 * the SHOW statements through a HANDLER (one more round trip; HANDLER reads are not in Com_select)
 * where it may read the table.
 * The row's seq counts every heartbeat ever written, so each node keeps heartbeat transactions out
 * of the GTID position that last-op follows and heartbeat statements out of writes_total
 * (drivers/shared/heartbeat-exclusion.ts).
 */
import { connect as connectSocket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2';
import { AdvanceTracker } from '../shared/advance-tracker';
import { ReadBudget } from '../shared/read-budget';
import type {
  DriverOptions,
  HeartbeatDriver,
  HeartbeatRecord,
  HeartbeatStore,
  MemberList,
  Observation,
} from '../../core/model';
import { CounterWithoutHeartbeats } from '../shared/heartbeat-exclusion';
import {
  CREATE_HEARTBEAT_STATEMENTS,
  HEARTBEAT_HANDLER_OPEN_SQL,
  HEARTBEAT_HANDLER_READ_SQL,
  HEARTBEAT_TABLE,
  heartbeatUpsertSql,
  parseHeartbeatRow,
  type HeartbeatRow,
} from './heartbeat';
import { mysqlMembers, replicaHostsStatement, type ReplicaHosts } from './members';
import {
  APPLIER_QUERY,
  GLOBAL_VARIABLES,
  STATUS_VARIABLES,
  ReceiveWatch,
  channelLagSeconds,
  commitOffset,
  isReadOnlySetting,
  lastAppliedOriginalCommitSeconds,
  linkSilent,
  nativeNodeId,
  nativeRoleWords,
  nodeRole,
  normalizeReplicaStatusRow,
  operationCounters,
  parseServerVersion,
  replicaStatusStatement,
  serverTimeoutSetting,
  toNumber,
  worstLagSeconds,
  type ServerInfo,
} from './parse';

type PromiseConnection = ReturnType<Connection['promise']>;

/** The program_name connection attribute (performance_schema.session_connect_attrs): tells the exporter apart. */
const PROGRAM_NAME = 'datastore-exporter';

function inList(names: readonly string[]): string {
  return names.map((n) => `'${n}'`).join(', ');
}

/** A mysql2 error's code. */
function errorCode(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

/** The heartbeat table or its database is not there. */
function isMissingTable(err: unknown): boolean {
  return /^(ER_NO_SUCH_TABLE|ER_BAD_DB_ERROR)$/.test(errorCode(err) ?? '');
}

/** The heartbeat handler was closed implicitly (DDL on the table, FLUSH TABLES): open it again. */
function isHandlerGone(err: unknown): boolean {
  return /^(ER_UNKNOWN_TABLE|ER_NO_SUCH_TABLE|ER_BAD_DB_ERROR)$/.test(errorCode(err) ?? '');
}

/**
 * How long a collection waits before sampling the counters and the row again when a heartbeat may be
 * between being counted and being committed (heartbeatInFlight): long enough for a commit on a busy
 * server, short beside any collection timeout and beside the time between a collection and the
 * nearest heartbeat write (a quarter second at the default interval: core/heartbeat.ts).
 */
const HEARTBEAT_COMMIT_WAIT_MS = 100;

/**
 * A heartbeat writer counts as active while the row's seq moved this recently: a heartbeat table
 * left behind by a stopped writer must not cost every collection with a client write that wait.
 */
const HEARTBEAT_WRITER_ACTIVE_MS = 60_000;

/** Without --heartbeat, a missing or unreadable heartbeat table is asked for again this often. */
const HEARTBEAT_RETRY_MS = 60_000;

/** This user may not use it. */
function isDenied(err: unknown): boolean {
  return /^(ER_TABLEACCESS_DENIED_ERROR|ER_DBACCESS_DENIED_ERROR|ER_COLUMNACCESS_DENIED_ERROR|ER_SPECIFIC_ACCESS_DENIED_ERROR)$/.test(
    errorCode(err) ?? '',
  );
}

/**
 * What one collection may read (drivers/shared/read-budget.ts): SHOW statements filtered to the
 * variables the mapping reads (a few KiB), one SHOW REPLICA STATUS row per channel (~2 KiB each).
 */
const READ_BUDGET_BYTES = 2 * 1024 * 1024;

const VARIABLES_QUERY = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${inList(GLOBAL_VARIABLES)})`;
const STATUS_QUERY = `SHOW GLOBAL STATUS WHERE Variable_name IN (${inList(STATUS_VARIABLES)})`;

export class MysqlDriver implements HeartbeatDriver {
  private core?: Connection;
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'mysql');
  private conn?: PromiseConnection;
  private server?: ServerInfo;
  /** SELECTs this driver sent on the current connection: they count in Com_select and are not reads. */
  private ownSelects = 0;
  /** Whether performance_schema's applier table can be read (MySQL 8; privilege granted, P_S on). */
  private applierTableReadable = true;
  private readonly position = new AdvanceTracker();
  private readonly writes = new AdvanceTracker();
  /** Per channel: when the exporter last saw its IO thread connected (survives reconnects). */
  private ioLastConnectedAt = new Map<string, number>();
  /** Per channel: when the exporter last saw its IO thread receive something (an event, a heartbeat). */
  private readonly received = new ReceiveWatch();
  /** The connection's session settings (read-only, UTC, timeout) are in place. */
  private sessionReady = false;

  // Heartbeat traffic (docs/mysql.md "Heartbeat mode"), read in both modes.
  /** The heartbeat HANDLER is open on this connection. */
  private heartbeatHandlerOpen = false;
  /** While the handler cannot be opened (no table, no SELECT): when to try again (ms). */
  private heartbeatRetryAt = 0;
  /** The latest attempt found no heartbeat table. */
  private heartbeatTableMissing = false;
  private heartbeatDeniedWarned = false;
  /** Set when the user may not create the missing table: writes wait for an operator to create it. */
  private heartbeatCreateDenied?: string;
  /** writes_total and the GTID position without heartbeat writes (drivers/shared/heartbeat-exclusion.ts). */
  private readonly clientWrites = new CounterWithoutHeartbeats();
  private readonly clientPosition = new CounterWithoutHeartbeats();
  /** The heartbeat row's seq at the last reading, and when it was last seen to move. */
  private heartbeatSeq?: number;
  private heartbeatSeqMovedAt = 0;

  constructor(private readonly opts: DriverOptions) {}

  readonly heartbeat: HeartbeatStore = {
    write: (shardId, record) => this.writeHeartbeat(shardId, record),
  };

  connect(): Promise<void> {
    return this.budget.run(() => this.open());
  }

  private async open(): Promise<void> {
    const { target, timeoutMs } = this.opts;
    const core = createConnection({
      host: target.host,
      port: target.port,
      user: target.username,
      password: target.password,
      database: decodeURIComponent(target.url.pathname.slice(1)) || undefined,
      connectTimeout: timeoutMs,
      // Performance_schema timestamps come as text, read as UTC (the session time zone is set below).
      dateStrings: true,
      connectAttributes: { program_name: PROGRAM_NAME },
      // The socket mysql2 would open itself, made here so that the budget counts what it receives.
      stream: () => {
        const socket = connectSocket(target.port, target.host);
        socket.setNoDelay(true);
        this.budget.watch(socket);
        return socket;
      },
    });
    // Held before the handshake ends, so that close() can abandon a connect in progress.
    this.core = core;
    // Without a listener, an error with no query waiting for it would crash the process.
    core.on('error', (err: Error) => this.opts.logger.debug('mysql connection error', { err: err.message }));
    await new Promise<void>((resolve, reject) => {
      core.once('connect', () => resolve());
      core.once('error', reject);
    });
    // close() during the handshake abandoned this connection: do not resurrect it.
    if (this.core !== core) throw new Error('mysql connection closed while connecting');
    this.conn = core.promise();
    this.ownSelects = 0;
    this.sessionReady = false;
    // Tried again on each connection: a GRANT given since the last failure takes effect on reconnect.
    this.heartbeatDeniedWarned = false;
    this.heartbeatCreateDenied = undefined;
    this.heartbeatHandlerOpen = false;
    this.heartbeatRetryAt = 0;
    // Tried again on each connection: a GRANT given since the last warning takes effect on reconnect.
    this.applierTableReadable = true;

    const vars = await this.variables();
    const server = parseServerVersion(vars.get('version') ?? '', vars.get('version_comment'));
    this.server = server;
    // The exporter never writes: a read-only session makes sure of it.
    await this.query('SET SESSION TRANSACTION READ ONLY');
    // A statement the client gave up on must not keep running on the server either.
    const serverTimeout = serverTimeoutSetting(server, timeoutMs);
    await this.query(`SET SESSION time_zone = '+00:00'${serverTimeout ? `, ${serverTimeout}` : ''}`);
    this.sessionReady = true;
  }

  async close(): Promise<void> {
    const core = this.core;
    this.core = undefined;
    this.conn = undefined;
    this.sessionReady = false;
    // destroy(), not end(): end() would wait for queries in flight on a hung server.
    core?.destroy();
    this.budget.destroyAll();
  }

  /** One statement with the client-side timeout (mysql2 `timeout`), as result rows. */
  private async query(sql: string): Promise<RowDataPacket[]> {
    if (!this.conn) throw new Error('mysql connection is not open');
    if (/^\s*SELECT\b/i.test(sql)) this.ownSelects++;
    const timeout = this.opts.timeoutMs;
    try {
      const [rows] = await this.conn.query<RowDataPacket[]>({ sql, timeout });
      return Array.isArray(rows) ? rows : [];
    } catch (err) {
      // mysql2 says only 'Query inactivity timeout': name the statement and the deadline.
      if ((err as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
        throw new Error(`query timed out after ${timeout} ms: ${sql.slice(0, 40)}...`);
      }
      throw err;
    }
  }

  private async nameValues(sql: string): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    for (const row of await this.query(sql)) {
      values.set(String(row['Variable_name']), String(row['Value'] ?? ''));
    }
    return values;
  }

  private variables(): Promise<Map<string, string>> {
    return this.nameValues(VARIABLES_QUERY);
  }

  /** MySQL 8: original commit time of the last applied transaction, where the table can be read. */
  private async lastApplied(): Promise<number | undefined> {
    if (!this.applierTableReadable) return undefined;
    try {
      return lastAppliedOriginalCommitSeconds(await this.query(APPLIER_QUERY));
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Only "not there" / "not allowed" turn the source off; anything else is a real failure.
      if (
        !/^(ER_TABLEACCESS_DENIED_ERROR|ER_NO_SUCH_TABLE|ER_BAD_FIELD_ERROR|ER_DBACCESS_DENIED_ERROR)$/.test(
          code ?? '',
        )
      )
        throw err;
      this.applierTableReadable = false;
      this.opts.logger.warn(
        'cannot read performance_schema.replication_applier_status_by_worker: last operation falls back to when the GTID position advanced (grant SELECT on performance_schema.*)',
        { err: (err as Error).message },
      );
      return undefined;
    }
  }

  /**
   * One heartbeat write (the core calls it on the primary only; a replica with read_only would refuse
   * it anyway). Creates the database and table on the first write when missing and the user may.
   */
  private async writeHeartbeat(shardId: string | undefined, record: HeartbeatRecord): Promise<void> {
    // Before the session is UTC, FROM_UNIXTIME would store local time.
    if (!this.sessionReady) throw new Error('mysql connection is not open');
    // Known to be missing and not ours to create: do not bother the server each time.
    if (this.heartbeatCreateDenied && this.heartbeatTableMissing) throw new Error(this.heartbeatCreateDenied);
    try {
      await this.upsertHeartbeat(shardId, record);
      return;
    } catch (err) {
      if (!isMissingTable(err)) throw err;
    }
    await this.createHeartbeatTable();
    await this.upsertHeartbeat(shardId, record);
  }

  private async upsertHeartbeat(shardId: string | undefined, record: HeartbeatRecord): Promise<void> {
    // One autocommit statement, not START TRANSACTION + upsert + COMMIT: Com_* counts the upsert when
    // it runs and the row shows it once committed, and every other exporter on this node or its
    // replicas must see both together (heartbeatInFlight). With the COMMIT a round trip later, that
    // gap was as long as this process took to send it (docs/mysql.md: up to 19 ms, loaded machine).
    await this.writable(() => this.query(heartbeatUpsertSql(shardId, record)));
  }

  /**
   * Runs `write` with the session read-write, and makes it read-only again afterwards. The session
   * must never stay writable: if that fails, the connection is dropped (the collector reconnects).
   * Other statements of this connection (a collection's SHOW statements) may run in between: they
   * only read.
   */
  private async writable<T>(write: () => Promise<T>): Promise<T> {
    await this.query('SET SESSION TRANSACTION READ WRITE');
    try {
      return await write();
    } finally {
      await this.query('SET SESSION TRANSACTION READ ONLY').catch(async (err: unknown) => {
        this.opts.logger.warn('could not make the session read-only again: closing it', {
          err: (err as Error).message,
        });
        await this.close();
      });
    }
  }

  /** DDL is refused in a read-only session, even inside START TRANSACTION READ WRITE (error 1792). */
  private async createHeartbeatTable(): Promise<void> {
    try {
      await this.writable(async () => {
        for (const sql of CREATE_HEARTBEAT_STATEMENTS) await this.query(sql);
      });
      this.heartbeatCreateDenied = undefined;
      this.opts.logger.info('created the heartbeat table', { table: HEARTBEAT_TABLE });
    } catch (err) {
      if (!isDenied(err)) throw err;
      this.heartbeatCreateDenied =
        `heartbeat table ${HEARTBEAT_TABLE} does not exist and this user may not create it ` +
        `(${(err as Error).message}): create it once as shown in docs/mysql.md, "Heartbeat mode"`;
      throw new Error(this.heartbeatCreateDenied);
    }
  }

  /**
   * The replicated heartbeat row; undefined when there is none, no table, or no SELECT on it. Without
   * --heartbeat a missing or unreadable table is normal: asked for again every HEARTBEAT_RETRY_MS,
   * not in every collection.
   */
  private async readHeartbeat(): Promise<HeartbeatRow | undefined> {
    if (!this.heartbeatHandlerOpen) {
      if (Date.now() < this.heartbeatRetryAt) return undefined;
      try {
        await this.query(HEARTBEAT_HANDLER_OPEN_SQL);
        this.heartbeatHandlerOpen = true;
      } catch (err) {
        this.heartbeatCantOpen(err);
        return undefined;
      }
    }
    try {
      const row = parseHeartbeatRow(await this.query(HEARTBEAT_HANDLER_READ_SQL));
      this.heartbeatTableMissing = false;
      return row;
    } catch (err) {
      if (!isHandlerGone(err)) throw err;
      this.heartbeatHandlerOpen = false;
      return undefined;
    }
  }

  private heartbeatCantOpen(err: unknown): void {
    const missing = isMissingTable(err);
    if (!missing && !isDenied(err)) throw err;
    this.heartbeatTableMissing = missing;
    this.heartbeatRetryAt = this.opts.heartbeat ? 0 : Date.now() + HEARTBEAT_RETRY_MS;
    if (missing || this.heartbeatDeniedWarned) return;
    this.heartbeatDeniedWarned = true;
    // Expected for the least-privilege user of default mode; in heartbeat mode, a set-up problem.
    (this.opts.heartbeat ? this.opts.logger.warn : this.opts.logger.debug).call(
      this.opts.logger,
      `cannot read the heartbeat table ${HEARTBEAT_TABLE}: grant SELECT on it (docs/mysql.md); heartbeat writes, if any, count as writes`,
      { err: (err as Error).message },
    );
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  /** The global variables and status, and how many of our own SELECTs that status counts. */
  private async counters(): Promise<{
    vars: Map<string, string>;
    status: Map<string, string>;
    ownSelectsCounted: number;
  }> {
    const vars = await this.variables();
    const status = await this.nameValues(STATUS_QUERY);
    // This round's SELECT, if any, comes after.
    return { vars, status, ownSelectsCounted: this.ownSelects };
  }

  private async collect(): Promise<Observation> {
    const server = this.server;
    if (!server) throw new Error('mysql connection is not open');
    let counters = await this.counters();
    const channels = (await this.query(replicaStatusStatement(server))).map(normalizeReplicaStatusRow);
    const isReplica = channels.length > 0;
    // Every heartbeat is one transaction (one GTID) wherever it is applied, and one write statement
    // where it is executed: on the primary, and on a MariaDB replica, whose applier counts replicated
    // statements and row events in Com_* (a MySQL replica's row-based applier does not).
    const writesCountHeartbeats = !isReplica || server.flavour === 'mariadb';
    // After the counters and the position: a heartbeat committing in between is then seen in the
    // row's seq first, which drivers/shared/heartbeat-exclusion.ts carries over instead of counting it
    // twice. One counted but not committed yet (heartbeatInFlight) makes the whole sample be taken
    // again a moment later: the counters and the row together, since a row read alone later would
    // also hold the heartbeats written meanwhile and hide a client write as often as a writer in
    // phase with this collection writes during that moment (every time, seen in a test before the
    // writes were moved between the whole seconds; still possible with an interval that does not
    // divide a second).
    let heartbeat = await this.readHeartbeat();
    if (
      heartbeat &&
      this.heartbeatInFlight(
        heartbeat.seq,
        writesCountHeartbeats ? operationCounters(counters.status).writes : undefined,
        commitOffset(server, counters.vars, isReplica),
      )
    ) {
      await sleep(HEARTBEAT_COMMIT_WAIT_MS);
      counters = await this.counters();
      heartbeat = await this.readHeartbeat();
    }
    const { vars, status, ownSelectsCounted } = counters;
    const offset = commitOffset(server, vars, isReplica);
    const { reads, writes: rawWrites } = operationCounters(status);
    if (heartbeat && heartbeat.seq !== this.heartbeatSeq) {
      if (this.heartbeatSeq !== undefined) this.heartbeatSeqMovedAt = Date.now();
      this.heartbeatSeq = heartbeat.seq;
    }
    const now = Date.now() / 1000;

    // In heartbeat mode the last applied transaction is mostly a heartbeat: the GTID rule below
    // (heartbeats excluded) stands in for it.
    const applied =
      server.flavour === 'mysql' && isReplica && !heartbeat ? await this.lastApplied() : undefined;

    const heartbeatsInWrites = writesCountHeartbeats ? heartbeat?.seq : undefined;
    const writes =
      rawWrites === undefined ? undefined : this.clientWrites.observe(rawWrites, heartbeatsInWrites);
    const clientPosition = offset ? this.clientPosition.observe(offset.value, heartbeat?.seq) : undefined;
    const positionAdvancedAt =
      clientPosition === undefined ? undefined : this.position.observe(clientPosition, now);
    const writesAdvancedAt = writes === undefined ? undefined : this.writes.observe(writes, now);

    const receivedAt = this.received.observe(channels, now);
    const seen = new Map<string, number>();
    const lags = channels.map((ch) => {
      const silent = linkSilent(ch, receivedAt.get(ch.name), now);
      const last = ch.ioRunning === 'Yes' && !silent ? now : this.ioLastConnectedAt.get(ch.name);
      if (last !== undefined) seen.set(ch.name, last);
      // A silent link was last healthy when it last received something, if that is earlier.
      const lastHealthy = silent ? Math.min(last ?? now, receivedAt.get(ch.name) ?? now) : last;
      return channelLagSeconds(ch, lastHealthy, now, silent);
    });
    // Channels that were removed (RESET SLAVE ALL) are forgotten: memory stays bounded.
    this.ioLastConnectedAt = seen;

    const words = nativeRoleWords(server);
    const readOnly =
      isReadOnlySetting(vars.get('read_only')) || isReadOnlySetting(vars.get('super_read_only'));
    const { role, reason } = nodeRole(channels, readOnly);
    const nativeRole =
      reason === 'group_replication'
        ? 'group_replication'
        : role === 'secondary'
          ? words.secondary
          : role === 'primary'
            ? words.primary
            : reason === 'stopped_writable'
              ? `${words.secondary} (stopped, writable)`
              : `${words.primary} (read_only)`;
    const connected = toNumber(status.get('Threads_connected'));
    // MariaDB: each replica's binlog dump connection is in Threads_connected; it is no client.
    const replicaLinks = toNumber(status.get('Slaves_connected')) ?? 0;
    return {
      datastore: 'mysql',
      version: vars.get('version') ?? server.version,
      nativeNodeId: nativeNodeId(vars),
      shards: [
        {
          role,
          nativeRole,
          lagSeconds: role === 'secondary' ? worstLagSeconds(lags) : undefined,
          lastOperationTimestampSeconds: applied ?? (offset ? positionAdvancedAt : writesAdvancedAt),
          commitOffset: offset,
          heartbeat: heartbeat?.record,
        },
      ],
      performance: {
        clientsConnected: connected === undefined ? undefined : Math.max(0, connected - 1 - replicaLinks),
        readsTotal: reads === undefined ? undefined : Math.max(0, reads - ownSelectsCounted),
        writesTotal: writes,
      },
    };
  }

  /**
   * Whether the counters just read may hold a heartbeat that the row does not show yet. Com_* counts
   * a statement when it runs and the binlog position moves before the engine commit, while the row's
   * seq changes at commit: a heartbeat caught in between would be reported as one client write, and
   * a counter cannot take it back. Asked only while a writer is active and the counters moved more
   * than the heartbeats explain, so an idle node or one without heartbeats pays nothing.
   */
  private heartbeatInFlight(
    seq: number,
    rawWrites: number | undefined,
    offset: { value: number } | undefined,
  ): boolean {
    if (Date.now() - this.heartbeatSeqMovedAt > HEARTBEAT_WRITER_ACTIVE_MS) return false;
    return (
      (rawWrites !== undefined && this.clientWrites.unexplained(rawWrites, seq) > 0) ||
      (offset !== undefined && this.clientPosition.unexplained(offset.value, seq) > 0)
    );
  }

  /** The replication topology as this node knows it (drivers/mysql/members.ts). */
  members(): Promise<MemberList> {
    return this.budget.run(() => this.listMembers());
  }

  private async listMembers(): Promise<MemberList> {
    const server = this.server;
    if (!server) throw new Error('mysql connection is not open');
    const channels = (await this.query(replicaStatusStatement(server))).map(normalizeReplicaStatusRow);
    let hosts: ReplicaHosts;
    try {
      hosts = { kind: 'rows', rows: await this.query(replicaHostsStatement(server)) };
    } catch (err) {
      if (!isDenied(err)) throw err;
      // MariaDB counts its connected replicas for anyone: they are at least counted as left out.
      const connected = (await this.nameValues("SHOW GLOBAL STATUS LIKE 'Slaves_connected'")).get(
        'Slaves_connected',
      );
      hosts = { kind: 'denied', connected: toNumber(connected) };
    }
    return mysqlMembers(server, channels, hosts, {
      host: this.opts.target.host,
      port: this.opts.target.port,
    });
  }
}

export function createDriver(opts: DriverOptions): MysqlDriver {
  return new MysqlDriver(opts);
}
