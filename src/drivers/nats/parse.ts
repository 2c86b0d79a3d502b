/**
 * Pure parsers and mapping for what a NATS server's monitoring endpoint answers: `/varz` (identity,
 * version, client connections) and `/jsz?streams=true&consumers=true` (the JetStream streams and
 * consumers this server holds a replica of, with each one's raft leader as this server knows it).
 * Unknown fields are ignored, so a newer server adding fields cannot break collection; a reply without
 * what the model needs is an error that says so.
 */
import type { Role, ShardObservation } from '../../core/model';

export interface Varz {
  /** server_name: unique per cluster (JetStream clustering requires it); the node id. */
  serverName: string;
  version: string;
  /** cluster.name, absent on a server that is not clustered. */
  clusterName?: string;
  /** Client connections (routes, gateways and leaf nodes are counted apart by the server). */
  connections?: number;
}

/** One raft group (a stream's or a consumer's) as this server sees it. */
export interface RaftView {
  /** The leader's server name; undefined while this server knows no leader. */
  leader?: string;
  /** False when the reply had no cluster block at all (a server that is not clustered). */
  clustered: boolean;
}

export interface StreamReplica {
  account: string;
  name: string;
  raft: RaftView;
  /** state.last_seq: sequence of the last message stored (never goes down while the stream lives). */
  lastSeq: number;
  /** state.last_ts in Unix seconds; undefined when the stream never stored a message. */
  lastTimestampSeconds?: number;
}

export interface ConsumerReplica {
  account: string;
  stream: string;
  name: string;
  raft: RaftView;
  /** delivered.consumer_seq: deliveries made, redeliveries included (only the leader's is kept up). */
  deliveredSeq?: number;
}

export interface Jsz {
  streams: StreamReplica[];
  consumers: ConsumerReplica[];
}

function record(raw: unknown): Record<string, unknown> {
  return raw !== null && typeof raw === 'object' && !Array.isArray(raw)
    ? (raw as Record<string, unknown>)
    : {};
}

function list(raw: unknown): unknown[] {
  return Array.isArray(raw) ? raw : [];
}

function count(raw: unknown): number | undefined {
  return typeof raw === 'number' && Number.isFinite(raw) && raw >= 0 ? raw : undefined;
}

function text(raw: unknown): string | undefined {
  return typeof raw === 'string' && raw !== '' ? raw : undefined;
}

function parseJson(body: string, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`nats ${what} reply is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`nats ${what} reply is not a JSON object: ${JSON.stringify(body.slice(0, 120))}`);
  }
  return json as Record<string, unknown>;
}

export function parseVarz(body: string): Varz {
  const varz = parseJson(body, '/varz');
  const serverName = text(varz.server_name);
  const version = text(varz.version);
  if (!serverName || !version) {
    throw new Error(`nats /varz reply lacks server_name or version: ${JSON.stringify(body.slice(0, 200))}`);
  }
  return {
    serverName,
    version,
    clusterName: text(record(varz.cluster).name),
    connections: count(varz.connections),
  };
}

/**
 * A Go time.Time in RFC 3339 as Unix seconds. Go's zero time ("0001-01-01T00:00:00Z", what an empty
 * stream reports) and anything unparseable are undefined: there is no such write.
 */
export function goTimeSeconds(raw: unknown): number | undefined {
  if (typeof raw !== 'string' || raw.startsWith('0001-01-01')) return undefined;
  const ms = Date.parse(raw);
  return Number.isFinite(ms) && ms > 0 ? ms / 1000 : undefined;
}

function raftView(raw: unknown): RaftView {
  if (raw === undefined || raw === null) return { clustered: false };
  return { leader: text(record(raw).leader), clustered: true };
}

export function parseJsz(body: string): Jsz {
  const jsz = parseJson(body, '/jsz');
  if (jsz.disabled === true) throw new Error('nats /jsz: JetStream is not enabled on this server');
  const streams: StreamReplica[] = [];
  const consumers: ConsumerReplica[] = [];
  for (const rawAccount of list(jsz.account_details)) {
    const account = text(record(rawAccount).name) ?? text(record(rawAccount).id);
    if (!account) continue;
    for (const rawStream of list(record(rawAccount).stream_detail)) {
      const s = record(rawStream);
      const name = text(s.name);
      if (!name) continue;
      const state = record(s.state);
      streams.push({
        account,
        name,
        raft: raftView(s.cluster),
        lastSeq: count(state.last_seq) ?? 0,
        lastTimestampSeconds: goTimeSeconds(state.last_ts),
      });
      for (const rawConsumer of list(s.consumer_detail)) {
        const c = record(rawConsumer);
        const consumerName = text(c.name);
        if (!consumerName) continue;
        consumers.push({
          account,
          stream: text(c.stream_name) ?? name,
          name: consumerName,
          raft: raftView(c.cluster),
          deliveredSeq: count(record(c.delivered).consumer_seq),
        });
      }
    }
  }
  return { streams, consumers };
}

/**
 * This server's role in one raft group:
 *  - not clustered (a single server: the group is its own) -> primary ('standalone');
 *  - the leader named is this server -> primary ('leader');
 *  - another server named leader -> secondary ('follower');
 *  - no leader known (an election, or this server cut off from the group's quorum) -> unknown
 *    ('no-leader'): it follows no primary and may be stale.
 */
export function raftRole(raft: RaftView, serverName: string): { role: Role; nativeRole: string } {
  if (!raft.clustered) return { role: 'primary', nativeRole: 'standalone' };
  if (raft.leader === undefined) return { role: 'unknown', nativeRole: 'no-leader' };
  if (raft.leader === serverName) return { role: 'primary', nativeRole: 'leader' };
  return { role: 'secondary', nativeRole: 'follower' };
}

/** Shard ids: `<account>/<stream>` and `<account>/<stream>/<consumer>`. */
export const streamShardId = (s: { account: string; name: string }): string => `${s.account}/${s.name}`;
export const consumerShardId = (c: { account: string; stream: string; name: string }): string =>
  `${c.account}/${c.stream}/${c.name}`;

/**
 * Streams and consumers as shards. A stream carries its last sequence as the commit offset (unit
 * 'sequence', the same number on every replica once replicated) and the stored time of its last message
 * as the last operation. A consumer carries its role only: in 2.9 a consumer's followers report
 * delivered/ack-floor sequences of 0 in /jsz, so no position of theirs is honest.
 */
export function natsShards(jsz: Jsz, serverName: string): ShardObservation[] {
  const shards: ShardObservation[] = [];
  for (const s of jsz.streams) {
    shards.push({
      id: streamShardId(s),
      ...raftRole(s.raft, serverName),
      commitOffset: { value: s.lastSeq, unit: 'sequence' },
      lastOperationTimestampSeconds: s.lastTimestampSeconds,
    });
  }
  for (const c of jsz.consumers) {
    shards.push({ id: consumerShardId(c), ...raftRole(c.raft, serverName) });
  }
  return shards;
}
