/**
 * Command-line flags and environment variables -> a validated Config.
 *
 * Flags follow the Prometheus exporters' conventions (`--web.listen-address`, `--log.level`...).
 * Every flag also has an environment variable; a `.env` file is loaded by the CLI before parsing.
 * Precedence: flag > environment > default. Any problem is a ConfigError with one clear line.
 */
import { ConfigError } from './errors';
import { DRIVERS, supportedSchemes } from './drivers';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './logger';
import { parseTarget, readSecretFile } from './target';
import type { Target } from './model';

export interface Config {
  target: Target;
  listenHost?: string;
  listenPort: number;
  telemetryPath: string;
  collectIntervalSeconds: number;
  collectTimeoutMs: number;
  maxBackoffSeconds: number;
  clusterId?: string;
  nodeId?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Driver-specific flags (`--kafka.broker-id` -> extra['broker-id']) for the selected driver. */
  driverExtra: Record<string, string>;
}

/** The default port: in the exporters' 9100-9999 range, clear of the peer exporters (redis 9121,
 * postgres 9187, mysqld 9104, mongodb 9216, kafka 9308, zookeeper 9141) so both can run side by side
 * while users migrate. */
export const DEFAULT_PORT = 9860;

interface FlagSpec {
  name: string;
  env: string[];
  help: string;
  default?: string;
  boolean?: boolean;
}

export const FLAGS: FlagSpec[] = [
  {
    name: 'target',
    env: ['DATASTORE_TARGET'],
    help: `Datastore URL of the local node; the scheme picks the driver (${supportedSchemes().join(', ')}).`,
  },
  {
    name: 'target.password-file',
    env: ['DATASTORE_PASSWORD_FILE', 'DATASTORE_TARGET_PASSWORD_FILE'],
    help: 'File holding the datastore password (takes precedence over a password in the URL).',
  },
  {
    name: 'web.listen-address',
    env: ['DATASTORE_WEB_LISTEN_ADDRESS'],
    help: 'Address to listen on for HTTP requests, [host]:port.',
    default: `:${DEFAULT_PORT}`,
  },
  {
    name: 'web.telemetry-path',
    env: ['DATASTORE_WEB_TELEMETRY_PATH'],
    help: 'Path under which to expose metrics.',
    default: '/metrics',
  },
  {
    name: 'collect.interval',
    env: ['DATASTORE_COLLECT_INTERVAL'],
    help: 'How often to collect from the datastore (e.g. 5s, 1m); must divide a minute or an hour evenly.',
    default: '5s',
  },
  {
    name: 'collect.timeout',
    env: ['DATASTORE_COLLECT_TIMEOUT'],
    help: 'Deadline for one collection, connect included; at most the interval.',
    default: '3s',
  },
  {
    name: 'collect.max-backoff',
    env: ['DATASTORE_COLLECT_MAX_BACKOFF'],
    help: 'Longest wait between reconnect attempts after failures (doubling from one interval).',
    default: 'the collection interval',
  },
  {
    name: 'cluster-id',
    env: ['DATASTORE_CLUSTER_ID'],
    help: "Cluster id label; default: the datastore's own cluster identity, else 'default'.",
  },
  {
    name: 'node-id',
    env: ['DATASTORE_NODE_ID'],
    help: 'Node id when the datastore has no stable id of its own; default: <hostname>:<port>.',
  },
  {
    name: 'log.level',
    env: ['DATASTORE_LOG_LEVEL'],
    help: `Log level: ${LOG_LEVELS.join(', ')}.`,
    default: 'info',
  },
  {
    name: 'log.format',
    env: ['DATASTORE_LOG_FORMAT'],
    help: `Log format: ${LOG_FORMATS.join(', ')}.`,
    default: 'logfmt',
  },
  { name: 'help', env: [], help: 'Show this help and exit.', boolean: true },
  { name: 'version', env: [], help: 'Show the version and exit.', boolean: true },
];

/** Driver flags, e.g. `--kafka.broker-id`, with env `DATASTORE_KAFKA_BROKER_ID`. */
function driverFlags(): FlagSpec[] {
  return DRIVERS.flatMap((d) =>
    (d.flags ?? []).map((f) => ({
      name: `${d.name}.${f.name}`,
      env: [envName(`${d.name}.${f.name}`)],
      help: f.help,
    })),
  );
}

function envName(flag: string): string {
  return 'DATASTORE_' + flag.toUpperCase().replace(/[.-]/g, '_');
}

export function allFlags(): FlagSpec[] {
  return [...FLAGS, ...driverFlags()];
}

export function helpText(): string {
  const lines = [
    'Usage: datastore-exporter --target <url> [flags]',
    '',
    'A Prometheus exporter for replicated, sharded datastores: one metric contract for all of them.',
    '',
    'Flags (each also read from the environment variable shown; a .env file in the working directory is loaded):',
  ];
  for (const f of allFlags()) {
    const def = f.default ? ` (default: ${f.default})` : '';
    lines.push(`  --${f.name}${f.boolean ? '' : '=<value>'}`);
    lines.push(`      ${f.help}${def}${f.env.length ? `  [env ${f.env.join(', ')}]` : ''}`);
  }
  return lines.join('\n');
}

/** Parses `5s`, `500ms`, `1m`, `1h`, or a bare number of seconds. Returns milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`--${flag} "${value}" is not a duration (e.g. 500ms, 5s, 1m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = n * { ms: 1, s: 1000, m: 60000, h: 3600000 }[unit]!;
  if (!(ms > 0)) throw new ConfigError(`--${flag} must be greater than zero`);
  return ms;
}

export function parseListenAddress(value: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`--web.listen-address "${value}" is not [host]:port (e.g. :${DEFAULT_PORT})`);
  }
  const host = m[1] ?? m[2];
  return { host: host || undefined, port };
}

/** Splits argv into flag values; `--name value`, `--name=value` and boolean `--name`. */
export function parseArgs(argv: string[]): Map<string, string> {
  const specs = new Map(allFlags().map((f) => [f.name, f]));
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z0-9][a-z0-9.-]*)(?:=(.*))?$/is.exec(arg);
    if (!m)
      throw new ConfigError(`unexpected argument "${arg.startsWith('-') ? arg : '<value>'}" (see --help)`);
    const name = m[1]!;
    const spec = specs.get(name) ?? (name === 'h' ? specs.get('help') : undefined);
    if (!spec) throw new ConfigError(`unknown flag --${name} (see --help)`);
    if (spec.boolean) {
      values.set(spec.name, m[2] ?? 'true');
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    }
    values.set(spec.name, value);
  }
  return values;
}

/** A minute-aligned schedule needs the interval to divide a minute (or an hour) evenly. */
function validateInterval(ms: number): number {
  const seconds = ms / 1000;
  const ok =
    Number.isInteger(seconds) &&
    ((seconds < 60 && 60 % seconds === 0) || (seconds % 60 === 0 && seconds <= 3600 && 3600 % seconds === 0));
  if (!ok) {
    throw new ConfigError(
      `--collect.interval ${seconds}s must be whole seconds dividing a minute (1s..30s) or whole minutes dividing an hour`,
    );
  }
  return seconds;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' | 'version' {
  const args = parseArgs(argv);
  if (args.has('help')) return 'help';
  if (args.has('version')) return 'version';
  const get = (name: string): string | undefined => {
    if (args.has(name)) return args.get(name);
    const spec = allFlags().find((f) => f.name === name);
    for (const e of spec?.env ?? []) if (env[e] !== undefined && env[e] !== '') return env[e];
    return spec?.default;
  };

  const rawTarget = get('target');
  if (!rawTarget)
    throw new ConfigError('--target (or DATASTORE_TARGET) is required, e.g. redis://127.0.0.1:6379');
  const passwordFile = get('target.password-file');
  const password = passwordFile ? readSecretFile(passwordFile, '--target.password-file') : undefined;
  const target = parseTarget(rawTarget, password);

  const interval = validateInterval(parseDuration(get('collect.interval')!, 'collect.interval'));
  const timeoutMs = parseDuration(get('collect.timeout')!, 'collect.timeout');
  if (timeoutMs > interval * 1000) {
    throw new ConfigError(`--collect.timeout must not exceed --collect.interval (${interval}s)`);
  }
  const rawBackoff = args.get('collect.max-backoff') ?? env.DATASTORE_COLLECT_MAX_BACKOFF;
  const maxBackoffSeconds = rawBackoff ? parseDuration(rawBackoff, 'collect.max-backoff') / 1000 : interval;

  const logLevel = get('log.level') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`--log.level "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const logFormat = get('log.format') as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) {
    throw new ConfigError(`--log.format "${logFormat}" is not one of ${LOG_FORMATS.join(', ')}`);
  }
  const telemetryPath = get('web.telemetry-path')!;
  if (!telemetryPath.startsWith('/')) throw new ConfigError('--web.telemetry-path must start with "/"');
  const listen = parseListenAddress(get('web.listen-address')!);

  const driver = DRIVERS.find((d) => d.schemes.includes(target.scheme))!;
  const driverExtra: Record<string, string> = {};
  for (const f of driver.flags ?? []) {
    const value = get(`${driver.name}.${f.name}`);
    if (value !== undefined) driverExtra[f.name] = value;
  }

  return {
    target,
    listenHost: listen.host,
    listenPort: listen.port,
    telemetryPath,
    collectIntervalSeconds: interval,
    collectTimeoutMs: timeoutMs,
    maxBackoffSeconds,
    clusterId: get('cluster-id') || undefined,
    nodeId: get('node-id') || undefined,
    logLevel,
    logFormat,
    driverExtra,
  };
}
