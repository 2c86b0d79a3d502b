/**
 * The Kafka driver on responses in Kafka's real protocol formats (Kafka cannot be installed here):
 *  1. the pure mapping (src/drivers/kafka/parse.ts) on decoded Metadata / ListOffsets fixtures, case by case;
 *  2. the driver through its injectable I/O boundary (a fake connection), including errors/timeouts;
 *  3. the REAL kafkajs client and the real exporter over TCP against a fake broker that speaks the
 *     Kafka wire protocol (test/fixtures/kafka/wire-broker.ts), which also proves the fixtures are
 *     byte-exact kafkajs shapes and that the driver never contacts another broker.
 */
import { AdvanceTrackers } from '../src/drivers/shared/advance-tracker';
import { Collector } from '../src/core/collector';
import {
  KafkaBrokerNotFoundError,
  highWatermarks,
  kafkaObservation,
  latestOffsetsRequest,
  partitionRole,
  resolveLocalBrokerId,
  type KafkaMetadata,
  type ListOffsetsTopicRequest,
  type ListOffsetsTopicResponse,
} from '../src/drivers/kafka/parse';
import { KafkaDriver, kafkaSecurityOptions, type KafkaBrokerConnection } from '../src/drivers/kafka/driver';
import { createLogger } from '../src/core/logger';
import type { DriverOptions, ShardObservation } from '../src/core/model';
import { parseTarget } from '../src/core/target';
import metadataFixture from './fixtures/kafka/metadata-v6-three-brokers.json';
import offsetsFixture from './fixtures/kafka/list-offsets-v3-broker-1.json';
import {
  API_KEYS,
  encodeListOffsetsResponse,
  encodeMetadataResponse,
  startConnectionCounter,
  startWireBroker,
  type WireBroker,
} from './fixtures/kafka/wire-broker';
import { startTestExporter, type TestExporter } from './support/exporter';
import { MODEL_METRICS, find, roleOf, value } from './support/metrics-text';
import { waitFor } from './support/processes';

/** Fresh deep copies: tests mutate them. */
const metadata = (): KafkaMetadata => structuredClone(metadataFixture) as KafkaMetadata;
const offsets = (): ListOffsetsTopicResponse[] =>
  structuredClone(offsetsFixture.responses) as ListOffsetsTopicResponse[];
const BROKER_1 = { host: 'kafka-1.kafka.svc', port: 9092 };

function byId(shards: ShardObservation[]): Map<string, ShardObservation> {
  return new Map(shards.map((s) => [s.id!, s]));
}

// kafkajs's own decoders: the fixtures must be exactly what they return for the real wire bytes.
/* eslint-disable @typescript-eslint/no-require-imports */
const decodeMetadata = (v: number) =>
  (
    require(`kafkajs/src/protocol/requests/metadata/v${v}/response`) as {
      decode(b: Buffer): Promise<unknown>;
    }
  ).decode;
const decodeListOffsets = (v: number) =>
  (
    require(`kafkajs/src/protocol/requests/listOffsets/v${v}/response`) as {
      decode(b: Buffer): Promise<unknown>;
    }
  ).decode;
/* eslint-enable @typescript-eslint/no-require-imports */

describe('fixtures are byte-exact kafkajs shapes', () => {
  test('Metadata v6 fixture: encoded to wire bytes, kafkajs decodes exactly the fixture back', async () => {
    expect(await decodeMetadata(6)(encodeMetadataResponse(metadata(), 6))).toEqual(metadataFixture);
  });

  test('ListOffsets v3 fixture: encoded to wire bytes, kafkajs decodes exactly the fixture back', async () => {
    expect(await decodeListOffsets(3)(encodeListOffsetsResponse(offsets(), 3))).toEqual(offsetsFixture);
  });

  test('older versions decode to the subsets the mapping handles (v1: no cluster id; v0 offsets list)', async () => {
    const v1 = (await decodeMetadata(1)(encodeMetadataResponse(metadata(), 1))) as KafkaMetadata;
    expect(v1.clusterId).toBeUndefined();
    expect(v1.topicMetadata[0]!.partitionMetadata[0]).not.toHaveProperty('offlineReplicas');
    const obs = kafkaObservation({
      metadata: v1,
      localBrokerId: 1,
      offsets: (
        (await decodeListOffsets(0)(encodeListOffsetsResponse(offsets(), 0))) as {
          responses: ListOffsetsTopicResponse[];
        }
      ).responses,
      trackers: new AdvanceTrackers(),
    });
    expect(obs.nativeClusterId).toBeUndefined();
    expect(byId(obs.shards).get('orders/0')!.commitOffset).toEqual({ value: 1500, unit: 'offset' });
    // Without offlineReplicas (v<5), a local offline replica is just out of the ISR.
    expect(byId(obs.shards).get('logs/0')).toMatchObject({ role: 'secondary', nativeRole: 'out-of-sync' });
  });
});

describe('local broker identification', () => {
  const brokers = metadataFixture.brokers;

  test('the broker advertised at the target host:port (host case-insensitive)', () => {
    expect(resolveLocalBrokerId(brokers, { host: 'kafka-2.kafka.svc', port: 9092 })).toBe(2);
    expect(resolveLocalBrokerId(brokers, { host: 'KAFKA-3.Kafka.Svc', port: 9092 })).toBe(3);
  });

  test('--kafka.broker-id wins, e.g. when the advertised listener differs from the target address', () => {
    expect(resolveLocalBrokerId(brokers, { host: '127.0.0.1', port: 9092 }, '3')).toBe(3);
    expect(resolveLocalBrokerId(brokers, { host: 'kafka-2.kafka.svc', port: 9092 }, ' 1 ')).toBe(1);
  });

  test('no advertised match among several brokers: a clear error naming the flag', () => {
    const run = () => resolveLocalBrokerId(brokers, { host: '127.0.0.1', port: 9092 });
    expect(run).toThrow(KafkaBrokerNotFoundError);
    expect(run).toThrow(/--kafka\.broker-id/);
    expect(run).toThrow(/no broker of the cluster is advertised at 127\.0\.0\.1:9092/);
    expect(run).toThrow(/1=kafka-1\.kafka\.svc:9092, 2=kafka-2\.kafka\.svc:9092, 3=kafka-3/);
  });

  test('a flag that is not a broker id of this cluster, or not an id at all, is an error naming the flag', () => {
    expect(() => resolveLocalBrokerId(brokers, BROKER_1, '7')).toThrow(
      /--kafka\.broker-id 7 is not a broker of this cluster/,
    );
    for (const bad of ['-1', '1a', '1.5', 'one']) {
      expect(() => resolveLocalBrokerId(brokers, BROKER_1, bad)).toThrow(
        /--kafka\.broker-id must be a broker id/,
      );
    }
  });

  test('a single-broker cluster: the broker that answered must be that broker', () => {
    expect(resolveLocalBrokerId([brokers[1]!], { host: 'localhost', port: 19092 })).toBe(2);
  });
});

describe('mapping broker 1 of a three-broker cluster', () => {
  const obs = () =>
    kafkaObservation({
      metadata: metadata(),
      localBrokerId: 1,
      offsets: offsets(),
      trackers: new AdvanceTrackers(),
    });

  test('identity: broker id as node id, Metadata cluster id, version unknown, no performance counters', () => {
    const o = obs();
    expect(o).toMatchObject({
      datastore: 'kafka',
      version: 'unknown',
      nativeNodeId: '1',
      nativeClusterId: 'MkU3OEVBNTcwNTJENDM2Qk',
      performance: {},
    });
    expect(o.performance).toEqual({});
  });

  test('shards are exactly the partitions with a replica on this broker, named topic/partition', () => {
    expect(obs().shards.map((s) => s.id)).toEqual([
      'orders/0',
      'orders/1',
      'orders/2',
      'payments/0',
      'payments/1',
      'payments/2',
      'logs/0',
      '__consumer_offsets/0',
    ]);
  });

  test.each([
    ['orders/0', 'primary', 'leader', 'current leader (also the preferred one)'],
    ['orders/1', 'secondary', 'follower', 'follower in the ISR'],
    ['orders/2', 'secondary', 'out-of-sync', 'follower out of the ISR'],
    ['payments/0', 'primary', 'leader', 'current leader although replicas[0] (preferred) is broker 2'],
    ['payments/1', 'secondary', 'follower', 'preferred leader (replicas[0]) but broker 2 leads now'],
    ['payments/2', 'unknown', 'offline', 'partition without a leader (leader -1, LEADER_NOT_AVAILABLE)'],
    [
      'logs/0',
      'unknown',
      'offline-replica',
      'local replica listed in offlineReplicas (REPLICA_NOT_AVAILABLE)',
    ],
    ['__consumer_offsets/0', 'primary', 'leader', 'internal topics are data too'],
  ])('%s -> %s (%s): %s', (id, role, nativeRole) => {
    expect(byId(obs().shards).get(id)).toMatchObject({ role, nativeRole });
  });

  test('commit offset = high watermark on led partitions only; lag is never reported', () => {
    const shards = byId(obs().shards);
    expect(shards.get('orders/0')!.commitOffset).toEqual({ value: 1500, unit: 'offset' });
    expect(shards.get('payments/0')!.commitOffset).toEqual({ value: 42, unit: 'offset' });
    expect(shards.get('__consumer_offsets/0')!.commitOffset).toEqual({ value: 7, unit: 'offset' });
    for (const id of ['orders/1', 'orders/2', 'payments/1', 'payments/2', 'logs/0']) {
      expect(shards.get(id)!.commitOffset).toBeUndefined();
    }
    for (const s of shards.values()) expect(s.lagSeconds).toBeUndefined();
  });

  test('the same partitions mapped from broker 2 and broker 3 agree on one primary per online partition', () => {
    const primaries = new Map<string, number>();
    for (const id of [1, 2, 3]) {
      for (const s of kafkaObservation({
        metadata: metadata(),
        localBrokerId: id,
        offsets: [],
        trackers: new AdvanceTrackers(),
      }).shards) {
        if (s.role === 'primary') primaries.set(s.id!, (primaries.get(s.id!) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(primaries)).toEqual({
      'orders/0': 1,
      'orders/1': 1,
      'orders/2': 1,
      'payments/0': 1,
      'payments/1': 1,
      'audit/0': 1,
      'logs/0': 1,
      '__consumer_offsets/0': 1,
    });
  });

  test('a partition whose leader has no endpoint on our listener is unknown, not offline', () => {
    const m = metadata();
    Object.assign(m.topicMetadata[0]!.partitionMetadata[1]!, { leader: -1, partitionErrorCode: 72 });
    expect(partitionRole(m.topicMetadata[0]!.partitionMetadata[1]!, 1)).toEqual({
      role: 'unknown',
      nativeRole: 'leader-listener-not-found',
    });
  });
});

describe('ListOffsets: asked of the local broker for its own partitions only', () => {
  test('the request names exactly the partitions broker 1 currently leads, latest offset (-1)', () => {
    expect(latestOffsetsRequest(metadata(), 1)).toEqual([
      { topic: 'orders', partitions: [{ partition: 0, timestamp: -1 }] },
      { topic: 'payments', partitions: [{ partition: 0, timestamp: -1 }] },
      { topic: '__consumer_offsets', partitions: [{ partition: 0, timestamp: -1 }] },
    ]);
    // Broker 3 leads orders/2 and audit/0; the offline partition is led by nobody.
    expect(
      latestOffsetsRequest(metadata(), 3).flatMap((t) =>
        t.partitions.map((p) => `${t.topic}/${p.partition}`),
      ),
    ).toEqual(['orders/2', 'audit/0']);
  });

  test('a partition-level error (leadership moved since Metadata) gives that shard no offset, not a wrong one', () => {
    const answer = offsets();
    Object.assign(answer[0]!.partitions[0]!, { errorCode: 6, offset: '-1' });
    answer[1]!.partitions[0]!.offset = '-1'; // OFFSET_NOT_AVAILABLE-style "no offset"
    expect([...highWatermarks(answer)]).toEqual([['__consumer_offsets/0', 7]]);
    const shards = byId(
      kafkaObservation({
        metadata: metadata(),
        localBrokerId: 1,
        offsets: answer,
        trackers: new AdvanceTrackers(),
      }).shards,
    );
    expect(shards.get('orders/0')).toEqual({ id: 'orders/0', role: 'primary', nativeRole: 'leader' });
    expect(shards.get('__consumer_offsets/0')!.commitOffset!.value).toBe(7);
  });
});

describe('last operation: when the high watermark was first seen to advance', () => {
  const hwAnswer = (orders0: number, payments0: number): ListOffsetsTopicResponse[] => {
    const answer = offsets();
    answer[0]!.partitions[0]!.offset = String(orders0);
    answer[1]!.partitions[0]!.offset = String(payments0);
    return answer;
  };

  test('absent until an advance is seen; set to the collection that saw it; unchanged HW keeps it', () => {
    const trackers = new AdvanceTrackers();
    const at = (now: number, answer: ListOffsetsTopicResponse[], m = metadata()) =>
      byId(
        kafkaObservation({ metadata: m, localBrokerId: 1, offsets: answer, trackers, nowSeconds: now })
          .shards,
      );

    let s = at(1000, hwAnswer(1500, 42));
    expect(s.get('orders/0')!.lastOperationTimestampSeconds).toBeUndefined();
    s = at(1001, hwAnswer(1510, 42));
    expect(s.get('orders/0')!.lastOperationTimestampSeconds).toBe(1001);
    expect(s.get('payments/0')!.lastOperationTimestampSeconds).toBeUndefined();
    s = at(1002, hwAnswer(1510, 43));
    expect(s.get('orders/0')!.lastOperationTimestampSeconds).toBe(1001);
    expect(s.get('payments/0')!.lastOperationTimestampSeconds).toBe(1002);
    expect(s.get('orders/0')!.commitOffset!.value).toBe(1510);
    // Followers never get one: their high watermark is not asked for (it lives on the leader).
    expect(s.get('orders/1')!.lastOperationTimestampSeconds).toBeUndefined();

    // orders/0 disappears (topic deleted): its tracker is forgotten, so when a partition of that name
    // comes back, last-op is absent again until a new advance is seen.
    const withoutOrders = metadata();
    withoutOrders.topicMetadata = withoutOrders.topicMetadata.filter((t) => t.topic !== 'orders');
    s = at(1003, hwAnswer(1510, 43).slice(1), withoutOrders);
    expect(s.has('orders/0')).toBe(false);
    s = at(1004, hwAnswer(1600, 43));
    expect(s.get('orders/0')!.lastOperationTimestampSeconds).toBeUndefined();
    expect(s.get('orders/0')!.commitOffset!.value).toBe(1600);
    expect(s.get('payments/0')!.lastOperationTimestampSeconds).toBe(1002);
    s = at(1005, hwAnswer(1601, 43));
    expect(s.get('orders/0')!.lastOperationTimestampSeconds).toBe(1005);
  });

  test('leadership moving away: secondary, no offset, and the tracker is forgotten', () => {
    const trackers = new AdvanceTrackers();
    kafkaObservation({
      metadata: metadata(),
      localBrokerId: 1,
      offsets: hwAnswer(1, 1),
      trackers,
      nowSeconds: 1,
    });
    kafkaObservation({
      metadata: metadata(),
      localBrokerId: 1,
      offsets: hwAnswer(2, 1),
      trackers,
      nowSeconds: 2,
    });
    const moved = metadata();
    moved.topicMetadata[0]!.partitionMetadata[0]!.leader = 2;
    const s = byId(
      kafkaObservation({
        metadata: moved,
        localBrokerId: 1,
        offsets: hwAnswer(2, 1).slice(1),
        trackers,
        nowSeconds: 3,
      }).shards,
    );
    expect(s.get('orders/0')).toEqual({ id: 'orders/0', role: 'secondary', nativeRole: 'follower' });
  });
});

// ---------------------------------------------------------------------------------------------------

/** A fake connection at the driver's I/O boundary, answering from fixtures and recording calls. */
class FakeConnection implements KafkaBrokerConnection {
  offsetRequests: ListOffsetsTopicRequest[][] = [];
  closed = 0;
  constructor(
    public meta: () => Promise<KafkaMetadata> = async () => metadata(),
    public answer: () => ListOffsetsTopicResponse[] = offsets,
  ) {}
  async connect(): Promise<void> {}
  async metadata(): Promise<KafkaMetadata> {
    return this.meta();
  }
  async listLatestOffsets(request: ListOffsetsTopicRequest[]): Promise<ListOffsetsTopicResponse[]> {
    this.offsetRequests.push(request);
    return this.answer();
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

function driverOptions(target: string, extra: Record<string, string> = {}): DriverOptions {
  const logger = createLogger('debug', 'logfmt', () => undefined);
  return { target: parseTarget(target), timeoutMs: 300, logger, extra, heartbeat: false };
}

describe('KafkaDriver through its I/O boundary', () => {
  test('observe(): Metadata, then ListOffsets for the led partitions only, mapped', async () => {
    const conn = new FakeConnection();
    const driver = new KafkaDriver(driverOptions('kafka://kafka-1.kafka.svc:9092'), () => conn);
    await driver.connect();
    const obs = await driver.observe();
    expect(conn.offsetRequests).toEqual([latestOffsetsRequest(metadata(), 1)]);
    expect(obs.nativeNodeId).toBe('1');
    expect(byId(obs.shards).get('orders/0')!.commitOffset!.value).toBe(1500);
    await driver.close();
    expect(conn.closed).toBe(1);
  });

  test('--kafka.broker-id (DriverOptions.extra) selects the broker; a broker leading nothing asks no offsets', async () => {
    const m = metadata();
    for (const t of m.topicMetadata) for (const p of t.partitionMetadata) if (p.leader === 2) p.leader = 3;
    const conn = new FakeConnection(async () => m);
    const driver = new KafkaDriver(driverOptions('kafka://127.0.0.1:9092', { 'broker-id': '2' }), () => conn);
    await driver.connect();
    const obs = await driver.observe();
    expect(obs.nativeNodeId).toBe('2');
    expect(obs.shards.every((s) => s.role !== 'primary')).toBe(true);
    expect(conn.offsetRequests).toEqual([]);
  });

  test('broker not found: observe() rejects with the error naming the flag', async () => {
    const driver = new KafkaDriver(driverOptions('kafka://127.0.0.1:9092'), () => new FakeConnection());
    await driver.connect();
    await expect(driver.observe()).rejects.toThrow(/pass --kafka\.broker-id/);
  });

  test('observe() before connect() rejects instead of hanging', async () => {
    const driver = new KafkaDriver(driverOptions('kafka://127.0.0.1:9092'), () => new FakeConnection());
    await expect(driver.observe()).rejects.toThrow(/not open/);
  });

  test('under the collector: a hung broker times out (down, connection closed), an error is reported, recovery works', async () => {
    let mode: 'hang' | 'fail' | 'ok' = 'hang';
    const conns: FakeConnection[] = [];
    const meta = async (): Promise<KafkaMetadata> => {
      if (mode === 'hang') return new Promise<KafkaMetadata>(() => undefined);
      if (mode === 'fail') throw new Error('Connection error: read ECONNRESET');
      return metadata();
    };
    const opts = driverOptions('kafka://kafka-1.kafka.svc:9092');
    const driver = new KafkaDriver(opts, () => {
      conns.push(new FakeConnection(meta));
      return conns[conns.length - 1]!;
    });
    const collector = new Collector(driver, {
      intervalSeconds: 1,
      timeoutMs: 200,
      maxBackoffSeconds: 1,
      identity: { target: opts.target },
      logger: createLogger('debug', 'logfmt', () => undefined),
    });
    await collector.collect();
    expect(collector.state).toMatchObject({ up: false, snapshot: null });
    expect(collector.state.lastError).toMatch(/timed out after 200 ms/);
    expect(conns[0]!.closed).toBe(1);

    mode = 'fail';
    await waitFor(
      'a reconnect attempt',
      async () => {
        await collector.collect();
        return conns.length === 2;
      },
      5000,
      100,
    );
    expect(collector.state.lastError).toMatch(/ECONNRESET/);
    expect(conns[1]!.closed).toBe(1);

    mode = 'ok';
    await waitFor(
      'up again',
      async () => {
        await collector.collect();
        return collector.state.up;
      },
      5000,
      100,
    );
    expect(collector.state.snapshot).toMatchObject({ nodeId: '1', clusterId: 'MkU3OEVBNTcwNTJENDM2Qk' });
    await collector.stop();
  });
});

describe('connection security options from the target URL', () => {
  test('plain by default; ?tls=true; SASL from the URL user with ?sasl mechanism', () => {
    expect(kafkaSecurityOptions(parseTarget('kafka://k:9092'))).toEqual({ ssl: false });
    expect(kafkaSecurityOptions(parseTarget('kafka://k:9092?tls=true'))).toEqual({ ssl: true });
    expect(kafkaSecurityOptions(parseTarget('kafka://u:p%40ss@k:9092?sasl=SCRAM-SHA-512&tls=1'))).toEqual({
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p@ss' },
    });
    expect(kafkaSecurityOptions(parseTarget('kafka://u:p@k:9092'))).toMatchObject({
      sasl: { mechanism: 'plain' },
    });
    // Refused when the target is parsed (at start-up), before any connection.
    expect(() => parseTarget('kafka://u:p@k:9092?sasl=gssapi')).toThrow(
      /\?sasl=gssapi is not supported \(supported: plain, scram-sha-256, scram-sha-512\)/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------

describe('real kafkajs and the real exporter against a wire-protocol fake broker', () => {
  let broker: WireBroker;
  let others: Awaited<ReturnType<typeof startConnectionCounter>>[];
  let exporter: TestExporter;

  beforeAll(async () => {
    // Brokers 2 and 3 are advertised at loopback ports whose listeners only count connections: the
    // driver must never dial them (local information only).
    others = [await startConnectionCounter(), await startConnectionCounter()];
    const m = metadata();
    broker = await startWireBroker({ brokerId: 1, metadata: m, highWatermarks: new Map() });
    m.brokers[0] = { ...m.brokers[0]!, host: '127.0.0.1', port: broker.port };
    m.brokers[1] = { ...m.brokers[1]!, host: '127.0.0.1', port: others[0]!.port };
    m.brokers[2] = { ...m.brokers[2]!, host: '127.0.0.1', port: others[1]!.port };
    broker.state.highWatermarks = highWatermarks(offsets());
    exporter = await startTestExporter(['--target', `kafka://127.0.0.1:${broker.port}`]);
    await exporter.nextCollections(1);
  });
  afterAll(async () => {
    await exporter?.stop();
    await broker?.stop();
    await Promise.all((others ?? []).map((o) => o.stop()));
  });

  test('every model metric as mapped from the fixtures', async () => {
    const s = await exporter.scrape();
    expect(value(s, 'datastore_up')).toBe(1);
    expect(
      value(s, 'datastore_node_info', {
        datastore: 'kafka',
        node_id: '1',
        cluster_id: 'MkU3OEVBNTcwNTJENDM2Qk',
      }),
    ).toBe(1);
    expect(value(s, 'datastore_version_info', { datastore: 'kafka', version: 'unknown' })).toBe(1);
    expect(roleOf(s, 'orders/0')).toBe('primary');
    expect(roleOf(s, 'orders/1')).toBe('secondary');
    expect(roleOf(s, 'orders/2')).toBe('secondary');
    expect(roleOf(s, 'payments/0')).toBe('primary');
    expect(roleOf(s, 'payments/1')).toBe('secondary');
    expect(roleOf(s, 'payments/2')).toBe('unknown');
    expect(roleOf(s, 'logs/0')).toBe('unknown');
    expect(roleOf(s, '__consumer_offsets/0')).toBe('primary');
    expect(find(s, 'datastore_shard_role', { shard_id: 'audit/0' })).toHaveLength(0);
    expect(find(s, 'datastore_shard_role')).toHaveLength(8 * 3);
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'orders/0' })).toBe(1500);
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'payments/0' })).toBe(42);
    expect(find(s, 'datastore_shard_commit_offset')).toHaveLength(3);
    for (const absent of [
      'datastore_shard_replication_lag_seconds',
      'datastore_clients_connected',
      'datastore_reads_total',
      'datastore_writes_total',
    ]) {
      expect(find(s, absent)).toHaveLength(0);
    }
  });

  test('on the wire: all-topics Metadata without auto-creation, ListOffsets for led partitions at READ_UNCOMMITTED, no other broker dialled', async () => {
    const metadataRequests = broker.requests.filter((r) => r.apiKey === API_KEYS.Metadata);
    expect(metadataRequests.length).toBeGreaterThan(0);
    for (const r of metadataRequests) {
      expect(r).toMatchObject({
        apiVersion: 6,
        topics: null,
        allowAutoTopicCreation: false,
        clientId: 'datastore-exporter',
      });
    }
    const offsetRequests = broker.requests.filter((r) => r.apiKey === API_KEYS.ListOffsets);
    expect(offsetRequests.length).toBe(metadataRequests.length);
    for (const r of offsetRequests) {
      expect(r).toMatchObject({ apiVersion: 3, replicaId: -1, isolationLevel: 0 });
      expect(r.offsetsRequest).toEqual(latestOffsetsRequest(broker.state.metadata, 1));
    }
    // One connection for the whole run, and none to the other brokers.
    expect(broker.connections()).toBe(1);
    expect(others.map((o) => o.connections())).toEqual([0, 0]);
  });

  test('writes (high watermark advancing) move the commit offset and last-op of that shard only', async () => {
    const t0 = Date.now() / 1000;
    broker.state.highWatermarks.set('orders/0', 1525);
    await exporter.nextCollections(2);
    const s = await exporter.scrape();
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'orders/0' })).toBe(1525);
    const lastOp = value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 'orders/0' });
    expect(lastOp).toBeGreaterThanOrEqual(t0 - 1);
    expect(lastOp).toBeLessThanOrEqual(Date.now() / 1000);
    expect(find(s, 'datastore_shard_last_operation_timestamp_seconds')).toHaveLength(1);
  });

  test('leader failover in the metadata flips the roles within one interval', async () => {
    const orders0 = broker.state.metadata.topicMetadata[0]!.partitionMetadata[0]!;
    const orders1 = broker.state.metadata.topicMetadata[0]!.partitionMetadata[1]!;
    orders0.leader = 2;
    orders1.leader = 1;
    broker.state.highWatermarks.set('orders/1', 900);
    try {
      await waitFor(
        'roles flipped',
        async () => roleOf(await exporter.scrape(), 'orders/1') === 'primary',
        3000,
      );
      const s = await exporter.scrape();
      expect(roleOf(s, 'orders/0')).toBe('secondary');
      expect(find(s, 'datastore_shard_commit_offset', { shard_id: 'orders/0' })).toHaveLength(0);
      expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'orders/1' })).toBe(900);
    } finally {
      orders0.leader = 1;
      orders1.leader = 2;
    }
  });

  test('hung broker: the collection times out, down with no model series, then recovers', async () => {
    broker.state.hang = true;
    try {
      await waitFor('datastore_up 0', async () => value(await exporter.scrape(), 'datastore_up') === 0, 5000);
      const s = await exporter.scrape();
      for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
      // The collection deadline (800 ms of free event-loop time): kafkajs's own request timeout is
      // off (drivers/kafka/driver.ts), so nothing else can end the collection first.
      expect(exporter.collector.state.lastError).toMatch(/timed out after 800 ms/);
    } finally {
      broker.state.hang = false;
    }
    await waitFor('datastore_up 1', async () => value(await exporter.scrape(), 'datastore_up') === 1, 10000);
    expect(others.map((o) => o.connections())).toEqual([0, 0]);
  });
});

describe('advertised listener differs from the target; an old broker', () => {
  let broker: WireBroker;

  beforeAll(async () => {
    // Advertises kafka-1.kafka.svc:9092 (the fixture as is) while we dial 127.0.0.1:<port>.
    // Announces Metadata v1 and ListOffsets v0 only (Kafka 0.10.0): no cluster id, offsets as a list.
    broker = await startWireBroker({
      brokerId: 1,
      metadata: metadata(),
      highWatermarks: highWatermarks(offsets()),
      maxMetadataVersion: 1,
      maxListOffsetsVersion: 0,
    });
  });
  afterAll(async () => broker?.stop());

  test('without --kafka.broker-id: down, and the error says to pass the flag', async () => {
    const exporter = await startTestExporter(['--target', `kafka://127.0.0.1:${broker.port}`]);
    try {
      await exporter.nextCollections(1);
      expect(value(await exporter.scrape(), 'datastore_up')).toBe(0);
      expect(exporter.collector.state.lastError).toMatch(
        /advertised at 127\.0\.0\.1:\d+.*pass --kafka\.broker-id/,
      );
    } finally {
      await exporter.stop();
    }
  });

  test('with --kafka.broker-id 1: up, mapped through Metadata v1 / ListOffsets v0', async () => {
    const exporter = await startTestExporter([
      '--target',
      `kafka://127.0.0.1:${broker.port}`,
      '--kafka.broker-id',
      '1',
    ]);
    try {
      await exporter.nextCollections(1);
      const s = await exporter.scrape();
      expect(value(s, 'datastore_up')).toBe(1);
      // Metadata v1 has no cluster id: the core's 'default' applies.
      expect(value(s, 'datastore_node_info', { node_id: '1', cluster_id: 'default' })).toBe(1);
      expect(roleOf(s, 'payments/0')).toBe('primary');
      expect(roleOf(s, 'payments/1')).toBe('secondary');
      expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'payments/0' })).toBe(42);
      const versions = new Set(broker.requests.map((r) => `${r.apiKey}v${r.apiVersion}`));
      expect(versions).toEqual(
        new Set([`${API_KEYS.ApiVersions}v2`, `${API_KEYS.Metadata}v1`, `${API_KEYS.ListOffsets}v0`]),
      );
    } finally {
      await exporter.stop();
    }
  });
});
