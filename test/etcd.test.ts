/**
 * The etcd driver: its parsers on replies recorded from etcd 3.4.23, its HTTP boundary against fake
 * servers (deadline, close() abandoning a request, error messages), and end to end against a REAL
 * 3-member etcd cluster (plus a learner, auth, and a member serving https with client certificates).
 * Every model metric is checked against what etcdctl says.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../src/core/errors';
import type { DriverOptions } from '../src/core/model';
import { parseTarget } from '../src/core/target';
import {
  makeCertificates,
  startEtcdCluster,
  startTlsMember,
  type EtcdCluster,
  type EtcdMember,
} from './support/etcd';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { requireBinary, tempDir, waitFor } from './support/processes';
import { createDriver } from '../src/drivers/etcd/driver';
import {
  idToHex,
  mvccOperations,
  parseGatewayError,
  parseStatus,
  pickUnlabelledSamples,
  roleFromStatus,
} from '../src/drivers/etcd/parse';

/** Replies recorded from etcd 3.4.23 (a learner's status, which also shows a leader id). */
const LEARNER_STATUS =
  '{"header":{"cluster_id":"4691270838897183303","member_id":"287804130617070356","revision":"4","raft_term":"3"},' +
  '"version":"3.4.23","dbSize":"20480","leader":"14590032085621120027","raftIndex":"27","raftTerm":"3",' +
  '"raftAppliedIndex":"27","dbSizeInUse":"16384","isLearner":true}';
const LEADER_STATUS =
  '{"header":{"cluster_id":"4691270838897183303","member_id":"14590032085621120027","revision":"4","raft_term":"3"},' +
  '"version":"3.4.23","dbSize":"20480","leader":"14590032085621120027","raftIndex":"25","raftTerm":"3",' +
  '"raftAppliedIndex":"25","dbSizeInUse":"16384"}';
const AUTH_FAILED =
  '{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3}';
const METRICS_EXCERPT = [
  '# HELP etcd_debugging_mvcc_put_total Total number of puts seen by this member.',
  '# TYPE etcd_debugging_mvcc_put_total counter',
  'etcd_debugging_mvcc_put_total 3',
  'etcd_debugging_mvcc_range_total 4',
  'etcd_mvcc_delete_total 2',
  'etcd_mvcc_put_total 3',
  'etcd_mvcc_range_total 4',
  'etcd_mvcc_txn_total 2',
  'etcd_network_active_peers{Local="ca7a34e16cff9c1b",Remote="3c06f24a4f9221b3"} 1',
  'etcd_server_quota_backend_bytes 2.147483648e+09',
  '',
].join('\n');

describe('etcd replies (recorded from etcd 3.4.23)', () => {
  test('uint64 ids stay exact and print like etcdctl (lowercase hex, no padding)', () => {
    expect(idToHex('14590032085621120027')).toBe('ca7a34e16cff9c1b');
    expect(idToHex('287804130617070356')).toBe('3fe7c54fa521314');
    expect(idToHex('18446744073709551615')).toBe('ffffffffffffffff');
    for (const bad of ['0', '', 'x1', undefined, null, '-1']) expect(idToHex(bad)).toBeUndefined();
  });

  test('status: identity, revision, learner flag; roles', () => {
    const learner = parseStatus(LEARNER_STATUS);
    expect(learner).toMatchObject({
      memberId: '3fe7c54fa521314',
      clusterId: '411abdf8f99d8a47',
      leaderId: 'ca7a34e16cff9c1b',
      revision: 4,
      raftIndex: 27,
      version: '3.4.23',
      dbSizeBytes: 20480,
      isLearner: true,
      errors: [],
    });
    expect(roleFromStatus(learner)).toEqual({ role: 'unknown', nativeRole: 'learner' });
    const leader = parseStatus(LEADER_STATUS);
    expect(leader.isLearner).toBe(false);
    expect(roleFromStatus(leader)).toEqual({ role: 'primary', nativeRole: 'leader' });
    expect(roleFromStatus({ ...leader, memberId: '3c06f24a4f9221b3' })).toEqual({
      role: 'secondary',
      nativeRole: 'follower',
    });
    // proto3 JSON omits a zero leader: during an election, or cut off from quorum.
    const noLeader = parseStatus(LEADER_STATUS.replace('"leader":"14590032085621120027",', ''));
    expect(roleFromStatus(noLeader)).toEqual({ role: 'unknown', nativeRole: 'no-leader' });
  });

  test('status: a reply without the model fields is a clear error, not a crash', () => {
    expect(() => parseStatus('<html>')).toThrow(/not JSON/);
    expect(() => parseStatus('{}')).toThrow(/lacks header.member_id/);
    expect(() => parseStatus(LEADER_STATUS.replace('"revision":"4",', ''))).toThrow(/header.revision/);
    // Unknown fields (newer etcd) are ignored.
    expect(
      parseStatus(LEADER_STATUS.replace('{"header"', '{"storageVersion":"3.6.0","header"')).revision,
    ).toBe(4);
  });

  test('gateway error bodies', () => {
    expect(parseGatewayError(AUTH_FAILED)).toEqual({
      message: 'etcdserver: authentication failed, invalid user ID or password',
      grpcCode: 3,
    });
    expect(parseGatewayError('404 page not found')).toBeUndefined();
  });

  test('/metrics: only the wanted unlabelled samples; etcd_mvcc_* preferred, debugging names as fallback', () => {
    expect(mvccOperations(METRICS_EXCERPT)).toEqual({ reads: 4, writes: 5 });
    const debuggingOnly =
      'etcd_debugging_mvcc_delete_total 1\netcd_debugging_mvcc_put_total 7\netcd_debugging_mvcc_range_total 9\n';
    expect(mvccOperations(debuggingOnly)).toEqual({ reads: 9, writes: 8 });
    expect(mvccOperations('etcd_mvcc_put_total 1\n')).toEqual({ reads: undefined, writes: undefined });
    expect(mvccOperations('')).toEqual({});
    const picked = pickUnlabelledSamples(METRICS_EXCERPT, [
      'etcd_server_quota_backend_bytes',
      'etcd_network_active_peers',
      'etcd_mvcc_put',
      'etcd_debugging_mvcc_put_total',
    ]);
    // Labelled series and name prefixes are not matched; the first line and exponents are.
    expect([...picked]).toEqual([
      ['etcd_server_quota_backend_bytes', 2147483648],
      ['etcd_debugging_mvcc_put_total', 3],
    ]);
  });
});

function driverOptions(url: string, timeoutMs: number): DriverOptions {
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined };
  return { target: parseTarget(url), timeoutMs, logger: quiet, extra: {}, heartbeat: false };
}

describe('etcd driver HTTP boundary (fake servers)', () => {
  let server: Server;
  let port: number;
  let sockets = 0;
  let closedSockets = 0;
  let handler: (path: string) => { status: number; body: string } | 'hang';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const reply = handler(req.url ?? '');
      if (reply === 'hang') return;
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.body);
    });
    server.on('connection', (socket) => {
      sockets++;
      socket.on('close', () => closedSockets++);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('close() abandons a request in flight at once and drops the socket', async () => {
    handler = () => 'hang';
    const driver = createDriver(driverOptions(`etcd://127.0.0.1:${port}`, 60000));
    await driver.connect();
    const closedBefore = closedSockets;
    const pending = driver.observe();
    await waitFor('request reaches the server', () => sockets > 0);
    await driver.close();
    // The deadline is 60 s: only close() can have ended it.
    await expect(pending).rejects.toThrow(/abandoned: connection closed/);
    await waitFor('socket closed', () => closedSockets > closedBefore);
  });

  test('a hung member fails the request at the deadline', async () => {
    handler = () => 'hang';
    const driver = createDriver(driverOptions(`etcd://127.0.0.1:${port}`, 200));
    await driver.connect();
    await expect(driver.observe()).rejects.toThrow('etcd /v3/maintenance/status timed out after 200 ms');
    await driver.close();
  });

  test('one kept-alive socket serves status and /metrics, collection after collection', async () => {
    handler = (path) =>
      path === '/metrics' ? { status: 200, body: METRICS_EXCERPT } : { status: 200, body: LEADER_STATUS };
    const driver = createDriver(driverOptions(`etcd://127.0.0.1:${port}`, 2000));
    await driver.connect();
    const before = sockets;
    for (let i = 0; i < 3; i++) {
      const obs = await driver.observe();
      expect(obs).toMatchObject({
        datastore: 'etcd',
        nativeNodeId: 'ca7a34e16cff9c1b',
        nativeClusterId: '411abdf8f99d8a47',
        performance: { readsTotal: 4, writesTotal: 5 },
      });
      expect(obs.shards).toEqual([
        {
          role: 'primary',
          nativeRole: 'leader',
          commitOffset: { value: 4, unit: 'revision' },
          lastOperationTimestampSeconds: undefined,
        },
      ]);
      expect(obs.performance.clientsConnected).toBeUndefined();
    }
    expect(sockets - before).toBe(1);
    await driver.close();
  });

  test('no JSON gateway (404) says why; /metrics missing leaves reads and writes absent', async () => {
    handler = () => ({ status: 404, body: '404 page not found\n' });
    const driver = createDriver(driverOptions(`etcd://127.0.0.1:${port}`, 2000));
    await driver.connect();
    await expect(driver.observe()).rejects.toThrow(/HTTP 404.*--enable-grpc-gateway=false/);
    handler = (path) =>
      path === '/metrics' ? { status: 404, body: '' } : { status: 200, body: LEADER_STATUS };
    const obs = await driver.observe();
    expect(obs.performance).toEqual({ readsTotal: undefined, writesTotal: undefined });
    expect(obs.shards[0]!.role).toBe('primary');
    await driver.close();
  });

  test('URL parameters: only TLS files, only with etcds://, files that exist (checked when parsed)', () => {
    // Any readable regular file passes the start-up check; its content is for the TLS handshake.
    const file = __filename;
    expect(() =>
      createDriver(driverOptions(`etcds://127.0.0.1:2379?cacert=${file}&cert=${file}&key=${file}`, 1000)),
    ).not.toThrow();
    expect(() => createDriver(driverOptions('etcds://127.0.0.1:2379?ca=/x', 1000))).toThrow(ConfigError);
    expect(() => createDriver(driverOptions('etcd://127.0.0.1:2379?cacert=/x', 1000))).toThrow(/etcds:\/\//);
    expect(() =>
      createDriver(driverOptions('etcds://127.0.0.1:2379?cacert=/nonexistent/ca.pem', 1000)),
    ).toThrow(/cannot read cacert file "\/nonexistent\/ca.pem": ENOENT/);
    expect(() => createDriver(driverOptions(`etcds://127.0.0.1:2379?cert=${file}`, 1000))).toThrow(
      /cert and key go together/,
    );
  });
});

/** The single primary among these exporters' scrapes, by index; throws unless exactly one. */
function onlyPrimary(scrapes: Sample[][], shardId: string): number {
  const primaries = scrapes.flatMap((s, i) => (roleOf(s, shardId) === 'primary' ? [i] : []));
  if (primaries.length !== 1) throw new Error(`expected one primary, found ${primaries.length}`);
  return primaries[0]!;
}

describe('etcd 3-member cluster (real etcd 3.4)', () => {
  let cluster: EtcdCluster;
  let members: EtcdMember[];
  const exporters: TestExporter[] = [];
  let clusterId: string;

  const scrapeAll = (): Promise<Sample[][]> => Promise.all(exporters.map((e) => e.scrape()));
  const nextAll = (n: number): Promise<void> =>
    Promise.all(exporters.map((e) => e.nextCollections(n))).then(() => undefined);

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    members = [...cluster.members];
    for (const m of members) exporters.push(await startTestExporter(['--target', m.url]));
    await nextAll(1);
    clusterId = members[0]!.status().clusterId;
  });
  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await cluster?.stop();
  });

  test('one primary and two secondaries; ids, revision and version match etcdctl endpoint status', async () => {
    const scrapes = await scrapeAll();
    const leader = cluster.leader();
    for (let i = 0; i < members.length; i++) {
      const s = scrapes[i]!;
      const ctl = members[i]!.status();
      expect(value(s, 'datastore_up')).toBe(1);
      expect(
        value(s, 'datastore_node_info', {
          datastore: 'etcd',
          node_id: ctl.memberId,
          cluster_id: ctl.clusterId,
        }),
      ).toBe(1);
      expect(ctl.clusterId).toBe(clusterId);
      expect(value(s, 'datastore_version_info', { datastore: 'etcd', version: ctl.version })).toBe(1);
      expect(roleOf(s, clusterId)).toBe(members[i] === leader ? 'primary' : 'secondary');
      // No writes since start-up: the revision cannot have moved between the collection and etcdctl.
      expect(value(s, 'datastore_shard_commit_offset', { cluster_id: clusterId, shard_id: clusterId })).toBe(
        ctl.revision,
      );
      // A member knows no lag in seconds, and etcd counts no client connections: absent, never 0.
      expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
      expect(find(s, 'datastore_clients_connected')).toHaveLength(0);
      expect(find(s, 'datastore_reads_total')).toHaveLength(1);
      expect(find(s, 'datastore_writes_total')).toHaveLength(1);
    }
    expect(onlyPrimary(scrapes, clusterId)).toBe(members.indexOf(leader));
  });

  test('writes move revision, writes_total and last-op on all three; reads count where served; compaction moves no revision', async () => {
    let scrapes = await scrapeAll();
    expect(find(scrapes[0]!, 'datastore_shard_last_operation_timestamp_seconds')).toHaveLength(0);
    const writesBefore = scrapes.map((s) => value(s, 'datastore_writes_total'));
    const readsBefore = scrapes.map((s) => value(s, 'datastore_reads_total'));
    const t0 = Date.now() / 1000;
    const leader = cluster.leader();
    const follower = members.find((m) => m !== leader)!;
    leader.ctl('put', 'k1', 'v1');
    follower.ctl('put', 'k2', 'v2');
    leader.ctl('del', 'k1');
    const revision = leader.status().revision;
    await waitFor('every member applied the writes', () =>
      members.every((m) => m.status().revision === revision),
    );
    await nextAll(2);
    scrapes = await scrapeAll();
    for (let i = 0; i < members.length; i++) {
      const s = scrapes[i]!;
      expect(value(s, 'datastore_shard_commit_offset', { shard_id: clusterId })).toBe(revision);
      // Replicated writes are applied, and counted, by every member: put, put, delete.
      expect(value(s, 'datastore_writes_total')).toBe(writesBefore[i]! + 3);
      const lastOp = value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: clusterId });
      expect(lastOp).toBeGreaterThanOrEqual(t0);
      expect(lastOp).toBeLessThanOrEqual(Date.now() / 1000);
      // Only the deletes/puts above: no reads anywhere yet.
      expect(value(s, 'datastore_reads_total')).toBe(readsBefore[i]!);
    }

    // A read is served, and counted, by the member asked only.
    const lastOps = scrapes.map((s) => value(s, 'datastore_shard_last_operation_timestamp_seconds'));
    expect(follower.ctl('get', 'k2')).toBe('k2\nv2');
    await nextAll(2);
    scrapes = await scrapeAll();
    for (let i = 0; i < members.length; i++) {
      expect(value(scrapes[i]!, 'datastore_reads_total')).toBe(
        readsBefore[i]! + (members[i] === follower ? 1 : 0),
      );
      // Reads do not move the revision, hence not last-op.
      expect(value(scrapes[i]!, 'datastore_shard_last_operation_timestamp_seconds')).toBe(lastOps[i]);
    }

    // Compaction moves the raft index but not the revision: no write, no last-op.
    const raftIndexBefore = leader.status().raftIndex;
    leader.ctl('compact', String(revision));
    await waitFor('compaction applied', () => leader.status().raftIndex > raftIndexBefore);
    await nextAll(2);
    scrapes = await scrapeAll();
    for (let i = 0; i < members.length; i++) {
      expect(value(scrapes[i]!, 'datastore_shard_commit_offset')).toBe(revision);
      expect(value(scrapes[i]!, 'datastore_shard_last_operation_timestamp_seconds')).toBe(lastOps[i]);
      expect(value(scrapes[i]!, 'datastore_writes_total')).toBe(writesBefore[i]! + 3);
    }
  });

  test('etcdctl move-leader moves the primary role within one interval', async () => {
    const oldLeader = cluster.leader();
    const target = members.find((m) => m !== oldLeader)!;
    oldLeader.ctl('move-leader', target.status().memberId);
    // The third member learns of the new leader with its first heartbeat.
    await waitFor('etcdctl sees the new leader on every member', () => cluster.leader() === target, 5000);
    // One interval is 1 s; allow the collections in flight to finish.
    await waitFor(
      'new leader reports primary, old leader secondary',
      async () => {
        const scrapes = await scrapeAll();
        return (
          onlyPrimary(scrapes, clusterId) === members.indexOf(target) &&
          roleOf(scrapes[members.indexOf(oldLeader)]!, clusterId) === 'secondary'
        );
      },
      2500,
      50,
    );
  });

  test('a learner reports role unknown (native role learner) with its own member id and the revision', async () => {
    const learner = await cluster.addLearner();
    const exporter = await startTestExporter(['--target', learner.url]);
    try {
      await exporter.nextCollections(1);
      const s = await exporter.scrape();
      const ctl = learner.status();
      expect(ctl.isLearner).toBe(true);
      expect(value(s, 'datastore_node_info', { node_id: ctl.memberId, cluster_id: clusterId })).toBe(1);
      expect(roleOf(s, clusterId)).toBe('unknown');
      expect(value(s, 'datastore_shard_commit_offset', { shard_id: clusterId })).toBe(ctl.revision);
      expect(ctl.revision).toBe(members[0]!.status().revision);
      // The voters still have exactly one primary.
      expect(onlyPrimary(await scrapeAll(), clusterId)).toBe(members.indexOf(cluster.leader()));
    } finally {
      await exporter.stop();
      await cluster.removeMember(learner);
    }
  });

  let hung: EtcdMember;
  testServerHung({
    what: 'a follower member',
    exporter: () => exporters[members.indexOf(hung)]!,
    pause: () => {
      hung = members.find((m) => m !== cluster.leader())!;
      hung.process.pause();
      return Promise.resolve();
    },
    resume: () => Promise.resolve(hung.process.resume()),
    downWithinMs: 10000,
    upWithinMs: 10000,
  });

  let victim: EtcdMember;
  const victimExporter = (): TestExporter => exporters[members.indexOf(victim)]!;
  testServerStopped({
    what: 'a member (the leader)',
    how: 'killed',
    exporter: victimExporter,
    stop: async () => {
      victim = cluster.leader();
      await victim.process.kill();
    },
    downWithinMs: 5000,
    whileDown: async () => {
      const others = members.flatMap((m, j) => (m === victim ? [] : [j]));
      // The two survivors elect a leader (election timeout 1 s) and report exactly one primary.
      await waitFor(
        'one primary among the survivors',
        async () => {
          const scrapes = await Promise.all(others.map((j) => exporters[j]!.scrape()));
          return scrapes.every((s) => value(s, 'datastore_up') === 1) && onlyPrimary(scrapes, clusterId) >= 0;
        },
        15000,
        100,
      );
      await waitFor('etcdctl agrees on a new leader', () => cluster.leader() !== victim, 5000);
    },
    restart: () => victim.restart(),
    upWithinMs: 5000,
    afterRecovery: async () => {
      const i = members.indexOf(victim);
      await waitFor(
        'one primary among all three, the restarted member a secondary',
        async () => {
          const scrapes = await scrapeAll();
          return (
            onlyPrimary(scrapes, clusterId) === members.indexOf(cluster.leader()) &&
            roleOf(scrapes[i]!, clusterId) === (cluster.leader() === victim ? 'primary' : 'secondary')
          );
        },
        5000,
        100,
      );
    },
  });

  test('auth: the user and password-file password authenticate; a wrong password fails clearly', async () => {
    const m = members[0]!;
    const dir = tempDir('etcd-auth');
    const passwordFile = `${dir.path}/password`;
    writeFileSync(passwordFile, 's3cret-monitor\n');
    m.ctl('user', 'add', 'root:r00t-pw');
    m.ctl('user', 'add', 'monitor:s3cret-monitor');
    m.ctl('auth', 'enable');
    const good = await startTestExporter([
      '--target',
      `etcd://monitor@${m.endpoint}`,
      '--target.password-file',
      passwordFile,
    ]);
    const bad = await startTestExporter(['--target', `etcd://monitor:wrong-pw@${m.endpoint}`]);
    try {
      await Promise.all([good.nextCollections(1), bad.nextCollections(1)]);
      const s = await good.scrape();
      expect(value(s, 'datastore_up')).toBe(1);
      expect(value(s, 'datastore_node_info', { node_id: m.status().memberId, cluster_id: clusterId })).toBe(
        1,
      );
      expect(value(await bad.scrape(), 'datastore_up')).toBe(0);
      expect(bad.collector.state.lastError).toMatch(/authentication failed, invalid user ID or password/);
      for (const log of [...good.logs, ...bad.logs]) {
        expect(log).not.toContain('s3cret-monitor');
        expect(log).not.toContain('wrong-pw');
      }
    } finally {
      await Promise.all([good.stop(), bad.stop()]);
      m.ctl('--user', 'root:r00t-pw', 'auth', 'disable');
      dir.remove();
    }
  });

  test('promtool check metrics passes on the real output of every member', async () => {
    requireBinary('/usr/bin/promtool', 'the Debian package prometheus');
    for (const e of exporters) {
      const text = await e.scrapeText();
      expect(text).toContain('datastore_shard_role{');
      // Throws (failing the test, with promtool's findings) on a non-zero exit.
      execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    }
  });
});

describe('etcds:// against a member requiring client certificates (real etcd 3.4)', () => {
  let certs: ReturnType<typeof makeCertificates>;
  let dir: { path: string; remove(): void };
  let tls: Awaited<ReturnType<typeof startTlsMember>>;

  beforeAll(async () => {
    dir = tempDir('etcd-certs');
    certs = makeCertificates(dir.path);
    tls = await startTlsMember(certs);
  });
  afterAll(async () => {
    await tls?.stop();
    dir?.remove();
  });

  test('with cacert/cert/key: up, primary of a one-member cluster; without a client certificate: down', async () => {
    const base = `etcds://${tls.member.endpoint}`;
    const good = await startTestExporter([
      '--target',
      `${base}?cacert=${certs.caFile}&cert=${certs.clientCertFile}&key=${certs.clientKeyFile}`,
    ]);
    const noClientCert = await startTestExporter(['--target', `${base}?cacert=${certs.caFile}`]);
    try {
      await Promise.all([good.nextCollections(1), noClientCert.nextCollections(1)]);
      const s = await good.scrape();
      const ctl = tls.member.status();
      expect(good.collector.state.lastError).toBeUndefined();
      expect(value(s, 'datastore_up')).toBe(1);
      expect(value(s, 'datastore_node_info', { node_id: ctl.memberId, cluster_id: ctl.clusterId })).toBe(1);
      expect(roleOf(s, ctl.clusterId)).toBe('primary');
      expect(value(await noClientCert.scrape(), 'datastore_up')).toBe(0);
    } finally {
      await Promise.all([good.stop(), noClientCert.stop()]);
    }
  });
});
