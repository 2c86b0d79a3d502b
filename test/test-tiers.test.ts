/**
 * The test tiers (test/tiers/tiers.js) stay true: every test file has exactly one tier, and no
 * unit-tier file starts a server, read from its source here and enforced at run time by
 * test/tiers/unit-guard.ts (checked below too, since this file runs in the unit tier).
 */
import childProcess from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { refusal } from './tiers/unit-guard';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.config.js reads the same CommonJS list
const { UNIT, LIVE } = require('./tiers/tiers') as { UNIT: string[]; LIVE: string[] };

const TEST_DIR = __dirname;
const testFiles = readdirSync(TEST_DIR).filter((f) => f.endsWith('.test.ts'));

/**
 * Support helpers named start* that run in the test's own process (stubs on a socket, the exporter
 * in-process). Any other start* helper from test/support starts a server process.
 */
const IN_PROCESS_STARTERS = new Set([
  'startTestExporter',
  'startProbeModeExporter',
  'startRedisStub',
  'startMongoStub',
  'startDelayProxy',
  'startHttpReplay',
  'startFourLetterReplay',
]);

/** Names a test file imports from test/support, with the module each comes from. */
function supportImports(source: string): { name: string; module: string }[] {
  const found: { name: string; module: string }[] = [];
  for (const m of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'\.\/support\/([\w-]+)'/g)) {
    for (const part of m[1].split(',')) {
      const name = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)[0];
      if (name) found.push({ name, module: m[2] });
    }
  }
  return found;
}

describe('test tiers', () => {
  test('every test file is in exactly one tier, and every listed file exists', () => {
    const unlisted = testFiles.filter((f) => !UNIT.includes(f) && !LIVE.includes(f));
    const both = UNIT.filter((f) => LIVE.includes(f));
    const missing = [...UNIT, ...LIVE].filter((f) => !testFiles.includes(f));
    const duplicated = [...UNIT, ...LIVE].filter((f, i, all) => all.indexOf(f) !== i);
    expect({ unlisted, both, missing, duplicated }).toEqual({
      unlisted: [],
      both: [],
      missing: [],
      duplicated: [],
    });
  });

  test('no unit-tier file imports a server starter or runs the built bin', () => {
    const offences: string[] = [];
    // This file names starters on purpose, to test the scan.
    for (const file of UNIT.filter((f) => f !== 'test-tiers.test.ts')) {
      const source = readFileSync(join(TEST_DIR, file), 'utf8');
      for (const { name, module } of supportImports(source)) {
        if (/^start[A-Z]/.test(name) && !IN_PROCESS_STARTERS.has(name)) {
          offences.push(`${file}: ${name} from ./support/${module}`);
        }
        if (name === 'startProcess' || name === 'EXPORTER_CLI') offences.push(`${file}: ${name}`);
      }
      if (/dist\/cli(\.js)?['"]/.test(source)) offences.push(`${file}: dist/cli.js`);
    }
    expect(offences).toEqual([]);
  });

  test('the scan above sees a server starter when there is one', () => {
    const source =
      "import { startRedis, freePort } from './support/redis';\nimport { startTestExporter } from './support/exporter';";
    expect(supportImports(source)).toEqual([
      { name: 'startRedis', module: 'redis' },
      { name: 'freePort', module: 'redis' },
      { name: 'startTestExporter', module: 'exporter' },
    ]);
  });

  test('in the unit tier, starting a server or the built bin throws before anything runs', () => {
    expect(() => childProcess.spawn('/usr/bin/redis-server', ['--port', '0'])).toThrow(
      /unit tier: this test starts a server \(redis-server\)/,
    );
    expect(() =>
      childProcess.execFileSync(process.execPath, [join(TEST_DIR, '..', 'dist', 'cli.js')]),
    ).toThrow(/starts the built exporter/);
    expect(() => childProcess.execSync('etcd --data-dir /nonexistent')).toThrow(/starts a server \(etcd\)/);
    // Tools that need no server stay allowed.
    expect(childProcess.execFileSync(process.execPath, ['-e', 'process.stdout.write("ok")']).toString()).toBe(
      'ok',
    );
  });

  test('what the guard refuses', () => {
    expect(refusal('/usr/lib/postgresql/15/bin/postgres', ['-D', '/tmp/x'])).toMatch(/postgres/);
    expect(refusal('/usr/bin/java', ['-cp', 'zookeeper.jar'])).toMatch(/java/);
    expect(refusal('/usr/sbin/nats-server', [])).toMatch(/nats-server/);
    expect(refusal(process.execPath, ['/work/x/dist/cli.js', '--help'])).toMatch(/dist\/cli\.js/);
    expect(refusal('/usr/bin/promtool', ['check', 'metrics'])).toBeUndefined();
    expect(refusal('bash', ['scripts/check-helm.sh'])).toBeUndefined();
    expect(refusal(process.execPath, ['-e', 'console.log(1)'])).toBeUndefined();
  });
});
