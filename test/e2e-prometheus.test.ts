/**
 * The proof on a real Prometheus (Debian's /usr/bin/prometheus, scrape and evaluation every 1 s) that
 * scrapes in-process exporters beside real replicated datastores:
 *   job datastore-redis:      cluster "cache" (a standalone Redis) and cluster "sessions" (a Redis
 *                             primary with two replicas), named with --cluster-id;
 *   job datastore-postgresql: a PostgreSQL primary and a streaming standby (cluster_id = the
 *                             system identifier, the datastore's own).
 * Prometheus loads the rules rendered from the mixin (scripts/rules) with every `for:` shortened to 2s
 * (the real ones are minutes); the expressions are the committed ones.
 *
 * Scenario, in order: healthy -> the sessions primary is killed -> a replica is promoted -> the other
 * replica is promoted too (two primaries) -> the dead primary's exporter is stopped. At each of those
 * checkpoints EVERY dashboard query (variables substituted as Grafana would, for every job, cluster
 * and instance) and EVERY rule expression is evaluated through the HTTP API. A query error fails at
 * once; at the end each query must have returned data at least once, except the ones this topology
 * cannot feed (heartbeat panels, other datastores' units, failures it does not replay), which
 * test/e2e-failures.test.ts shows returning data. The alerts that the scenario cannot drive over their
 * thresholds in a test run (replication lag > 30 s / 300 s, snapshot older than 60 s) are evaluated
 * as rendered with those thresholds at 0, so the rest of their expression (trend, joins, datastore_up
 * gate) still has to return data.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mergeConfig, type PartialConfig } from '../scripts/rules/config';
import { renderRules } from '../scripts/rules/render';
import { buildRules, type Rule } from '../scripts/rules/rules';
import { startTestExporter, type TestExporter } from './support/exporter';
import { startPgCluster, waitReplayed, type PgCluster } from './support/postgres';
import { freePorts, tempDir, waitFor } from './support/processes';
import {
  dashboardQueries,
  loadDashboards,
  selectorsOf,
  startPrometheus,
  substitute,
  type PrometheusAlert,
  type RunningPrometheus,
} from './support/prometheus';
import { startRedis, startRedisPair, type RedisNode } from './support/redis';

jest.setTimeout(60000);

const REDIS_JOB = 'datastore-redis';
const PG_JOB = 'datastore-postgresql';
const TEST_FOR = '2s';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const TEST_CONFIG: PartialConfig = {
  for: Object.fromEntries(Object.keys(mergeConfig({}).for).map((k) => [k, TEST_FOR])),
  lag: { warning: { for: TEST_FOR }, critical: { for: TEST_FOR } },
};
/** The rules Prometheus evaluates (expressions as committed, `for:` shortened). */
const RULES: Rule[] = buildRules(mergeConfig(TEST_CONFIG)).flatMap((g) => g.rules);
/**
 * Alerts whose thresholds a short test cannot cross, evaluated as rendered with those thresholds at 0
 * (the rest of the expression, trend, joins and gates, must still return data).
 */
const RELAXED = new Map(
  buildRules(
    mergeConfig({
      ...TEST_CONFIG,
      lag: { warning: { thresholdSeconds: 0 }, critical: { thresholdSeconds: 0 } },
      collectionStaleSeconds: 0,
    }),
  )
    .flatMap((g) => g.rules)
    .filter((r) => r.alert === 'DatastoreReplicationLagHigh' || r.alert === 'DatastoreCollectionStale')
    .map((r) => [`${r.alert} (${r.labels?.severity})`, r.expr]),
);

/**
 * Rules whose data needs a topology or a failure this scenario does not have: evaluated here (the
 * expression must be valid), shown returning data in test/e2e-identity.test.ts (unrelated clusters
 * sharing one cluster id) and test/e2e-failures.test.ts (heartbeat mode, an exporter gone while its
 * primary lives).
 */
const PROVEN_ELSEWHERE = new Set([
  'rule DatastoreClusterIdShared (warning)',
  'rule DatastorePrimaryUnobserved (warning)',
  'rule DatastoreHeartbeatStopped (warning)',
  'rule cluster_shard:datastore_heartbeat_age_seconds:writer_stopped',
]);

/** Metrics that only give a query context (labels, joins), not its subject. */
const CONTEXT = new Set(['datastore_node_info', 'up', 'datastore_shard_role', 'datastore_up']);

/**
 * Whether this scenario can feed a dashboard query: not when it is scoped to other datastores (the
 * "behind" units), nor when its subject is the heartbeat (no exporter runs with --heartbeat here).
 * test/e2e-failures.test.ts checks those on datastores that have them.
 */
function feedable(expr: string): boolean {
  const scope = /datastore=~"([^"]+)"/.exec(expr)?.[1]?.split('|');
  if (scope && !scope.some((d) => d === 'redis' || d === 'postgresql')) return false;
  const subjects = [...new Set(selectorsOf(expr).selectors.map((s) => s.metric))].filter(
    (m) => !CONTEXT.has(m),
  );
  return !(subjects.length > 0 && subjects.every((m) => m === 'datastore_shard_heartbeat_timestamp_seconds'));
}

interface Check {
  /** What it is: "dashboard <uid> / <panel> <refId>", "rule <name>", "variable <name>". */
  id: string;
  /** The expression as committed (before substitution or relaxation). */
  source: string;
  hits: number;
  evaluations: number;
  /** Checkpoints where it returned data. */
  where: Set<string>;
}

describe('dashboards and rules on a real Prometheus', () => {
  let prometheus: RunningPrometheus;
  let cache: RedisNode;
  let sessions: { primary: RedisNode; replicas: RedisNode[] };
  let pg: PgCluster;
  let secrets: ReturnType<typeof tempDir>;
  const exporters: { exporter: TestExporter; job: string; name: string }[] = [];
  const instanceOf = (name: string): string => {
    const e = exporters.find((x) => x.name === name)!;
    return `127.0.0.1:${e.exporter.port}`;
  };
  const checks = new Map<string, Check>();
  const figures: Record<string, number> = {};
  let pgClusterId = '';

  async function exporterFor(name: string, job: string, flags: string[]): Promise<void> {
    exporters.push({ exporter: await startTestExporter(flags), job, name });
  }

  beforeAll(async () => {
    const [cachePort, pgPrimary, pgStandby] = await freePorts(3);
    cache = await startRedis(cachePort!);
    sessions = await startRedisPair(2);
    pg = await startPgCluster({
      primaryPort: pgPrimary!,
      standbys: [{ name: 'standby', port: pgStandby! }],
      setup: `
        CREATE ROLE dsx_monitor LOGIN PASSWORD '${PASSWORD}';
        GRANT pg_monitor TO dsx_monitor;
        CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);`,
    });
    pgClusterId = pg.primary.psql('SELECT system_identifier FROM pg_control_system()');
    secrets = tempDir('e2e-secrets');
    const passwordFile = join(secrets.path, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });

    await exporterFor('cache', REDIS_JOB, ['--target', cache.url, '--cluster-id', 'cache']);
    await exporterFor('sessions-primary', REDIS_JOB, [
      '--target',
      sessions.primary.url,
      '--cluster-id',
      'sessions',
    ]);
    for (const [i, r] of sessions.replicas.entries()) {
      await exporterFor(`sessions-replica-${i}`, REDIS_JOB, ['--target', r.url, '--cluster-id', 'sessions']);
    }
    for (const node of [pg.primary, ...pg.standbys]) {
      await exporterFor(`pg-${node.name}`, PG_JOB, [
        '--target',
        `postgresql://dsx_monitor@127.0.0.1:${node.port}/postgres`,
        '--target.password-file',
        passwordFile,
      ]);
    }
    await Promise.all(exporters.map((e) => e.exporter.nextCollections(1)));

    // The rules with every `for:` shortened; nothing else changes.
    const rulesCopy = join(secrets.path, 'rules.yml');
    writeFileSync(rulesCopy, renderRules(mergeConfig(TEST_CONFIG)));

    prometheus = await startPrometheus({
      jobs: {
        [REDIS_JOB]: exporters.filter((e) => e.job === REDIS_JOB).map((e) => instanceOf(e.name)),
        [PG_JOB]: exporters.filter((e) => e.job === PG_JOB).map((e) => instanceOf(e.name)),
      },
      ruleFiles: [rulesCopy],
    });

    // Writes after the first collections, so every shard has a last operation (datastores without a
    // last-write time get it when the exporter sees the write position advance).
    cache.cli('SET', 'k', 'v');
    cache.cli('GET', 'k');
    sessions.primary.cli('SET', 'session:1', 'x');
    sessions.primary.cli('GET', 'session:1');
    pg.primary.psql("INSERT INTO events (note) VALUES ('e2e'); SELECT count(*) FROM events");
    await waitReplayed(pg.primary, pg.standbys[0]!);

    await waitFor(
      'every target up, identities recorded and a last operation on every shard',
      async () =>
        (await prometheus.targets()).every((t) => t.health === 'up') &&
        (await prometheus.query('cluster_node:datastore_node_info:last_known{cluster_id!=""}')).length ===
          exporters.length &&
        (await prometheus.query('count by (cluster_id) (datastore_shard_last_operation_timestamp_seconds)'))
          .length === 3 &&
        // A few samples for rates and trends.
        (await prometheus.query('count_over_time(datastore_up[10s]) >= 5')).length === exporters.length,
      40000,
      250,
    );
  }, 120000);

  afterAll(async () => {
    await prometheus?.stop();
    await Promise.all(exporters.map((e) => e.exporter.stop()));
    await Promise.all([cache, sessions?.primary, ...(sessions?.replicas ?? [])].map((n) => n?.stop()));
    await pg?.stop();
    secrets?.remove();
  });

  function record(id: string, source: string, checkpoint: string, gotData: boolean): void {
    const c = checks.get(id) ?? { id, source, hits: 0, evaluations: 0, where: new Set<string>() };
    c.evaluations++;
    if (gotData) {
      c.hits++;
      c.where.add(checkpoint);
    }
    checks.set(id, c);
  }

  /** Every variable combination a user can pick one at a time, plus "All" everywhere. */
  async function variableCombos(): Promise<
    { job: string[] | 'All'; cluster_id: string[] | 'All'; instance: string[] | 'All' }[]
  > {
    const combos: { job: string[] | 'All'; cluster_id: string[] | 'All'; instance: string[] | 'All' }[] = [
      { job: 'All', cluster_id: 'All', instance: 'All' },
    ];
    for (const job of [REDIS_JOB, PG_JOB]) {
      const clusters = await prometheus.labelValues(
        'cluster_id',
        substitute('cluster_node:datastore_node_info:last_known{job=~"$job"}', { job: [job] }),
      );
      for (const cluster of clusters) {
        combos.push({ job: [job], cluster_id: [cluster], instance: 'All' });
        const instances = await prometheus.labelValues(
          'instance',
          substitute('cluster_node:datastore_node_info:last_known{job=~"$job", cluster_id=~"$cluster_id"}', {
            job: [job],
            cluster_id: [cluster],
          }),
        );
        for (const instance of instances)
          combos.push({ job: [job], cluster_id: [cluster], instance: [instance] });
      }
    }
    return combos;
  }

  /** Evaluates every variable query, dashboard query and rule expression; records which return data. */
  async function checkpoint(name: string): Promise<Map<string, number>> {
    const perQuery = new Map<string, number>();
    // Template variables, as Grafana resolves them (label_values -> the label values API).
    for (const { json } of loadDashboards()) {
      for (const v of json.templating.list.filter((x: { type: string }) => x.type === 'query')) {
        const m = /^label_values\((.+), (\w+)\)$/.exec(v.query)!;
        const values = await prometheus.labelValues(
          m[2]!,
          substitute(m[1]!, { job: 'All', cluster_id: 'All' }),
        );
        record(`variable ${json.uid} ${v.name}`, v.query, name, values.length > 0);
      }
    }
    const combos = await variableCombos();
    for (const { json } of loadDashboards()) {
      for (const q of dashboardQueries(json)) {
        const id = `dashboard ${q.dashboard} / ${q.panel} ${q.refId}`;
        let best = 0;
        for (const vars of combos) {
          const result = await prometheus.query(substitute(q.expr, vars));
          best = Math.max(best, result.length);
          record(id, q.expr, name, result.length > 0);
        }
        perQuery.set(id, best);
      }
    }
    for (const rule of RULES) {
      const label = rule.record ?? `${rule.alert} (${rule.labels?.severity})`;
      const relaxed = RELAXED.has(label);
      const expr = relaxed ? RELAXED.get(label)! : rule.expr;
      const result = await prometheus.query(expr);
      record(`rule ${label}${relaxed ? ' [thresholds relaxed]' : ''}`, rule.expr, name, result.length > 0);
    }
    return perQuery;
  }

  async function alertsNamed(
    alertname: string,
    labels: Record<string, string> = {},
  ): Promise<PrometheusAlert[]> {
    return (await prometheus.alerts()).filter(
      (a) => a.labels.alertname === alertname && Object.entries(labels).every(([k, v]) => a.labels[k] === v),
    );
  }

  /** Polls until the alert is in `state`; returns ms from `since` to the first poll that saw it. */
  async function waitAlert(
    alertname: string,
    labels: Record<string, string>,
    state: 'pending' | 'firing',
    since: number,
    timeoutMs = 30000,
  ): Promise<number> {
    await waitFor(
      `${alertname} ${JSON.stringify(labels)} ${state}`,
      async () => (await alertsNamed(alertname, labels)).some((a) => a.state === state),
      timeoutMs,
      100,
    );
    return Date.now() - since;
  }

  test('healthy: no alert is pending or firing, and with the PostgreSQL cluster every overview panel has data', async () => {
    // Let every rule evaluate a few times on complete data first.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await prometheus.alerts()).toEqual([]);
    await checkpoint('healthy');
    // The strongest form of "a query that returns nothing is a broken panel": a healthy PostgreSQL
    // cluster (which knows its standby's lag) fills every panel of the overview it can feed.
    const overview = dashboardQueries(
      loadDashboards().find((d) => d.json.uid === 'datastore-cluster-overview')!.json,
    );
    for (const q of overview.filter((x) => feedable(x.expr))) {
      const result = await prometheus.query(
        substitute(q.expr, { job: [PG_JOB], cluster_id: [pgClusterId], instance: 'All' }),
      );
      expect(`${q.panel}: ${result.length > 0 ? 'data' : 'EMPTY'}`).toBe(`${q.panel}: data`);
    }
  });

  test('a killed Redis primary fires DatastoreMissingPrimary for its cluster only, and DatastoreDown with its identity', async () => {
    const sessionsPrimary = instanceOf('sessions-primary');
    const killedAt = Date.now();
    await sessions.primary.process.kill();
    figures.killToPendingMs = await waitAlert(
      'DatastoreMissingPrimary',
      { cluster_id: 'sessions', shard_id: 'sessions' },
      'pending',
      killedAt,
    );
    figures.killToFiringMs = await waitAlert(
      'DatastoreMissingPrimary',
      { cluster_id: 'sessions', shard_id: 'sessions', job: REDIS_JOB },
      'firing',
      killedAt,
    );
    const missing = await alertsNamed('DatastoreMissingPrimary');
    expect(missing.map((a) => a.labels.cluster_id)).toEqual(['sessions']);
    expect(missing[0]!.labels.severity).toBe('critical');
    // Both replicas still report the shard, as secondaries.
    expect(missing[0]!.value).toMatch(/^2(\.0+)?$|^2e\+00$/);
    // The shard is the whole dataset: named as the cluster, with its datastore and last primary.
    expect(missing[0]!.labels.datastore).toBe('redis');
    expect(missing[0]!.annotations.description).toMatch(
      /^Cluster sessions \(redis, job datastore-redis\) has had no node .* Last known primary: \S+ \(127\.0\.0\.1:\d+\)\.$/,
    );

    // The node is down, not forgotten: its alert carries the identity seen before the outage.
    await waitAlert('DatastoreDown', { instance: sessionsPrimary }, 'firing', killedAt);
    const [down] = await alertsNamed('DatastoreDown');
    expect(down!.labels).toMatchObject({ cluster_id: 'sessions', datastore: 'redis', job: REDIS_JOB });
    expect(down!.labels.node_id).toMatch(/:\d+$/);

    // The replicas' links are down: Redis now reports their lag; let it grow a few samples.
    await waitFor(
      'lag of both replicas growing',
      async () =>
        (await prometheus.query('datastore_shard_replication_lag_seconds{cluster_id="sessions"} >= 3'))
          .length === 2,
      20000,
      250,
    );
    await checkpoint('primary killed');
  });

  test('promoting a replica clears DatastoreMissingPrimary and fires DatastorePrimaryChanged', async () => {
    const promotedAt = Date.now();
    sessions.replicas[0]!.cli('REPLICAOF', 'NO', 'ONE');
    await waitFor(
      'DatastoreMissingPrimary cleared',
      async () => (await alertsNamed('DatastoreMissingPrimary')).length === 0,
      20000,
      100,
    );
    figures.promoteToClearedMs = Date.now() - promotedAt;
    await waitAlert(
      'DatastorePrimaryChanged',
      { cluster_id: 'sessions', severity: 'info' },
      'firing',
      promotedAt,
    );
    await checkpoint('replica promoted');
  });

  test('a second replica promoted while the first is primary fires DatastoreMultiplePrimaries', async () => {
    const splitAt = Date.now();
    sessions.replicas[1]!.cli('REPLICAOF', 'NO', 'ONE');
    figures.splitToFiringMs = await waitAlert(
      'DatastoreMultiplePrimaries',
      { cluster_id: 'sessions', shard_id: 'sessions' },
      'firing',
      splitAt,
    );
    const [split] = await alertsNamed('DatastoreMultiplePrimaries');
    expect(split!.annotations.description).toMatch(
      /^2 nodes report themselves primary for cluster sessions \(redis/,
    );
    // Only the split cluster: the standalone Redis and PostgreSQL have one primary each.
    expect((await alertsNamed('DatastoreMultiplePrimaries')).map((a) => a.labels.cluster_id)).toEqual([
      'sessions',
    ]);
    await checkpoint('two primaries');
  });

  test('a stopped exporter fires DatastoreExporterDown, still naming the node and cluster', async () => {
    const entry = exporters.find((e) => e.name === 'sessions-primary')!;
    const stoppedAt = Date.now();
    await entry.exporter.stop();
    await waitAlert(
      'DatastoreExporterDown',
      { instance: instanceOf('sessions-primary') },
      'firing',
      stoppedAt,
    );
    const [down] = await alertsNamed('DatastoreExporterDown');
    expect(down!.labels).toMatchObject({ cluster_id: 'sessions', job: REDIS_JOB, severity: 'warning' });
    // With the scrape failing, the datastore's own state is unknown: DatastoreDown resolves.
    await waitFor(
      'DatastoreDown resolved for the unscraped node',
      async () => (await alertsNamed('DatastoreDown')).length === 0,
      10000,
      100,
    );
    await checkpoint('exporter stopped');
  });

  test('every dashboard query, variable and rule expression returned data at least once', () => {
    const all = [...checks.values()];
    const empty = all
      .filter((c) => c.hits === 0 && !PROVEN_ELSEWHERE.has(c.id))
      .filter((c) => !c.id.startsWith('dashboard ') || feedable(c.source))
      .map((c) => c.id);
    expect(empty).toEqual([]);
    // Every dashboard target and every rule was among them.
    const dashboardsCount = loadDashboards().reduce((n, d) => n + dashboardQueries(d.json).length, 0);
    expect(all.filter((c) => c.id.startsWith('dashboard ')).length).toBe(dashboardsCount);
    expect(all.filter((c) => c.id.startsWith('rule ')).length).toBe(RULES.length);
    const evaluations = all.reduce((n, c) => n + c.evaluations, 0);
    const lines = all.map((c) => `${c.id}: data at ${[...c.where].join(', ')}`);
    console.log(
      [
        `queries: ${all.length} distinct (${dashboardsCount} dashboard targets, ${RULES.length} rules, ` +
          `${all.filter((c) => c.id.startsWith('variable ')).length} variables), ${evaluations} evaluations`,
        `kill -> DatastoreMissingPrimary pending: ${figures.killToPendingMs} ms, firing (for: ${TEST_FOR}): ${figures.killToFiringMs} ms`,
        `promotion -> DatastoreMissingPrimary cleared: ${figures.promoteToClearedMs} ms`,
        `second promotion -> DatastoreMultiplePrimaries firing (for: ${TEST_FOR}): ${figures.splitToFiringMs} ms`,
        ...lines,
      ].join('\n'),
    );
  });
});
