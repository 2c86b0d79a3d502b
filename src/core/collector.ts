/**
 * The collector loop: every interval (node-cron, seconds field, no overlap) it asks the driver for an
 * Observation over ONE pooled connection, within a deadline, and publishes the latest Snapshot.
 *
 * A scrape never waits on the datastore: it renders whatever this collector last published.
 * On failure the snapshot is dropped (no stale numbers), the connection is closed (a hung server must
 * not keep a request queued) and reconnects back off, doubling from one interval up to the maximum.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { withLoopTimeDeadline } from './deadline';
import { HeartbeatWriter, type HeartbeatSource } from './heartbeat';
import { resolveSnapshot, type IdentityOptions } from './identity';
import type { Logger } from './logger';
import type { Driver, Observation, Snapshot } from './model';
import { redactText } from './target';

export interface CollectorOptions {
  intervalSeconds: number;
  timeoutMs: number;
  maxBackoffSeconds: number;
  identity: IdentityOptions;
  logger: Logger;
  /** Secrets to scrub from error messages before they are logged. */
  secrets?: (string | undefined)[];
  /** Heartbeat mode (--heartbeat): write on primaries, read on every node; needs driver support. */
  heartbeat?: { intervalMs: number };
  /**
   * How the operator names the cluster when the datastore has no identity of its own, for the
   * start-up warning; default: the --cluster-id flag.
   */
  clusterIdAdvice?: string;
}

/** What the metrics layer and the HTTP server read. Replaced as a whole after each collection. */
export interface CollectorState {
  /** The latest successful collection's snapshot; null when the last collection failed. */
  snapshot: Snapshot | null;
  up: boolean;
  /** True once the first collection has finished, successfully or not (for /ready). */
  attempted: boolean;
  /** How long the last attempted collection took (a collection skipped while backing off is none). */
  lastDurationSeconds: number;
  /** Failed collection attempts; a collection skipped while backing off is not an attempt. */
  errorsTotal: number;
  lastSuccessSeconds?: number;
  /** Unix time (seconds) when the last collection (or skipped, backing-off attempt) ended. */
  lastAttemptSeconds?: number;
  lastError?: string;
}

/** node-cron pattern for an interval that divides a minute (seconds field) or an hour (minutes). */
export function cronPattern(intervalSeconds: number): string {
  if (intervalSeconds < 60) return `*/${intervalSeconds} * * * * *`;
  return `0 */${intervalSeconds / 60} * * * *`;
}

/** Thrown inside a collection that is skipped because a reconnect is backing off. */
class BackoffWait extends Error {
  constructor() {
    super('waiting to reconnect (backing off after failures)');
  }
}

export class Collector {
  private current: CollectorState = {
    snapshot: null,
    up: false,
    attempted: false,
    lastDurationSeconds: 0,
    errorsTotal: 0,
  };
  private connected = false;
  private consecutiveFailures = 0;
  private nextConnectAt = 0;
  private running?: Promise<void>;
  private task?: ScheduledTask;
  private stopped = false;
  private attempts = 0;
  /** The driver's last Observation (driver-native shard ids), for the heartbeat writer. */
  private lastObservation?: Observation;
  private heartbeatWriter?: HeartbeatWriter;
  private fallbackIdLogged = false;

  constructor(
    private readonly driver: Driver,
    private readonly opts: CollectorOptions,
  ) {}

  get state(): CollectorState {
    return this.current;
  }

  /** A collection is running (its connection is in use, even if whoever asked for it stopped waiting). */
  get collecting(): boolean {
    return this.running !== undefined;
  }

  /** Collect once now, then on every tick of the interval. */
  start(): void {
    this.task = cron.schedule(cronPattern(this.opts.intervalSeconds), () => this.collect(), {
      name: 'datastore-collector',
      noOverlap: true,
      // A tick skipped because the last collection still runs is expected, not a warning.
      suppressMissedWarning: true,
      // node-cron's own messages go through our structured logger (at debug: overlaps are expected).
      logger: {
        info: (m) => this.opts.logger.debug(m, { component: 'node-cron' }),
        warn: (m) => this.opts.logger.debug(m, { component: 'node-cron' }),
        error: (m) => this.opts.logger.warn(String(m), { component: 'node-cron' }),
        debug: () => undefined,
      },
    });
    void this.collect();
    if (this.heartbeatEnabled()) {
      this.heartbeatWriter = new HeartbeatWriter(
        this.driver.heartbeat!,
        () => (this.current.up ? this.heartbeatSource() : undefined),
        this.opts.heartbeat!.intervalMs,
        this.opts.timeoutMs,
        this.opts.logger,
      );
      this.heartbeatWriter.start();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.heartbeatWriter?.stop();
    await this.task?.destroy();
    await this.running?.catch(() => undefined);
    await this.driver.close();
    this.connected = false;
  }

  /**
   * Run one collection, or join the one already running (never two at once: the cron tick and the
   * first run at start-up could otherwise overlap).
   */
  collect(): Promise<void> {
    if (!this.running) {
      this.running = this.collectOnce().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async collectOnce(): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    const { logger } = this.opts;
    const attempt = ++this.attempts;
    try {
      if (!this.connected && Date.now() < this.nextConnectAt) throw new BackoffWait();
      // One deadline for the whole collection, connect included, not charged for time the event
      // loop spent elsewhere (core/deadline.ts).
      const observation = await withLoopTimeDeadline(
        this.connectAndObserve(attempt),
        this.opts.timeoutMs,
        'collection',
      );
      const now = Date.now() / 1000;
      this.consecutiveFailures = 0;
      const snapshot = resolveSnapshot(observation, this.opts.identity, now, this.heartbeatEnabled());
      this.logFallbackClusterId(snapshot);
      this.publish({
        snapshot,
        up: true,
        lastSuccessSeconds: now,
        errorsTotal: this.current.errorsTotal,
        started,
      });
    } catch (err) {
      const message = redactText(err instanceof Error ? err.message : String(err), this.opts.secrets ?? []);
      if (err instanceof BackoffWait) {
        // Not a new failure, nor an attempt: keep the backoff schedule, the error count and the last
        // attempt's duration; still "down" with no model series.
        this.current = { ...this.current, snapshot: null, up: false, attempted: true };
        return;
      }
      if (this.connected || this.consecutiveFailures === 0) {
        logger.warn('collection failed', { err: message });
      } else {
        logger.debug('collection failed', { err: message });
      }
      // Drop the connection (a timed-out request may still be queued on it, or a connect may hang),
      // and invalidate the attempt so a late connect cannot mark the dropped connection as open.
      this.attempts++;
      this.connected = false;
      await this.driver.close().catch(() => undefined);
      this.consecutiveFailures++;
      const backoff = Math.min(
        this.opts.intervalSeconds * 2 ** (this.consecutiveFailures - 1),
        this.opts.maxBackoffSeconds,
      );
      // Minus a little slack so the attempt lands on the tick that is `backoff` seconds away.
      this.nextConnectAt = Date.now() + backoff * 1000 - 250;
      this.publish({
        snapshot: null,
        up: false,
        lastSuccessSeconds: this.current.lastSuccessSeconds,
        errorsTotal: this.current.errorsTotal + 1,
        lastError: message,
        started,
      });
    }
  }

  private async connectAndObserve(attempt: number): Promise<Observation> {
    if (!this.connected) {
      await this.driver.connect();
      // A connect that finishes after its collection timed out belongs to an abandoned attempt.
      if (attempt !== this.attempts) {
        await this.driver.close();
        throw new Error('connect finished after the collection was abandoned');
      }
      this.connected = true;
      this.opts.logger.info('connected to datastore');
    }
    const observation = await this.driver.observe();
    this.lastObservation = observation;
    return observation;
  }

  /**
   * Once, at the first collection that finds no cluster identity: a fallback id merges every cluster
   * that shares it within a Prometheus job (the rules group shards by job and cluster_id), so the
   * built-in 'default' is a warning; an operator-chosen fallback (--cluster-id.fallback) is only
   * worth an info line.
   */
  private logFallbackClusterId(snapshot: Snapshot): void {
    if (snapshot.clusterIdSource !== 'fallback' || this.fallbackIdLogged) return;
    this.fallbackIdLogged = true;
    const advice = this.opts.clusterIdAdvice ?? 'give each cluster its own --cluster-id';
    const fields = { cluster_id: snapshot.clusterId, cluster_id_source: snapshot.clusterIdSource };
    if (this.opts.identity.fallbackClusterId === undefined) {
      this.opts.logger.warn(
        `the datastore has no cluster identity of its own: cluster_id is "${snapshot.clusterId}", shared by every such cluster in a Prometheus job, where their shards merge and one cluster's missing primary hides behind another's; ${advice}`,
        fields,
      );
    } else {
      this.opts.logger.info(
        'the datastore has no cluster identity of its own: using the fallback cluster id',
        fields,
      );
    }
  }

  /** Heartbeat mode: asked for (--heartbeat, which the configuration allows only where supported). */
  private heartbeatEnabled(): boolean {
    return this.opts.heartbeat !== undefined && this.driver.heartbeat !== undefined;
  }

  /** For the heartbeat writer: this node's id and the shards it led at the last successful collection. */
  private heartbeatSource(): HeartbeatSource | undefined {
    const snapshot = this.current.snapshot;
    if (!snapshot || !this.lastObservation) return undefined;
    return {
      nodeId: snapshot.nodeId,
      primaryShardIds: this.lastObservation.shards.filter((s) => s.role === 'primary').map((s) => s.id),
    };
  }

  private publish(
    next: Omit<CollectorState, 'attempted' | 'lastDurationSeconds' | 'lastAttemptSeconds'> & {
      started: number;
    },
  ): void {
    const { started, ...rest } = next;
    this.current = {
      ...rest,
      attempted: true,
      lastDurationSeconds: (performance.now() - started) / 1000,
      lastAttemptSeconds: Date.now() / 1000,
    };
  }
}
