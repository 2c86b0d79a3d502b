/**
 * The pg client settings for one monitoring session, built from the parsed target. Pure (no I/O but
 * reading an sslrootcert file), so the safety settings can be unit-tested.
 *
 * The URL is interpreted here rather than handed to pg as a connection string on purpose: pg lets a
 * connection string override explicit settings, so `?options=-c default_transaction_read_only=off`
 * could otherwise undo the read-only session, and the password from --target.password-file must win
 * over one in the URL.
 */
import type { ConnectionOptions } from 'node:tls';
import type { ClientConfig } from 'pg';
import { ConfigError } from '../../core/errors';
import { readFailure, readRegularFile } from '../../core/files';
import type { Target } from '../../core/model';
import { decodedPath, repeatedParam, unsupportedParam } from '../shared/url-settings';

/** Shown in pg_stat_activity.application_name, so operators can tell the exporter's session apart. */
export const APPLICATION_NAME = 'datastore-exporter';

/** The database connected to when the URL names none: every view read is cluster-wide anyway. */
export const DEFAULT_DATABASE = 'postgres';

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
type SslMode = (typeof SSL_MODES)[number];

/** The libpq URL parameters the driver understands (docs/postgresql.md). */
export const URL_PARAMS = ['host', 'sslmode', 'sslrootcert'] as const;

/**
 * What is wrong with a PostgreSQL target URL, or undefined: checked when the target is parsed, so a
 * typo stops the start-up instead of failing every connection.
 */
export function postgresUrlProblem(target: Target): string | undefined {
  const { url } = target;
  const path = decodedPath(url);
  if ('problem' in path) return path.problem;
  const socketDir = url.searchParams.get('host');
  if (socketDir !== null && !socketDir.startsWith('/')) {
    return '?host= names a Unix socket directory (an absolute path); put a host name in the URL itself';
  }
  const problem = unsupportedParam(url, URL_PARAMS) ?? repeatedParam(url);
  if (problem) return problem;
  try {
    sslOptions(url.searchParams.get('sslmode'), url.searchParams.get('sslrootcert'), target.host);
    return undefined;
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}

export function clientConfig(target: Target, timeoutMs: number): ClientConfig {
  const params = target.url.searchParams;
  const database = decodeURIComponent(target.url.pathname.replace(/^\//, '')) || DEFAULT_DATABASE;
  // libpq's `?host=/var/run/postgresql` selects a Unix socket directory (the URL needs a host anyway).
  const socketDir = params.get('host');
  return {
    host: socketDir?.startsWith('/') ? socketDir : target.host,
    port: target.port,
    user: target.username,
    password: target.password,
    database,
    ssl: sslOptions(params.get('sslmode'), params.get('sslrootcert'), target.host),
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: timeoutMs,
    // Server-side limit on every statement of the session, sent in the startup packet: a query the
    // collector gave up on is also cancelled by the server, not left running.
    statement_timeout: timeoutMs,
    // A read-only session from the first statement: the exporter can never write, whatever its role.
    options: '-c default_transaction_read_only=on',
    // The exporter never leaves a transaction open; if it ever did, the server ends it.
    idle_in_transaction_session_timeout: Math.max(timeoutMs, 1000),
  };
}

/**
 * libpq's sslmode values mapped onto Node TLS options. `allow`/`prefer` (libpq's default) mean "no
 * TLS" here: pg cannot fall back from TLS to plain text, and failing closed on a server without TLS
 * would break the common local set-up.
 */
export function sslOptions(
  mode: string | null,
  rootCertPath: string | null,
  host: string,
): ClientConfig['ssl'] {
  const sslMode = (mode ?? 'prefer') as SslMode;
  if (!SSL_MODES.includes(sslMode)) {
    throw new ConfigError(`sslmode "${mode}" is not one of ${SSL_MODES.join(', ')}`);
  }
  if (sslMode === 'disable' || sslMode === 'allow' || sslMode === 'prefer') return false;
  let ca: string | undefined;
  if (rootCertPath) {
    try {
      ca = readRegularFile(rootCertPath, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read sslrootcert ${JSON.stringify(rootCertPath)}: ${readFailure(err)}`);
    }
  }
  // libpq: `require` encrypts without verifying, unless a root certificate is given (then it acts
  // like verify-ca); `verify-ca` checks the chain only; `verify-full` also checks the host name.
  if (sslMode === 'require' && !ca) return { rejectUnauthorized: false };
  const verified: ConnectionOptions = { rejectUnauthorized: true, servername: host };
  if (ca) verified.ca = ca;
  // Set only to switch the host check off: an explicit `undefined` would replace Node's default check.
  if (sslMode !== 'verify-full') verified.checkServerIdentity = () => undefined;
  return verified;
}
