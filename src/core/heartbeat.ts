/**
 * Heartbeat mode (--heartbeat): true replication lag in seconds for every datastore that accepts
 * writes (pt-heartbeat's idea). The node that is primary for a shard writes {time, writer} into the
 * replicated data every --heartbeat.interval; every node's driver reads the replicated record back in
 * its observe(), and resolving the snapshot applies it: on a secondary lag = now - record time
 * (floored at 0). It assumes the nodes' clocks are synchronised (NTP): a clock offset shows up as lag.
 *
 * Lag measured this way includes the age of the newest record when it is read, even with no
 * replication delay: half an interval with the phase below (0.25 s at the default 500 ms), up to one
 * interval otherwise, hence a sub-second default interval.
 */
import { withTimeout } from './errors';
import type { DriverLogger, HeartbeatStore, Shard, ShardObservation } from './model';

/**
 * One shard's heartbeat, applied (pure): in heartbeat mode, the record's time becomes the shard's
 * heartbeat time and, on a non-primary, its lag (now - record time, floored at 0), replacing the
 * driver's own estimate. Outside heartbeat mode the record is dropped: the driver read it only to
 * keep heartbeat traffic out of its counters, and default mode publishes no heartbeat lag.
 * `nowSeconds` is taken once the collection has finished, after the record was read.
 */
export function applyHeartbeat(
  shard: ShardObservation,
  heartbeatMode: boolean,
  nowSeconds: number,
): Omit<Shard, 'id'> & { id?: string } {
  const { heartbeat: record, ...rest } = shard;
  if (!heartbeatMode || !record) return rest;
  const applied: Omit<Shard, 'id'> & { id?: string } = {
    ...rest,
    heartbeatTimestampSeconds: record.timestampSeconds,
  };
  if (shard.role !== 'primary') applied.lagSeconds = Math.max(0, nowSeconds - record.timestampSeconds);
  return applied;
}

/** Who writes, and where: the shards this node was primary for at the last successful collection. */
export interface HeartbeatSource {
  nodeId: string;
  primaryShardIds: (string | undefined)[];
}

/**
 * Milliseconds from `nowMs` to the next heartbeat write time. Writes fall on the wall clock's
 * multiples of the interval, moved by half of the interval or half a second, whichever is less
 * (500 ms: at .250 and .750 of every second; 1 s or 2 s: at .500), so they never coincide with
 * collections, which cron starts on whole seconds on every node. A write landing while a node is
 * being read is the moment a driver may count a heartbeat before its record is visible; keeping the
 * two apart makes that race rare on every datastore instead of systematic for an exporter that
 * happened to start in phase with the second. This holds for intervals that divide a second or are
 * whole seconds; any other interval keeps a drifting phase, as before. A wait shorter than 50 ms (or
 * a quarter interval) is pushed to the next write time, so a timer firing a little early on the wall
 * clock never writes twice in a row.
 */
export function msUntilNextHeartbeat(nowMs: number, intervalMs: number): number {
  const offset = Math.min(intervalMs, 1000) / 2;
  const wait = (((offset - nowMs) % intervalMs) + intervalMs) % intervalMs;
  return wait < Math.min(intervalMs / 4, 50) ? wait + intervalMs : wait;
}

/**
 * Writes heartbeats for the shards this node is primary for, on its own timer (faster than the
 * collection interval). Never writes on a secondary: the shard list comes from the last collection,
 * so after a failover the new primary takes over within one collection interval, with no configuration.
 */
export class HeartbeatWriter {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private inFlight = false;
  private failing = false;

  constructor(
    private readonly store: HeartbeatStore,
    private readonly source: () => HeartbeatSource | undefined,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly logger: DriverLogger,
  ) {}

  /** A timer per write, re-aimed at the wall clock each time (setInterval would drift off phase). */
  start(): void {
    if (this.stopped) return;
    const wait = msUntilNextHeartbeat(Date.now(), this.intervalMs);
    this.timer = setTimeout(() => this.fire(), wait);
    this.timer.unref();
  }

  private fire(): void {
    this.start();
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
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
