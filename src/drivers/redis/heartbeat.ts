/**
 * Heartbeat mode for Redis (README "Redis"): where each shard's heartbeat key lives and what its
 * value holds. No I/O here.
 */
import type { HeartbeatRecord } from '../../core/model';
import { firstSlot, hashTagForSlot } from './slots';
/** Heartbeat keys live under this prefix, away from user data. */
export const HEARTBEAT_KEY_PREFIX = '__datastore_exporter:heartbeat';

/**
 * The heartbeat key of a shard: standalone, one key; in a Cluster, one key per shard with a hash tag
 * that maps into the shard's first slot, so the shard's own primary writes it and its replicas get it.
 */
export function heartbeatKey(shardId: string | undefined): string {
  return shardId === undefined
    ? HEARTBEAT_KEY_PREFIX
    : `${HEARTBEAT_KEY_PREFIX}:{${hashTagForSlot(firstSlot(shardId))}}`;
}

/** The stored heartbeat: the record plus `s`, a sequence that counts heartbeat writes on the shard. */
export interface StoredHeartbeat {
  record: HeartbeatRecord;
  /** Heartbeat SETs so far; replicated with the value, so every node knows how many it applied. */
  seq?: number;
}

export function parseHeartbeat(raw: string | null): StoredHeartbeat | undefined {
  if (raw === null) return undefined;
  try {
    const v = JSON.parse(raw) as { t?: unknown; w?: unknown; s?: unknown };
    if (typeof v.t !== 'number' || typeof v.w !== 'string') return undefined;
    return {
      record: { timestampSeconds: v.t, writerNodeId: v.w },
      seq: typeof v.s === 'number' && Number.isSafeInteger(v.s) && v.s >= 0 ? v.s : undefined,
    };
  } catch {
    return undefined;
  }
}
