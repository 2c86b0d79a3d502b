/**
 * Heartbeat mode on real ZooKeeper 3.8: true lag in seconds, which ZooKeeper itself cannot tell.
 * A 3-node ensemble whose server 1 reaches the leader's quorum port through a delay proxy (see
 * startDelayedEnsemble) injects a real replication delay: proposals and commits reach it late.
 * Plus the jute records and trackers on their own, and ACLs on a standalone server.
 */
import {
  describeHeartbeatConformance,
  type HeartbeatHarness,
  type HeartbeatNode,
} from './support/heartbeat-conformance';
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, roleOf, value } from './support/metrics-text';
import { sleep, waitFor } from './support/processes';
import {
  startDelayedEnsemble,
  startStandalone,
  WHITELIST,
  ZkSession,
  type ZkDelayedEnsemble,
  type ZkServer,
} from './support/zookeeper';
import { ZxidTracker } from '../src/drivers/zookeeper/driver';
import {
  encodeHeartbeat,
  HEARTBEAT_PATH,
  heartbeatAcl,
  parseHeartbeat,
} from '../src/drivers/zookeeper/heartbeat';
import { operationCounts, parseMntr } from '../src/drivers/zookeeper/parse';
import {
  decodeConnectResponse,
  decodeGetDataResponse,
  decodeReplyHeader,
  encodeCreate,
  encodeGetData,
  encodeSetData,
  FrameSplitter,
  JuteReader,
  zkErrorName,
} from '../src/drivers/zookeeper/wire';

const DELAY_S = 3;
const CLUSTER = 'zk';
const SHARD = { shard_id: CLUSTER };

describe('heartbeat jute records, parsing and accounting (no server)', () => {
  test('requests are framed jute records: length, xid, op, fields', () => {
    const get = encodeGetData(7, '/datastore_exporter/heartbeat');
    const r = new JuteReader(get);
    expect(r.int()).toBe(get.length - 4);
    expect(r.int()).toBe(7); // xid
    expect(r.int()).toBe(4); // getData
    expect(r.buffer()!.toString()).toBe('/datastore_exporter/heartbeat');
    expect(r.remaining).toBe(1); // watch: false
    const set = new JuteReader(encodeSetData(8, '/a', Buffer.from('xy')));
    set.int();
    expect([set.int(), set.int(), set.buffer()!.toString(), set.buffer()!.toString(), set.int()]).toEqual([
      8,
      5,
      '/a',
      'xy',
      -1, // any version
    ]);
    const create = new JuteReader(encodeCreate(9, '/a', Buffer.alloc(0), heartbeatAcl('monitor')));
    create.int();
    expect([create.int(), create.int(), create.buffer()!.toString(), create.buffer()!.length]).toEqual([
      9,
      1,
      '/a',
      0,
    ]);
    expect(create.int()).toBe(2); // two ACL entries: auth (all), world:anyone (read)
    expect([create.int(), create.buffer()!.toString(), create.buffer()!.toString()]).toEqual([
      31,
      'auth',
      '',
    ]);
    expect([create.int(), create.buffer()!.toString(), create.buffer()!.toString()]).toEqual([
      1,
      'world',
      'anyone',
    ]);
    expect(create.int()).toBe(0); // persistent
    expect(heartbeatAcl(undefined)).toEqual([{ perms: 31, scheme: 'world', id: 'anyone' }]);
  });

  test('replies: header, getData with Stat, connect; truncated frames are errors, never over-reads', () => {
    const stat = Buffer.alloc(68);
    stat.writeBigInt64BE(0x100000005n, 8); // mzxid
    stat.writeInt32BE(42, 32); // version
    const data = Buffer.from('{"t":1700000000.5,"w":"3"}');
    const body = Buffer.concat([Buffer.alloc(4), data, stat]);
    body.writeInt32BE(data.length, 0);
    const header = Buffer.alloc(16);
    header.writeInt32BE(12, 0);
    header.writeBigInt64BE(0x100000009n, 4);
    header.writeInt32BE(0, 12);
    const reply = decodeReplyHeader(Buffer.concat([header, body]));
    expect(reply).toMatchObject({ xid: 12, zxid: 0x100000009n, err: 0 });
    const decoded = decodeGetDataResponse(reply.body);
    expect(decoded.stat).toEqual({ mzxid: 0x100000005n, version: 42 });
    expect(parseHeartbeat(decoded.data)).toEqual({ timestampSeconds: 1700000000.5, writerNodeId: '3' });
    expect(() => decodeGetDataResponse(body.subarray(0, 40))).toThrow(/truncated/);
    const lying = Buffer.from(body);
    lying.writeInt32BE(1 << 30, 0);
    expect(() => decodeGetDataResponse(lying)).toThrow(/truncated/);

    const connect = Buffer.alloc(4 + 4 + 8 + 4 + 16);
    connect.writeInt32BE(10000, 4);
    connect.writeBigInt64BE(0x1234n, 8);
    connect.writeInt32BE(16, 16);
    expect(decodeConnectResponse(connect)).toEqual({ sessionTimeoutMs: 10000, sessionId: 0x1234n });
    expect(zkErrorName(-102)).toBe('NOAUTH (-102)');
  });

  test('frames split across chunks and merged in one; an absurd length is refused', () => {
    const a = encodeGetData(1, '/x');
    const b = encodeGetData(2, '/y');
    const both = Buffer.concat([a, b]);
    const splitter = new FrameSplitter(1024);
    expect(splitter.push(both.subarray(0, 3))).toEqual([]);
    const frames = [
      ...splitter.push(both.subarray(3, a.length + 5)),
      ...splitter.push(both.subarray(a.length + 5)),
    ];
    expect(frames.map((f) => f.readInt32BE(0))).toEqual([1, 2]);
    expect(() => new FrameSplitter(1024).push(Buffer.from([0x7f, 0, 0, 0]))).toThrow(/frame of/);
  });

  test('heartbeat content: written as {t, w}; anything else reads as no record', () => {
    const written = encodeHeartbeat({ timestampSeconds: 12.25, writerNodeId: '2' });
    expect(written.toString()).toBe('{"t":12.25,"w":"2"}');
    expect(parseHeartbeat(written)).toEqual({ timestampSeconds: 12.25, writerNodeId: '2' });
    for (const bad of ['', 'null', '{"t":"1","w":"2"}', '{"t":1}', 'not json', '[1,2]']) {
      expect(parseHeartbeat(Buffer.from(bad))).toBeUndefined();
    }
    expect(parseHeartbeat(undefined)).toBeUndefined();
  });

  test('last operation: an advance made only of heartbeat setData is not a write', () => {
    const t = new ZxidTracker();
    const e1 = 1n << 32n;
    expect(t.observe(e1 + 10n, 100, 5)).toBeUndefined();
    // +3 transactions, version +3: three heartbeats, nothing else.
    expect(t.observe(e1 + 13n, 101, 8)).toBeUndefined();
    // +4 transactions, version +3: one user transaction among them.
    expect(t.observe(e1 + 17n, 102, 11)).toBe(102);
    // The znode was deleted and created again (version went down): nothing is excused.
    expect(t.observe(e1 + 19n, 103, 0)).toBe(103);
    // Without a version (no heartbeat view) every advance counts, as without heartbeat mode.
    expect(t.observe(e1 + 20n, 104)).toBe(104);
    // New epoch: counter 2, version +2 -> heartbeats only; counter 3, version +1 -> a write.
    expect(t.observe(e1 + 20n, 105, 0)).toBe(104);
    expect(t.observe((2n << 32n) + 2n, 106, 2)).toBe(104);
    expect(t.observe((2n << 32n) + 5n, 107, 3)).toBe(107);
  });

  test('reads and writes leave out the heartbeat namespace (both metrics providers)', () => {
    const mntr = parseMntr(
      [
        'zk_cnt_updatelatency\t9',
        'zk_cnt_app_read_per_namespace\t4',
        'zk_cnt_app_write_per_namespace\t2',
        'zk_cnt_datastore_exporter_read_per_namespace\t50',
        'zk_cnt_datastore_exporter_write_per_namespace\t70',
        'zk_read_per_namespace_count{key="datastore_exporter"}\t11',
        'zk_write_per_namespace_count{key="other"}\t3',
      ].join('\n'),
    );
    expect(operationCounts(mntr)).toEqual({ readsTotal: 65, writesTotal: 75 });
    expect(operationCounts(mntr, ['datastore_exporter'])).toEqual({ readsTotal: 4, writesTotal: 5 });
  });
});

/** Writes to /load through the leader every 50 ms until stopped. */
function startLoad(port: number): Promise<{ stop(): Promise<void> }> {
  let running = true;
  const done = (async () => {
    const session = await ZkSession.open(port);
    try {
      await session.create('/load', '0').catch(() => undefined);
      for (let i = 0; running; i++) {
        await session.setData('/load', String(i));
        await sleep(50);
      }
    } finally {
      await session.close();
    }
  })();
  return Promise.resolve({
    async stop() {
      running = false;
      await done;
    },
  });
}

/** The heartbeat record as a server has it (a session on that server reads its own data tree). */
async function heartbeatOn(server: ZkServer): Promise<{ t: number; w: string } | undefined> {
  const session = await ZkSession.open(server.clientPort);
  try {
    const raw = await session.getData(HEARTBEAT_PATH).catch(() => '');
    return raw === '' ? undefined : (JSON.parse(raw) as { t: number; w: string });
  } finally {
    await session.close();
  }
}

describe('heartbeat mode, ZooKeeper 3.8 ensemble with a delayable follower', () => {
  let ensemble: ZkDelayedEnsemble;
  const exporters = new Map<number, TestExporter>();
  const exporterOf = (s: ZkServer): TestExporter => exporters.get(s.id)!;
  /** Without --heartbeat, on the same servers: a mixed deployment. */
  const plain = new Map<number, TestExporter>();
  let leader: ZkServer;
  let direct: ZkServer;

  beforeAll(async () => {
    ensemble = await startDelayedEnsemble();
    for (const s of ensemble.servers) {
      exporters.set(
        s.id,
        await startTestExporter(['--target', s.url, '--heartbeat', '--cluster-id', CLUSTER]),
      );
      plain.set(s.id, await startTestExporter(['--target', s.url, '--cluster-id', CLUSTER]));
    }
    await Promise.all([...exporters.values(), ...plain.values()].map((e) => e.waitUp(20000)));
    leader = await ensemble.leader();
    direct = ensemble.servers.find((s) => s !== leader && s !== ensemble.delayed)!;
    // Every exporter has its session and a replicated heartbeat to read.
    await waitFor(
      'lag reported by both followers',
      async () => {
        for (const s of [ensemble.delayed, direct]) {
          if (find(await exporterOf(s).scrape(), 'datastore_shard_replication_lag_seconds').length !== 1)
            return false;
        }
        return true;
      },
      20000,
    );
  }, 60000);
  afterAll(async () => {
    await Promise.all([...exporters.values(), ...plain.values()].map((e) => e.stop()));
    await ensemble?.stop();
  });

  const hbNodes = new Map<number, HeartbeatNode>();
  const hb = (s: ZkServer): HeartbeatNode => {
    if (!hbNodes.has(s.id))
      hbNodes.set(s.id, {
        name: `server ${s.id}`,
        get exporter() {
          return exporterOf(s);
        },
        record: () => heartbeatOn(s),
        writerId: () => Promise.resolve(String(s.id)),
      });
    return hbNodes.get(s.id)!;
  };
  const lagOfDelayed = async (): Promise<number> =>
    value(await exporterOf(ensemble.delayed).scrape(), 'datastore_shard_replication_lag_seconds', SHARD);
  let delayOn = false;
  const harness: HeartbeatHarness = {
    datastore: 'zookeeper',
    delayS: DELAY_S,
    shard: () => SHARD,
    // No heartbeat line at all on a follower: not even a write attempted.
    replicaLogsNever: /heartbeat write/,
    primary: () => hb(leader),
    inSync: () => (delayOn ? [direct] : [direct, ensemble.delayed]).map(hb),
    delayed: () => hb(ensemble.delayed),
    nodes: () => ensemble.servers.map(hb),
    startLoad: () => startLoad(leader.clientPort),
    delay: {
      on: () => {
        ensemble.proxy.delayMs = DELAY_S * 1000;
        delayOn = true;
        return Promise.resolve();
      },
      off: async () => {
        ensemble.proxy.delayMs = 0;
        delayOn = false;
        await waitFor('lag back below 1 s', async () => (await lagOfDelayed()) < 1, DELAY_S * 1000 + 5000);
      },
    },
    whilePaused: async (node) => {
      // Still a follower: syncLimit (20 s here) is what bounds a ZooKeeper follower's lag.
      expect(roleOf(await node.exporter.scrape(), CLUSTER)).toBe('secondary');
    },
    pause: () => {
      ensemble.proxy.pause();
      return Promise.resolve({
        node: hb(ensemble.delayed),
        resume: () => {
          ensemble.proxy.resume();
          return Promise.resolve({ node: hb(ensemble.delayed), below: 1, withinMs: 10000 });
        },
      });
    },
    failover: async () => {
      const old = leader;
      const t0 = Date.now();
      await old.stop();
      const stopped = (Date.now() - t0) / 1000;
      const survivors = ensemble.servers.filter((s) => s !== old);
      const newLeader = await waitFor(
        'a new leader',
        async () => {
          for (const s of survivors)
            if ((await s.srvr().catch(() => undefined))?.get('Mode') === 'leader') return s;
          return undefined;
        },
        30000,
        100,
      );
      console.log(
        `zookeeper failover: leader stopped in ${stopped.toFixed(1)} s, new leader elected at ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      const other = survivors.find((s) => s !== newLeader)!;
      return {
        promoted: hb(newLeader),
        writesWithinMs: 30000,
        follower: { node: hb(other), below: 1, withinMs: 20000 },
      };
    },
  };

  describeHeartbeatConformance(harness, {
    // After the scenarios' client writes (a last operation exists), before the failover.
    beforeFailover: () => {
      test('heartbeats are not user activity, with or without --heartbeat: last-op, writes and reads stay put; a user write moves them on all three', async () => {
        const all = ensemble.servers;
        // Each server, as seen by its heartbeat exporter and by the one without --heartbeat.
        const both = all.flatMap((s) => [exporterOf(s), plain.get(s.id)!]);
        const versionBefore = await readVersion(leader);
        await Promise.all(both.map((e) => e.nextCollections(2)));
        const before = await Promise.all(both.map((e) => e.scrape()));
        await sleep(4000);
        await Promise.all(both.map((e) => e.nextCollections(1)));
        const after = await Promise.all(both.map((e) => e.scrape()));
        // (read outside the window: the test's own session open and close are transactions)
        expect((await readVersion(leader)) - versionBefore).toBeGreaterThanOrEqual(6);
        for (const [i, a] of after.entries()) {
          const b = before[i]!;
          // The zxid moved with every heartbeat...
          expect(value(a, 'datastore_shard_commit_offset', SHARD)).toBeGreaterThan(
            value(b, 'datastore_shard_commit_offset', SHARD),
          );
          // ...but those were an exporter's own writes and reads, whichever exporter looks.
          const lastOp = find(b, 'datastore_shard_last_operation_timestamp_seconds', SHARD)[0]?.value;
          expect(find(a, 'datastore_shard_last_operation_timestamp_seconds', SHARD)[0]?.value).toBe(lastOp);
          expect(value(a, 'datastore_writes_total')).toBe(value(b, 'datastore_writes_total'));
          expect(value(a, 'datastore_reads_total')).toBe(value(b, 'datastore_reads_total'));
        }
        const t0 = Date.now() / 1000;
        // The test session's own open/close are transactions too: they land before/after the write.
        const session = await ZkSession.open(leader.clientPort);
        try {
          await session.create('/user-data', 'x');
        } finally {
          await session.close();
        }
        await Promise.all(both.map((e) => e.nextCollections(2)));
        for (const [i, e] of both.entries()) {
          const a = await e.scrape();
          expect(value(a, 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBeGreaterThanOrEqual(
            Math.floor(t0),
          );
          expect(value(a, 'datastore_writes_total')).toBe(value(before[i]!, 'datastore_writes_total') + 1);
        }
      });

      test('without --heartbeat: no session (a session is a transaction), no heartbeat time, no lag', async () => {
        for (const e of plain.values()) {
          const s = await e.scrape();
          expect(find(s, 'datastore_shard_heartbeat_timestamp_seconds')).toHaveLength(0);
          expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
          expect(e.logs.join('\n')).not.toMatch(/heartbeat session/);
        }
      });
    },
  });
});

async function readVersion(server: ZkServer): Promise<number> {
  const session = await ZkSession.open(server.clientPort);
  try {
    return (await session.getDataStat(HEARTBEAT_PATH)).version;
  } finally {
    await session.close();
  }
}

describe('heartbeat ACLs on a standalone ZooKeeper', () => {
  let server: ZkServer & { remove(): void };

  beforeAll(async () => {
    server = await startStandalone(WHITELIST);
  });
  afterAll(async () => {
    await server?.stop();
    server?.remove();
  });

  test('with digest credentials: the znodes belong to that user, readable by anyone, writable by nobody else', async () => {
    const exporter = await startTestExporter([
      '--target',
      `zookeeper://monitor:s3cret@127.0.0.1:${server.clientPort}`,
      '--heartbeat',
    ]);
    try {
      await exporter.waitUp();
      await waitFor('heartbeat written', async () => {
        const s = await ZkSession.open(server.clientPort);
        try {
          return (await s.getData(HEARTBEAT_PATH)) !== '';
        } catch {
          return false;
        } finally {
          s.drop();
        }
      });
      const anonymous = await ZkSession.open(server.clientPort);
      const same = await ZkSession.open(server.clientPort);
      try {
        expect(JSON.parse(await anonymous.getData(HEARTBEAT_PATH))).toMatchObject({ w: expect.any(String) });
        await expect(anonymous.setData(HEARTBEAT_PATH, 'x')).rejects.toThrow(/error -102/); // NOAUTH
        await same.addAuthDigest('monitor', 's3cret');
        await same.setData(HEARTBEAT_PATH, '{"t":1,"w":"test"}');
      } finally {
        await Promise.all([anonymous.close(), same.close()]);
      }
      // The standalone server is primary: no lag; the session is not counted as a client.
      await exporter.nextCollections(2);
      const s = await exporter.scrape();
      expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
      expect(value(s, 'datastore_clients_connected')).toBe(0);
      expect(s.find((x) => x.name === 'datastore_shard_heartbeat_timestamp_seconds')!.value).toBeGreaterThan(
        Date.now() / 1000 - 2,
      );
      expect(exporter.logs.join('\n')).not.toContain('s3cret');
    } finally {
      await exporter.stop();
    }
  });

  test('an exporter the ACL does not allow: the write fails with NOAUTH and says where to look', async () => {
    const exporter = await startTestExporter([
      '--target',
      `zookeeper://127.0.0.1:${server.clientPort}`,
      '--heartbeat',
    ]);
    try {
      await exporter.waitUp();
      await waitFor('a failed write logged', () =>
        exporter.logs.find((l) => /heartbeat write failed/.test(l) && /NOAUTH \(-102\)/.test(l)),
      );
      expect(exporter.logs.find((l) => /heartbeat write failed/.test(l))).toMatch(/docs\/zookeeper.md/);
      // Reading is allowed (world:anyone read): collection stays up.
      expect(value(await exporter.scrape(), 'datastore_up')).toBe(1);
    } finally {
      await exporter.stop();
    }
  });

  test('wrong digest credentials are another identity: writes fail with NOAUTH, collection stays up', async () => {
    const exporter = await startTestExporter([
      '--target',
      `zookeeper://monitor:wr0ng-pw@127.0.0.1:${server.clientPort}`,
      '--heartbeat',
    ]);
    try {
      await exporter.waitUp();
      await exporter.nextCollections(3);
      // ZooKeeper accepts any digest credentials at addauth; they just do not match the ACL.
      const failures = exporter.logs.filter((l) => /heartbeat write failed/.test(l));
      expect(failures.length).toBeGreaterThan(0);
      expect(failures[0]).toMatch(/NOAUTH/);
      expect(exporter.logs.join('\n')).not.toContain('wr0ng-pw');
      expect(value(await exporter.scrape(), 'datastore_up')).toBe(1);
    } finally {
      await exporter.stop();
    }
  });
});
