/**
 * Benchmark: the Kafka driver's per-collection CPU and memory cost on a synthetic cluster with 10k
 * partitions (and 1k / 100k to show it grows linearly). Prints figures; asserts nothing.
 *
 * Measured per collection, steady state (trackers warm), median of several runs:
 *  - decode: kafkajs decoding the Metadata v6 response bytes (the real decoder, on real wire bytes);
 *  - plan: building the ListOffsets request for the partitions the local broker leads;
 *  - map: high watermarks + the Observation (src/drivers/kafka/parse.ts), including the AdvanceTrackers update;
 *  - heap retained by one Observation (needs --expose-gc for a meaningful number).
 *
 * Run:  npx tsc -p tsconfig.json --outDir dist/tsc-all && node --expose-gc dist/tsc-all/bench/kafka-metadata.js
 * (compiled inside the repository so `kafkajs` resolves from node_modules).
 */
import { AdvanceTrackers } from '../src/drivers/shared/advance-tracker';
import {
  kafkaObservation,
  latestOffsetsRequest,
  type KafkaMetadata,
  type ListOffsetsTopicResponse,
} from '../src/drivers/kafka/parse';
import { encodeListOffsetsResponse, encodeMetadataResponse } from '../test/fixtures/kafka/wire-broker';

/* eslint-disable @typescript-eslint/no-require-imports */
const metadataV6 = require('kafkajs/src/protocol/requests/metadata/v6/response') as {
  decode(raw: Buffer): Promise<KafkaMetadata>;
};
const listOffsetsV3 = require('kafkajs/src/protocol/requests/listOffsets/v3/response') as {
  decode(raw: Buffer): Promise<{ responses: ListOffsetsTopicResponse[] }>;
};
/* eslint-enable @typescript-eslint/no-require-imports */

export interface KafkaBenchScenario {
  partitions: number;
  brokers: number;
  replicationFactor: number;
  partitionsPerTopic: number;
}

/**
 * A cluster where partition i of the whole cluster has replicas on brokers i, i+1, ... (mod brokers),
 * the first one leading, one partition in 50 with a follower out of the ISR and one in 500 offline.
 */
export function syntheticMetadata(s: KafkaBenchScenario): KafkaMetadata {
  const brokers = Array.from({ length: s.brokers }, (_, i) => ({
    nodeId: i + 1,
    host: `kafka-${i + 1}.kafka.svc.cluster.local`,
    port: 9092,
    rack: `rack-${i % 3}`,
  }));
  const topicMetadata: KafkaMetadata['topicMetadata'] = [];
  for (let first = 0, t = 0; first < s.partitions; first += s.partitionsPerTopic, t++) {
    const partitionMetadata = [];
    for (let p = 0; p < s.partitionsPerTopic && first + p < s.partitions; p++) {
      const i = first + p;
      const replicas = Array.from({ length: s.replicationFactor }, (_, r) => ((i + r) % s.brokers) + 1);
      const offline = i % 500 === 499;
      const isr = i % 50 === 49 ? replicas.slice(0, -1) : replicas.slice();
      partitionMetadata.push({
        partitionErrorCode: offline ? 5 : 0,
        partitionId: p,
        leader: offline ? -1 : replicas[0]!,
        replicas,
        isr,
        offlineReplicas: [],
      });
    }
    topicMetadata.push({
      topicErrorCode: 0,
      topic: `service-${t}.events.v1`,
      isInternal: false,
      partitionMetadata,
    });
  }
  return { throttleTime: 0, brokers, clusterId: 'MkU3OEVBNTcwNTJENDM2Qk', controllerId: 1, topicMetadata };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const gc = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

export interface KafkaBenchResult {
  scenario: KafkaBenchScenario;
  shards: number;
  ledPartitions: number;
  metadataBytes: number;
  listOffsetsBytes: number;
  decodeMs: number;
  listOffsetsDecodeMs: number;
  planMs: number;
  mapMs: number;
  observationHeapBytes?: number;
}

export async function benchKafkaScenario(s: KafkaBenchScenario, runs = 15): Promise<KafkaBenchResult> {
  const localBrokerId = 1;
  const metadataBytes = encodeMetadataResponse(syntheticMetadata(s), 6);
  let metadata = await metadataV6.decode(metadataBytes);
  const request = latestOffsetsRequest(metadata, localBrokerId);
  let hw = 1000;
  const answer = (): Buffer =>
    encodeListOffsetsResponse(
      request.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((p) => ({
          partition: p.partition,
          errorCode: 0,
          timestamp: '-1',
          offset: String(hw + p.partition),
        })),
      })),
      3,
    );
  const trackers = new AdvanceTrackers();
  const decodeMs: number[] = [];
  const listOffsetsDecodeMs: number[] = [];
  const planMs: number[] = [];
  const mapMs: number[] = [];
  let shards = 0;
  for (let run = 0; run < runs + 3; run++) {
    hw += 10; // every led partition advances each collection: the tracker's busiest case
    const offsetsBytes = answer();
    let t = performance.now();
    metadata = await metadataV6.decode(metadataBytes);
    const decode = performance.now() - t;
    t = performance.now();
    const offsets = (await listOffsetsV3.decode(offsetsBytes)).responses;
    const offsetsDecode = performance.now() - t;
    t = performance.now();
    latestOffsetsRequest(metadata, localBrokerId);
    const plan = performance.now() - t;
    t = performance.now();
    const obs = kafkaObservation({ metadata, localBrokerId, offsets, trackers, nowSeconds: run });
    const map = performance.now() - t;
    shards = obs.shards.length;
    if (run >= 3) {
      // The first runs warm up the JIT and the trackers.
      decodeMs.push(decode);
      listOffsetsDecodeMs.push(offsetsDecode);
      planMs.push(plan);
      mapMs.push(map);
    }
  }

  let observationHeapBytes: number | undefined;
  if (gc) {
    const offsets = (await listOffsetsV3.decode(answer())).responses;
    const before = heapUsed();
    const kept = kafkaObservation({ metadata, localBrokerId, offsets, trackers, nowSeconds: runs + 10 });
    observationHeapBytes = heapUsed() - before;
    if (kept.shards.length !== shards) throw new Error('unexpected shard count');
  }

  return {
    scenario: s,
    shards,
    ledPartitions: request.reduce((n, t) => n + t.partitions.length, 0),
    metadataBytes: metadataBytes.length,
    listOffsetsBytes: answer().length,
    decodeMs: median(decodeMs),
    listOffsetsDecodeMs: median(listOffsetsDecodeMs),
    planMs: median(planMs),
    mapMs: median(mapMs),
    observationHeapBytes,
  };
}

export async function runKafkaMetadataBench(): Promise<KafkaBenchResult[]> {
  const scenarios: KafkaBenchScenario[] = [1_000, 10_000, 100_000].map((partitions) => ({
    partitions,
    // Three brokers, replication factor 3: every partition has a replica on the local broker, the
    // worst case for one broker's exporter (10k partitions -> 10k shards).
    brokers: 3,
    replicationFactor: 3,
    partitionsPerTopic: 50,
  }));
  const results: KafkaBenchResult[] = [];
  for (const s of scenarios) results.push(await benchKafkaScenario(s));
  return results;
}

export function formatKafkaBenchResult(r: KafkaBenchResult): string {
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  return [
    `partitions=${r.scenario.partitions} brokers=${r.scenario.brokers} rf=${r.scenario.replicationFactor}`,
    `  shards on the local broker: ${r.shards}, led: ${r.ledPartitions}`,
    `  Metadata v6 response: ${(r.metadataBytes / 1024).toFixed(0)} KiB; ListOffsets v3 response: ${(r.listOffsetsBytes / 1024).toFixed(0)} KiB`,
    `  kafkajs decode Metadata: ${ms(r.decodeMs)}; decode ListOffsets: ${ms(r.listOffsetsDecodeMs)}`,
    `  plan ListOffsets request: ${ms(r.planMs)}; map to Observation (incl. trackers): ${ms(r.mapMs)}`,
    `  heap retained by one Observation: ${
      r.observationHeapBytes === undefined
        ? 'n/a (run node with --expose-gc)'
        : `${(r.observationHeapBytes / 1024 / 1024).toFixed(2)} MiB (${Math.round(r.observationHeapBytes / r.shards)} B/shard)`
    }`,
  ].join('\n');
}

if (require.main === module) {
  runKafkaMetadataBench().then(
    (results) => {
      console.log(
        `kafka-metadata bench (node ${process.version}, median of 15 collections after 3 warm-ups)`,
      );
      for (const r of results) console.log(formatKafkaBenchResult(r));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
