/**
 * The configuration block of the rules mixin: everything a user may want to change without editing
 * PromQL (selectors, thresholds, windows, `for:` durations), as monitoring mixins do with their
 * `_config`. `scripts/rules/rules.ts` builds the rules from it and `scripts/rules/render.ts` writes
 * them as the plain YAML that ships (rules/datastore-exporter.rules.yml, rendered from DEFAULT_CONFIG).
 *
 * A user config is a partial of this shape (JSON or YAML), merged over the defaults key by key:
 *   npm run rules:render -- --config my-rules.json > my.rules.yml
 */

/** A Prometheus duration with one unit, as the rules use them: 30s, 1m, 10m, 1h. */
export type Duration = `${number}${'s' | 'm' | 'h'}`;

export interface LagLevel {
  /** Seconds behind the primary above which a replica counts as lagging. */
  thresholdSeconds: number;
  /** How long it must lag before the alert fires; also the horizon of "recovering in time". */
  for: Duration;
  /** The window the "already recovering" trend is fitted over (predict_linear). */
  trendWindow: Duration;
}

export interface RulesConfig {
  /**
   * Label matchers added to every selector of the exporter's series, e.g. `env="prod"` to keep
   * these rules to one environment's exporters. Empty: every series of the metric names.
   */
  selector: string;
  /**
   * Label matchers that pick the exporter's scrape targets out of `up`, the one metric every job has
   * (DatastoreExporterDown). A target that never answered has nothing else to tell it apart.
   */
  exporterTargetSelector: string;
  /** Base of every runbook_url (the alert's lower-case name is appended as an anchor). */
  runbookBaseUrl: string;
  /**
   * How long a shard that no node reports any more is still known, so that DatastoreMissingPrimary
   * fires for it (and how far back a renamed shard's former members are looked for). A shard whose
   * every node went silent at once is kept beyond this, for as long as their targets stay in service
   * discovery.
   */
  shardMemory: Duration;
  /**
   * The window over which a replica counts as following a live primary: its commit offset moved,
   * or it reports a lag that does not grow with wall time. Must hold at least two scrapes, and more
   * than the datastore's keep-alive period when idle (Redis PINGs its replicas every 10 s).
   */
  followingWindow: Duration;
  /**
   * Datastores whose secondaries report that role only while they follow a live leader, by the
   * drivers' mappings: etcd (a follower of a known leader, else no-leader), ZooKeeper (a follower
   * serves only with a leader), Kafka (a follower of a partition whose leader is not -1), NATS
   * (another server named leader) and RabbitMQ (a leader whose process is alive). Not MongoDB (its
   * secondaries stay SECONDARY without a primary) nor Redis, PostgreSQL, MySQL (a replica of a
   * configured primary, reachable or not).
   */
  leaderAwareDatastores: string[];
  /**
   * Age of a shard's newest heartbeat, the same on every node, above which the heartbeat writer
   * counts as stopped (heartbeats come every --heartbeat.interval, 500 ms by default).
   */
  heartbeatStoppedAfterSeconds: number;
  lag: { warning: LagLevel; critical: LagLevel };
  /** DatastoreCollectionStale: age of the last successful collection (12 default intervals). */
  collectionStaleSeconds: number;
  /** DatastorePrimaryChanged: how long a change of primary stays reported. */
  primaryChangedWindow: Duration;
  for: {
    missingPrimary: Duration;
    primaryUnobserved: Duration;
    multiplePrimaries: Duration;
    clusterIdShared: Duration;
    heartbeatStopped: Duration;
    down: Duration;
    exporterDown: Duration;
    collectionStale: Duration;
  };
}

export const DEFAULT_CONFIG: RulesConfig = {
  selector: '',
  exporterTargetSelector: 'job=~".*datastore.*"',
  runbookBaseUrl: 'https://github.com/datastore-exporter/datastore-exporter/blob/main/docs/alerts.md#',
  shardMemory: '10m',
  followingWindow: '1m',
  leaderAwareDatastores: ['etcd', 'zookeeper', 'kafka', 'nats', 'rabbitmq'],
  heartbeatStoppedAfterSeconds: 30,
  lag: {
    warning: { thresholdSeconds: 30, for: '5m', trendWindow: '5m' },
    critical: { thresholdSeconds: 300, for: '10m', trendWindow: '10m' },
  },
  collectionStaleSeconds: 60,
  primaryChangedWindow: '10m',
  for: {
    missingPrimary: '1m',
    primaryUnobserved: '1m',
    multiplePrimaries: '1m',
    clusterIdShared: '5m',
    heartbeatStopped: '1m',
    down: '1m',
    exporterDown: '2m',
    collectionStale: '2m',
  },
};

/** A partial config: any subset of the settings, nested objects partial too (lists replaced whole). */
export type PartialConfig = DeepPartial<RulesConfig>;
type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends string[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The defaults with `user` merged over them, validated: an unknown key or a value of the wrong type
 * is an error naming its path (a typo must not silently keep a default).
 */
export function mergeConfig(user: unknown, base: RulesConfig = DEFAULT_CONFIG): RulesConfig {
  const merge = (def: unknown, over: unknown, path: string): unknown => {
    if (over === undefined) return def;
    if (isObject(def)) {
      if (!isObject(over)) throw new Error(`${path || 'config'}: expected an object`);
      for (const key of Object.keys(over)) {
        if (!(key in def)) throw new Error(`${path ? `${path}.` : ''}${key}: unknown setting`);
      }
      return Object.fromEntries(
        Object.entries(def).map(([k, v]) => [k, merge(v, over[k], path ? `${path}.${k}` : k)]),
      );
    }
    if (Array.isArray(def)) {
      if (!Array.isArray(over) || over.some((x) => typeof x !== 'string'))
        throw new Error(`${path}: expected a list of strings`);
      return over;
    }
    if (typeof over !== typeof def) throw new Error(`${path}: expected a ${typeof def}`);
    return over;
  };
  const config = merge(base, user, '') as RulesConfig;
  for (const [path, value] of durations(config)) durationSeconds(value, path);
  return config;
}

/** Every Duration setting of a config with its path, for validation. */
function durations(c: RulesConfig): [string, string][] {
  return [
    ['shardMemory', c.shardMemory],
    ['followingWindow', c.followingWindow],
    ['primaryChangedWindow', c.primaryChangedWindow],
    ...(['warning', 'critical'] as const).flatMap((level): [string, string][] => [
      [`lag.${level}.for`, c.lag[level].for],
      [`lag.${level}.trendWindow`, c.lag[level].trendWindow],
    ]),
    ...Object.entries(c.for).map(([k, v]): [string, string] => [`for.${k}`, v]),
  ];
}

/** Seconds in a Duration; throws on anything else (path names the setting). */
export function durationSeconds(d: string, path = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(d);
  if (!m) throw new Error(`${path}: "${d}" is not a duration such as 30s, 5m or 1h`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}

/** "1 minute", "10 seconds", "1 hour 30 minutes": a Duration as alert descriptions say it. */
export function durationText(d: Duration): string {
  let s = durationSeconds(d);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['hour', 3600],
    ['minute', 60],
    ['second', 1],
  ] as const) {
    const n = Math.floor(s / size);
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? '' : 's'}`);
    s -= n * size;
  }
  return parts.join(' ') || '0 seconds';
}
