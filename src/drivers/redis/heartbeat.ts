/**
 * Heartbeat mode for Redis (README "Redis"): where each shard's heartbeat key lives and what its
 * value holds. No I/O here.
 */
import type { HeartbeatRecord } from '../../core/model';
import { hashTagForSlot, keySlot, parseSlotRanges, SLOT_COUNT } from './slots';
/** Heartbeat keys live under this prefix, away from user data. */
export const HEARTBEAT_KEY_PREFIX = '__datastore_exporter:heartbeat';

/**
 * The heartbeat key of a shard. Standalone: one key. In a Cluster: one key per shard, named after
 * the shard id (a key that moved away with a slot is never mistaken for another shard's), with a
 * hash tag that maps into a slot the shard owns NOW (`slots`: its current ranges), so that the
 * shard's own primary writes it and its replicas get it. The slot is the first one the shard owns
 * at or after a point fixed by the shard id: a reshard (which moves a shard's lowest slots first)
 * rarely moves it, and when it does, the key follows the shard's slots. Undefined for a shard that
 * owns no slot: every key would belong to another shard.
 */
export function heartbeatKey(shardId: string | undefined, slots: string | undefined): string | undefined {
  if (shardId === undefined) return HEARTBEAT_KEY_PREFIX;
  const slot = heartbeatSlot(shardId, slots ?? '');
  return slot === undefined ? undefined : `${HEARTBEAT_KEY_PREFIX}:${shardId}:{${hashTagForSlot(slot)}}`;
}

/** The owned slot at or after keySlot(shardId), wrapping around; undefined when none is owned. */
export function heartbeatSlot(shardId: string, slots: string): number | undefined {
  const start = keySlot(shardId);
  let best: { slot: number; distance: number } | undefined;
  for (const [from, to] of parseSlotRanges(slots)) {
    // The candidate of a range: `start` itself if inside, else the range's first slot.
    const slot = start >= from && start <= to ? start : from;
    const distance = (slot - start + SLOT_COUNT) % SLOT_COUNT;
    if (!best || distance < best.distance) best = { slot, distance };
  }
  return best?.slot;
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
