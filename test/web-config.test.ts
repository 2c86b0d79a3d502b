/**
 * --web.config.file (exporter-toolkit's format): the parser's rules, then the real thing: an exporter
 * serving HTTPS with a throw-away CA made by openssl (server certificate, client certificates from
 * that CA and from a stranger's CA), every client certificate policy, TLS versions enforced, basic
 * auth with bcrypt hashes made here, headers, the rate limit, a certificate rotated while running,
 * and every bad file giving one line and exit code 2 through the real bin (dist/cli.js).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import type { SecureVersion, TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import express from 'express';
import { loadServerConfig, type ServerConfig } from '../src/config/flags';
import { ConfigError } from '../src/core/errors';
import { startServer, type RunningServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { loadWebConfig, parseWebConfig, parseGoDuration } from '../src/config/web-config';
import { stopBcryptThread } from '../src/http/bcrypt-thread';
import { BasicAuthChecker, TokenBucket, listenWeb, parseBasicAuth } from '../src/http/listener';
import { freePort, requireBinary, sleep, tempDir, waitFor } from './support/processes';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const OPENSSL = '/usr/bin/openssl';

const parse = (text: string) => parseWebConfig(text, '"web.yml"', '/etc/exporter');

/** A hash as htpasswd -B writes it ($2y$), at the lowest cost to keep the tests quick. */
const hash = (password: string): string => bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2y$');

// The bcrypt thread is shared by every listener in this process and outlives them.
afterAll(() => stopBcryptThread());

describe('web config file: parsing', () => {
  test('an empty file: plain HTTP, no auth, no headers', () => {
    const c = parse('');
    expect(c.tls).toBeUndefined();
    expect(c.users.size).toBe(0);
    expect(c.headers).toEqual({});
    expect(c.rateLimit).toBeUndefined();
    expect(c.warnings).toEqual([]);
  });

  test("exporter-toolkit's sample file: TLS files relative to the file's directory, users, rate limit", () => {
    const alice = '$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze';
    const c = parse(
      [
        'tls_server_config:',
        '  cert_file: server.crt',
        '  key_file: /abs/server.key',
        'basic_auth_users:',
        `  alice: ${alice}`,
        'rate_limit:',
        '  interval: "1s"',
        '  burst: 20',
      ].join('\n'),
    );
    expect(c.tls).toEqual({
      cert: { file: '/etc/exporter/server.crt' },
      key: { file: '/abs/server.key' },
      clientCa: undefined,
      clientAuth: 'NoClientCert',
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ecdhCurve: undefined,
      honorCipherOrder: true,
      // TLS 1.3's three, then ECDHE + AEAD only for TLS 1.2 (Node's default adds static RSA, CBC...).
      ciphers:
        'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:' +
        'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
        'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
      clientAllowedSans: undefined,
    });
    expect(c.users).toEqual(new Map([['alice', alice]]));
    expect(c.rateLimit).toEqual({ intervalMs: 1000, burst: 20 });
  });

  test('client auth, versions, curves, inline PEM; RequireClientCert is the old name of RequireAnyClientCert', () => {
    const c = parse(
      [
        'tls_server_config:',
        '  cert: "-----BEGIN CERTIFICATE-----"',
        '  key: "-----BEGIN PRIVATE KEY-----"',
        '  client_auth_type: RequireClientCert',
        '  client_ca_file: ca.crt',
        '  client_allowed_sans: [prometheus.example]',
        '  min_version: TLS13',
        '  curve_preferences: [X25519, CurveP256]',
        '  prefer_server_cipher_suites: false',
        '  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]',
        'http_server_config:',
        '  http2: false',
        '  headers:',
        '    X-Frame-Options: deny',
        '    Strict-Transport-Security: max-age=31536000',
      ].join('\n'),
    );
    expect(c.tls).toMatchObject({
      cert: { inline: '-----BEGIN CERTIFICATE-----' },
      clientAuth: 'RequireAnyClientCert',
      clientCa: { file: '/etc/exporter/ca.crt' },
      clientAllowedSans: ['prometheus.example'],
      minVersion: 'TLSv1.3',
      ecdhCurve: 'X25519:P-256',
      honorCipherOrder: false,
    });
    expect(c.headers).toEqual({
      'X-Frame-Options': 'deny',
      'Strict-Transport-Security': 'max-age=31536000',
    });
    // Go's suite names, mapped to OpenSSL's; TLS 1.3 suites are not configurable (as in Go).
    expect(c.tls!.ciphers).toBe(
      'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256',
    );
    expect(c.warnings).toEqual([]);
  });

  test('TLS settings without a certificate: plain HTTP as in exporter-toolkit, with a warning', () => {
    const c = parse('tls_server_config:\n  min_version: TLS13\n');
    expect(c.tls).toBeUndefined();
    expect(c.warnings).toEqual([expect.stringMatching(/min_version is ignored: TLS is off/)]);
  });

  test('Go durations', () => {
    expect(parseGoDuration('1m30s')).toBe(90000);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('1.5h')).toBe(5400000);
    expect(parseGoDuration('5')).toBeUndefined();
    expect(parseGoDuration('-1s')).toBeUndefined();
  });

  const bad: [string, string, RegExp][] = [
    ['not YAML', 'tls_server_config: [', /not valid YAML/],
    ['a list', '- a', /the file must be a mapping/],
    ['a misspelt top-level key', 'basic_auth_user: {}', /unknown key "basic_auth_user"/],
    [
      'an unknown TLS key',
      'tls_server_config: { cert_file: a, key_file: b, ca_file: c }',
      /unknown key tls_server_config\."ca_file"/,
    ],
    ['a certificate without key', 'tls_server_config: { cert_file: a }', /key_file \(or key\) is required/],
    ['a key without certificate', 'tls_server_config: { key_file: a }', /cert_file \(or cert\) is required/],
    [
      'both inline and file',
      'tls_server_config: { cert: x, cert_file: a, key_file: b }',
      /give tls_server_config.cert or tls_server_config.cert_file, not both/,
    ],
    [
      'an unknown client auth type',
      'tls_server_config: { cert_file: a, key_file: b, client_auth_type: Require }',
      /client_auth_type "Require" is not one of NoClientCert, /,
    ],
    [
      'a client CA without client auth',
      'tls_server_config: { cert_file: a, key_file: b, client_ca_file: c }',
      /client_ca_file is set but client_auth_type is NoClientCert/,
    ],
    [
      'an unknown TLS version',
      'tls_server_config: { cert_file: a, key_file: b, min_version: TLS14 }',
      /min_version "TLS14" is not one of TLS10, TLS11, TLS12, TLS13/,
    ],
    [
      'min above max',
      'tls_server_config: { cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12 }',
      /min_version is above max_version/,
    ],
    [
      'an unknown curve',
      'tls_server_config: { cert_file: a, key_file: b, curve_preferences: [P999] }',
      /unknown curve "P999"/,
    ],
    [
      'SANs with an optional client certificate',
      'tls_server_config: { cert_file: a, key_file: b, client_auth_type: VerifyClientCertIfGiven, client_allowed_sans: [x] }',
      /client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert/,
    ],
    [
      'a version that is not a string',
      'tls_server_config: { cert_file: a, key_file: b, min_version: 12 }',
      /min_version must be a string/,
    ],
    [
      'an unknown cipher suite',
      'tls_server_config: { cert_file: a, key_file: b, cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256] }',
      /cipher_suites: unknown suite "ECDHE-RSA-AES128-GCM-SHA256" \(Go's names/,
    ],
    [
      'a suite this OpenSSL lacks',
      'tls_server_config: { cert_file: a, key_file: b, cipher_suites: [TLS_RSA_WITH_RC4_128_SHA] }',
      /cipher_suites: TLS_RSA_WITH_RC4_128_SHA is not available/,
    ],
    [
      'only TLS 1.3 suites while TLS 1.2 is allowed',
      'tls_server_config: { cert_file: a, key_file: b, cipher_suites: [TLS_AES_128_GCM_SHA256] }',
      /cipher_suites names no TLS 1.0-1.2 suite/,
    ],
    ['http2 not a boolean', 'http_server_config: { http2: maybe }', /http2 must be true or false/],
    ['an unknown http key', 'http_server_config: { header: {} }', /unknown key http_server_config\."header"/],
    [
      'a header that cannot be set',
      'http_server_config: { headers: { Server: x } }',
      /header "Server" cannot be set/,
    ],
    [
      'a bad X-Frame-Options',
      'http_server_config: { headers: { X-Frame-Options: allow } }',
      /X-Frame-Options "allow" is not one of deny, sameorigin/,
    ],
    [
      'a bad X-Content-Type-Options',
      'http_server_config: { headers: { X-Content-Type-Options: sniff } }',
      /is not one of nosniff/,
    ],
    ['users as a list', 'basic_auth_users: [alice]', /basic_auth_users must be a mapping/],
    [
      'a user name with a colon',
      `basic_auth_users: { "a:b": "${'$2y$04$' + 'a'.repeat(53)}" }`,
      /must be non-empty and contain no ":"/,
    ],
    [
      'a cost out of range',
      `basic_auth_users: { alice: "${'$2y$03$' + 'a'.repeat(53)}" }`,
      /basic_auth_users.alice is not a bcrypt hash/,
    ],
    [
      'a rate limit interval that is not a duration',
      'rate_limit: { interval: fast, burst: 1 }',
      /rate_limit.interval must be a duration/,
    ],
    [
      'a rate limit without burst',
      'rate_limit: { interval: 1s }',
      /rate_limit.burst must be a whole number of at least 1/,
    ],
    ['a burst without interval', 'rate_limit: { burst: 3 }', /rate_limit.burst needs rate_limit.interval/],
    ['a duplicate key', 'basic_auth_users: {}\nbasic_auth_users: {}', /not valid YAML/],
  ];
  test.each(bad)('%s is a ConfigError naming the file and the field', (_name, text, message) => {
    let error: unknown;
    try {
      parse(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^--web\.config\.file "web\.yml": /);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  test('a plain password pasted instead of a hash is refused and never echoed', () => {
    expect(() => parse('basic_auth_users: { alice: "hunter2-plaintext" }')).toThrow(
      /alice is not a bcrypt hash/,
    );
    expect(() => parse('basic_auth_users: { alice: "hunter2-plaintext" }')).not.toThrow(/hunter2/);
  });
});

describe('basic auth building blocks', () => {
  test('the Authorization header: Basic, any case, password may hold colons; anything else is no credentials', () => {
    const header = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(parseBasicAuth(header('alice:pa:ss'))).toEqual({ user: 'alice', password: 'pa:ss' });
    expect(parseBasicAuth(`bAsIc ${Buffer.from('a:').toString('base64')}`)).toEqual({
      user: 'a',
      password: '',
    });
    expect(parseBasicAuth(header('no-colon'))).toBeUndefined();
    expect(parseBasicAuth('Bearer abc')).toBeUndefined();
    expect(parseBasicAuth(undefined)).toBeUndefined();
    expect(parseBasicAuth('Basic !!!')).toBeUndefined();
  });

  test('a successful bcrypt check is cached; a failed one is remembered as failed', async () => {
    const checker = new BasicAuthChecker(new Map([['alice', hash('right')]]));
    expect(await checker.check('alice', 'right')).toBe('ok');
    await Promise.all([1, 2, 3, 4].map(() => checker.check('alice', 'right')));
    expect(checker.bcryptRuns).toBe(1);
    expect(await checker.check('alice', 'wrong')).toBe('denied');
    // The same wrong password again: denied without another bcrypt run.
    expect(await checker.check('alice', 'wrong')).toBe('denied');
    expect(checker.bcryptRuns).toBe(2);
    // An unknown user still costs one bcrypt run (against a dummy hash): timing does not reveal names.
    expect(await checker.check('mallory', 'right')).toBe('denied');
    expect(checker.bcryptRuns).toBe(3);
  });

  test('the cache expires', async () => {
    const checker = new BasicAuthChecker(new Map([['alice', hash('right')]]), 50);
    await checker.check('alice', 'right');
    await sleep(80);
    await checker.check('alice', 'right');
    expect(checker.bcryptRuns).toBe(2);
  });

  test('concurrent first checks of the same credentials run bcrypt once', async () => {
    const checker = new BasicAuthChecker(new Map([['alice', hash('right')]]));
    const results = await Promise.all(Array.from({ length: 10 }, () => checker.check('alice', 'right')));
    expect(results.every((r) => r === 'ok')).toBe(true);
    expect(checker.bcryptRuns).toBe(1);
  });

  test('token bucket: a burst, then one per interval', () => {
    const bucket = new TokenBucket({ intervalMs: 1000, burst: 2 });
    const t0 = Date.now();
    expect([bucket.take(t0), bucket.take(t0), bucket.take(t0)]).toEqual([true, true, false]);
    expect(bucket.take(t0 + 500)).toBe(false);
    expect(bucket.take(t0 + 1000)).toBe(true);
  });
});

/** A throw-away PKI: a CA, a server certificate for 127.0.0.1, client certificates, a stranger CA. */
interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Signed by the CA, SAN DNS:prometheus.example. */
  client: { cert: string; key: string };
  /** Signed by the CA, SAN DNS:intruder.example. */
  otherClient: { cert: string; key: string };
  /** Self-signed by someone else. */
  stranger: { cert: string; key: string };
  /** A second server certificate from the same CA (for rotation). */
  rotatedCert: string;
  rotatedKey: string;
}

function makePki(dir: string): Pki {
  requireBinary(OPENSSL, 'openssl');
  const ssl = (...args: string[]): void => {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
  };
  const p = (name: string): string => join(dir, name);
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  const issue = (name: string, cn: string, san: string): void => {
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    );
    writeFileSync(p(`${name}.ext`), `subjectAltName=${san}\n`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  };
  issue('server', 'exporter', 'IP:127.0.0.1,DNS:localhost');
  issue('rotated', 'exporter-rotated', 'IP:127.0.0.1,DNS:localhost');
  issue('client', 'prometheus', 'DNS:prometheus.example');
  issue('other-client', 'intruder', 'DNS:intruder.example');
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=stranger',
    '-addext',
    'subjectAltName=DNS:prometheus.example',
    '-keyout',
    'stranger.key',
    '-out',
    'stranger.crt',
  );
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    client: { cert: p('client.crt'), key: p('client.key') },
    otherClient: { cert: p('other-client.crt'), key: p('other-client.key') },
    stranger: { cert: p('stranger.crt'), key: p('stranger.key') },
    rotatedCert: p('rotated.crt'),
    rotatedKey: p('rotated.key'),
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** CN of the certificate the server presented. */
  serverCn?: string;
}

const read = (path: string): string => readFileSync(path, 'utf8');

/** One HTTPS GET on a fresh connection (no agent: each request does its own handshake). */
function httpsGet(
  port: number,
  path: string,
  opts: {
    ca: string;
    client?: { cert: string; key: string };
    auth?: string;
    minVersion?: SecureVersion;
    maxVersion?: SecureVersion;
  },
): Promise<Answer> {
  const options: RequestOptions = {
    host: '127.0.0.1',
    port,
    path,
    agent: false,
    ca: read(opts.ca),
    cert: opts.client ? read(opts.client.cert) : undefined,
    key: opts.client ? read(opts.client.key) : undefined,
    minVersion: opts.minVersion,
    maxVersion: opts.maxVersion,
    auth: opts.auth,
    timeout: 5000,
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const cert = (res.socket as TLSSocket).getPeerCertificate?.();
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body,
          serverCn: cert?.subject?.CN as string | undefined,
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('a real exporter behind --web.config.file', () => {
  const dir = tempDir('web-config');
  let pki: Pki;
  const running: RunningServer[] = [];
  let deadTarget: string;
  let logs: string[] = [];

  beforeAll(async () => {
    pki = makePki(dir.path);
    // The target is a closed port: these tests are about the HTTP surface, not the datastore.
    deadTarget = `redis://127.0.0.1:${await freePort()}`;
  });
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
    dir.remove();
  });

  let fileCount = 0;
  async function start(webYaml: string, extraFlags: string[] = []): Promise<RunningServer> {
    const file = join(dir.path, `web-${++fileCount}.yml`);
    writeFileSync(file, webYaml);
    const config = loadServerConfig(
      [
        '--target',
        deadTarget,
        '--web.listen-address',
        '127.0.0.1:0',
        '--collect.interval',
        '1s',
        '--collect.timeout',
        '500ms',
        '--web.config.file',
        file,
        ...extraFlags,
      ],
      {},
    ) as ServerConfig;
    logs = [];
    const server = await startServer(
      config,
      createLogger('debug', 'logfmt', (l) => logs.push(l)),
      {
        processMetrics: false,
      },
    );
    running.push(server);
    return server;
  }

  const tlsYaml = (extra: string[] = []): string =>
    ['tls_server_config:', `  cert_file: ${pki.serverCert}`, `  key_file: ${pki.serverKey}`, ...extra].join(
      '\n',
    );

  test('TLS without client certificates: HTTPS works, plain HTTP does not', async () => {
    const s = await start(tlsYaml());
    const r = await httpsGet(s.port, '/metrics', { ca: pki.caCert });
    expect(r.status).toBe(200);
    expect(r.body).toContain('datastore_up 0');
    expect(r.serverCn).toBe('exporter');
    await expect(fetch(`http://127.0.0.1:${s.port}/metrics`)).rejects.toThrow();
    expect(logs.join('\n')).toMatch(/msg=listening .*tls=true client_auth=NoClientCert basic_auth_users=0/);
  });

  test('RequireAndVerifyClientCert: only a certificate from client_ca_file gets in', async () => {
    const s = await start(
      tlsYaml(['  client_auth_type: RequireAndVerifyClientCert', `  client_ca_file: ${pki.caCert}`]),
    );
    const ok = await httpsGet(s.port, '/metrics', { ca: pki.caCert, client: pki.client });
    expect(ok.status).toBe(200);
    await expect(httpsGet(s.port, '/metrics', { ca: pki.caCert })).rejects.toThrow();
    await expect(httpsGet(s.port, '/metrics', { ca: pki.caCert, client: pki.stranger })).rejects.toThrow();
    // Client certificates guard every path, health ones included (that is what TLS is for).
    await expect(httpsGet(s.port, '/healthz', { ca: pki.caCert })).rejects.toThrow();
  });

  test('RequireAnyClientCert: any certificate, none refused; client_allowed_sans picks by SAN', async () => {
    const any = await start(tlsYaml(['  client_auth_type: RequireAnyClientCert']));
    expect((await httpsGet(any.port, '/metrics', { ca: pki.caCert, client: pki.stranger })).status).toBe(200);
    await expect(httpsGet(any.port, '/metrics', { ca: pki.caCert })).rejects.toThrow();

    const sans = await start(
      tlsYaml([
        '  client_auth_type: RequireAndVerifyClientCert',
        `  client_ca_file: ${pki.caCert}`,
        '  client_allowed_sans: [prometheus.example]',
      ]),
    );
    expect((await httpsGet(sans.port, '/metrics', { ca: pki.caCert, client: pki.client })).status).toBe(200);
    await expect(
      httpsGet(sans.port, '/metrics', { ca: pki.caCert, client: pki.otherClient }),
    ).rejects.toThrow();
    expect(logs.join('\n')).toMatch(/TLS connection refused.*client_allowed_sans/);
  });

  test('VerifyClientCertIfGiven: no certificate is fine, an unverifiable one is refused', async () => {
    const s = await start(
      tlsYaml(['  client_auth_type: VerifyClientCertIfGiven', `  client_ca_file: ${pki.caCert}`]),
    );
    expect((await httpsGet(s.port, '/metrics', { ca: pki.caCert })).status).toBe(200);
    expect((await httpsGet(s.port, '/metrics', { ca: pki.caCert, client: pki.client })).status).toBe(200);
    await expect(httpsGet(s.port, '/metrics', { ca: pki.caCert, client: pki.stranger })).rejects.toThrow();
  });

  test('min_version TLS13 refuses a TLS 1.2-only client; max_version TLS12 refuses a TLS 1.3-only one', async () => {
    const min13 = await start(tlsYaml(['  min_version: TLS13']));
    await expect(httpsGet(min13.port, '/metrics', { ca: pki.caCert, maxVersion: 'TLSv1.2' })).rejects.toThrow(
      /version|protocol/i,
    );
    expect((await httpsGet(min13.port, '/metrics', { ca: pki.caCert, minVersion: 'TLSv1.3' })).status).toBe(
      200,
    );

    const max12 = await start(tlsYaml(['  max_version: TLS12']));
    await expect(httpsGet(max12.port, '/metrics', { ca: pki.caCert, minVersion: 'TLSv1.3' })).rejects.toThrow(
      /version|protocol/i,
    );
    expect((await httpsGet(max12.port, '/metrics', { ca: pki.caCert, maxVersion: 'TLSv1.2' })).status).toBe(
      200,
    );
  });

  /** The TLS 1.2 suites a server accepts: every suite this OpenSSL knows, offered one at a time by s_client. */
  async function acceptedTls12Suites(port: number): Promise<string[]> {
    const all = execFileSync(OPENSSL, ['ciphers', '-tls1_2', '-s', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], {
      encoding: 'utf8',
    })
      .trim()
      .split(':')
      .filter((name) => !name.startsWith('TLS_'));
    expect(all.length).toBeGreaterThan(40);
    const accepted: string[] = [];
    const offer = (name: string): Promise<void> =>
      new Promise((resolve) => {
        const child = execFile(
          OPENSSL,
          ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-cipher', `${name}:@SECLEVEL=0`],
          { timeout: 10000 },
          (_err, stdout) => {
            const m = /Cipher is (\S+)/.exec(stdout);
            if (m && m[1] === name) accepted.push(name);
            resolve();
          },
        );
        child.stdin?.end();
      });
    // A few at a time: the server under test runs in this process and must keep answering.
    for (let i = 0; i < all.length; i += 8) await Promise.all(all.slice(i, i + 8).map(offer));
    return accepted.sort();
  }

  test('TLS 1.2 offers only ECDHE + AEAD suites by default (s_client, every suite OpenSSL has); cipher_suites restricts them', async () => {
    // An RSA server certificate too: static RSA key exchange needs one to be offered at all.
    const rsaKey = join(dir.path, 'rsa.key');
    const rsaCert = join(dir.path, 'rsa.crt');
    execFileSync(
      OPENSSL,
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=exporter',
        '-keyout',
        rsaKey,
        '-out',
        rsaCert,
      ],
      { stdio: 'pipe' },
    );
    const rsa = await start(
      ['tls_server_config:', `  cert_file: ${rsaCert}`, `  key_file: ${rsaKey}`].join('\n'),
    );
    const ecdsa = await start(tlsYaml());
    const rsaAccepted = await acceptedTls12Suites(rsa.port);
    const ecdsaAccepted = await acceptedTls12Suites(ecdsa.port);
    console.log(
      `TLS 1.2 suites accepted: RSA certificate ${rsaAccepted.join(' ')}; ECDSA ${ecdsaAccepted.join(' ')}`,
    );
    // Before: Node's default list (ending in OpenSSL's HIGH) also let in static RSA, CBC, CCM, CCM8, ARIA, DHE.
    expect(rsaAccepted).toEqual([
      'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-RSA-CHACHA20-POLY1305',
    ]);
    expect(ecdsaAccepted).toEqual([
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
    ]);

    // cipher_suites (Go's names) is the list, in full: here one AEAD suite and one CBC suite.
    const chosen = await start(
      tlsYaml([
        '  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]',
      ]),
    );
    expect(await acceptedTls12Suites(chosen.port)).toEqual([
      'ECDHE-ECDSA-AES128-SHA',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
    ]);
    // TLS 1.3 is unaffected (not configurable, as in Go).
    expect((await httpsGet(chosen.port, '/metrics', { ca: pki.caCert, minVersion: 'TLSv1.3' })).status).toBe(
      200,
    );
  }, 120000);

  test('basic auth over TLS: 401 without or with wrong credentials, 200 with; /healthz and /ready stay open', async () => {
    const s = await start(
      [
        tlsYaml(),
        'basic_auth_users:',
        `  prometheus: ${hash('scrape-pw-1')}`,
        `  grafana: ${bcrypt.hashSync('other-pw-2', 4)}`,
        'http_server_config:',
        '  headers:',
        '    X-Content-Type-Options: nosniff',
        '    X-Frame-Options: deny',
      ].join('\n'),
    );
    const get = (path: string, auth?: string): Promise<Answer> =>
      httpsGet(s.port, path, { ca: pki.caCert, auth });
    const none = await get('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect(none.body).not.toContain('datastore_');
    expect(none.headers['x-content-type-options']).toBe('nosniff');
    expect((await get('/metrics', 'prometheus:wrong')).status).toBe(401);
    expect((await get('/metrics', 'nobody:scrape-pw-1')).status).toBe(401);
    expect((await get('/metrics', 'grafana:scrape-pw-1')).status).toBe(401);
    const ok = await get('/metrics', 'prometheus:scrape-pw-1');
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('datastore_up');
    expect(ok.headers['x-frame-options']).toBe('deny');
    expect((await get('/metrics', 'grafana:other-pw-2')).status).toBe(200);
    for (const path of [
      '/',
      '/api/unstable/info/agent',
      '/api/unstable/shards',
      '/nonexistent',
      '/HEALTHZ',
      '/healthz/x',
    ]) {
      expect([path, (await get(path)).status]).toEqual([path, 401]);
    }
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/ready')).status).toBe(200);
    expect(logs.join('\n')).not.toContain('scrape-pw-1');
  });

  test('--web.telemetry-path is a literal path: "/:x" and "/*all" never serve metrics on the open /healthz', async () => {
    // Before: Express read them as patterns, so /healthz (open without credentials) matched them first.
    for (const path of ['/:x', '/*all', '/m(etrics)']) {
      const s = await start(`basic_auth_users: { prometheus: "${hash('pw')}" }`, [
        '--web.telemetry-path',
        path,
      ]);
      const base = `http://127.0.0.1:${s.port}`;
      const auth = { Authorization: `Basic ${Buffer.from('prometheus:pw').toString('base64')}` };
      const health = await fetch(`${base}/healthz`);
      expect([path, health.status, await health.text()]).toEqual([path, 200, 'ok\n']);
      expect((await fetch(`${base}/ready`)).status).toBe(200);
      expect((await fetch(`${base}${path}`)).status).toBe(401);
      const metrics = await fetch(`${base}${path}`, { headers: auth });
      expect([path, metrics.status]).toEqual([path, 200]);
      expect(await metrics.text()).toContain('datastore_up');
      // Only that exact path: what a pattern would have matched is not the metrics.
      for (const other of ['/x', '/anything/at/all', '/metrics', path.toUpperCase()]) {
        if (other === path) continue;
        const res = await fetch(`${base}${other}`, { headers: auth });
        expect([path, other, res.status]).toEqual([path, other, 404]);
      }
      await s.stop();
    }
  });

  test('basic auth on plain HTTP, on /probe too; the rate limit answers 429', async () => {
    const probeFile = join(dir.path, 'probe.yml');
    writeFileSync(probeFile, 'allowed_targets: ["redis://127.0.0.1:*"]\n');
    const s = await start(
      [`basic_auth_users: { prometheus: "${hash('pw')}" }`, 'rate_limit: { interval: 1h, burst: 4 }'].join(
        '\n',
      ),
      ['--probe.config-file', probeFile],
    );
    const base = `http://127.0.0.1:${s.port}`;
    const auth = { Authorization: `Basic ${Buffer.from('prometheus:pw').toString('base64')}` };
    expect((await fetch(`${base}/probe?target=${encodeURIComponent(deadTarget)}`)).status).toBe(401);
    expect(
      (await fetch(`${base}/probe?target=${encodeURIComponent(deadTarget)}`, { headers: auth })).status,
    ).toBe(200);
    expect((await fetch(`${base}/metrics`, { headers: auth })).status).toBe(200);
    // /healthz and /ready take no token (a kubelet probe answered 429 would fail; /ready may still
    // say 503 if the first collection has not finished).
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).not.toBe(429);
    expect((await fetch(`${base}/metrics`, { headers: auth })).status).toBe(200);
    // Burst of 4 used up: the fifth request within the hour is refused, before any auth work...
    expect((await fetch(`${base}/metrics`, { headers: auth })).status).toBe(429);
    expect((await fetch(`${base}/metrics`)).status).toBe(429);
    // ...and the health endpoints still answer.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).not.toBe(429);
  });

  test('a rotated certificate is served without a restart; a broken one is refused and the old one kept', async () => {
    const cert = join(dir.path, 'live.crt');
    const key = join(dir.path, 'live.key');
    writeFileSync(cert, read(pki.serverCert));
    writeFileSync(key, read(pki.serverKey));
    const app = express();
    app.get('/', (_req, res) => {
      res.send('hi');
    });
    const web = parseWebConfig(
      `tls_server_config: { cert_file: ${cert}, key_file: ${key} }`,
      '"live.yml"',
      dir.path,
    );
    const lines: string[] = [];
    const server = await listenWeb(
      app,
      web,
      0,
      '127.0.0.1',
      createLogger('debug', 'logfmt', (l) => lines.push(l)),
      {
        reloadPollMs: 50,
      },
    );
    try {
      const port = (server.address() as { port: number }).port;
      expect((await httpsGet(port, '/', { ca: pki.caCert })).serverCn).toBe('exporter');
      // A half-written rotation (new certificate, old key) must not take the server down.
      writeFileSync(cert, read(pki.rotatedCert));
      await waitFor(
        'the mismatch logged',
        () => lines.some((l) => /kept the previous TLS certificate/.test(l)),
        5000,
        20,
      );
      expect((await httpsGet(port, '/', { ca: pki.caCert })).serverCn).toBe('exporter');
      writeFileSync(key, read(pki.rotatedKey));
      await waitFor(
        'the rotated certificate served',
        async () => (await httpsGet(port, '/', { ca: pki.caCert })).serverCn === 'exporter-rotated',
        5000,
        50,
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('bad web config files through the real bin: one line, exit code 2', () => {
  const dir = tempDir('web-config-cli');
  let pki: Pki;
  beforeAll(() => {
    pki = makePki(dir.path);
  });
  afterAll(() => dir.remove());

  function run(args: string[], env: NodeJS.ProcessEnv = {}) {
    const r = spawnSync(process.execPath, [CLI, '--target', 'redis://127.0.0.1:1', ...args], {
      encoding: 'utf8',
      cwd: dir.path,
      env: { PATH: process.env.PATH, ...env },
      timeout: 10000,
    });
    return { status: r.status, stderr: r.stderr };
  }
  function file(name: string, text: string): string {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  }
  function expectOneLine(r: { status: number | null; stderr: string }, message: RegExp): void {
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^datastore-exporter: /);
    expect(lines[0]).toMatch(message);
  }

  test.each([
    ['unknown key', 'basic_auth_user: {}', /unknown key "basic_auth_user"/],
    [
      'bad client auth type',
      'tls_server_config: { cert_file: a, key_file: b, client_auth_type: Yes }',
      /client_auth_type "Yes"/,
    ],
    [
      'bad min_version',
      'tls_server_config: { cert_file: a, key_file: b, min_version: SSL3 }',
      /min_version "SSL3"/,
    ],
    ['not YAML', 'basic_auth_users: {', /not valid YAML/],
    ['plain password', 'basic_auth_users: { alice: opensesame-77 }', /alice is not a bcrypt hash/],
  ])('%s', (name, text, message) => {
    const r = run(['--web.config.file', file(`${name.replace(/\s/g, '-')}.yml`, text)]);
    expectOneLine(r, message);
    expect(r.stderr).not.toContain('opensesame-77');
  });

  test('a missing certificate file', () => {
    const r = run([
      '--web.config.file',
      file('nocert.yml', `tls_server_config: { cert_file: missing.crt, key_file: ${pki.serverKey} }`),
    ]);
    expectOneLine(r, /cannot read tls_server_config.cert_file ".*\/missing.crt": ENOENT/);
  });

  test('a key that does not match the certificate', () => {
    const r = run([
      '--web.config.file',
      file(
        'mismatch.yml',
        `tls_server_config: { cert_file: ${pki.serverCert}, key_file: ${pki.client.key} }`,
      ),
    ]);
    expectOneLine(r, /cannot use the certificate, key or CA: .*key values mismatch/);
  });

  test('a client CA file that holds no certificate', () => {
    const r = run([
      '--web.config.file',
      file(
        'noca.yml',
        `tls_server_config: { cert_file: ${pki.serverCert}, key_file: ${pki.serverKey}, client_auth_type: RequireAndVerifyClientCert, client_ca_file: ${pki.serverKey} }`,
      ),
    ]);
    expectOneLine(r, /client_ca_file holds no PEM certificate/);
  });

  test('an unreadable file, given by DATASTORE_WEB_CONFIG_FILE', () => {
    const r = run([], { DATASTORE_WEB_CONFIG_FILE: '/nonexistent/web.yml' });
    expectOneLine(r, /cannot read --web.config.file "\/nonexistent\/web.yml": ENOENT/);
  });

  test('--help documents the flag and its environment variable', () => {
    const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/--web\.config\.file=<value>\n.*\[env DATASTORE_WEB_CONFIG_FILE\]/);
  });

  test('loadWebConfig checks the TLS files at start-up (not on the first scrape)', () => {
    expect(() =>
      loadWebConfig(
        file(
          'bad-in-process.yml',
          `tls_server_config: { cert_file: ${pki.serverKey}, key_file: ${pki.serverKey} }`,
        ),
      ),
    ).toThrow(ConfigError);
  });
});
