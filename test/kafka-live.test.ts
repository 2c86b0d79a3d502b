/**
 * Opt-in live test of the Kafka driver: set KAFKA_TEST_URL=kafka://host:port to run the real exporter
 * against a real broker (add KAFKA_TEST_BROKER_ID when the broker advertises another address than the
 * one dialled). When it is set and the broker is unreachable, this test FAILS: an opt-in that silently
 * skips would report a live proof that never ran.
 *
 * When KAFKA_TEST_URL is unset, the real driver (real kafkajs, real sockets) still runs against a real
 * closed port on loopback: the exporter must report the datastore down within the timeout, with no
 * model series, and keep answering scrapes.
 */
import { startTestExporter, type TestExporter } from './support/exporter';
import { MODEL_METRICS, find, value } from './support/metrics-text';
import { freePort, waitFor } from './support/processes';

const LIVE_URL = process.env.KAFKA_TEST_URL;
const LIVE_BROKER_ID = process.env.KAFKA_TEST_BROKER_ID;

describe('kafka driver against a closed port (always runs)', () => {
  let exporter: TestExporter;
  let port: number;

  beforeAll(async () => {
    // freePort() closes its listener: nothing listens there, so connects are refused.
    port = await freePort();
    exporter = await startTestExporter(['--target', `kafka://127.0.0.1:${port}`]);
  });
  afterAll(async () => exporter?.stop());

  test('datastore_up 0 within the timeout, no model series, the error names the refused connection', async () => {
    const started = Date.now();
    await exporter.nextCollections(1);
    expect(Date.now() - started).toBeLessThan(3000);
    const s = await exporter.scrape();
    expect(value(s, 'datastore_up')).toBe(0);
    for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
    expect(exporter.collector.state.lastError).toMatch(
      new RegExp(`ECONNREFUSED.*${port}|${port}.*ECONNREFUSED`),
    );
  });
});

describe(`kafka driver against a live broker (KAFKA_TEST_URL=${LIVE_URL ?? 'unset: not run'})`, () => {
  let exporter: TestExporter | undefined;
  afterAll(async () => exporter?.stop());

  test('live broker: up, identity, one role per shard, offsets only on led shards', async () => {
    if (!LIVE_URL) {
      // Not opted in: nothing to prove here (the closed-port test above exercised the real driver).
      expect(LIVE_URL).toBeUndefined();
      return;
    }
    const flags = ['--target', LIVE_URL, '--collect.timeout', '4s', '--collect.interval', '5s'];
    if (LIVE_BROKER_ID) flags.push('--kafka.broker-id', LIVE_BROKER_ID);
    exporter = await startTestExporter(flags);
    await exporter.nextCollections(1);
    const up = value(await exporter.scrape(), 'datastore_up');
    if (up !== 1) {
      throw new Error(
        `KAFKA_TEST_URL=${LIVE_URL} is set but the exporter could not collect from it: ` +
          `${exporter.collector.state.lastError ?? 'unknown error'}`,
      );
    }
    const s = await exporter.scrape();
    const [node] = find(s, 'datastore_node_info', { datastore: 'kafka' });
    expect(node?.labels.node_id).toMatch(LIVE_BROKER_ID ? new RegExp(`^${LIVE_BROKER_ID}$`) : /^\d+$/);
    expect(node?.labels.cluster_id).toBeTruthy();
    expect(value(s, 'datastore_version_info', { datastore: 'kafka', version: 'unknown' })).toBe(1);
    // Every shard is topic/partition and has exactly one role set.
    const shardIds = new Set(find(s, 'datastore_shard_role').map((x) => x.labels.shard_id!));
    for (const id of shardIds) {
      expect(id).toMatch(/^.+\/\d+$/);
      expect(find(s, 'datastore_shard_role', { shard_id: id }).filter((x) => x.value === 1)).toHaveLength(1);
    }
    // Commit offsets exist only for shards this broker leads (role primary).
    for (const o of find(s, 'datastore_shard_commit_offset')) {
      expect(value(s, 'datastore_shard_role', { shard_id: o.labels.shard_id!, role: 'primary' })).toBe(1);
      expect(o.value).toBeGreaterThanOrEqual(0);
    }
    for (const absent of ['datastore_shard_replication_lag_seconds', 'datastore_clients_connected']) {
      expect(find(s, absent)).toHaveLength(0);
    }
    await waitFor(
      'a second collection still up',
      async () => {
        await exporter!.nextCollections(1);
        return value(await exporter!.scrape(), 'datastore_up') === 1;
      },
      20000,
    );
  });
});
