/**
 * Loaded before every unit-tier test file (jest.config.js, setupFilesAfterEnv): starting a server
 * process throws, so a unit test that starts one fails at once instead of quietly making the unit
 * tier slow and dependent on the test servers. Restored after the file: a jest worker may run a
 * live-tier file next, and it shares the child_process module.
 */
import childProcess from 'node:child_process';
import { basename } from 'node:path';

/** Executables that start a server the unit tier must not need (see test/support). */
export const SERVER_EXECUTABLES = new Set([
  'redis-server',
  'postgres',
  'pg_ctl',
  'initdb',
  'mariadbd',
  'mysqld',
  'mariadb-install-db',
  'java',
  'etcd',
  'nats-server',
  'rabbitmq-server',
  'epmd',
  'prometheus',
  'chromium',
]);

/** Why spawning `file` with `args` is refused in the unit tier, or undefined when it is allowed. */
export function refusal(file: unknown, args: unknown): string | undefined {
  const words = [file, ...(Array.isArray(args) ? (args as unknown[]) : [])].filter(
    (w): w is string => typeof w === 'string',
  );
  // exec('redis-server --port 1') names the executable as the first word of a shell line.
  const candidates = words.flatMap((w, i) => (i === 0 ? [w, w.trim().split(/\s+/)[0]] : [w]));
  for (const word of candidates) {
    if (SERVER_EXECUTABLES.has(basename(word))) return `starts a server (${basename(word)})`;
    if (/(^|\/)dist\/cli\.js$/.test(word)) return 'starts the built exporter (dist/cli.js)';
  }
  return undefined;
}

const GUARDED = ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync', 'fork'] as const;
type Guarded = (typeof GUARDED)[number];
const mutable = childProcess as unknown as Record<Guarded, (...a: unknown[]) => unknown>;
const originals = new Map(GUARDED.map((name) => [name, mutable[name]]));

for (const name of GUARDED) {
  const original = originals.get(name)!;
  mutable[name] = function guarded(this: unknown, ...a: unknown[]) {
    const why = refusal(a[0], a[1]);
    if (why) {
      throw new Error(
        `unit tier: this test ${why}; move the file to LIVE in test/tiers/tiers.js or drop the server`,
      );
    }
    return original.apply(this, a);
  };
}

afterAll(() => {
  for (const [name, original] of originals) mutable[name] = original;
});
