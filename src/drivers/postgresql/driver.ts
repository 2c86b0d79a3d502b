/**
 * PostgreSQL driver (primary and physical streaming standbys), over ONE pg.Client session that is
 * read-only, has a statement_timeout equal to the collection timeout, and names itself
 * 'datastore-exporter' (drivers/postgresql/connection.ts). One collection = one SELECT (one round
 * trip: drivers/postgresql/status.ts).
 *
 * Mapping (docs/postgresql.md):
 *  - version: server_version as the server reports it ('15.18 (Debian 15.18-0+deb12u1)').
 *  - cluster id: pg_control_system().system_identifier, shared by a primary and all its physical
 *    standbys (a logical replica is another cluster). One shard, the whole dataset, named after it.
 *  - node id: PostgreSQL has no stable per-node id (the system identifier is the cluster's), so the
 *    core's rules apply (--node-id, else host:port).
 *  - Role: pg_is_in_recovery() -> secondary (cascading standbys too), else primary.
 *  - Lag (standby only): drivers/postgresql/parse.ts StandbyLag -- the transit time of the primary's
 *    last message while streaming with everything received replayed, else seconds since the standby
 *    was last known current. Never a fake 0.
 *  - Last operation: standby: pg_last_xact_replay_timestamp(). Primary: pg_last_committed_xact() when
 *    track_commit_timestamp is on; else when a write transaction was first seen to end (the xid
 *    counter: WriteTransactionWatch) or writes_total to advance, whichever is later. Not the WAL
 *    position: checkpoints, standby snapshots, autovacuum and even reads (page pruning, hint-bit
 *    full-page images) write WAL without any client writing data.
 *  - Commit offset: WAL position in bytes ('lsn'): pg_current_wal_lsn() on a primary,
 *    pg_last_wal_replay_lsn() on a standby.
 *  - Clients: client backends in pg_stat_activity minus the exporter's own (WAL senders and other
 *    background processes are not client backends).
 *  - Reads: client read statements counted by pg_stat_statements where it is usable (>= 1.9, loaded,
 *    created in the database the exporter connects to), else transactions that wrote nothing (no
 *    transaction id); both without the exporter's own. Writes: sum of tup_inserted + tup_updated +
 *    tup_deleted (rows, over all databases). A standby counts only what its own clients do, so its
 *    writes_total stays flat: replayed WAL is not executed as row operations there.
 *
 * Heartbeat traffic (drivers/postgresql/heartbeat.ts) is kept out of the numbers by every exporter,
 * with --heartbeat or not (the table is fixed): the heartbeat table's rows out of writes_total (its
 * n_tup_* in the same statement, readable by anyone), and, where the role may read the row (read in
 * the status statement once the table is known to be readable), heartbeats out of last-op (primary:
 * the heartbeat's xid; standby: the row says when it was written and what the primary's last client
 * write was). Heartbeat mode adds the writes, on the primary, in a read-write transaction of their own.
 */
import { Socket } from 'node:net';
import { Client } from 'pg';
import type {
  DriverOptions,
  HeartbeatDriver,
  HeartbeatRecord,
  HeartbeatStore,
  MemberList,
  Observation,
} from '../../core/model';
import { AdvanceTracker } from '../shared/advance-tracker';
import { ReadBudget } from '../shared/read-budget';
import { ContinuingCounter } from '../shared/continuing-counter';
import { CounterWithoutHeartbeats } from '../shared/heartbeat-exclusion';
import { clientConfig } from './connection';
import {
  ADD_SEQ_COLUMN,
  HEARTBEAT_TABLE,
  heartbeatWriteSql,
  standbyLastOperation,
  type HeartbeatRow,
} from './heartbeat';
import { MEMBERS_QUERY, postgresMembers, type MembersRow } from './members';
import { StandbyLag, WriteTransactionWatch, parseLsn, parseSnapshot } from './parse';
import {
  SERVER_FEATURES_SQL,
  statementsProbeSql,
  statusQuery,
  type HeartbeatColumns,
  type ServerFeatures,
  type StatusRow,
} from './status';

/** A numeric sent as text, as a number; undefined for NULL or anything unparseable. */
function numeric(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** A pg error's SQLSTATE. */
function sqlState(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

/** undefined_table, invalid_schema_name: the heartbeat table (or its schema) is not there. */
function isMissingTable(err: unknown): boolean {
  return sqlState(err) === '42P01' || sqlState(err) === '3F000';
}

/** ... or this role may not use it (insufficient_privilege). */
function isMissingOrDenied(err: unknown): boolean {
  return isMissingTable(err) || sqlState(err) === '42501';
}

function latest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** pg_stat_statements >= 1.9 (PostgreSQL 14) has the `toplevel` column the read count relies on. */
function statementsVersionUsable(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major! > 1 || (major === 1 && minor! >= 9);
}

/**
 * What one collection may read (drivers/shared/read-budget.ts): the status query's one row is under
 * 1 KiB, the start-up messages (parameter statuses, auth) a few KiB.
 */
const READ_BUDGET_BYTES = 2 * 1024 * 1024;

export class PostgresDriver implements HeartbeatDriver {
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'postgresql');
  private client?: Client;
  /** Survive reconnects: what was seen before a dropped connection is still true. */
  private readonly standbyLag = new StandbyLag();
  private readonly writes = new AdvanceTracker();
  /** writes_total without the heartbeat table's own rows (drivers/shared/heartbeat-exclusion.ts). */
  private readonly clientWrites = new CounterWithoutHeartbeats();
  private systemIdentifier?: string;

  // reads_total: one published counter, whichever source feeds it (a change of source is a new
  // baseline, never a jump).
  private readonly reads = new ContinuingCounter();
  private readSource?: 'statements' | 'transactions';
  /** Transactions ended, minus those that wrote (xids) and the exporter's own. */
  private readonly readTransactions = new CounterWithoutHeartbeats();
  /** The exporter's own transactions that wrote nothing: its statements other than heartbeats. */
  private ownTransactions = 0;
  /** Write transactions (xids assigned) seen on a primary, counted from the xid counter's moves. */
  private writeTransactions = 0;
  private lastNextXid?: bigint;
  /** Where pg_stat_statements can be read, checked on each connection. */
  private statementsSchema?: string;
  /** PostgreSQL >= 15: the status statement asks the session to publish its statistics at once. */
  private forceStatsFlush = false;
  /** PostgreSQL >= 14: sessions started are counted (their log-in transactions are no reads). */
  private sessions = false;

  // Last operation on a primary without commit timestamps.
  private readonly writeWatch = new WriteTransactionWatch();
  private writeSeenAt?: number;
  /** Heartbeats this exporter wrote (each is one transaction with an xid). */
  private ownHeartbeats = 0;

  // Heartbeat traffic (docs/postgresql.md "Heartbeat mode"): the status statement probes for the
  // heartbeat table until it is readable, then reads its row in the same statement.
  private heartbeatReadable = false;
  /** Set when the role may not create the missing table: writes wait for an operator to create it. */
  private heartbeatCreateDenied?: string;
  /** Primary: the last operation reported, written into each heartbeat for the standbys (last_write). */
  private primaryLastOperation?: number;
  /** Primary with commit timestamps: the latest commit seen that was not a heartbeat. */
  private lastClientCommit?: number;
  /** Standby with a heartbeat row: the latest last-op reported (its two sources trail each other). */
  private standbyLastOpSeen?: number;

  constructor(private readonly opts: DriverOptions) {
    // Build once up front so a bad sslmode / sslrootcert fails at start-up, not on every reconnect.
    clientConfig(opts.target, opts.timeoutMs);
  }

  readonly heartbeat: HeartbeatStore = {
    write: (shardId, record) => this.writeHeartbeat(shardId, record),
  };

  connect(): Promise<void> {
    return this.budget.run(() => this.open());
  }

  private async open(): Promise<void> {
    const client = new Client({
      ...clientConfig(this.opts.target, this.opts.timeoutMs),
      // pg connects the socket it is given; the budget counts what arrives on it...
      stream: () => {
        const socket = new Socket();
        this.budget.watch(socket);
        return socket;
      },
    });
    // ...and, after an SSLRequest, on the TLS socket pg reads from instead (the raw socket's data
    // then goes to TLS directly). Emitted right after pg attached its own listeners.
    client.connection.on('sslconnect', () => this.budget.watch(client.connection.stream as Socket));
    // Without a listener an 'error' event (server gone while idle) would crash the process; the
    // failure surfaces on the next query instead.
    client.on('error', (err: Error) =>
      this.opts.logger.debug('postgresql connection error', { err: err.message }),
    );
    this.client = client;
    // Tried again on each connection: a GRANT given since the last failure takes effect on reconnect.
    this.heartbeatCreateDenied = undefined;
    await client.connect();
    this.ownTransactions++;
    const features = (await client.query<ServerFeatures>(SERVER_FEATURES_SQL)).rows[0];
    this.forceStatsFlush = (features?.version_num ?? 0) >= 150000;
    this.sessions = (features?.version_num ?? 0) >= 140000;
    this.statementsSchema = features ? await this.findStatements(client, features) : undefined;
  }

  /** The schema of a usable pg_stat_statements in this database, or undefined (reads fall back). */
  private async findStatements(client: Client, features: ServerFeatures): Promise<string | undefined> {
    const schema = features.statements_schema;
    if (schema === null || !statementsVersionUsable(features.statements_version ?? '')) return undefined;
    this.ownTransactions++;
    try {
      // Not loaded via shared_preload_libraries, or not readable: an error, and the fallback.
      await client.query(statementsProbeSql(schema));
      return schema;
    } catch (err) {
      this.opts.logger.debug('pg_stat_statements is installed but cannot be read: reads count transactions', {
        err: (err as Error).message,
      });
      return undefined;
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // end() marks the disconnect as ours (no 'unexpected termination' error) and sends Terminate if
    // the session is idle; destroying the socket right away means a stopped or hung server cannot
    // keep anything queued or waiting on us. Queries in flight are rejected at once.
    client.end().catch(() => undefined);
    client.connection.stream.destroy();
    this.budget.destroyAll();
  }

  /**
   * One heartbeat write (the core calls it on the primary only; a standby would refuse anyway).
   * Creates the schema and table on the first write when they are missing and the role may.
   */
  private async writeHeartbeat(shardId: string | undefined, record: HeartbeatRecord): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('postgresql connection is not open');
    // Known to be missing and not ours to create: do not bother the server (and its log) each time.
    if (this.heartbeatCreateDenied && !this.heartbeatReadable) throw new Error(this.heartbeatCreateDenied);
    try {
      await this.heartbeatQuery(client, heartbeatWriteSql(shardId, record, this.primaryLastOperation));
      return;
    } catch (err) {
      if (sqlState(err) === '42703') {
        // undefined_column: a table made before it had seq.
        throw new Error(
          `heartbeat table ${HEARTBEAT_TABLE} has no seq column: run once on the primary: ${ADD_SEQ_COLUMN} (docs/postgresql.md)`,
        );
      }
      if (!isMissingTable(err)) throw err;
    }
    try {
      await this.heartbeatQuery(client, heartbeatWriteSql(shardId, record, this.primaryLastOperation, true));
      this.heartbeatCreateDenied = undefined;
      this.opts.logger.info('created the heartbeat table', { table: HEARTBEAT_TABLE });
    } catch (err) {
      if (sqlState(err) !== '42501') throw err;
      this.heartbeatCreateDenied =
        `heartbeat table ${HEARTBEAT_TABLE} does not exist and this role may not create it ` +
        `(${(err as Error).message}): create it once as shown in docs/postgresql.md, "Heartbeat mode"`;
      throw new Error(this.heartbeatCreateDenied);
    }
  }

  /** A heartbeat write: a transaction with an xid when it commits, a read-only one when it fails. */
  private async heartbeatQuery(client: Client, sql: string): Promise<void> {
    try {
      await client.query(sql);
      this.ownHeartbeats++;
    } catch (err) {
      this.ownTransactions++;
      throw err;
    }
  }

  /** The status statement, reading the heartbeat row once it is known to be readable. */
  private async status(client: Client): Promise<{ row: StatusRow; columns: HeartbeatColumns }> {
    let columns: HeartbeatColumns = this.heartbeatReadable ? 'read' : 'probe';
    const { statementsSchema, forceStatsFlush, sessions } = this;
    let row: StatusRow | undefined;
    try {
      this.ownTransactions++;
      row = (
        await client.query<StatusRow>(
          statusQuery({ heartbeat: columns, statementsSchema, forceStatsFlush, sessions }),
        )
      ).rows[0];
    } catch (err) {
      // The table was dropped, or SELECT on it revoked, since the last probe: probe again.
      if (columns !== 'read' || !isMissingOrDenied(err)) throw err;
      columns = 'probe';
      this.ownTransactions++;
      row = (
        await client.query<StatusRow>(
          statusQuery({ heartbeat: columns, statementsSchema, forceStatsFlush, sessions }),
        )
      ).rows[0];
    }
    if (!row) throw new Error('postgresql status query returned no row');
    const access = row.heartbeat_access;
    const readable = access === 'readable';
    if ((access === 'denied' || access === 'outdated') && this.heartbeatReadable !== readable) {
      // Another exporter's heartbeats then count in last-op (not in writes_total).
      (this.opts.heartbeat ? this.opts.logger.warn : this.opts.logger.info).call(
        this.opts.logger,
        access === 'denied'
          ? `heartbeat table ${HEARTBEAT_TABLE} exists but this role may not read it: grant USAGE on the schema and SELECT on the table (docs/postgresql.md)`
          : `heartbeat table ${HEARTBEAT_TABLE} has no seq column: run once on the primary: ${ADD_SEQ_COLUMN} (docs/postgresql.md)`,
      );
    }
    this.heartbeatReadable = readable;
    return { row, columns };
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const client = this.client;
    if (!client) throw new Error('postgresql connection is not open');
    const { row, columns } = await this.status(client);

    const otherCluster = row.system_identifier !== this.systemIdentifier;
    if (otherCluster) {
      // Another cluster behind the same address (rebuilt, restored): what we saw is not about it.
      this.systemIdentifier = row.system_identifier;
      this.standbyLag.reset();
      this.writeWatch.reset();
      this.writeSeenAt = undefined;
      this.lastNextXid = undefined;
      this.lastClientCommit = undefined;
      this.standbyLastOpSeen = undefined;
    }
    const heartbeat = columns === 'read' ? heartbeatRowOf(row) : undefined;

    const now = row.server_now;
    const rawWrites = numeric(row.writes);
    // The heartbeat table's own rows are no client writes (exact: same statement).
    const writesTotal =
      rawWrites === undefined
        ? undefined
        : this.clientWrites.observe(rawWrites, numeric(row.heartbeat_writes));
    const writesAdvancedAt = writesTotal === undefined ? undefined : this.writes.observe(writesTotal, now);
    const snapshot = row.in_recovery ? undefined : parseSnapshot(row.snapshot);
    const readsTotal = this.readsTotal(row, snapshot?.nextXid, otherCluster);
    const lsn = parseLsn(row.lsn);

    let lagSeconds: number | undefined;
    let lastOperation: number | undefined;
    if (row.in_recovery) {
      lagSeconds = this.standbyLag.observe({
        nowSeconds: now,
        receiveLsn: parseLsn(row.receive_lsn),
        replayLsn: parseLsn(row.replay_lsn),
        lastReplayedCommitSeconds: row.last_replayed_commit ?? undefined,
        streaming: row.wal_receiver_status === 'streaming',
        lastMsgSendSeconds: row.wal_last_msg_send ?? undefined,
        lastMsgReceiptSeconds: row.wal_last_msg_receipt ?? undefined,
        walReceiverTimeoutSeconds:
          row.wal_receiver_timeout_ms === null ? undefined : row.wal_receiver_timeout_ms / 1000,
      });
      if (heartbeat) {
        // The last replayed commit is usually a heartbeat now: see standbyLastOperation().
        this.standbyLastOpSeen = latest(
          this.standbyLastOpSeen,
          standbyLastOperation(row.last_replayed_commit ?? undefined, heartbeat),
        );
        lastOperation = this.standbyLastOpSeen;
      } else {
        lastOperation = row.last_replayed_commit ?? undefined;
      }
      this.primaryLastOperation = undefined;
      this.writeWatch.reset();
      this.writeSeenAt = undefined;
    } else {
      this.standbyLag.reset();
      this.standbyLastOpSeen = undefined;
      const commit = lastCommitOf(row);
      if (commit === undefined) {
        // Without commit timestamps: the xid counter sees a write within one collection, even when
        // its session is still busy; writes_total (published by sessions when idle) backs it up.
        const writeEnded =
          snapshot !== undefined &&
          this.writeWatch.observe({
            ...snapshot,
            heartbeats: columns === 'read' ? (heartbeat?.seq ?? 0) : undefined,
            ownHeartbeats: this.ownHeartbeats,
          });
        if (writeEnded) this.writeSeenAt = now;
        lastOperation = latest(this.writeSeenAt, writesAdvancedAt);
      } else if (heartbeat && commit.xid === heartbeat.xid) {
        // The latest commit is a heartbeat (its xid wrote the row): the latest client commit seen,
        // or, if one committed and was overtaken by a heartbeat between two collections, the time
        // the write counter (heartbeat rows excluded) was seen to advance.
        lastOperation = latest(this.lastClientCommit, writesAdvancedAt);
      } else {
        this.lastClientCommit = commit.seconds;
        lastOperation = commit.seconds;
      }
      this.primaryLastOperation = lastOperation;
    }

    return {
      datastore: 'postgresql',
      version: row.version,
      nativeClusterId: row.system_identifier,
      shards: [
        {
          role: row.in_recovery ? 'secondary' : 'primary',
          nativeRole: row.in_recovery ? 'standby' : 'primary',
          lagSeconds,
          lastOperationTimestampSeconds: lastOperation,
          commitOffset: lsn === undefined ? undefined : { value: lsn, unit: 'lsn' },
          heartbeat: heartbeat?.record,
        },
      ],
      performance: {
        clientsConnected: row.clients,
        readsTotal,
        writesTotal,
      },
    };
  }

  /** The replication tree as this node knows it (drivers/postgresql/members.ts). */
  async members(): Promise<MemberList> {
    const client = this.client;
    if (!client) throw new Error('postgresql connection is not open');
    const row = (await this.budget.run(() => client.query<MembersRow>(MEMBERS_QUERY))).rows[0];
    if (!row) throw new Error('postgresql members query returned no row');
    return postgresMembers(row, { host: this.opts.target.host, port: this.opts.target.port });
  }

  /**
   * reads_total: pg_stat_statements' client read statements where usable; else transactions that
   * wrote nothing (transactions ended, minus those that took an xid, minus the log-in transaction of
   * each session, minus the exporter's own).
   * Transactions are published by each session when it goes idle (within about 1 s, at most 10 s
   * later; the exporter's own session at once, see StatusOptions.forceStatsFlush), the xid counter
   * at once: CounterWithoutHeartbeats carries the difference, so a count may be late by that much
   * but never invents a read.
   */
  private readsTotal(row: StatusRow, nextXid: bigint | undefined, otherCluster: boolean): number | undefined {
    if (nextXid !== undefined && this.lastNextXid !== undefined && nextXid >= this.lastNextXid) {
      this.writeTransactions += Number(nextXid - this.lastNextXid);
    }
    this.lastNextXid = nextXid;
    const transactions = numeric(row.transactions);
    // With the flush asked for, the statement that read the counter is the one own transaction not
    // yet in it; without, all of them are subtracted at once and the carry waits for them.
    const ownPublished = this.ownTransactions - (this.forceStatsFlush ? 1 : 0);
    // Each session starts with a log-in transaction (the exporter's own session included).
    const sessions = numeric(row.sessions) ?? 0;
    const readTransactions =
      transactions === undefined
        ? undefined
        : this.readTransactions.observe(transactions, ownPublished + this.writeTransactions + sessions);
    const statements = this.statementsSchema !== undefined ? numeric(row.statement_reads) : undefined;
    const source = statements !== undefined ? 'statements' : 'transactions';
    const raw = statements ?? readTransactions;
    if (raw === undefined) return undefined;
    const switched = this.readSource !== undefined && this.readSource !== source;
    this.readSource = source;
    return this.reads.observe(raw, switched || otherCluster);
  }
}

/** The heartbeat row from a 'read' status row; undefined when none was written yet. */
function heartbeatRowOf(row: StatusRow): HeartbeatRow | undefined {
  const ts = row.heartbeat_ts;
  const serverTime = row.heartbeat_server_time;
  if (ts === null || ts === undefined || serverTime === null || serverTime === undefined) return undefined;
  return {
    record: { timestampSeconds: ts, writerNodeId: row.heartbeat_writer ?? '' },
    serverTimeSeconds: serverTime,
    lastWriteSeconds: row.heartbeat_last_write ?? undefined,
    xid: row.heartbeat_xid ?? '',
    seq: numeric(row.heartbeat_seq),
  };
}

/** pg_last_committed_xact() on a primary with commit timestamps: time and xid. */
function lastCommitOf(row: StatusRow): { seconds: number; xid?: string } | undefined {
  if (!row.last_commit_xact) return undefined;
  const seconds = numeric(row.last_commit_xact[0]);
  return seconds === undefined ? undefined : { seconds, xid: row.last_commit_xact[1] ?? undefined };
}

export function createDriver(opts: DriverOptions): PostgresDriver {
  return new PostgresDriver(opts);
}
