/**
 * Idle CPU of the exporter against Kafka: the built CLI, a separate process, collecting from a broker
 * that speaks the Kafka wire protocol (test/fixtures/kafka/wire-broker.ts: ApiVersions, Metadata,
 * ListOffsets in their documented layouts; Kafka itself cannot be installed here). What it measures is
 * the client side: timers kafkajs keeps while connected, and the collections. Figures only.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startWireBroker } from '../test/fixtures/kafka/wire-broker';
import { freePort } from '../test/support/processes';
import { cpuSeconds, loadAverage } from './footprint';
import { syntheticMetadata } from './kafka-metadata';

const CLI = process.env.BENCH_CLI ?? join(__dirname, '..', '..', 'dist', 'cli.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface KafkaIdleResult {
  partitions: number;
  seconds: number;
  cpuSecondsPerHour: number;
  collections: number;
  loadAverage: string;
}

/** Starts one exporter against a wire broker with `partitions` partitions; CPU over `seconds` idle. */
export async function measureKafkaIdle(partitions: number, seconds: number): Promise<KafkaIdleResult> {
  const metadata = syntheticMetadata({
    partitions,
    brokers: 3,
    replicationFactor: 3,
    partitionsPerTopic: 10,
  });
  const highWatermarks = new Map<string, number>();
  for (const t of metadata.topicMetadata) {
    for (const p of t.partitionMetadata)
      if (p.leader === 1) highWatermarks.set(`${t.topic}/${p.partitionId}`, 1);
  }
  const broker = await startWireBroker({ brokerId: 1, metadata, highWatermarks });
  metadata.brokers[0] = { ...metadata.brokers[0]!, host: '127.0.0.1', port: broker.port };
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [CLI, '--target', `kafka://127.0.0.1:${broker.port}`, '--web.listen-address', `127.0.0.1:${port}`],
    { stdio: 'ignore' },
  );
  try {
    const url = `http://127.0.0.1:${port}/metrics`;
    for (let i = 0; i < 400; i++) {
      const text = await fetch(url).then(
        (r) => r.text(),
        () => '',
      );
      if (/^datastore_up 1$/m.test(text)) break;
      await sleep(50);
    }
    await sleep(3000);
    const before = cpuSeconds(child.pid!);
    const requestsBefore = broker.requests.filter((r) => r.apiKey === 3).length;
    await sleep(seconds * 1000);
    const cpu = cpuSeconds(child.pid!) - before;
    return {
      partitions,
      seconds,
      cpuSecondsPerHour: (cpu / seconds) * 3600,
      collections: broker.requests.filter((r) => r.apiKey === 3).length - requestsBefore,
      loadAverage: loadAverage(),
    };
  } finally {
    child.kill('SIGKILL');
    await broker.stop();
  }
}

export const KAFKA_IDLE_HEADER =
  '| partitions | seconds | collections | CPU s/hour | load average |\n|---:|---:|---:|---:|---|';

export function formatKafkaIdle(r: KafkaIdleResult): string {
  return `| ${r.partitions} | ${r.seconds} | ${r.collections} | ${r.cpuSecondsPerHour.toFixed(1)} | ${r.loadAverage} |`;
}

if (require.main === module) {
  const seconds = Number(process.env.BENCH_KAFKA_IDLE_SECONDS ?? 60);
  void (async () => {
    console.log(KAFKA_IDLE_HEADER);
    for (const partitions of [10, 1000])
      console.log(formatKafkaIdle(await measureKafkaIdle(partitions, seconds)));
    process.exit(0);
  })();
}
