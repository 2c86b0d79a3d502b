/**
 * Keeping heartbeat mode's own writes out of a driver's counters (pure, no I/O).
 *
 * In heartbeat mode the primary writes a row every --heartbeat.interval. Those writes are real writes
 * to the datastore, so the datastore's own counters (rows written, statements, GTID position) move
 * with them, and a write counter or "last operation" would then report the exporter's heartbeats as
 * client activity. Where a driver can count the heartbeat writes too (a per-table row counter, a
 * sequence number in the heartbeat row), this subtracts them.
 *
 * The two counters are read at slightly different moments (two statements, or two statistics
 * entries), so a heartbeat can be counted by one and not yet by the other. Working on increments
 * with a carry keeps the result monotonic (Prometheus must never see a counter go down because of a
 * race) and exact over time: a heartbeat seen early only delays the subtraction to the next reading.
 */
export class CounterWithoutHeartbeats {
  private lastTotal?: number;
  private lastHeartbeats?: number;
  private reported?: number;
  /** Increments not yet reported; negative after a heartbeat was subtracted before the total had it. */
  private carry = 0;

  /**
   * @param total the datastore's counter, heartbeat writes included.
   * @param heartbeats how many of those are heartbeat writes, as a counter of its own; undefined
   *   where unknown (heartbeat table not there or not readable): nothing is subtracted then.
   * @returns the counter without heartbeat writes: monotonic, except that a reset of `total` (a
   *   restart, a statistics reset) resets it too, like the datastore's own counter.
   */
  observe(total: number, heartbeats: number | undefined): number {
    if (this.reported === undefined || this.lastTotal === undefined || total < this.lastTotal) {
      // First reading or a counter reset: a new baseline. Heartbeats already in `total` stay in it
      // (the counter's history is not ours to rewrite); only increments from here on are adjusted.
      this.reported = total;
      this.carry = 0;
    } else {
      this.carry += total - this.lastTotal - this.heartbeatStep(heartbeats);
      if (this.carry > 0) {
        this.reported += this.carry;
        this.carry = 0;
      }
    }
    this.lastTotal = total;
    this.lastHeartbeats = heartbeats;
    return this.reported;
  }

  /**
   * How much `observe(total, heartbeats)` would add that the heartbeats do not explain, without
   * observing anything: a driver that may have read a heartbeat as counted but not yet committed
   * (counted when its statement runs, in the row once committed) asks first, and samples both again.
   */
  unexplained(total: number, heartbeats: number | undefined): number {
    if (this.reported === undefined || this.lastTotal === undefined || total < this.lastTotal) return 0;
    return Math.max(0, this.carry + total - this.lastTotal - this.heartbeatStep(heartbeats));
  }

  /**
   * Heartbeats written since the last reading. A heartbeat counter that is new, unknown or went down
   * (row or table re-created, its statistics reset) explains nothing about this step.
   */
  private heartbeatStep(heartbeats: number | undefined): number {
    return heartbeats !== undefined && this.lastHeartbeats !== undefined && heartbeats >= this.lastHeartbeats
      ? heartbeats - this.lastHeartbeats
      : 0;
  }
}
