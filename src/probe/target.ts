/**
 * Turns the query of one `GET /probe?target=<url>&auth_module=<name>` into a Target, or a clear
 * 400/403. Pure: no I/O, so every rule below is unit-tested.
 *
 * Rules (docs/probe.md "Safety"):
 *  - `target` once, a URL with a supported scheme and a host. No credentials in it (400, and the raw
 *    value is never echoed or logged: it may hold a password), no `?parameters` and no `#fragment`:
 *    the driver settings a URL can carry (PostgreSQL's `host=/socket/dir`, etcd's `cacert=<file>`)
 *    would let a caller steer the exporter past the allowlist or make it read local files. Driver
 *    settings come from the auth module, which the operator wrote.
 *  - `auth_module`, if given, must name a module of the config file (400 otherwise).
 *  - The address (scheme, host, port with the driver's default) must match allowed_targets (403).
 *  - A numeric host must be a canonical IPv4 address (no octal/hex/short forms that resolve elsewhere).
 *  - The path is kept (Redis database number, PostgreSQL database name): it selects data, not a host.
 *  - `cluster_id`, if given, names the target's cluster as --cluster-id does for --target (a label,
 *    never an address): the only way to tell clusters apart for datastores without an identity of
 *    their own (Redis), and what /discover passes on to every member of one seed's cluster.
 */
import { isIPv4 } from 'node:net';
import { addressText, type TargetAddress } from './allowlist';
import type { AuthModule, ProbeFileConfig } from './config';
import { driverForScheme, supportedSchemes } from '../drivers/registry';
import type { Target } from '../core/model';
import { parseTarget } from '../core/target';
import { ConfigError } from '../core/errors';

/** A probe request refused before any connection: the HTTP status and a one-line reason. */
export class ProbeRequestError extends Error {
  override name = 'ProbeRequestError';
  constructor(
    readonly status: 400 | 403,
    message: string,
  ) {
    super(message);
  }
}

export interface ProbeTarget {
  /** Pool key: the effective target (user, TLS, parameters) and the auth module's name. */
  key: string;
  target: Target;
  address: TargetAddress;
  authModule?: string;
  /** `cluster_id` of the query: the cluster_id label instead of the datastore's own or 'default'. */
  clusterId?: string;
}

/** A cluster_id a caller may set: printable, no spaces or quotes, short (it is a label value). */
const CLUSTER_ID = /^[A-Za-z0-9_.:@/+-]{1,128}$/;

/** Longer than any real datastore URL; bounds the work done on hostile input. */
const MAX_TARGET_LENGTH = 2048;

/**
 * A numeric host in one of the legacy forms the system resolver also accepts (`010.0.0.1` is octal
 * 8.0.0.1, `0x0a.1`, `167772161`, `10.1`): the URL parser keeps such hosts as written for these
 * schemes, so they would be matched against the allowlist as text and connected to as another address.
 */
function isNumericAlias(host: string): boolean {
  const parts = host.split('.');
  return parts.every((p) => /^(0x[0-9a-f]*|[0-9]+)$/i.test(p)) && !isIPv4(host);
}

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ProbeRequestError(400, `give ?${name}= exactly once, as text`);
  return value;
}

/**
 * A host as the drivers dial it, with nothing left to decode or reinterpret: a DNS name (letters,
 * digits, '-', '_', dots; lower-cased) or an IP address. The URL parser keeps the host of these
 * non-special schemes as opaque text, %-escapes and commas included, and some drivers decode it
 * (MongoDB's connection string parser turned `mongo-x%2Eattacker%2Eexample` into
 * `mongo-x.attacker.example` after the allowlist had matched the escaped text), or read a comma as
 * a second host. Refusing every other character means the allowlist decides on exactly the host the
 * driver will connect to.
 */
const DIALLABLE_HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)$/;

/**
 * The path with its %-escapes written one way (decoded, then encoded again per segment), so that
 * `/postgres`, `/%70ostgres` and `/%70%6fstgres` are one pooled target, not three sessions. The
 * database a driver reads from it is unchanged.
 */
function canonicalPath(url: URL): string {
  if (url.pathname === '' || url.pathname === '/') return '';
  const segments = url.pathname.split('/').slice(1);
  try {
    return `/${segments.map((s) => encodeURIComponent(decodeURIComponent(s))).join('/')}`;
  } catch {
    throw new ProbeRequestError(400, 'target path has a malformed %-escape (write a literal % as %25)');
  }
}

/**
 * The target URL the driver gets: the probed address (validated host, explicit port, canonical path)
 * plus the auth module's user, TLS and params.
 */
function effectiveUrl(url: URL, address: TargetAddress, module: AuthModule | undefined): string {
  const scheme = url.protocol.slice(0, -1);
  let effectiveScheme = scheme;
  const params = new URLSearchParams();
  if (module?.tls) {
    // Each driver takes TLS from its URL (its own docs); its registration says which switch that is.
    const driver = driverForScheme(scheme)!;
    const mode = driver.tls?.schemes?.includes(scheme) ? {} : driver.tls?.mode;
    if (!mode) {
      throw new ProbeRequestError(
        400,
        `auth_module "${module.name}" asks for TLS, which the ${driver.name} driver does not support`,
      );
    }
    effectiveScheme = mode.scheme ?? scheme;
    for (const [k, v] of Object.entries(mode.params ?? {})) params.set(k, v);
  }
  for (const [k, v] of Object.entries(module?.params ?? {})) params.set(k, v);
  const user = module?.user ? `${encodeURIComponent(module.user)}@` : '';
  const query = params.size > 0 ? `?${params.toString()}` : '';
  return `${effectiveScheme}://${user}${address.host}:${address.port}${canonicalPath(url)}${query}`;
}

export function resolveProbeTarget(
  query: { target?: unknown; auth_module?: unknown; cluster_id?: unknown },
  config: ProbeFileConfig,
): ProbeTarget {
  const raw = single(query.target, 'target');
  if (raw === undefined || raw === '') {
    throw new ProbeRequestError(400, 'missing ?target= (e.g. /probe?target=redis://10.0.0.1:6379)');
  }
  if (raw.length > MAX_TARGET_LENGTH) throw new ProbeRequestError(400, 'target is too long');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProbeRequestError(400, 'target is not a valid URL (expected e.g. redis://10.0.0.1:6379)');
  }
  // Before anything that could echo the URL: credentials make the whole request invalid.
  if (url.password || url.username) {
    throw new ProbeRequestError(
      400,
      'target must not contain credentials: name an auth_module of the probe config instead',
    );
  }
  const scheme = url.protocol.slice(0, -1);
  const driver = driverForScheme(scheme);
  if (!driver) {
    throw new ProbeRequestError(
      400,
      `target scheme "${scheme}" is not supported (supported: ${supportedSchemes().join(', ')})`,
    );
  }
  if (!url.hostname) throw new ProbeRequestError(400, 'target has no host');
  // Non-special schemes keep the host's case: matched (and dialled) lower-cased, as DNS compares.
  const host = url.hostname.toLowerCase();
  if (!DIALLABLE_HOST.test(host)) {
    throw new ProbeRequestError(
      400,
      'target host must be a DNS name or an IP address, without %-escapes or other punctuation',
    );
  }
  if (isNumericAlias(host)) {
    throw new ProbeRequestError(
      400,
      'target host must be a DNS name or an IP address in its usual form (e.g. 10.0.0.1)',
    );
  }
  if (url.search || url.hash) {
    throw new ProbeRequestError(
      400,
      'target must not carry URL parameters or a fragment: driver settings come from the auth_module',
    );
  }

  const moduleName = single(query.auth_module, 'auth_module');
  let module: AuthModule | undefined;
  if (moduleName !== undefined && moduleName !== '') {
    module = config.authModules.get(moduleName);
    if (!module) {
      throw new ProbeRequestError(400, `unknown auth_module ${JSON.stringify(moduleName.slice(0, 64))}`);
    }
  }

  const address: TargetAddress = {
    scheme,
    host,
    port: url.port ? Number(url.port) : driver.defaultPort,
  };
  if (!config.allowlist.allows(address)) {
    throw new ProbeRequestError(
      403,
      `target ${addressText(address)} is not allowed by allowed_targets in ${config.source}`,
    );
  }
  // A module's credentials go only where its own allowed_targets say (a password sent to a listener
  // that is not the datastore meant for it is a password given away).
  if (module?.allowlist && !module.allowlist.allows(address)) {
    throw new ProbeRequestError(
      403,
      `auth_module "${module.name}" may not be used for target ${addressText(address)} (its allowed_targets in ${config.source})`,
    );
  }

  const clusterId = single(query.cluster_id, 'cluster_id') || undefined;
  if (clusterId !== undefined && !CLUSTER_ID.test(clusterId)) {
    throw new ProbeRequestError(400, `cluster_id must match ${CLUSTER_ID.source}`);
  }

  let target: Target;
  try {
    target = parseTarget(effectiveUrl(url, address, module), module?.password);
  } catch (err) {
    // The driver refusing the settings the auth module gave it (an invalid sslmode, a TLS file...).
    if (err instanceof ConfigError)
      throw new ProbeRequestError(400, err.message.replace(/^--target:? ?/, 'target '));
    throw err;
  }
  // The cluster_id is part of the key: the pooled Collector resolves identity with it.
  const key = `${module?.name ?? ''} ${target.redactedUrl}${clusterId ? ` ${clusterId}` : ''}`;
  return { key, target, address, authModule: module?.name, clusterId };
}

/**
 * Checks, at start-up, what a module with its own allowed_targets will hand each driver it may be
 * used with (TLS support, URL parameters, the files they name), so that a typo in the probe config
 * is one line and exit 2, not a 400 on every probe. Throws ConfigError.
 */
export function checkModuleSettings(module: AuthModule, where: string): void {
  for (const scheme of module.allowlist?.schemes ?? []) {
    const driver = driverForScheme(scheme)!;
    const address: TargetAddress = { scheme, host: 'settings-check.invalid', port: driver.defaultPort };
    try {
      parseTarget(effectiveUrl(new URL(`${scheme}://${address.host}`), address, module), module.password);
    } catch (err) {
      if (!(err instanceof ConfigError) && !(err instanceof ProbeRequestError)) throw err;
      const message = err.message.replace(/^--target \S+: /, '');
      throw new ConfigError(`${where}: auth_modules.${module.name} used with ${scheme}://: ${message}`);
    }
  }
}
