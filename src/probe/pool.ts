/**
 * The pool of probed targets: one driver + Collector (so ONE connection) per target and auth module,
 * created on the first probe and kept for the next ones, because connecting (TCP, TLS, auth, the
 * driver's discovery round trips) usually costs more than the collection itself.
 *
 * Bounded three ways, so a scrape config listing many targets (or a caller inventing spellings of
 * one) cannot exhaust the exporter or the datastores' connection limits:
 *  - idle eviction: a target not probed for --probe.idle-timeout is closed (an unref'd timer, which
 *    never keeps the process alive);
 *  - --probe.max-targets: a new target beyond the cap evicts the least recently used idle target;
 *  - --probe.max-connections-per-host: the same for the targets of one datastore address
 *    (host:port), whatever their path, auth module or scheme.
 * If no target is idle, the new one is refused (PoolExhausted). "Idle" means no probe waits on it
 * AND no collection runs on it: a probe that stopped waiting early (scrape-timeout header) leaves its
 * collection running, and that connection still counts until the collection ends.
 *
 * A Collector here is never started (no cron): probes call collect(), which also makes concurrent
 * probes of one target share one collection.
 */
import type { Collector } from '../core/collector';
import type { ProbeTarget } from './target';
import type { Snapshot } from '../core/model';

export class PoolExhausted extends Error {
  override name = 'PoolExhausted';
}

export type EvictionReason = 'idle' | 'lru' | 'shutdown';

export interface PooledTarget {
  readonly key: string;
  readonly probeTarget: ProbeTarget;
  readonly collector: Collector;
  /** Probes using this target right now. Never evicted while > 0. */
  busy: number;
  idleTimer?: NodeJS.Timeout;
  /** Rendered model metrics of one snapshot, per content type (see probe/service.ts). */
  rendered?: { snapshot: Snapshot; texts: Map<string, Promise<string>> };
}

export interface PoolOptions {
  maxTargets: number;
  /** Pooled targets per datastore address (host:port); default: no limit beyond maxTargets. */
  maxPerHost?: number;
  idleTimeoutMs: number;
  /** Makes the (unstarted) Collector of a new target. May throw (e.g. a driver's ConfigError). */
  createCollector(target: ProbeTarget): Collector;
  onEvict?(entry: PooledTarget, reason: EvictionReason): void;
}

export class TargetPool {
  /** Insertion order = recency: a used entry is moved to the end, so the first idle one is the LRU. */
  private readonly entries = new Map<string, PooledTarget>();
  private closed = false;
  readonly evictions: Record<EvictionReason, number> = { idle: 0, lru: 0, shutdown: 0 };

  constructor(private readonly opts: PoolOptions) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): PooledTarget | undefined {
    return this.entries.get(key);
  }

  /** Pooled targets whose collection is running now (each one holds a connection in use). */
  get collecting(): number {
    let n = 0;
    for (const entry of this.entries.values()) if (entry.collector.collecting) n++;
    return n;
  }

  /** The pooled target for this probe (created if new), marked busy until release(). */
  acquire(probeTarget: ProbeTarget): PooledTarget {
    if (this.closed) throw new PoolExhausted('the exporter is shutting down');
    let entry = this.entries.get(probeTarget.key);
    if (entry) {
      this.entries.delete(entry.key);
    } else {
      // Find the victim first and create second: a refused or failed creation leaves the pool as it was.
      const victim = this.victimFor(probeTarget);
      const collector = this.opts.createCollector(probeTarget);
      if (victim) this.evict(victim, 'lru');
      entry = { key: probeTarget.key, probeTarget, collector, busy: 0 };
    }
    this.entries.set(entry.key, entry);
    entry.busy++;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    return entry;
  }

  release(entry: PooledTarget): void {
    entry.busy--;
    if (entry.busy > 0 || this.entries.get(entry.key) !== entry) return;
    this.armIdleTimer(entry);
  }

  private armIdleTimer(entry: PooledTarget): void {
    entry.idleTimer = setTimeout(() => {
      if (entry.busy > 0 || this.entries.get(entry.key) !== entry) return;
      // Its collection still runs (the probe gave up on it): close it once that has ended.
      if (entry.collector.collecting) this.armIdleTimer(entry);
      else this.evict(entry, 'idle');
    }, this.opts.idleTimeoutMs);
    entry.idleTimer.unref();
  }

  /** No probe waits on it and no collection runs on it: closing it abandons nothing. */
  private static idle(entry: PooledTarget): boolean {
    return entry.busy === 0 && !entry.collector.collecting;
  }

  private static hostOf(target: ProbeTarget): string {
    return `${target.address.host}:${target.address.port}`;
  }

  /** The target a new one replaces, if a cap is reached; PoolExhausted if that target is not idle. */
  private victimFor(target: ProbeTarget): PooledTarget | undefined {
    const maxPerHost = this.opts.maxPerHost;
    if (maxPerHost !== undefined) {
      const host = TargetPool.hostOf(target);
      const sameHost = [...this.entries.values()].filter((e) => TargetPool.hostOf(e.probeTarget) === host);
      if (sameHost.length >= maxPerHost) {
        const victim = sameHost.find(TargetPool.idle);
        if (!victim) {
          throw new PoolExhausted(
            `all ${maxPerHost} connections to ${host} (--probe.max-connections-per-host) are in use; try again later`,
          );
        }
        return victim;
      }
    }
    if (this.entries.size < this.opts.maxTargets) return undefined;
    for (const entry of this.entries.values()) {
      if (TargetPool.idle(entry)) return entry;
    }
    throw new PoolExhausted(
      `all ${this.opts.maxTargets} pooled targets (--probe.max-targets) are in use; try again later`,
    );
  }

  private evict(entry: PooledTarget, reason: EvictionReason): void {
    this.entries.delete(entry.key);
    clearTimeout(entry.idleTimer);
    this.evictions[reason]++;
    this.opts.onEvict?.(entry, reason);
    // Only idle targets are evicted (nothing runs), so stop() closes the connection at once.
    void entry.collector.stop().catch(() => undefined);
  }

  /** Closes every pooled connection; later acquire() calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    for (const entry of all) {
      this.entries.delete(entry.key);
      clearTimeout(entry.idleTimer);
      this.evictions.shutdown++;
    }
    await Promise.all(all.map((e) => e.collector.stop().catch(() => undefined)));
  }
}
