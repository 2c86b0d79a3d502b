/**
 * The PostgreSQL status statement: everything one collection reads, in ONE statement (one round
 * trip, one moment), and the row it returns. Pure SQL text, no I/O.
 *
 * Times are Unix seconds on the SERVER's clock (clock_timestamp()), so lag does not depend on the
 * exporter's clock. Counters are summed as numeric and sent as text: bigint sums can exceed what pg
 * would parse safely. Uncorrelated subqueries run as InitPlans only when their CASE branch is taken,
 * so pg_current_wal_lsn() (an error during recovery) and pg_last_committed_xact() (an error while
 * track_commit_timestamp is off) are never called where they would fail.
 *
 * Every statement the exporter sends names EXPORTER_MARK (here as the alias of the totals), so that
 * pg_stat_statements entries of any exporter can be told apart from the clients' statements.
 *
 * Privileges: all of it is readable by a role with pg_monitor (docs/postgresql.md); the heartbeat
 * row needs SELECT on the heartbeat table, which the 'probe' variant checks before 'read' relies on it.
 */
import { escapeLiteral } from 'pg';
import { HEARTBEAT_SCHEMA, HEARTBEAT_TABLE, WHOLE_DATASET_KEY } from './heartbeat';

/** In the text of every statement an exporter sends (an identifier: pg_stat_statements keeps those). */
export const EXPORTER_MARK = 'datastore_exporter';

/** The row of the status statement; pg returns bool/int4/float8 as JS values, text (and NULL) as is. */
export interface StatusRow {
  version: string;
  system_identifier: string;
  in_recovery: boolean;
  lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  last_replayed_commit: number | null;
  wal_receiver_status: string | null;
  /** pg_stat_wal_receiver last_msg_send_time / last_msg_receipt_time (NULL without pg_monitor). */
  wal_last_msg_send: number | null;
  wal_last_msg_receipt: number | null;
  wal_receiver_timeout_ms: number | null;
  /**
   * Primary with commit timestamps: [time, xid] of pg_last_committed_xact() from ONE call (two calls
   * could straddle a commit and pair one transaction's time with another's xid).
   */
  last_commit_xact: (string | null)[] | null;
  /** Primary: pg_current_snapshot() as [xmax, ...xip] (text, 64-bit xids). */
  snapshot: string[] | null;
  server_now: number;
  clients: number;
  /** Transactions ended (xact_commit + xact_rollback), all databases. */
  transactions: string | null;
  /**
   * Sessions started (PostgreSQL >= 14), all databases: each starts with one transaction of its own
   * (reading the catalogs at log-in), which is no client read.
   */
  sessions?: string | null;
  writes: string | null;
  /** Top-level read statements of the clients in pg_stat_statements (when it is usable). */
  statement_reads?: string | null;
  /** Rows the heartbeat table was written (n_tup_ins + n_tup_upd + n_tup_del); NULL: no such table. */
  heartbeat_writes: string | null;
  /**
   * 'probe': 'readable' (the table exists and this role may read it), 'denied', or 'outdated' (made
   * before it had a seq column); NULL when it does not exist. 'read': 'readable'.
   */
  heartbeat_access: 'readable' | 'denied' | 'outdated' | null;
  // 'read' only (NULL when no row was written yet):
  heartbeat_ts?: number | null;
  heartbeat_writer?: string | null;
  heartbeat_server_time?: number | null;
  heartbeat_last_write?: number | null;
  heartbeat_xid?: string | null;
  heartbeat_seq?: string | null;
}

/**
 * The heartbeat part: 'probe' (does the heartbeat table exist, may we read it? -- no error either
 * way) or 'read' (the table is known to be readable: the replicated row in the same statement).
 */
export type HeartbeatColumns = 'probe' | 'read';

export interface StatusOptions {
  heartbeat: HeartbeatColumns;
  /** Schema of a usable pg_stat_statements (>= 1.9, loaded, readable); undefined: not usable. */
  statementsSchema?: string;
  /**
   * PostgreSQL >= 15: ask the session to publish its statistics as soon as the statement ends
   * (pg_stat_force_next_flush()), so that the exporter's own transactions are in pg_stat_database
   * by the next collection, exactly when it subtracts them from reads.
   */
  forceStatsFlush?: boolean;
  /** PostgreSQL >= 14: pg_stat_database has `sessions`. */
  sessions?: boolean;
}

/**
 * A client statement that reads: SELECT, TABLE, VALUES, FETCH, or WITH without a data-modifying
 * part, after any leading comments. Case-insensitive (~*); written without lazy quantifiers, which
 * PostgreSQL's regular expressions treat differently.
 */
export const READ_STATEMENT_REGEX =
  '^(\\s|/\\*([^*]|\\*+[^*/])*\\*+/|--[^\\n]*\\n)*((select|table|values|fetch)\\M|with\\M(?!.*\\m(insert|update|delete|merge)\\M))';

/** pg_stat_statements' top-level read statements, without any exporter's (EXPORTER_MARK). */
export function statementReadsSql(schema: string): string {
  const view = `${escapeIdentifier(schema)}.pg_stat_statements`;
  return `(SELECT coalesce(sum(calls), 0)::text FROM ${view}
    WHERE toplevel AND query !~ '${EXPORTER_MARK}' AND query ~* '${READ_STATEMENT_REGEX}')`;
}

/** Checks that pg_stat_statements can be read (loaded via shared_preload_libraries, readable). */
export function statementsProbeSql(schema: string): string {
  return `SELECT count(*) AS ${EXPORTER_MARK} FROM ${escapeIdentifier(schema)}.pg_stat_statements WHERE toplevel AND false`;
}

/** Once per connection: the server's version, and where pg_stat_statements is installed in this database. */
export const SERVER_FEATURES_SQL = `SELECT current_setting('server_version_num')::int AS version_num,
  (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_stat_statements') AS statements_schema,
  (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements') AS statements_version,
  true AS ${EXPORTER_MARK}`;

export interface ServerFeatures {
  version_num: number;
  statements_schema: string | null;
  statements_version: string | null;
}

function escapeIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const LAST_COMMIT_CONDITION = `NOT pg_is_in_recovery() AND current_setting('track_commit_timestamp')::bool`;

export function statusQuery(options: StatusOptions): string {
  let heartbeatColumns: string;
  let heartbeatJoins = '';
  if (options.heartbeat === 'probe') {
    // By name in the catalogs, not to_regclass(): that raises an error on a schema without USAGE.
    heartbeatColumns = `
  (SELECT CASE
      WHEN NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')) THEN 'denied'
      WHEN NOT EXISTS (SELECT 1 FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attname = 'seq' AND NOT a.attisdropped) THEN 'outdated'
      ELSE 'readable' END
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = '${HEARTBEAT_SCHEMA}' AND c.relname = 'heartbeat') AS heartbeat_access`;
  } else {
    heartbeatColumns = `
  'readable' AS heartbeat_access,
  extract(epoch FROM hb.ts)::float8 AS heartbeat_ts,
  hb.writer AS heartbeat_writer,
  extract(epoch FROM hb.server_time)::float8 AS heartbeat_server_time,
  extract(epoch FROM hb.last_write)::float8 AS heartbeat_last_write,
  hb.xmin::text AS heartbeat_xid,
  hb.seq::text AS heartbeat_seq`;
    heartbeatJoins = `
LEFT JOIN (SELECT ts, writer, server_time, last_write, xmin, seq FROM ${HEARTBEAT_TABLE}
  WHERE shard = ${escapeLiteral(WHOLE_DATASET_KEY)}) AS hb ON true`;
  }
  const statementReads = options.statementsSchema
    ? `\n  ${statementReadsSql(options.statementsSchema)} AS statement_reads,`
    : '';
  const flush = options.forceStatsFlush ? `\n  pg_stat_force_next_flush() AS stats_flush_requested,` : '';
  return `
SELECT
  current_setting('server_version') AS version,
  (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
  pg_is_in_recovery() AS in_recovery,
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replayed_commit,
  wr.status AS wal_receiver_status,
  extract(epoch FROM wr.last_msg_send_time)::float8 AS wal_last_msg_send,
  extract(epoch FROM wr.last_msg_receipt_time)::float8 AS wal_last_msg_receipt,
  (SELECT setting::int FROM pg_settings WHERE name = 'wal_receiver_timeout') AS wal_receiver_timeout_ms,
  CASE WHEN ${LAST_COMMIT_CONDITION}
    THEN (SELECT ARRAY[extract(epoch FROM "timestamp")::float8::text, xid::text] FROM pg_last_committed_xact())
  END AS last_commit_xact,
  CASE WHEN NOT pg_is_in_recovery()
    THEN (SELECT ARRAY[pg_snapshot_xmax(s)::text] || ARRAY(SELECT x::text FROM pg_snapshot_xip(s) AS x)
      FROM pg_current_snapshot() AS s)
  END AS snapshot,
  extract(epoch FROM clock_timestamp())::float8 AS server_now,${flush}
  (SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS clients,
  ${EXPORTER_MARK}.transactions::text AS transactions,${
    options.sessions
      ? `
  ${EXPORTER_MARK}.sessions::text AS sessions,`
      : ''
  }
  ${EXPORTER_MARK}.writes::text AS writes,${statementReads}
  (SELECT (n_tup_ins + n_tup_upd + n_tup_del)::text FROM pg_stat_all_tables
    WHERE schemaname = '${HEARTBEAT_SCHEMA}' AND relname = 'heartbeat') AS heartbeat_writes,${heartbeatColumns}
FROM (
  SELECT sum(xact_commit + xact_rollback) AS transactions,${options.sessions ? ' sum(sessions) AS sessions,' : ''}
    sum(tup_inserted + tup_updated + tup_deleted) AS writes
  FROM pg_stat_database
) AS ${EXPORTER_MARK}
LEFT JOIN pg_stat_wal_receiver AS wr ON true${heartbeatJoins}`;
}

/** The status statement as a collection without pg_stat_statements first sends it. */
export const STATUS_QUERY = statusQuery({ heartbeat: 'probe' });
