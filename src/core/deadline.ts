/**
 * The collection deadline, counted in time the event loop could have spent on the collection.
 *
 * A plain timer is wall-clock: when the process is busy (a flood of HTTP connections, a burst of
 * scrapes of a 100k-series snapshot), the datastore's reply may be sitting in the socket while the
 * loop works through other callbacks, and the timer, which Node runs before I/O in each turn, fires
 * first: a healthy datastore reported down for the exporter's own congestion (seen: ~14 s of
 * datastore_up 0 for a healthy Redis under 2,000 busy HTTP connections).
 *
 * So the deadline discounts the time the loop was late: a ticker measures how late it runs
 * (event-loop lag), and when the deadline's timer fires, the lag seen since the start is added back,
 * up to a hard ceiling of `maxFactor` times the deadline in wall time (a hung datastore under load
 * is still reported, just later). When the deadline does expire, the rejection waits for one more
 * poll phase (setImmediate), so a reply that has already arrived is read before it is given up on.
 */
import { TimeoutError } from './errors';

/** How often the lag is sampled while a deadline runs. */
const TICK_MS = 20;
/** Lateness below this is timer jitter, not a busy loop: not added back. */
const JITTER_MS = 10;

export interface LoopDeadlineOptions {
  /** Ceiling on the wall time, as a multiple of `ms` (default 4). */
  maxFactor?: number;
}

function lateness(sinceLastTick: number): number {
  const late = sinceLastTick - TICK_MS;
  return late > JITTER_MS ? late : 0;
}

/** Lag measured by a running ticker: how much later than scheduled its ticks ran, in total. */
class LagMeter {
  private last = performance.now();
  lagMs = 0;
  private readonly timer = setInterval(() => {
    const now = performance.now();
    this.lagMs += lateness(now - this.last);
    this.last = now;
  }, TICK_MS);

  constructor() {
    this.timer.unref();
  }

  /** Counts the lag of the tick that is due now but has not run (the loop is late right now). */
  settle(): number {
    return this.lagMs + lateness(performance.now() - this.last);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Races `promise` against a deadline of `ms` of loop time (see the file comment). Rejects with a
 * TimeoutError naming `what`. Timers never keep the process alive.
 */
export function withLoopTimeDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  options: LoopDeadlineOptions = {},
): Promise<T> {
  const started = performance.now();
  const ceiling = ms * (options.maxFactor ?? 4);
  const lag = new LagMeter();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      lag.stop();
      return true;
    };
    const arm = (delay: number): void => {
      timer = setTimeout(check, delay);
      timer.unref();
    };
    const check = (): void => {
      const elapsed = performance.now() - started;
      const usable = elapsed - lag.settle();
      if (usable < ms && elapsed < ceiling) {
        arm(Math.min(ms - usable, ceiling - elapsed));
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
