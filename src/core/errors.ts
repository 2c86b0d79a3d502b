/** A configuration problem: reported as one line on stderr, exit code 2, no stack trace. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A collection that did not finish within --collect.timeout. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Race a promise against a deadline; the timer never keeps the process alive. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
