/**
 * The heartbeat record as JSON, for datastores that store it as a value (a Redis key, a ZooKeeper
 * znode, an etcd key): `{"t": <unix seconds>, "w": "<writer node_id>"}`, plus `"s"`, a sequence
 * that counts the heartbeat writes on the shard, where the writer keeps one (Redis). No I/O here.
 */
import type { HeartbeatRecord } from '../../core/model';

export interface HeartbeatJson {
  record: HeartbeatRecord;
  /** Heartbeat writes so far (`s`), where the writer keeps a sequence; undefined otherwise. */
  seq?: number;
}

export function formatHeartbeatJson(record: HeartbeatRecord, seq?: number): string {
  const value: { t: number; w: string; s?: number } = { t: record.timestampSeconds, w: record.writerNodeId };
  if (seq !== undefined) value.s = seq;
  return JSON.stringify(value);
}

/** The record in a stored value, or undefined for none or anything else (never throws). */
export function parseHeartbeatJson(text: string | null | undefined): HeartbeatJson | undefined {
  if (text === null || text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { t, w, s } = value as { t?: unknown; w?: unknown; s?: unknown };
  if (typeof t !== 'number' || !Number.isFinite(t) || typeof w !== 'string') return undefined;
  return {
    record: { timestampSeconds: t, writerNodeId: w },
    seq: typeof s === 'number' && Number.isSafeInteger(s) && s >= 0 ? s : undefined,
  };
}
