/**
 * Heartbeat mode on real etcd 3.4: true lag in seconds, which an etcd member cannot tell.
 * Every member's peer port sits behind a proxy that can delay (or hold back) what one member
 * receives over its raft streams (see startDelayedEtcdCluster): a real replication delay while all
 * members keep running. Plus the parsers and counters on their own, and auth on a single member.
 */
import {
  describeHeartbeatConformance,
  type HeartbeatHarness,
  type HeartbeatNode,
} from './support/heartbeat-conformance';
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { sleep, waitFor } from './support/processes';
import {
  startDelayedEtcdCluster,
  startEtcdCluster,
  type DelayedEtcdCluster,
  type EtcdCluster,
  type EtcdMember,
} from './support/etcd';
import { ExcludingCounter, RevisionTracker } from '../src/drivers/etcd/driver';
import {
  HEARTBEAT_KEY,
  heartbeatPutRequest,
  heartbeatRangeRequest,
  parseHeartbeatRange,
} from '../src/drivers/etcd/heartbeat';

const DELAY_S = 3;
const CLUSTER = 'etcd-hb';
const SHARD = { shard_id: CLUSTER };

/** Recorded from etcd 3.4.23: the heartbeat key absent, then present after one put. */
const RANGE_EMPTY =
  '{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"1","raft_term":"2"}}';
const RANGE_ONE =
  '{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"},' +
  '"kvs":[{"key":"X19kYXRhc3RvcmVfZXhwb3J0ZXIvaGVhcnRiZWF0","create_revision":"2","mod_revision":"2","version":"1",' +
  '"value":"eyJ0IjoxNzY0MjM3MDAwLjI1LCJ3IjoiOGU5ZTA1YzUyMTY0Njk0ZCJ9"}],"count":"1"}';

describe('etcd heartbeat requests, replies and accounting (no server)', () => {
  test('range is serializable (a local read) on the namespaced key; put writes {t, w}', () => {
    expect(heartbeatRangeRequest()).toEqual({
      key: Buffer.from('__datastore_exporter/heartbeat').toString('base64'),
      serializable: true,
    });
    const put = heartbeatPutRequest({ timestampSeconds: 12.5, writerNodeId: 'ca7a34e16cff9c1b' }) as {
      key: string;
      value: string;
    };
    expect(Buffer.from(put.key, 'base64').toString()).toBe(HEARTBEAT_KEY);
    expect(Buffer.from(put.value, 'base64').toString()).toBe('{"t":12.5,"w":"ca7a34e16cff9c1b"}');
  });

  test('range replies (recorded from etcd 3.4.23): revision, version, record; absent key is version 0', () => {
    expect(parseHeartbeatRange(RANGE_EMPTY)).toEqual({ revision: 1, version: 0, record: undefined });
    expect(parseHeartbeatRange(RANGE_ONE)).toEqual({
      revision: 2,
      version: 1,
      record: { timestampSeconds: 1764237000.25, writerNodeId: '8e9e05c52164694d' },
    });
    const foreign = RANGE_ONE.replace(
      /"value":"[^"]*"/,
      `"value":"${Buffer.from('hello').toString('base64')}"`,
    );
    expect(parseHeartbeatRange(foreign).record).toBeUndefined();
    expect(() => parseHeartbeatRange('{}')).toThrow(/header.revision/);
    expect(() => parseHeartbeatRange('<html>')).toThrow(/not JSON/);
  });

  test('last operation: an advance made only of heartbeat puts is not a write', () => {
    const t = new RevisionTracker();
    expect(t.observe(10, 100, 5)).toBeUndefined();
    expect(t.observe(13, 101, 8)).toBeUndefined(); // +3 revisions, +3 heartbeat puts
    expect(t.observe(17, 102, 11)).toBe(102); // +4 revisions, +3 heartbeat puts: one user write
    expect(t.observe(19, 103, 1)).toBe(103); // the key was deleted and put again: nothing excused
    expect(t.observe(20, 104)).toBe(104); // no heartbeat view: every advance counts
    expect(t.observe(15, 105, 2)).toBe(104); // revision down (another cluster at the address): baseline
  });

  test('counters minus the own share: never a phantom operation, never a dip, reset on restart', () => {
    const c = new ExcludingCounter();
    expect(c.observe(100)).toBe(100);
    c.addOwn(2);
    expect(c.observe(102)).toBe(100); // two own puts: no user write
    c.addOwn(3); // one own put already measured but not yet in the counter...
    expect(c.observe(104)).toBe(100); // ...would be a dip to 99: held at 100
    c.addOwn(0);
    expect(c.observe(105)).toBe(100); // it arrives: still 100, no phantom write
    expect(c.observe(106)).toBe(101); // a user write
    expect(c.observe(3)).toBe(3); // the member restarted: its counter starts over, and so does ours
  });
});

/** POST to a member's JSON gateway without blocking the event loop (the exporters run in-process). */
async function gateway(member: EtcdMember, path: string, body: object): Promise<unknown> {
  const res = await fetch(`http://${member.endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

async function put(member: EtcdMember, key: string, val: string): Promise<void> {
  await gateway(member, '/v3/kv/put', { key: b64(key), value: b64(val) });
}

/** The heartbeat record as `member` has it (serializable: its own store). */
async function heartbeatOn(member: EtcdMember): Promise<{ t: number; w: string } | undefined> {
  const reply = (await gateway(member, '/v3/kv/range', heartbeatRangeRequest())) as {
    kvs?: { value: string }[];
  };
  const raw = reply.kvs?.[0]?.value;
  return raw === undefined
    ? undefined
    : (JSON.parse(Buffer.from(raw, 'base64').toString()) as { t: number; w: string });
}

/** Puts to `load` through the leader every 50 ms until stopped. */
function startLoad(leader: EtcdMember): Promise<{ stop(): Promise<void> }> {
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      await put(leader, 'load', String(i));
      await sleep(50);
    }
  })();
  return Promise.resolve({
    async stop() {
      running = false;
      await done;
    },
  });
}

describe('heartbeat mode, etcd 3.4 cluster with a delayable member', () => {
  let cluster: DelayedEtcdCluster;
  let delayedMember: EtcdMember;
  const exporters = new Map<string, TestExporter>();
  const exporterOf = (m: EtcdMember): TestExporter => exporters.get(m.name)!;
  const leader = (): EtcdMember => cluster.leader();
  const directFollower = (): EtcdMember =>
    cluster.members.find((m) => m !== delayedMember && m !== leader())!;

  beforeAll(async () => {
    // m1 is delayed: an election timeout longer than delay + pause keeps it from campaigning
    // while the leader's messages are late (and a long timeout also keeps it from leading).
    cluster = await startDelayedEtcdCluster(3, (name) =>
      name === 'm1' ? ['--election-timeout', '10000'] : [],
    );
    delayedMember = cluster.members[0]!;
    if (leader() === delayedMember) {
      delayedMember.ctl('move-leader', cluster.members[1]!.status().memberId);
      await waitFor('m1 not the leader', () => leader() !== delayedMember, 5000);
    }
    await cluster.peerDelay.delayMember(delayedMember.status().memberId);
    for (const m of cluster.members) {
      exporters.set(
        m.name,
        await startTestExporter(['--target', m.url, '--heartbeat', '--cluster-id', CLUSTER]),
      );
    }
    await Promise.all([...exporters.values()].map((e) => e.waitUp()));
    await waitFor(
      'lag reported by both followers',
      async () => {
        for (const m of cluster.members.filter((x) => x !== leader())) {
          if (find(await exporterOf(m).scrape(), 'datastore_shard_replication_lag_seconds').length !== 1)
            return false;
        }
        return true;
      },
      15000,
    );
  }, 60000);
  afterAll(async () => {
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await cluster?.stop();
  });

  const hbNodes = new Map<string, HeartbeatNode>();
  /** A member and its exporter; the record is the key as the member's own JSON gateway ranges it. */
  const hb = (m: EtcdMember): HeartbeatNode => {
    if (!hbNodes.has(m.name))
      hbNodes.set(m.name, {
        name: m.name,
        get exporter() {
          return exporterOf(m);
        },
        record: () => heartbeatOn(m),
        writerId: () => Promise.resolve(m.status().memberId),
      });
    return hbNodes.get(m.name)!;
  };
  let delayOn = false;
  const harness: HeartbeatHarness = {
    datastore: 'etcd',
    delayS: DELAY_S,
    shard: () => SHARD,
    // No heartbeat line at all on a follower: not even a write attempted.
    replicaLogsNever: /heartbeat write/,
    primary: () => hb(leader()),
    inSync: () => (delayOn ? [directFollower()] : [directFollower(), delayedMember]).map(hb),
    delayed: () => hb(delayedMember),
    nodes: () => cluster.members.map(hb),
    startLoad: () => startLoad(leader()),
    delay: {
      on: async () => {
        await cluster.peerDelay.setDelay(DELAY_S * 1000);
        delayOn = true;
      },
      off: async () => {
        await cluster.peerDelay.setDelay(0);
        delayOn = false;
        await waitFor(
          'lag back below 1 s',
          async () =>
            value(
              await exporterOf(delayedMember).scrape(),
              'datastore_shard_replication_lag_seconds',
              SHARD,
            ) < 1,
          DELAY_S * 1000 + 5000,
        );
      },
    },
    whileDelayed: async () => {
      // Still a follower of the same leader: the delay alone triggered no election.
      expect(roleOf(await exporterOf(delayedMember).scrape(), CLUSTER)).toBe('secondary');
    },
    pause: async () => {
      await cluster.peerDelay.pause();
      return {
        node: hb(delayedMember),
        resume: async () => {
          await cluster.peerDelay.resume();
          return { node: hb(delayedMember), below: 1, withinMs: 10000 };
        },
      };
    },
    failover: async () => {
      // move-leader: the old leader stays, as a follower of the new one.
      const old = leader();
      const next = directFollower();
      old.ctl('move-leader', next.status().memberId);
      await waitFor('the new leader', () => leader() === next, 5000);
      return {
        promoted: hb(next),
        writesWithinMs: 10000,
        follower: { node: hb(old), below: 1, withinMs: 10000 },
      };
    },
  };

  describeHeartbeatConformance(harness, {
    // After the scenarios' client writes (a last operation exists), before the failover.
    beforeFailover: () => {
      test('heartbeats are not user activity: last-op, writes and reads stay put; a user put moves them on all three', async () => {
        const all = cluster.members;
        await Promise.all(all.map((m) => exporterOf(m).nextCollections(2)));
        const before = new Map<string, Sample[]>();
        for (const m of all) before.set(m.name, await exporterOf(m).scrape());
        await sleep(4000);
        await Promise.all(all.map((m) => exporterOf(m).nextCollections(1)));
        for (const m of all) {
          const a = await exporterOf(m).scrape();
          const b = before.get(m.name)!;
          // The revision moved with every heartbeat put (2 per second)...
          expect(value(a, 'datastore_shard_commit_offset', SHARD)).toBeGreaterThanOrEqual(
            value(b, 'datastore_shard_commit_offset', SHARD) + 6,
          );
          // ...but those, and the exporters' ranges, were the exporter's own.
          const lastOp = value(b, 'datastore_shard_last_operation_timestamp_seconds', SHARD);
          expect(value(a, 'datastore_shard_last_operation_timestamp_seconds', SHARD)).toBe(lastOp);
          expect(value(a, 'datastore_writes_total')).toBe(value(b, 'datastore_writes_total'));
          expect(value(a, 'datastore_reads_total')).toBe(value(b, 'datastore_reads_total'));
        }
        const t0 = Date.now() / 1000;
        await put(leader(), 'user-data', 'x');
        for (const m of all) {
          // (the excluded share is measured next to the counter: allow one more collection to settle)
          await waitFor(
            `${m.name}: the user put counted once`,
            async () => {
              const a = await exporterOf(m).scrape();
              const writes =
                value(a, 'datastore_writes_total') - value(before.get(m.name)!, 'datastore_writes_total');
              if (writes > 1) throw new Error(`writes_total moved by ${writes}`);
              return (
                writes === 1 &&
                value(a, 'datastore_shard_last_operation_timestamp_seconds', SHARD) >= Math.floor(t0)
              );
            },
            5000,
          );
        }
      });

      test('an exporter without --heartbeat on each member: heartbeat puts move neither its writes nor its last-op', async () => {
        const all = cluster.members;
        const plain = await Promise.all(
          all.map((m) => startTestExporter(['--target', m.url, '--cluster-id', CLUSTER])),
        );
        try {
          await Promise.all(plain.map((e) => e.waitUp()));
          await Promise.all(plain.map((e) => e.nextCollections(2)));
          const before = await Promise.all(plain.map((e) => e.scrape()));
          const window = Date.now();
          await sleep(6000); // ~12 heartbeat puts, applied on every member
          await Promise.all(plain.map((e) => e.nextCollections(1)));
          const seconds = (Date.now() - window) / 1000;
          for (const [i, e] of plain.entries()) {
            const a = await e.scrape();
            const b = before[i]!;
            expect(find(a, 'datastore_shard_heartbeat_timestamp_seconds')).toHaveLength(0);
            expect(value(a, 'datastore_shard_commit_offset', SHARD)).toBeGreaterThanOrEqual(
              value(b, 'datastore_shard_commit_offset', SHARD) + 10,
            );
            expect(value(a, 'datastore_writes_total')).toBe(value(b, 'datastore_writes_total'));
            expect(find(a, 'datastore_shard_last_operation_timestamp_seconds', SHARD)[0]?.value).toBe(
              find(b, 'datastore_shard_last_operation_timestamp_seconds', SHARD)[0]?.value,
            );
            // The other exporter's heartbeat range, one per collection of it, is a read on this member
            // that only that exporter can leave out (docs/etcd.md): at most one per second here.
            const reads = value(a, 'datastore_reads_total') - value(b, 'datastore_reads_total');
            expect(reads).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
          }
          const t0 = Date.now() / 1000;
          await put(leader(), 'user-data-plain', 'x');
          for (const [i, e] of plain.entries()) {
            await waitFor(
              `member ${i}: the user put counted once`,
              async () => {
                const a = await e.scrape();
                const writes =
                  value(a, 'datastore_writes_total') - value(before[i]!, 'datastore_writes_total');
                if (writes > 1) throw new Error(`writes_total moved by ${writes}`);
                return (
                  writes === 1 &&
                  value(a, 'datastore_shard_last_operation_timestamp_seconds', SHARD) >= Math.floor(t0)
                );
              },
              5000,
            );
          }
        } finally {
          await Promise.all(plain.map((e) => e.stop()));
        }
      });
    },
  });
});

describe('heartbeat mode with etcd auth (single member)', () => {
  let cluster: EtcdCluster;
  let member: EtcdMember;

  beforeAll(async () => {
    cluster = await startEtcdCluster(1);
    member = cluster.members[0]!;
    // The documented set-up: a role with readwrite on the exporter's prefix only.
    member.ctl('user', 'add', 'root:r00t-pw');
    member.ctl('role', 'add', 'datastore-exporter');
    member.ctl(
      'role',
      'grant-permission',
      'datastore-exporter',
      'readwrite',
      '__datastore_exporter/',
      '--prefix=true',
    );
    member.ctl('user', 'add', 'monitor:m0nitor-pw');
    member.ctl('user', 'grant-role', 'monitor', 'datastore-exporter');
    member.ctl('user', 'add', 'nobody:n0body-pw');
    member.ctl('auth', 'enable');
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('a user with readwrite on the prefix: writes and reads the heartbeat', async () => {
    const exporter = await startTestExporter([
      '--target',
      `etcd://monitor:m0nitor-pw@${member.endpoint}`,
      '--heartbeat',
    ]);
    try {
      await exporter.waitUp();
      await exporter.nextCollections(2);
      const s = await exporter.scrape();
      expect(value(s, 'datastore_up')).toBe(1);
      const hb = s.find((x) => x.name === 'datastore_shard_heartbeat_timestamp_seconds');
      expect(hb!.value).toBeGreaterThan(Date.now() / 1000 - 2);
      expect(exporter.logs.join('\n')).not.toMatch(/heartbeat write failed|m0nitor-pw/);
    } finally {
      await exporter.stop();
    }
  });

  test('a user without it: down with a message that names the prefix and the docs', async () => {
    const exporter = await startTestExporter([
      '--target',
      `etcd://nobody:n0body-pw@${member.endpoint}`,
      '--heartbeat',
    ]);
    try {
      await exporter.nextCollections(2);
      expect(value(await exporter.scrape(), 'datastore_up')).toBe(0);
      expect(exporter.collector.state.lastError).toMatch(
        /permission denied.*readwrite on the key prefix __datastore_exporter\/.*docs\/etcd.md/,
      );
    } finally {
      await exporter.stop();
    }
  });
});
