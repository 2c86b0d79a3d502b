/**
 * Golden exposition files (after node_exporter's collector fixtures): for each driver, the model
 * series of /metrics as the real exporter renders them from recorded replies, served by an in-process
 * stub that speaks the datastore's protocol. test/golden/<driver>.prom is committed, so any change in
 * what a driver exposes shows up as a reviewed diff. UPDATE_GOLDEN=1 rewrites the files.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  highWatermarks,
  type KafkaMetadata,
  type ListOffsetsTopicResponse,
} from '../src/drivers/kafka/parse';
import { DRIVERS } from '../src/drivers/registry';
import { MODEL_HELP } from '../src/http/exposition';
import metadataFixture from './fixtures/kafka/metadata-v6-three-brokers.json';
import offsetsFixture from './fixtures/kafka/list-offsets-v3-broker-1.json';
import { startWireBroker } from './fixtures/kafka/wire-broker';
import { B, INFO_REPLICA, NODES_72, SHARD_ID } from './fixtures/redis/cluster-7.2';
import { startTestExporter } from './support/exporter';
import { loadFixture } from './support/mongodb';
import { startMongoStub } from './support/mongodb-wire';
import { tempDir } from './support/processes';
import { startRedisStub } from './support/redis-stub';
import {
  startFourLetterReplay,
  startHttpReplay,
  type RecordedHttpReply,
  type Replay,
} from './support/replay';

const GOLDEN_DIR = join(__dirname, 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const MODEL_FAMILIES = new Set(Object.keys(MODEL_HELP));

/**
 * Drivers without a golden file yet, and why: the suite has no in-process stub of the PostgreSQL and
 * MySQL wire protocols.
 */
const NO_GOLDEN_YET = new Set(['postgresql', 'mysql']);

function recorded<T>(driver: string): T {
  return JSON.parse(readFileSync(join(__dirname, 'fixtures', driver, 'replies.json'), 'utf8')) as T;
}

/** The golden text of the exporter pointed at a replay stub. */
async function replayed(
  start: () => Promise<Replay>,
  url: (port: number) => string,
  flags: string[] = [],
): Promise<string> {
  const stub = await start();
  try {
    return await modelExposition(url(stub.port), flags);
  } finally {
    await stub.close();
  }
}

/** The model families of an exposition (HELP, TYPE and samples), in the exporter's order. */
function modelSeries(text: string): string {
  return text
    .split('\n')
    .filter((line) => {
      const name = /^# (?:HELP|TYPE) ([a-z_]+)/.exec(line)?.[1] ?? /^([a-z_]+)[{ ]/.exec(line)?.[1];
      return name !== undefined && MODEL_FAMILIES.has(name);
    })
    .join('\n');
}

/** /metrics of a real exporter pointed at `url`, after its first successful collections. */
async function modelExposition(url: string, flags: string[] = []): Promise<string> {
  // --node-id: used only where the datastore has no node id of its own (else host:port, which varies).
  const exporter = await startTestExporter(['--target', url, '--node-id', 'node-id-flag', ...flags]);
  try {
    await exporter.waitUp();
    await exporter.nextCollections(1);
    return modelSeries(await exporter.scrapeText());
  } finally {
    await exporter.stop();
  }
}

/** One driver's golden text: each scenario's model series under a comment naming its recording. */
async function render(scenarios: [string, () => Promise<string>][]): Promise<string> {
  let out = '';
  for (const [name, exposition] of scenarios) out += `# recorded: ${name}\n${await exposition()}\n`;
  return out;
}

const SCENARIOS: Record<string, [string, () => Promise<string>][]> = {
  redis: [
    [
      'Redis 7.2 Cluster replica (test/fixtures/redis/cluster-7.2.ts)',
      async () => {
        const stub = await startRedisStub({
          INFO: INFO_REPLICA,
          'CLUSTER MYID': B,
          'CLUSTER NODES': NODES_72,
          'CLUSTER MYSHARDID': SHARD_ID,
        });
        try {
          return await modelExposition(stub.url);
        } finally {
          await stub.close();
        }
      },
    ],
  ],
  mongodb: ['primary', 'secondary-lagging'].map((name) => [
    `test/fixtures/mongodb/${name}.json`,
    async () => {
      const stub = await startMongoStub(loadFixture(name));
      try {
        return await modelExposition(`mongodb://127.0.0.1:${stub.port}/`);
      } finally {
        await stub.close();
      }
    },
  ]),
  zookeeper: [
    [
      'test/fixtures/zookeeper/replies.json: 3.8.0 standalone (srvr, conf, mntr)',
      () =>
        replayed(
          () => startFourLetterReplay(recorded('zookeeper')),
          (port) => `zookeeper://127.0.0.1:${port}`,
        ),
    ],
  ],
  etcd: [
    [
      'test/fixtures/etcd/replies.json: 3.4.23, leader of three',
      () =>
        replayed(
          () => startHttpReplay(recorded<Record<string, RecordedHttpReply>>('etcd')),
          (port) => `etcd://127.0.0.1:${port}`,
        ),
    ],
  ],
  nats: [
    [
      'test/fixtures/nats/replies.json: 2.9.10, one of three, an R3 stream with a consumer and an R1 stream',
      () =>
        replayed(
          () => startHttpReplay(recorded<Record<string, RecordedHttpReply>>('nats')),
          (port) => `nats://127.0.0.1:${port}`,
        ),
    ],
  ],
  rabbitmq: [
    [
      'test/fixtures/rabbitmq/replies.json: 3.10, one of three, a quorum queue and a classic queue',
      async () => {
        // The replay answers whatever the credentials; the driver needs a user and reads a password file.
        const secrets = tempDir('golden-rabbitmq');
        writeFileSync(join(secrets.path, 'password'), 'recorded\n');
        try {
          return await replayed(
            () => startHttpReplay(recorded<Record<string, RecordedHttpReply>>('rabbitmq')),
            // One stub serves both the management API and the Prometheus endpoint.
            (port) => `rabbitmq://monitor@127.0.0.1:${port}?prometheus_port=${port}`,
            ['--target.password-file', join(secrets.path, 'password')],
          );
        } finally {
          secrets.remove();
        }
      },
    ],
  ],
  kafka: [
    [
      'test/fixtures/kafka: Metadata v6 (three brokers), ListOffsets v3 of broker 1',
      async () => {
        const metadata = structuredClone(metadataFixture) as KafkaMetadata;
        const offsets = structuredClone(offsetsFixture.responses) as ListOffsetsTopicResponse[];
        const broker = await startWireBroker({
          brokerId: 1,
          metadata,
          highWatermarks: highWatermarks(offsets),
        });
        // The broker the exporter watches must be advertised where it listens.
        metadata.brokers[0] = { ...metadata.brokers[0]!, host: '127.0.0.1', port: broker.port };
        try {
          return await modelExposition(`kafka://127.0.0.1:${broker.port}`);
        } finally {
          await broker.stop();
        }
      },
    ],
  ],
};

describe('golden exposition per driver (test/golden/<driver>.prom)', () => {
  test('every driver has a golden file, or is listed as not having one yet', () => {
    const names = DRIVERS.map((d) => d.name);
    for (const name of names) {
      const covered = name in SCENARIOS && existsSync(join(GOLDEN_DIR, `${name}.prom`));
      expect({ name, covered: covered || NO_GOLDEN_YET.has(name) }).toEqual({ name, covered: true });
    }
    for (const name of NO_GOLDEN_YET) expect(name in SCENARIOS).toBe(false);
  });

  test('the filter keeps exactly the model families', () => {
    const text = [
      '# HELP datastore_up 1 when the last collection succeeded',
      'datastore_up 1',
      '# HELP datastore_shard_role The role',
      '# TYPE datastore_shard_role gauge',
      'datastore_shard_role{cluster_id="c",shard_id="s",role="primary"} 1',
      'datastore_reads_total 4',
      'datastore_exporter_collections_total 3',
    ].join('\n');
    expect(modelSeries(text).split('\n')).toEqual([
      '# HELP datastore_shard_role The role',
      '# TYPE datastore_shard_role gauge',
      'datastore_shard_role{cluster_id="c",shard_id="s",role="primary"} 1',
      'datastore_reads_total 4',
    ]);
  });

  // The drivers render side by side (each waits for its exporter's collections): the file stays fast.
  const renderings = new Map<string, Promise<string>>();
  beforeAll(() => {
    for (const [name, scenarios] of Object.entries(SCENARIOS)) {
      const rendering = render(scenarios);
      rendering.catch(() => undefined); // a failure is reported by the driver's own test below
      renderings.set(name, rendering);
    }
  });

  test.each(Object.keys(SCENARIOS))(
    '%s: the exposition from recorded replies matches its golden file',
    async (name) => {
      const file = join(GOLDEN_DIR, `${name}.prom`);
      const rendered = await renderings.get(name)!;
      expect(rendered).toMatch(/datastore_shard_role\{/);
      if (UPDATE) writeFileSync(file, rendered);
      const hint = `run UPDATE_GOLDEN=1 npx jest test/golden-exposition.test.ts and review the diff of ${name}.prom`;
      const golden = existsSync(file) ? readFileSync(file, 'utf8') : '(missing)';
      expect({ rendered, hint }).toEqual({ rendered: golden, hint });
    },
  );
});
