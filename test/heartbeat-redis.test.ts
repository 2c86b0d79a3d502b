/**
 * Heartbeat mode on real Redis replication: true lag in seconds where Redis itself has none.
 * A delaying TCP proxy between the primary and one replica injects a real replication delay.
 * Each node is also watched by an exporter WITHOUT --heartbeat (a mixed deployment): it must not
 * take the other exporter's heartbeat traffic for client activity.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import {
  describeHeartbeatConformance,
  type HeartbeatHarness,
  type HeartbeatNode,
} from './support/heartbeat-conformance';
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, value } from './support/metrics-text';
import { startDelayProxy, type DelayProxy } from './support/delay-proxy';
import { freePort, freePorts, sleep, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';
import { HEARTBEAT_KEY_PREFIX } from '../src/drivers/redis/heartbeat';

const DELAY_S = 3;

describe('heartbeat mode, Redis primary + direct replica + delayed replica', () => {
  let primary: RedisNode;
  let direct: RedisNode;
  let delayed: RedisNode;
  let proxy: DelayProxy;
  const exporters: TestExporter[] = [];
  /** Without --heartbeat, on the same three nodes. */
  const plain: TestExporter[] = [];

  beforeAll(async () => {
    const [p, r1, r2] = await freePorts(3);
    primary = await startRedis(p!);
    proxy = await startDelayProxy(p!, DELAY_S * 1000);
    direct = await startRedis(r1!, ['--replicaof', '127.0.0.1', String(p)]);
    delayed = await startRedis(r2!, ['--replicaof', '127.0.0.1', String(proxy.port)]);
    for (const r of [direct, delayed]) {
      await waitFor('replica in sync', () => r.info('replication').get('master_link_status') === 'up', 30000);
    }
    for (const n of [primary, direct, delayed]) {
      exporters.push(await startTestExporter(['--target', n.url, '--heartbeat', '--cluster-id', 'hb']));
      plain.push(await startTestExporter(['--target', n.url, '--cluster-id', 'hb']));
    }
    await Promise.all([...exporters, ...plain].map((e) => e.waitUp()));
  }, 60000);
  afterAll(async () => {
    await Promise.all([...exporters, ...plain].map((e) => e.stop()));
    await proxy?.close();
    await Promise.all([primary, direct, delayed].map((n) => n?.stop()));
  });

  /** A node and its --heartbeat exporter; the record is the key as redis-cli GETs it there. */
  const nodeOf = (name: string, node: () => RedisNode, exporter: () => TestExporter): HeartbeatNode => ({
    name,
    get exporter() {
      return exporter();
    },
    record: () => {
      const raw = node().cli('GET', HEARTBEAT_KEY_PREFIX);
      return Promise.resolve(raw === '' ? undefined : (JSON.parse(raw) as { t: number; w: string }));
    },
    writerId: async () => find(await exporter().scrape(), 'datastore_node_info')[0]!.labels.node_id!,
  });
  const hbPrimary = nodeOf(
    'primary',
    () => primary,
    () => exporters[0]!,
  );
  const hbDirect = nodeOf(
    'direct',
    () => direct,
    () => exporters[1]!,
  );
  const hbDelayed = nodeOf(
    'delayed',
    () => delayed,
    () => exporters[2]!,
  );
  const harness: HeartbeatHarness = {
    datastore: 'redis',
    delayS: DELAY_S,
    shard: () => ({ shard_id: 'hb' }),
    primary: () => hbPrimary,
    inSync: () => [hbDirect],
    delayed: () => hbDelayed,
    nodes: () => [hbPrimary, hbDirect, hbDelayed],
    // Over a socket, not redis-cli: a synchronous child per INCR would stall the in-process
    // exporters' timers and show up as lag that replication does not have.
    startLoad: async () => {
      const socket = connect(primary.port, '127.0.0.1');
      await once(socket, 'connect');
      let writing = true;
      const load = (async () => {
        while (writing) {
          socket.write('*2\r\n$4\r\nINCR\r\n$4\r\nload\r\n');
          const [reply] = (await once(socket, 'data')) as [Buffer];
          if (!reply.toString().startsWith(':')) throw new Error(`INCR load: ${reply.toString()}`);
          await sleep(50);
        }
      })();
      return {
        async stop() {
          writing = false;
          await load;
          socket.destroy();
        },
      };
    },
    pause: () => {
      proxy.pause();
      return Promise.resolve({
        node: hbDelayed,
        resume: () => {
          proxy.resume();
          return Promise.resolve({ node: hbDelayed, below: DELAY_S + 1, withinMs: 15000 });
        },
      });
    },
    failover: () => {
      direct.cli('REPLICAOF', 'NO', 'ONE');
      delayed.cli('REPLICAOF', '127.0.0.1', String(direct.port));
      primary.cli('REPLICAOF', '127.0.0.1', String(direct.port));
      return Promise.resolve({
        promoted: hbDirect,
        writesWithinMs: 10000,
        // The old primary, now a replica, reads the new primary's heartbeat: small lag again.
        follower: {
          node: hbPrimary,
          below: 1,
          ready: async () => {
            await waitFor(
              'old primary in sync',
              () => primary.info('replication').get('master_link_status') === 'up',
              20000,
            );
          },
        },
        restore: () => {
          primary.cli('REPLICAOF', 'NO', 'ONE');
          direct.cli('REPLICAOF', '127.0.0.1', String(primary.port));
          delayed.cli('REPLICAOF', '127.0.0.1', String(proxy.port));
          return Promise.resolve();
        },
      });
    },
  };

  describeHeartbeatConformance(harness, {
    // In their original place: after the scenarios' client writes, before the failover.
    beforeFailover: () => {
      test('heartbeats are not client activity, with or without --heartbeat: writes_total, reads_total and last-op stay still; a client write moves them', async () => {
        const all = [...exporters, ...plain];
        const counters = async (e: TestExporter) => {
          const s = await e.scrape();
          return {
            writes: value(s, 'datastore_writes_total'),
            reads: value(s, 'datastore_reads_total'),
            lastOp: find(s, 'datastore_shard_last_operation_timestamp_seconds')[0]?.value,
          };
        };
        // Let earlier client writes reach the delayed replica first.
        await sleep((DELAY_S + 1) * 1000);
        await Promise.all(all.map((e) => e.nextCollections(1)));
        const before = await Promise.all(all.map(counters));
        await sleep(6000); // ~12 heartbeats written, replicated and read, ~6 collections of each exporter
        await Promise.all(all.map((e) => e.nextCollections(1)));
        const idle = await Promise.all(all.map(counters));
        expect(idle).toEqual(before);
        // The heartbeat traffic was there all along: SETs on every node, SUBSTR reads by all six exporters.
        const substrCalls = Number(
          /calls=(\d+)/.exec(delayed.info('commandstats').get('cmdstat_substr') ?? '')?.[1],
        );
        expect(substrCalls).toBeGreaterThan(10);
        primary.cli('SET', 'client-write', '1');
        await sleep((DELAY_S + 1) * 1000);
        await Promise.all(all.map((e) => e.nextCollections(1)));
        const after = await Promise.all(all.map(counters));
        for (let i = 0; i < all.length; i++) {
          expect(after[i]!.writes).toBe(before[i]!.writes + 1);
          expect(after[i]!.reads).toBe(before[i]!.reads);
          expect(after[i]!.lastOp).toBeGreaterThan(before[i]!.lastOp ?? 0);
        }
      }, 40000);

      test('without --heartbeat: no heartbeat time and no heartbeat lag; a replica’s link to its primary is no client', async () => {
        await Promise.all(plain.map((e) => e.nextCollections(1)));
        for (const [i, node] of [primary, direct, delayed].entries()) {
          const s = await plain[i]!.scrape();
          expect(find(s, 'datastore_shard_heartbeat_timestamp_seconds')).toHaveLength(0);
          // Default mode knows no lag of a replica whose link is up (docs/redis.md).
          expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
          // Clients: every connection but replication links (a replica's to its primary, M; a primary's
          // replicas, S) and this exporter's own; the heartbeat exporter's is a client like any other.
          const clients = node
            .cli('CLIENT', 'LIST')
            .split('\n')
            .filter((l) => !/ flags=[^ ]*[MS]/.test(l) && !/ cmd=client\|list /.test(l));
          expect(value(s, 'datastore_clients_connected')).toBe(clients.length - 1);
        }
        // The replicas' CLIENT LIST has the link to the primary, which connected_clients counts.
        expect(delayed.cli('CLIENT', 'LIST')).toMatch(/ flags=M /);
      });
    },
  });

  test('the heartbeat privileges in docs/redis.md are enough: an ACL user limited to the heartbeat keys', async () => {
    primary.cli(
      'ACL',
      'SETUSER',
      'hb-exporter',
      'on',
      '>hb-pw-1',
      '+info',
      '+command|info',
      '+cluster|myid',
      '+cluster|nodes',
      '+client|setname',
      '+get',
      '+set',
      '+readonly',
      '~__datastore_exporter:*',
    );
    const limited = await startTestExporter([
      '--target',
      `redis://hb-exporter:hb-pw-1@127.0.0.1:${primary.port}`,
      '--heartbeat',
      '--cluster-id',
      'acl',
    ]);
    try {
      await limited.waitUp();
      await limited.nextCollections(2);
      const s = await limited.scrape();
      expect(value(s, 'datastore_shard_heartbeat_timestamp_seconds', { shard_id: 'acl' })).toBeGreaterThan(
        Date.now() / 1000 - 3,
      );
      expect(limited.logs.join('\n')).not.toMatch(/heartbeat write failed|NOPERM/);
    } finally {
      await limited.stop();
    }
  });

  test('--heartbeat on a driver without heartbeat support is a configuration error', async () => {
    const port = await freePort();
    await expect(startTestExporter(['--target', `kafka://127.0.0.1:${port}`, '--heartbeat'])).rejects.toThrow(
      /--heartbeat is not supported by the kafka driver/,
    );
  });
});
