/**
 * Remembers when a monotonic value (a write counter, zxid, revision...) was first seen to advance.
 *
 * Many datastores keep no "time of last write". The honest substitute is the time the exporter first
 * observed the position move: its resolution is one collection interval, and it is unknown (undefined)
 * until a move has been seen. A value that goes DOWN (counter reset on restart, CONFIG RESETSTAT) sets a
 * new baseline without claiming a write, since a reset alone says nothing about writes.
 */
export class AdvanceTracker {
  private last?: number;
  private advancedAt?: number;

  /** Feed the current value; returns the Unix time (seconds) of the last advance seen, if any. */
  observe(value: number, nowSeconds: number = Date.now() / 1000): number | undefined {
    if (this.last !== undefined && value > this.last) this.advancedAt = nowSeconds;
    this.last = value;
    return this.advancedAt;
  }

  get lastAdvanceSeconds(): number | undefined {
    return this.advancedAt;
  }
}

/** One AdvanceTracker per key (e.g. per shard), dropping keys not seen in the latest round. */
export class AdvanceTrackers {
  private trackers = new Map<string, AdvanceTracker>();

  /** Feed every key's current value; keys absent from `values` are forgotten (bounded memory). */
  observeAll(
    values: Map<string, number>,
    nowSeconds: number = Date.now() / 1000,
  ): Map<string, number | undefined> {
    const result = new Map<string, number | undefined>();
    const next = new Map<string, AdvanceTracker>();
    for (const [key, value] of values) {
      const tracker = this.trackers.get(key) ?? new AdvanceTracker();
      result.set(key, tracker.observe(value, nowSeconds));
      next.set(key, tracker);
    }
    this.trackers = next;
    return result;
  }
}
