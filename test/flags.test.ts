/**
 * Flags that forgive: the collection timeout follows the interval, mistyped flags get a suggestion,
 * the short forms people type work, every duration flag follows one unit rule, repeated flags are
 * either kept (--web.listen-address) or refused, and a password that breaks a URL gets told how to
 * pass it. In-process (loadServerConfig); test/cli.test.ts runs the same through the built bin.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ConfigError } from '../src/core/errors';
import {
  allFlags,
  loadConfig,
  loadServerConfig,
  parseArgs,
  parseDuration,
  suggestFlags,
  unknownEnvironment,
  type Config,
} from '../src/config/flags';
import { parseTarget } from '../src/core/target';
import { startServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { freePort } from './support/processes';

const TARGET = ['--target', 'redis://127.0.0.1:6379'];

function config(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const c = loadConfig([...TARGET, ...argv], env);
  if (typeof c === 'string') throw new Error(`unexpected ${c}`);
  return c;
}

function problem(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('--collect.timeout follows --collect.interval unless set', () => {
  test.each([
    ['1s', 1000],
    ['2s', 2000],
    ['3s', 3000],
    ['5s', 3000],
    ['1m', 3000],
  ])('interval %s alone: timeout %i ms', (interval, timeoutMs) => {
    expect(config(['--collect.interval', interval]).collectTimeoutMs).toBe(timeoutMs);
    expect(config([], { DATASTORE_COLLECT_INTERVAL: interval }).collectTimeoutMs).toBe(timeoutMs);
  });

  test('the defaults: 5s interval, 3s timeout', () => {
    const c = config([]);
    expect([c.collectIntervalSeconds, c.collectTimeoutMs]).toEqual([5, 3000]);
  });

  test('an explicit timeout is kept, up to the interval', () => {
    expect(config(['--collect.interval', '2s', '--collect.timeout', '2s']).collectTimeoutMs).toBe(2000);
    expect(config(['--collect.interval', '1m', '--collect.timeout', '10s']).collectTimeoutMs).toBe(10000);
    expect(config([], { DATASTORE_COLLECT_TIMEOUT: '400ms' }).collectTimeoutMs).toBe(400);
  });

  test('an explicit timeout above the interval fails, naming both values and the fix', () => {
    const fromFlags = problem(() => config(['--collect.interval', '1s', '--collect.timeout', '1500ms']));
    expect(fromFlags).toBe(
      '--collect.timeout 1.5s exceeds --collect.interval 1s: a collection must end before the next one ' +
        'starts; lower --collect.timeout to at most 1s (or leave it unset) or raise --collect.interval',
    );
    // The same from the environment (the flag names are what --help and the docs list).
    const fromEnv = problem(() =>
      config([], { DATASTORE_COLLECT_INTERVAL: '2s', DATASTORE_COLLECT_TIMEOUT: '3s' }),
    );
    expect(fromEnv).toMatch(/^--collect.timeout 3s exceeds --collect.interval 2s: .* at most 2s/);
  });
});

describe('DATASTORE_* variables that no flag reads', () => {
  test('a typo is found, with the variable it probably meant', () => {
    expect(
      unknownEnvironment({
        DATASTORE_COLLECT_INTERVL: '1s',
        DATASTORE_TARGET: 'redis://127.0.0.1:6379',
        DATASTORE_LOG_LEVL: 'debug',
        HOME: '/root',
      }),
    ).toEqual([
      { name: 'DATASTORE_COLLECT_INTERVL', suggestions: ['DATASTORE_COLLECT_INTERVAL'] },
      { name: 'DATASTORE_LOG_LEVL', suggestions: ['DATASTORE_LOG_LEVEL'] },
    ]);
  });

  test('every variable a flag reads is known, driver flags and second names included', () => {
    const env = Object.fromEntries(allFlags().flatMap((f) => f.env.map((e) => [e, 'x'])));
    expect(Object.keys(env)).toContain('DATASTORE_KAFKA_BROKER_ID');
    expect(Object.keys(env)).toContain('DATASTORE_TARGET_PASSWORD_FILE');
    expect(unknownEnvironment(env)).toEqual([]);
  });

  test("the build's own variables are not settings; nothing close gets no suggestion", () => {
    expect(
      unknownEnvironment({ DATASTORE_EXPORTER_GIT_COMMIT: 'abc', DATASTORE_EXPORTER_NODE_CACHE: '/x' }),
    ).toEqual([]);
    expect(unknownEnvironment({ DATASTORE_FROBNICATE: '1' })).toEqual([
      { name: 'DATASTORE_FROBNICATE', suggestions: [] },
    ]);
  });
});

describe('mistyped flags get a suggestion', () => {
  const names = allFlags().map((f) => f.name);
  test.each([
    ['colect.interval', ['collect.interval']],
    ['collect.intervall', ['collect.interval']],
    ['web.listen-adress', ['web.listen-address']],
    ['web.listen_address', ['web.listen-address']],
    ['log-level', ['log.level']],
    ['LOG.LEVEL', ['log.level']],
    ['listen-address', ['web.listen-address']],
    ['telemetry-path', ['web.telemetry-path']],
    ['password-file', ['target.password-file']],
    ['interval', ['collect.interval', 'heartbeat.interval']],
    ['targte', ['target']],
    ['kafka.brokerid', ['kafka.broker-id']],
  ])('--%s: %j', (typed, expected) => {
    expect(suggestFlags(typed, names)).toEqual(expected);
  });

  test('nothing close: no suggestion', () => {
    expect(suggestFlags('frobnicate', names)).toEqual([]);
    expect(suggestFlags('port', names)).toEqual([]);
  });

  test('the message', () => {
    expect(problem(() => parseArgs(['--colect.interval', '5s']))).toBe(
      'unknown flag --colect.interval: did you mean --collect.interval? (see --help)',
    );
    expect(problem(() => parseArgs(['--interval=5s']))).toBe(
      'unknown flag --interval: did you mean --collect.interval or --heartbeat.interval? (see --help)',
    );
    expect(problem(() => parseArgs(['--frobnicate']))).toBe('unknown flag --frobnicate (see --help)');
  });
});

describe('short forms', () => {
  test('-h is --help and -v is --version', () => {
    expect(loadServerConfig(['-h'], {})).toBe('help');
    expect(loadServerConfig(['-v'], {})).toBe('version');
    expect(loadServerConfig([...TARGET, '-v'], {})).toBe('version');
  });

  test('other one-letter flags are unknown', () => {
    expect(problem(() => parseArgs(['-x']))).toMatch(/^unknown flag -x/);
  });
});

describe('durations: every duration flag needs a unit', () => {
  const durationFlags = allFlags().filter((f) => f.duration);

  test('the duration flags are marked (so this rule reaches all of them)', () => {
    expect(durationFlags.map((f) => f.name).sort()).toEqual(
      [
        'collect.interval',
        'collect.max-backoff',
        'collect.timeout',
        'heartbeat.interval',
        'probe.idle-timeout',
        'probe.timeout',
      ].sort(),
    );
    // A flag whose default is a duration must be one of them.
    for (const f of allFlags().filter((x) => /^\d+(ms|s|m|h)$/.test(x.default ?? ''))) {
      expect({ flag: f.name, duration: f.duration }).toEqual({ flag: f.name, duration: true });
    }
  });

  test.each(durationFlags.map((f) => f.name))('--%s=5 is refused with the unit spelled out', (name) => {
    expect(problem(() => parseDuration('5', name))).toBe(
      `--${name} "5" has no unit: write 5s for seconds (units: ms, s, m, h)`,
    );
  });

  test('through the configuration, from flags and from the environment alike', () => {
    expect(problem(() => config(['--collect.interval', '5']))).toMatch(/--collect.interval "5" has no unit/);
    expect(
      problem(() => config([], { DATASTORE_HEARTBEAT: 'true', DATASTORE_HEARTBEAT_INTERVAL: '500' })),
    ).toMatch(/--heartbeat.interval "500" has no unit: write 500s/);
  });

  test('units, fractions and Go-style compounds', () => {
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(parseDuration('5s', 'x')).toBe(5000);
    expect(parseDuration('1.5s', 'x')).toBe(1500);
    expect(parseDuration('2m', 'x')).toBe(120000);
    expect(parseDuration('1h', 'x')).toBe(3600000);
    expect(parseDuration('1m30s', 'x')).toBe(90000);
    expect(parseDuration(' 1h1m1s1ms ', 'x')).toBe(3661001);
    expect(config(['--collect.max-backoff', '1m30s']).maxBackoffSeconds).toBe(90);
  });

  test('not durations', () => {
    for (const bad of ['', 's', '5 s', '5sec', '-5s', '1m30', '5s5', 'fast', '1d']) {
      expect(problem(() => parseDuration(bad, 'x'))).toMatch(/is not a duration|has no unit/);
    }
    expect(problem(() => parseDuration('0', 'x'))).toBe('--x must be greater than zero');
    expect(problem(() => parseDuration('0s', 'x'))).toBe('--x must be greater than zero');
  });
});

describe('flags given more than once', () => {
  test('--web.listen-address: every address is kept, in order', () => {
    expect(
      config(['--web.listen-address', '127.0.0.1:9100', '--web.listen-address=[::1]:9101']).listen,
    ).toEqual([
      { host: '127.0.0.1', port: 9100 },
      { host: '::1', port: 9101 },
    ]);
    expect(config([]).listen).toEqual([{ host: undefined, port: 9860 }]);
    expect(config([], { DATASTORE_WEB_LISTEN_ADDRESS: '127.0.0.1:9200' }).listen).toEqual([
      { host: '127.0.0.1', port: 9200 },
    ]);
  });

  test('the same address twice is refused (the second bind would fail)', () => {
    expect(problem(() => config(['--web.listen-address', ':9100', '--web.listen-address', ':9100']))).toBe(
      '--web.listen-address ":9100" repeats ":9100": give each address once',
    );
  });

  test('any other flag given twice is refused, showing both values', () => {
    expect(problem(() => config(['--log.level', 'info', '--log.level=debug']))).toBe(
      '--log.level is given more than once ("info", "debug"): give it once',
    );
    expect(problem(() => parseArgs(['-h', '--help']))).toMatch(/--help is given more than once/);
  });

  test('the exporter listens on every address, and the same routes answer on each', async () => {
    const ports = [await freePort(), await freePort()];
    const c = loadServerConfig(
      ['--probe.config-file', probeFile, ...ports.flatMap((p) => ['--web.listen-address', `127.0.0.1:${p}`])],
      {},
    );
    if (typeof c === 'string') throw new Error(c);
    const logs: string[] = [];
    const running = await startServer(
      c,
      createLogger('info', 'logfmt', (l) => logs.push(l)),
      {
        processMetrics: false,
      },
    );
    try {
      expect(running.servers).toHaveLength(2);
      const listening = logs.filter((l) => l.includes('msg=listening'));
      expect(listening.map((l) => /address=(\S+)/.exec(l)?.[1])).toEqual(ports.map((p) => `127.0.0.1:${p}`));
      for (const port of ports) {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        expect({ port, status: res.status }).toEqual({ port, status: 200 });
        expect((await request(`http://127.0.0.1:${port}`).get('/')).text).toContain('datastore-exporter');
      }
    } finally {
      await running.stop();
    }
    // Both are closed again.
    for (const port of ports) await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  test('if one address cannot be bound, start-up fails and the others are closed again', async () => {
    const free = await freePort();
    const blocker = await startServer(
      listenConfig([`127.0.0.1:${await freePort()}`]),
      createLogger('error', 'logfmt', () => undefined),
      { processMetrics: false },
    );
    const taken = blocker.port;
    try {
      await expect(
        startServer(
          listenConfig([`127.0.0.1:${free}`, `127.0.0.1:${taken}`]),
          createLogger('error', 'logfmt', () => undefined),
          { processMetrics: false },
        ),
      ).rejects.toThrow(/EADDRINUSE/);
      await expect(fetch(`http://127.0.0.1:${free}/healthz`)).rejects.toThrow();
    } finally {
      await blocker.stop();
    }
  });
});

describe('a password that breaks the URL', () => {
  const hint =
    /percent-encode it \(# as %23, \? as %3F, \/ as %2F, % as %25\) or pass the password with --target.password-file/;

  test.each([
    ['# in the password', 'redis://user:s3cr#et@127.0.0.1:6379'],
    ['? in the password', 'postgresql://user:s3cr?et@127.0.0.1/db'],
    ['/ in the password', 'mysql://user:s3cr/et@127.0.0.1:3306'],
  ])('%s: how to pass it, and never the password', (_name, url) => {
    const message = problem(() => parseTarget(url));
    expect(message).toMatch(hint);
    expect(message).not.toContain('s3cr');
  });

  test('a numeric password with # parses to the wrong host: caught, not connected to', () => {
    // new URL() reads "redis://u:12#34@db:6379" as host "u", port 12, fragment "34@db:6379".
    const message = problem(() => parseTarget('redis://u:12#34@db.example:6379'));
    expect(message).toMatch(/^--target has an '@' after its host: /);
    expect(message).toMatch(hint);
    expect(message).not.toContain('12');
  });

  test('a space in the password works (the URL parser encodes it), and so does an encoded #', () => {
    expect(parseTarget('redis://user:pa ss@127.0.0.1:6379').password).toBe('pa ss');
    expect(parseTarget('redis://user:pa%23ss@127.0.0.1:6379').password).toBe('pa#ss');
  });

  test('without credentials, no hint', () => {
    expect(problem(() => parseTarget('not a url'))).toBe(
      '--target is not a valid URL (expected e.g. redis://127.0.0.1:6379)',
    );
  });
});

let probeDir: string;
let probeFile: string;
beforeAll(() => {
  probeDir = mkdtempSync(join(tmpdir(), 'dsx-flags-'));
  probeFile = join(probeDir, 'probe.yml');
  writeFileSync(probeFile, 'allowed_targets: ["redis://127.0.0.1:*"]\n');
});
afterAll(() => rmSync(probeDir, { recursive: true, force: true }));

function listenConfig(addresses: string[]) {
  const c = loadServerConfig(
    ['--probe.config-file', probeFile, ...addresses.flatMap((a) => ['--web.listen-address', a])],
    {},
  );
  if (typeof c === 'string') throw new Error(c);
  return c;
}

test('docs/configuration.md lists every flag with its environment variables and default', () => {
  const docs = readFileSync(join(__dirname, '..', 'docs', 'configuration.md'), 'utf8');
  const rows = new Map(
    docs
      .split('\n')
      .filter((l) => l.startsWith('| `-'))
      .map((l) => [l, l.split('|').map((c) => c.trim())] as const),
  );
  for (const flag of allFlags()) {
    const row = [...rows.values()].find((cells) => cells[1]!.split(', ').includes(`\`--${flag.name}\``));
    expect({ flag: flag.name, documented: !!row }).toEqual({ flag: flag.name, documented: true });
    for (const env of flag.env)
      expect({ flag: flag.name, env: row![2]!.includes(`\`${env}\``) }).toEqual({
        flag: flag.name,
        env: true,
      });
    // A literal default ("5s", ":9860") is the documented one; descriptive defaults are worded in the docs.
    if (flag.default && /^[\w:./]+$/.test(flag.default)) {
      expect({ flag: flag.name, default: row![3] }).toEqual({
        flag: flag.name,
        default: `\`${flag.default}\``,
      });
    }
  }
});
