/**
 * The NATS JetStream driver against a real 3-server cluster (Debian nats-server 2.9, started by the
 * test on loopback), one exporter per server, plus its parsers on replies recorded from that server.
 */
import { execFileSync } from 'node:child_process';
import { AckPolicy, Empty, type JetStreamManager, type NatsConnection } from 'nats';
import { natsShards, parseJsz, parseVarz, raftRole } from '../src/drivers/nats/parse';
import { SumOfAdvances } from '../src/drivers/nats/counters';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { startNatsCluster, type NatsCluster, type NatsServer } from './support/nats';
import { requireBinary, waitFor } from './support/processes';

/** Recorded from nats-server 2.9.10 (/jsz?streams=true&consumers=true on a follower), trimmed. */
const JSZ_FOLLOWER = `{"server_id":"NCGKL2XQ","now":"2026-12-01T10:38:05.071610069Z","streams":1,"consumers":1,
"meta_cluster":{"name":"c1","leader":"n2","peer":"44jzkV9D","cluster_size":3},
"account_details":[{"name":"$G","id":"$G","stream_detail":[{"name":"ORDERS","created":"2026-12-01T10:38:02.614615435Z",
"cluster":{"name":"c1","leader":"n3","replicas":[{"name":"n2","current":false,"active":0,"lag":6,"peer":"44jzkV9D"},
{"name":"n3","current":true,"active":1031546732,"lag":6,"peer":"BXScrY9i"}]},
"state":{"messages":5,"bytes":205,"first_seq":1,"first_ts":"2026-12-01T10:38:04.035283439Z","last_seq":5,
"last_ts":"2026-12-01T10:38:04.039725507Z","num_subjects":1,"consumer_count":1},
"consumer_detail":[{"stream_name":"ORDERS","name":"C1","created":"2026-12-01T10:38:03.406651584Z",
"delivered":{"consumer_seq":0,"stream_seq":0,"last_active":"2026-12-01T10:38:04.046342936Z"},
"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":5,
"cluster":{"name":"c1","leader":"n2","replicas":[{"name":"n2","current":true,"active":1024472467,"lag":7,"peer":"44jzkV9D"}]}}]},
{"name":"EMPTY","cluster":{"name":"c1","replicas":[]},"state":{"messages":0,"bytes":0,"first_seq":0,
"first_ts":"0001-01-01T00:00:00Z","last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0}}]}]}`;

const VARZ = `{"server_id":"NBEQSP74","server_name":"n1","version":"2.9.10","proto":1,"cluster":{"name":"c1","addr":"127.0.0.1","cluster_port":16222},
"connections":3,"total_connections":9,"routes":2,"remotes":2,"leafnodes":0,"in_msgs":45,"out_msgs":40}`;

describe('NATS replies (recorded from nats-server 2.9.10)', () => {
  test('varz: server name, version, cluster name, client connections', () => {
    expect(parseVarz(VARZ)).toEqual({
      serverName: 'n1',
      version: '2.9.10',
      clusterName: 'c1',
      connections: 3,
    });
    expect(() => parseVarz('{"version":"2.9.10"}')).toThrow(/lacks server_name/);
    expect(() => parseVarz('nope')).toThrow(/not JSON/);
  });

  test('jsz on a follower: stream and consumer shards, roles from the named leader, empty stream without last-op', () => {
    const shards = natsShards(parseJsz(JSZ_FOLLOWER), 'n1');
    expect(shards).toEqual([
      {
        id: '$G/ORDERS',
        role: 'secondary',
        nativeRole: 'follower',
        commitOffset: { value: 5, unit: 'sequence' },
        lastOperationTimestampSeconds: Date.parse('2026-12-01T10:38:04.039725507Z') / 1000,
      },
      {
        id: '$G/EMPTY',
        role: 'unknown',
        nativeRole: 'no-leader',
        commitOffset: { value: 0, unit: 'sequence' },
        lastOperationTimestampSeconds: undefined,
      },
      { id: '$G/ORDERS/C1', role: 'secondary', nativeRole: 'follower' },
    ]);
    expect(natsShards(parseJsz(JSZ_FOLLOWER), 'n3')[0]!.role).toBe('primary');
    expect(raftRole({ clustered: false }, 'n1')).toEqual({ role: 'primary', nativeRole: 'standalone' });
    expect(() => parseJsz('{"disabled":true}')).toThrow(/JetStream is not enabled/);
    expect(parseJsz('{"server_id":"x"}')).toEqual({ streams: [], consumers: [] });
  });

  test('sums of advances stay monotonic when keys come, go, and restart', () => {
    const sum = new SumOfAdvances();
    expect(
      sum.observe(
        new Map([
          ['a', 10],
          ['b', 5],
        ]),
      ),
    ).toBe(15);
    expect(
      sum.observe(
        new Map([
          ['a', 12],
          ['b', 5],
        ]),
      ),
    ).toBe(17);
    // 'b' deleted: nothing taken away; 'c' arrives with history: counted from now on.
    expect(
      sum.observe(
        new Map([
          ['a', 12],
          ['c', 100],
        ]),
      ),
    ).toBe(17);
    expect(
      sum.observe(
        new Map([
          ['a', 13],
          ['c', 103],
        ]),
      ),
    ).toBe(21);
    // 'a' recreated (value went down): its new value is new advances.
    expect(
      sum.observe(
        new Map([
          ['a', 2],
          ['c', 103],
        ]),
      ),
    ).toBe(23);
  });
});

interface StreamInfoView {
  leader?: string;
  lastSeq: number;
  lastTs: string;
}

describe('NATS JetStream 3-server cluster (real nats-server 2.9)', () => {
  let cluster: NatsCluster;
  let servers: NatsServer[];
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const exporters: TestExporter[] = [];

  const scrapeAll = (): Promise<Sample[][]> => Promise.all(exporters.map((e) => e.scrape()));
  const nextAll = (n: number): Promise<void> =>
    Promise.all(exporters.map((e) => e.nextCollections(n))).then(() => undefined);
  const indexOf = (name: string | undefined): number => servers.findIndex((s) => s.name === name);

  /** The JetStream API's answer: given by the stream's leader itself. */
  const streamInfo = async (name: string): Promise<StreamInfoView> => {
    const info = await jsm.streams.info(name);
    return {
      leader: info.cluster?.leader,
      lastSeq: info.state.last_seq,
      lastTs: info.state.last_ts,
    };
  };
  const consumerLeader = async (stream: string, consumer: string): Promise<string | undefined> =>
    (await jsm.consumers.info(stream, consumer)).cluster?.leader;

  /** Index of the one exporter reporting primary for the shard; throws unless exactly one does. */
  const onlyPrimary = (scrapes: Sample[][], shardId: string): number => {
    const primaries = scrapes.flatMap((s, i) => (roleOf(s, shardId) === 'primary' ? [i] : []));
    if (primaries.length !== 1)
      throw new Error(`expected one primary of ${shardId}, found ${primaries.length}`);
    return primaries[0]!;
  };

  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    servers = [...cluster.servers];
    nc = await cluster.client();
    jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'], num_replicas: 3 });
    await jsm.consumers.add('ORDERS', { durable_name: 'C1', ack_policy: AckPolicy.Explicit });
    await jsm.streams.add({ name: 'SOLO', subjects: ['solo.>'], num_replicas: 1 });
    for (const s of servers) exporters.push(await startTestExporter(['--target', s.url]));
    await nextAll(2);
  });
  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await nc?.close();
    await cluster?.stop();
  });

  test('identity, version and roles match the servers own view; an R1 stream only where it lives', async () => {
    const scrapes = await scrapeAll();
    const orders = await streamInfo('ORDERS');
    const solo = await streamInfo('SOLO');
    for (let i = 0; i < servers.length; i++) {
      const s = scrapes[i]!;
      const varz = await servers[i]!.monitor<{ server_name: string; version: string }>('/varz');
      expect(value(s, 'datastore_up')).toBe(1);
      expect(
        value(s, 'datastore_node_info', {
          datastore: 'nats',
          node_id: varz.server_name,
          cluster_id: cluster.name,
        }),
      ).toBe(1);
      expect(value(s, 'datastore_version_info', { datastore: 'nats', version: varz.version })).toBe(1);
      expect(varz.version).toMatch(/^2\.\d+\.\d+/);
      expect(roleOf(s, '$G/ORDERS')).toBe(servers[i]!.name === orders.leader ? 'primary' : 'secondary');
      expect(roleOf(s, '$G/SOLO')).toBe(servers[i]!.name === solo.leader ? 'primary' : undefined);
      // A follower does not know the leader's position: no lag, never a fake 0.
      expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
    }
    expect(onlyPrimary(scrapes, '$G/ORDERS')).toBe(indexOf(orders.leader));
    expect(onlyPrimary(scrapes, '$G/ORDERS/C1')).toBe(indexOf(await consumerLeader('ORDERS', 'C1')));
    expect(onlyPrimary(scrapes, '$G/SOLO')).toBe(indexOf(solo.leader));
  });

  test('clients: the server counts client connections only (routes excluded); the test client shows on its server', async () => {
    const scrapes = await scrapeAll();
    const own = await Promise.all(
      servers.map((s) => s.monitor<{ num_connections: number }>('/connz').then((c) => c.num_connections)),
    );
    // Every server has two routes and the test client is connected to one server only.
    expect(own.reduce((a, b) => a + b, 0)).toBe(1);
    for (let i = 0; i < servers.length; i++) {
      expect(value(scrapes[i]!, 'datastore_clients_connected')).toBe(own[i]);
    }
    const routes = await servers[0]!.monitor<{ routes: number }>('/varz');
    expect(routes.routes).toBe(2);
  });

  test('publishes move writes, the sequence and last-op on every replica; consuming moves reads on the consumer leader only', async () => {
    let scrapes = await scrapeAll();
    const writesBefore = scrapes.map((s) => value(s, 'datastore_writes_total'));
    const readsBefore = scrapes.map((s) => value(s, 'datastore_reads_total'));
    const js = nc.jetstream();
    for (let i = 0; i < 7; i++) await js.publish('orders.new', `order-${i}`);
    const info = await streamInfo('ORDERS');
    await waitFor(
      'every replica stored the publishes',
      async () => {
        const all = await Promise.all(
          servers.map((s) =>
            s.monitor<{
              account_details?: { stream_detail?: { name: string; state: { last_seq: number } }[] }[];
            }>('/jsz?streams=true'),
          ),
        );
        return all.every((j) =>
          j.account_details?.[0]?.stream_detail?.some(
            (d) => d.name === 'ORDERS' && d.state.last_seq === info.lastSeq,
          ),
        );
      },
      5000,
    );
    await nextAll(2);
    scrapes = await scrapeAll();
    for (let i = 0; i < servers.length; i++) {
      const s = scrapes[i]!;
      expect(value(s, 'datastore_writes_total')).toBe(writesBefore[i]! + 7);
      expect(value(s, 'datastore_shard_commit_offset', { shard_id: '$G/ORDERS' })).toBe(info.lastSeq);
      // The stored time of the last message, exactly as the stream leader reports it.
      expect(
        value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: '$G/ORDERS' }),
      ).toBeCloseTo(Date.parse(info.lastTs) / 1000, 3);
    }

    const consumer = await js.consumers.get('ORDERS', 'C1');
    for (let i = 0; i < 4; i++) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) throw new Error('no message');
      await m.ackAck();
    }
    const leader = indexOf(await consumerLeader('ORDERS', 'C1'));
    await nextAll(2);
    scrapes = await scrapeAll();
    for (let i = 0; i < servers.length; i++) {
      expect(value(scrapes[i]!, 'datastore_reads_total')).toBe(readsBefore[i]! + (i === leader ? 4 : 0));
      // Consuming stores nothing: the stream's writes did not move.
      expect(value(scrapes[i]!, 'datastore_writes_total')).toBe(writesBefore[i]! + 7);
    }
  });

  test('a stream leader stepdown through the JetStream API moves the primary within one interval', async () => {
    const before = await streamInfo('ORDERS');
    const reply = await nc.request('$JS.API.STREAM.LEADER.STEPDOWN.ORDERS', Empty, { timeout: 5000 });
    expect(new TextDecoder().decode(reply.data)).toContain('"success":true');
    const after = await waitFor(
      'a new stream leader',
      async () => {
        const info = await streamInfo('ORDERS');
        return info.leader && info.leader !== before.leader ? info : undefined;
      },
      10000,
      100,
    );
    // One interval is 1 s; allow the collections in flight to finish.
    await waitFor(
      'the new leader reports primary, the old one secondary',
      async () => {
        const scrapes = await scrapeAll();
        return (
          onlyPrimary(scrapes, '$G/ORDERS') === indexOf(after.leader) &&
          roleOf(scrapes[indexOf(before.leader)]!, '$G/ORDERS') === 'secondary'
        );
      },
      2500,
      50,
    );
  });

  let victim = -1;
  testServerStopped({
    what: 'the stream leader',
    exporter: () => exporters[victim]!,
    stop: async () => {
      victim = indexOf((await streamInfo('ORDERS')).leader);
      await servers[victim]!.process.stop(5000);
    },
    downWithinMs: 5000,
    whileDown: async () => {
      const others = servers.flatMap((_, j) => (j === victim ? [] : [j]));
      const newLeader = await waitFor(
        'a new stream leader among the survivors',
        async () => {
          const leader = indexOf((await streamInfo('ORDERS')).leader);
          return leader >= 0 && leader !== victim ? leader + 1 : undefined;
        },
        20000,
        200,
      ).then((n) => n - 1);
      // Then within one interval (1 s; allow the collections in flight to finish).
      await waitFor(
        'one primary of $G/ORDERS among the survivors: the new leader',
        async () => {
          const scrapes = await Promise.all(others.map((j) => exporters[j]!.scrape()));
          return others[onlyPrimary(scrapes, '$G/ORDERS')] === newLeader;
        },
        2500,
        50,
      );
    },
    restart: () => servers[victim]!.restart(),
    upWithinMs: 10000,
    afterRecovery: async () => {
      await waitFor(
        'one primary among all three again, the restarted server in its role',
        async () => {
          const leader = (await streamInfo('ORDERS')).leader;
          const scrapes = await scrapeAll();
          return (
            onlyPrimary(scrapes, '$G/ORDERS') === indexOf(leader) &&
            roleOf(scrapes[victim]!, '$G/ORDERS') !== undefined
          );
        },
        20000,
        200,
      );
    },
  });

  const hung = 2;
  testServerHung({
    what: 'a server',
    exporter: () => exporters[hung]!,
    pause: () => Promise.resolve(servers[hung]!.process.pause()),
    resume: () => Promise.resolve(servers[hung]!.process.resume()),
    timeoutSays: { in: 'lastError', pattern: /timed out|collection/ },
    downWithinMs: 5000,
    upWithinMs: 15000,
  });

  test('promtool check metrics passes on the real output of every server', async () => {
    requireBinary('/usr/bin/promtool', 'the Debian package prometheus');
    for (const e of exporters) {
      const text = await e.scrapeText();
      expect(text).toContain('datastore_shard_role{');
      execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    }
  });
});
