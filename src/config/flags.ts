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
import { telemetryPathProblem } from '../http/paths';

export interface Config {
  target: Target;
  /** Multi-target probing (GET /probe), when --probe.config-file is set. */
  probe?: ProbeSettings;
  /**
   * Where to listen: --web.listen-address may be given several times, as with exporter-toolkit; the
   * same routes are served on every address. Never empty.
   */
  listen: ListenAddress[];
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

export interface ListenAddress {
  /** undefined: every interface. */
  host?: string;
  port: number;
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
  /** May be given several times on the command line (each value kept); others may be given once. */
  repeatable?: boolean;
  /** A one-letter form, e.g. 'h' for -h. */
  short?: string;
  /** A duration: parsed by parseDuration (a unit is required). */
  duration?: boolean;
}

/** The smaller of this and --collect.interval is the default --collect.timeout. */
const DEFAULT_COLLECT_TIMEOUT_MS = 3000;

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
    help: 'Address to listen on for HTTP requests, [host]:port; give the flag several times to listen on several addresses.',
    default: `:${DEFAULT_PORT}`,
    repeatable: true,
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
    duration: true,
    env: ['DATASTORE_COLLECT_INTERVAL'],
    help: 'How often to collect from the datastore (e.g. 5s, 1m); must divide a minute or an hour evenly.',
    default: '5s',
  },
  {
    name: 'collect.timeout',
    duration: true,
    env: ['DATASTORE_COLLECT_TIMEOUT'],
    help: 'Deadline for one collection, connect included; at most the interval.',
    default: 'the smaller of 3s and --collect.interval',
  },
  {
    name: 'collect.max-backoff',
    duration: true,
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
    duration: true,
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
    name: 'probe.max-connections-per-host',
    env: ['DATASTORE_PROBE_MAX_CONNECTIONS_PER_HOST'],
    help: 'Pooled targets (connections) per datastore address host:port, whatever the path or auth module; beyond, the least recently probed idle one is closed.',
    default: '4',
  },
  {
    name: 'probe.idle-timeout',
    duration: true,
    env: ['DATASTORE_PROBE_IDLE_TIMEOUT'],
    help: 'Close the pooled connection of a target not probed for this long.',
    default: '5m',
  },
  {
    name: 'heartbeat',
    env: ['DATASTORE_HEARTBEAT'],
    help: 'Heartbeat mode: the primary writes its time into the replicated data and replicas report lag = now - that time (needs a write privilege and synchronised clocks; see docs/heartbeat.md).',
    boolean: true,
  },
  {
    name: 'heartbeat.interval',
    duration: true,
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
  { name: 'help', short: 'h', env: [], help: 'Show this help and exit.', boolean: true },
  {
    name: 'version',
    short: 'v',
    env: [],
    help: 'Show the version (with the git revision and branch it was built from) and exit.',
    boolean: true,
  },
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
    'Flags (each also read from the environment variable shown; a .env file in the working directory is loaded).',
    `Durations take a unit: ${DURATION_UNITS.join(', ')} (e.g. 500ms, 5s, 1m30s).`,
    '',
  ];
  for (const f of allFlags()) {
    const def = f.default ? ` (default: ${f.default})` : '';
    const short = f.short ? `-${f.short}, ` : '';
    lines.push(`  ${short}--${f.name}${f.boolean ? '' : '=<value>'}`);
    lines.push(`      ${f.help}${def}${f.env.length ? `  [env ${f.env.join(', ')}]` : ''}`);
  }
  return lines.join('\n');
}

/**
 * The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days). A longer one is not an error
 * to Node: it warns and fires after 1 ms, so `--heartbeat.interval 600h` would write every
 * millisecond. Every duration flag is capped here.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Shortest sensible value per flag, where 1 ms would be a mistake that hurts the datastore. */
const MIN_DURATION_MS: Record<string, number> = { 'heartbeat.interval': 10 };

function durationText(ms: number): string {
  if (ms >= 3600000 && ms % 3600000 === 0) return `${ms / 3600000}h`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const DURATION_UNITS = ['ms', 's', 'm', 'h'] as const;
const UNIT_MS: Record<(typeof DURATION_UNITS)[number], number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };

/**
 * Parses a duration with units, Go-style: `500ms`, `5s`, `1m`, `1h`, `1m30s`. Returns milliseconds.
 * A bare number is refused for every duration flag alike (is `--heartbeat.interval=500` 500 ms or
 * 500 s?), as Prometheus and the Go exporters refuse it; the message shows the seconds spelling.
 * The result is a whole number of milliseconds from 1 (or the flag's minimum) to MAX_DURATION_MS.
 */
export function parseDuration(value: string, flag: string): number {
  const text = value.trim();
  // A bare zero needs no unit (as in Go); it is refused below for being zero.
  if (/^0+(?:\.0+)?$/.test(text)) throw new ConfigError(`--${flag} must be greater than zero`);
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    throw new ConfigError(
      `--${flag} "${value}" has no unit: write ${text}s for seconds (units: ${DURATION_UNITS.join(', ')})`,
    );
  }
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let ms = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (!m) {
      throw new ConfigError(`--${flag} "${value}" is not a duration (e.g. 500ms, 5s, 1m, 1m30s)`);
    }
    ms += Number(m[1]) * UNIT_MS[m[2] as (typeof DURATION_UNITS)[number]];
    at = part.lastIndex;
  }
  if (text === '')
    throw new ConfigError(`--${flag} "${value}" is not a duration (e.g. 500ms, 5s, 1m, 1m30s)`);
  if (!(ms > 0)) throw new ConfigError(`--${flag} must be greater than zero`);
  if (!(ms <= MAX_DURATION_MS)) {
    throw new ConfigError(
      `--${flag} "${value}" is too long: at most ${durationText(Math.floor(MAX_DURATION_MS / 3600000) * 3600000)} (Node.js timers stop at about 24.8 days)`,
    );
  }
  const min = MIN_DURATION_MS[flag] ?? 1;
  if (ms < min) throw new ConfigError(`--${flag} "${value}" is too short: at least ${durationText(min)}`);
  return Math.round(ms);
}

/** `5000` -> `5s`, `1500` -> `1.5s`, `250` -> `250ms`: how a duration is shown back in messages. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${ms / 1000}s`;
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

/**
 * Splits argv into flag values: `--name value`, `--name=value`, boolean `--name`, and the short forms
 * `-h` and `-v`. A flag may be given once, unless it is repeatable (its values are kept in order).
 */
export function parseArgs(argv: string[]): Map<string, string[]> {
  const flags = allFlags();
  const specs = new Map(flags.map((f) => [f.name, f]));
  for (const f of flags) if (f.short) specs.set(f.short, f);
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z0-9][a-z0-9._-]*)(?:=(.*))?$/is.exec(arg);
    if (!m)
      throw new ConfigError(`unexpected argument "${arg.startsWith('-') ? arg : '<value>'}" (see --help)`);
    const name = m[1]!;
    const spec = specs.get(name);
    if (!spec) {
      const hint = suggestFlags(
        name,
        flags.map((f) => f.name),
      );
      throw new ConfigError(
        `unknown flag ${arg.startsWith('--') ? '--' : '-'}${name}${hint.length ? `: did you mean ${hint.map((h) => `--${h}`).join(' or ')}?` : ''} (see --help)`,
      );
    }
    let value = m[2];
    if (spec.boolean) {
      value ??= 'true';
    } else if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(`--${spec.name} needs a value`);
    }
    const previous = values.get(spec.name);
    if (previous && !spec.repeatable) {
      throw new ConfigError(
        `--${spec.name} is given more than once (${[...previous, value].map((v) => JSON.stringify(v)).join(', ')}): give it once`,
      );
    }
    values.set(spec.name, [...(previous ?? []), value]);
  }
  return values;
}

/** Edits (insert, delete, substitute, swap two neighbours) between two names. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The flags a mistyped name probably meant: a different spelling of the separators
 * (`--log_level`, `--log-level`), a known flag's last part (`--listen-address`, `--interval`), or the
 * nearest names within a typo or two (`--colect.interval`). At most two, best first.
 */
export function suggestFlags(typed: string, names: string[]): string[] {
  const flat = (n: string): string => n.toLowerCase().replace(/[._-]/g, '');
  const same = names.filter((n) => flat(n) === flat(typed));
  if (same.length) return same.slice(0, 2);
  const lower = typed.toLowerCase().replace(/_/g, '-');
  const suffix = names.filter((n) => n.endsWith(`.${lower}`));
  if (suffix.length) return suffix.slice(0, 2);
  const limit = typed.length >= 6 ? 2 : 1;
  const scored = names
    .map((n) => ({ n, d: editDistance(lower, n) }))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d);
  return scored
    .filter((x) => x.d === scored[0]?.d)
    .map((x) => x.n)
    .slice(0, 2);
}

/** The exporter's own build and tooling variables (revision, branch, Node.js cache): not settings. */
const INTERNAL_ENV_PREFIX = 'DATASTORE_EXPORTER_';

/** A `DATASTORE_*` variable that no flag reads, and the variables it probably meant. */
export interface UnknownVariable {
  name: string;
  suggestions: string[];
}

/**
 * The `DATASTORE_*` variables of `env` that no flag reads. A mistyped variable
 * (DATASTORE_COLLECT_INTERVL) would otherwise be ignored without a word while its setting silently
 * keeps its default; the caller warns (not an error: other software may share the prefix).
 */
export function unknownEnvironment(env: NodeJS.ProcessEnv): UnknownVariable[] {
  const flags = allFlags();
  const known = new Set(flags.flatMap((f) => f.env));
  const envOf = new Map(flags.map((f) => [f.name, f.env[0]]));
  return Object.keys(env)
    .filter(
      (name) => name.startsWith('DATASTORE_') && !name.startsWith(INTERNAL_ENV_PREFIX) && !known.has(name),
    )
    .sort()
    .map((name) => ({
      name,
      suggestions: suggestFlags(name.slice('DATASTORE_'.length), [...envOf.keys()])
        .map((flag) => envOf.get(flag))
        .filter((e): e is string => e !== undefined),
    }));
}

/** Every --web.listen-address, parsed; the same address twice is refused (the second bind would fail). */
function listenAddresses(values: string[]): ListenAddress[] {
  const seen = new Map<string, string>();
  return values.map((value) => {
    const address = parseListenAddress(value);
    const key = `${address.host ?? ''}|${address.port}`;
    if (address.port !== 0 && seen.has(key)) {
      throw new ConfigError(
        `--web.listen-address ${JSON.stringify(value)} repeats ${JSON.stringify(seen.get(key))}: give each address once`,
      );
    }
    seen.set(key, value);
    return address;
  });
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
  'probe.max-connections-per-host',
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
    if (args.has(name)) return args.get(name)!.at(-1);
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
      maxPerHost: parseCount(get('probe.max-connections-per-host')!, 'probe.max-connections-per-host'),
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
  // Unset, the timeout follows the interval, so `--collect.interval 1s` alone just works.
  const rawTimeout = get('collect.timeout');
  const timeoutMs = isSet('collect.timeout')
    ? parseDuration(rawTimeout!, 'collect.timeout')
    : Math.min(DEFAULT_COLLECT_TIMEOUT_MS, interval * 1000);
  if (timeoutMs > interval * 1000) {
    throw new ConfigError(
      `--collect.timeout ${formatDuration(timeoutMs)} exceeds --collect.interval ${formatDuration(interval * 1000)}: ` +
        `a collection must end before the next one starts; lower --collect.timeout to at most ` +
        `${formatDuration(interval * 1000)} (or leave it unset) or raise --collect.interval`,
    );
  }
  const rawBackoff = isSet('collect.max-backoff') ? get('collect.max-backoff') : undefined;
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
  const pathProblem = telemetryPathProblem(telemetryPath);
  if (pathProblem) throw new ConfigError(`--web.telemetry-path ${pathProblem}`);
  const listen = listenAddresses(args.get('web.listen-address') ?? [get('web.listen-address')!]);
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
    listen,
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
