/**
 * Command-line flags and environment variables -> a validated Config.
 *
 * Flags follow the Prometheus exporters' conventions (`--web.listen-address`, `--log.level`...).
 * Every flag also has an environment variable; a `.env` file is loaded by the CLI before parsing.
 * Precedence: flag > environment > default. Any problem is a ConfigError with one clear line.
 */
import { ConfigError } from '../core/errors';
import { DRIVERS, supportedSchemes } from '../drivers/registry';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../core/logger';
import { parseTarget, readSecretFile } from '../core/target';
import type { Target } from '../core/model';
import type { ProbeSettings } from '../probe/service';
import { loadProbeConfig } from '../probe/config';
import { loadWebConfig, type WebConfig } from './web-config';

export interface Config {
  target: Target;
  /** Multi-target probing (GET /probe), when --probe.config-file is set. */
  probe?: ProbeSettings;
  listenHost?: string;
  listenPort: number;
  telemetryPath: string;
  collectIntervalSeconds: number;
  collectTimeoutMs: number;
  maxBackoffSeconds: number;
  clusterId?: string;
  /** --cluster-id.fallback when set explicitly (undefined: the built-in 'default'). */
  fallbackClusterId?: string;
  nodeId?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Driver-specific flags (`--kafka.broker-id` -> extra['broker-id']) for the selected driver. */
  driverExtra: Record<string, string>;
  /** Heartbeat mode (--heartbeat): the write interval; undefined when off. */
  heartbeatIntervalMs?: number;
  /** TLS, basic auth, headers and rate limit from --web.config.file; undefined: plain HTTP, open. */
  web?: WebConfig;
}

/**
 * What the CLI runs: a Config whose target may be absent when only /probe is served
 * (--probe.config-file without --target). loadConfig() keeps returning a Config with a target.
 */
export type ServerConfig = Omit<Config, 'target'> & { target?: Target };

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
    name: 'target.file',
    env: ['DATASTORE_TARGET_FILE'],
    help: 'File holding the whole --target URL, for URLs with credentials in them (e.g. the uri key of a Kubernetes Secret an operator wrote); instead of --target.',
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
    name: 'web.config.file',
    env: ['DATASTORE_WEB_CONFIG_FILE'],
    help: "exporter-toolkit's web configuration file (YAML): TLS, client certificates, basic auth with bcrypt hashes, headers, rate limit (docs/security.md).",
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
    help: "Cluster id label, over the datastore's own cluster identity; default: the datastore's own, else --cluster-id.fallback.",
  },
  {
    name: 'cluster-id.fallback',
    env: ['DATASTORE_CLUSTER_ID_FALLBACK'],
    help: 'Cluster id label only when the datastore has no cluster identity of its own (standalone or replicated Redis, MySQL/MariaDB, ZooKeeper); the Helm chart sets the release name.',
    default: 'default',
  },
  {
    name: 'node-id',
    env: ['DATASTORE_NODE_ID'],
    help: 'Node id when the datastore has no stable id of its own; default: <hostname>:<port>.',
  },
  {
    name: 'probe.config-file',
    env: ['DATASTORE_PROBE_CONFIG_FILE'],
    help: 'YAML file enabling GET /probe?target=<url>: allowed_targets patterns and auth_modules (docs/probe.md). With it, --target is optional.',
  },
  {
    name: 'probe.timeout',
    env: ['DATASTORE_PROBE_TIMEOUT'],
    help: "Deadline of one probe, connect included; lowered to Prometheus's X-Prometheus-Scrape-Timeout-Seconds minus 0.5s.",
    default: '10s',
  },
  {
    name: 'probe.max-concurrent',
    env: ['DATASTORE_PROBE_MAX_CONCURRENT'],
    help: 'Probes running at once; beyond, /probe answers 503.',
    default: '32',
  },
  {
    name: 'probe.max-targets',
    env: ['DATASTORE_PROBE_MAX_TARGETS'],
    help: 'Targets with a pooled connection; beyond, the least recently probed idle one is closed.',
    default: '100',
  },
  {
    name: 'probe.idle-timeout',
    env: ['DATASTORE_PROBE_IDLE_TIMEOUT'],
    help: 'Close the pooled connection of a target not probed for this long.',
    default: '5m',
  },
  {
    name: 'heartbeat',
    env: ['DATASTORE_HEARTBEAT'],
    help: 'Heartbeat mode: the primary writes its time into the replicated data and replicas report lag = now - that time (needs a write privilege and synchronised clocks; see README).',
    boolean: true,
  },
  {
    name: 'heartbeat.interval',
    env: ['DATASTORE_HEARTBEAT_INTERVAL'],
    help: 'How often the primary writes its heartbeat (the granularity of heartbeat lag).',
    default: '500ms',
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
    '       datastore-exporter --probe.config-file <file> [--target <url>] [flags]   (GET /probe?target=<url>)',
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

/** A boolean flag or env value: true/1/yes or false/0/no (a bare flag is true). */
function parseBoolean(value: string | undefined, flag: string): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(`--${flag} "${value}" is not a boolean (true or false)`);
}

/** A whole number of at least 1 (a cap). */
function parseCount(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`--${flag} "${value}" must be a whole number of at least 1`);
  }
  return n;
}

const PROBE_TUNING_FLAGS = [
  'probe.timeout',
  'probe.max-concurrent',
  'probe.max-targets',
  'probe.idle-timeout',
];

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

const TARGET_REQUIRED = '--target (or DATASTORE_TARGET) is required, e.g. redis://127.0.0.1:6379';

/** A configuration with a --target (single-target mode, optionally with /probe as well). */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' | 'version' {
  const config = loadServerConfig(argv, env);
  if (typeof config === 'string') return config;
  const { target } = config;
  if (!target) throw new ConfigError(TARGET_REQUIRED);
  return { ...config, target };
}

/** Any configuration the CLI accepts, including /probe only (no --target). */
export function loadServerConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig | 'help' | 'version' {
  const args = parseArgs(argv);
  if (args.has('help')) return 'help';
  if (args.has('version')) return 'version';
  const get = (name: string): string | undefined => {
    if (args.has(name)) return args.get(name);
    const spec = allFlags().find((f) => f.name === name);
    for (const e of spec?.env ?? []) if (env[e] !== undefined && env[e] !== '') return env[e];
    return spec?.default;
  };

  const isSet = (name: string): boolean =>
    args.has(name) || (allFlags().find((f) => f.name === name)?.env ?? []).some((e) => !!env[e]);

  const probeFile = get('probe.config-file');
  let probe: ProbeSettings | undefined;
  if (probeFile) {
    probe = {
      config: loadProbeConfig(probeFile),
      timeoutMs: parseDuration(get('probe.timeout')!, 'probe.timeout'),
      maxConcurrent: parseCount(get('probe.max-concurrent')!, 'probe.max-concurrent'),
      maxTargets: parseCount(get('probe.max-targets')!, 'probe.max-targets'),
      idleTimeoutMs: parseDuration(get('probe.idle-timeout')!, 'probe.idle-timeout'),
    };
  } else {
    const stray = PROBE_TUNING_FLAGS.find(isSet);
    if (stray) throw new ConfigError(`--${stray} needs --probe.config-file (probing is off without it)`);
  }

  const targetFile = get('target.file');
  let rawTarget = get('target');
  if (targetFile) {
    if (rawTarget) throw new ConfigError('give --target or --target.file, not both');
    // A trailing newline is dropped by readSecretFile; surrounding blanks are never part of a URL.
    rawTarget = readSecretFile(targetFile, '--target.file').trim();
    if (!rawTarget) throw new ConfigError(`--target.file ${JSON.stringify(targetFile)} is empty`);
  }
  if (!rawTarget && !probe) {
    throw new ConfigError(`${TARGET_REQUIRED} (or --probe.config-file to serve only /probe)`);
  }
  const passwordFile = get('target.password-file');
  if (passwordFile && !rawTarget) throw new ConfigError('--target.password-file needs --target');
  const password = passwordFile ? readSecretFile(passwordFile, '--target.password-file') : undefined;
  let target: Target | undefined;
  try {
    target = rawTarget ? parseTarget(rawTarget, password) : undefined;
  } catch (err) {
    // parseTarget's messages say --target; name the file the URL came from instead.
    if (targetFile && err instanceof ConfigError) {
      throw new ConfigError(
        `--target.file ${JSON.stringify(targetFile)}: ${err.message.replace(/^--target /, 'the URL ')}`,
      );
    }
    throw err;
  }

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
  const webConfigFile = get('web.config.file');
  const web = webConfigFile ? loadWebConfig(webConfigFile) : undefined;

  const driver = target ? DRIVERS.find((d) => d.schemes.includes(target.scheme))! : undefined;
  const driverExtra: Record<string, string> = {};
  for (const f of driver?.flags ?? []) {
    const flag = `${driver!.name}.${f.name}`;
    const value = get(flag);
    if (value === undefined) continue;
    const problem = f.validate?.(value);
    if (problem) throw new ConfigError(`--${flag} ${JSON.stringify(value)} ${problem}`);
    driverExtra[f.name] = value;
  }

  const heartbeat = parseBoolean(get('heartbeat'), 'heartbeat');
  if (heartbeat && !target) throw new ConfigError('--heartbeat needs --target');
  if (heartbeat && !driver!.heartbeat) {
    throw new ConfigError(`--heartbeat is not supported by the ${driver!.name} driver`);
  }
  const heartbeatIntervalMs = heartbeat
    ? parseDuration(get('heartbeat.interval')!, 'heartbeat.interval')
    : undefined;

  return {
    target,
    probe,
    heartbeatIntervalMs,
    listenHost: listen.host,
    listenPort: listen.port,
    telemetryPath,
    collectIntervalSeconds: interval,
    collectTimeoutMs: timeoutMs,
    maxBackoffSeconds,
    clusterId: get('cluster-id') || undefined,
    // Only when set: the built-in 'default' is the one fallback the exporter warns about.
    fallbackClusterId: isSet('cluster-id.fallback') ? get('cluster-id.fallback') || undefined : undefined,
    nodeId: get('node-id') || undefined,
    logLevel,
    logFormat,
    driverExtra,
    web,
  };
}
