/**
 * Heartbeat mode for Redis (docs/redis.md): where each shard's heartbeat key lives and how it is
 * read. Its value is shared/heartbeat-json.ts with `s`, the shard's heartbeat write count. No I/O here.
 */
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

/**
 * How every exporter reads a heartbeat key: `SUBSTR key 0 -1` (the whole value), not GET. SUBSTR is
 * GETRANGE's alias, deprecated since Redis 2.0, so its calls in INFO commandstats are the exporters'
 * heartbeat reads: every exporter, in heartbeat mode or not, leaves them out of reads_total, and the
 * heartbeat traffic of one exporter never shows up as client reads in another's.
 */
export const HEARTBEAT_READ_COMMAND = 'substr';

export function heartbeatReadArgs(key: string): string[] {
  return ['SUBSTR', key, '0', '-1'];
}
