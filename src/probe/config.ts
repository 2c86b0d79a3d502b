/**
 * The /probe configuration file (--probe.config-file, YAML): which targets may be probed
 * (`allowed_targets`) and the credentials to probe them with (`auth_modules`, chosen per probe with
 * `&auth_module=`). Credentials live only here, never in the probe's query string: a URL in a
 * Prometheus config, an access log or a proxy's history is no place for a password.
 *
 *   allowed_targets:                       # default: nothing may be probed
 *     - redis://10.0.0.*:6379
 *     - postgresql://db-*.example.net:5432
 *   auth_modules:
 *     pg_monitor:
 *       user: monitor                      # the datastore user
 *       password_file: /run/secrets/pg     # read once at start-up; a trailing newline is dropped
 *       tls: true                          # the driver's TLS mode (redis -> rediss, postgresql -> sslmode=verify-full...)
 *       params:                            # the driver's own URL parameters (docs per driver), e.g.
 *         sslrootcert: /etc/ssl/db-ca.pem
 *
 * Loaded once at start-up; every problem is a ConfigError naming the file and the field, so the CLI
 * prints one line and exits 2. Unknown keys are errors: a typo ("pasword_file") must not silently
 * probe without credentials.
 */
import { ConfigError } from '../core/errors';
import { isPlainObject, parseYamlDocument, unknownKey } from '../config/yaml-schema';
import { TargetAllowlist } from './allowlist';
import { checkModuleSettings } from './target';
import { readSecretFile } from '../core/target';
import { readFailure, readRegularFile } from '../core/files';

export interface AuthModule {
  name: string;
  /**
   * The targets this module may be used for (`allowed_targets` patterns, as at the top level); a
   * probe of any other target with it is 403. Absent: every target of the top-level list.
   */
  allowlist?: TargetAllowlist;
  user?: string;
  /** Read from password_file. Never logged. */
  password?: string;
  /** Use the driver's TLS mode (see probe/target.ts for what that means per datastore). */
  tls: boolean;
  /** The driver's own URL parameters, added to the target URL (TLS files, sslmode, sasl...). */
  params: Record<string, string>;
}

export interface ProbeFileConfig {
  /** The file, for messages. */
  source: string;
  allowlist: TargetAllowlist;
  authModules: Map<string, AuthModule>;
}

const TOP_LEVEL_KEYS = ['allowed_targets', 'auth_modules'];
const MODULE_KEYS = ['user', 'password_file', 'tls', 'params', 'allowed_targets'];
/** Secrets belong in password_file, not in a parameter that ends up in the driver's URL. */
const SECRET_PARAM = /(password|passwd|pwd|secret|token)/i;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function checkKeys(obj: Record<string, unknown>, allowed: string[], where: string): void {
  const key = unknownKey(obj, allowed);
  if (key !== undefined) {
    throw new ConfigError(`${where}: unknown key "${key}" (expected: ${allowed.join(', ')})`);
  }
}

function parseModule(
  name: string,
  raw: unknown,
  where: string,
  readSecret: (path: string, what: string) => string,
): AuthModule {
  const at = `${where}: auth_modules.${name}`;
  if (!NAME.test(name))
    throw new ConfigError(`${where}: auth module name "${name}" must match ${NAME.source}`);
  if (raw === null || raw === undefined) return { name, tls: false, params: {} };
  if (!isPlainObject(raw)) throw new ConfigError(`${at} must be a mapping`);
  checkKeys(raw, MODULE_KEYS, at);
  const module: AuthModule = { name, tls: false, params: {} };
  if (raw.user !== undefined) {
    if (typeof raw.user !== 'string' || raw.user === '') throw new ConfigError(`${at}.user must be a string`);
    module.user = raw.user;
  }
  if (raw.password_file !== undefined) {
    if (typeof raw.password_file !== 'string' || raw.password_file === '') {
      throw new ConfigError(`${at}.password_file must be a path`);
    }
    module.password = readSecret(raw.password_file, `${at}.password_file`);
  }
  if (raw.tls !== undefined) {
    if (typeof raw.tls !== 'boolean') throw new ConfigError(`${at}.tls must be true or false`);
    module.tls = raw.tls;
  }
  if (raw.allowed_targets !== undefined) {
    const patterns = raw.allowed_targets;
    if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === 'string')) {
      throw new ConfigError(`${at}.allowed_targets must be a list of strings (scheme://host:port patterns)`);
    }
    module.allowlist = TargetAllowlist.compile(patterns as string[], `${where} auth_modules.${name}`);
  }
  if (raw.params !== undefined) {
    if (!isPlainObject(raw.params)) throw new ConfigError(`${at}.params must be a mapping`);
    for (const [key, value] of Object.entries(raw.params)) {
      if (SECRET_PARAM.test(key)) {
        throw new ConfigError(`${at}.params.${key}: put secrets in password_file, not in params`);
      }
      if (!['string', 'number', 'boolean'].includes(typeof value)) {
        throw new ConfigError(`${at}.params.${key} must be a string, number or boolean`);
      }
      module.params[key] = String(value);
    }
  }
  return module;
}

/** Parses the file's text; `source` names it in messages. Throws ConfigError. */
export function parseProbeConfig(
  text: string,
  source: string,
  readSecret: (path: string, what: string) => string = readSecretFile,
): ProbeFileConfig {
  const where = `--probe.config-file ${source}`;
  let doc = parseYamlDocument(text, where);
  if (doc === null || doc === undefined) doc = {};
  if (!isPlainObject(doc))
    throw new ConfigError(`${where}: must be a mapping with allowed_targets and auth_modules`);
  checkKeys(doc, TOP_LEVEL_KEYS, where);

  const patterns = doc.allowed_targets ?? [];
  if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === 'string')) {
    throw new ConfigError(
      `${where}: allowed_targets must be a list of strings (scheme://host:port patterns)`,
    );
  }
  const allowlist = TargetAllowlist.compile(patterns as string[], where);

  const modules = doc.auth_modules ?? {};
  if (!isPlainObject(modules))
    throw new ConfigError(`${where}: auth_modules must be a mapping of name -> module`);
  const authModules = new Map<string, AuthModule>();
  for (const [name, raw] of Object.entries(modules)) {
    const module = parseModule(name, raw, where, readSecret);
    checkModuleSettings(module, where);
    authModules.set(name, module);
  }
  return { source, allowlist, authModules };
}

export function loadProbeConfig(path: string): ProbeFileConfig {
  let text: string;
  try {
    text = readRegularFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --probe.config-file ${JSON.stringify(path)}: ${readFailure(err)}`);
  }
  return parseProbeConfig(text, JSON.stringify(path));
}
