/**
 * Redis Cluster identity on the versions that cannot be installed here (Debian ships 7.0): Redis 7.2+
 * and Valkey name each shard themselves (CLUSTER MYSHARDID, a bulk string), older servers answer an
 * unknown-subcommand error and the id is derived from CLUSTER NODES, an ACL refusal falls back too
 * (with a warning). Driven through the real exporter against a RESP stub that answers in the
 * documented reply formats; the derivation itself is checked on real 7.0 clusters in
 * redis-cluster.test.ts. Also the pure rules of src/drivers/redis/cluster.ts.
 */
import {
  clusterIdOf,
  DerivedShardIds,
  derivedShardId,
  localShard,
  MAX_HOLD_COLLECTIONS,
} from '../src/drivers/redis/cluster';
import { heartbeatKey, heartbeatSlot } from '../src/drivers/redis/heartbeat';
import { parseClusterNodes } from '../src/drivers/redis/parse';
import { keySlot } from '../src/drivers/redis/slots';
import { startTestExporter } from './support/exporter';
import { find, value, type Sample } from './support/metrics-text';
import { startRedisStub, type RedisStub, type StubReply } from './support/redis-stub';
import { A, B, C, D, INFO_REPLICA, NODES_72, SHARD_ID } from './fixtures/redis/cluster-7.2';

/** Three collections of an exporter against a stub of a 7.2-format replica; its scrape and logs. */
async function scrapeAgainst(
  myShardId: StubReply,
): Promise<{ stub: RedisStub; samples: Sample[]; logs: string }> {
  const stub = await startRedisStub({
    INFO: INFO_REPLICA,
    'CLUSTER MYID': B,
    'CLUSTER NODES': NODES_72,
    'CLUSTER MYSHARDID': myShardId,
  });
  const exporter = await startTestExporter(['--target', stub.url]);
  try {
    await exporter.waitUp();
    await exporter.nextCollections(2);
    return { stub, samples: await exporter.scrape(), logs: exporter.logs.join('\n') };
  } finally {
    await exporter.stop();
    await stub.close();
  }
}

describe('shard id by server version (RESP stub, documented replies)', () => {
  test('Redis 7.2+ / Valkey: the shard id is CLUSTER MYSHARDID; the cluster id the lowest node id; slots as key ranges', async () => {
    const { samples } = await scrapeAgainst(SHARD_ID);
    expect(
      value(samples, 'datastore_node_info', { node_id: B, cluster_id: C, cluster_id_source: 'datastore' }),
    ).toBe(1);
    expect(
      value(samples, 'datastore_shard_role', { cluster_id: C, shard_id: SHARD_ID, role: 'secondary' }),
    ).toBe(1);
    expect(
      value(samples, 'datastore_shard_key_ranges_info', { shard_id: SHARD_ID, key_ranges: '0-5460' }),
    ).toBe(1);
    expect(find(samples, 'datastore_node_info')[0]!.labels.replication_group).toBeUndefined();
  });

  test.each([
    ['Redis 7.0', "ERR unknown subcommand 'myshardid'. Try CLUSTER HELP."],
    ['Redis 6.2', "ERR Unknown subcommand or wrong number of arguments for 'myshardid'. Try CLUSTER HELP."],
  ])('%s (no CLUSTER MYSHARDID): the shard is named after its lowest member', async (_version, error) => {
    const { samples, logs, stub } = await scrapeAgainst(new Error(error));
    // A (master) and B (replica): B is the lower id.
    expect(value(samples, 'datastore_shard_role', { shard_id: B, role: 'secondary' })).toBe(1);
    expect(logs).not.toMatch(/MYSHARDID refused/);
    // Asked once per connection only: the server will not learn the command while it runs.
    expect(stub.commands.filter((c) => c === 'CLUSTER MYSHARDID').length).toBe(1);
  });

  test('an ACL that refuses CLUSTER MYSHARDID: derived id, and a warning naming the permission', async () => {
    const { samples, logs } = await scrapeAgainst(
      new Error("NOPERM User exporter has no permissions to run the 'cluster|myshardid' command"),
    );
    expect(value(samples, 'datastore_shard_role', { shard_id: B, role: 'secondary' })).toBe(1);
    expect(logs).toMatch(/level=warn msg="CLUSTER MYSHARDID refused.*\+cluster\|myshardid/);
  });

  test('any other error fails the collection (no id is guessed)', async () => {
    const stub = await startRedisStub({
      INFO: INFO_REPLICA,
      'CLUSTER MYID': B,
      'CLUSTER NODES': NODES_72,
      'CLUSTER MYSHARDID': new Error('LOADING Redis is loading the dataset in memory'),
    });
    const exporter = await startTestExporter(['--target', stub.url]);
    try {
      await exporter.nextCollections(1);
      expect(exporter.collector.state.up).toBe(false);
      expect(exporter.collector.state.lastError).toMatch(/LOADING/);
    } finally {
      await exporter.stop();
      await stub.close();
    }
  });
});

describe('identity rules (pure)', () => {
  const nodes = parseClusterNodes(NODES_72);

  test('derived shard id: the lowest of the master and its replicas; cluster id: the lowest node id', () => {
    expect(derivedShardId(nodes, A)).toBe(B);
    expect(derivedShardId(nodes, D)).toBe(C);
    expect(clusterIdOf(nodes)).toBe(C);
    expect(localShard(nodes, B, (m) => derivedShardId(nodes, m))).toEqual({
      id: B,
      slots: '0-5460',
      isMaster: false,
    });
    expect(localShard(nodes, D, (m) => derivedShardId(nodes, m))).toEqual({
      id: C,
      slots: '5461-10000,10002-16383',
      isMaster: true,
    });
    expect(localShard(nodes, B, SHARD_ID)?.id).toBe(SHARD_ID);
  });

  test('failed members stay in; nodes in handshake (temporary ids) and unknown masters do not count', () => {
    const withFailures = parseClusterNodes(
      [
        `${A} 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460`,
        `${B} 127.0.0.1:30002@40002 slave,fail ${A} 0 0 1 disconnected`,
        `0000000000000000000000000000000000000001 127.0.0.1:30009@40009 handshake - 0 0 0 disconnected`,
        `${C} :0@0 master,fail,noaddr - 0 0 2 disconnected`,
      ].join('\n'),
    );
    expect(localShard(withFailures, A, (m) => derivedShardId(withFailures, m))?.id).toBe(B);
    expect(clusterIdOf(withFailures)).toBe(C);
    // A master drained of every slot is still a shard, with no key ranges.
    const drained = parseClusterNodes(`${D} 127.0.0.1:1@2 myself,master - 0 0 3 connected`);
    expect(localShard(drained, D, (m) => derivedShardId(drained, m))).toEqual({
      id: D,
      slots: '',
      isMaster: true,
    });
    // A replica whose master the node does not know: no shard.
    const orphan = parseClusterNodes(`${B} 127.0.0.1:1@2 myself,slave ${A} 0 0 1 connected`);
    expect(localShard(orphan, B, SHARD_ID)).toBeUndefined();
  });

  test("a CLUSTER FAILOVER's passing view keeps the name; a failed, forgotten or moved member renames at once", () => {
    const view = (lines: string[]): ReturnType<typeof parseClusterNodes> =>
      parseClusterNodes(lines.join('\n'));
    // Seen from B: the shard of C (master, the lowest id) and B (replica) is named C.
    const before = view([
      `${C} x master - 0 0 1 connected 0-5460`,
      `${B} x myself,slave ${C} 0 0 1 connected`,
    ]);
    // Right after a CLUSTER FAILOVER, for a moment: B is master, C a master without slots (not yet
    // listed as B's replica): the name stays C, then C is B's replica and the name is C anyway.
    const passing = view([
      `${C} x master - 0 0 1 connected`,
      `${B} x myself,master - 0 0 4 connected 0-5460`,
    ]);
    const settled = view([
      `${C} x slave ${B} 0 0 4 connected`,
      `${B} x myself,master - 0 0 4 connected 0-5460`,
    ]);
    const ids = new DerivedShardIds();
    expect(ids.next(before, C)).toBe(C);
    expect(ids.next(passing, B)).toBe(C);
    expect(ids.next(passing, B)).toBe(C);
    expect(ids.next(settled, B)).toBe(C);
    // Kept for MAX_HOLD_COLLECTIONS at most: a master left without slots for good is not a member.
    for (let i = 0; i < MAX_HOLD_COLLECTIONS; i++) expect(ids.next(passing, B)).toBe(C);
    expect(ids.next(passing, B)).toBe(B);
    // A killed master (failed) replaced by its replica: renamed at once; back when it rejoins.
    const killed = view([
      `${C} x master,fail - 0 0 1 disconnected`,
      `${B} x myself,master - 0 0 4 connected 0-5460`,
    ]);
    const afterKill = new DerivedShardIds();
    expect(afterKill.next(before, C)).toBe(C);
    expect(afterKill.next(killed, B)).toBe(B);
    expect(afterKill.next(settled, B)).toBe(C);
    // Made a replica of another master (CLUSTER REPLICATE): that shard's name at once.
    const moved = view([
      `${D} x master - 0 0 2 connected 5461-16383`,
      `${B} x myself,slave ${D} 0 0 2 connected`,
    ]);
    const other = new DerivedShardIds();
    expect(other.next(before, C)).toBe(C);
    expect(other.next(moved, D)).toBe(B);
  });

  test('heartbeat key: named after the shard, hashed into a slot the shard owns now; none without slots', () => {
    const slot = heartbeatSlot(SHARD_ID, '0-5460,10923-16383')!;
    expect(keySlot(heartbeatKey(SHARD_ID, '0-5460,10923-16383')!)).toBe(slot);
    expect(heartbeatKey(SHARD_ID, '0-5460')).toContain(SHARD_ID);
    // The slot is the first owned one at or after the shard id's own slot, wrapping around.
    const start = keySlot(SHARD_ID);
    expect(heartbeatSlot(SHARD_ID, `0-16383`)).toBe(start);
    expect(heartbeatSlot(SHARD_ID, `${start + 1 > 16383 ? 0 : start + 1}`)).toBe(
      start + 1 > 16383 ? 0 : start + 1,
    );
    expect(heartbeatSlot(SHARD_ID, `0,${start}-${start}`)).toBe(start);
    // Slots moving away that are not the chosen one leave the key alone.
    expect(heartbeatSlot(SHARD_ID, '0-16383')).toBe(heartbeatSlot(SHARD_ID, `${start}-16383`));
    expect(heartbeatKey(SHARD_ID, '')).toBeUndefined();
    expect(heartbeatKey(undefined, undefined)).toBe('__datastore_exporter:heartbeat');
  });
});
