/**
 * prom-client's process_cpu_* metrics require `@opentelemetry/api` (51 modules) when prom-client is
 * loaded, for exemplars, which the exporter never enables: nothing reads it unless tracing is used.
 * Before prom-client loads, this puts a stand-in for that module in the require cache: the real
 * module is loaded, and the stand-in forwards to it, on the first property read by anyone.
 * Must be imported before anything that imports prom-client (src/cli.ts imports it first).
 */
import Module from 'node:module';
import { dirname } from 'node:path';

function deferOpenTelemetryApi(): void {
  let path: string;
  try {
    path = require.resolve('@opentelemetry/api', { paths: [dirname(require.resolve('prom-client'))] });
  } catch {
    return; // not installed: prom-client will say so itself
  }
  if (require.cache[path]) return;
  let real: object | undefined;
  const load = (): object => {
    if (!real) {
      delete require.cache[path];
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      real = require(path) as object;
    }
    return real;
  };
  const standIn = new Module(path);
  standIn.filename = path;
  standIn.loaded = true;
  standIn.exports = new Proxy(
    {},
    {
      get: (_target, key): unknown => Reflect.get(load(), key) as unknown,
      has: (_target, key) => Reflect.has(load(), key),
    },
  );
  require.cache[path] = standIn;
}

deferOpenTelemetryApi();
