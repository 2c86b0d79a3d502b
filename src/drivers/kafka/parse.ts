/**
 * Pure mapping for the Kafka driver: one broker's Metadata and ListOffsets responses -> Observation.
 * All of the driver's logic lives here so it can be tested on responses in their real decoded shapes
 * (what kafkajs's protocol decoders return for Metadata v1-v6 and ListOffsets v0-v3) without a broker.
 *
 * Cost: thousands of partitions must not make a collection slow. Every function here is one pass over
 * the partitions, allocates nothing per partition beyond the shard object it returns (and, for the
 * partitions this broker leads, one ListOffsets request entry and one high-watermark map entry), and
 * never searches the whole response per partition (`replicas.includes` scans a partition's own replica
 * list: a handful of ids).
 */
import type { AdvanceTrackers } from '../shared/advance-tracker';
import type { Observation, Role, ShardObservation } from '../../core/model';

/** A broker as listed in a Metadata response (v1+: with rack). */
export interface KafkaBrokerMetadata {
  nodeId: number;
  host: string;
  port: number;
  rack?: string | null;
}

/** A partition as listed in a Metadata response. */
export interface KafkaPartitionMetadata {
  partitionErrorCode: number;
  partitionId: number;
  /** The CURRENT leader's broker id; -1 when the partition has no leader (offline). */
  leader: number;
  /** Assigned replicas; replicas[0] is the PREFERRED leader, which is not necessarily the leader. */
  replicas: number[];
  isr: number[];
  /** v5+: replicas on a broker that is down or on a failed log directory. */
  offlineReplicas?: number[];
}

export interface KafkaTopicMetadata {
  topicErrorCode: number;
  topic: string;
  isInternal?: boolean;
  partitionMetadata: KafkaPartitionMetadata[];
}

/** A decoded Metadata response (v1+; clusterId from v2, throttleTime from v3). */
export interface KafkaMetadata {
  throttleTime?: number;
  brokers: KafkaBrokerMetadata[];
  clusterId?: string | null;
  controllerId?: number;
  topicMetadata: KafkaTopicMetadata[];
}

/** One topic of a ListOffsets request: `timestamp: -1` asks for the latest offset. */
export interface ListOffsetsTopicRequest {
  topic: string;
  partitions: { partition: number; timestamp: number }[];
}

/** One partition of a decoded ListOffsets response: v1+ has `offset`, v0 an `offsets` list. */
export interface ListOffsetsPartitionResponse {
  partition: number;
  errorCode: number;
  timestamp?: string;
  offset?: string;
  offsets?: string[];
}

export interface ListOffsetsTopicResponse {
  topic: string;
  partitions: ListOffsetsPartitionResponse[];
}

/** ListOffsets timestamp meaning "the latest offset" (the high watermark at READ_UNCOMMITTED). */
export const LATEST_OFFSET = -1;

/** Kafka error codes the mapping gives a meaning to. */
export const KAFKA_ERRORS = {
  NONE: 0,
  LEADER_NOT_AVAILABLE: 5,
  LISTENER_NOT_FOUND: 72,
} as const;

/** How a broker is told which broker id is its own (--kafka.broker-id). */
export const BROKER_ID_FLAG = '--kafka.broker-id';

/** The local broker could not be identified in the cluster metadata. */
export class KafkaBrokerNotFoundError extends Error {
  override name = 'KafkaBrokerNotFoundError';
}

/** The partition's topic/partition shard id. Topic names cannot contain '/', so it is unambiguous. */
export function shardId(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

function describeBrokers(brokers: readonly KafkaBrokerMetadata[]): string {
  const shown = brokers.slice(0, 10).map((b) => `${b.nodeId}=${b.host}:${b.port}`);
  if (brokers.length > shown.length) shown.push(`... ${brokers.length - shown.length} more`);
  return shown.length > 0 ? shown.join(', ') : 'none';
}

/**
 * The broker id of the broker at the target address.
 *
 * Kafka's protocol has no "who are you" request: Metadata lists the cluster's brokers by their
 * ADVERTISED address, which can differ from the address the exporter dials (a sidecar dialling
 * 127.0.0.1 while the broker advertises its DNS name; NAT; several listeners). So, in order:
 *  1. --kafka.broker-id, when given, wins (it must name a broker of the cluster, to catch typos);
 *  2. the one broker advertised at exactly the target host:port (host compared case-insensitively);
 *  3. a cluster of exactly one broker: the broker that answered must be that one;
 *  4. otherwise fail, naming the flag: guessing would attach the wrong partitions to this node.
 */
export function resolveLocalBrokerId(
  brokers: readonly KafkaBrokerMetadata[],
  target: { host: string; port: number },
  brokerIdFlag?: string,
): number {
  if (brokerIdFlag !== undefined && brokerIdFlag.trim() !== '') {
    const text = brokerIdFlag.trim();
    const id = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(id)) {
      throw new KafkaBrokerNotFoundError(
        `${BROKER_ID_FLAG} must be a broker id (a non-negative integer), got ${JSON.stringify(brokerIdFlag)}`,
      );
    }
    if (!brokers.some((b) => b.nodeId === id)) {
      throw new KafkaBrokerNotFoundError(
        `${BROKER_ID_FLAG} ${id} is not a broker of this cluster (brokers: ${describeBrokers(brokers)})`,
      );
    }
    return id;
  }
  const host = target.host.toLowerCase();
  const matches = brokers.filter((b) => b.port === target.port && b.host.toLowerCase() === host);
  if (matches.length === 1) return matches[0]!.nodeId;
  if (matches.length === 0 && brokers.length === 1) return brokers[0]!.nodeId;
  const why =
    matches.length > 1
      ? `several brokers are advertised at ${target.host}:${target.port}`
      : `no broker of the cluster is advertised at ${target.host}:${target.port}`;
  throw new KafkaBrokerNotFoundError(
    `cannot tell which broker is the local one: ${why} (brokers: ${describeBrokers(brokers)}); ` +
      `the advertised listener may differ from the target address: pass ${BROKER_ID_FLAG}`,
  );
}

/**
 * The ListOffsets request for the latest offset of every partition the local broker CURRENTLY leads.
 * Only the leader answers ListOffsets; asking for partitions led elsewhere would mean contacting other
 * brokers, which the model forbids (local information only). Empty when the broker leads nothing.
 */
export function latestOffsetsRequest(
  metadata: KafkaMetadata,
  localBrokerId: number,
): ListOffsetsTopicRequest[] {
  const request: ListOffsetsTopicRequest[] = [];
  for (const topic of metadata.topicMetadata) {
    let entry: ListOffsetsTopicRequest | undefined;
    for (const p of topic.partitionMetadata) {
      if (p.leader !== localBrokerId) continue;
      if (!entry) {
        entry = { topic: topic.topic, partitions: [] };
        request.push(entry);
      }
      entry.partitions.push({ partition: p.partitionId, timestamp: LATEST_OFFSET });
    }
  }
  return request;
}

/** The latest offset of one ListOffsets partition, or undefined on a partition error or no offset. */
function latestOffset(p: ListOffsetsPartitionResponse): number | undefined {
  if (p.errorCode !== KAFKA_ERRORS.NONE) return undefined;
  // v0 answers a list of offsets (one, as asked); v1+ one offset. Both are int64 as decimal strings.
  const raw = p.offset ?? (p.offsets && p.offsets.length > 0 ? p.offsets[0] : undefined);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  // -1 means "no offset" (e.g. OFFSET_NOT_AVAILABLE during a leader election).
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * High watermarks by shard id from a ListOffsets response. A partition that answered an error
 * (leadership moved since Metadata: NOT_LEADER_OR_FOLLOWER; topic deleted) has no entry: no offset
 * this round rather than a wrong one.
 */
export function highWatermarks(responses: readonly ListOffsetsTopicResponse[]): Map<string, number> {
  const result = new Map<string, number>();
  for (const topic of responses) {
    for (const p of topic.partitions) {
      const value = latestOffset(p);
      if (value !== undefined) result.set(shardId(topic.topic, p.partition), value);
    }
  }
  return result;
}

/** The local broker's role in one partition, with Kafka's own word for it. */
export interface PartitionRole {
  readonly role: Role;
  readonly nativeRole: string;
}

// Shared constants: mapping 10k partitions must not allocate a role object per partition.
const LEADER: PartitionRole = Object.freeze({ role: 'primary', nativeRole: 'leader' });
const FOLLOWER: PartitionRole = Object.freeze({ role: 'secondary', nativeRole: 'follower' });
const OUT_OF_SYNC: PartitionRole = Object.freeze({ role: 'secondary', nativeRole: 'out-of-sync' });
const OFFLINE: PartitionRole = Object.freeze({ role: 'unknown', nativeRole: 'offline' });
const NO_LISTENER: PartitionRole = Object.freeze({
  role: 'unknown',
  nativeRole: 'leader-listener-not-found',
});
const OFFLINE_REPLICA: PartitionRole = Object.freeze({ role: 'unknown', nativeRole: 'offline-replica' });

/** Role of the local broker in one partition it holds a replica of. */
export function partitionRole(p: KafkaPartitionMetadata, localBrokerId: number): PartitionRole {
  // The CURRENT leader (Metadata `leader`), never the preferred leader replicas[0]: after a failover
  // the preferred replica is a follower until a preferred-leader election moves leadership back.
  if (p.leader === localBrokerId) return LEADER;
  // No leader: the partition is offline (or its leader has no endpoint on the listener we dialled).
  // No replica can be called the secondary of a primary that does not exist.
  if (p.leader < 0) return p.partitionErrorCode === KAFKA_ERRORS.LISTENER_NOT_FOUND ? NO_LISTENER : OFFLINE;
  // The local replica itself is offline (its log directory failed): it replicates nothing.
  if (p.offlineReplicas && p.offlineReplicas.includes(localBrokerId)) return OFFLINE_REPLICA;
  // A follower out of the ISR still holds the partition and still fetches from the leader to catch up:
  // it is a secondary, just a lagging one. The role state set has no 'out-of-sync' state (an extra
  // state would break every consumer of the three-state contract), so it shows as the nativeRole.
  return p.isr.includes(localBrokerId) ? FOLLOWER : OUT_OF_SYNC;
}

export interface KafkaObservationInput {
  metadata: KafkaMetadata;
  localBrokerId: number;
  /** The decoded ListOffsets response for latestOffsetsRequest(); [] when nothing was asked. */
  offsets: readonly ListOffsetsTopicResponse[];
  /** Per-shard "first seen to advance" trackers, kept by the driver across collections. */
  trackers: AdvanceTrackers;
  nowSeconds?: number;
}

/**
 * The Observation of the local broker: one shard per partition with a replica on it.
 *  - role: primary when it is the current leader, secondary as a follower (in or out of the ISR),
 *    unknown when the partition has no leader or the local replica is offline;
 *  - commit offset: the high watermark, for the partitions it leads (the only ones it can answer for);
 *  - last operation: when that high watermark was first seen to advance;
 *  - lag, clients, reads/writes: absent: the Kafka protocol does not expose them (see docs/kafka.md).
 */
export function kafkaObservation(input: KafkaObservationInput): Observation {
  const { metadata, localBrokerId } = input;
  const hw = highWatermarks(input.offsets);
  // Partitions no longer led here (or gone) drop out of `hw`, so their trackers are forgotten.
  const lastAdvance = input.trackers.observeAll(hw, input.nowSeconds);
  const shards: ShardObservation[] = [];
  for (const topic of metadata.topicMetadata) {
    for (const p of topic.partitionMetadata) {
      if (p.leader !== localBrokerId && !p.replicas.includes(localBrokerId)) continue;
      const { role, nativeRole } = partitionRole(p, localBrokerId);
      const id = shardId(topic.topic, p.partitionId);
      const shard: ShardObservation = { id, role, nativeRole };
      if (role === 'primary') {
        const value = hw.get(id);
        if (value !== undefined) {
          shard.commitOffset = { value, unit: 'offset' };
          const advancedAt = lastAdvance.get(id);
          if (advancedAt !== undefined) shard.lastOperationTimestampSeconds = advancedAt;
        }
      }
      shards.push(shard);
    }
  }
  return {
    datastore: 'kafka',
    // The Kafka protocol carries no broker software version (ApiVersions lists API ranges only).
    version: 'unknown',
    nativeNodeId: String(localBrokerId),
    nativeClusterId: metadata.clusterId ?? undefined,
    shards,
    performance: {},
  };
}

/** SASL mechanisms the driver can use (`?sasl=`). */
export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
/** `?tls=` values that switch TLS on; TLS_OFF those that leave it off. Anything else is a typo. */
export const TLS_ON = /^(1|true|yes)$/i;
const TLS_OFF = /^(0|false|no)$/i;

/** What is wrong with a Kafka target URL's parameters (`tls`, `sasl`), or undefined. */
export function kafkaUrlProblem(url: URL): string | undefined {
  const tls = url.searchParams.get('tls');
  if (tls !== null && !TLS_ON.test(tls) && !TLS_OFF.test(tls)) {
    return `?tls=${tls} is not true or false`;
  }
  const sasl = url.searchParams.get('sasl');
  if (sasl !== null && !(SASL_MECHANISMS as readonly string[]).includes(sasl.toLowerCase())) {
    return `?sasl=${sasl} is not supported (supported: ${SASL_MECHANISMS.join(', ')})`;
  }
  if (sasl !== null && !url.username) return '?sasl= needs a user name in the URL (kafka://user@host:9092)';
  return undefined;
}
