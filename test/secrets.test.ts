/**
 * Passwords never leak: for each datastore that runs here (Redis with requirepass, PostgreSQL with
 * scram-sha-256, MariaDB), every way of giving a password (in the URL, --target.password-file,
 * --target.file, a /probe auth module's password_file) and every path (success, wrong password,
 * unreachable host, a malformed URL), this scans everything the exporter says: every log line (debug
 * level), each collection error, /metrics, the Replicante JSON API, the landing page, /probe answers,
 * and the real bin's stdout/stderr. The password must appear in none of them, neither raw nor
 * percent-encoded.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { loadServerConfig, type ServerConfig } from '../src/config/flags';
import { startServer, type RunningServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { redactUrl } from '../src/core/target';
import {
  EXPORTER_GRANT,
  EXPORTER_PASSWORD,
  EXPORTER_USER,
  startMariadb,
  type MariadbNode,
} from './support/mariadb';
import { parseExposition, value } from './support/metrics-text';
import { startPgCluster, type PgCluster } from './support/postgres';
import { freePort, freePorts, tempDir, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const REDIS_PASSWORD = `redis-pw-${randomBytes(9).toString('hex')}`;
const PG_PASSWORD = `pg-pw-${randomBytes(9).toString('hex')}`;
// Characters that URL encoding changes, so both spellings are searched for.
const WRONG_PASSWORD = `wrong pw/${randomBytes(9).toString('hex')}@:`;

/** Every spelling of a secret that could end up in output. */
function spellings(secret: string): string[] {
  return [...new Set([secret, encodeURIComponent(secret), encodeURI(secret)])];
}

function expectNoSecret(what: string, text: string, secrets: string[]): void {
  for (const secret of secrets) {
    for (const s of spellings(secret)) {
      if (text.includes(s)) throw new Error(`${what} contains a password (${JSON.stringify(s)}):\n${text}`);
    }
  }
}

interface Datastore {
  name: string;
  password: string;
  /** The target URL with `password` (or none) in it. */
  url(password?: string): string;
  /** The same datastore on a port where nothing listens. */
  deadUrl(password?: string): string;
  passwordFile: string;
  user?: string;
}

describe('no password in any output', () => {
  const dir = tempDir('secrets');
  let redis: RedisNode;
  let pg: PgCluster;
  let maria: MariadbNode;
  let deadPort: number;
  const stores: Datastore[] = [];
  const allSecrets = [REDIS_PASSWORD, PG_PASSWORD, EXPORTER_PASSWORD, WRONG_PASSWORD];
  const servers: RunningServer[] = [];

  const secretFile = (name: string, text: string): string => {
    const path = join(dir.path, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };

  beforeAll(async () => {
    const [redisPort, pgPort, mariaPort, dead] = await freePorts(4);
    deadPort = dead!;
    [redis, pg, maria] = await Promise.all([
      startRedis(redisPort!, ['--requirepass', REDIS_PASSWORD]),
      startPgCluster({
        primaryPort: pgPort!,
        standbys: [],
        setup: `CREATE ROLE dsx_monitor LOGIN PASSWORD '${PG_PASSWORD}'; GRANT pg_monitor TO dsx_monitor;`,
      }),
      startMariadb(mariaPort!, 1),
    ]);
    maria.sql(
      `CREATE USER '${EXPORTER_USER}'@'127.0.0.1' IDENTIFIED BY '${EXPORTER_PASSWORD}'; ` +
        `GRANT ${EXPORTER_GRANT} ON *.* TO '${EXPORTER_USER}'@'127.0.0.1'`,
    );
    const pw = (p: string | undefined): string => (p === undefined ? '' : `:${encodeURIComponent(p)}`);
    stores.push(
      {
        name: 'redis',
        password: REDIS_PASSWORD,
        url: (p) => `redis://${p === undefined ? '' : pw(p) + '@'}127.0.0.1:${redis.port}`,
        deadUrl: (p) => `redis://${p === undefined ? '' : pw(p) + '@'}127.0.0.1:${deadPort}`,
        passwordFile: secretFile('redis-pw', `${REDIS_PASSWORD}\n`),
      },
      {
        name: 'postgresql',
        password: PG_PASSWORD,
        user: 'dsx_monitor',
        url: (p) => `postgresql://dsx_monitor${pw(p)}@127.0.0.1:${pg.primary.port}/postgres`,
        deadUrl: (p) => `postgresql://dsx_monitor${pw(p)}@127.0.0.1:${deadPort}/postgres`,
        passwordFile: secretFile('pg-pw', `${PG_PASSWORD}\n`),
      },
      {
        name: 'mariadb',
        password: EXPORTER_PASSWORD,
        user: EXPORTER_USER,
        url: (p) => `mariadb://${EXPORTER_USER}${pw(p)}@127.0.0.1:${maria.port}`,
        deadUrl: (p) => `mariadb://${EXPORTER_USER}${pw(p)}@127.0.0.1:${deadPort}`,
        passwordFile: maria.passwordFile,
      },
    );
  }, 120000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all([redis?.stop(), pg?.stop(), maria?.stop()]);
    dir.remove();
  });

  /** Starts an in-process exporter (debug logs captured), lets it collect, scans all it says. */
  async function scanExporter(
    flags: string[],
    expectUp: boolean,
  ): Promise<{ logs: string[]; metrics: string; server: RunningServer }> {
    const config = loadServerConfig(
      [
        '--web.listen-address',
        '127.0.0.1:0',
        '--collect.interval',
        '1s',
        '--collect.timeout',
        '800ms',
        ...flags,
      ],
      {},
    ) as ServerConfig;
    const logs: string[] = [];
    const server = await startServer(
      config,
      createLogger('debug', 'logfmt', (l) => logs.push(l)),
      {
        processMetrics: false,
      },
    );
    servers.push(server);
    const collector = server.collector!;
    if (expectUp) {
      await waitFor(`up (${collector.state.lastError ?? ''})`, () => collector.state.up, 15000, 20);
    } else {
      // Two failed collections: the first connect and a retry (different code paths log differently).
      await waitFor('two failed collections', () => collector.state.errorsTotal >= 2, 15000, 20);
    }
    const answers: string[] = [];
    for (const path of [
      '/metrics',
      '/',
      '/api/unstable/info/agent',
      '/api/unstable/info/datastore',
      '/api/unstable/shards',
    ]) {
      const res = await request(server.server).get(path);
      answers.push(`${path} ${res.status}\n${JSON.stringify(res.headers)}\n${res.text}`);
    }
    const metrics = (await request(server.server).get('/metrics')).text;
    expect(value(parseExposition(metrics), 'datastore_up')).toBe(expectUp ? 1 : 0);
    expectNoSecret('logs', logs.join('\n'), allSecrets);
    expectNoSecret('the last collection error', collector.state.lastError ?? '', allSecrets);
    expectNoSecret('HTTP answers', answers.join('\n'), allSecrets);
    return { logs, metrics, server };
  }

  test.each(['redis', 'postgresql', 'mariadb'])('%s: password in the URL, up', async (name) => {
    const s = stores.find((d) => d.name === name)!;
    const { logs } = await scanExporter(['--target', s.url(s.password)], true);
    // The URL is logged, redacted.
    expect(logs.join('\n')).toMatch(/REDACTED@127\.0\.0\.1/);
  });

  test.each(['redis', 'postgresql', 'mariadb'])(
    '%s: password from --target.password-file, up',
    async (name) => {
      const s = stores.find((d) => d.name === name)!;
      await scanExporter(['--target', s.url(), '--target.password-file', s.passwordFile], true);
    },
  );

  test.each(['redis', 'postgresql', 'mariadb'])('%s: whole URL from --target.file, up', async (name) => {
    const s = stores.find((d) => d.name === name)!;
    const file = secretFile(`${name}-target-url`, `${s.url(s.password)}\n`);
    await scanExporter(['--target.file', file], true);
  });

  test.each(['redis', 'postgresql', 'mariadb'])(
    '%s: wrong password in the URL: down, the server says why, the password nowhere',
    async (name) => {
      const s = stores.find((d) => d.name === name)!;
      const { logs } = await scanExporter(['--target', s.url(WRONG_PASSWORD)], false);
      expect(logs.join('\n')).toMatch(/WRONGPASS|password authentication failed|Access denied/);
    },
  );

  test.each(['redis', 'postgresql', 'mariadb'])(
    '%s: wrong password from a file: down, nowhere',
    async (name) => {
      const s = stores.find((d) => d.name === name)!;
      const file = secretFile(`${name}-wrong`, WRONG_PASSWORD);
      await scanExporter(['--target', s.url(), '--target.password-file', file], false);
    },
  );

  test.each(['redis', 'postgresql', 'mariadb'])(
    '%s: unreachable host with a password: down, nowhere',
    async (name) => {
      const s = stores.find((d) => d.name === name)!;
      const { logs } = await scanExporter(['--target', s.deadUrl(s.password)], false);
      expect(logs.join('\n')).toMatch(/ECONNREFUSED|connect/i);
    },
  );

  test('/probe: auth modules with good, wrong and no passwords, dead targets, and a password in ?target=', async () => {
    const wrongFile = secretFile('probe-wrong', WRONG_PASSWORD);
    const modules = stores.flatMap((s) => [
      `  ${s.name}_ok: { ${s.user ? `user: ${s.user}, ` : ''}password_file: ${s.passwordFile} }`,
      `  ${s.name}_wrong: { ${s.user ? `user: ${s.user}, ` : ''}password_file: ${wrongFile} }`,
    ]);
    const probeFile = join(dir.path, 'probe.yml');
    writeFileSync(
      probeFile,
      [
        'allowed_targets: ["redis://127.0.0.1:*", "postgresql://127.0.0.1:*", "mariadb://127.0.0.1:*"]',
        'auth_modules:',
        ...modules,
      ].join('\n'),
    );
    const config = loadServerConfig(
      ['--web.listen-address', '127.0.0.1:0', '--probe.config-file', probeFile, '--probe.timeout', '3s'],
      {},
    ) as ServerConfig;
    const logs: string[] = [];
    const server = await startServer(
      config,
      createLogger('debug', 'logfmt', (l) => logs.push(l)),
      {
        processMetrics: false,
      },
    );
    servers.push(server);
    const answers: string[] = [];
    const probe = async (target: string, module?: string): Promise<string> => {
      const res = await request(server.server)
        .get('/probe')
        .query({ target, ...(module ? { auth_module: module } : {}) });
      // Only what the exporter said (the request itself may hold a password on purpose).
      answers.push(`${res.status} ${JSON.stringify(res.headers)}\n${res.text}`);
      return res.text;
    };
    for (const s of stores) {
      const url = s.url().replace(/\/\/[^@]*@/, '//');
      const up = await probe(url, `${s.name}_ok`);
      expect([s.name, value(parseExposition(up), 'datastore_up'), logs.slice(-3)]).toEqual([
        s.name,
        1,
        expect.anything(),
      ]);
      expect(value(parseExposition(await probe(url, `${s.name}_wrong`)), 'datastore_up')).toBe(0);
      expect(
        value(
          parseExposition(await probe(s.deadUrl().replace(/\/\/[^@]*@/, '//'), `${s.name}_ok`)),
          'datastore_up',
        ),
      ).toBe(0);
      // Credentials in the query string: 400, never echoed.
      expect(await probe(s.url(s.password))).toMatch(/must not contain credentials/);
    }
    answers.push((await request(server.server).get('/metrics')).text);
    expectNoSecret('/probe answers and /metrics', answers.join('\n'), allSecrets);
    expectNoSecret('logs', logs.join('\n'), allSecrets);
  });

  describe('the real bin', () => {
    function runBin(args: string[], env: NodeJS.ProcessEnv = {}) {
      const r = spawnSync(process.execPath, [CLI, ...args], {
        encoding: 'utf8',
        cwd: dir.path,
        env: { PATH: process.env.PATH, ...env },
        timeout: 10000,
      });
      return { status: r.status, output: r.stdout + r.stderr };
    }

    test.each([
      ['a space in the host', `redis://:${REDIS_PASSWORD}@exa mple:6379`],
      ['an unsupported scheme', `cassandra://u:${PG_PASSWORD}@127.0.0.1:9042`],
      ['a port out of range', `postgresql://u:${PG_PASSWORD}@127.0.0.1:99999/db`],
      ['a malformed %-escape next to the password', `mariadb://u:${EXPORTER_PASSWORD}%E0@127.0.0.1:3306`],
      ['a malformed %-escape in the user', `redis://%E0:${REDIS_PASSWORD}@127.0.0.1:6379`],
      ['no host', `redis://:${REDIS_PASSWORD}@:6379`],
    ])('a bad URL (%s): exit 2, one line, no password', (_name, url) => {
      for (const r of [
        runBin(['--target', url]),
        runBin([], { DATASTORE_TARGET: url }),
        runBin(['--target.file', secretFile('bad-url', url)]),
      ]) {
        expect(r.status).toBe(2);
        expect(r.output.trim().split('\n')).toHaveLength(1);
        expectNoSecret('the error', r.output, allSecrets);
      }
    });

    test.each(['redis', 'postgresql', 'mariadb'])(
      '%s: the bin with a wrong password in DATASTORE_TARGET_FILE: logs carry the reason, not the password',
      async (name) => {
        const s = stores.find((d) => d.name === name)!;
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
            '--log.level',
            'debug',
          ],
          {
            cwd: dir.path,
            env: {
              PATH: process.env.PATH,
              DATASTORE_TARGET_FILE: secretFile(`${name}-bin`, s.url(WRONG_PASSWORD)),
            },
          },
        );
        let output = '';
        child.stdout.on('data', (d) => (output += d));
        child.stderr.on('data', (d) => (output += d));
        const exited = new Promise((r) => child.once('exit', r));
        try {
          await waitFor('a failed collection logged', () => /collection failed/.test(output), 10000).catch(
            (err: Error) => {
              throw new Error(`${err.message}; output: ${output}`);
            },
          );
          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          expect(value(parseExposition(metrics), 'datastore_up')).toBe(0);
          expectNoSecret('bin output and /metrics', output + metrics, allSecrets);
          expect(output).toContain('REDACTED');
        } finally {
          child.kill('SIGTERM');
          await exited;
        }
      },
    );
  });
});

describe('URL parameters: every value a driver does not declare safe is REDACTED', () => {
  test('redactUrl keeps only the safe values, per driver', () => {
    const show = (url: string): string => redactUrl(new URL(url));
    // MongoDB's secrets hide in options that no list of secret names had: shown nowhere now.
    expect(
      show(
        'mongodb://u:pw@h:27017/?replicaSet=rs0&authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok-1&tlsCertificateKeyFilePassword=kp-1&proxyPassword=pp-1&someFutureOption=f-1',
      ),
    ).toBe(
      'mongodb://u:REDACTED@h:27017/?replicaSet=rs0&authMechanism=MONGODB-AWS&authMechanismProperties=REDACTED&tlsCertificateKeyFilePassword=REDACTED&proxyPassword=REDACTED&someFutureOption=REDACTED',
    );
    // MongoDB options are case-insensitive, and so is the safe list.
    expect(show('mongodb://h/?REPLICASET=rs0&TLS=true')).toBe('mongodb://h/?REPLICASET=rs0&TLS=true');
    expect(show('postgresql://h/db?sslmode=verify-full&sslrootcert=/ca.pem&sslpassword=x-1')).toBe(
      'postgresql://h/db?sslmode=verify-full&sslrootcert=/ca.pem&sslpassword=REDACTED',
    );
    expect(show('etcds://h:2379?cacert=/ca.pem&token=t-1')).toBe(
      'etcds://h:2379?cacert=/ca.pem&token=REDACTED',
    );
    expect(show('kafka://u@h:9092?tls=true&sasl=plain&x=1')).toBe(
      'kafka://u@h:9092?tls=true&sasl=plain&x=REDACTED',
    );
    // Drivers that take no parameter: every value is hidden (such a URL is refused anyway).
    expect(show('redis://h:6379?password=p-1')).toBe('redis://h:6379?password=REDACTED');
  });

  test('a MongoDB target with secrets in its options: the real bin logs none of them', async () => {
    const port = await freePort();
    const secrets = ['tok-2a9f', 'kp-77c1'];
    const child = spawn(process.execPath, [
      CLI,
      '--target',
      `mongodb://127.0.0.1:${await freePort()}/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:${secrets[0]}&tls=true&tlsCertificateKeyFilePassword=${secrets[1]}`,
      '--web.listen-address',
      `127.0.0.1:${port}`,
      '--collect.interval',
      '1s',
      '--collect.timeout',
      '800ms',
      '--log.level',
      'debug',
    ]);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor('a failed collection logged', () => /collection failed/.test(output), 15000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; output: ${output}`);
        },
      );
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      // Before: both were printed in the target= field of every log line.
      expectNoSecret('bin output and /metrics', output + metrics, secrets);
      expect(output).toMatch(
        /target="?mongodb:\/\/127\.0\.0\.1:\d+\/\?authMechanism=MONGODB-AWS&authMechanismProperties=REDACTED/,
      );
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 30000);
});
