/**
 * PostgreSQL driver (primary and physical streaming standbys), over ONE pg.Client session that is
 * read-only, has a statement_timeout equal to the collection timeout, and names itself
 * 'datastore-exporter' (drivers/postgresql/connection.ts). One collection = one SELECT (one round trip).
 *
 * Mapping (docs/postgresql.md):
 *  - version: server_version as the server reports it ('15.18 (Debian 15.18-0+deb12u1)').
 *  - cluster id: pg_control_system().system_identifier, shared by a primary and all its physical
 *    standbys (a logical replica is another cluster). One shard, the whole dataset, named after it.
 *  - node id: PostgreSQL has no stable per-node id (the system identifier is the cluster's), so the
 *    core's rules apply (--node-id, else host:port).
 *  - Role: pg_is_in_recovery() -> secondary (cascading standbys too), else primary.
 *  - Lag (standby only): drivers/postgresql/parse.ts StandbyLag -- 0 while streaming with everything
 *    received replayed, else seconds since the standby was last known current. Never a fake 0.
 *  - Last operation: standby: pg_last_xact_replay_timestamp(). Primary: pg_last_committed_xact() when
 *    track_commit_timestamp is on, else the time writes_total was first seen to advance. Not the WAL
 *    position: checkpoints, standby snapshots, autovacuum and even reads (page pruning, hint-bit
 *    full-page images) write WAL without any client writing data.
 *  - Commit offset: WAL position in bytes ('lsn'): pg_current_wal_lsn() on a primary,
 *    pg_last_wal_replay_lsn() on a standby.
 *  - Clients: client backends in pg_stat_activity minus the exporter's own.
 *  - Reads: sum of pg_stat_database.tup_returned; writes: sum of tup_inserted + tup_updated +
 *    tup_deleted (rows, over all databases). A standby counts only what its own clients do, so its
 *    writes_total stays flat: replayed WAL is not executed as row operations there.
 *
 * Heartbeat mode (drivers/postgresql/heartbeat.ts): the primary upserts one row of
 * datastore_exporter.heartbeat in a read-write transaction of its own; every node reads the row in
 * its status query (no extra round trip once the table is known to be readable), and the core turns
 * it into lag. The heartbeat's own writes are kept out of writes_total (the table's n_tup_* in the
 * same statement) and out of last-op (primary: the heartbeat's xid; standby: the heartbeat row says
 * when it was written and what the primary's last client write was).
 */
import { Client, escapeLiteral } from 'pg';
import { AdvanceTracker } from '../shared/advance-tracker';
import type {
  Driver,
  DriverOptions,
  HeartbeatRecord,
  HeartbeatStore,
  MemberList,
  Observation,
} from '../../core/model';
import { CounterWithoutHeartbeats } from '../shared/heartbeat-exclusion';
import { clientConfig } from './connection';
import {
  HEARTBEAT_SCHEMA,
  HEARTBEAT_TABLE,
  WHOLE_DATASET_KEY,
  heartbeatWriteSql,
  standbyLastOperation,
  type HeartbeatRow,
} from './heartbeat';
import { MEMBERS_QUERY, postgresMembers, type MembersRow } from './members';
import { StandbyLag, parseLsn } from './parse';

/** The row of the status query; pg returns bool/int4/float8 as JS values, text (and NULL) as is. */
interface StatusRow {
  version: string;
  system_identifier: string;
  in_recovery: boolean;
  lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  last_replayed_commit: number | null;
  wal_receiver_status: string | null;
  /** Absent in the 'read' variant (last_commit_xact instead). */
  last_commit?: number | null;
  server_now: number;
  clients: number;
  reads: string | null;
  writes: string | null;
}

/** The extra columns of the status query in heartbeat mode (HeartbeatColumns 'probe' and 'read'). */
interface HeartbeatStatusRow extends StatusRow {
  /** The heartbeat table exists and this role may read it; NULL when it does not exist. */
  heartbeat_readable: boolean | null;
  // 'read' only (NULL when no row was written yet):
  heartbeat_ts?: number | null;
  heartbeat_writer?: string | null;
  heartbeat_server_time?: number | null;
  heartbeat_last_write?: number | null;
  heartbeat_xid?: string | null;
  /** Rows the heartbeat table was written (n_tup_ins + n_tup_upd + n_tup_del), to subtract from writes. */
  heartbeat_writes?: string | null;
  /**
   * 'read' only, instead of last_commit: [time, xid] of pg_last_committed_xact() from ONE call (two
   * calls could straddle a commit and pair one transaction's time with another's xid).
   */
  last_commit_xact?: (string | null)[] | null;
}

/**
 * What the status query adds for heartbeat mode: 'off' (not in heartbeat mode: STATUS_QUERY),
 * 'probe' (does the heartbeat table exist, may we read it? -- no error either way) or 'read' (the
 * table is known to be readable: the replicated row in the same statement, no extra round trip).
 */
export type HeartbeatColumns = 'off' | 'probe' | 'read';

const LAST_COMMIT_CONDITION = `NOT pg_is_in_recovery() AND current_setting('track_commit_timestamp')::bool`;

/**
 * Everything in one statement, so one collection is one round trip and every value comes from the
 * same moment. Times are Unix seconds on the SERVER's clock (clock_timestamp()), so lag does not
 * depend on the exporter's clock. Counters are summed as numeric and sent as text: bigint sums can
 * exceed what pg would parse safely. Uncorrelated subqueries run as InitPlans only when their CASE
 * branch is taken, so pg_current_wal_lsn() (an error during recovery) and pg_last_committed_xact()
 * (an error while track_commit_timestamp is off) are never called where they would fail.
 * Privileges: all of it is readable by a role with pg_monitor (docs/postgresql.md); heartbeat mode
 * adds SELECT on the heartbeat table, which 'probe' checks before 'read' relies on it.
 */
export function statusQuery(heartbeat: HeartbeatColumns): string {
  // In 'read', the xid of the last commit tells whether it was our heartbeat.
  const lastCommit =
    heartbeat === 'read'
      ? `CASE WHEN ${LAST_COMMIT_CONDITION}
    THEN (SELECT ARRAY[extract(epoch FROM "timestamp")::float8::text, xid::text] FROM pg_last_committed_xact())
  END AS last_commit_xact`
      : `CASE WHEN ${LAST_COMMIT_CONDITION}
    THEN extract(epoch FROM (SELECT "timestamp" FROM pg_last_committed_xact()))::float8
  END AS last_commit`;
  let heartbeatColumns = '';
  let heartbeatJoins = '';
  if (heartbeat === 'probe') {
    // By name in the catalogs, not to_regclass(): that raises an error on a schema without USAGE.
    heartbeatColumns = `,
  (SELECT has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = '${HEARTBEAT_SCHEMA}' AND c.relname = 'heartbeat') AS heartbeat_readable`;
  } else if (heartbeat === 'read') {
    heartbeatColumns = `,
  true AS heartbeat_readable,
  extract(epoch FROM hb.ts)::float8 AS heartbeat_ts,
  hb.writer AS heartbeat_writer,
  extract(epoch FROM hb.server_time)::float8 AS heartbeat_server_time,
  extract(epoch FROM hb.last_write)::float8 AS heartbeat_last_write,
  hb.xmin::text AS heartbeat_xid,
  (SELECT (n_tup_ins + n_tup_upd + n_tup_del)::text FROM pg_stat_all_tables
    WHERE relid = '${HEARTBEAT_TABLE}'::regclass) AS heartbeat_writes`;
    heartbeatJoins = `
LEFT JOIN (SELECT ts, writer, server_time, last_write, xmin FROM ${HEARTBEAT_TABLE}
  WHERE shard = ${escapeLiteral(WHOLE_DATASET_KEY)}) AS hb ON true`;
  }
  return `
SELECT
  current_setting('server_version') AS version,
  (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
  pg_is_in_recovery() AS in_recovery,
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replayed_commit,
  (SELECT status FROM pg_stat_wal_receiver) AS wal_receiver_status,
  ${lastCommit},
  extract(epoch FROM clock_timestamp())::float8 AS server_now,
  (SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS clients,
  totals.reads::text AS reads,
  totals.writes::text AS writes${heartbeatColumns}
FROM (
  SELECT sum(tup_returned) AS reads, sum(tup_inserted + tup_updated + tup_deleted) AS writes
  FROM pg_stat_database
) AS totals${heartbeatJoins}`;
}

/** The status query outside heartbeat mode. */
export const STATUS_QUERY = statusQuery('off');

/** A numeric sent as text, as a number; undefined for NULL or anything unparseable. */
function numeric(text: string | null): number | undefined {
  if (text === null) return undefined;
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

export class PostgresDriver implements Driver {
  private client?: Client;
  /** Survive reconnects: what was seen before a dropped connection is still true. */
  private readonly standbyLag = new StandbyLag();
  private readonly writes = new AdvanceTracker();
  /** writes_total without the heartbeat table's own rows (drivers/shared/heartbeat-exclusion.ts). */
  private readonly clientWrites = new CounterWithoutHeartbeats();
  private systemIdentifier?: string;

  // Heartbeat mode (docs/postgresql.md "Heartbeat mode"). The core calls heartbeat.read() after each
  // observe() only in heartbeat mode: the first call switches the status query to probing for the
  // table, and once it is readable, to reading the row in the same statement (no extra round trip).
  private heartbeatWanted = false;
  private heartbeatReadable = false;
  /** The replicated heartbeat row as the latest collection read it. */
  private heartbeatRow?: HeartbeatRow;
  /** Set when the role may not create the missing table: writes wait for an operator to create it. */
  private heartbeatCreateDenied?: string;
  /** Primary: the last operation reported, written into each heartbeat for the standbys (last_write). */
  private primaryLastOperation?: number;
  /** Primary with commit timestamps: the latest commit seen that was not a heartbeat. */
  private lastClientCommit?: number;
  /** Standby in heartbeat mode: the latest last-op reported (its two sources trail each other). */
  private standbyLastOpSeen?: number;

  constructor(private readonly opts: DriverOptions) {
    // Build once up front so a bad sslmode / sslrootcert fails at start-up, not on every reconnect.
    clientConfig(opts.target, opts.timeoutMs);
  }

  readonly heartbeat: HeartbeatStore = {
    write: (shardId, record) => this.writeHeartbeat(shardId, record),
    read: async () => {
      // Only the whole dataset exists here; the row came with the latest collection's status query.
      this.heartbeatWanted = true;
      return this.heartbeatRow?.record;
    },
  };

  async connect(): Promise<void> {
    const client = new Client(clientConfig(this.opts.target, this.opts.timeoutMs));
    // Without a listener an 'error' event (server gone while idle) would crash the process; the
    // failure surfaces on the next query instead.
    client.on('error', (err: Error) =>
      this.opts.logger.debug('postgresql connection error', { err: err.message }),
    );
    this.client = client;
    // Tried again on each connection: a GRANT given since the last failure takes effect on reconnect.
    this.heartbeatCreateDenied = undefined;
    await client.connect();
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
      await client.query(heartbeatWriteSql(shardId, record, this.primaryLastOperation));
      return;
    } catch (err) {
      if (!isMissingTable(err)) throw err;
    }
    try {
      await client.query(heartbeatWriteSql(shardId, record, this.primaryLastOperation, true));
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

  /** The status query in the variant heartbeat mode calls for; falls back to 'probe' if 'read' fails. */
  private async status(client: Client): Promise<{ row: HeartbeatStatusRow; columns: HeartbeatColumns }> {
    let columns: HeartbeatColumns = !this.heartbeatWanted ? 'off' : this.heartbeatReadable ? 'read' : 'probe';
    let row: HeartbeatStatusRow | undefined;
    try {
      row = (await client.query<HeartbeatStatusRow>(statusQuery(columns))).rows[0];
    } catch (err) {
      // The table was dropped, or SELECT on it revoked, since the last probe: probe again.
      if (columns !== 'read' || !isMissingOrDenied(err)) throw err;
      columns = 'probe';
      row = (await client.query<HeartbeatStatusRow>(statusQuery(columns))).rows[0];
    }
    if (!row) throw new Error('postgresql status query returned no row');
    if (columns !== 'off') {
      const readable = row.heartbeat_readable === true;
      if (row.heartbeat_readable === false && this.heartbeatReadable !== readable) {
        this.opts.logger.warn(
          `heartbeat table ${HEARTBEAT_TABLE} exists but this role may not read it: grant USAGE on the schema and SELECT on the table (docs/postgresql.md)`,
        );
      }
      this.heartbeatReadable = readable;
    }
    return { row, columns };
  }

  async observe(): Promise<Observation> {
    const client = this.client;
    if (!client) throw new Error('postgresql connection is not open');
    const { row, columns } = await this.status(client);

    if (row.system_identifier !== this.systemIdentifier) {
      // Another cluster behind the same address (rebuilt, restored): what we saw is not about it.
      this.systemIdentifier = row.system_identifier;
      this.standbyLag.reset();
      this.lastClientCommit = undefined;
      this.standbyLastOpSeen = undefined;
    }
    const heartbeat = columns === 'read' ? heartbeatRowOf(row) : undefined;
    this.heartbeatRow = heartbeat;

    const now = row.server_now;
    const rawWrites = numeric(row.writes);
    // Heartbeat mode: the heartbeat table's own rows are no client writes (exact: same statement).
    const writesTotal =
      rawWrites === undefined
        ? undefined
        : this.clientWrites.observe(rawWrites, numeric(row.heartbeat_writes ?? null));
    const writesAdvancedAt = writesTotal === undefined ? undefined : this.writes.observe(writesTotal, now);
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
    } else {
      this.standbyLag.reset();
      this.standbyLastOpSeen = undefined;
      const commit = lastCommitOf(row);
      if (commit === undefined) {
        lastOperation = writesAdvancedAt;
      } else if (heartbeat && commit.xid === heartbeat.xid) {
        // The latest commit is our heartbeat (its xid wrote the row): the latest client commit seen,
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
        },
      ],
      performance: {
        clientsConnected: row.clients,
        readsTotal: numeric(row.reads),
        writesTotal,
      },
    };
  }

  /** The replication tree as this node knows it (drivers/postgresql/members.ts). */
  async members(): Promise<MemberList> {
    const client = this.client;
    if (!client) throw new Error('postgresql connection is not open');
    const row = (await client.query<MembersRow>(MEMBERS_QUERY)).rows[0];
    if (!row) throw new Error('postgresql members query returned no row');
    return postgresMembers(row, { host: this.opts.target.host, port: this.opts.target.port });
  }
}

/** The heartbeat row from a 'read' status row; undefined when none was written yet. */
function heartbeatRowOf(row: HeartbeatStatusRow): HeartbeatRow | undefined {
  const ts = row.heartbeat_ts;
  const serverTime = row.heartbeat_server_time;
  if (ts === null || ts === undefined || serverTime === null || serverTime === undefined) return undefined;
  return {
    record: { timestampSeconds: ts, writerNodeId: row.heartbeat_writer ?? '' },
    serverTimeSeconds: serverTime,
    lastWriteSeconds: row.heartbeat_last_write ?? undefined,
    xid: row.heartbeat_xid ?? '',
  };
}

/** pg_last_committed_xact() on a primary with commit timestamps: time and (in 'read') xid. */
function lastCommitOf(row: HeartbeatStatusRow): { seconds: number; xid?: string } | undefined {
  if (row.last_commit_xact) {
    const seconds = numeric(row.last_commit_xact[0] ?? null);
    return seconds === undefined ? undefined : { seconds, xid: row.last_commit_xact[1] ?? undefined };
  }
  return row.last_commit === null || row.last_commit === undefined ? undefined : { seconds: row.last_commit };
}

export function createDriver(opts: DriverOptions): Driver {
  return new PostgresDriver(opts);
}
