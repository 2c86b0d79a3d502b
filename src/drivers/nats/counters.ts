/**
 * A monotonic total over per-key monotonic positions (stream last sequences, consumer delivery
 * sequences) whose set of keys changes: streams get deleted, consumer leadership moves between servers.
 * A plain sum would go down when a key leaves (Prometheus would read a reset and count the whole
 * remaining sum again as an increase) and jump when a key arrives with a long history (a consumer whose
 * leadership just moved here). So the total only adds each key's advance since it was last seen:
 *  - the first round counts every key's current value (the total starts at the sum);
 *  - a key that appears later starts at its value then (its history was counted elsewhere, or before);
 *  - a key whose value went down (deleted and recreated between two rounds) adds its new value;
 *  - a key that leaves adds nothing more.
 * What is lost: advances of a key between its last round and its removal, and of a new key before its
 * first round (at most one collection interval each).
 */
export class SumOfAdvances {
  private last = new Map<string, number>();
  private total?: number;

  observe(values: Map<string, number>): number {
    let total = this.total;
    const first = total === undefined;
    total ??= 0;
    for (const [key, value] of values) {
      const before = this.last.get(key);
      if (before === undefined) total += first ? value : 0;
      else total += value >= before ? value - before : value;
    }
    this.last = new Map(values);
    this.total = total;
    return total;
  }
}
