/**
 * The ZooKeeper driver end to end against real ZooKeeper 3.8 servers (Debian package): a 3-node
 * ensemble that really elects and replicates, a standalone server, and a standalone server left
 * with ZooKeeper's default 4lw whitelist (`srvr` only). Every model metric is checked against what
 * the server's own four-letter words say, read by the test with its own client.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { MODEL_METRICS, find, roleOf, value, type Sample } from './support/metrics-text';
import { requireBinary, waitFor } from './support/processes';
import {
  parseMntrText,
  startEnsemble,
  startStandalone,
  WHITELIST,
  ZkSession,
  type ZkEnsemble,
  type ZkServer,
} from './support/zookeeper';

const PROMTOOL = '/usr/bin/promtool';

const EPOCH = 2 ** 32;

/** The single shard of a cluster without --cluster-id. */
const SHARD = { shard_id: 'default' };

/** srvr Zxid as a number, parsed here independently of the driver. */
async function zxidOf(server: ZkServer): Promise<number> {
  const text = (await server.srvr()).get('Zxid');
  if (!text || !/^0x[0-9a-f]+$/i.test(text)) throw new Error(`no Zxid in srvr of ${server.id}: ${text}`);
  return Number(BigInt(text));
}

/** Reads and writes as the driver defines them, summed here from the raw mntr. */
async function namespaceOps(server: ZkServer): Promise<{ reads: number; writes: number }> {
  const mntr = parseMntrText(await server.fourLetter('mntr'));
  let reads = 0;
  let writes = 0;
  for (const [k, v] of mntr) {
    const m = /^zk_cnt_.+_(read|write)_per_namespace$/.exec(k);
    if (m?.[1] === 'read') reads += Number(v);
    if (m?.[1] === 'write') writes += Number(v);
  }
  return { reads, writes };
}

/**
 * The zxid a scrape publishes: datastore_shard_commit_offset is the counter within the epoch that
 * datastore_shard_commit_epoch gives (a zxid is epoch << 32 | counter).
 */
function publishedZxid(samples: Sample[]): number {
  return (
    value(samples, 'datastore_shard_commit_epoch', SHARD) * EPOCH +
    value(samples, 'datastore_shard_commit_offset', SHARD)
  );
}

function promtoolCheck(text: string): void {
  requireBinary(PROMTOOL, 'the Debian package prometheus (promtool)');
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`promtool check metrics failed:\n${r.stdout}\n${r.stderr}\n${text}`);
}

describe('zookeeper 3-node ensemble', () => {
  let ensemble: ZkEnsemble;
  /** One exporter per server, by server id. */
  const exporters = new Map<number, TestExporter>();
  const exporterOf = (s: ZkServer): TestExporter => exporters.get(s.id)!;
  const scrape = (s: ZkServer): Promise<Sample[]> => exporterOf(s).scrape();

  beforeAll(async () => {
    ensemble = await startEnsemble();
    for (const s of ensemble.servers) exporters.set(s.id, await startTestExporter(['--target', s.url]));
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(1)));
  });
  afterAll(async () => {
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await ensemble?.stop();
  });

  test('one primary and two secondaries; identity, version, zxid and clients match srvr/conf/mntr', async () => {
    const roles: string[] = [];
    const groups = new Set<string | undefined>();
    for (const s of ensemble.servers) {
      const samples = await scrape(s);
      const srvr = await s.srvr();
      expect(value(samples, 'datastore_up')).toBe(1);
      // node_id: the server's myid (conf serverId); no ensemble id exists: cluster 'default'.
      expect(value(samples, 'datastore_node_info', { datastore: 'zookeeper', node_id: String(s.id) })).toBe(
        1,
      );
      expect(find(samples, 'datastore_node_info')[0]!.labels).toMatchObject({
        cluster_id: 'default',
        cluster_id_source: 'fallback',
      });
      groups.add(find(samples, 'datastore_node_info')[0]!.labels.replication_group);
      const release = /^(\d+\.\d+\.\d+)/.exec(srvr.get('Zookeeper version')!)![1]!;
      expect(value(samples, 'datastore_version_info', { datastore: 'zookeeper', version: release })).toBe(1);

      const role = roleOf(samples, 'default')!;
      expect(role).toBe(srvr.get('Mode') === 'leader' ? 'primary' : 'secondary');
      roles.push(role);
      expect(find(samples, 'datastore_shard_role')).toHaveLength(3);
      expect(publishedZxid(samples)).toBe(await zxidOf(s));
      // No lag in seconds exists for ZooKeeper: never reported, never a fake 0.
      expect(find(samples, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
      // No transaction seen since the exporter started (an epoch change alone does not count).
      expect(find(samples, 'datastore_shard_last_operation_timestamp_seconds')).toHaveLength(0);
      // Clients: srvr counts the test's own connection, the exporter's mntr its own; both are
      // excluded. Each may also see the other's 4lw socket if they overlap: retry until they do not.
      await waitFor(
        `clients of ${s.id} agree with srvr`,
        async () =>
          value(await scrape(s), 'datastore_clients_connected') ===
          Number((await s.srvr()).get('Connections')) - 1,
        5000,
        100,
      );
      expect(value(await scrape(s), 'datastore_clients_connected')).toBe(0);
      const ops = await namespaceOps(s);
      expect(value(samples, 'datastore_reads_total')).toBe(ops.reads);
      expect(value(samples, 'datastore_writes_total')).toBe(ops.writes);
    }
    expect(roles.sort()).toEqual(['primary', 'secondary', 'secondary']);
    // The members share one replication group: the digest of the ensemble's membership.
    expect([...groups]).toEqual([expect.stringMatching(/^[0-9a-f]{16}$/)]);
  });

  test('writes through a follower move the zxid, writes_total and last-op on all three; reads count where served', async () => {
    const leader = await ensemble.leader();
    const follower = ensemble.servers.find((s) => s !== leader)!;
    const before = new Map<number, { offset: number; reads: number; writes: number }>();
    for (const s of ensemble.servers) {
      const samples = await scrape(s);
      before.set(s.id, {
        offset: publishedZxid(samples),
        reads: value(samples, 'datastore_reads_total'),
        writes: value(samples, 'datastore_writes_total'),
      });
    }
    const t0 = Math.floor(Date.now() / 1000);
    const session = await ZkSession.open(follower.clientPort);
    try {
      // The session's connection is a client of the follower only.
      await exporterOf(follower).nextCollections(2);
      await waitFor(
        'one client on the follower',
        async () => value(await scrape(follower), 'datastore_clients_connected') === 1,
        5000,
      );
      expect(value(await scrape(leader), 'datastore_clients_connected')).toBe(0);
      await session.create('/dsx', 'a');
      await session.setData('/dsx', 'b');
      expect(await session.getData('/dsx')).toBe('b');
      expect(await session.getData('/dsx')).toBe('b');
    } finally {
      await session.close();
    }
    const finalZxid = await zxidOf(leader);
    await Promise.all(
      ensemble.servers.map((s) =>
        waitFor(
          `exporter ${s.id} at the leader's zxid`,
          async () => publishedZxid(await scrape(s)) === finalZxid,
          10000,
          100,
        ),
      ),
    );
    for (const s of ensemble.servers) {
      const samples = await scrape(s);
      const b = before.get(s.id)!;
      // Four transactions after the leader's zxid before: session open, create, setData, session
      // close (a follower that had seen no transaction yet was at 0x0, not at the leader's zxid).
      expect(publishedZxid(samples)).toBe(before.get(leader.id)!.offset + 4);
      expect(publishedZxid(samples)).toBe(await zxidOf(s));
      const lastOp = value(samples, 'datastore_shard_last_operation_timestamp_seconds', SHARD);
      expect(lastOp).toBeGreaterThanOrEqual(t0);
      expect(lastOp).toBeLessThanOrEqual(Date.now() / 1000);
      // Writes are applied to every member's data tree: +2 everywhere (create, setData).
      expect(value(samples, 'datastore_writes_total')).toBe(b.writes + 2);
      // Reads count on the server that answered them only.
      expect(value(samples, 'datastore_reads_total')).toBe(b.reads + (s === follower ? 2 : 0));
      const ops = await namespaceOps(s);
      expect(value(samples, 'datastore_reads_total')).toBe(ops.reads);
      expect(value(samples, 'datastore_writes_total')).toBe(ops.writes);
    }
  });

  test('client pings and session open/close are neither reads nor writes, nor a last operation anywhere, but they are transactions', async () => {
    const leader = await ensemble.leader();
    const follower = ensemble.servers.find((s) => s !== leader)!;
    await Promise.all(ensemble.servers.map((s) => exporterOf(s).nextCollections(1)));
    const lastOps = await Promise.all(
      ensemble.servers.map(async (s) =>
        value(await scrape(s), 'datastore_shard_last_operation_timestamp_seconds', SHARD),
      ),
    );
    const before = await scrape(follower);
    const readLatencyBefore = Number(
      parseMntrText(await follower.fourLetter('mntr')).get('zk_cnt_readlatency'),
    );
    const session = await ZkSession.open(follower.clientPort);
    for (let i = 0; i < 5; i++) await session.ping();
    await session.close();
    await exporterOf(follower).nextCollections(2);
    const after = await scrape(follower);
    expect(value(after, 'datastore_reads_total')).toBe(value(before, 'datastore_reads_total'));
    expect(value(after, 'datastore_writes_total')).toBe(value(before, 'datastore_writes_total'));
    // Why zk_cnt_readlatency is not the read counter: ZooKeeper counts every ping in it.
    const readLatencyAfter = Number(
      parseMntrText(await follower.fourLetter('mntr')).get('zk_cnt_readlatency'),
    );
    expect(readLatencyAfter - readLatencyBefore).toBeGreaterThanOrEqual(5);
    // A global session's open and close are committed transactions: the zxid moves by 2...
    expect(publishedZxid(after)).toBe(publishedZxid(before) + 2);
    // ...on every member, and still nothing was written: last-op stays on all three.
    await Promise.all(ensemble.servers.map((s) => exporterOf(s).nextCollections(1)));
    for (const [i, s] of ensemble.servers.entries()) {
      expect(value(await scrape(s), 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBe(
        lastOps[i],
      );
    }
  });

  test('promtool check metrics accepts the real output of the leader and a follower', async () => {
    const leader = await ensemble.leader();
    const follower = ensemble.servers.find((s) => s !== leader)!;
    for (const s of [leader, follower]) promtoolCheck(await exporterOf(s).scrapeText());
  });

  test('stopping the leader: the new leader is primary within one interval of the election; a new epoch alone is not a write', async () => {
    const leader = await ensemble.leader();
    const survivors = ensemble.servers.filter((s) => s !== leader);
    const before = new Map<number, { offset: number; lastOp: number }>();
    for (const s of survivors) {
      const samples = await scrape(s);
      before.set(s.id, {
        offset: publishedZxid(samples),
        lastOp: value(samples, 'datastore_shard_last_operation_timestamp_seconds', SHARD),
      });
    }
    await leader.stop();
    const newLeader = await waitFor(
      'a new leader among the survivors',
      async () => {
        for (const s of survivors)
          if ((await s.srvr().catch(() => undefined))?.get('Mode') === 'leader') return s;
        return undefined;
      },
      30000,
      100,
    );
    // One interval is 1 s; allow for the collection in flight and this scrape.
    await waitFor(
      'the new leader reported primary',
      async () => roleOf(await scrape(newLeader), 'default') === 'primary',
      3000,
      50,
    );
    const other = survivors.find((s) => s !== newLeader)!;
    await waitFor(
      'the other survivor reported secondary',
      async () =>
        (await other.srvr().catch(() => undefined))?.get('Mode') === 'follower' &&
        roleOf(await scrape(other), 'default') === 'secondary',
      10000,
      50,
    );

    for (const s of survivors) {
      await exporterOf(s).nextCollections(1);
      const samples = await scrape(s);
      const b = before.get(s.id)!;
      const offset = publishedZxid(samples);
      expect(offset).toBe(await zxidOf(s));
      if (s === newLeader) {
        // The new leader's zxid jumped to a new epoch (counter 0) although nobody wrote anything...
        expect(Math.floor(offset / EPOCH)).toBeGreaterThan(Math.floor(b.offset / EPOCH));
        expect(offset % EPOCH).toBe(0);
      } else {
        // (a follower keeps its last applied zxid until the first transaction of the new epoch)
        expect(offset === b.offset || offset % EPOCH === 0).toBe(true);
      }
      // ...so the last operation stays where it was.
      expect(value(samples, 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBe(b.lastOp);
    }

    // Nobody wrote: the survivors are in sync. As single numbers their zxids may be an epoch apart
    // (the new leader at counter 0 of its epoch, a follower still at its last zxid of the old one)...
    const published = await Promise.all(
      survivors.map(async (s) => {
        const samples = await scrape(s);
        return {
          epoch: value(samples, 'datastore_shard_commit_epoch', SHARD),
          offset: value(samples, 'datastore_shard_commit_offset', SHARD),
        };
      }),
    );
    // ...compared the way docs/zookeeper.md and the dashboards do (counters within the newest epoch,
    // a node still in an older epoch has none of the newest epoch's transactions), nobody is behind.
    const newest = Math.max(...published.map((p) => p.epoch));
    const positions = published.map((p) => (p.epoch === newest ? p.offset : 0));
    expect(positions.map((p) => Math.max(...positions) - p)).toEqual([0, 0]);

    // The stopped leader's exporter: down, no model series, no crash.
    const down = exporterOf(leader);
    await waitFor(
      'datastore_up 0 for the stopped leader',
      async () => value(await down.scrape(), 'datastore_up') === 0,
      5000,
    );
    const samples = await down.scrape();
    for (const name of MODEL_METRICS) expect(find(samples, name)).toHaveLength(0);
    // The first failure is a warning (it may be a reset while the JVM shuts down); then refusals.
    expect(down.logs.some((l) => /level=warn msg="collection failed"/.test(l))).toBe(true);
    expect(down.logs.some((l) => /msg="collection failed".*ECONNREFUSED/.test(l))).toBe(true);
  });

  test('the old leader restarts and rejoins as a secondary, with the same node id', async () => {
    const old = ensemble.servers.find((s) => s.process.exited())!;
    await old.restart();
    await waitFor(
      'the old leader reported as secondary',
      async () => {
        const samples = await scrape(old);
        return value(samples, 'datastore_up') === 1 && roleOf(samples, 'default') === 'secondary';
      },
      10000,
    );
    const samples = await scrape(old);
    expect(value(samples, 'datastore_node_info', { node_id: String(old.id) })).toBe(1);
    expect(publishedZxid(samples)).toBe(await zxidOf(old));
  });

  test('a restarted follower counts no replayed write: its counters carry on from before the restart', async () => {
    const leader = await ensemble.leader();
    const follower = ensemble.servers.find((s) => s !== leader)!;
    const e = exporterOf(follower);
    await e.nextCollections(1);
    const before = await scrape(follower);
    const writesBefore = value(before, 'datastore_writes_total');
    const lastOpBefore = value(before, 'datastore_shard_last_operation_timestamp_seconds', SHARD);
    const rawBefore = await namespaceOps(follower);
    await follower.stop();
    // Written while it is down: it applies them when it syncs, on top of replaying its own log.
    const session = await ZkSession.open(leader.clientPort);
    try {
      for (let i = 0; i < 3; i++) await session.create(`/while-down-${i}`, 'x');
    } finally {
      await session.close();
    }
    await follower.restart();
    await waitFor(
      'the restarted follower reported again',
      async () => value(await scrape(follower), 'datastore_up') === 1,
      15000,
    );
    await e.nextCollections(1);
    const after = await scrape(follower);
    const rawAfter = await namespaceOps(follower);
    console.log(
      `restarted follower: mntr writes ${rawBefore.writes} before, ${rawAfter.writes} after (replayed and synced); writes_total ${writesBefore} -> ${value(after, 'datastore_writes_total')}`,
    );
    // The server counted what it replayed and synced as if written now; the exporter does not.
    expect(rawAfter.writes).toBeGreaterThan(0);
    expect(rawAfter.writes).not.toBe(writesBefore);
    expect(value(after, 'datastore_writes_total')).toBe(writesBefore);
    expect(value(after, 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBe(lastOpBefore);
    // From there on it counts as before: one write, one more.
    const t0 = Math.floor(Date.now() / 1000);
    const writer = await ZkSession.open(leader.clientPort);
    try {
      await writer.create('/after-restart', 'x');
    } finally {
      await writer.close();
    }
    await waitFor(
      'the new write counted on the restarted follower',
      async () => value(await scrape(follower), 'datastore_writes_total') === writesBefore + 1,
      10000,
    );
    expect(
      value(await scrape(follower), 'datastore_shard_last_operation_timestamp_seconds', SHARD),
    ).toBeGreaterThanOrEqual(t0);
  });

  test('lost quorum: the last server is up but not serving -> role unknown, identity kept, no offset', async () => {
    const [last, ...others] = ensemble.servers;
    const lastOpBefore = value(
      await scrape(last!),
      'datastore_shard_last_operation_timestamp_seconds',
      SHARD,
    );
    await Promise.all(others.map((s) => s.stop()));
    await waitFor(
      'srvr says not serving',
      async () => /not currently serving/.test(await last!.fourLetter('srvr')),
      20000,
    );
    await waitFor('role unknown', async () => roleOf(await scrape(last!), 'default') === 'unknown', 5000);
    const samples = await scrape(last!);
    expect(value(samples, 'datastore_up')).toBe(1);
    expect(value(samples, 'datastore_node_info', { node_id: String(last!.id), cluster_id: 'default' })).toBe(
      1,
    );
    expect(find(samples, 'datastore_version_info')).toHaveLength(1);
    expect(find(samples, 'datastore_shard_commit_offset')).toHaveLength(0);
    expect(find(samples, 'datastore_clients_connected')).toHaveLength(0);
    expect(find(samples, 'datastore_reads_total')).toHaveLength(0);
    // The last write seen is still the last write seen.
    expect(value(samples, 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBe(lastOpBefore);
    promtoolCheck(await exporterOf(last!).scrapeText());
  });
});

describe('zookeeper standalone servers', () => {
  let server: ZkServer & { remove(): void };
  /** Started with ZooKeeper's default whitelist: only `srvr` (3.5+). */
  let bare: ZkServer & { remove(): void };
  let exporter: TestExporter;
  let bareExporter: TestExporter;

  beforeAll(async () => {
    [server, bare] = await Promise.all([startStandalone(WHITELIST), startStandalone(undefined)]);
    exporter = await startTestExporter(['--target', server.url]);
    bareExporter = await startTestExporter(['--target', bare.url]);
    await Promise.all([exporter.nextCollections(1), bareExporter.nextCollections(1)]);
  });
  afterAll(async () => {
    await exporter?.stop();
    await bareExporter?.stop();
    for (const s of [server, bare]) {
      await s?.stop();
      s?.remove();
    }
  });

  test('standalone is primary; serverId 0 is no identity, so node_id follows the core rules', async () => {
    const samples = await exporter.scrape();
    expect(value(samples, 'datastore_up')).toBe(1);
    expect((await server.srvr()).get('Mode')).toBe('standalone');
    expect(/serverId=0/.test(await server.fourLetter('conf'))).toBe(true);
    expect(roleOf(samples, 'default')).toBe('primary');
    expect(
      value(samples, 'datastore_node_info', {
        node_id: `${hostname()}:${server.clientPort}`,
        cluster_id: 'default',
      }),
    ).toBe(1);
    expect(publishedZxid(samples)).toBe(await zxidOf(server));
    promtoolCheck(await exporter.scrapeText());

    const named = await startTestExporter([
      '--target',
      server.url,
      '--node-id',
      'zk-a',
      '--cluster-id',
      'payments',
    ]);
    try {
      await named.nextCollections(1);
      const s = await named.scrape();
      expect(value(s, 'datastore_node_info', { node_id: 'zk-a', cluster_id: 'payments' })).toBe(1);
      expect(roleOf(s, 'payments')).toBe('primary');
    } finally {
      await named.stop();
    }
  });

  test('a failed write is a transaction: it moves the zxid, but neither last-op nor writes_total', async () => {
    const session = await ZkSession.open(server.clientPort);
    try {
      await session.create('/taken', 'x');
      await exporter.nextCollections(2);
      const before = await exporter.scrape();
      await expect(session.create('/taken', 'again')).rejects.toThrow(/error -110/); // NODEEXISTS
      await exporter.nextCollections(2);
      const after = await exporter.scrape();
      expect(publishedZxid(after)).toBe(publishedZxid(before) + 1);
      // Nothing was written: the last operation is still the create's.
      expect(value(after, 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBe(
        value(before, 'datastore_shard_last_operation_timestamp_seconds', SHARD),
      );
      expect(value(after, 'datastore_writes_total')).toBe(value(before, 'datastore_writes_total'));
    } finally {
      await session.close();
    }
  });

  test('without the 4lw whitelist: a clear error, datastore_up 0, no model series, no crash', async () => {
    // The premise: 3.8's default whitelist answers srvr and refuses conf and mntr.
    expect(await bare.fourLetter('srvr')).toMatch(/Mode: standalone/);
    expect(await bare.fourLetter('conf')).toMatch(/conf is not executed because it is not in the whitelist/);

    await bareExporter.nextCollections(2);
    const samples = await bareExporter.scrape();
    expect(value(samples, 'datastore_up')).toBe(0);
    for (const name of MODEL_METRICS) expect(find(samples, name)).toHaveLength(0);
    expect(value(samples, 'datastore_exporter_collect_errors_total')).toBeGreaterThanOrEqual(2);
    const failure = bareExporter.logs.find((l) => /msg="collection failed"/.test(l));
    expect(failure).toMatch(/conf is not executed because it is not in the whitelist/);
    expect(failure).toMatch(/4lw\.commands\.whitelist=srvr,mntr,conf/);
    // Still serving /metrics and still trying.
    const errors = value(samples, 'datastore_exporter_collect_errors_total');
    await bareExporter.nextCollections(1);
    expect(value(await bareExporter.scrape(), 'datastore_exporter_collect_errors_total')).toBeGreaterThan(
      errors,
    );
  });

  testServerHung({
    what: 'a standalone server',
    exporter: () => exporter,
    pause: () => Promise.resolve(server.process.pause()),
    resume: () => Promise.resolve(server.process.resume()),
    downWithinMs: 10000,
    upWithinMs: 10000,
    afterRecovery: async () => {
      // The abandoned 4lw sockets were destroyed: once the server has caught up, only our srvr is open.
      await waitFor(
        'only the test connection left',
        async () => (await server.srvr()).get('Connections') === '1',
        10000,
      );
    },
  });

  testServerStopped({
    what: 'a standalone server',
    exporter: () => exporter,
    stop: () => server.stop(),
    // After the refusals of a stopped JVM: down within the collection that meets them.
    downWithinMs: 10000,
    failureLog: /ECONNREFUSED/,
    restart: () => server.restart(),
    upWithinMs: 10000,
    afterRecovery: async () => {
      expect(roleOf(await exporter.scrape(), 'default')).toBe('primary');
    },
  });
});
