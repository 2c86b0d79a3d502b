/**
 * The collection deadline, counted in time the event loop was free to serve the collection.
 *
 * A plain timer is wall-clock: when the exporter itself is busy (a flood of HTTP connections, a
 * burst of scrapes of a 100k-series snapshot), the datastore's reply may be sitting in the socket
 * while the loop works through other callbacks, and the timer, which Node runs before I/O in each
 * turn, fires first: a healthy datastore reported down for the exporter's own congestion (seen: ~14 s
 * of datastore_up 0 for a healthy Redis under 2,000 busy HTTP connections).
 *
 * So the time the event loop spent running callbacks since the collection started (its active time,
 * from performance.eventLoopUtilization) is added back when the deadline's timer fires, up to a hard
 * ceiling of `maxFactor` times the deadline in wall time: a hung datastore under load is still
 * reported, just later. Time the process waited for the CPU while the loop was idle (another process
 * hogging the machine) counts as idle: it is not added back, so a hung datastore on a loaded host is
 * reported on time. When the deadline does expire, the rejection waits for one more poll phase
 * (setImmediate), so a reply that has already arrived is read before it is given up on.
 */
import { performance } from 'node:perf_hooks';
import { TimeoutError } from './errors';

/** The default ceiling on a deadline's wall time, as a multiple of its free event-loop time. */
export const DEFAULT_DEADLINE_CEILING_FACTOR = 4;

export interface LoopDeadlineOptions {
  /** Ceiling on the wall time, as a multiple of `ms` (default DEFAULT_DEADLINE_CEILING_FACTOR). */
  maxFactor?: number;
}

/**
 * Races `promise` against a deadline of `ms` of free event-loop time (see the file comment). Rejects
 * with a TimeoutError naming `what`. Timers never keep the process alive.
 */
export function withLoopTimeDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  options: LoopDeadlineOptions = {},
): Promise<T> {
  const started = performance.now();
  const loopAtStart = performance.eventLoopUtilization();
  const ceiling = ms * (options.maxFactor ?? DEFAULT_DEADLINE_CEILING_FACTOR);
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      return true;
    };
    const arm = (delay: number): void => {
      timer = setTimeout(check, delay);
      timer.unref();
    };
    const check = (): void => {
      const elapsed = performance.now() - started;
      const busy = performance.eventLoopUtilization(loopAtStart).active;
      const free = elapsed - busy;
      if (free < ms && elapsed < ceiling) {
        arm(Math.max(1, Math.min(ms - free, ceiling - elapsed)));
        return;
      }
      // One more poll phase first: a reply already in the socket is read before the deadline wins.
      setImmediate(() => {
        if (done()) reject(new TimeoutError(`${what} timed out after ${ms} ms`));
      });
    };
    arm(ms);
    promise.then(
      (value) => {
        if (done()) resolve(value);
      },
      (err: unknown) => {
        if (done()) reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
