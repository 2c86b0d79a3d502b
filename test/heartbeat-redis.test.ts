/**
 * Heartbeat mode on real Redis replication: true lag in seconds where Redis itself has none.
 * A delaying TCP proxy between the primary and one replica injects a real replication delay.
 * Each node is also watched by an exporter WITHOUT --heartbeat (a mixed deployment): it must not
 * take the other exporter's heartbeat traffic for client activity.
 */
import { lagGrowth, lagSamples as sampleLag } from './support/heartbeat';
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, value } from './support/metrics-text';
import { startDelayProxy, type DelayProxy } from './support/delay-proxy';
import { freePort, freePorts, sleep, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';
import { HEARTBEAT_KEY_PREFIX } from '../src/drivers/redis/heartbeat';

const DELAY_S = 3;

const lagSamples = (exporter: TestExporter, n: number): Promise<number[]> =>
  sampleLag(exporter, { shard_id: 'hb' }, n);

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

  test('the primary writes its heartbeat key, never a lag; it never writes on a replica', async () => {
    await waitFor('heartbeat on primary', () => primary.cli('GET', HEARTBEAT_KEY_PREFIX) !== '');
    await exporters[0]!.nextCollections(2);
    const record = JSON.parse(primary.cli('GET', HEARTBEAT_KEY_PREFIX)) as { t: number; w: string };
    expect(Math.abs(record.t - Date.now() / 1000)).toBeLessThan(2);
    const s = await exporters[0]!.scrape();
    expect(record.w).toBe(find(s, 'datastore_node_info')[0]!.labels.node_id);
    expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
    expect(value(s, 'datastore_shard_heartbeat_timestamp_seconds', { shard_id: 'hb' })).toBeGreaterThan(
      Date.now() / 1000 - 2,
    );
    // Replicas are read-only and the exporter never tries: no write errors in their logs.
    for (const e of exporters.slice(1)) expect(e.logs.join('\n')).not.toMatch(/heartbeat write failed/);
  });

  test('no delay: lag stays below 1 s, idle or under load', async () => {
    await exporters[1]!.nextCollections(1);
    const idle = await lagSamples(exporters[1]!, 4);
    let writing = true;
    const load = (async () => {
      while (writing) {
        primary.cli('INCR', 'load');
        await sleep(50);
      }
    })();
    const loaded = await lagSamples(exporters[1]!, 4);
    writing = false;
    await load;
    console.log(
      `redis heartbeat lag, no delay: idle ${idle.map((x) => x.toFixed(2))}, loaded ${loaded.map((x) => x.toFixed(2))}`,
    );
    for (const lag of [...idle, ...loaded]) {
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(1);
    }
  });

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

  test(`injected delay of ${DELAY_S} s: reported lag within ±1 s of it`, async () => {
    await waitFor(
      'delayed heartbeat visible',
      async () => find(await exporters[2]!.scrape(), 'datastore_shard_replication_lag_seconds').length === 1,
      15000,
    );
    const samples = await lagSamples(exporters[2]!, 5);
    console.log(`redis heartbeat lag, ${DELAY_S} s injected: ${samples.map((x) => x.toFixed(2))}`);
    for (const lag of samples) expect(Math.abs(lag - DELAY_S)).toBeLessThanOrEqual(1);
  });

  test('a paused replica: its lag grows at the rate of wall time', async () => {
    await waitFor(
      'delayed heartbeat visible',
      async () => find(await exporters[2]!.scrape(), 'datastore_shard_replication_lag_seconds').length === 1,
      15000,
    );
    proxy.pause();
    try {
      const { l0, l1, wall } = await lagGrowth(exporters[2]!, { shard_id: 'hb' });
      console.log(
        `redis heartbeat, paused replica: lag ${l0.toFixed(2)} -> ${l1.toFixed(2)} over ${wall.toFixed(2)} s`,
      );
      expect(Math.abs(l1 - l0 - wall)).toBeLessThanOrEqual(0.5);
    } finally {
      proxy.resume();
    }
  });

  test('failover: the promoted replica takes over writing the heartbeat, with no configuration', async () => {
    direct.cli('REPLICAOF', 'NO', 'ONE');
    delayed.cli('REPLICAOF', '127.0.0.1', String(direct.port));
    primary.cli('REPLICAOF', '127.0.0.1', String(direct.port));
    try {
      const directId = find(await exporters[1]!.scrape(), 'datastore_node_info')[0]!.labels.node_id;
      await waitFor(
        'heartbeat written by the new primary',
        () => {
          const raw = direct.cli('GET', HEARTBEAT_KEY_PREFIX);
          return raw !== '' && (JSON.parse(raw) as { w: string }).w === directId;
        },
        10000,
      );
      // The old primary, now a replica, reads the new primary's heartbeat: small lag again.
      await waitFor(
        'old primary in sync',
        () => primary.info('replication').get('master_link_status') === 'up',
        20000,
      );
      await exporters[0]!.nextCollections(2);
      expect(
        value(await exporters[0]!.scrape(), 'datastore_shard_replication_lag_seconds', { shard_id: 'hb' }),
      ).toBeLessThan(1);
    } finally {
      primary.cli('REPLICAOF', 'NO', 'ONE');
      direct.cli('REPLICAOF', '127.0.0.1', String(primary.port));
      delayed.cli('REPLICAOF', '127.0.0.1', String(proxy.port));
    }
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
