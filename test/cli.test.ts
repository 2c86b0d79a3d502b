/**
 * The command line as a user meets it: the built bin (dist/cli.js, built by `npm test`), its help,
 * its one-line configuration errors with exit code 2, .env and env vars, and secrets kept out of output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';
import { parseExposition, value } from './support/metrics-text';

const CLI = join(__dirname, '..', 'dist', 'cli.js');

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd,
    env: { PATH: process.env.PATH, ...env },
    timeout: 10000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('configuration errors: one clear line, exit code 2, no stack trace', () => {
  const dir = tempDir('cli');
  afterAll(() => dir.remove());

  const cases: [string, string[], RegExp][] = [
    ['missing target', [], /--target \(or DATASTORE_TARGET\) is required/],
    [
      'unknown scheme',
      ['--target', 'cassandra://h:9042'],
      /scheme "cassandra" is not supported \(supported: redis, rediss, postgresql/,
    ],
    ['bad URL', ['--target', 'not a url'], /--target is not a valid URL/],
    [
      'bad duration',
      ['--target', 'redis://h', '--collect.interval', 'fast'],
      /--collect.interval "fast" is not a duration/,
    ],
    [
      'interval not dividing a minute',
      ['--target', 'redis://h', '--collect.interval', '7s'],
      /must be whole seconds dividing a minute/,
    ],
    [
      'timeout above interval',
      ['--target', 'redis://h', '--collect.interval', '5s', '--collect.timeout', '10s'],
      /--collect.timeout 10s exceeds --collect.interval 5s: .*lower --collect.timeout to at most 5s/,
    ],
    [
      'bad listen address',
      ['--target', 'redis://h', '--web.listen-address', 'localhost'],
      /is not \[host\]:port/,
    ],
    ['bad log level', ['--target', 'redis://h', '--log.level', 'loud'], /--log.level "loud" is not one of/],
    ['bad log format', ['--target', 'redis://h', '--log.format', 'xml'], /--log.format "xml" is not one of/],
    [
      'mistyped flag',
      ['--target', 'redis://h', '--colect.interval', '5s'],
      /unknown flag --colect.interval: did you mean --collect.interval\? \(see --help\)/,
    ],
    [
      'a duration without a unit',
      ['--target', 'redis://h', '--collect.interval', '5'],
      /--collect.interval "5" has no unit: write 5s for seconds/,
    ],
    [
      'a flag given twice',
      ['--target', 'redis://h', '--log.level', 'info', '--log.level', 'debug'],
      /--log.level is given more than once \("info", "debug"\): give it once/,
    ],
    [
      'the same listen address twice',
      ['--target', 'redis://h', '--web.listen-address', ':9100', '--web.listen-address', ':9100'],
      /--web.listen-address ":9100" repeats ":9100"/,
    ],
    [
      'a # in the password',
      ['--target', 'redis://user:s3cr#et@h:6379'],
      /percent-encode it \(# as %23.* or pass the password with --target.password-file/,
    ],
    ['flag without value', ['--target'], /--target needs a value/],
    [
      'unreadable password file',
      ['--target', 'redis://h', '--target.password-file', '/nonexistent/pw'],
      /cannot read --target.password-file "\/nonexistent\/pw": ENOENT/,
    ],
    [
      'bad telemetry path',
      ['--target', 'redis://h', '--web.telemetry-path', 'metrics'],
      /must start with "\/"/,
    ],
  ];

  test.each(cases)('%s', (_name, args, message) => {
    const r = run(args, {}, dir.path);
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^datastore-exporter: /);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('a bad URL with a password never echoes the password', () => {
    const r = run(['--target', 'redis://user:s3cretpw@exa mple.com'], {}, dir.path);
    expect(r.status).toBe(2);
    expect(r.stderr).not.toContain('s3cretpw');
  });

  test('an unsupported scheme error does not echo the password either', () => {
    const r = run(['--target', 'cassandra://user:s3cretpw@h:1'], {}, dir.path);
    expect(r.status).toBe(2);
    expect(r.stderr).not.toContain('s3cretpw');
  });

  test('--help lists every flag with its environment variable, exit 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const flag of [
      '--target',
      '--target.password-file',
      '--web.listen-address',
      '--web.telemetry-path',
      '--collect.interval',
      '--collect.timeout',
      '--cluster-id',
      '--node-id',
      '--log.level',
      '--log.format',
      '--kafka.broker-id',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('DATASTORE_TARGET');
    expect(r.stdout).toContain('default: :9860');
  });

  test('--version and -v print the version, git revision and branch, like the Go exporters', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const version = require('../package.json').version as string;
    const env = { DATASTORE_EXPORTER_GIT_COMMIT: 'abc123def', DATASTORE_EXPORTER_GIT_BRANCH: 'release-1.2' };
    for (const flag of ['--version', '-v']) {
      const r = run([flag], env);
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe(
        `datastore-exporter, version ${version} (branch: release-1.2, revision: abc123def)`,
      );
      expect(r.stdout).toContain(`node version:     ${process.version}`);
    }
  });

  test('without the variables, --version reads build-info.json that npm run build wrote', () => {
    const info = JSON.parse(readFileSync(join(__dirname, '..', 'build-info.json'), 'utf8')) as {
      commit: string;
      branch?: string;
    };
    const git = (...args: string[]): string =>
      spawnSync('git', args, { cwd: join(__dirname, '..'), encoding: 'utf8' }).stdout.trim();
    expect(info.commit).toBe(git('rev-parse', 'HEAD'));
    // A detached HEAD (a CI checkout of one commit) has no branch: unknown.
    expect(info.branch ?? 'unknown').toBe(git('symbolic-ref', '--short', '-q', 'HEAD') || 'unknown');
    const r = run(['--version']);
    expect(r.stdout).toContain(`(branch: ${info.branch ?? 'unknown'}, revision: ${info.commit})`);
  });

  test('-h prints the help, with the short forms and the unit rule', () => {
    const r = run(['-h']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('-h, --help');
    expect(r.stdout).toContain('-v, --version');
    expect(r.stdout).toContain('Durations take a unit: ms, s, m, h');
  });
});

describe('the V8 young-generation setting (src/runtime-flags.ts)', () => {
  const dir = tempDir('cli-flags');
  afterAll(() => dir.remove());
  // Loaded before the bin in every process image: says which PID ran with which NODE_OPTIONS.
  const preload = join(dir.path, 'report.js');
  writeFileSync(
    preload,
    "process.stderr.write('image ' + process.pid + ' ' + (process.env.NODE_OPTIONS || '-') + '\\n');\n",
  );
  const images = (env: NodeJS.ProcessEnv): string[] => {
    const r = spawnSync(process.execPath, ['-r', preload, CLI, '--version'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, ...env },
      timeout: 10000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^datastore-exporter, version /);
    return r.stderr.split('\n').filter((l) => l.startsWith('image '));
  };

  test('without it, the bin restarts itself once, in the same process, with a 1 MiB semi-space', () => {
    const lines = images({});
    expect(lines).toHaveLength(2);
    const [first, second] = lines.map((l) => l.split(' '));
    expect(second![1]).toBe(first![1]);
    expect(first![2]).toBe('-');
    expect(second!.slice(2).join(' ')).toBe('--max-semi-space-size=1');
  });

  test("the user's own setting wins: no restart, NODE_OPTIONS untouched", () => {
    const lines = images({ NODE_OPTIONS: '--max-semi-space-size=8' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ --max-semi-space-size=8$/);
  });
});

describe('running the bin against a real Redis', () => {
  let node: RedisNode;
  const dir = tempDir('cli-run');

  beforeAll(async () => {
    node = await startRedis(await freePort(), ['--requirepass', 'pw-from-file-123']);
  });
  afterAll(async () => {
    await node?.stop();
    dir.remove();
  });

  /** Starts the bin, waits for datastore_up 1, returns metrics text and logs, stops it with SIGTERM. */
  async function runExporter(
    args: string[],
    env: NodeJS.ProcessEnv,
  ): Promise<{ metrics: string; logs: string; code: number | null }> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--web.listen-address',
        `127.0.0.1:${port}`,
        '--collect.interval',
        '1s',
        '--collect.timeout',
        '800ms',
        ...args,
      ],
      {
        cwd: dir.path,
        env: { PATH: process.env.PATH, ...env },
      },
    );
    let logs = '';
    child.stderr.on('data', (d) => (logs += d));
    child.stdout.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const metrics = await waitFor(
        `exporter up (logs: ${logs})`,
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`);
          const text = await res.text();
          return value(parseExposition(text), 'datastore_up') === 1 ? text : undefined;
        },
        10000,
      );
      child.kill('SIGTERM');
      const code = await exited;
      return { metrics, logs, code };
    } finally {
      child.kill('SIGKILL');
    }
  }

  test('password from DATASTORE_PASSWORD_FILE, target from .env, JSON logs; the password appears nowhere; SIGTERM exits 0', async () => {
    const pwFile = join(dir.path, 'redis-password');
    writeFileSync(pwFile, 'pw-from-file-123\n');
    writeFileSync(
      join(dir.path, '.env'),
      `DATASTORE_TARGET=redis://127.0.0.1:${node.port}\nDATASTORE_LOG_FORMAT=json\n`,
    );
    // A mistyped variable is not silently ignored: one warning names it and what it probably meant.
    const r = await runExporter([], { DATASTORE_PASSWORD_FILE: pwFile, DATASTORE_COLLECT_INTERVL: '2s' });
    expect(r.code).toBe(0);
    expect(r.metrics).not.toContain('pw-from-file-123');
    expect(r.logs).not.toContain('pw-from-file-123');
    const lines = r.logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['starting datastore-exporter', 'connected to datastore', 'shutting down']),
    );
    expect(lines.every((l) => typeof l.ts === 'string' && typeof l.level === 'string')).toBe(true);
    expect(lines.filter((l) => /environment variable ignored/.test(String(l.msg)))).toEqual([
      expect.objectContaining({
        level: 'warn',
        name: 'DATASTORE_COLLECT_INTERVL',
        did_you_mean: 'DATASTORE_COLLECT_INTERVAL',
      }),
    ]);
  });

  test('a password in the URL is redacted in logs; the flag wins over the environment', async () => {
    const r = await runExporter(
      ['--target', `redis://:pw-from-file-123@127.0.0.1:${node.port}`, '--log.level', 'debug'],
      { DATASTORE_TARGET: 'redis://127.0.0.1:1' },
    );
    // (The .env of the previous test still selects JSON logs: the flag beat only DATASTORE_TARGET.)
    expect(r.logs).toContain(`redis://:REDACTED@127.0.0.1:${node.port}`);
    expect(r.logs).not.toContain('pw-from-file-123');
    expect(r.metrics).not.toContain('pw-from-file-123');
  });

  test('a wrong password: datastore_up 0, the error is logged, the password is not', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--target',
        `redis://:wrong-pw-456@127.0.0.1:${node.port}`,
        '--web.listen-address',
        `127.0.0.1:${port}`,
        '--collect.interval',
        '1s',
        '--collect.timeout',
        '800ms',
      ],
      { env: { PATH: process.env.PATH } },
    );
    let logs = '';
    child.stderr.on('data', (d) => (logs += d));
    try {
      await waitFor('collection failure logged', () => /collection failed/.test(logs), 10000);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(value(parseExposition(text), 'datastore_up')).toBe(0);
      expect(logs).toMatch(/WRONGPASS|invalid username-password/i);
      expect(logs + text).not.toContain('wrong-pw-456');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('--collect.interval 1s alone starts (the timeout follows it), and every --web.listen-address answers', async () => {
    const ports = [await freePort(), await freePort()];
    writeFileSync(join(dir.path, 'pw'), 'pw-from-file-123\n');
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--target',
        `redis://127.0.0.1:${node.port}`,
        '--target.password-file',
        join(dir.path, 'pw'),
        '--collect.interval',
        '1s',
        // (Without it, the fallback cluster id is warned about: this test wants no warning at all.)
        '--cluster-id',
        'cache',
        ...ports.flatMap((p) => ['--web.listen-address', `127.0.0.1:${p}`]),
      ],
      { env: { PATH: process.env.PATH } },
    );
    let logs = '';
    child.stderr.on('data', (d) => (logs += d));
    try {
      for (const port of ports) {
        await waitFor(
          `datastore_up 1 on port ${port} (logs: ${logs})`,
          async () => {
            const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
            return value(parseExposition(text), 'datastore_up') === 1;
          },
          10000,
        );
      }
      expect(logs.match(/msg=listening/g)).toHaveLength(2);
      expect(logs).not.toMatch(/level=(warn|error)/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
