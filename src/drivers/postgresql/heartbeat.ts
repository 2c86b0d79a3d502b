/**
 * Heartbeat mode for PostgreSQL (--heartbeat; docs/postgresql.md "Heartbeat mode"): the SQL, and
 * the pure rules that keep the heartbeat's own writes out of last-op. No I/O here.
 *
 * The record lives in one table in a schema of its own, in the database the target URL names:
 * physical replication copies every database, so each standby has the primary's row.
 */
import { escapeLiteral } from 'pg';
import type { HeartbeatRecord } from '../../core/model';

export const HEARTBEAT_SCHEMA = 'datastore_exporter';
export const HEARTBEAT_TABLE = `${HEARTBEAT_SCHEMA}.heartbeat`;

/** The row key of the shard that is the whole dataset (a PostgreSQL cluster has no shard ids). */
export const WHOLE_DATASET_KEY = '';

/**
 * Created by the exporter on its first write when its role may (CREATE on the database), or once by
 * an operator (docs/postgresql.md gives this SQL with the GRANTs).
 *  - ts: the heartbeat time on the writing exporter's clock (lag = reader's now - ts).
 *  - writer: node_id of the writing exporter's node.
 *  - server_time: now() on the primary, i.e. the heartbeat transaction's start on the server's
 *    clock, to tell on a standby whether the last replayed commit was this heartbeat.
 *  - last_write: the writer's last operation excluding heartbeats (NULL: none seen), so a standby can
 *    report the primary's last client write rather than the last heartbeat.
 *  - seq: heartbeats ever written to the row (every write adds one, whoever writes), so that every
 *    exporter can tell how many of the transactions it saw end were heartbeats (parse.ts
 *    WriteTransactionWatch), like the MySQL and Redis heartbeats' sequence.
 */
export const CREATE_HEARTBEAT_TABLE = `CREATE SCHEMA IF NOT EXISTS ${HEARTBEAT_SCHEMA};
CREATE TABLE IF NOT EXISTS ${HEARTBEAT_TABLE} (
  shard text PRIMARY KEY,
  ts timestamptz NOT NULL,
  writer text NOT NULL,
  server_time timestamptz NOT NULL,
  last_write timestamptz,
  seq bigint NOT NULL DEFAULT 1
)`;

/** For a table created before `seq` existed (the exporter says so when it meets one). */
export const ADD_SEQ_COLUMN = `ALTER TABLE ${HEARTBEAT_TABLE} ADD COLUMN seq bigint NOT NULL DEFAULT 1`;

/** The row key of a shard (the driver's shard id; undefined = the whole dataset). */
export function shardKey(shardId: string | undefined): string {
  return shardId ?? WHOLE_DATASET_KEY;
}

/** Unix seconds as a SQL timestamptz expression (microseconds, the type's precision). */
function timestampSql(seconds: number): string {
  if (!Number.isFinite(seconds)) throw new Error(`not a time: ${seconds}`);
  return `to_timestamp(${seconds.toFixed(6)})`;
}

/**
 * One simple-protocol query (no parameters, so several statements may be sent at once) that writes
 * the heartbeat in a read-write transaction although the session is read-only:
 *  - several statements in one Query message form one implicit transaction, and SET TRANSACTION as
 *    its first statement makes that one read-write. An error rolls the whole message back and leaves
 *    the session idle (an explicit BEGIN would leave an aborted transaction block behind, which the
 *    next collection query would run into);
 *  - pg queues whole queries on its one connection, so no collection statement can run in between;
 *  - on a standby the server refuses ("cannot set transaction read-write mode during recovery"):
 *    it never writes there, whatever the caller does;
 *  - the session's statement_timeout applies to each statement.
 * With `create`, the schema and table are created first (IF NOT EXISTS) in the same transaction.
 */
export function heartbeatWriteSql(
  shardId: string | undefined,
  record: HeartbeatRecord,
  lastWriteSeconds: number | undefined,
  create = false,
): string {
  const lastWrite = lastWriteSeconds === undefined ? 'NULL' : timestampSql(lastWriteSeconds);
  return `SET TRANSACTION READ WRITE;${create ? `\n${CREATE_HEARTBEAT_TABLE};` : ''}
INSERT INTO ${HEARTBEAT_TABLE} AS hb (shard, ts, writer, server_time, last_write)
VALUES (${escapeLiteral(shardKey(shardId))}, ${timestampSql(record.timestampSeconds)}, ${escapeLiteral(record.writerNodeId)}, now(), ${lastWrite})
ON CONFLICT (shard) DO UPDATE SET ts = EXCLUDED.ts, writer = EXCLUDED.writer,
  server_time = EXCLUDED.server_time, last_write = EXCLUDED.last_write, seq = hb.seq + 1`;
}

/** The replicated heartbeat row as the status query returns it (times as Unix seconds). */
export interface HeartbeatRow {
  record: HeartbeatRecord;
  serverTimeSeconds: number;
  lastWriteSeconds?: number;
  /** xmin of the row: the xid of the transaction that wrote the latest heartbeat. */
  xid: string;
  /** Heartbeats ever written to the row. */
  seq?: number;
}

/**
 * How long after its transaction started (server_time) a heartbeat commits at most, for telling it
 * apart from a later commit. The heartbeat is one single-row statement: its commit time is normally
 * a millisecond after server_time; a user commit within this window after a heartbeat is taken for
 * the heartbeat (its time then arrives with a later heartbeat's last_write).
 */
export const HEARTBEAT_COMMIT_SLACK_SECONDS = 0.25;

/**
 * A standby's last operation in heartbeat mode. The native value, pg_last_xact_replay_timestamp(),
 * is the primary's commit time of the last replayed transaction, which is now usually a heartbeat.
 *  - A replayed commit later than the heartbeat's transaction (+ slack) is not that heartbeat: a
 *    client write (or any other transaction) committed after it; its time is exact.
 *  - Otherwise the primary's own last operation, written into the heartbeat row (last_write):
 *    what the primary's exporter had seen by then (its resolution: about one collection interval).
 * The caller keeps the latest value it reported (both sources lag one another by a little).
 */
export function standbyLastOperation(
  lastReplayedCommitSeconds: number | undefined,
  heartbeat: HeartbeatRow,
): number | undefined {
  const candidates: number[] = [];
  if (
    lastReplayedCommitSeconds !== undefined &&
    lastReplayedCommitSeconds > heartbeat.serverTimeSeconds + HEARTBEAT_COMMIT_SLACK_SECONDS
  ) {
    candidates.push(lastReplayedCommitSeconds);
  }
  if (heartbeat.lastWriteSeconds !== undefined) candidates.push(heartbeat.lastWriteSeconds);
  return candidates.length === 0 ? undefined : Math.max(...candidates);
}
