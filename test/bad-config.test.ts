/**
 * Bad input at the edges a user touches, through the real bin (dist/cli.js): every environment
 * variable with a bad value, the /probe config file and --target.file gone wrong, each giving ONE line
 * on stderr and exit code 2 (test/cli.test.ts does the same for the flags; test/web-config.test.ts for
 * --web.config.file). Then the /probe query parameters that test/probe.test.ts does not send over
 * HTTP: each is a 400 with one line, never a 500.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { allFlags, loadServerConfig, type ServerConfig } from '../src/config/flags';
import { startServer, type RunningServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { tempDir } from './support/processes';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const dir = tempDir('bad-config');
afterAll(() => dir.remove());

function file(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text);
  return path;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: dir.path,
    env: { PATH: process.env.PATH, ...env },
    timeout: 10000,
  });
  return { status: r.status, stderr: r.stderr };
}

function expectOneLine(r: { status: number | null; stderr: string }, message: RegExp): void {
  expect(r.status).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^datastore-exporter: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const VALID_PROBE_FILE = file('probe-ok.yml', 'allowed_targets: ["redis://127.0.0.1:*"]\n');
const TARGET = { DATASTORE_TARGET: 'redis://127.0.0.1:1' };

/**
 * One bad value per environment variable: [flag, bad value, other env it needs, expected message].
 * A flag missing here and from FREE_TEXT makes the coverage test below fail.
 */
const ENV_CASES: [string, string, NodeJS.ProcessEnv, RegExp][] = [
  ['target', 'not a url', {}, /--target is not a valid URL/],
  ['target.file', '/nonexistent/url', {}, /cannot read --target.file "\/nonexistent\/url": ENOENT/],
  ['target.password-file', '/nonexistent/pw', TARGET, /cannot read --target.password-file/],
  [
    'kafka.broker-id',
    'abc',
    { DATASTORE_TARGET: 'kafka://127.0.0.1:9092' },
    /--kafka.broker-id "abc" must be a broker id \(a non-negative integer\)/,
  ],
  [
    'nats.consumers',
    'maybe',
    { DATASTORE_TARGET: 'nats://127.0.0.1:8222' },
    /--nats.consumers "maybe" must be true or false/,
  ],
  ['web.listen-address', 'localhost', TARGET, /--web.listen-address "localhost" is not \[host\]:port/],
  ['web.telemetry-path', 'metrics', TARGET, /--web.telemetry-path must start with "\/"/],
  ['web.config.file', '/nonexistent/web.yml', TARGET, /cannot read --web.config.file/],
  ['collect.interval', 'fast', TARGET, /--collect.interval "fast" is not a duration/],
  ['collect.timeout', 'soon', TARGET, /--collect.timeout "soon" is not a duration/],
  ['collect.max-backoff', '0', TARGET, /--collect.max-backoff must be greater than zero/],
  ['probe.config-file', '/nonexistent/probe.yml', {}, /cannot read --probe.config-file/],
  [
    'probe.timeout',
    'x',
    { DATASTORE_PROBE_CONFIG_FILE: VALID_PROBE_FILE },
    /--probe.timeout "x" is not a duration/,
  ],
  [
    'probe.max-concurrent',
    '0',
    { DATASTORE_PROBE_CONFIG_FILE: VALID_PROBE_FILE },
    /--probe.max-concurrent "0" must be a whole number of at least 1/,
  ],
  [
    'probe.max-targets',
    'many',
    { DATASTORE_PROBE_CONFIG_FILE: VALID_PROBE_FILE },
    /--probe.max-targets "many" must be a whole number/,
  ],
  [
    'probe.max-connections-per-host',
    '0',
    { DATASTORE_PROBE_CONFIG_FILE: VALID_PROBE_FILE },
    /--probe.max-connections-per-host "0" must be a whole number of at least 1/,
  ],
  [
    'probe.idle-timeout',
    '-5m',
    { DATASTORE_PROBE_CONFIG_FILE: VALID_PROBE_FILE },
    /--probe.idle-timeout "-5m" is not a duration/,
  ],
  ['heartbeat', 'maybe', TARGET, /--heartbeat "maybe" is not a boolean/],
  [
    'heartbeat.interval',
    'often',
    { ...TARGET, DATASTORE_HEARTBEAT: 'true' },
    /--heartbeat.interval "often" is not a duration/,
  ],
  ['log.level', 'loud', TARGET, /--log.level "loud" is not one of/],
  ['log.format', 'xml', TARGET, /--log.format "xml" is not one of/],
];

/**
 * Flags whose environment variable has no bad value at start-up: free text. (Whether a well-formed
 * kafka.broker-id names a broker of the cluster is checked at each collection: only the cluster knows.)
 */
const FREE_TEXT = ['cluster-id', 'cluster-id.fallback', 'node-id'];

describe('every environment variable with a bad value: one line, exit code 2', () => {
  test('every flag with an environment variable has a case here (or is free text)', () => {
    const withEnv = allFlags()
      .filter((f) => f.env.length > 0)
      .map((f) => f.name);
    const covered = [...ENV_CASES.map(([flag]) => flag), ...FREE_TEXT];
    expect(withEnv.filter((f) => !covered.includes(f))).toEqual([]);
  });

  test.each(ENV_CASES)('%s = %j', (flag, bad, extra, message) => {
    const spec = allFlags().find((f) => f.name === flag)!;
    // Every spelling of the variable (e.g. DATASTORE_PASSWORD_FILE and DATASTORE_TARGET_PASSWORD_FILE).
    for (const name of spec.env) expectOneLine(run([], { ...extra, [name]: bad }), message);
  });

  test('a flag beats its variable: a bad variable is not read when the flag is given', () => {
    const r = run(['--collect.interval', 'fast'], { ...TARGET, DATASTORE_COLLECT_INTERVAL: '5s' });
    expectOneLine(r, /--collect.interval "fast"/);
    const other = run(['--log.level', 'loud'], { ...TARGET, DATASTORE_LOG_LEVEL: 'debug' });
    expectOneLine(other, /--log.level "loud"/);
  });
});

describe('--target.file', () => {
  test('an empty file', () => {
    expectOneLine(run(['--target.file', file('empty-url', '\n')]), /--target.file ".*empty-url" is empty/);
  });
  test('both --target and --target.file', () => {
    expectOneLine(
      run(['--target.file', file('url', 'redis://127.0.0.1:1\n')], TARGET),
      /give --target or --target.file, not both/,
    );
  });
  test('a bad URL in the file names the file', () => {
    expectOneLine(
      run(['--target.file', file('bad-url', 'cassandra://h:9042')]),
      /--target.file ".*bad-url": the URL scheme "cassandra" is not supported/,
    );
  });
});

describe('bad probe config files through the bin (flag and variable): one line, exit code 2', () => {
  test.each([
    ['not YAML', 'allowed_targets: [', /not valid YAML/],
    ['a misspelt key', 'allowed_target: []', /unknown key "allowed_target"/],
    ['a bad pattern', 'allowed_targets: ["redis://10.0.0.1:port"]', /is not scheme:\/\/host\[:port\]/],
    ['an unsupported scheme', 'allowed_targets: ["cassandra://h"]', /scheme "cassandra" is not supported/],
    ['a port out of range', 'allowed_targets: ["redis://h:70000"]', /port out of range/],
    [
      'an unreadable password file',
      'auth_modules: { m: { password_file: /nonexistent/pw } }',
      /cannot read --probe.config-file ".*": auth_modules.m.password_file "\/nonexistent\/pw": ENOENT/,
    ],
    [
      'a secret in params',
      'auth_modules: { m: { params: { sslpassword: x } } }',
      /put secrets in password_file, not in params/,
    ],
    ['tls not a boolean', 'auth_modules: { m: { tls: yes please } }', /tls must be true or false/],
  ])('%s', (name, text, message) => {
    const path = file(`probe-${name.replace(/\W+/g, '-')}.yml`, text);
    expectOneLine(run(['--probe.config-file', path]), message);
    expectOneLine(run([], { DATASTORE_PROBE_CONFIG_FILE: path }), message);
  });

  test('a probe tuning flag without a probe config', () => {
    expectOneLine(
      run([], { ...TARGET, DATASTORE_PROBE_TIMEOUT: '5s' }),
      /--probe.timeout needs --probe.config-file/,
    );
  });
});

describe('bad /probe query parameters over HTTP: 400 with one line, never a 500', () => {
  let server: RunningServer;
  beforeAll(async () => {
    const config = loadServerConfig(
      [
        '--web.listen-address',
        '127.0.0.1:0',
        '--probe.config-file',
        file('probe-http.yml', 'allowed_targets: ["redis://127.0.0.*:*"]\nauth_modules: { m: {} }\n'),
      ],
      {},
    ) as ServerConfig;
    server = await startServer(
      config,
      createLogger('error', 'logfmt', () => undefined),
      { processMetrics: false },
    );
  });
  afterAll(() => server?.stop());

  test.each([
    ['a repeated target', '/probe?target=redis://127.0.0.1:1&target=redis://127.0.0.1:2', /exactly once/],
    [
      'a repeated auth_module',
      '/probe?target=redis://127.0.0.1:1&auth_module=m&auth_module=m',
      /exactly once/,
    ],
    ['an empty target', '/probe?target=', /missing \?target=/],
    ['a target of 3000 characters', `/probe?target=redis://${'a'.repeat(3000)}:1`, /too long/],
    ['a numeric alias host', '/probe?target=redis://0x7f.1:6379', /usual form/],
    ['a decimal host', '/probe?target=redis://2130706433:6379', /usual form/],
    // A non-special scheme keeps such a host as opaque text: refused before the allowlist sees it.
    ['a malformed escape', '/probe?target=redis%3A%2F%2F%E0%A4%A', /without %-escapes or other punctuation/],
    ['a NUL byte', '/probe?target=redis://127.0.0.1%00:6379', /not a valid URL|not allowed/],
    ['a nested parameter', '/probe?target[a]=redis://127.0.0.1:1', /missing \?target=|exactly once/],
    ['an empty host', '/probe?target=redis://:6379', /not a valid URL|no host/],
  ])('%s', async (_name, path, message) => {
    const res = await request(server.server).get(path);
    expect([res.status, res.text.trim().split('\n').length]).toEqual([expect.any(Number), 1]);
    expect(res.status === 400 || res.status === 403).toBe(true);
    expect(res.text).toMatch(message);
  });
});

describe('durations Node cannot time, non-regular files and driver URL settings: one line, exit code 2', () => {
  test.each([
    // Beyond 2^31-1 ms Node fires a timer after 1 ms: 600h of heartbeat interval wrote ~800 SETs/s.
    [
      ['--heartbeat', '--heartbeat.interval', '600h'],
      /--heartbeat.interval "600h" is too long: at most 596h/,
    ],
    [['--heartbeat', '--heartbeat.interval', '0.5ms'], /--heartbeat.interval "0.5ms" is too short/],
    [['--collect.max-backoff', '9999999999s'], /--collect.max-backoff "9999999999s" is too long/],
    [['--collect.timeout', `${'9'.repeat(400)}ms`], /--collect.timeout ".*" is too long/],
  ])('%j', (args, message) => {
    expectOneLine(run(args, TARGET), message);
  });

  test('a probe duration beyond the timer limit', () => {
    expectOneLine(
      run(['--probe.config-file', VALID_PROBE_FILE, '--probe.idle-timeout', '1000h']),
      /--probe.idle-timeout "1000h" is too long/,
    );
  });

  describe('a FIFO or a device where a file is expected: refused at once, never read', () => {
    // Reading a FIFO blocks until a writer comes (forever, silently); /dev/zero never ends.
    const fifo = join(dir.path, 'fifo');
    beforeAll(() => execFileSync('mkfifo', [fifo]));
    const probeWith = (yaml: string): string => file(`probe-fifo-${yaml.length}.yml`, yaml);
    test.each([
      [
        '--target.file',
        () => ['--target.file', fifo],
        /cannot read --target.file ".*fifo": not a regular file \(a FIFO\)/,
      ],
      [
        '--target.password-file',
        () => ['--target', 'redis://127.0.0.1:1', '--target.password-file', fifo],
        /cannot read --target.password-file ".*fifo": not a regular file/,
      ],
      [
        '--target.password-file /dev/zero',
        () => ['--target', 'redis://127.0.0.1:1', '--target.password-file', '/dev/zero'],
        /cannot read --target.password-file "\/dev\/zero": not a regular file \(a device or socket\)/,
      ],
      [
        '--web.config.file',
        () => ['--target', 'redis://127.0.0.1:1', '--web.config.file', fifo],
        /cannot read --web.config.file ".*fifo": not a regular file/,
      ],
      [
        '--probe.config-file',
        () => ['--probe.config-file', fifo],
        /cannot read --probe.config-file ".*fifo"/,
      ],
      [
        'an auth module password_file',
        () => ['--probe.config-file', probeWith(`auth_modules: { m: { password_file: ${fifo} } }`)],
        /auth_modules.m.password_file ".*fifo": not a regular file/,
      ],
      [
        'a TLS certificate file',
        () => [
          '--target',
          'redis://127.0.0.1:1',
          '--web.config.file',
          file('web-fifo.yml', `tls_server_config: { cert_file: ${fifo}, key_file: ${fifo} }`),
        ],
        /cannot read tls_server_config.cert_file ".*fifo": not a regular file/,
      ],
      [
        'a PostgreSQL sslrootcert',
        () => ['--target', `postgresql://127.0.0.1:1/postgres?sslmode=verify-full&sslrootcert=${fifo}`],
        /cannot read sslrootcert ".*fifo": not a regular file/,
      ],
      [
        'an etcd CA file',
        () => ['--target', `etcds://127.0.0.1:1?cacert=${fifo}`],
        /cannot read cacert file ".*fifo": not a regular file/,
      ],
    ])('%s', (_name, args, message) => {
      expectOneLine(run(args()), message);
    });
  });

  test.each([
    ['postgresql://127.0.0.1:1/postgres?sslmode=bogus', /sslmode "bogus" is not one of disable, allow/],
    [
      'postgresql://127.0.0.1:1/postgres?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt',
      /cannot read sslrootcert "\/nonexistent\/ca.crt": ENOENT/,
    ],
    [
      'postgresql://127.0.0.1:1/postgres?options=-c%20x=y',
      /unknown URL parameter "options" \(supported: host, sslmode, sslrootcert\)/,
    ],
    ['postgresql://127.0.0.1:1/%E0', /malformed %-escape/],
    ['etcd://127.0.0.1:1?timeout=5', /unknown URL parameter "timeout" \(supported: cacert, cert, key\)/],
    [
      'etcds://127.0.0.1:1?cacert=/nonexistent/ca.pem',
      /cannot read cacert file "\/nonexistent\/ca.pem": ENOENT/,
    ],
    ['mongodb://127.0.0.1:1/?tls=maybe', /tls\/ssl must be either "true" or "false"/],
    ['mongodb://127.0.0.1:1/?bogusOption=1', /option bogusoption is not supported/],
    ['mongodb://127.0.0.1:1/?tls=true&tlsCAFile=/nonexistent/ca.pem', /cannot read tlsCAFile file/],
    ['kafka://127.0.0.1:1?tls=maybe', /\?tls=maybe is not true or false/],
    ['kafka://u@127.0.0.1:1?sasl=gssapi', /\?sasl=gssapi is not supported/],
    ['redis://127.0.0.1:1/abc', /the URL path must be a database number/],
    ['redis://127.0.0.1:1?ssl=true', /unknown URL parameter "ssl" \(this driver takes none\)/],
    ['mysql://127.0.0.1:1/db?ssl=true', /unknown URL parameter "ssl"/],
    ['zookeeper://127.0.0.1:1?chroot=/x', /unknown URL parameter "chroot"/],
    ['nats://127.0.0.1:1/jsz', /a nats:\/\/ target takes no path/],
    ['rabbitmq://127.0.0.1:1', /needs a management user/],
    ['rabbitmq://u@127.0.0.1:1?prometheus_port=99999', /prometheus_port must be a TCP port/],
  ])('--target %s', (url, message) => {
    // Before: exit 1 after a log line (sslmode, etcd, mongodb) or a failure at every collection.
    const r = run(['--target', url]);
    expectOneLine(r, message);
    expect(r.stderr).toMatch(/^datastore-exporter: --target \S+: /);
  });

  test('a secret option value in a bad URL is not echoed', () => {
    const r = run(['--target', 'mongodb://127.0.0.1:1/?tlsCertificateKeyFilePassword=S3cr3t-x&tls=maybe']);
    expectOneLine(r, /tls\/ssl must be either/);
    expect(r.stderr).not.toContain('S3cr3t-x');
  });

  test.each([
    ['/healthz/', /"\/healthz\/" is taken by the exporter's own \/healthz/],
    ['/HEALTHZ', /taken by the exporter's own \/healthz/],
    ['/ready', /taken by the exporter's own \/ready/],
    ['/probe', /taken by the exporter's own \/probe/],
    ['/api/unstable/shards', /taken by the exporter's own \/api/],
    ['/', /taken by the exporter's own landing page/],
    ['/a?b', /may hold only letters, digits/],
    ['/a\\b', /may hold only letters, digits/],
    ['/a b', /may hold only letters, digits/],
    ['/%6detrics', /no spaces, %-escapes/],
    ['/a//b', /empty, "." or ".." segment/],
    ['/a/../healthz', /empty, "." or ".." segment/],
    ['/a\nb', /may hold only/],
  ])('--web.telemetry-path %j', (path, message) => {
    expectOneLine(
      run(['--web.telemetry-path', path], TARGET),
      new RegExp(`--web.telemetry-path .*${message.source}`),
    );
  });
});
