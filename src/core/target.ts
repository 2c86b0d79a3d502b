/**
 * Parses and redacts target URLs. The password is split off so that only the driver ever sees it:
 * every log line, error and label uses `redactedUrl`.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors';
import { driverForScheme, supportedSchemes } from '../drivers/registry';
import type { Target } from './model';

const SECRET_QUERY_PARAMS = /^(password|pass|pwd|secret|token|sslpassword|authsource_password)$/i;

/** The URL as text with the password and any secret-looking query parameter replaced. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = 'REDACTED';
  for (const key of [...copy.searchParams.keys()]) {
    if (SECRET_QUERY_PARAMS.test(key)) copy.searchParams.set(key, 'REDACTED');
  }
  return copy.href;
}

/** Best-effort redaction of a free-form string (error messages from client libraries). */
export function redactText(text: string, secrets: (string | undefined)[]): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1REDACTED@');
  for (const secret of secrets) {
    if (secret) out = out.split(secret).join('REDACTED');
  }
  return out;
}

export function readSecretFile(path: string, what: string): string {
  try {
    // A trailing newline is nearly always an editor artefact, never part of the secret.
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`cannot read ${what} ${JSON.stringify(path)}: ${code}`);
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
  return {
    scheme,
    url,
    redactedUrl: redactUrl(url),
    host,
    port,
    username: url.username ? decodeCredential(url.username, url) : undefined,
    password,
  };
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
