/**
 * /probe cannot be turned into a weapon:
 *  - the allowlist decides on exactly the host the driver dials (no %-escape or comma in a host, for
 *    every driver; case-insensitive for every scheme);
 *  - spellings of one target are one pooled connection, and connections per datastore address are
 *    capped whatever the path (a real PostgreSQL: 100 spellings of its database, 100 databases);
 *  - the caps bound real connections, not requests: probes that stop waiting early (scrape timeout
 *    0.1 s) against a hung (SIGSTOPped) real Redis leave at most --probe.max-concurrent connections;
 *  - an auth module may name the targets it may be used for: a listener on another allowed port
 *    never receives its password.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type { Collector } from '../src/core/collector';
import { ConfigError } from '../src/core/errors';
import { loadServerConfig, type ServerConfig } from '../src/config/flags';
import { startServer, type RunningServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { DRIVERS } from '../src/drivers/registry';
import { parseProbeConfig } from '../src/probe/config';
import { PoolExhausted, TargetPool } from '../src/probe/pool';
import { ProbeRequestError, resolveProbeTarget, type ProbeTarget } from '../src/probe/target';
import { parseExposition, value } from './support/metrics-text';
import { startPgCluster, type PgCluster } from './support/postgres';
import { freePort, freePorts, sleep, tempDir, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';

const SCHEMES = DRIVERS.flatMap((d) => d.schemes);

function refusal(fn: () => unknown): ProbeRequestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProbeRequestError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('the allowlist matches exactly the host the driver dials', () => {
  const config = parseProbeConfig(
    `allowed_targets: [${SCHEMES.map((s) => `"${s}://mongo-*:*", "${s}://db-*.example.net:*"`).join(', ')}]\n` +
      'auth_modules: { with_user: { user: mon } }',
    'probe.yml',
  );
  // The RabbitMQ driver needs a management user; the others take none to be probed.
  const moduleFor = (scheme: string): string | undefined => (scheme === 'rabbitmq' ? 'with_user' : undefined);

  test.each(SCHEMES)('%s: a %%-escaped or comma-separated host is refused before matching', (scheme) => {
    // Before: `mongo-x%2Eattacker%2Eexample` matched mongo-* as text, then MongoDB's parser decoded
    // it and connected to mongo-x.attacker.example.
    for (const host of ['mongo-x%2Eattacker%2Eexample', 'mongo-x%2eevil', 'mongo-a,evil', 'mongo-%41']) {
      const err = refusal(() => resolveProbeTarget({ target: `${scheme}://${host}:1234` }, config));
      expect([scheme, host, err.status, err.message]).toEqual([
        scheme,
        host,
        400,
        expect.stringMatching(/must be a DNS name or an IP address, without %-escapes/),
      ]);
    }
  });

  test.each(SCHEMES)(
    '%s: host matching is case-insensitive, and the driver dials the lower-cased host',
    (scheme) => {
      // Before: redis:// (a non-special scheme) kept the case, so REDIS-1 did not match redis-*.
      const auth_module = moduleFor(scheme);
      const t = resolveProbeTarget({ target: `${scheme}://DB-1.Example.NET:1234`, auth_module }, config);
      expect(t.address.host).toBe('db-1.example.net');
      expect(t.target.host).toBe('db-1.example.net');
      expect(resolveProbeTarget({ target: `${scheme}://MONGO-7:1`, auth_module }, config).target.host).toBe(
        'mongo-7',
      );
    },
  );

  test("MongoDB's own URL parser sees the same single host the allowlist matched", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ConnectionString = require('mongodb-connection-string-url').default as new (url: string) => {
      hosts: string[];
    };
    const t = resolveProbeTarget({ target: 'mongodb://MONGO-1:27017/admin' }, config);
    expect(new ConnectionString(t.target.url.href).hosts).toEqual(['mongo-1:27017']);
  });
});

describe('pool keys: spellings of one target are one pooled connection', () => {
  const config = parseProbeConfig(
    'allowed_targets: ["postgresql://127.0.0.1:*", "redis://127.0.0.1:*"]\nauth_modules: { m: {} }',
    'probe.yml',
  );
  const key = (target: string, module?: string): string =>
    resolveProbeTarget({ target, auth_module: module }, config).key;

  test('100 spellings of /postgres, with and without the default port, are one key', () => {
    const spellings = new Set<string>();
    const word = 'postgres';
    for (let mask = 0; mask < 100; mask++) {
      const path = [...word]
        .map((c, i) => ((mask >> i) & 1 ? `%${c.charCodeAt(0).toString(16)}` : c))
        .join('');
      spellings.add(key(`postgresql://127.0.0.1${mask % 2 ? ':5432' : ''}/${path}`));
    }
    expect(spellings.size).toBe(1);
    // Before: each spelling was its own pooled session.
    expect([...spellings][0]).toContain('postgresql://127.0.0.1:5432/postgres');
    // Different databases and different modules stay different targets.
    expect(key('postgresql://127.0.0.1/other')).not.toBe(key('postgresql://127.0.0.1/postgres'));
    expect(key('postgresql://127.0.0.1/postgres', 'm')).not.toBe(key('postgresql://127.0.0.1/postgres'));
  });

  test('a malformed escape in the path is a 400', () => {
    expect(refusal(() => key('postgresql://127.0.0.1/%E0%A4')).status).toBe(400);
  });
});

describe('auth modules name the targets they may be used for', () => {
  const dir = tempDir('probe-modules');
  afterAll(() => dir.remove());
  const pw = join(dir.path, 'pw');
  writeFileSync(pw, 'module-secret\n');

  test('a module is refused (403) for targets outside its own allowed_targets', () => {
    const config = parseProbeConfig(
      [
        'allowed_targets: ["redis://127.0.0.1:*"]',
        'auth_modules:',
        `  redis_pw: { password_file: ${pw}, allowed_targets: ["redis://127.0.0.1:6379"] }`,
        '  open: {}',
      ].join('\n'),
      'probe.yml',
    );
    expect(
      resolveProbeTarget({ target: 'redis://127.0.0.1:6379', auth_module: 'redis_pw' }, config).target
        .password,
    ).toBe('module-secret');
    const err = refusal(() =>
      resolveProbeTarget({ target: 'redis://127.0.0.1:6380', auth_module: 'redis_pw' }, config),
    );
    expect(err.status).toBe(403);
    expect(err.message).toMatch(/auth_module "redis_pw" may not be used for target redis:\/\/127.0.0.1:6380/);
    // Without the module (or with one that names no targets), the top-level list decides.
    expect(
      resolveProbeTarget({ target: 'redis://127.0.0.1:6380', auth_module: 'open' }, config).target.password,
    ).toBeUndefined();
  });

  test.each([
    [
      'tls for a driver without TLS',
      '{ tls: true, allowed_targets: ["mysql://h:3306"] }',
      /used with mysql:\/\/: auth_module "m" asks for TLS, which the mysql driver does not support/,
    ],
    [
      'a bad sslmode',
      '{ params: { sslmode: bogus }, allowed_targets: ["postgresql://h"] }',
      /used with postgresql:\/\/: sslmode "bogus" is not one of/,
    ],
    [
      'a missing CA file',
      '{ params: { cacert: /nonexistent/ca.pem }, tls: true, allowed_targets: ["etcd://h"] }',
      /used with etcd:\/\/: cannot read cacert file "\/nonexistent\/ca.pem": ENOENT/,
    ],
    [
      'a bad pattern',
      '{ allowed_targets: ["redis://h:port"] }',
      /auth_modules.m: allowed_targets entry "redis:\/\/h:port" is not scheme/,
    ],
    [
      'not a list',
      '{ allowed_targets: "redis://h" }',
      /auth_modules.m.allowed_targets must be a list of strings/,
    ],
  ])('checked at start-up: %s', (_name, module, message) => {
    expect(() => parseProbeConfig(`auth_modules: { m: ${module} }`, 'probe.yml')).toThrow(ConfigError);
    expect(() => parseProbeConfig(`auth_modules: { m: ${module} }`, 'probe.yml')).toThrow(message);
  });
});

describe('pool caps per datastore address', () => {
  const target = (host: string, path: string): ProbeTarget =>
    ({
      key: `${host}${path}`,
      address: { scheme: 'postgresql', host, port: 5432 },
      target: { redactedUrl: `postgresql://${host}:5432${path}` },
    }) as unknown as ProbeTarget;
  const collector = (collecting = false) =>
    ({ stop: async () => undefined, collecting }) as unknown as Collector;

  test("a new path beyond the per-host cap replaces that host's least recently used idle target", () => {
    const pool = new TargetPool({
      maxTargets: 100,
      maxPerHost: 2,
      idleTimeoutMs: 60000,
      createCollector: () => collector(),
    });
    for (const path of ['/a', '/b']) pool.release(pool.acquire(target('db-1', path)));
    pool.release(pool.acquire(target('db-2', '/a')));
    pool.release(pool.acquire(target('db-1', '/c')));
    expect([pool.has('db-1/a'), pool.has('db-1/b'), pool.has('db-1/c'), pool.has('db-2/a')]).toEqual([
      false,
      true,
      true,
      true,
    ]);
    expect(pool.evictions.lru).toBe(1);
  });

  test('targets whose collection still runs are not idle: a new one is refused, not a new connection', () => {
    const running = collector(true);
    const pool = new TargetPool({
      maxTargets: 100,
      maxPerHost: 1,
      idleTimeoutMs: 60000,
      createCollector: () => running,
    });
    // The probe gave up (released) but its collection runs on.
    pool.release(pool.acquire(target('db-1', '/a')));
    expect(() => pool.acquire(target('db-1', '/b'))).toThrow(PoolExhausted);
    expect(() => pool.acquire(target('db-1', '/b'))).toThrow(
      /all 1 connections to db-1:5432 \(--probe.max-connections-per-host\)/,
    );
  });
});

/** Established TCP connections from this process's side to `port` (/proc/net/tcp, state 01). */
function connectionsTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[2]!.endsWith(`:${hexPort}`) && f[3] === '01') n++;
    }
  }
  return n;
}

async function startProbeServer(
  configText: string,
  flags: string[],
): Promise<{ server: RunningServer; dir: ReturnType<typeof tempDir> }> {
  const dir = tempDir('probe-hard');
  const file = join(dir.path, 'probe.yml');
  writeFileSync(file, configText);
  const config = loadServerConfig(
    ['--web.listen-address', '127.0.0.1:0', '--probe.config-file', file, ...flags],
    {},
  ) as ServerConfig;
  const server = await startServer(
    config,
    createLogger('error', 'logfmt', () => undefined),
    { processMetrics: false },
  );
  return { server, dir };
}

describe('a real PostgreSQL: spellings and databases cannot use up its connections', () => {
  let pg: PgCluster;
  let probe: Awaited<ReturnType<typeof startProbeServer>>;
  const dir = tempDir('probe-pg');

  beforeAll(async () => {
    const [port] = await freePorts(1);
    pg = await startPgCluster({
      primaryPort: port!,
      standbys: [],
      setup: "CREATE ROLE dsx_monitor LOGIN PASSWORD 'pg-probe-pw'; GRANT pg_monitor TO dsx_monitor;",
    });
    for (let i = 0; i < 20; i++) pg.primary.psql(`CREATE DATABASE db${i}`);
    writeFileSync(join(dir.path, 'pw'), 'pg-probe-pw\n');
    probe = await startProbeServer(
      [
        `allowed_targets: ["postgresql://127.0.0.1:${pg.primary.port}"]`,
        `auth_modules: { pg: { user: dsx_monitor, password_file: ${join(dir.path, 'pw')} } }`,
      ].join('\n'),
      ['--probe.max-targets', '200', '--probe.max-concurrent', '200', '--probe.timeout', '5s'],
    );
  }, 120000);
  afterAll(async () => {
    await probe?.server.stop();
    probe?.dir.remove();
    await pg?.stop();
    dir.remove();
  });

  const sessions = (): number =>
    Number(
      pg.primary.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'datastore-exporter'"),
    );

  test('100 spellings of one database: one pooled session; 20 databases: at most 4 sessions', async () => {
    const base = `postgresql://127.0.0.1:${pg.primary.port}`;
    const word = 'postgres';
    const paths = Array.from({ length: 100 }, (_, mask) =>
      [...word].map((c, i) => ((mask >> i) & 1 ? `%${c.charCodeAt(0).toString(16)}` : c)).join(''),
    );
    let peak = 0;
    for (const path of paths) {
      const res = await request(probe.server.server)
        .get('/probe')
        .query({ target: `${base}/${path}`, auth_module: 'pg' });
      expect([path, res.status, value(parseExposition(res.text), 'datastore_up')]).toEqual([path, 200, 1]);
      peak = Math.max(peak, sessions());
    }
    // Before: 100 pooled sessions, PostgreSQL's max_connections: everyone else refused.
    expect(peak).toBe(1);
    expect(probe.server.probe!.pool.size).toBe(1);

    // 20 other databases, 5 rounds of 20 probes at once: the pool keeps at most
    // --probe.max-connections-per-host (4) to this address, whatever the database.
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          request(probe.server.server)
            .get('/probe')
            .query({ target: `${base}/db${i}`, auth_module: 'pg' }),
        ),
      );
      statuses.push(...answers.map((a) => a.status));
      peak = Math.max(peak, sessions());
    }
    console.log(
      `20 databases of one PostgreSQL, 100 probes: ${statuses.filter((s) => s === 200).length} x 200, ` +
        `${statuses.filter((s) => s === 503).length} x 503; peak exporter sessions ${peak}`,
    );
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(peak).toBeLessThanOrEqual(4);
    expect(probe.server.probe!.pool.size).toBeLessThanOrEqual(4);
  }, 120000);
});

describe('a hung real Redis: probes that give up early leave no pile of connections', () => {
  let redis: RedisNode;
  let probe: Awaited<ReturnType<typeof startProbeServer>>;

  beforeAll(async () => {
    redis = await startRedis(await freePort());
    const modules = Array.from({ length: 20 }, (_, i) => `  m${i}: {}`);
    probe = await startProbeServer(
      [`allowed_targets: ["redis://127.0.0.1:${redis.port}"]`, 'auth_modules:', ...modules].join('\n'),
      [
        '--probe.max-concurrent',
        '4',
        '--probe.max-targets',
        '20',
        '--probe.max-connections-per-host',
        '20',
        '--probe.timeout',
        '3s',
      ],
    );
  });
  afterAll(async () => {
    redis?.process.resume();
    await probe?.server.stop();
    probe?.dir.remove();
    await redis?.stop();
  });

  test('300 probes with X-Prometheus-Scrape-Timeout-Seconds: 0.1 to 16 databases x 20 modules: at most 4 connections', async () => {
    redis.process.pause();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, connectionsTo(redis.port))), 10);
    const statuses: number[] = [];
    const started = Date.now();
    for (let round = 0; round < 30; round++) {
      const batch = Array.from({ length: 10 }, (_, i) => {
        const n = round * 10 + i;
        return request(probe.server.server)
          .get('/probe')
          .set('X-Prometheus-Scrape-Timeout-Seconds', '0.1')
          .query({ target: `redis://127.0.0.1:${redis.port}/${n % 16}`, auth_module: `m${n % 20}` })
          .then((r) => statuses.push(r.status));
      });
      await Promise.all(batch);
    }
    // Their collections run on up to --probe.timeout (3 s): keep sampling through it.
    await sleep(3500);
    clearInterval(sampler);
    const up = statuses.filter((s) => s === 200).length;
    console.log(
      `300 early-returning probes of a hung Redis in ${Date.now() - started} ms: ${up} x 200 (datastore_up 0), ` +
        `${statuses.filter((s) => s === 503).length} x 503; peak connections to it ${peak}`,
    );
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    // Before: 295 simultaneous connections with caps 4 (concurrent) and 20 (targets).
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(4);
    redis.process.resume();
    await waitFor('connections closed or reusable', () => connectionsTo(redis.port) <= 20);
  }, 120000);
});

describe("an auth module's password goes only to its own targets", () => {
  let redis: RedisNode;
  let impostor: Server;
  let impostorPort: number;
  const received: string[] = [];
  let probe: Awaited<ReturnType<typeof startProbeServer>>;
  const dir = tempDir('probe-impostor');

  beforeAll(async () => {
    redis = await startRedis(await freePort(), ['--requirepass', 'redis-module-pw']);
    impostor = createServer((sock: Socket) => {
      sock.on('data', (d) => received.push(d.toString('latin1')));
      sock.on('error', () => undefined);
    });
    impostorPort = await freePort();
    await new Promise<void>((resolve) => impostor.listen(impostorPort, '127.0.0.1', resolve));
    writeFileSync(join(dir.path, 'pw'), 'redis-module-pw\n');
    probe = await startProbeServer(
      [
        // Both ports are allowed targets, as a broad pattern would allow them.
        'allowed_targets: ["redis://127.0.0.1:*"]',
        'auth_modules:',
        `  redis_pw: { password_file: ${join(dir.path, 'pw')}, allowed_targets: ["redis://127.0.0.1:${redis.port}"] }`,
      ].join('\n'),
      ['--probe.timeout', '1s'],
    );
  });
  afterAll(async () => {
    await probe?.server.stop();
    probe?.dir.remove();
    impostor?.close();
    await redis?.stop();
    dir.remove();
  });

  test('the real Redis is probed with it; a listener on another allowed port gets a 403 and no byte', async () => {
    const good = await request(probe.server.server)
      .get('/probe')
      .query({ target: `redis://127.0.0.1:${redis.port}`, auth_module: 'redis_pw' });
    expect(value(parseExposition(good.text), 'datastore_up')).toBe(1);
    const bad = await request(probe.server.server)
      .get('/probe')
      .query({ target: `redis://127.0.0.1:${impostorPort}`, auth_module: 'redis_pw' });
    expect(bad.status).toBe(403);
    await sleep(200);
    // Before: the listener received `AUTH redis-module-pw` in clear.
    expect(received.join('')).toBe('');
  });
});
