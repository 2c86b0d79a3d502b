/**
 * The Redis driver against real 3-master / 3-replica Redis Clusters (Redis 7.0: no CLUSTER
 * MYSHARDID, so shard ids are derived from CLUSTER NODES; the 7.2+ path is in
 * redis-cluster-identity.test.ts): node ids, shard and cluster ids that survive a slot-by-slot
 * reshard with keys moving and a CLUSTER FAILOVER in the middle, what a killed master does to the
 * ids (exactly what docs/redis.md says), key ranges, roles, heartbeat keys that follow the slots,
 * and two clusters created the same way that get distinct ids.
 */
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { waitFor } from './support/processes';
import {
  clusterFailover,
  clusterNodes,
  moveSlot,
  slotInRanges,
  startRedisCluster,
  waitForClusterAgreement,
  type RedisCluster,
  type RedisNode,
} from './support/redis';
import { heartbeatKey } from '../src/drivers/redis/heartbeat';
import { hashTagForSlot } from '../src/drivers/redis/slots';

const lowest = (ids: string[]): string => [...ids].sort()[0]!;

/**
 * What docs/redis.md says a node's shard is on Redis 7.0, computed from redis-cli's CLUSTER NODES:
 * named after the lowest node id among the master and every node listed as its replica.
 */
function cliShardOf(node: RedisNode): {
  shardId: string;
  slots: string[];
  role: 'primary' | 'secondary';
  myId: string;
  clusterId: string;
} {
  const lines = clusterNodes(node);
  const me = lines.find((l) => l.flags.includes('myself'))!;
  const isMaster = me.flags.includes('master');
  const master = isMaster ? me : lines.find((l) => l.id === me.masterId)!;
  const members = lines.filter((l) => l.id === master.id || l.masterId === master.id).map((l) => l.id);
  return {
    myId: me.id,
    role: isMaster ? 'primary' : 'secondary',
    shardId: lowest(members),
    slots: master.slots,
    clusterId: lowest(lines.map((l) => l.id)),
  };
}

/** node_info, role and key ranges of one scrape, as the exporter reports them. */
function reported(s: Sample[]): { clusterId: string; shardId: string; role?: string; keyRanges?: string } {
  const [info] = find(s, 'datastore_node_info');
  const [role] = find(s, 'datastore_shard_role').filter((x) => x.value === 1);
  const shardId = role!.labels.shard_id!;
  return {
    clusterId: info!.labels.cluster_id!,
    shardId,
    role: role!.labels.role,
    keyRanges: find(s, 'datastore_shard_key_ranges_info', { shard_id: shardId })[0]?.labels.key_ranges,
  };
}

async function startExporters(cluster: RedisCluster): Promise<TestExporter[]> {
  const exporters = await Promise.all(cluster.nodes.map((n) => startTestExporter(['--target', n.url])));
  await Promise.all(exporters.map((e) => e.waitUp()));
  return exporters;
}

describe('redis cluster (3 masters, 3 replicas)', () => {
  let cluster: RedisCluster;
  let exporters: TestExporter[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    exporters = await startExporters(cluster);
  }, 120000);
  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await cluster?.stop();
  });

  const exporterOf = (node: RedisNode): TestExporter => exporters[cluster.nodes.indexOf(node)]!;

  /** After a fresh collection everywhere: each live node's reported identity, by node. */
  async function identities(): Promise<Map<RedisNode, ReturnType<typeof reported>>> {
    const live = cluster.nodes.filter((n) => !n.process.exited());
    await Promise.all(live.map((n) => exporterOf(n).nextCollections(1)));
    const out = new Map<RedisNode, ReturnType<typeof reported>>();
    for (const n of live) out.set(n, reported(await exporterOf(n).scrape()));
    return out;
  }

  test('each node reports CLUSTER MYID, its shard named after its lowest member, its slots and role, as redis-cli says', async () => {
    const shards = new Map<string, string[]>();
    const ids = await identities();
    for (const node of cluster.nodes) {
      const cli = cliShardOf(node);
      const s = await exporterOf(node).scrape();
      expect(value(s, 'datastore_up')).toBe(1);
      expect(
        value(s, 'datastore_node_info', {
          node_id: cli.myId,
          cluster_id: cli.clusterId,
          cluster_id_source: 'datastore',
        }),
      ).toBe(1);
      // A cluster identity of its own: no replication group label, no fallback warning.
      expect(find(s, 'datastore_node_info')[0]!.labels.replication_group).toBeUndefined();
      expect(exporterOf(node).logs.join('\n')).not.toMatch(/no cluster identity/);
      expect(find(s, 'datastore_shard_role', { role: 'primary' })).toHaveLength(1);
      expect(roleOf(s, cli.shardId)).toBe(cli.role);
      expect(ids.get(node)!.keyRanges).toBe(cli.slots.join(','));
      shards.set(cli.shardId, [...(shards.get(cli.shardId) ?? []), cli.role]);
    }
    // Three shards, each with one primary and one secondary; one cluster id for all six nodes.
    expect(shards.size).toBe(3);
    for (const roles of shards.values()) expect(roles.sort()).toEqual(['primary', 'secondary']);
    expect(new Set([...ids.values()].map((i) => i.clusterId)).size).toBe(1);
    // The key ranges of the three shards cover the 16384 slots once.
    const slots = [...new Set([...ids.values()].map((i) => i.keyRanges!))]
      .flatMap((r) => r.split(','))
      .map((r) => r.split('-').map(Number))
      .reduce((n, [a, b]) => n + ((b ?? a!) - a! + 1), 0);
    expect(slots).toBe(16384);
  });

  test('a write to a shard moves writes_total and last-op on its primary and replica only', async () => {
    const slot = Number(cluster.nodes[0]!.cli('CLUSTER', 'KEYSLOT', 'user:42'));
    const owners = cluster.nodes.map((n) => slotInRanges(slot, cliShardOf(n).slots));
    const primary = cluster.nodes.find((n, i) => owners[i] && cliShardOf(n).role === 'primary')!;
    const before = await Promise.all(
      exporters.map(async (e) => value(await e.scrape(), 'datastore_writes_total')),
    );
    const t0 = Date.now() / 1000;
    primary.cli('SET', 'user:42', 'x');
    await Promise.all(exporters.map((e) => e.nextCollections(2)));
    for (let i = 0; i < exporters.length; i++) {
      const s = await exporters[i]!.scrape();
      expect(value(s, 'datastore_writes_total') > before[i]!).toBe(owners[i]);
      if (owners[i]) {
        expect(
          value(s, 'datastore_shard_last_operation_timestamp_seconds', {
            shard_id: cliShardOf(cluster.nodes[i]!).shardId,
          }),
        ).toBeGreaterThanOrEqual(t0);
      }
    }
  });

  test('a slot-by-slot reshard with keys moving and a CLUSTER FAILOVER in the middle keeps every shard and cluster id', async () => {
    const before = await identities();
    const idOf = new Map([...before].map(([n, i]) => [n, i.shardId]));
    const clusterId = before.get(cluster.nodes[0]!)!.clusterId;
    // Source: a shard; target: another; the source's lowest slots move, as redis-cli reshard does.
    const source = cluster.nodes.find((n) => cliShardOf(n).role === 'primary')!;
    const target = cluster.nodes.find((n) => n !== source && cliShardOf(n).role === 'primary')!;
    const sourceReplica = cluster.nodes.find(
      (n) => n !== source && cliShardOf(n).shardId === cliShardOf(source).shardId,
    )!;
    const first = Number(cliShardOf(source).slots[0]!.split('-')[0]);
    const moving = Array.from({ length: 8 }, (_, i) => first + i);
    // Keys in every moving slot (a hash tag per slot), so that each move migrates data.
    const keys = moving.flatMap((slot) =>
      Array.from({ length: 20 }, (_, k) => `{${hashTagForSlot(slot)}}:key:${k}`),
    );
    for (const key of keys) source.cli('SET', key, key.toUpperCase());
    expect(Number(source.cli('CLUSTER', 'KEYSLOT', keys[0]!))).toBe(first);

    const seenShardIds = new Set<string>();
    const checkIdsUnchanged = async (step: string): Promise<void> => {
      const now = await identities();
      for (const [node, id] of now) {
        seenShardIds.add(id.shardId);
        expect({ step, port: node.port, shardId: id.shardId, clusterId: id.clusterId }).toEqual({
          step,
          port: node.port,
          shardId: idOf.get(node),
          clusterId,
        });
      }
      // Each shard id with exactly one primary at every step.
      const primaries = [...now.values()].filter((i) => i.role === 'primary').map((i) => i.shardId);
      expect(primaries.sort()).toEqual([...new Set(idOf.values())].sort());
    };

    let from = source;
    for (const [i, slot] of moving.entries()) {
      if (i === moving.length / 2) {
        // Half-way: the source shard's replica takes over (CLUSTER FAILOVER); the rest of the
        // slots move from the new master.
        await clusterFailover(sourceReplica);
        await waitForClusterAgreement(cluster.nodes);
        await checkIdsUnchanged('after CLUSTER FAILOVER');
        from = sourceReplica;
      }
      moveSlot(cluster.nodes, slot, from, target);
      await checkIdsUnchanged(`slot ${slot} moved`);
    }
    await waitForClusterAgreement(cluster.nodes);
    // Three shard ids were ever published, the same as before.
    expect(seenShardIds).toEqual(new Set(idOf.values()));
    // The data moved with the slots, and the key ranges say where the slots are now.
    for (const key of keys) expect(target.cli('GET', key)).toBe(key.toUpperCase());
    const after = await identities();
    const targetRanges = after.get(target)!.keyRanges!.split(',');
    const sourceRanges = after.get(sourceReplica)!.keyRanges!.split(',');
    for (const slot of moving) {
      expect(slotInRanges(slot, targetRanges)).toBe(true);
      expect(slotInRanges(slot, sourceRanges)).toBe(false);
    }
    expect(after.get(source)!.role).toBe('secondary');
  }, 120000);

  test("heartbeat mode: one key per shard inside the shard's current slots; it follows a slot move, and the replica reads it with sub-second lag", async () => {
    const master = cluster.nodes.find((n) => cliShardOf(n).role === 'primary')!;
    const replica = cluster.nodes.find(
      (n) => n !== master && cliShardOf(n).shardId === cliShardOf(master).shardId,
    )!;
    const other = cluster.nodes.find((n) => n !== master && cliShardOf(n).role === 'primary')!;
    const hb = await Promise.all(
      [master, replica].map((n) => startTestExporter(['--target', n.url, '--heartbeat'])),
    );
    try {
      await Promise.all(hb.map((e) => e.waitUp()));
      const { shardId } = cliShardOf(master);
      const keyNow = (): string => heartbeatKey(shardId, cliShardOf(master).slots.join(','))!;
      const checkKeyAndLag = async (): Promise<void> => {
        const key = keyNow();
        await waitFor(`heartbeat key ${key} written`, () => master.cli('GET', key) !== '', 5000);
        expect(slotInRanges(Number(master.cli('CLUSTER', 'KEYSLOT', key)), cliShardOf(master).slots)).toBe(
          true,
        );
        await hb[1]!.nextCollections(2);
        const lag = value(await hb[1]!.scrape(), 'datastore_shard_replication_lag_seconds', {
          shard_id: shardId,
        });
        expect(lag).toBeGreaterThanOrEqual(0);
        expect(lag).toBeLessThan(1);
      };
      await checkKeyAndLag();
      expect(hb[1]!.logs.join('\n')).not.toMatch(/MOVED|heartbeat write failed/);
      // Move the slot the key lives in to another shard: the key (and the old one, with its slot)
      // goes there, and the shard's heartbeat continues in a slot it still owns.
      const oldKey = keyNow();
      const slot = Number(master.cli('CLUSTER', 'KEYSLOT', oldKey));
      moveSlot(cluster.nodes, slot, master, other);
      await waitForClusterAgreement(cluster.nodes);
      await Promise.all(hb.map((e) => e.nextCollections(2)));
      expect(keyNow()).not.toBe(oldKey);
      await checkKeyAndLag();
    } finally {
      await Promise.all(hb.map((e) => e.stop()));
    }
  }, 60000);

  test('CLUSTER FAILOVER moves the primary role within one interval; the shard id stays the same', async () => {
    let replica = cluster.nodes.find((n) => cliShardOf(n).role === 'secondary')!;
    const { shardId } = cliShardOf(replica);
    let oldPrimary = cluster.nodes.find((n) => n !== replica && cliShardOf(n).shardId === shardId)!;
    // The case that matters: the master is the shard's lowest member, so that the new master alone
    // would be another name. Swap the roles first if needed.
    if (cliShardOf(oldPrimary).myId > cliShardOf(replica).myId) {
      await clusterFailover(replica);
      await waitForClusterAgreement(cluster.nodes);
      [replica, oldPrimary] = [oldPrimary, replica];
    }
    expect(shardId).toBe(cliShardOf(oldPrimary).myId);
    // Every shard id both exporters publish from now until well after the switch: one only. (For a
    // moment the new master may list its old master as a master without slots, not yet as its
    // replica: that passing view must not name the shard after the new master alone.)
    const published = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const n of [replica, oldPrimary]) published.add(reported(await exporterOf(n).scrape()).shardId);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await clusterFailover(replica);
      const switched = Date.now();
      await waitFor(
        'new primary reported',
        async () => roleOf(await exporterOf(replica).scrape(), shardId) === 'primary',
        2500,
      );
      await waitFor(
        'old primary reported as secondary',
        async () => roleOf(await exporterOf(oldPrimary).scrape(), shardId) === 'secondary',
        2500,
      );
      expect(Date.now() - switched).toBeLessThan(2500);
      await waitForClusterAgreement(cluster.nodes);
      await Promise.all([replica, oldPrimary].map((n) => exporterOf(n).nextCollections(2)));
    } finally {
      sampling = false;
      await sampler;
    }
    expect([...published]).toEqual([shardId]);
  });

  test('a killed master: its replica takes over; the shard keeps its id unless the dead master was its lowest member, and gets it back when the master returns', async () => {
    const before = await identities();
    const master = cluster.nodes.find((n) => cliShardOf(n).role === 'primary')!;
    const { shardId, myId: masterId, clusterId } = cliShardOf(master);
    const replica = cluster.nodes.find((n) => n !== master && cliShardOf(n).shardId === shardId)!;
    const replicaId = cliShardOf(replica).myId;
    await master.process.kill();
    await waitFor('automatic failover', () => cliShardOf(replica).role === 'primary', 30000, 250);
    // Every node that is not the dead master sees it as a failed master without slots, in no
    // shard: the replica's shard has the replica alone, so it is named after the replica.
    await waitFor(
      'every node sees the failover',
      () =>
        cluster.nodes
          .filter((n) => n !== master)
          .every((n) => {
            const dead = clusterNodes(n).find((l) => l.id === masterId)!;
            return dead.flags.includes('fail') && dead.slots.length === 0 && !dead.masterId;
          }),
      15000,
      250,
    );
    const during = await identities();
    expect(during.get(replica)!.shardId).toBe(replicaId);
    expect(replicaId === shardId).toBe(replicaId < masterId);
    expect(during.get(replica)!.role).toBe('primary');
    // The cluster id did not move (the dead master is still in every table) nor did the other shards.
    for (const [node, id] of during) {
      expect(id.clusterId).toBe(clusterId);
      if (node !== replica) expect(id.shardId).toBe(before.get(node)!.shardId);
    }

    await master.restart();
    await waitFor(
      'the old master rejoins as a replica',
      () => cliShardOf(master).role === 'secondary',
      30000,
      250,
    );
    await waitForClusterAgreement(cluster.nodes);
    const after = await identities();
    expect(after.get(master)).toMatchObject({ shardId, role: 'secondary', clusterId });
    expect(after.get(replica)).toMatchObject({ shardId, role: 'primary', clusterId });
  }, 90000);
});

describe('two redis clusters created the same way', () => {
  let clusters: RedisCluster[] = [];
  let exporters: TestExporter[][] = [];

  beforeAll(async () => {
    clusters = [await startRedisCluster(), await startRedisCluster()];
    exporters = await Promise.all(clusters.map(startExporters));
  }, 180000);
  afterAll(async () => {
    await Promise.all(exporters.flat().map((e) => e.stop()));
    await Promise.all(clusters.map((c) => c.stop()));
  });

  test('have equal slot ranges but distinct cluster ids and shard ids', async () => {
    await Promise.all(exporters.flat().map((e) => e.nextCollections(1)));
    const views = await Promise.all(
      exporters.map(async (list) => Promise.all(list.map(async (e) => reported(await e.scrape())))),
    );
    const clusterIds = views.map((v) => new Set(v.map((i) => i.clusterId)));
    const shardIds = views.map((v) => new Set(v.map((i) => i.shardId)));
    const ranges = views.map((v) => [...new Set(v.map((i) => i.keyRanges))].sort());
    // redis-cli --cluster create splits the slots the same way both times...
    expect(ranges[0]).toEqual(ranges[1]);
    // ...but the ids come from random node ids: one per cluster, three shards each, none shared.
    expect(clusterIds.map((c) => c.size)).toEqual([1, 1]);
    expect([...clusterIds[0]!][0]).not.toBe([...clusterIds[1]!][0]);
    expect(shardIds.map((s) => s.size)).toEqual([3, 3]);
    expect([...shardIds[0]!].filter((id) => shardIds[1]!.has(id))).toEqual([]);
  });
});
