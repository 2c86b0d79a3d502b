/**
 * Heartbeat mode (--heartbeat): true replication lag in seconds for every datastore that accepts
 * writes (pt-heartbeat's idea). The node that is primary for a shard writes {time, writer} into the
 * replicated data every --heartbeat.interval; every node reads the replicated record back during its
 * collection, and on a secondary lag = now - record time (floored at 0). It assumes the nodes' clocks
 * are synchronised (NTP): a clock offset shows up as lag.
 *
 * Lag measured this way includes up to one heartbeat interval of granularity (the record may be that
 * old when read even with no replication delay), hence a sub-second default interval.
 */
import { withTimeout } from './errors';
import type { DriverLogger, HeartbeatStore, Observation } from './model';

/** Reads every shard's replicated heartbeat; sets heartbeat time on all and lag on non-primaries. */
export async function applyHeartbeats(store: HeartbeatStore, observation: Observation): Promise<void> {
  await Promise.all(
    observation.shards.map(async (shard) => {
      const record = await store.read(shard.id);
      if (!record) return;
      shard.heartbeatTimestampSeconds = record.timestampSeconds;
      if (shard.role !== 'primary') {
        // Read after the record arrived: the time is taken now, not before the round trip.
        shard.lagSeconds = Math.max(0, Date.now() / 1000 - record.timestampSeconds);
      }
    }),
  );
}

/** Who writes, and where: the shards this node was primary for at the last successful collection. */
export interface HeartbeatSource {
  nodeId: string;
  primaryShardIds: (string | undefined)[];
}

/**
 * Writes heartbeats for the shards this node is primary for, on its own timer (faster than the
 * collection interval). Never writes on a secondary: the shard list comes from the last collection,
 * so after a failover the new primary takes over within one collection interval, with no configuration.
 */
export class HeartbeatWriter {
  private timer?: NodeJS.Timeout;
  private inFlight = false;
  private failing = false;

  constructor(
    private readonly store: HeartbeatStore,
    private readonly source: () => HeartbeatSource | undefined,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly logger: DriverLogger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One round of writes; skipped while the previous one is still in flight (a slow datastore). */
  async tick(): Promise<void> {
    const source = this.source();
    if (this.inFlight || !source || source.primaryShardIds.length === 0) return;
    this.inFlight = true;
    try {
      await Promise.all(
        source.primaryShardIds.map((shardId) =>
          withTimeout(
            this.store.write(shardId, { timestampSeconds: Date.now() / 1000, writerNodeId: source.nodeId }),
            this.timeoutMs,
            'heartbeat write',
          ),
        ),
      );
      if (this.failing) this.logger.info('heartbeat writes resumed');
      this.failing = false;
    } catch (err) {
      // Not fatal: the collection reports the datastore's health; replicas will see the lag grow.
      // Warn once per run of failures (a missing privilege would fail every tick), then debug.
      const log = this.failing ? this.logger.debug : this.logger.warn;
      log.call(this.logger, 'heartbeat write failed', { err: (err as Error).message });
      this.failing = true;
    } finally {
      this.inFlight = false;
    }
  }
}
