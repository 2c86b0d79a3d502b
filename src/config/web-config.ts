/**
 * The web configuration file (--web.config.file), in the format of Prometheus's exporter-toolkit
 * (docs/web-configuration.md there), so that users keep the file they already give node_exporter,
 * redis_exporter, postgres_exporter or mysqld_exporter:
 *
 *   tls_server_config:
 *     cert_file: server.crt              # relative paths are relative to this file's directory
 *     key_file: server.key
 *     client_auth_type: RequireAndVerifyClientCert
 *     client_ca_file: clients-ca.crt
 *     min_version: TLS13
 *   http_server_config:
 *     headers:
 *       X-Content-Type-Options: nosniff
 *   basic_auth_users:
 *     prometheus: $2y$10$...             # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
 *   rate_limit:
 *     interval: 1s
 *     burst: 20
 *
 * This module is the pure part: YAML text -> a validated WebConfig, every problem a ConfigError naming
 * the file and the field (the CLI prints one line and exits 2). Like exporter-toolkit (which decodes
 * strictly), an unknown key is an error: a misspelt `basic_auth_user:` must not silently serve
 * /metrics to anyone. `cipher_suites` takes Go's suite names and maps them to OpenSSL's; an option
 * that has no Node equivalent (`http2`) is accepted and reported as a warning, never silently
 * dropped (docs/security.md). parseWebConfig is pure; loadWebConfig also reads the files and checks the TLS
 * material with OpenSSL.
 */
import { readFailure, readRegularFile } from '../core/files';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions, type SecureVersion } from 'node:tls';
import { isPlainObject, parseYamlDocument, unknownKey } from './yaml-schema';
import { ConfigError } from '../core/errors';

/** Go's crypto/tls ClientAuthType names, as exporter-toolkit accepts them. */
export type ClientAuthType =
  | 'NoClientCert'
  | 'RequestClientCert'
  | 'RequireAnyClientCert'
  | 'VerifyClientCertIfGiven'
  | 'RequireAndVerifyClientCert';

const CLIENT_AUTH_TYPES: Record<string, ClientAuthType> = {
  NoClientCert: 'NoClientCert',
  RequestClientCert: 'RequestClientCert',
  RequireAnyClientCert: 'RequireAnyClientCert',
  // exporter-toolkit keeps this older spelling for backwards compatibility.
  RequireClientCert: 'RequireAnyClientCert',
  VerifyClientCertIfGiven: 'VerifyClientCertIfGiven',
  RequireAndVerifyClientCert: 'RequireAndVerifyClientCert',
};

const TLS_VERSIONS: Record<string, SecureVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};
const VERSION_ORDER: SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Go's curve names -> OpenSSL's (Node's `ecdhCurve`). */
const CURVES: Record<string, string> = {
  CurveP256: 'P-256',
  CurveP384: 'P-384',
  CurveP521: 'P-521',
  X25519: 'X25519',
};

/**
 * TLS 1.3 suites: all AEAD with ephemeral key exchange. Not configurable, as in Go (whose
 * cipher_suites applies to TLS 1.0-1.2 only; TLS 1.3 names in it are accepted and change nothing).
 */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/**
 * The TLS 1.0-1.2 suites offered without cipher_suites: ECDHE key exchange (forward secrecy) with an
 * AEAD cipher, nothing else. Node's own default would add static RSA key exchange, CBC, CCM8 and
 * ARIA suites (its list ends in OpenSSL's `HIGH`).
 */
const DEFAULT_TLS12_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/**
 * Go's names for the suites of crypto/tls (tls.CipherSuites() and tls.InsecureCipherSuites(), which
 * exporter-toolkit accepts) -> OpenSSL's. `null`: a TLS 1.3 suite (accepted, always on).
 */
const GO_CIPHER_SUITES: Record<string, string | null> = {
  TLS_AES_128_GCM_SHA256: null,
  TLS_AES_256_GCM_SHA384: null,
  TLS_CHACHA20_POLY1305_SHA256: null,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  // Go's older spellings of the two above.
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  // tls.InsecureCipherSuites(): accepted by exporter-toolkit, so mapped; OpenSSL 3 lacks some (RC4).
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: 'ECDHE-ECDSA-RC4-SHA',
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: 'ECDHE-RSA-RC4-SHA',
  TLS_RSA_WITH_RC4_128_SHA: 'RC4-SHA',
};

/** Whether this Node's OpenSSL can use the suite (OpenSSL 3 dropped RC4 and, at its default level, 3DES). */
function opensslHasSuite(name: string): boolean {
  try {
    createSecureContext({ ciphers: name });
    return true;
  } catch {
    return false;
  }
}

/** The `ciphers` option for Node: the TLS 1.3 suites, then the TLS 1.2 ones. */
function cipherList(tls12: readonly string[]): string {
  return [...TLS13_SUITES, ...tls12].join(':');
}

/**
 * The headers exporter-toolkit lets a file set, with the values it accepts where the header is an
 * enumeration (no list: any string). Kept identical so a file valid there is valid here.
 */
const HEADERS: Record<string, string[] | undefined> = {
  'Strict-Transport-Security': undefined,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': undefined,
  'Content-Security-Policy': undefined,
};

/** PEM text given inline in the file, or a file to read (absolute after parsing). */
export type PemSource = { file: string } | { inline: string };

export interface TlsServerSettings {
  cert: PemSource;
  key: PemSource;
  clientCa?: PemSource;
  clientAuth: ClientAuthType;
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** OpenSSL curve list ('P-256:X25519'), from curve_preferences. */
  ecdhCurve?: string;
  /** prefer_server_cipher_suites (default true, as in exporter-toolkit). */
  honorCipherOrder: boolean;
  /** Node's `ciphers`: the TLS 1.3 suites and the TLS 1.2 ones (cipher_suites, else ECDHE + AEAD). */
  ciphers: string;
  /** client_allowed_sans: the client certificate must carry one of these SAN values. */
  clientAllowedSans?: string[];
}

export interface RateLimit {
  /** Time between two requests (the token bucket's refill period). */
  intervalMs: number;
  burst: number;
}

export interface WebConfig {
  /** The file, quoted, for messages. */
  source: string;
  /** Absent: plain HTTP. */
  tls?: TlsServerSettings;
  /** Extra response headers (http_server_config.headers). */
  headers: Record<string, string>;
  /** User -> bcrypt hash. Empty: no basic auth. */
  users: Map<string, string>;
  rateLimit?: RateLimit;
  /** Accepted options that have no effect here; logged once at start-up. */
  warnings: string[];
}

const TOP_LEVEL_KEYS = ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit'];
const TLS_KEYS = [
  'cert',
  'key',
  'client_ca',
  'cert_file',
  'key_file',
  'client_auth_type',
  'client_ca_file',
  'client_allowed_sans',
  'min_version',
  'max_version',
  'cipher_suites',
  'prefer_server_cipher_suites',
  'curve_preferences',
];
const HTTP_KEYS = ['http2', 'headers'];
const RATE_LIMIT_KEYS = ['interval', 'burst'];

/**
 * A bcrypt hash as htpasswd -B, Go's bcrypt and bcryptjs write it: $2a$, $2b$ or $2y$, a two-digit
 * cost from 4 to 31, then 53 characters of salt and hash in bcrypt's base64 alphabet.
 */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;

/** Go duration text ('1s', '500ms', '1m30s', '0') -> milliseconds; undefined if it is not one. */
export function parseGoDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '0') return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|μs|ms|s|m|h))+$/.test(t)) return undefined;
  const unitMs: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    μs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60000,
    h: 3600000,
  };
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g))
    total += Number(m[1]) * unitMs[m[2]!]!;
  return Number.isFinite(total) ? total : undefined;
}

/**
 * Parses the file's text. `source` names the file in messages; relative file paths are resolved
 * against `baseDir` (the file's directory, as exporter-toolkit does). Throws ConfigError.
 */
export function parseWebConfig(text: string, source: string, baseDir: string): WebConfig {
  const where = `--web.config.file ${source}`;
  const fail = (message: string): never => {
    throw new ConfigError(`${where}: ${message}`);
  };
  const checkKeys = (obj: Record<string, unknown>, allowed: string[], at: string): void => {
    const key = unknownKey(obj, allowed);
    if (key !== undefined) {
      fail(`unknown key ${at}${JSON.stringify(key)} (expected one of: ${allowed.join(', ')})`);
    }
  };
  const mapping = (value: unknown, at: string): Record<string, unknown> => {
    if (value === null || value === undefined) return {};
    if (!isPlainObject(value)) fail(`${at} must be a mapping`);
    return value as Record<string, unknown>;
  };
  const optionalString = (obj: Record<string, unknown>, key: string, at: string): string | undefined => {
    const value = obj[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') fail(`${at}${key} must be a string`);
    return value as string;
  };
  const stringList = (obj: Record<string, unknown>, key: string, at: string): string[] | undefined => {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      fail(`${at}${key} must be a list of strings`);
    }
    return value as string[];
  };

  const root = mapping(parseYamlDocument(text, where), 'the file');
  checkKeys(root, TOP_LEVEL_KEYS, '');
  const warnings: string[] = [];

  // --- tls_server_config ---
  let tls: TlsServerSettings | undefined;
  const t = mapping(root.tls_server_config, 'tls_server_config');
  checkKeys(t, TLS_KEYS, 'tls_server_config.');
  const at = 'tls_server_config.';
  const pem = (inlineKey: string, fileKey: string): PemSource | undefined => {
    const inline = optionalString(t, inlineKey, at);
    const file = optionalString(t, fileKey, at);
    if (inline !== undefined && file !== undefined) {
      fail(`give ${at}${inlineKey} or ${at}${fileKey}, not both`);
    }
    if (file !== undefined) return { file: isAbsolute(file) ? file : resolve(baseDir, file) };
    return inline !== undefined ? { inline } : undefined;
  };
  const cert = pem('cert', 'cert_file');
  const key = pem('key', 'key_file');
  const clientCa = pem('client_ca', 'client_ca_file');
  const clientAuthText = optionalString(t, 'client_auth_type', at);
  // exporter-toolkit's rule: TLS is on when any certificate, key, CA or client auth setting is given.
  if (cert || key || clientCa || clientAuthText !== undefined) {
    if (!cert) fail(`${at}cert_file (or cert) is required for TLS`);
    if (!key) fail(`${at}key_file (or key) is required for TLS`);
    const clientAuth = CLIENT_AUTH_TYPES[clientAuthText ?? 'NoClientCert'];
    if (!clientAuth) {
      fail(
        `${at}client_auth_type ${JSON.stringify(clientAuthText)} is not one of ${Object.keys(CLIENT_AUTH_TYPES).join(', ')}`,
      );
    }
    if (clientCa && clientAuth === 'NoClientCert') {
      fail(
        `${at}client_ca_file is set but client_auth_type is NoClientCert (use RequireAndVerifyClientCert)`,
      );
    }
    const version = (key: string, fallback: SecureVersion): SecureVersion => {
      const text = optionalString(t, key, at);
      if (text === undefined) return fallback;
      const v = TLS_VERSIONS[text];
      if (!v)
        fail(`${at}${key} ${JSON.stringify(text)} is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
      return v!;
    };
    const minVersion = version('min_version', 'TLSv1.2');
    const maxVersion = version('max_version', 'TLSv1.3');
    if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) {
      fail(`${at}min_version is above max_version`);
    }
    const curves = stringList(t, 'curve_preferences', at);
    const ecdhCurve = curves?.map(
      (c) => CURVES[c] ?? fail(`${at}curve_preferences: unknown curve ${JSON.stringify(c)}`),
    );
    const prefer = t.prefer_server_cipher_suites;
    if (prefer !== undefined && prefer !== null && typeof prefer !== 'boolean') {
      fail(`${at}prefer_server_cipher_suites must be true or false`);
    }
    let tls12Suites = DEFAULT_TLS12_SUITES;
    const suiteNames = stringList(t, 'cipher_suites', at);
    if (suiteNames?.length) {
      tls12Suites = [];
      for (const name of suiteNames) {
        const openssl = GO_CIPHER_SUITES[name];
        if (openssl === undefined) {
          fail(
            `${at}cipher_suites: unknown suite ${JSON.stringify(name)} (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)`,
          );
        }
        if (openssl === null) continue;
        if (!opensslHasSuite(openssl!)) {
          fail(`${at}cipher_suites: ${name} is not available in this Node.js build's OpenSSL`);
        }
        if (!tls12Suites.includes(openssl!)) tls12Suites.push(openssl!);
      }
      if (tls12Suites.length === 0 && minVersion !== 'TLSv1.3') {
        fail(
          `${at}cipher_suites names no TLS 1.0-1.2 suite, so only TLS 1.3 could work: add one, or set min_version: TLS13`,
        );
      }
    }
    const clientAllowedSans = stringList(t, 'client_allowed_sans', at);
    if (
      clientAllowedSans !== undefined &&
      clientAuth !== 'RequireAnyClientCert' &&
      clientAuth !== 'RequireAndVerifyClientCert'
    ) {
      fail(
        `${at}client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert`,
      );
    }
    tls = {
      cert: cert!,
      key: key!,
      clientCa,
      clientAuth: clientAuth!,
      minVersion,
      maxVersion,
      ecdhCurve: ecdhCurve?.length ? ecdhCurve.join(':') : undefined,
      honorCipherOrder: prefer !== false,
      ciphers: cipherList(tls12Suites),
      clientAllowedSans,
    };
  } else {
    // Version or cipher settings without a certificate: exporter-toolkit serves plain HTTP then, and
    // so do we (a file valid there stays valid here), but say so: the operator may have meant TLS.
    for (const key of Object.keys(t)) {
      warnings.push(`${at}${key} is ignored: TLS is off without cert_file and key_file`);
    }
  }

  // --- http_server_config ---
  const h = mapping(root.http_server_config, 'http_server_config');
  checkKeys(h, HTTP_KEYS, 'http_server_config.');
  if (h.http2 !== undefined && h.http2 !== null && typeof h.http2 !== 'boolean') {
    fail('http_server_config.http2 must be true or false');
  }
  const headers: Record<string, string> = {};
  const rawHeaders = mapping(h.headers, 'http_server_config.headers');
  for (const [name, value] of Object.entries(rawHeaders)) {
    if (!(name in HEADERS)) {
      fail(
        `http_server_config.headers: header ${JSON.stringify(name)} cannot be set (allowed: ${Object.keys(HEADERS).join(', ')})`,
      );
    }
    if (value === null || value === '') continue;
    if (typeof value !== 'string') fail(`http_server_config.headers.${name} must be a string`);
    const allowed = HEADERS[name];
    if (allowed && !allowed.includes(value as string)) {
      fail(`http_server_config.headers.${name} ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
    }
    if (/[\r\n]/.test(value as string)) fail(`http_server_config.headers.${name} must be one line`);
    headers[name] = value as string;
  }

  // --- basic_auth_users ---
  const users = new Map<string, string>();
  for (const [user, hash] of Object.entries(mapping(root.basic_auth_users, 'basic_auth_users'))) {
    if (user === '' || user.includes(':')) {
      fail(`basic_auth_users: user name ${JSON.stringify(user)} must be non-empty and contain no ":"`);
    }
    // Never echo the value: it is meant to be a hash, but a user may have pasted a password.
    if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash)) {
      fail(
        `basic_auth_users.${user} is not a bcrypt hash ($2a$/$2b$/$2y$, cost 04-31; e.g. htpasswd -nBC 10 "" | tr -d ':\\n')`,
      );
    }
    users.set(user, hash as string);
  }
  // An unknown user is checked at the most common cost (http/listener.ts): with mixed costs, timing
  // tells users of another cost apart.
  const costs = [...new Set([...users.values()].map((h) => Number(h.split('$')[2])))].sort((a, b) => a - b);
  if (costs.length > 1) {
    warnings.push(
      `basic_auth_users: hashes of different bcrypt costs (${costs.join(', ')}): a check takes as long as its hash's cost, so response times can tell users apart; hash every password at the same cost`,
    );
  }

  // --- rate_limit ---
  let rateLimit: RateLimit | undefined;
  const r = mapping(root.rate_limit, 'rate_limit');
  checkKeys(r, RATE_LIMIT_KEYS, 'rate_limit.');
  if (r.interval !== undefined && r.interval !== null) {
    const intervalMs =
      typeof r.interval === 'string' ? parseGoDuration(r.interval) : r.interval === 0 ? 0 : undefined;
    if (intervalMs === undefined)
      fail('rate_limit.interval must be a duration (e.g. 1s, 100ms; 0 turns it off)');
    const burst = r.burst ?? 0;
    if (intervalMs! > 0) {
      if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 1) {
        fail('rate_limit.burst must be a whole number of at least 1');
      }
      rateLimit = { intervalMs: intervalMs!, burst: burst as number };
    }
  } else if (r.burst !== undefined && r.burst !== null) {
    fail('rate_limit.burst needs rate_limit.interval');
  }

  return { source, tls, headers, users, rateLimit, warnings };
}

function readPem(source: PemSource, what: string, where: string): string {
  if ('inline' in source) return source.inline;
  try {
    return readRegularFile(source.file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${where}: cannot read tls_server_config.${what} ${JSON.stringify(source.file)}: ${readFailure(err)}`,
    );
  }
}

/**
 * The certificate, key and CA of the settings, read and checked by OpenSSL (a key that does not match
 * its certificate, a file that is not PEM...). Throws ConfigError.
 */
export function secureContextOptions(settings: TlsServerSettings, where: string): SecureContextOptions {
  const options: SecureContextOptions = {
    cert: readPem(settings.cert, 'cert_file', where),
    key: readPem(settings.key, 'key_file', where),
    minVersion: settings.minVersion,
    maxVersion: settings.maxVersion,
    honorCipherOrder: settings.honorCipherOrder,
    ciphers: settings.ciphers,
    ecdhCurve: settings.ecdhCurve,
  };
  if (settings.clientCa) {
    const ca = readPem(settings.clientCa, 'client_ca_file', where);
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new ConfigError(`${where}: tls_server_config.client_ca_file holds no PEM certificate`);
    }
    options.ca = ca;
  }
  try {
    createSecureContext(options);
  } catch (err) {
    const message = String((err as Error)?.message ?? err).split('\n')[0];
    throw new ConfigError(`${where}: tls_server_config: cannot use the certificate, key or CA: ${message}`);
  }
  return options;
}

/**
 * Reads and parses the file, and checks the TLS files it names (read again by the server, and on each
 * change): a bad certificate is a ConfigError at start-up, not a failed handshake on the first scrape.
 */
export function loadWebConfig(path: string): WebConfig {
  let text: string;
  try {
    text = readRegularFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --web.config.file ${JSON.stringify(path)}: ${readFailure(err)}`);
  }
  const config = parseWebConfig(text, JSON.stringify(path), dirname(resolve(path)));
  if (config.tls) secureContextOptions(config.tls, `--web.config.file ${config.source}`);
  return config;
}
