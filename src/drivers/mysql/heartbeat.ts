/**
 * Heartbeat mode for MySQL / MariaDB (--heartbeat; docs/mysql.md "Heartbeat mode"): the SQL and the
 * parsing of the replicated row (pt-heartbeat's idea). No I/O here.
 *
 * The record lives in one InnoDB table in a database of its own; it replicates through the binlog
 * like any write (statement- or row-based: the statement is deterministic).
 */
import type { HeartbeatRecord } from '../../core/model';
import { parseUtcDatetime, toNumber } from './parse';

export const HEARTBEAT_DATABASE = 'datastore_exporter';
export const HEARTBEAT_TABLE = `${HEARTBEAT_DATABASE}.heartbeat`;

/** The row key of the shard that is the whole dataset (replication has no shard ids). */
export const WHOLE_DATASET_KEY = '';

/**
 * Created by the exporter on its first write when it has CREATE on the database, or once by an
 * operator (docs/mysql.md gives this SQL with the GRANTs).
 *  - ts: the heartbeat time on the writing exporter's clock, as UTC (lag = reader's now - ts).
 *  - writer: node_id of the writing exporter's node.
 *  - seq: how many heartbeats were ever written to the row (every write adds one, whoever writes),
 *    so that every node can tell how many of the transactions and write statements it counted were
 *    heartbeats, and keep them out of writes_total and last-op.
 */
export const CREATE_HEARTBEAT_STATEMENTS = [
  `CREATE DATABASE IF NOT EXISTS ${HEARTBEAT_DATABASE}`,
  `CREATE TABLE IF NOT EXISTS ${HEARTBEAT_TABLE} (
  shard VARCHAR(255) NOT NULL PRIMARY KEY,
  ts DATETIME(6) NOT NULL,
  writer VARCHAR(255) NOT NULL,
  seq BIGINT UNSIGNED NOT NULL DEFAULT 1
) ENGINE=InnoDB`,
];

/**
 * A string literal. Quotes are doubled (valid in every sql_mode); backslashes are doubled too, which
 * is right unless the server runs with NO_BACKSLASH_ESCAPES (a node id with a backslash would then be
 * stored with two).
 */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The row key of a shard (the driver's shard id; undefined = the whole dataset). */
export function shardKey(shardId: string | undefined): string {
  return shardId ?? WHOLE_DATASET_KEY;
}

/**
 * The heartbeat upsert (one autocommit statement, drivers/mysql/driver.ts). FROM_UNIXTIME of a
 * literal under the session's time_zone '+00:00' (set by the driver, and replicated with the
 * statement) stores UTC and is deterministic, so statement-based replication copies it exactly.
 * INSERT ... ON DUPLICATE KEY UPDATE rather than REPLACE: REPLACE deletes and re-inserts (two
 * writes, and seq would restart).
 */
export function heartbeatUpsertSql(shardId: string | undefined, record: HeartbeatRecord): string {
  if (!Number.isFinite(record.timestampSeconds)) throw new Error(`not a time: ${record.timestampSeconds}`);
  return (
    `INSERT INTO ${HEARTBEAT_TABLE} (shard, ts, writer) ` +
    `VALUES (${sqlString(shardKey(shardId))}, FROM_UNIXTIME(${record.timestampSeconds.toFixed(6)}), ${sqlString(record.writerNodeId)}) ` +
    'ON DUPLICATE KEY UPDATE ts = VALUES(ts), writer = VALUES(writer), seq = seq + 1'
  );
}

/**
 * Every exporter reads the row through a HANDLER, not a SELECT: HANDLER reads count in Com_ha_read,
 * not in Com_select, so no exporter's heartbeat reads (in heartbeat mode or not) show up as client
 * reads in another exporter's reads_total. The handler is opened once per connection (it needs
 * SELECT on the table, like a SELECT would) and read by primary key in each collection; DDL on the
 * table closes it implicitly (the read then fails with ER_UNKNOWN_TABLE and it is opened again).
 */
export const HEARTBEAT_HANDLER = 'datastore_exporter_heartbeat';
export const HEARTBEAT_HANDLER_OPEN_SQL = `HANDLER ${HEARTBEAT_TABLE} OPEN AS ${HEARTBEAT_HANDLER}`;
export const HEARTBEAT_HANDLER_READ_SQL = `HANDLER ${HEARTBEAT_HANDLER} READ \`PRIMARY\` = (${sqlString(WHOLE_DATASET_KEY)})`;

export interface HeartbeatRow {
  record: HeartbeatRecord;
  /** Heartbeats ever written to the row (the seq column). */
  seq: number;
}

/**
 * The row of HEARTBEAT_HANDLER_READ_SQL, or undefined for none (or anything malformed). `ts` comes
 * as the DATETIME text (stored as UTC, see heartbeatUpsertSql), or as Unix seconds.
 */
export function parseHeartbeatRow(rows: Record<string, unknown>[]): HeartbeatRow | undefined {
  const row = rows[0];
  if (!row) return undefined;
  const rawTs = row['ts'];
  const ts = typeof rawTs === 'string' && rawTs.includes('-') ? parseUtcDatetime(rawTs) : toNumber(rawTs);
  const seq = toNumber(row['seq']);
  const writer = row['writer'];
  if (ts === undefined || seq === undefined) return undefined;
  return {
    record: {
      timestampSeconds: ts,
      writerNodeId: Buffer.isBuffer(writer) ? writer.toString('utf8') : String(writer ?? ''),
    },
    seq,
  };
}
