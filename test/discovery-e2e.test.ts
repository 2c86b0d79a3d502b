/**
 * Discovery end to end: a real Prometheus with `http_sd_configs` pointing at GET /discover of ONE
 * probe-mode exporter (no --target), with the relabelling of docs/probe.md, against real topologies
 * started once: a Redis replication group, a Redis Cluster, a PostgreSQL primary + standby, a MariaDB
 * primary + two replicas, a ZooKeeper ensemble and an etcd cluster, each from one seed node.
 *
 * Proves: every member is scraped through /probe (datastore_up 1 under its member URL as instance);
 * each member's series are the ones a single-target exporter (a sidecar) gives for that node; a Redis
 * replica added and an etcd member removed are in / out of the very next /discover answer (so one
 * refresh is enough), and Prometheus starts / stops scraping them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { MODEL_METRICS, parseExposition, value, type Sample } from './support/metrics-text';
import { startEtcdCluster, type EtcdCluster } from './support/etcd';
import { startTestExporter } from './support/exporter';
import { EXPORTER_USER, startMariadbReplication, type MariadbReplication } from './support/mariadb';
import { startPgCluster, type PgCluster } from './support/postgres';
import { freePort, freePorts, startProcess, tempDir, waitFor, type ServerProcess } from './support/processes';
import { PROMETHEUS } from './support/prometheus';
import {
  startProbeModeExporter,
  targetsOf,
  writeProbeConfig,
  type ProbeModeExporter,
} from './support/probe-exporter';
import {
  startRedis,
  startRedisCluster,
  startRedisPair,
  type RedisCluster,
  type RedisNode,
} from './support/redis';
import { startEnsemble, type ZkEnsemble } from './support/zookeeper';

const PG_MONITOR_PASSWORD = 'monitor-e2e-pw';
const PG_REPL_PASSWORD = 'repl-e2e-pw';
const DOC = join(__dirname, '..', 'docs', 'probe.md');

interface Job {
  job_name: string;
  metrics_path?: string;
  http_sd_configs: { url: string; refresh_interval?: string }[];
  relabel_configs: { replacement?: string; [k: string]: unknown }[];
}

/** The documented discovery jobs: the relabelling (and path) the test's own jobs use. */
function documentedJob(): Job {
  const block = /<!-- discovery-scrape-config -->\s*```yaml\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'));
  if (!block) throw new Error('docs/probe.md has no discovery-scrape-config block');
  const doc = parseYaml(block[1]!) as { scrape_configs: Job[] };
  const jobs = doc.scrape_configs;
  // All documented jobs relabel alike; the test takes the first one's rules.
  for (const job of jobs) expect(job.relabel_configs).toEqual(jobs[0]!.relabel_configs);
  return jobs[0]!;
}

/** The model series of one target, as comparable text: name{labels without job/instance}. */
function seriesKeys(samples: { name: string; labels: Record<string, string> }[]): string[] {
  // History-dependent families (present only once the exporter saw a write, or a link go down) are
  // compared by the tests of each driver; here the identity, role, offsets and counters.
  const skip = new Set([
    'datastore_shard_last_operation_timestamp_seconds',
    'datastore_shard_replication_lag_seconds',
    'datastore_shard_heartbeat_timestamp_seconds',
  ]);
  return samples
    .filter((s) => (MODEL_METRICS as readonly string[]).includes(s.name) && !skip.has(s.name))
    .map((s) => {
      const labels = Object.entries(s.labels)
        .filter(([k]) => k !== 'job' && k !== 'instance' && k !== '__name__')
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      return `${s.name}{${labels}}`;
    })
    .sort();
}

describe('discovery end to end with a real Prometheus', () => {
  const dir = tempDir('discovery-e2e');
  let redis: { primary: RedisNode; replicas: RedisNode[] };
  let cluster: RedisCluster;
  let pg: PgCluster;
  let maria: MariadbReplication;
  let zk: ZkEnsemble;
  let etcd: EtcdCluster;
  let exporter: ProbeModeExporter;
  let prometheus: ServerProcess | undefined;
  let promUrl = '';
  let added: RedisNode | undefined;
  const pgPasswordFile = join(dir.path, 'pg-password');

  /** job -> seed discovery query. */
  const seeds: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    const [pgPrimaryPort, pgStandbyPort] = await freePorts(2);
    // The light servers first, then the heavier ones: the machine has two cores.
    [redis, cluster, etcd] = await Promise.all([startRedisPair(1), startRedisCluster(), startEtcdCluster(3)]);
    [pg, maria] = await Promise.all([
      startPgCluster({
        primaryPort: pgPrimaryPort!,
        setup: [
          `ALTER ROLE postgres PASSWORD '${PG_REPL_PASSWORD}'`,
          `CREATE ROLE monitor LOGIN PASSWORD '${PG_MONITOR_PASSWORD}' IN ROLE pg_monitor`,
        ].join('; '),
        standbys: [
          {
            name: 'standby',
            port: pgStandbyPort!,
            // Streaming over TCP, naming itself host:port: what lets the primary list it.
            settings: {
              primary_conninfo: `host=127.0.0.1 port=${pgPrimaryPort} user=postgres password=${PG_REPL_PASSWORD} application_name=127.0.0.1:${pgStandbyPort}`,
            },
          },
        ],
      }),
      startMariadbReplication(0),
    ]);
    zk = await startEnsemble({ clientAddressInServerLines: true });
    writeFileSync(pgPasswordFile, `${PG_MONITOR_PASSWORD}\n`);

    const configFile = writeProbeConfig(dir.path, {
      allowed_targets: ['redis', 'postgresql', 'mariadb', 'zookeeper', 'etcd'].map(
        (s) => `${s}://127.0.0.1:*`,
      ),
      auth_modules: {
        pg: { user: 'monitor', password_file: pgPasswordFile },
        maria: { user: EXPORTER_USER, password_file: maria.primary.passwordFile },
      },
    });
    exporter = await startProbeModeExporter(['--probe.config-file', configFile]);

    seeds['datastore-redis'] = { target: redis.primary.url, cluster_id: 'cache' };
    seeds['datastore-redis-cluster'] = { target: cluster.nodes[0]!.url, cluster_id: 'sessions' };
    seeds['datastore-postgresql'] = {
      target: `postgresql://127.0.0.1:${pg.primary.port}/postgres`,
      auth_module: 'pg',
    };
    seeds['datastore-mariadb'] = {
      target: `mariadb://127.0.0.1:${maria.primary.port}`,
      auth_module: 'maria',
      cluster_id: 'orders',
    };
    seeds['datastore-zookeeper'] = { target: zk.servers[0]!.url, cluster_id: 'coordination' };
    seeds['datastore-etcd'] = { target: etcd.members[0]!.url };

    const template = documentedJob();
    const address = `127.0.0.1:${exporter.port}`;
    const jobs = Object.entries(seeds).map(([name, query]) => ({
      ...template,
      job_name: name,
      http_sd_configs: [
        {
          url: `http://${address}/discover?${new URLSearchParams(query).toString()}`,
          refresh_interval: '2s',
        },
      ],
      relabel_configs: template.relabel_configs.map((rule) =>
        rule.replacement === 'datastore-exporter.monitoring:9860' ? { ...rule, replacement: address } : rule,
      ),
    }));
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const promConfig = join(dir.path, 'prometheus.yml');
    writeFileSync(
      promConfig,
      stringifyYaml({ global: { scrape_interval: '2s', scrape_timeout: '1500ms' }, scrape_configs: jobs }),
    );
    prometheus = startProcess(PROMETHEUS, [
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${join(dir.path, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ]);
  }, 300000);

  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.stop();
    await Promise.all([
      redis?.primary.stop(),
      ...(redis?.replicas ?? []).map((r) => r.stop()),
      added?.stop(),
      cluster?.stop(),
      etcd?.stop(),
      pg?.stop(),
      maria?.stop(),
      zk?.stop(),
    ]);
    dir.remove();
  }, 120000);

  const query = async (
    expr: string,
  ): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as {
      status: string;
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`query ${expr} failed`);
    return body.data.result;
  };
  const upByInstance = async (job: string): Promise<Record<string, string>> =>
    Object.fromEntries(
      (await query(`datastore_up{job="${job}"}`)).map((r) => [r.metric.instance!, r.value[1]]),
    );

  /** Every member each seed should list, as /probe target URLs. */
  const expectedMembers = (): Record<string, string[]> => ({
    'datastore-redis': [
      redis.primary.url,
      ...redis.replicas.map((r) => r.url),
      ...(added ? [added.url] : []),
    ],
    'datastore-redis-cluster': cluster.nodes.map((n) => n.url),
    'datastore-postgresql': [pg.primary.port, pg.standbys[0]!.port].map(
      (p) => `postgresql://127.0.0.1:${p}/postgres`,
    ),
    'datastore-mariadb': [maria.primary, maria.replica, maria.delayed].map(
      (n) => `mariadb://127.0.0.1:${n.port}`,
    ),
    'datastore-zookeeper': zk.servers.map((s) => s.url),
    'datastore-etcd': etcd.running().map((m) => m.url),
  });

  test('MariaDB without REPLICATION MASTER ADMIN: the replicas are counted and left out, the privilege named', async () => {
    const res = await exporter.discover(seeds['datastore-mariadb']!);
    expect(res.status).toBe(200);
    expect(targetsOf(res.body)).toEqual([`mariadb://127.0.0.1:${maria.primary.port}`]);
    expect(res.headers['x-discovery-left-out']).toBe('without_address=2');
    expect(res.headers['x-discovery-note']).toMatch(/REPLICATION MASTER ADMIN/);
    // Listing replicas (SHOW SLAVE HOSTS) needs it beyond the monitoring grant (docs/mysql.md).
    maria.primary.sql(`GRANT REPLICATION MASTER ADMIN ON *.* TO '${EXPORTER_USER}'@'127.0.0.1'`);
  });

  test('each seed lists all its members, and Prometheus probes every one of them', async () => {
    const expected = expectedMembers();
    for (const [job, query] of Object.entries(seeds)) {
      const res = await exporter.discover(query);
      expect({ job, status: res.status, note: res.headers['x-discovery-note'] }).toEqual({
        job,
        status: 200,
        note: undefined,
      });
      expect({ job, targets: targetsOf(res.body) }).toEqual({ job, targets: [...expected[job]!].sort() });
    }
    await waitFor(
      'Prometheus has datastore_up 1 for every discovered member',
      async () => {
        if (prometheus!.exited()) throw new Error(`prometheus exited: ${prometheus!.output().slice(-1500)}`);
        for (const [job, members] of Object.entries(expected)) {
          const up = await upByInstance(job);
          if (members.some((m) => up[m] !== '1')) return false;
        }
        return true;
      },
      90000,
      500,
    );
    for (const [job, members] of Object.entries(expected)) {
      expect({ job, up: await upByInstance(job) }).toEqual({
        job,
        up: Object.fromEntries(members.map((m) => [m, '1'])),
      });
    }
    // Roles as the datastores say them, under the cluster_id the discovery passed on.
    const roles = await query('datastore_shard_role{job="datastore-postgresql"} == 1');
    expect(Object.fromEntries(roles.map((r) => [r.metric.instance, r.metric.role]))).toEqual({
      [`postgresql://127.0.0.1:${pg.primary.port}/postgres`]: 'primary',
      [`postgresql://127.0.0.1:${pg.standbys[0]!.port}/postgres`]: 'secondary',
    });
    const redisClusterIds = await query(
      'count by (cluster_id) (datastore_node_info{job="datastore-redis-cluster"})',
    );
    expect(redisClusterIds.map((r) => [r.metric.cluster_id, r.value[1]])).toEqual([['sessions', '6']]);
  }, 150000);

  test("each member's series in Prometheus are the ones a sidecar exporter gives for that node", async () => {
    const credentials: Record<string, { user: string; passwordFile: string }> = {
      'datastore-postgresql': { user: 'monitor', passwordFile: pgPasswordFile },
      'datastore-mariadb': { user: EXPORTER_USER, passwordFile: maria.primary.passwordFile },
    };
    for (const [job, members] of Object.entries(expectedMembers())) {
      const clusterId = seeds[job]!.cluster_id;
      for (const member of members) {
        const fromPrometheus = await query(`{__name__=~"datastore_.+", job="${job}", instance="${member}"}`);
        const auth = credentials[job];
        const url = auth ? member.replace('://', `://${auth.user}@`) : member;
        const sidecar = await startTestExporter([
          '--target',
          url,
          ...(auth ? ['--target.password-file', auth.passwordFile] : []),
          ...(clusterId ? ['--cluster-id', clusterId] : []),
          '--collect.timeout',
          '900ms',
        ]);
        let samples: Sample[];
        try {
          await sidecar.waitUp(15000);
          samples = parseExposition(await sidecar.scrapeText());
        } finally {
          await sidecar.stop();
        }
        const prom = fromPrometheus.map((r) => ({ name: r.metric.__name__!, labels: r.metric }));
        const keys = seriesKeys(samples);
        expect(keys.filter((k) => /^datastore_(node_info|shard_role)\{/.test(k)).length).toBeGreaterThan(1);
        expect({ member, series: seriesKeys(prom) }).toEqual({ member, series: keys });
      }
    }
  }, 240000);

  test('a seed that is down answers 502, and Prometheus keeps probing the members it knew', async () => {
    const job = 'datastore-zookeeper';
    const [seed, ...others] = zk.servers;
    await seed!.stop();
    const failed = async (): Promise<number> =>
      value(await exporter.metrics(), 'datastore_exporter_discoveries_total', { result: 'failed' });
    const before = await failed();
    expect((await exporter.discover(seeds[job]!)).status).toBe(502);
    // Two more failed refreshes by Prometheus itself, then: the seed is still a target (down), the
    // others are still probed (up).
    await waitFor('two failed refreshes', async () => (await failed()) >= before + 3, 30000, 250);
    await waitFor(
      'Prometheus probes the stopped seed (down) and the others (up)',
      async () => {
        const up = await upByInstance(job);
        return up[seed!.url] === '0' && others.every((o) => up[o.url] === '1');
      },
      30000,
      250,
    );
  }, 90000);

  test('a new Redis replica is in the next discovery answer, then probed; a removed etcd member leaves', async () => {
    const job = 'datastore-redis';
    added = await startRedis(await freePort(), ['--replicaof', '127.0.0.1', String(redis.primary.port)]);
    await waitFor(
      'the primary lists the new replica',
      () => [...redis.primary.info('replication').values()].some((v) => v.includes(`port=${added!.port},`)),
      20000,
      100,
    );
    // One refresh is one /discover: the very next answer has it.
    expect(targetsOf(await exporter.groups(seeds[job]!))).toContain(added.url);
    await waitFor(
      'Prometheus probes the new replica',
      async () => (await upByInstance(job))[added!.url] === '1',
      30000,
      250,
    );

    const etcdJob = 'datastore-etcd';
    const leaving = etcd.members.find((m) => m !== etcd.members[0] && m !== etcd.leader())!;
    await etcd.removeMember(leaving);
    expect(targetsOf(await exporter.groups(seeds[etcdJob]!))).not.toContain(leaving.url);
    expect(targetsOf(await exporter.groups(seeds[etcdJob]!))).toHaveLength(2);
    await waitFor(
      'Prometheus no longer scrapes the removed member',
      async () => {
        const res = await fetch(`${promUrl}/api/v1/targets?state=active`);
        const body = (await res.json()) as { data: { activeTargets: { labels: Record<string, string> }[] } };
        return !body.data.activeTargets.some((t) => t.labels.instance === leaving.url);
      },
      30000,
      250,
    );
  }, 120000);
});
