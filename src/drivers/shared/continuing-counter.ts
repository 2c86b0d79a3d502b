/**
 * A server's counter carried across the server's restarts (pure, no I/O).
 *
 * Some servers count operations they REPLAY at start-up: a restarted ZooKeeper server applies its
 * transaction log again and counts every replayed write in its per-namespace counters. Published
 * as is, the counter drops at the restart (16 -> 15) and Prometheus takes the replayed 15 for new
 * writes. This counter instead continues from the last published value and counts only what the
 * server counted after the first reading following its restart: nothing replayed is invented, and
 * what happened while the server was down was not counted there anyway.
 *
 * The first reading is published as is (the server's own count), so that a counter that never
 * restarted matches the server exactly.
 */
export class ContinuingCounter {
  private lastRaw?: number;
  private published?: number;

  /**
   * @param raw the server's counter now.
   * @param restarted the server restarted since the last reading (e.g. its uptime went down); a raw
   *   value that went down is taken as a restart too.
   */
  observe(raw: number, restarted: boolean): number {
    if (this.published === undefined || this.lastRaw === undefined) {
      this.published = raw;
    } else if (!restarted && raw >= this.lastRaw) {
      this.published += raw - this.lastRaw;
    }
    // After a restart the new raw value is the baseline: nothing is added for it.
    this.lastRaw = raw;
    return this.published;
  }
}
