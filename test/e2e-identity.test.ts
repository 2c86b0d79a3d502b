/**
 * Identities on a real Prometheus (Debian's /usr/bin/prometheus, scrape and evaluation every 1 s)
 * with the bundled rules (rendered from the mixin with every `for:` shortened; expressions as
 * committed), and a second Prometheus without any rule for the dashboards, both scraping
 * exporters (the built bin, one process each: run `npm run build` first) with default flags (no
 * --cluster-id) beside real datastores:
 *   job datastore-redis-cluster: a 3-master / 3-replica Redis Cluster (7.0: ids derived from
 *                                CLUSTER NODES);
 *   job datastore-redis-default: two unrelated Redis replication groups (a primary and a replica
 *                                each), both on the fallback cluster id "default";
 *   job datastore-zookeeper:     a 3-server ZooKeeper ensemble.
 *
 * Shown here: a slot-by-slot reshard with keys moving and a CLUSTER FAILOVER in the middle never
 * makes DatastoreMissingPrimary pending, and publishes no shard id but the three it started with; a
 * killed master whose shard gets a new id (its replica took over) is not left "missing"; killing one
 * default group's primary cannot be detected, and DatastoreClusterIdShared says why; after a
 * ZooKeeper election the dashboards' "behind the newest node" is 0 for the in-sync followers; on the
 * rule-less Prometheus, every dashboard query returns data for the Redis Cluster and for ZooKeeper
 * wherever they have the query's metrics.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mergeConfig } from '../scripts/rules/config';
import { renderRules } from '../scripts/rules/render';
import { evaluateDashboards, missingDashboardData, type DashboardRun } from './support/dashboard-coverage';
import { startExporterProcess, type ExporterProcess } from './support/exporter';
import { tempDir, waitFor } from './support/processes';
import {
  allRules,
  dashboardQueries,
  loadDashboards,
  startPrometheus,
  substitute,
  type PrometheusAlert,
  type RunningPrometheus,
} from './support/prometheus';
import {
  clusterFailover,
  clusterNodes,
  moveSlot,
  startRedisCluster,
  startRedisPair,
  waitForClusterAgreement,
  type RedisCluster,
  type RedisNode,
} from './support/redis';
import { startEnsemble, ZkSession, type ZkEnsemble, type ZkServer } from './support/zookeeper';
import { hashTagForSlot } from '../src/drivers/redis/slots';

jest.setTimeout(90000);

const CLUSTER_JOB = 'datastore-redis-cluster';
const DEFAULT_JOB = 'datastore-redis-default';
const ZK_JOB = 'datastore-zookeeper';
/**
 * Every `for:` of the rules, shortened: 5 intervals of collection, scrape and evaluation (1 s each),
 * where production has 1 minute for 5-15 s intervals. A hand-over of the primary role takes up to
 * about two intervals to be seen (the old primary's exporter may report its demotion one collection
 * before the new primary's exporter reports its promotion): pending for a moment, never firing.
 */
const TEST_FOR = '5s';
/** The overview's "behind" panel (one query per unit: ZooKeeper's is transactions). */
const BEHIND_PANEL = "Behind the shard's newest, in the datastore's unit";

/** A node's CLUSTER NODES view: its id, whether it is a master, and its master's id. */
function me(node: RedisNode): { id: string; master: boolean; masterId?: string; slots: string[] } {
  const line = clusterNodes(node).find((l) => l.flags.includes('myself'))!;
  return { id: line.id, master: line.flags.includes('master'), masterId: line.masterId, slots: line.slots };
}

describe('identities on a real Prometheus', () => {
  let prometheus: RunningPrometheus;
  /** No rule at all: the dashboards imported alone. */
  let bare: RunningPrometheus;
  let cluster: RedisCluster;
  let groups: { primary: RedisNode; replicas: RedisNode[] }[];
  let ensemble: ZkEnsemble;
  let dir: ReturnType<typeof tempDir>;
  // Child processes (the built bin): this process blocks on redis-cli calls, which must not make
  // the exporters miss Prometheus's scrapes.
  const exporters = new Map<string, ExporterProcess>();
  const instance = (name: string): string => `127.0.0.1:${exporters.get(name)!.port}`;
  /** Every DatastoreMissingPrimary seen pending or firing, by the background watcher. */
  const missingSeen: PrometheusAlert[] = [];
  let watching = true;
  let watcher: Promise<void> | undefined;

  beforeAll(async () => {
    [cluster, groups, ensemble] = await Promise.all([
      startRedisCluster(),
      Promise.all([startRedisPair(1), startRedisPair(1)]),
      startEnsemble(),
    ]);
    const targets: [string, string][] = [
      ...cluster.nodes.map((n, i): [string, string] => [`cluster-${i}`, n.url]),
      ...groups.flatMap((group, g): [string, string][] => [
        [`group${g}-primary`, group.primary.url],
        [`group${g}-replica`, group.replicas[0]!.url],
      ]),
      ...ensemble.servers.map((s): [string, string] => [`zk-${s.id}`, s.url]),
    ];
    for (const [name, url] of targets) exporters.set(name, await startExporterProcess(['--target', url]));

    dir = tempDir('e2e-identity');
    const rulesCopy = join(dir.path, 'rules.yml');
    const forAll = Object.fromEntries(Object.keys(mergeConfig({}).for).map((k) => [k, TEST_FOR]));
    writeFileSync(
      rulesCopy,
      renderRules(
        mergeConfig({ for: forAll, lag: { warning: { for: TEST_FOR }, critical: { for: TEST_FOR } } }),
      ),
    );
    const instances = (prefix: string): string[] =>
      [...exporters.keys()].filter((n) => n.startsWith(prefix)).map(instance);
    const jobs = {
      [CLUSTER_JOB]: instances('cluster-'),
      [DEFAULT_JOB]: instances('group'),
      [ZK_JOB]: instances('zk-'),
    };
    [prometheus, bare] = await Promise.all([
      startPrometheus({ jobs, ruleFiles: [rulesCopy] }),
      startPrometheus({ jobs, ruleFiles: [] }),
    ]);
    await waitFor(
      'every target up with its identity recorded',
      async () =>
        (await prometheus.targets()).every((t) => t.health === 'up') &&
        (await prometheus.query('cluster_node:datastore_node_info:last_known{cluster_id!=""}')).length ===
          exporters.size &&
        (await prometheus.query('count_over_time(datastore_up[10s]) >= 5')).length === exporters.size,
      40000,
      250,
    );
    // Watch DatastoreMissingPrimary all along, between the tests' own checks.
    watcher = (async () => {
      while (watching) {
        for (const a of await prometheus.alerts().catch(() => []))
          if (a.labels.alertname === 'DatastoreMissingPrimary') missingSeen.push(a);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
  }, 180000);

  afterAll(async () => {
    watching = false;
    await watcher;
    await Promise.all([prometheus?.stop(), bare?.stop()]);
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await cluster?.stop();
    await Promise.all((groups ?? []).flatMap((g) => [g.primary, ...g.replicas]).map((n) => n.stop()));
    await ensemble?.stop();
    dir?.remove();
  });

  async function alertsNamed(name: string, labels: Record<string, string> = {}): Promise<PrometheusAlert[]> {
    return (await prometheus.alerts()).filter(
      (a) => a.labels.alertname === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v),
    );
  }

  /** Every dashboard query on the rule-less Prometheus, per job, at a few checkpoints. */
  const dashboardRuns: DashboardRun[][] = [];
  const JOB_DATASTORE = { [CLUSTER_JOB]: 'redis', [DEFAULT_JOB]: 'redis', [ZK_JOB]: 'zookeeper' };
  const dashboardCheckpoint = async (): Promise<void> => {
    dashboardRuns.push(
      await evaluateDashboards(bare, Object.keys(JOB_DATASTORE), {
        __rate_interval: '4s',
        __interval: '1s',
        __range: '2m',
        lookback: '15m',
      }),
    );
  };

  /** DatastoreMissingPrimary alerts of a job that the watcher saw firing. */
  const firingFor = (job: string): PrometheusAlert[] =>
    missingSeen.filter((a) => a.labels.job === job && a.state === 'firing');

  /** The dashboards' query of a panel (from the committed JSON), for one job and all its clusters. */
  async function panelQuery(
    panel: string,
    job: string,
    scope?: string,
  ): Promise<{ labels: Record<string, string>; value: number }[]> {
    const q = loadDashboards()
      .flatMap((d) => dashboardQueries(d.json))
      .find((x) => x.panel === panel && (scope === undefined || x.expr.includes(scope)))!;
    const result = await prometheus.query(
      substitute(q.expr, { job: [job], cluster_id: 'All', instance: 'All' }),
    );
    return result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  }

  test('at start: the Redis Cluster and ZooKeeper are quiet; the two default groups show as a shared cluster id', async () => {
    await waitFor(
      'DatastoreClusterIdShared firing for the default groups',
      async () =>
        (await alertsNamed('DatastoreClusterIdShared', { job: DEFAULT_JOB })).some(
          (a) => a.state === 'firing',
        ),
      20000,
      250,
    );
    const [shared] = await alertsNamed('DatastoreClusterIdShared');
    expect(shared!.labels).toMatchObject({ cluster_id: 'default', severity: 'warning' });
    expect(shared!.value).toMatch(/^2(\.0+)?$|^2e\+00$/);
    await dashboardCheckpoint();
    // Nothing else but the consequence of the shared id: two primaries on one (merged) shard.
    const others = (await prometheus.alerts()).filter((a) => a.labels.job !== DEFAULT_JOB);
    expect(others).toEqual([]);
    expect(missingSeen.filter((a) => a.state === 'firing')).toEqual([]);
    // The Redis Cluster: one cluster id from the datastore, three shard ids, each with one primary.
    const clusterIds = await prometheus.query(
      `count by (cluster_id, cluster_id_source) (datastore_node_info{job="${CLUSTER_JOB}"})`,
    );
    expect(clusterIds.map((r) => [r.metric.cluster_id_source, r.value[1]])).toEqual([['datastore', '6']]);
    expect(
      await prometheus.query(
        `count by (shard_id) (datastore_shard_role{job="${CLUSTER_JOB}", role="primary"} == 1)`,
      ),
    ).toHaveLength(3);
  });

  test('a slot-by-slot reshard with keys moving and a CLUSTER FAILOVER in the middle: no DatastoreMissingPrimary, no new shard id', async () => {
    const startedAt = Date.now();
    const masters = cluster.nodes.filter((n) => me(n).master);
    const [source, target] = [masters[0]!, masters[1]!];
    const replica = cluster.nodes.find((n) => me(n).masterId === me(source).id)!;
    const first = Number(me(source).slots[0]!.split('-')[0]);
    const moving = Array.from({ length: 10 }, (_, i) => first + i);
    // 20 keys per slot, one MSET per slot (a redis-cli process per key would take long).
    const keysOf = (slot: number): string[] =>
      Array.from({ length: 20 }, (_, k) => `{${hashTagForSlot(slot)}}:k${k}`);
    for (const slot of moving) source.cli('MSET', ...keysOf(slot).flatMap((k) => [k, 'v']));
    let from = source;
    for (const [i, slot] of moving.entries()) {
      if (i === moving.length / 2) {
        await clusterFailover(replica);
        from = replica;
      }
      moveSlot(cluster.nodes, slot, from, target);
      // Slower than a real reshard on purpose: every step is scraped and evaluated a few times.
      await new Promise((r) => setTimeout(r, 1500));
    }
    await waitForClusterAgreement(cluster.nodes);
    for (const slot of moving) {
      expect(target.cli('MGET', ...keysOf(slot)).split('\n')).toEqual(keysOf(slot).map(() => 'v'));
    }
    // Let the last states go through scrape, evaluation and the shortened `for:` several times.
    await new Promise((r) => setTimeout(r, 5000));
    expect(firingFor(CLUSTER_JOB)).toEqual([]);
    const pendingAt = new Set(missingSeen.filter((a) => a.labels.job === CLUSTER_JOB).map((a) => a.activeAt));
    console.log(`reshard: DatastoreMissingPrimary pending ${pendingAt.size} time(s), never firing`);
    // Over the whole reshard, Prometheus saw three shard ids, never another one.
    const window = Math.ceil((Date.now() - startedAt) / 1000) + 5;
    const ids = await prometheus.query(
      `count by (shard_id) (last_over_time(datastore_shard_role{job="${CLUSTER_JOB}"}[${window}s]))`,
    );
    expect(ids).toHaveLength(3);
    // Every shard gets its readable name on the dashboards. Before, only the shard whose id equals the
    // cluster id was named (a PromQL precedence slip), and the others vanished from every per-shard
    // panel: which ones showed depended on the cluster's random node ids.
    const named = await panelQuery('Primary of each shard', CLUSTER_JOB);
    expect(new Set(named.map((r) => r.labels.shard_id)).size).toBe(3);
    expect(named.every((r) => (r.labels.shard ?? '') !== '')).toBe(true);
    expect(await alertsNamed('DatastorePrimaryChanged', { job: CLUSTER_JOB })).not.toEqual([]);
  });

  test('a killed master whose shard is renamed (its replica took over): DatastoreMissingPrimary clears, under both ids', async () => {
    // A shard whose master has the lower node id: once its replica takes over alone, the shard is
    // named after the replica (docs/redis.md), and named back when the old master returns.
    let master = cluster.nodes.find((n) => me(n).master && !n.process.exited())!;
    let replica = cluster.nodes.find((n) => me(n).masterId === me(master).id)!;
    if (me(replica).id < me(master).id) {
      await clusterFailover(replica);
      await waitForClusterAgreement(cluster.nodes);
      [master, replica] = [replica, master];
    }
    const oldId = me(master).id;
    const newId = me(replica).id;
    const replicaInstance = instance(`cluster-${cluster.nodes.indexOf(replica)}`);
    await master.process.kill();
    await waitFor('automatic failover', () => me(replica).master, 30000, 250);
    await waitFor(
      'the replica reported primary of the renamed shard',
      async () =>
        (
          await prometheus.query(
            `datastore_shard_role{job="${CLUSTER_JOB}", instance="${replicaInstance}", shard_id="${newId}", role="primary"} == 1`,
          )
        ).length === 1,
      15000,
      250,
    );
    // While the master was dead and not yet replaced, the shard really had no primary (with the real
    // `for: 1m` a failover this fast does not page). Once renamed, nothing may stay missing.
    await waitFor(
      'no DatastoreMissingPrimary for the cluster',
      async () => (await alertsNamed('DatastoreMissingPrimary', { job: CLUSTER_JOB })).length === 0,
      15000,
      250,
    );
    const renamedAt = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    expect(firingFor(CLUSTER_JOB).filter((a) => Date.parse(a.activeAt) >= renamedAt - 1000)).toEqual([]);
    expect(await alertsNamed('DatastoreMissingPrimary', { job: CLUSTER_JOB })).toEqual([]);

    // The old master returns as the replica: the shard is called oldId again; still nothing missing.
    await master.restart();
    await waitFor('old master back as a replica', () => me(master).masterId === newId, 30000, 250);
    await waitFor(
      'the shard reported under its first id again',
      async () =>
        (
          await prometheus.query(
            `datastore_shard_role{job="${CLUSTER_JOB}", shard_id="${oldId}", role="primary"} == 1`,
          )
        ).length === 1,
      15000,
      250,
    );
    const backAt = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    expect(firingFor(CLUSTER_JOB).filter((a) => Date.parse(a.activeAt) >= backAt - 1000)).toEqual([]);
    expect(await alertsNamed('DatastoreMissingPrimary', { job: CLUSTER_JOB })).toEqual([]);
  });

  test("killing one default group's primary: not detectable (the other group's primary hides it), and DatastoreClusterIdShared says why", async () => {
    const killedAt = Date.now();
    await groups[0]!.primary.process.kill();
    await waitFor(
      'the dead primary is down in Prometheus',
      async () =>
        (
          await prometheus.query(
            `datastore_up{job="${DEFAULT_JOB}", instance="${instance('group0-primary')}"} == 0`,
          )
        ).length === 1,
      15000,
      250,
    );
    await new Promise((r) => setTimeout(r, 6000));
    // The merged shard still has a primary (the other group's): no missing primary, ever.
    expect(firingFor(DEFAULT_JOB)).toEqual([]);
    expect(await alertsNamed('DatastoreMissingPrimary', { job: DEFAULT_JOB })).toEqual([]);
    // The shared id is still visible: the dead primary's replica still replicates in its own group.
    const shared = await alertsNamed('DatastoreClusterIdShared', { job: DEFAULT_JOB });
    expect(shared.map((a) => a.state)).toEqual(['firing']);
    expect(Date.parse(shared[0]!.activeAt)).toBeLessThan(killedAt);
    expect(shared[0]!.annotations.description).toMatch(
      /unrelated clusters share this id.*a missing primary in one is\s+hidden by another's.*--cluster-id/s,
    );
    // Two primaries no longer: the alert that used to "explain" the shared id went away with the kill.
    await waitFor(
      'DatastoreMultiplePrimaries resolved',
      async () => (await alertsNamed('DatastoreMultiplePrimaries', { job: DEFAULT_JOB })).length === 0,
      15000,
      250,
    );
  });

  test('a ZooKeeper leader election leaves the in-sync followers 0 behind on the dashboards', async () => {
    // Transactions in the first epoch, so that its last zxid is far from the next epoch's start.
    const session = await ZkSession.open(ensemble.servers[0]!.clientPort);
    try {
      for (let i = 0; i < 5; i++) await session.create(`/e2e-${i}`, 'x');
    } finally {
      await session.close();
    }
    const current = await waitFor('the leader', async () => {
      for (const s of ensemble.servers) if ((await s.srvr()).get('Mode') === 'leader') return s;
      return undefined;
    });
    await current.stop();
    const survivors = ensemble.servers.filter((s) => s !== current);
    const newLeader: ZkServer = await waitFor(
      'a new leader',
      async () => {
        for (const s of survivors)
          if ((await s.srvr().catch(() => undefined))?.get('Mode') === 'leader') return s;
        return undefined;
      },
      40000,
      200,
    );
    const zxids = await Promise.all(survivors.map(async (s) => (await s.srvr()).get('Zxid')));
    // Scraped and evaluated after the election (the survivors' offsets from this epoch).
    await waitFor(
      'both survivors scraped with the new leader as primary',
      async () =>
        (
          await prometheus.query(
            `datastore_shard_role{job="${ZK_JOB}", role="primary", instance="${instance(`zk-${newLeader.id}`)}"} == 1`,
          )
        ).length === 1 &&
        (await prometheus.query(`datastore_shard_commit_epoch{job="${ZK_JOB}"}`)).length === 2,
      20000,
      250,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const behind = await panelQuery(BEHIND_PANEL, ZK_JOB, 'zookeeper');
    // The survivors, whatever their zxids say as single numbers (printed for the record).
    console.log(`zxids of the survivors after the election: ${zxids.join(', ')}`);
    // One row per survivor (the stopped leader has no offset any more), each 0 behind.
    expect(behind.map((b) => b.value)).toEqual([0, 0]);
    // A write in the new epoch: everyone catches up to it, and still 0 behind.
    const s2 = await ZkSession.open(newLeader.clientPort);
    try {
      await s2.create('/after-election', 'y');
    } finally {
      await s2.close();
    }
    await waitFor(
      'both survivors in the new epoch with its transactions',
      async () =>
        (
          await prometheus.query(
            `count(count_values("epoch", datastore_shard_commit_epoch{job="${ZK_JOB}"}))`,
          )
        )[0]?.value[1] === '1' &&
        (await prometheus.query(`datastore_shard_commit_offset{job="${ZK_JOB}"} > 0`)).length === 2,
      20000,
      250,
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect((await panelQuery(BEHIND_PANEL, ZK_JOB, 'zookeeper')).map((b) => b.value)).toEqual([0, 0]);
    // (During the election itself the ensemble had no leader for a moment: that is a real gap.)
    expect(await alertsNamed('DatastoreMissingPrimary', { job: ZK_JOB })).toEqual([]);
  });

  test('rule-less Prometheus: every dashboard query returns data for the Redis Cluster, the default groups and ZooKeeper wherever they have its metrics', async () => {
    await dashboardCheckpoint();
    const { missing, summary } = missingDashboardData(dashboardRuns, JOB_DATASTORE);
    console.log(`dashboard queries with data (rule-less Prometheus):\n${summary.join('\n')}`);
    expect(missing).toEqual([]);
  });

  test('every rule expression is valid here, and DatastoreClusterIdShared returned data', async () => {
    for (const rule of allRules()) await prometheus.query(rule.expr);
    const shared = allRules().find((r) => r.alert === 'DatastoreClusterIdShared')!;
    expect((await prometheus.query(shared.expr)).length).toBeGreaterThan(0);
  });
});
