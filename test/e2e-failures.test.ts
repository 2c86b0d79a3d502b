/**
 * The bad days, replayed on a real Prometheus: one Prometheus with the bundled rules (rendered from
 * the mixin with shortened windows, see TEST_CONFIG) and one WITHOUT any rule (a dashboard imported
 * alone), both scraping every 2 s (rules evaluated every 1 s), exporters (the built bin, one process
 * per node: run `npm run build` first) beside real datastores under a steady write load:
 *   job datastore-redis:      three replicated Redis groups of a primary and two replicas:
 *                               "hb"    with --heartbeat: its primary's exporter is killed;
 *                               "hbs"   with --heartbeat: a replica is SIGSTOPped;
 *                               "plain" without: its primary's exporter is killed, later the
 *                                       primary itself (its host is gone);
 *   job datastore-etcd:       a 3-member etcd cluster: all three exporters are killed (total outage);
 *   job datastore-postgresql: a primary and a standby streaming through a delaying proxy: two lag
 *                             episodes, the second 18 s (3 minutes at production scale) after the first;
 *   job datastore-mysql:      a MariaDB primary and two replicas (dashboards only).
 * Every failure starts at the same moment (t0) and runs concurrently, so the whole suite takes a few
 * minutes. A background watcher records every alert's transitions; the tests then assert what fired,
 * when, and what stayed silent, and print the timings that docs/alerts.md quotes.
 *
 * Scale: TEST_CONFIG divides the production windows and `for:` by 10 (1 m -> 6 s, 5 m -> 30 s,
 * 10 m -> 60 s). Collection (1 s), scrape (2 s) and evaluation (1 s) intervals are real; production's
 * are 5 s, 15 s and 15 s with the defaults and a common Prometheus set-up.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import type { Client } from 'pg';
import { mergeConfig, type PartialConfig } from '../scripts/rules/config';
import { renderRules } from '../scripts/rules/render';
import { BEHIND_UNITS } from '../scripts/dashboards/dashboards';
import { startDelayProxy, type DelayProxy } from './support/delay-proxy';
import { startEtcdCluster, type EtcdCluster } from './support/etcd';
import { startExporterProcess, type ExporterProcess } from './support/exporter';
import { startMariadbReplication, type MariadbReplication } from './support/mariadb';
import { startPgCluster, steadyWrites, type PgCluster } from './support/postgres';
import { freePorts, sleep, tempDir, waitFor } from './support/processes';
import { evaluateDashboards, missingDashboardData, type DashboardRun } from './support/dashboard-coverage';
import {
  startPrometheus,
  type PrometheusAlert,
  type PrometheusSample,
  type RunningPrometheus,
} from './support/prometheus';
import { startRedisPair, type RedisNode } from './support/redis';

const REDIS = 'datastore-redis';
const ETCD = 'datastore-etcd';
const PG = 'datastore-postgresql';
const MYSQL = 'datastore-mysql';
const JOB_DATASTORE: Record<string, string> = {
  [REDIS]: 'redis',
  [ETCD]: 'etcd',
  [PG]: 'postgresql',
  [MYSQL]: 'mysql',
};

/** Production settings divided by 10 (see the file comment). */
const TEST_CONFIG: PartialConfig = {
  shardMemory: '60s',
  followingWindow: '6s',
  // Not scaled: a healthy heartbeat is up to one heartbeat, one collection and one scrape old (3.5 s
  // here; 20.5 s in production, whose default is 30 s).
  heartbeatStoppedAfterSeconds: 6,
  lag: {
    warning: { thresholdSeconds: 3, for: '30s', trendWindow: '30s' },
    critical: { thresholdSeconds: 30, for: '60s', trendWindow: '60s' },
  },
  collectionStaleSeconds: 6,
  primaryChangedWindow: '60s',
  for: {
    missingPrimary: '6s',
    primaryUnobserved: '6s',
    multiplePrimaries: '6s',
    clusterIdShared: '30s',
    heartbeatStopped: '6s',
    down: '6s',
    exporterDown: '12s',
    collectionStale: '12s',
  },
};
const LAG_THRESHOLD = 3;
const LAG_FOR_S = 30;
const SHARD_MEMORY_S = 60;
/** The PostgreSQL standby's injected delay during a lag episode (its lag: this many seconds). */
const DELAY_S = 6;
/** Between the end of the first lag episode and the start of the second: 3 minutes, scaled. */
const EPISODE_GAP_S = 18;
/** Dashboard macros: $lookback covers the whole run; $__interval is the scrape interval. */
const MACROS = { __rate_interval: '8s', __interval: '2s', __range: '2m', lookback: '15m' };

/** A steady write load on a Redis primary: inline SETs on one socket, replies ignored. */
function redisWriter(port: number, everyMs: number): { stop(): void } {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  let i = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(`SET load:${i++ % 100} ${Date.now()}\r\n`);
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** One alert's history: its state at each change, by the watcher's clock. */
interface AlertHistory {
  labels: Record<string, string>;
  /** The annotations as last seen. */
  annotations: Record<string, string>;
  changes: { at: number; state: 'pending' | 'firing' | 'inactive' }[];
}

const keyOf = (labels: Record<string, string>): string =>
  JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

describe('alerts and dashboards through a bad day, on a real Prometheus', () => {
  let rules: RunningPrometheus;
  let bare: RunningPrometheus;
  let dir: ReturnType<typeof tempDir>;
  let groups: Record<'hb' | 'hbs' | 'plain', { primary: RedisNode; replicas: RedisNode[] }>;
  let etcd: EtcdCluster;
  let pg: PgCluster;
  let proxy: DelayProxy;
  let maria: MariadbReplication;
  let pgWriter: Client;
  let mariaWriter: Connection;
  const loads: { stop(): void | Promise<void> }[] = [];
  const exporters = new Map<string, { proc: ExporterProcess; flags: string[]; job: string }>();
  const instance = (name: string): string => `127.0.0.1:${exporters.get(name)!.proc.port}`;

  // The watcher: every alert's transitions, and the PostgreSQL standby's staleness with the verdict of
  // a trend guard fitted over the whole window (the old rule's), for the lag episodes.
  const history = new Map<string, AlertHistory>();
  const pgStaleness: { at: number; value: number; oldGuardHolds: boolean }[] = [];
  let watching = true;
  let watcher: Promise<void> | undefined;
  const marks: Record<string, number> = {};
  const figures: string[] = [];

  async function watch(): Promise<void> {
    let current = new Map<string, PrometheusAlert>();
    while (watching) {
      const at = Date.now();
      try {
        const alerts = await rules.alerts();
        const next = new Map(alerts.map((a) => [keyOf(a.labels), a]));
        for (const [key, a] of next) {
          const h = history.get(key) ?? { labels: a.labels, annotations: a.annotations, changes: [] };
          h.annotations = a.annotations;
          if (current.get(key)?.state !== a.state) h.changes.push({ at, state: a.state });
          history.set(key, h);
        }
        for (const key of current.keys())
          if (!next.has(key)) history.get(key)!.changes.push({ at, state: 'inactive' });
        current = next;
        const [staleness] = await rules.query(
          `max(cluster_shard_node:datastore_replica_staleness_seconds{job="${PG}"})`,
        );
        const old = await rules.query(
          `predict_linear(cluster_shard_node:datastore_replica_staleness_seconds{job="${PG}"}[30s], ${LAG_FOR_S}) < ${LAG_THRESHOLD}`,
        );
        if (staleness)
          pgStaleness.push({ at, value: Number(staleness.value[1]), oldGuardHolds: old.length > 0 });
      } catch {
        // Prometheus busy for a moment: the next poll catches up.
      }
      await sleep(250);
    }
  }

  /** Histories of `alertname` whose labels include `labels`. */
  function histories(alertname: string, labels: Record<string, string> = {}): AlertHistory[] {
    return [...history.values()].filter(
      (h) => h.labels.alertname === alertname && Object.entries(labels).every(([k, v]) => h.labels[k] === v),
    );
  }

  /** First time (ms since `since`) any matching alert reached `state` after `since`. */
  function firstAfter(
    alertname: string,
    labels: Record<string, string>,
    state: 'pending' | 'firing' | 'inactive',
    since: number,
  ): number | undefined {
    const times = histories(alertname, labels).flatMap((h) =>
      h.changes.filter((c) => c.state === state && c.at >= since).map((c) => c.at),
    );
    return times.length === 0 ? undefined : Math.min(...times) - since;
  }

  async function waitAlert(
    alertname: string,
    labels: Record<string, string>,
    state: 'pending' | 'firing',
    timeoutMs = 60000,
  ): Promise<void> {
    await waitFor(
      `${alertname} ${JSON.stringify(labels)} ${state}`,
      () => histories(alertname, labels).some((h) => h.changes.at(-1)?.state === state),
      timeoutMs,
      100,
    );
  }

  async function startExporter(name: string, job: string, flags: string[], port?: number): Promise<void> {
    exporters.set(name, { proc: await startExporterProcess(flags, port), flags, job });
  }

  async function killExporter(name: string): Promise<void> {
    await exporters.get(name)!.proc.process.kill();
  }

  async function restartExporter(name: string): Promise<void> {
    const e = exporters.get(name)!;
    await startExporter(name, e.job, e.flags, e.proc.port);
  }

  beforeAll(async () => {
    dir = tempDir('e2e-failures');
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const passwordFile = join(dir.path, 'pg-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    const [pgPrimaryPort, pgStandbyPort] = await freePorts(2);
    const [hb, hbs, plain] = await Promise.all([startRedisPair(2), startRedisPair(2), startRedisPair(2)]);
    groups = { hb: hb!, hbs: hbs!, plain: plain! };
    [etcd, pg, maria] = await Promise.all([
      startEtcdCluster(3),
      startPgCluster({
        primaryPort: pgPrimaryPort!,
        standbys: [{ name: 'standby', port: pgStandbyPort! }],
        setup: `
          ALTER ROLE postgres PASSWORD '${password}';
          CREATE ROLE dsx_monitor LOGIN PASSWORD '${password}';
          GRANT pg_monitor TO dsx_monitor;
          CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);`,
      }),
      startMariadbReplication(0),
    ]);
    // The standby streams over TCP through the delaying proxy from here on.
    proxy = await startDelayProxy(pgPrimaryPort!, 0);
    const standby = pg.standbys[0]!;
    standby.psql(
      `ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${proxy.port} user=postgres password=${password}'`,
    );
    standby.psql('SELECT pg_reload_conf()');
    await waitFor(
      'standby streaming through the proxy',
      () =>
        standby.psql(
          `SELECT status = 'streaming' AND sender_port = ${proxy.port} FROM pg_stat_wal_receiver`,
        ) === 't',
      20000,
    );

    const starts: Promise<void>[] = [];
    for (const [name, group] of Object.entries(groups)) {
      const heartbeat = name === 'plain' ? [] : ['--heartbeat'];
      const nodes = [group.primary, ...group.replicas];
      nodes.forEach((n, i) =>
        starts.push(
          startExporter(`${name}-${i === 0 ? 'p' : `r${i - 1}`}`, REDIS, [
            '--target',
            n.url,
            '--cluster-id',
            name,
            ...heartbeat,
          ]),
        ),
      );
    }
    for (const m of etcd.members) starts.push(startExporter(`etcd-${m.name}`, ETCD, ['--target', m.url]));
    for (const node of [pg.primary, standby])
      starts.push(
        startExporter(`pg-${node.name}`, PG, [
          '--target',
          `postgresql://dsx_monitor@127.0.0.1:${node.port}/postgres`,
          '--target.password-file',
          passwordFile,
        ]),
      );
    for (const [name, node] of Object.entries({ p: maria.primary, r0: maria.replica, r1: maria.delayed }))
      starts.push(
        startExporter(`my-${name}`, MYSQL, [
          '--target',
          node.url,
          '--target.password-file',
          node.passwordFile,
        ]),
      );
    await Promise.all(starts);

    const rulesFile = join(dir.path, 'rules.yml');
    writeFileSync(rulesFile, renderRules(mergeConfig(TEST_CONFIG)));
    const jobs: Record<string, string[]> = {};
    for (const [name, e] of exporters) (jobs[e.job] ??= []).push(instance(name));
    [rules, bare] = await Promise.all([
      startPrometheus({ jobs, ruleFiles: [rulesFile], scrapeInterval: '2s', evaluationInterval: '1s' }),
      startPrometheus({ jobs, ruleFiles: [], scrapeInterval: '2s', evaluationInterval: '1s' }),
    ]);

    // The write load, for the whole run.
    for (const group of Object.values(groups)) loads.push(redisWriter(group.primary.port, 100));
    pgWriter = await pg.primary.connect();
    loads.push(steadyWrites(pgWriter, `INSERT INTO events (note) VALUES ('load')`, 200));
    mariaWriter = await maria.primary.connectTester();
    const mariaLoad = setInterval(
      () => void mariaWriter.query('INSERT INTO app.events () VALUES ()').catch(() => {}),
      500,
    );
    loads.push({ stop: () => clearInterval(mariaLoad) });
    etcd.members[0]!.ctl('put', 'config/a', '1');

    await waitFor(
      'every target up in both Prometheus, identities known, a few samples for rates and trends',
      async () => {
        for (const p of [rules, bare]) {
          if (!(await p.targets()).every((t) => t.health === 'up')) return false;
          if ((await p.query('count_over_time(datastore_up[20s]) >= 8')).length !== exporters.size)
            return false;
        }
        return (
          (await rules.query('cluster_node:datastore_node_info:last_known{cluster_id!=""}')).length ===
          exporters.size
        );
      },
      90000,
      500,
    );
    watcher = watch();
  }, 240000);

  afterAll(async () => {
    watching = false;
    await watcher;
    for (const l of loads) await l.stop();
    await pgWriter?.end().catch(() => undefined);
    await mariaWriter?.end().catch(() => undefined);
    await Promise.all([rules?.stop(), bare?.stop()]);
    await Promise.all([...exporters.values()].map((e) => e.proc.stop()));
    for (const group of Object.values(groups ?? {}))
      await Promise.all([group.primary, ...group.replicas].map((n) => n.stop()));
    await proxy?.close();
    await Promise.all([etcd?.stop(), pg?.stop(), maria?.stop()]);
    dir?.remove();
  }, 120000);

  // ---------------------------------------------------------------------------------------------
  // Dashboards on the rule-less Prometheus

  const dashboardRuns = new Map<string, DashboardRun[]>();

  async function dashboardCheckpoint(name: string): Promise<void> {
    dashboardRuns.set(name, await evaluateDashboards(bare, Object.keys(JOB_DATASTORE), MACROS));
  }

  function panelResult(checkpoint: string, id: string, job: string): PrometheusSample[] {
    const r = dashboardRuns.get(checkpoint)!.find((x) => x.id === id);
    if (!r) throw new Error(`no dashboard query ${id}`);
    return r.byJob.get(job)!;
  }

  // ---------------------------------------------------------------------------------------------

  test('healthy for 30 s (5 minutes at production scale): no alert pending or firing in any job', async () => {
    const since = Date.now();
    await dashboardCheckpoint('healthy');
    await sleep(Math.max(0, 30000 - (Date.now() - since)));
    const seen = [...history.values()].map((h) => `${h.labels.alertname} ${JSON.stringify(h.labels)}`);
    expect(seen).toEqual([]);
  }, 120000);

  test('the failures, replayed together', async () => {
    const t0 = Date.now();
    marks.t0 = t0;
    // Total outage of a cluster's exporters; a primary's exporter killed, with and without heartbeat;
    // a replica hung; the first lag episode.
    await Promise.all(['etcd-m1', 'etcd-m2', 'etcd-m3', 'hb-p', 'plain-p'].map(killExporter));
    groups.hbs.replicas[0]!.process.pause();
    proxy.delayMs = DELAY_S * 1000;
    marks.episode1 = Date.now();

    // The first lag episode lasts long enough to page, then the standby catches up.
    await waitAlert('DatastoreReplicationLagHigh', { job: PG, severity: 'warning' }, 'firing', 90000);
    await sleep(3000);
    proxy.delayMs = 0;
    marks.episode1End = Date.now();

    // The plain group's primary host is gone too: its datastore dies after its exporter.
    await groups.plain.primary.process.kill();
    marks.plainPrimaryDied = Date.now();

    await waitFor(
      'the standby caught up',
      async () =>
        (await rules.query(`cluster_shard_node:datastore_replica_staleness_seconds{job="${PG}"} < 1`))
          .length > 0,
      30000,
      250,
    );
    marks.caughtUp = Date.now();
    // The rule-less Prometheus scrapes on its own schedule: let it see the catch-up too.
    await sleep(5000);
    marks.failuresCheckpoint = Date.now();
    await dashboardCheckpoint('failures');
    await sleep(Math.max(0, marks.caughtUp + EPISODE_GAP_S * 1000 - Date.now()));
    proxy.delayMs = DELAY_S * 1000;
    marks.episode2 = Date.now();
    await waitFor(
      'the second episode pages',
      () =>
        histories('DatastoreReplicationLagHigh', { job: PG, severity: 'warning' }).some((h) =>
          h.changes.some((c) => c.state === 'firing' && c.at > marks.episode2!),
        ),
      90000,
      250,
    );
    proxy.delayMs = 0;

    // The total outage is still paging well past the shard memory.
    await sleep(Math.max(0, t0 + (SHARD_MEMORY_S + 20) * 1000 - Date.now()));
    marks.outageChecked = Date.now();

    // Everything back.
    marks.restoring = Date.now();
    await Promise.all(['etcd-m1', 'etcd-m2', 'etcd-m3', 'hb-p'].map(restartExporter));
    groups.hbs.replicas[0]!.process.resume();
    await groups.plain.primary.restart();
    await restartExporter('plain-p');
    marks.restored = Date.now();
    await waitFor(
      'no alert left but the informational ones',
      () =>
        [...history.values()].every(
          (h) => h.labels.severity === 'info' || h.changes.at(-1)?.state === 'inactive',
        ),
      90000,
      500,
    );
    marks.recovered = Date.now();
    await dashboardCheckpoint('recovered');
  }, 420000);

  test('total outage of the etcd exporters: DatastoreMissingPrimary pages until they report again', () => {
    const labels = { job: ETCD, severity: 'critical' };
    const [h] = histories('DatastoreMissingPrimary', labels);
    expect(h).toBeDefined();
    expect(h!.labels.datastore).toBe('etcd');
    const firing = firstAfter('DatastoreMissingPrimary', labels, 'firing', marks.t0!)!;
    expect(firing).toBeLessThan(20000);
    // Firing without a break from then until the exporters were back, past the shard memory.
    const firedAt = marks.t0! + firing;
    const breaks = h!.changes.filter((c) => c.at > firedAt && c.at < marks.restoring!);
    expect(breaks).toEqual([]);
    expect(marks.outageChecked! - marks.t0!).toBeGreaterThan((SHARD_MEMORY_S + 10) * 1000);
    expect(h!.changes.at(-1)!.state).toBe('inactive');
    const cleared = h!.changes.at(-1)!.at - marks.restoring!;
    // The last primary is named.
    expect(
      histories('DatastoreExporterDown', { job: ETCD })
        .map((x) => x.labels.node_id)
        .filter(Boolean).length,
    ).toBe(3);
    figures.push(
      `etcd total outage: DatastoreMissingPrimary firing ${firing} ms after the exporters died, without a break for ` +
        `${((marks.restoring! - firedAt) / 1000).toFixed(0)} s (shard memory ${SHARD_MEMORY_S} s), cleared ${cleared} ms after they were back`,
    );
  });

  test("primary's exporter killed without --heartbeat: DatastorePrimaryUnobserved, not DatastoreMissingPrimary, until the primary itself dies", () => {
    const labels = { cluster_id: 'plain' };
    const unobserved = firstAfter('DatastorePrimaryUnobserved', labels, 'firing', marks.t0!);
    expect(unobserved).toBeDefined();
    expect(unobserved!).toBeLessThan(20000);
    const [u] = histories('DatastorePrimaryUnobserved', labels);
    expect(u!.labels).toMatchObject({ severity: 'warning', datastore: 'redis', shard_id: 'plain' });
    // No critical page while only the exporter was gone.
    const missingBefore = histories('DatastoreMissingPrimary', labels).flatMap((h) =>
      h.changes.filter((c) => c.at < marks.plainPrimaryDied!),
    );
    expect(missingBefore).toEqual([]);
    // The primary's host gone: the replicas stop showing a live primary; the critical page follows.
    const missing = firstAfter('DatastoreMissingPrimary', labels, 'firing', marks.plainPrimaryDied!);
    expect(missing).toBeDefined();
    expect(missing!).toBeLessThan(30000);
    const unobservedEnded = firstAfter(
      'DatastorePrimaryUnobserved',
      labels,
      'inactive',
      marks.plainPrimaryDied!,
    );
    const exporterDown = firstAfter(
      'DatastoreExporterDown',
      { instance: instance('plain-p') },
      'firing',
      marks.t0!,
    );
    figures.push(
      `plain Redis, primary's exporter killed: DatastorePrimaryUnobserved firing after ${unobserved} ms ` +
        `(DatastoreExporterDown after ${exporterDown} ms); no DatastoreMissingPrimary; primary then killed: ` +
        `DatastorePrimaryUnobserved resolved after ${unobservedEnded} ms, DatastoreMissingPrimary firing after ${missing} ms ` +
        `(following window ${TEST_CONFIG.followingWindow}, for ${TEST_CONFIG.for!.missingPrimary})`,
    );
  });

  test("primary's exporter killed with --heartbeat: DatastoreHeartbeatStopped and DatastorePrimaryUnobserved; no lag or missing-primary page", () => {
    const labels = { cluster_id: 'hb' };
    const stopped = firstAfter('DatastoreHeartbeatStopped', labels, 'firing', marks.t0!);
    const unobserved = firstAfter('DatastorePrimaryUnobserved', labels, 'firing', marks.t0!);
    expect(stopped).toBeDefined();
    expect(unobserved).toBeDefined();
    const [hs] = histories('DatastoreHeartbeatStopped', labels);
    expect(hs!.labels).toMatchObject({ severity: 'warning', datastore: 'redis', shard_id: 'hb' });
    expect(hs!.annotations.description).toMatch(
      new RegExp(
        `^No node of cluster hb \\(redis, job ${REDIS}\\) has seen a new heartbeat .* Last known primary: \\S+ \\(${instance('hb-p').replace(/\./g, '\\.')}\\)\\.$`,
      ),
    );
    expect(histories('DatastoreMissingPrimary', labels)).toEqual([]);
    // The replicas' heartbeat lag grew past the threshold before the writer counted as stopped: at
    // most pending for that moment, never firing.
    const lag = histories('DatastoreReplicationLagHigh', labels);
    expect(lag.flatMap((h) => h.changes.filter((c) => c.state === 'firing'))).toEqual([]);
    const pendingMs = lag.flatMap((h) =>
      h.changes.flatMap((c, i) =>
        c.state === 'pending' ? [(h.changes[i + 1]?.at ?? Date.now()) - c.at] : [],
      ),
    );
    for (const ms of pendingMs) expect(ms).toBeLessThan(10000);
    figures.push(
      `heartbeat Redis, primary's exporter killed: DatastoreHeartbeatStopped firing after ${stopped} ms, ` +
        `DatastorePrimaryUnobserved after ${unobserved} ms; lag alert pending ${pendingMs.length ? pendingMs.join('/') : 0} ms, never firing`,
    );
  });

  test('two lag episodes 3 minutes apart (scaled): the second pages as fast as the first', () => {
    const labels = { job: PG, severity: 'warning' };
    const crossing = (after: number): number =>
      pgStaleness.find((s) => s.at >= after && s.value > LAG_THRESHOLD)!.at;
    const c1 = crossing(marks.episode1!);
    const c2 = crossing(marks.episode2!);
    const f1 = firstAfter('DatastoreReplicationLagHigh', labels, 'firing', c1)! + c1;
    const f2 = firstAfter('DatastoreReplicationLagHigh', labels, 'firing', c2)! + c2;
    const d1 = f1 - c1;
    const d2 = f2 - c2;
    // Both fire `for:` after crossing the threshold, give or take a scrape and an evaluation.
    for (const d of [d1, d2]) {
      expect(d).toBeGreaterThanOrEqual(LAG_FOR_S * 1000 - 2000);
      expect(d).toBeLessThan(LAG_FOR_S * 1000 + 6000);
    }
    expect(Math.abs(d2 - d1)).toBeLessThan(5000);
    // What a trend fitted over the whole window (the old guard) said during episode 2: "recovering".
    const heldBack = pgStaleness.filter(
      (s) => s.at >= c2 && s.at <= f2 && s.value > LAG_THRESHOLD && s.oldGuardHolds,
    );
    const heldBackSpan = heldBack.length ? heldBack.at(-1)!.at - heldBack[0]!.at : 0;
    const [alert] = histories('DatastoreReplicationLagHigh', labels);
    expect(alert!.labels).toMatchObject({ datastore: 'postgresql', instance: instance('pg-standby') });
    figures.push(
      `PostgreSQL lag episodes (${DELAY_S} s delay, threshold ${LAG_THRESHOLD} s, for ${LAG_FOR_S} s, gap ` +
        `${((marks.episode2! - marks.caughtUp!) / 1000).toFixed(0)} s): episode 1 fired ${d1} ms after crossing, ` +
        `episode 2 ${d2} ms; a guard fitted over the whole window said "recovering" for ${heldBackSpan} ms of episode 2`,
    );
  });

  test('a SIGSTOPped replica in heartbeat mode: DatastoreDown, and its growing staleness pages as lag', () => {
    const replica = instance('hbs-r0');
    const down = firstAfter('DatastoreDown', { instance: replica }, 'firing', marks.t0!);
    const lag = firstAfter(
      'DatastoreReplicationLagHigh',
      { instance: replica, severity: 'warning' },
      'firing',
      marks.t0!,
    );
    expect(down).toBeDefined();
    expect(lag).toBeDefined();
    // Above the threshold a few seconds after it hung, then `for:`.
    expect(lag!).toBeGreaterThanOrEqual(LAG_FOR_S * 1000);
    expect(lag!).toBeLessThan((LAG_FOR_S + LAG_THRESHOLD + 10) * 1000);
    figures.push(
      `hbs Redis replica SIGSTOPped: DatastoreDown firing after ${down} ms, lag (staleness) firing after ${lag} ms`,
    );
  });

  test('nothing else paged: each alert fired only where its failure was', () => {
    const where = (name: string, firing = false): string[] =>
      [
        ...new Set(
          histories(name)
            .filter((h) => !firing || h.changes.some((c) => c.state === 'firing'))
            .map((h) => `${h.labels.job} ${h.labels.cluster_id ?? h.labels.instance}`),
        ),
      ].sort();
    expect(where('DatastoreMissingPrimary')).toEqual([`${ETCD} ${etcdClusterId()}`, `${REDIS} plain`].sort());
    // The etcd exporters die and come back one by one, as Prometheus scrapes them: between the scrape
    // that misses the leader's exporter and the ones that miss the followers', the leader is
    // unobserved while its followers show it alive. Pending for that moment, never firing.
    for (const c of histories('DatastorePrimaryUnobserved', { job: ETCD }).flatMap((h) => h.changes))
      expect(c.at < marks.t0! + 5000 || c.at >= marks.restoring!).toBe(true);
    expect(where('DatastoreHeartbeatStopped')).toEqual([`${REDIS} hb`]);
    expect(where('DatastoreMultiplePrimaries')).toEqual([]);
    // A Redis primary restarted without persistence has a new replication id until its replicas have
    // resynchronised: two groups for a moment (pending at most).
    expect(where('DatastoreClusterIdShared', true)).toEqual([]);
    expect(where('DatastoreCollectionStale')).toEqual([]);
    // Lag paged for the standby behind the proxy, for the hung replica, and for the plain group's
    // replicas once their primary was gone (their links down for longer than `for:`), not before.
    const lagFiring = histories('DatastoreReplicationLagHigh').filter((h) =>
      h.changes.some((c) => c.state === 'firing'),
    );
    const plainReplicas = [instance('plain-r0'), instance('plain-r1')];
    expect(
      [...new Set(lagFiring.map((h) => h.labels.instance))].filter((i) => !plainReplicas.includes(i)).sort(),
    ).toEqual([instance('pg-standby'), instance('hbs-r0')].sort());
    for (const h of lagFiring.filter((x) => plainReplicas.includes(x.labels.instance!)))
      for (const c of h.changes.filter((x) => x.state === 'firing'))
        expect(c.at).toBeGreaterThan(marks.plainPrimaryDied! + LAG_FOR_S * 1000);
  });

  function etcdClusterId(): string {
    return histories('DatastoreMissingPrimary', { job: ETCD })[0]!.labels.cluster_id!;
  }

  test('rule-less Prometheus: the failure states are on the dashboards', () => {
    const ov = 'datastore-cluster-overview';
    // The etcd shard whose every exporter is gone stays on the shard panels, at 0 primaries (red).
    const primaries = panelResult('failures', `${ov} / Primaries per shard A`, ETCD);
    expect(primaries.map((s) => Number(s.value[1]))).toEqual([0]);
    expect(primaries[0]!.metric.shard).toMatch(/^[0-9a-f]{8}…$/);
    expect(
      panelResult('failures', `${ov} / Primary of each shard A`, ETCD).map((s) => s.metric.node),
    ).toEqual(['NO PRIMARY']);
    // Since when: no primary since the exporters died (the checkpoint is 40 s or more after); the
    // hung replica out of sync since it hung, the PostgreSQL standby back in sync.
    const noPrimaryFor = Number(
      panelResult('failures', `${ov} / Primary of each shard B`, ETCD)[0]!.value[1],
    );
    expect(noPrimaryFor).toBeGreaterThan(30);
    expect(noPrimaryFor).toBeLessThan((marks.failuresCheckpoint! - marks.t0!) / 1000 + 5);
    const outOfSync = new Map(
      panelResult('failures', `${ov} / Replicas: how far behind, since when C`, '*').map((s) => [
        s.metric.instance,
        Number(s.value[1]),
      ]),
    );
    expect(outOfSync.get(instance('hbs-r0'))).toBeGreaterThan(30);
    expect(outOfSync.get(instance('pg-standby'))).toBeLessThan(10);
    // Replica states.
    const states = new Map(
      panelResult('failures', `${ov} / Replicas: how far behind, since when A`, '*').map((s) => [
        s.metric.instance,
        Number(s.value[1]),
      ]),
    );
    expect(states.get(instance('hbs-r0'))).toBe(3); // cannot be read
    expect(states.get(instance('hb-r0'))).toBe(5); // heartbeat writer stopped
    // The etcd followers, whose exporters are gone: unknown.
    expect(
      ['etcd-m1', 'etcd-m2', 'etcd-m3'].map((n) => states.get(instance(n))).filter((x) => x !== undefined),
    ).toEqual([4, 4]);
    expect(states.get(instance('pg-standby'))).toBe(1);
    // The hung replica keeps a growing staleness; the stopped writer's replicas show no lag.
    const unreadable = panelResult('failures', `${ov} / Replication lag B`, REDIS);
    expect(unreadable.map((s) => s.metric.instance)).toEqual([instance('hbs-r0')]);
    expect(Number(unreadable[0]!.value[1])).toBeGreaterThan(20);
    const lag = panelResult('failures', `${ov} / Replication lag A`, REDIS).map((s) => s.metric.instance);
    expect(lag).not.toContain(instance('hb-r0'));
    const writer = new Map(
      panelResult('failures', `${ov} / Heartbeat writer A`, REDIS).map((s) => [
        s.metric.shard,
        Number(s.value[1]),
      ]),
    );
    expect(writer.get('hb')).toBeGreaterThanOrEqual(30);
    expect(writer.get('hbs')).toBeLessThan(5);
    // Readable legends: a PostgreSQL shard is its (short) cluster id, once.
    const pgShard = panelResult('healthy', `${ov} / Primaries per shard A`, PG)[0]!.metric.shard!;
    expect(pgShard).toMatch(/^…\d{8}$/);
  });

  test('rule-less Prometheus: every dashboard query returns data for every datastore that has its metrics', async () => {
    const { missing, summary } = missingDashboardData([...dashboardRuns.values()], JOB_DATASTORE);
    console.log(`dashboard queries with data, per datastore (rule-less Prometheus):\n${summary.join('\n')}`);
    expect(missing).toEqual([]);
    // Each unit of "behind" has its own query; the installed datastores fill theirs.
    for (const u of BEHIND_UNITS.filter((x) =>
      x.datastores.some((d) => Object.values(JOB_DATASTORE).includes(d)),
    )) {
      const i = BEHIND_UNITS.indexOf(u);
      const id = `datastore-cluster-overview / Behind the shard's newest, in the datastore's unit ${String.fromCharCode(65 + i)}`;
      expect(
        dashboardRuns
          .get('healthy')!
          .find((x) => x.id === id)!
          .byJob.get('*')!.length,
      ).toBeGreaterThan(0);
    }
  });

  test('timings', () => {
    console.log(
      [
        `scrape 2 s, evaluation 1 s, collection 1 s; config ${JSON.stringify(TEST_CONFIG)}`,
        ...figures,
        `whole scenario: ${((marks.recovered! - marks.t0!) / 1000).toFixed(0)} s`,
      ].join('\n'),
    );
    expect(figures.length).toBe(5);
  });
});
