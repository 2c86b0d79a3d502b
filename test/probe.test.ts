/**
 * Multi-target probing (GET /probe): first the pure rules (config file, allowlist, target parsing,
 * deadline, pool bookkeeping), then one exporter with no --target probing REAL servers: two Redis nodes
 * (one with a password from an auth module), a PostgreSQL primary + streaming standby, a dead port and
 * a Redis that is killed and restarted, plus a second exporter with tiny caps.
 *
 * Tests in a describe share its servers and run in order.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Collector } from '../src/core/collector';
import { loadConfig, loadServerConfig, type ServerConfig } from '../src/config/flags';
import { ConfigError } from '../src/core/errors';
import { startServer, type RunningServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { SCRAPE_TIMEOUT_MARGIN_MS, probeDeadlineMs } from '../src/probe/service';
import { TargetAllowlist } from '../src/probe/allowlist';
import { parseProbeConfig, type ProbeFileConfig } from '../src/probe/config';
import { PoolExhausted, TargetPool } from '../src/probe/pool';
import { ProbeRequestError, resolveProbeTarget } from '../src/probe/target';
import { MODEL_METRICS, find, parseExposition, roleOf, value, type Sample } from './support/metrics-text';
import { startPgCluster, type PgCluster } from './support/postgres';
import { freePort, freePorts, sleep, startProcess, tempDir, waitFor } from './support/processes';
import { PROMETHEUS } from './support/prometheus';
import { startRedis, type RedisNode } from './support/redis';

const noSecrets = (): string => {
  throw new Error('no secret files in this test');
};

describe('probe config file', () => {
  const parse = (text: string, readSecret: (p: string, w: string) => string = noSecrets): ProbeFileConfig =>
    parseProbeConfig(text, '"probe.yml"', readSecret);

  test('an empty file allows nothing and has no auth modules', () => {
    const config = parse('');
    expect(config.allowlist.size).toBe(0);
    expect(config.authModules.size).toBe(0);
  });

  test('auth modules: user, password from its file, tls, params', () => {
    const config = parse(
      [
        'allowed_targets: ["redis://10.0.0.*:6379"]',
        'auth_modules:',
        '  pg:',
        '    user: monitor',
        '    password_file: /run/secrets/pg',
        '    tls: true',
        '    params: { sslrootcert: /etc/ca.pem, connect_retries: 2 }',
        '  anonymous:',
      ].join('\n'),
      (path, what) => {
        expect(what).toContain('auth_modules.pg.password_file');
        return `secret-of-${path}`;
      },
    );
    expect(config.authModules.get('pg')).toEqual({
      name: 'pg',
      user: 'monitor',
      password: 'secret-of-/run/secrets/pg',
      tls: true,
      params: { sslrootcert: '/etc/ca.pem', connect_retries: '2' },
    });
    expect(config.authModules.get('anonymous')).toEqual({ name: 'anonymous', tls: false, params: {} });
  });

  test.each([
    ['not YAML', 'allowed_targets: [', /not valid YAML/],
    ['a list at the top', '- a', /must be a mapping/],
    ['an unknown top-level key', 'allowed_target: []', /unknown key "allowed_target"/],
    [
      'an unknown module key (typo)',
      'auth_modules: { m: { pasword_file: x } }',
      /unknown key "pasword_file"/,
    ],
    ['allowed_targets not a list', 'allowed_targets: redis://h', /must be a list of strings/],
    ['a pattern without a scheme', 'allowed_targets: ["10.0.0.1:6379"]', /is not scheme:\/\/host\[:port\]/],
    [
      'an unsupported scheme',
      'allowed_targets: ["cassandra://h:9042"]',
      /scheme "cassandra" is not supported/,
    ],
    ['a pattern with a path', 'allowed_targets: ["redis://h:6379/0"]', /is not scheme:\/\/host/],
    ['a port out of range', 'allowed_targets: ["redis://h:70000"]', /port out of range/],
    ['tls not a boolean', 'auth_modules: { m: { tls: "yes" } }', /tls must be true or false/],
    [
      'a secret in params',
      'auth_modules: { m: { params: { password: x } } }',
      /put secrets in password_file/,
    ],
    ['a bad module name', 'auth_modules: { "a b": {} }', /auth module name "a b" must match/],
  ])('%s is a one-line ConfigError naming the file', (_name, text, message) => {
    let error: unknown;
    try {
      parse(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain('--probe.config-file "probe.yml"');
    expect((error as Error).message).not.toContain('\n');
  });

  test('an unreadable password file is a ConfigError', () => {
    const dir = tempDir('probe-cfg');
    try {
      const file = join(dir.path, 'probe.yml');
      writeFileSync(file, 'auth_modules: { m: { password_file: /nonexistent/pw } }\n');
      expect(() => loadServerConfig(['--probe.config-file', file], {})).toThrow(
        /cannot read --probe.config-file .*auth_modules.m.password_file "\/nonexistent\/pw": ENOENT/,
      );
    } finally {
      dir.remove();
    }
  });
});

describe('flags', () => {
  const dir = tempDir('probe-flags');
  const file = join(dir.path, 'probe.yml');
  beforeAll(() => writeFileSync(file, 'allowed_targets: ["redis://127.0.0.1:*"]\n'));
  afterAll(() => dir.remove());

  test('--probe.config-file makes --target optional, with defaults for the caps', () => {
    const config = loadServerConfig(['--probe.config-file', file], {}) as ServerConfig;
    expect(config.target).toBeUndefined();
    expect(config.probe).toMatchObject({
      timeoutMs: 10000,
      maxConcurrent: 32,
      maxTargets: 100,
      idleTimeoutMs: 300000,
    });
  });

  test('every probe flag has an environment variable', () => {
    const config = loadServerConfig([], {
      DATASTORE_PROBE_CONFIG_FILE: file,
      DATASTORE_PROBE_TIMEOUT: '2s',
      DATASTORE_PROBE_MAX_CONCURRENT: '3',
      DATASTORE_PROBE_MAX_TARGETS: '4',
      DATASTORE_PROBE_IDLE_TIMEOUT: '1m',
    }) as ServerConfig;
    expect(config.probe).toMatchObject({
      timeoutMs: 2000,
      maxConcurrent: 3,
      maxTargets: 4,
      idleTimeoutMs: 60000,
    });
  });

  test('single-target mode is unchanged: --target required without a probe config', () => {
    expect(() => loadServerConfig([], {})).toThrow(/--target \(or DATASTORE_TARGET\) is required/);
    // loadConfig() (a Config always has a target) still requires it even with a probe config.
    expect(() => loadConfig(['--probe.config-file', file], {})).toThrow(/--target .* is required/);
    const both = loadConfig(['--target', 'redis://127.0.0.1:6379', '--probe.config-file', file], {});
    expect(typeof both !== 'string' && both.target.port === 6379 && both.probe !== undefined).toBe(true);
  });

  test.each([
    [['--probe.max-targets', '5'], /--probe.max-targets needs --probe.config-file/],
    [
      ['--probe.config-file', '/nonexistent.yml'],
      /cannot read --probe.config-file "\/nonexistent.yml": ENOENT/,
    ],
    [['--probe.config-file', 'FILE', '--probe.max-concurrent', '0'], /must be a whole number of at least 1/],
    [
      ['--probe.config-file', 'FILE', '--probe.idle-timeout', 'soon'],
      /--probe.idle-timeout "soon" is not a duration/,
    ],
    [
      ['--probe.config-file', 'FILE', '--target.password-file', '/x'],
      /--target.password-file needs --target/,
    ],
  ])('%j is a ConfigError', (args, message) => {
    expect(() =>
      loadServerConfig(
        args.map((a) => (a === 'FILE' ? file : a)),
        {},
      ),
    ).toThrow(message);
  });
});

describe('allowlist', () => {
  const list = TargetAllowlist.compile(
    [
      'redis://10.0.0.*:6379',
      'postgresql://db-*.example.net',
      'etcd://127.0.0.1:*',
      'redis://[::1]:7000',
      'kafka://*:9092',
    ],
    'test',
  );
  test.each([
    ['redis', '10.0.0.7', 6379, true],
    ['redis', '10.0.0.7', 6380, false],
    ['rediss', '10.0.0.7', 6379, false],
    ['redis', '10.0.1.7', 6379, false],
    // The host glob never spills into the port.
    ['redis', '10.0.0.7:6379', 1, false],
    ['postgresql', 'db-1.example.net', 5432, true],
    ['postgresql', 'db-1.example.net', 5433, false],
    ['postgresql', 'db-1.example.net.evil.org', 5432, false],
    ['etcd', '127.0.0.1', 2379, true],
    ['etcd', '127.0.0.2', 2379, false],
    ['redis', '[::1]', 7000, true],
    // A glob never crosses a '.': an IPv4 pattern cannot be satisfied by a DNS name...
    ['redis', '10.0.0.7.attacker.example', 6379, false],
    ['redis', '10.0.0.x', 6379, false],
    // ...and a label glob stays in its label.
    ['postgresql', 'db-1.eu.example.net', 5432, false],
    // A host that is only '*' allows every host (the operator said so).
    ['kafka', 'broker-1.eu.example.net', 9092, true],
    ['kafka', '10.1.2.3', 9092, true],
    ['kafka', '10.1.2.3', 9093, false],
  ])('%s://%s:%d -> %s', (scheme, host, port, allowed) => {
    expect(list.allows({ scheme, host, port })).toBe(allowed);
  });
});

describe('probe target rules', () => {
  // The CA file a module names is read when the target is parsed: it must exist.
  const caDir = tempDir('probe-rules');
  const caFile = join(caDir.path, 'ca.pem');
  writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n');
  afterAll(() => caDir.remove());
  const config = parseProbeConfig(
    [
      'allowed_targets: ["redis://127.0.0.1:*", "postgresql://db.example.net", "mysql://127.0.0.1:*"]',
      'auth_modules:',
      '  redis_tls: { user: mon, password_file: pw, tls: true }',
      `  pg: { user: mon, password_file: pw, tls: true, params: { sslrootcert: ${caFile} } }`,
      '  pg_missing_ca: { params: { sslmode: verify-ca, sslrootcert: /nonexistent/ca.pem } }',
      '  mysql_tls: { tls: true }',
    ].join('\n'),
    'probe.yml',
    () => 's3cret-pw',
  );
  const refused = (query: Record<string, unknown>): ProbeRequestError => {
    try {
      resolveProbeTarget(query, config);
    } catch (err) {
      if (err instanceof ProbeRequestError) return err;
      throw err;
    }
    throw new Error('not refused');
  };

  test.each([
    ['no target', {}, 400, /missing \?target=/],
    ['a repeated target', { target: ['redis://127.0.0.1:1', 'redis://127.0.0.1:2'] }, 400, /exactly once/],
    ['not a URL', { target: 'not a url' }, 400, /not a valid URL/],
    [
      'an unsupported scheme',
      { target: 'cassandra://127.0.0.1:9042' },
      400,
      /scheme "cassandra" is not supported/,
    ],
    [
      'URL parameters',
      { target: 'postgresql://db.example.net/x?host=/var/run/postgresql' },
      400,
      /URL parameters/,
    ],
    ['a fragment', { target: 'redis://127.0.0.1:6379#x' }, 400, /URL parameters or a fragment/],
    ['a user in the URL', { target: 'redis://admin@127.0.0.1:6379' }, 400, /must not contain credentials/],
    [
      'an unknown auth module',
      { target: 'redis://127.0.0.1:1', auth_module: 'nope' },
      400,
      /unknown auth_module "nope"/,
    ],
    [
      'a disallowed host',
      { target: 'redis://127.0.0.2:6379' },
      403,
      /redis:\/\/127.0.0.2:6379 is not allowed/,
    ],
    ['a disallowed default port', { target: 'postgresql://db.example.net:5433' }, 403, /not allowed/],
    [
      'TLS a driver lacks',
      { target: 'mysql://127.0.0.1:3306', auth_module: 'mysql_tls' },
      400,
      /mysql driver does not support/,
    ],
  ])('%s (%j) -> %i', (_name, query, status, message) => {
    const err = refused(query);
    expect(err.status).toBe(status);
    expect(err.message).toMatch(message);
  });

  test('a module whose CA file is missing: 400 before any connection', () => {
    const err = refused({ target: 'postgresql://db.example.net/app', auth_module: 'pg_missing_ca' });
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/cannot read sslrootcert "\/nonexistent\/ca.pem": ENOENT/);
  });

  test('a password in the target is refused without echoing it', () => {
    const err = refused({ target: 'redis://user:hunter2-pw@127.0.0.1:6379' });
    expect(err.status).toBe(400);
    expect(err.message).not.toContain('hunter2-pw');
  });

  test('the auth module supplies user, password, TLS and parameters; the pool key never holds the password', () => {
    const redis = resolveProbeTarget(
      { target: 'redis://127.0.0.1:6380/2', auth_module: 'redis_tls' },
      config,
    );
    expect(redis.target).toMatchObject({ scheme: 'rediss', host: '127.0.0.1', port: 6380, username: 'mon' });
    expect(redis.target.password).toBe('s3cret-pw');
    expect(redis.target.url.pathname).toBe('/2');
    expect(redis.key).not.toContain('s3cret-pw');
    expect(redis.target.redactedUrl).not.toContain('s3cret-pw');

    const pg = resolveProbeTarget({ target: 'postgresql://db.example.net/app', auth_module: 'pg' }, config);
    expect(pg.address).toEqual({ scheme: 'postgresql', host: 'db.example.net', port: 5432 });
    expect(pg.target.url.searchParams.get('sslmode')).toBe('verify-full');
    expect(pg.target.url.searchParams.get('sslrootcert')).toBe(caFile);

    const plain = resolveProbeTarget({ target: 'redis://127.0.0.1:6380' }, config);
    expect(plain.target).toMatchObject({ scheme: 'redis', username: undefined, password: undefined });
    // Same address, other credentials: another pooled connection.
    expect(plain.key).not.toBe(redis.key);
  });
});

describe('probe deadline', () => {
  test.each([
    [undefined, 10000, 10000],
    ['', 10000, 10000],
    ['junk', 10000, 10000],
    ['-1', 10000, 10000],
    ['5', 10000, 5000 - SCRAPE_TIMEOUT_MARGIN_MS],
    ['30', 10000, 10000],
    ['0.8', 10000, 400],
  ])('header %j with --probe.timeout %d ms -> %d ms', (header, timeoutMs, expected) => {
    expect(probeDeadlineMs(header, timeoutMs)).toBe(expected);
  });
});

describe('target pool bookkeeping', () => {
  /** Stand-in collectors: the pool only calls stop() on them. */
  function pool(maxTargets: number, idleTimeoutMs = 60000) {
    const stopped: string[] = [];
    const p = new TargetPool({
      maxTargets,
      idleTimeoutMs,
      createCollector: (t) => ({ stop: async () => void stopped.push(t.key) }) as unknown as Collector,
    });
    const target = (key: string) =>
      ({ key, target: {}, address: { scheme: 'redis', host: key, port: 1 } }) as never;
    return { p, stopped, target };
  }

  test('the least recently used idle target is evicted; busy ones never', () => {
    const { p, stopped, target } = pool(2);
    const a = p.acquire(target('a'));
    const b = p.acquire(target('b'));
    p.release(b);
    p.release(a);
    p.release(p.acquire(target('a'))); // a used again after b: b is now the least recently used
    p.release(p.acquire(target('c')));
    expect(stopped).toEqual(['b']);
    expect(p.evictions.lru).toBe(1);
    const c = p.acquire(target('c'));
    const a2 = p.acquire(target('a'));
    // Both pooled targets busy: a third is refused and nothing is evicted.
    expect(() => p.acquire(target('d'))).toThrow(PoolExhausted);
    expect(p.size).toBe(2);
    p.release(c);
    p.release(a2);
    void p.close();
  });

  test('idle targets are closed after the idle timeout; a busy one is not', async () => {
    const { p, stopped, target } = pool(10, 150);
    const a = p.acquire(target('a'));
    p.release(p.acquire(target('b')));
    await sleep(400);
    expect(stopped).toEqual(['b']);
    expect(p.evictions.idle).toBe(1);
    p.release(a);
    await waitFor('a closed when idle', () => stopped.includes('a'), 2000, 20);
    expect(p.size).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------
// Real servers
// ---------------------------------------------------------------------------------------------------

const PG_PASSWORD = `pg-${randomBytes(12).toString('hex')}`;
const REDIS_PASSWORD = `redis-${randomBytes(12).toString('hex')}`;
const URL_PASSWORD = `url-${randomBytes(12).toString('hex')}`;

interface ProbeExporter extends RunningServer {
  logs: string[];
  get(target: string, opts?: { authModule?: string; scrapeTimeout?: string }): Promise<request.Response>;
  /** GET /probe and parse it; expects 200. */
  probeSamples(target: string, authModule?: string): Promise<Sample[]>;
  metrics(): Promise<Sample[]>;
}

async function startProbeExporter(flags: string[]): Promise<ProbeExporter> {
  // --web.listen-address may be given several times (each is listened on): the default only when none is.
  const listen = flags.some((f) => f === '--web.listen-address' || f.startsWith('--web.listen-address='))
    ? []
    : ['--web.listen-address', '127.0.0.1:0'];
  const config = loadServerConfig([...listen, ...flags], {});
  if (typeof config === 'string') throw new Error(`unexpected ${config}`);
  const logs: string[] = [];
  const running = await startServer(
    config,
    createLogger('debug', 'logfmt', (l) => logs.push(l)),
    {
      processMetrics: false,
    },
  );
  const probe = (target: string, opts: { authModule?: string; scrapeTimeout?: string } = {}) => {
    const query: Record<string, string> = { target };
    if (opts.authModule) query.auth_module = opts.authModule;
    const req = request(running.server).get('/probe').query(query);
    return opts.scrapeTimeout ? req.set('X-Prometheus-Scrape-Timeout-Seconds', opts.scrapeTimeout) : req;
  };
  return {
    ...running,
    logs,
    get: async (target, opts) => await probe(target, opts),
    async probeSamples(target, authModule) {
      const res = await probe(target, { authModule });
      if (res.status !== 200) throw new Error(`probe ${target}: ${res.status} ${res.text}`);
      return parseExposition(res.text);
    },
    metrics: async () => parseExposition((await request(running.server).get('/metrics').expect(200)).text),
  };
}

/** Connections named by the exporter in CLIENT LIST. */
function exporterConnections(node: RedisNode): number {
  return node
    .cli('CLIENT', 'LIST')
    .split('\n')
    .filter((l) => /\bname=datastore-exporter\b/.test(l)).length;
}

function infoCalls(node: RedisNode): number {
  return Number(/calls=(\d+)/.exec(node.info('commandstats').get('cmdstat_info') ?? 'calls=0')![1]);
}

describe('one exporter probing real servers (no --target)', () => {
  let redisA: RedisNode;
  let redisB: RedisNode;
  let redisC: RedisNode;
  let pg: PgCluster;
  let deadPort: number;
  let exporter: ProbeExporter;
  let small: ProbeExporter;
  const dir = tempDir('probe-live');
  const configFile = join(dir.path, 'probe.yml');
  const IDLE_SECONDS = 2;

  beforeAll(async () => {
    const [a, b, c, pgPrimary, pgStandby] = await freePorts(5);
    deadPort = await freePort();
    [redisA, redisB, redisC, pg] = await Promise.all([
      startRedis(a!),
      startRedis(b!, ['--requirepass', REDIS_PASSWORD]),
      startRedis(c!),
      startPgCluster({
        primaryPort: pgPrimary!,
        standbys: [{ name: 'standby', port: pgStandby! }],
        setup: `CREATE ROLE dsx_monitor LOGIN PASSWORD '${PG_PASSWORD}'; GRANT pg_monitor TO dsx_monitor;`,
      }),
    ]);
    writeFileSync(join(dir.path, 'pg-password'), `${PG_PASSWORD}\n`);
    writeFileSync(join(dir.path, 'redis-password'), `${REDIS_PASSWORD}\n`);
    writeFileSync(
      configFile,
      [
        'allowed_targets:',
        ...[redisA, redisB, redisC].map((n) => `  - redis://127.0.0.1:${n.port}`),
        `  - redis://127.0.0.1:${deadPort}`,
        `  - postgresql://127.0.0.1:${pg.primary.port}`,
        `  - postgresql://127.0.0.1:${pg.standbys[0]!.port}`,
        'auth_modules:',
        '  pg:',
        '    user: dsx_monitor',
        `    password_file: ${join(dir.path, 'pg-password')}`,
        '  pg_monitor:',
        '    user: dsx_monitor',
        `    password_file: ${join(dir.path, 'pg-password')}`,
        '  redis_b:',
        `    password_file: ${join(dir.path, 'redis-password')}`,
      ].join('\n'),
    );
    exporter = await startProbeExporter([
      '--probe.config-file',
      configFile,
      '--probe.timeout',
      '8s',
      '--probe.idle-timeout',
      `${IDLE_SECONDS}s`,
    ]);
    small = await startProbeExporter([
      '--probe.config-file',
      configFile,
      '--probe.max-targets',
      '2',
      '--probe.max-concurrent',
      '1',
    ]);
  });

  afterAll(async () => {
    for (const n of [redisA, redisB, redisC]) n?.process.resume();
    await exporter?.stop();
    await small?.stop();
    await Promise.all([redisA?.stop(), redisB?.stop(), redisC?.stop(), pg?.stop()]);
    dir.remove();
  });

  const redisUrl = (n: RedisNode): string => `redis://127.0.0.1:${n.port}`;
  const pgUrl = (port: number): string => `postgresql://127.0.0.1:${port}/postgres`;

  test('two Redis nodes and a PostgreSQL pair, through one exporter, each in the metric contract', async () => {
    const a = await exporter.probeSamples(redisUrl(redisA));
    const b = await exporter.probeSamples(redisUrl(redisB), 'redis_b');
    const primary = await exporter.probeSamples(pgUrl(pg.primary.port), 'pg');
    const standby = await exporter.probeSamples(pgUrl(pg.standbys[0]!.port), 'pg');
    const systemId = pg.primary.psql('SELECT system_identifier FROM pg_control_system()');

    for (const [samples, node] of [
      [a, redisA],
      [b, redisB],
    ] as const) {
      expect(value(samples, 'datastore_up')).toBe(1);
      expect(
        value(samples, 'datastore_node_info', { datastore: 'redis', node_id: `${hostname()}:${node.port}` }),
      ).toBe(1);
      expect(roleOf(samples, 'default')).toBe('primary');
      expect(
        value(samples, 'datastore_version_info', { version: node.info('server').get('redis_version')! }),
      ).toBe(1);
    }
    expect(value(primary, 'datastore_up')).toBe(1);
    expect(value(standby, 'datastore_up')).toBe(1);
    expect(value(primary, 'datastore_node_info', { datastore: 'postgresql', cluster_id: systemId })).toBe(1);
    expect(value(standby, 'datastore_node_info', { datastore: 'postgresql', cluster_id: systemId })).toBe(1);
    expect(roleOf(primary, systemId)).toBe('primary');
    expect(roleOf(standby, systemId)).toBe('secondary');
    expect(find(standby, 'datastore_shard_replication_lag_seconds')).toHaveLength(1);
    expect(find(primary, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);

    // Each probe is about its own target only: one node_info, no exporter-wide series.
    for (const s of [a, b, primary, standby]) {
      expect(find(s, 'datastore_node_info')).toHaveLength(1);
      expect(find(s, 'datastore_exporter_probes_total')).toHaveLength(0);
    }
    // One pooled connection per target.
    expect(exporterConnections(redisA)).toBe(1);
    expect(exporterConnections(redisB)).toBe(1);
    expect(
      pg.primary.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'datastore-exporter'"),
    ).toBe('1');
  });

  test('/metrics has the probe self-metrics and no datastore_up (there is no --target)', async () => {
    const m = await exporter.metrics();
    expect(find(m, 'datastore_up')).toHaveLength(0);
    expect(value(m, 'datastore_exporter_probes_total', { result: 'up' })).toBeGreaterThanOrEqual(4);
    expect(value(m, 'datastore_exporter_probe_targets')).toBeGreaterThanOrEqual(4);
    expect(value(m, 'datastore_exporter_probes_in_flight')).toBe(0);
    expect(find(m, 'datastore_exporter_build_info')).toHaveLength(1);
    const ready = await request(exporter.server).get('/ready');
    expect(ready.status).toBe(200);
  });

  test('credentials come only from the auth module: without it the Redis with a password is down', async () => {
    const s = await exporter.probeSamples(redisUrl(redisB));
    expect(value(s, 'datastore_up')).toBe(0);
    for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
  });

  test('a disallowed target is 403; bad targets and unknown auth modules are 400; the exporter keeps working', async () => {
    const cases: [string, string | undefined, number][] = [
      ['redis://127.0.0.2:6379', undefined, 403],
      [`redis://127.0.0.1:${pg.primary.port}`, undefined, 403],
      [`postgresql://127.0.0.1:${redisA.port}`, 'pg', 403],
      ['not a url', undefined, 400],
      [`cassandra://127.0.0.1:${redisA.port}`, undefined, 400],
      [`${redisUrl(redisA)}?db=1`, undefined, 400],
      [redisUrl(redisA), 'no-such-module', 400],
    ];
    for (const [target, authModule, status] of cases) {
      const res = await exporter.get(target, { authModule });
      expect([target, res.status]).toEqual([target, status]);
      expect(res.type).toBe('text/plain');
      expect(res.text.trim().split('\n')).toHaveLength(1);
    }
    const missing = await request(exporter.server).get('/probe');
    expect(missing.status).toBe(400);
    const m = await exporter.metrics();
    expect(value(m, 'datastore_exporter_probes_total', { result: 'forbidden' })).toBe(3);
    expect(value(m, 'datastore_exporter_probes_total', { result: 'bad_request' })).toBe(5);
    expect(value(await exporter.probeSamples(redisUrl(redisA)), 'datastore_up')).toBe(1);
  });

  test('a password in ?target= is 400 and appears in no response and no log line', async () => {
    const target = `redis://:${URL_PASSWORD}@127.0.0.1:${redisB.port}`;
    const res = await exporter.get(target);
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/must not contain credentials/);
    expect(res.text).not.toContain(URL_PASSWORD);
    expect(exporter.logs.join('\n')).not.toContain(URL_PASSWORD);
    expect(exporter.logs.join('\n')).not.toContain(REDIS_PASSWORD);
    expect(exporter.logs.join('\n')).not.toContain(PG_PASSWORD);
  });

  test('a dead target answers 200 with datastore_up 0 and no model metrics', async () => {
    const res = await exporter.get(`redis://127.0.0.1:${deadPort}`);
    expect(res.status).toBe(200);
    const s = parseExposition(res.text);
    expect(value(s, 'datastore_up')).toBe(0);
    expect(value(s, 'datastore_exporter_collect_errors_total')).toBeGreaterThanOrEqual(1);
    for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
  });

  test('a target restarted between probes is up on the next probe (the broken pooled connection is replaced)', async () => {
    expect(value(await exporter.probeSamples(redisUrl(redisC)), 'datastore_up')).toBe(1);
    await redisC.process.kill();
    await redisC.restart();
    expect(value(await exporter.probeSamples(redisUrl(redisC)), 'datastore_up')).toBe(1);
    expect(exporterConnections(redisC)).toBe(1);
  });

  test('concurrent probes of one target share one collection (one INFO for all of them)', async () => {
    const N = 8;
    expect(value(await exporter.probeSamples(redisUrl(redisA)), 'datastore_up')).toBe(1); // warm connection
    const before = infoCalls(redisA);
    // Hold the server so that all probes are surely in flight together, then let it answer.
    redisA.process.pause();
    let responses: request.Response[];
    try {
      const pending = Array.from({ length: N }, () => exporter.get(redisUrl(redisA)));
      await waitFor(
        `${N} probes in flight`,
        async () => value(await exporter.metrics(), 'datastore_exporter_probes_in_flight') === N,
        5000,
        20,
      );
      redisA.process.resume();
      responses = await Promise.all(pending);
    } finally {
      redisA.process.resume();
    }
    for (const res of responses) {
      expect(res.status).toBe(200);
      expect(value(parseExposition(res.text), 'datastore_up')).toBe(1);
    }
    // +1 for the INFO commandstats of `before` itself (Redis counts a command after running it).
    expect(infoCalls(redisA) - before).toBe(2);
  });

  test('X-Prometheus-Scrape-Timeout-Seconds bounds a probe of a hung (SIGSTOPped) server', async () => {
    expect(value(await exporter.probeSamples(redisUrl(redisA)), 'datastore_up')).toBe(1);
    redisA.process.pause();
    let res: request.Response;
    const started = Date.now();
    try {
      res = await exporter.get(redisUrl(redisA), { scrapeTimeout: '1.5' });
    } finally {
      redisA.process.resume();
    }
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    const s = parseExposition(res.text);
    expect(value(s, 'datastore_up')).toBe(0);
    for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
    // The 1.5 s scrape timeout minus the margin, not --probe.timeout (8 s).
    expect(elapsed).toBeGreaterThanOrEqual(1000 - 50);
    expect(elapsed).toBeLessThan(4000);
    // Once the server answers again, so does the pooled connection.
    await waitFor(
      'redis A up again',
      async () => value(await exporter.probeSamples(redisUrl(redisA)), 'datastore_up') === 1,
      10000,
    );
  });

  test('an idle target is evicted: its connection is closed on the server', async () => {
    expect(value(await exporter.probeSamples(redisUrl(redisA)), 'datastore_up')).toBe(1);
    expect(exporterConnections(redisA)).toBe(1);
    await waitFor(
      'the idle connection closed',
      () => exporterConnections(redisA) === 0,
      IDLE_SECONDS * 1000 + 5000,
    );
    await waitFor(
      'pool empty',
      async () => value(await exporter.metrics(), 'datastore_exporter_probe_targets') === 0,
      5000,
    );
    const m = await exporter.metrics();
    expect(
      value(m, 'datastore_exporter_probe_target_evictions_total', { reason: 'idle' }),
    ).toBeGreaterThanOrEqual(1);
    // The next probe simply connects again.
    expect(value(await exporter.probeSamples(redisUrl(redisA)), 'datastore_up')).toBe(1);
    expect(exporterConnections(redisA)).toBe(1);
  });

  test('with --target too: /metrics is about the target, /probe about others', async () => {
    const combined = await startProbeExporter([
      '--target',
      redisUrl(redisC),
      '--probe.config-file',
      configFile,
    ]);
    try {
      await waitFor('the --target collected', () => combined.collector?.state.up, 10000, 20);
      const m = await combined.metrics();
      expect(value(m, 'datastore_up')).toBe(1);
      expect(value(m, 'datastore_node_info', { node_id: `${hostname()}:${redisC.port}` })).toBe(1);
      expect(value(m, 'datastore_exporter_probes_total', { result: 'up' })).toBe(0);
      const probed = await combined.probeSamples(redisUrl(redisB), 'redis_b');
      expect(value(probed, 'datastore_node_info', { node_id: `${hostname()}:${redisB.port}` })).toBe(1);
      expect(find(probed, 'datastore_node_info')).toHaveLength(1);
      expect(value(await combined.metrics(), 'datastore_exporter_probes_total', { result: 'up' })).toBe(1);
    } finally {
      await combined.stop();
    }
  });

  test('--probe.max-targets: a third target closes the least recently used one', async () => {
    // The first exporter's own connection to A idles out first, so A's connections are only ours.
    await waitFor('no other exporter connection to A', () => exporterConnections(redisA) === 0, 10000);
    expect(value(await small.probeSamples(redisUrl(redisA)), 'datastore_up')).toBe(1);
    expect(value(await small.probeSamples(redisUrl(redisC)), 'datastore_up')).toBe(1);
    expect(exporterConnections(redisA)).toBe(1);
    expect(value(await small.probeSamples(redisUrl(redisB), 'redis_b'), 'datastore_up')).toBe(1);
    await waitFor('the LRU target (A) closed', () => exporterConnections(redisA) === 0, 5000);
    const m = await small.metrics();
    expect(value(m, 'datastore_exporter_probe_targets')).toBe(2);
    expect(value(m, 'datastore_exporter_probe_target_evictions_total', { reason: 'lru' })).toBe(1);
  });

  test('--probe.max-concurrent: a probe beyond the cap is 503 while another runs', async () => {
    redisC.process.pause();
    try {
      const hung = small.get(redisUrl(redisC), { scrapeTimeout: '3' });
      await waitFor(
        'one probe in flight',
        async () => value(await small.metrics(), 'datastore_exporter_probes_in_flight') === 1,
        5000,
        20,
      );
      const refused = await small.get(redisUrl(redisA));
      expect(refused.status).toBe(503);
      expect(refused.text).toMatch(/--probe.max-concurrent/);
      const res = await hung;
      expect(value(parseExposition(res.text), 'datastore_up')).toBe(0);
    } finally {
      redisC.process.resume();
    }
    expect(value(await small.metrics(), 'datastore_exporter_probes_total', { result: 'overloaded' })).toBe(1);
  });
  test('a real Prometheus scrapes through the relabelling of docs/probe.md', async () => {
    // The documented scrape_configs, with the example addresses replaced by this test's own.
    const doc = readFileSync(join(__dirname, '..', 'docs', 'probe.md'), 'utf8');
    const block = /<!-- probe-scrape-config -->\s*```yaml\n([\s\S]*?)```/.exec(doc);
    expect(block).not.toBeNull();
    const documented = parseYaml(block![1]!) as {
      scrape_configs: {
        job_name: string;
        scrape_interval?: string;
        scrape_timeout?: string;
        static_configs: { targets: string[] }[];
        relabel_configs?: { replacement?: string }[];
      }[];
    };
    const viaProm = await startProbeExporter(['--probe.config-file', configFile]);
    const address = `127.0.0.1:${viaProm.port}`;
    const targets: Record<string, string[]> = {
      redis: [redisUrl(redisA), redisUrl(redisC), `redis://127.0.0.1:${deadPort}`],
      postgresql: [pgUrl(pg.primary.port), pgUrl(pg.standbys[0]!.port)],
      'datastore-exporter': [address],
    };
    for (const job of documented.scrape_configs) {
      expect(Object.keys(targets)).toContain(job.job_name);
      delete job.scrape_interval;
      delete job.scrape_timeout;
      job.static_configs = [{ targets: targets[job.job_name]! }];
      for (const rule of job.relabel_configs ?? []) {
        if (rule.replacement === 'datastore-exporter.monitoring:9860') rule.replacement = address;
      }
    }
    const promDir = tempDir('probe-prometheus');
    const promPort = await freePort();
    const promConfig = join(promDir.path, 'prometheus.yml');
    writeFileSync(
      promConfig,
      stringifyYaml({ global: { scrape_interval: '1s', scrape_timeout: '900ms' }, ...documented }),
    );
    const prometheus = startProcess(PROMETHEUS, [
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${join(promDir.path, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ]);
    const query = async (
      expr: string,
    ): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      return body.data.result;
    };
    try {
      const byInstance = async (expr: string): Promise<Record<string, string>> =>
        Object.fromEntries((await query(expr)).map((r) => [r.metric.instance!, r.value[1]]));
      await waitFor(
        `Prometheus has datastore_up for all 5 probed targets (output: ${prometheus.output().slice(-500)})`,
        async () => {
          if (prometheus.exited()) throw new Error(`prometheus exited: ${prometheus.output().slice(-1000)}`);
          return Object.keys(await byInstance('datastore_up')).length === 5;
        },
        30000,
        250,
      );
      expect(await byInstance('datastore_up{job="redis"}')).toEqual({
        [redisUrl(redisA)]: '1',
        [redisUrl(redisC)]: '1',
        [`redis://127.0.0.1:${deadPort}`]: '0',
      });
      expect(await byInstance('datastore_up{job="postgresql"}')).toEqual({
        [pgUrl(pg.primary.port)]: '1',
        [pgUrl(pg.standbys[0]!.port)]: '1',
      });
      // Every scrape succeeded, the dead target's included (it is an answer, not an error).
      expect(Object.values(await byInstance('up')).every((v) => v === '1')).toBe(true);
      expect(await byInstance('datastore_shard_role{job="postgresql"} == 1')).toEqual({
        [pgUrl(pg.primary.port)]: '1',
        [pgUrl(pg.standbys[0]!.port)]: '1',
      });
      const roles = await query('datastore_shard_role{job="postgresql"} == 1');
      expect(Object.fromEntries(roles.map((r) => [r.metric.instance!, r.metric.role]))).toEqual({
        [pgUrl(pg.primary.port)]: 'primary',
        [pgUrl(pg.standbys[0]!.port)]: 'secondary',
      });
      // The exporter's own job (the third of the config): its probe counters, once scraped after probes.
      await waitFor(
        'the exporter job scraped after some probes',
        async () => Number((await query('datastore_exporter_probes_total{result="up"}'))[0]?.value[1]) > 0,
        10000,
        250,
      );
    } finally {
      await prometheus.stop();
      await viaProm.stop();
      promDir.remove();
    }
  });
});
