/**
 * The Redis driver against a real 3-master / 3-replica Redis Cluster: node ids, shards named by slot
 * ranges, roles, and a CLUSTER FAILOVER that moves the primary role without renaming the shard.
 */
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, roleOf, value } from './support/metrics-text';
import { waitFor } from './support/processes';
import {
  startRedisCluster,
  waitForClusterAgreement,
  type RedisCluster,
  type RedisNode,
} from './support/redis';
import { heartbeatKey } from '../src/drivers/redis/heartbeat';

/** What redis-cli says a node's shard is: the slot ranges of the master it is or replicates. */
function cliShardOf(node: RedisNode): { shardId: string; role: 'primary' | 'secondary'; myId: string } {
  const myId = node.cli('CLUSTER', 'MYID');
  const lines = node.cli('CLUSTER', 'NODES').split('\n');
  const fields = (id: string): string[] => lines.find((l) => l.startsWith(id + ' '))!.split(' ');
  const mine = fields(myId);
  const isMaster = mine[2]!.split(',').includes('master');
  const master = isMaster ? mine : fields(mine[3]!);
  return {
    myId,
    role: isMaster ? 'primary' : 'secondary',
    shardId: master
      .slice(8)
      .filter((s) => /^\d+(-\d+)?$/.test(s))
      .join(','),
  };
}

describe('redis cluster (3 masters, 3 replicas)', () => {
  let cluster: RedisCluster;
  const exporters: TestExporter[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    for (const n of cluster.nodes) {
      exporters.push(await startTestExporter(['--target', n.url, '--cluster-id', 'cache']));
    }
    await Promise.all(exporters.map((e) => e.waitUp()));
  }, 120000);
  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await cluster?.stop();
  });

  test('each node reports CLUSTER MYID, its shard by slot ranges and its role, as redis-cli says', async () => {
    const shards = new Map<string, string[]>();
    for (let i = 0; i < cluster.nodes.length; i++) {
      const node = cluster.nodes[i]!;
      const cli = cliShardOf(node);
      const s = await exporters[i]!.scrape();
      expect(value(s, 'datastore_up')).toBe(1);
      expect(value(s, 'datastore_node_info', { node_id: cli.myId, cluster_id: 'cache' })).toBe(1);
      expect(find(s, 'datastore_shard_role', { role: 'primary' })).toHaveLength(1);
      expect(roleOf(s, cli.shardId)).toBe(cli.role);
      shards.set(cli.shardId, [...(shards.get(cli.shardId) ?? []), cli.role]);
    }
    // Three shards covering all 16384 slots, each with exactly one primary and one secondary.
    expect(shards.size).toBe(3);
    for (const roles of shards.values()) expect(roles.sort()).toEqual(['primary', 'secondary']);
    const slots = [...shards.keys()]
      .flatMap((id) => id.split(','))
      .map((r) => r.split('-').map(Number))
      .reduce((n, [a, b]) => n + ((b ?? a!) - a! + 1), 0);
    expect(slots).toBe(16384);
  });

  test('a write to a shard moves writes_total and last-op on its primary and replica only', async () => {
    // Find the node owning the key's slot and write there directly.
    const slot = Number(cluster.nodes[0]!.cli('CLUSTER', 'KEYSLOT', 'user:42'));
    const owners = cluster.nodes.map((n) => {
      const { shardId } = cliShardOf(n);
      return shardId.split(',').some((r) => {
        const [a, b] = r.split('-').map(Number);
        return slot >= a! && slot <= (b ?? a!);
      });
    });
    const primaryIndex = cluster.nodes.findIndex((n, i) => owners[i] && cliShardOf(n).role === 'primary');
    const before = await Promise.all(
      exporters.map(async (e) => value(await e.scrape(), 'datastore_writes_total')),
    );
    const t0 = Date.now() / 1000;
    cluster.nodes[primaryIndex]!.cli('SET', 'user:42', 'x');
    await Promise.all(exporters.map((e) => e.nextCollections(2)));
    for (let i = 0; i < exporters.length; i++) {
      const s = await exporters[i]!.scrape();
      const moved = value(s, 'datastore_writes_total') > before[i]!;
      expect(moved).toBe(owners[i]);
      if (owners[i]) {
        const shardId = cliShardOf(cluster.nodes[i]!).shardId;
        expect(
          value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: shardId }),
        ).toBeGreaterThanOrEqual(t0);
      }
    }
  });

  test("heartbeat mode: one key per shard, inside the shard's own slots; its replica reads it with sub-second lag", async () => {
    const masterIndex = cluster.nodes.findIndex((n) => cliShardOf(n).role === 'primary');
    const master = cluster.nodes[masterIndex]!;
    const { shardId } = cliShardOf(master);
    const replica = cluster.nodes.find((n, i) => i !== masterIndex && cliShardOf(n).shardId === shardId)!;
    const hb = await Promise.all(
      [master, replica].map((n) =>
        startTestExporter(['--target', n.url, '--cluster-id', 'cache', '--heartbeat']),
      ),
    );
    try {
      await Promise.all(hb.map((e) => e.waitUp()));
      const key = heartbeatKey(shardId);
      await waitFor('heartbeat key written', () => master.cli('GET', key) !== '', 5000);
      const slot = Number(master.cli('CLUSTER', 'KEYSLOT', key));
      const inShard = shardId.split(',').some((r) => {
        const [a, b] = r.split('-').map(Number);
        return slot >= a! && slot <= (b ?? a!);
      });
      expect(inShard).toBe(true);
      await hb[1]!.nextCollections(2);
      const lag = value(await hb[1]!.scrape(), 'datastore_shard_replication_lag_seconds', {
        shard_id: shardId,
      });
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(1);
      expect(hb[1]!.logs.join('\n')).not.toMatch(/MOVED|heartbeat write failed/);
    } finally {
      await Promise.all(hb.map((e) => e.stop()));
    }
  });

  test('CLUSTER FAILOVER moves the primary role within one interval; the shard id stays the same', async () => {
    const replicaIndex = cluster.nodes.findIndex((n) => cliShardOf(n).role === 'secondary');
    const replica = cluster.nodes[replicaIndex]!;
    const { shardId } = cliShardOf(replica);
    const oldPrimaryIndex = cluster.nodes.findIndex(
      (n, i) => i !== replicaIndex && cliShardOf(n).shardId === shardId,
    );
    expect(replica.cli('CLUSTER', 'FAILOVER')).toBe('OK');
    await waitFor('failover done in redis', () => cliShardOf(replica).role === 'primary', 15000);
    const switched = Date.now();
    await waitFor(
      'new primary reported',
      async () => roleOf(await exporters[replicaIndex]!.scrape(), shardId) === 'primary',
      2500,
    );
    await waitFor(
      'old primary reported as secondary',
      async () => roleOf(await exporters[oldPrimaryIndex]!.scrape(), shardId) === 'secondary',
      2500,
    );
    expect(Date.now() - switched).toBeLessThan(2500);
    await waitForClusterAgreement(cluster.nodes);
  });
});
