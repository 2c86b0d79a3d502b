/**
 * Heartbeat mode for Redis (docs/redis.md): where each shard's heartbeat key lives and how it is
 * read. Its value is shared/heartbeat-json.ts with `s`, the shard's heartbeat write count. No I/O here.
 */
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
