/**
 * @opentelemetry/api stays unloaded until something reads it (src/http/deferred-tracing.ts), and is
 * the real module once something does. Run in a separate Node process on the built files: Jest's
 * module registry is not Node's require cache.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const DIST = join(__dirname, '..', 'dist');

function run(script: string): string {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: join(__dirname, '..') });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

/** Files of @opentelemetry/api in Node's require cache: 1 is the stand-in alone (its entry point). */
const LOADED = "Object.keys(require.cache).filter((k) => k.includes('@opentelemetry/api/')).length";

test('prom-client with its default metrics loads none of @opentelemetry/api', () => {
  const out = run(`
    require(${JSON.stringify(join(DIST, 'http', 'deferred-tracing.js'))});
    const client = require('prom-client');
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry });
    registry.metrics().then((text) => {
      console.log(${LOADED}, /process_cpu_seconds_total \\d/.test(text));
    });
  `);
  expect(out).toBe('1 true');
});

test('the first read loads the real module, and every later require gets it', () => {
  const out = run(`
    require(${JSON.stringify(join(DIST, 'http', 'deferred-tracing.js'))});
    require('prom-client');
    const api = require('@opentelemetry/api');
    const getSpan = api.trace.getSpan;
    const again = require('@opentelemetry/api');
    console.log(typeof getSpan, ${LOADED} > 1, again.trace === api.trace, typeof again.context.active);
  `);
  expect(out).toBe('function true true function');
});
