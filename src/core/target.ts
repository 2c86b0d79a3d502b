/**
 * Parses and redacts target URLs. The password is split off so that only the driver ever sees it:
 * every log line, error and label uses `redactedUrl`.
 */
import { ConfigError } from './errors';
import { readFailure, readRegularFile } from './files';
import { driverForScheme, supportedSchemes } from '../drivers/registry';
import type { Target } from './model';

/**
 * Whether the value of URL parameter `name` may be printed for this scheme. Only the parameters its
 * driver declares safe (sslmode, tls, a CA file path...) are; any other value is a secret until
 * proven otherwise (MongoDB alone has tlsCertificateKeyFilePassword, authMechanismProperties with
 * AWS_SESSION_TOKEN, proxyPassword...), so a list of secret names would always be one name short.
 */
function isSafeParam(scheme: string, name: string): boolean {
  const safe = driverForScheme(scheme)?.safeUrlParams ?? [];
  return safe.some((s) => s.toLowerCase() === name.toLowerCase());
}

/** The URL as text with the password and the value of every parameter not known to be safe replaced. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = 'REDACTED';
  const scheme = copy.protocol.replace(/:$/, '');
  if (copy.search) {
    // Rebuilt by hand: URLSearchParams would re-encode the safe values ('a:b' -> 'a%3Ab').
    copy.search = copy.search
      .slice(1)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 0) return pair;
        let name = pair.slice(0, eq);
        try {
          name = decodeURIComponent(name.replace(/\+/g, ' '));
        } catch {
          return `${pair.slice(0, eq)}=REDACTED`;
        }
        return isSafeParam(scheme, name) ? pair : `${pair.slice(0, eq)}=REDACTED`;
      })
      .join('&');
  }
  return copy.href;
}

/**
 * The values of the URL's parameters that redactUrl hides, as given and encoded, to scrub from a
 * client library's message (which may quote an option it rejects). One or two characters are no
 * secret, and scrubbing them would garble the message.
 */
export function secretParamValues(url: URL): string[] {
  const scheme = url.protocol.replace(/:$/, '');
  const values: string[] = [];
  for (const [name, value] of url.searchParams) {
    if (value.length > 2 && !isSafeParam(scheme, name)) values.push(value, encodeURIComponent(value));
  }
  return values;
}

/**
 * Below this length a secret is scrubbed only where it stands alone (not inside a longer word): a
 * short password such as "p" or "pw" also occurs inside ordinary words ("unexpectedly"), and
 * replacing those garbles the message while hiding nothing a reader could not guess.
 */
const SHORT_SECRET = 8;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Best-effort redaction of a free-form string (error messages from client libraries). */
export function redactText(text: string, secrets: (string | undefined)[]): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1REDACTED@');
  for (const secret of secrets) {
    if (!secret) continue;
    if (secret.length >= SHORT_SECRET) {
      out = out.split(secret).join('REDACTED');
    } else {
      out = out.replace(
        new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(secret)}(?![\\p{L}\\p{N}])`, 'gu'),
        'REDACTED',
      );
    }
  }
  return out;
}

export function readSecretFile(path: string, what: string): string {
  try {
    // A trailing newline is nearly always an editor artefact, never part of the secret.
    return readRegularFile(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${JSON.stringify(path)}: ${readFailure(err)}`);
  }
}

/**
 * Why a URL with credentials failed to parse, or parsed into something else: a `#`, `?` or `/` in the
 * password ends the authority early (`redis://:ab#cd@host` is host "" with fragment "cd@host"; with a
 * numeric password the URL even parses, to the wrong host).
 */
const CREDENTIAL_CHARACTERS_HINT =
  'if the user or password holds # ? / or another reserved character, percent-encode it ' +
  '(# as %23, ? as %3F, / as %2F, % as %25) or pass the password with --target.password-file';

function looksLikeCredentials(raw: string): boolean {
  const afterScheme = raw.indexOf('://');
  return afterScheme >= 0 && raw.indexOf('@', afterScheme) >= 0;
}

export function parseTarget(raw: string, passwordFromFile?: string): Target {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never echo the raw value: it may hold a password.
    const hint = looksLikeCredentials(raw) ? `; ${CREDENTIAL_CHARACTERS_HINT}` : '';
    throw new ConfigError(`--target is not a valid URL (expected e.g. redis://127.0.0.1:6379)${hint}`);
  }
  // An '@' after the host means the authority ended before the real one (see the hint).
  if (/@/.test(url.pathname + url.hash)) {
    throw new ConfigError(`--target has an '@' after its host: ${CREDENTIAL_CHARACTERS_HINT}`);
  }
  const scheme = url.protocol.replace(/:$/, '');
  const driver = driverForScheme(scheme);
  if (!driver) {
    throw new ConfigError(
      `--target scheme "${scheme}" is not supported (supported: ${supportedSchemes().join(', ')})`,
    );
  }
  if (!url.hostname) throw new ConfigError(`--target ${redactUrl(url)} has no host`);
  const port = url.port ? Number(url.port) : driver.defaultPort;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const password = passwordFromFile ?? (url.password ? decodeCredential(url.password, url) : undefined);
  const target: Target = {
    scheme,
    url,
    redactedUrl: redactUrl(url),
    host,
    port,
    username: url.username ? decodeCredential(url.username, url) : undefined,
    password,
  };
  // The driver's own settings in the URL (parameters, the files they name, the path), checked now:
  // a typo must stop the start, not fail every collection or exit later with a stack trace.
  const problem = driver.validateTarget?.(target);
  if (problem) {
    throw new ConfigError(`--target ${target.redactedUrl}: ${redactText(problem, secretParamValues(url))}`);
  }
  return target;
}

/** Percent-decodes a user or password; a broken escape ('%E0') is a ConfigError, not a URIError. */
function decodeCredential(text: string, url: URL): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ConfigError(
      `--target ${redactUrl(url)}: the user or password has a malformed %-escape (write a literal % as %25)`,
    );
  }
}
