/**
 * Pure parsers and mapping for what a RabbitMQ node answers over HTTP:
 *  - its Prometheus plugin (node-local data): `/metrics` (identity, version, client connections,
 *    message counters) and `/metrics/detailed?family=ra_metrics` (one row per quorum queue member
 *    running on this node, with its raft indices);
 *  - its management plugin: `/api/queues?disable_stats=true` (each queue's leader and members, from
 *    the replicated queue records).
 * Unknown metrics, labels and fields are ignored; a reply without what the model needs is an error.
 */
import type { Role, ShardObservation } from '../../core/model';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(raw: string): string {
  return raw.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * Samples of the given metric names from a Prometheus text exposition; other lines are skipped without
 * being parsed (RabbitMQ's /metrics is ~90 kB, mostly Erlang VM allocator series).
 */
export function pickSamples(text: string, names: ReadonlySet<string>): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!names.has(name)) continue;
    const labels: Record<string, string> = {};
    let rest = line.slice(nameEnd);
    if (rest.startsWith('{')) {
      // The label block ends at the first '}' outside a quoted value.
      const close = /^\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\}/.exec(rest);
      if (!close) continue;
      for (const m of close[1]!.matchAll(LABEL)) labels[m[1]!] = unescapeLabel(m[2]!);
      rest = rest.slice(close[0].length);
    }
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (rest.trim() === '' || !Number.isFinite(value)) continue;
    samples.push({ name, labels, value });
  }
  return samples;
}

export const NODE_METRICS = new Set([
  'rabbitmq_identity_info',
  'rabbitmq_build_info',
  'rabbitmq_connections',
  'rabbitmq_global_messages_received_total',
  'rabbitmq_global_messages_delivered_total',
]);

export interface NodeMetrics {
  /** rabbitmq_node, e.g. rabbit@host: unique in the cluster (Erlang node names are). */
  node: string;
  /** rabbitmq_cluster: the cluster name (settable; defaults to the first node's name). */
  clusterName?: string;
  /** rabbitmq_cluster_permanent_id: generated once per cluster, survives renames. */
  clusterId?: string;
  version: string;
  /** Client connections open on this node, every protocol (inter-node links are not connections). */
  connections?: number;
  /** Messages received from publishers connected to this node, every protocol. */
  messagesReceived?: number;
  /** Messages delivered to consumers connected to this node (consume and get), every protocol. */
  messagesDelivered?: number;
}

function sum(samples: Sample[], name: string): number | undefined {
  const found = samples.filter((s) => s.name === name);
  return found.length === 0 ? undefined : found.reduce((a, s) => a + s.value, 0);
}

export function parseNodeMetrics(text: string): NodeMetrics {
  const samples = pickSamples(text, NODE_METRICS);
  const identity = samples.find((s) => s.name === 'rabbitmq_identity_info')?.labels;
  const build = samples.find((s) => s.name === 'rabbitmq_build_info')?.labels;
  const node = identity?.rabbitmq_node;
  const version = build?.rabbitmq_version;
  if (!node || !version) {
    throw new Error(
      `rabbitmq /metrics lacks rabbitmq_identity_info{rabbitmq_node} or rabbitmq_build_info{rabbitmq_version}: ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
  return {
    node,
    clusterName: identity?.rabbitmq_cluster || undefined,
    clusterId: identity?.rabbitmq_cluster_permanent_id || undefined,
    version,
    connections: sum(samples, 'rabbitmq_connections'),
    messagesReceived: sum(samples, 'rabbitmq_global_messages_received_total'),
    messagesDelivered: sum(samples, 'rabbitmq_global_messages_delivered_total'),
  };
}

/** A quorum queue member running on this node, from the plugin's ra_metrics family. */
export interface LocalMember {
  vhost: string;
  queue: string;
  /** Raft commit index as this member knows it (a follower learns it from the leader). */
  commitIndex: number;
}

const COMMIT_INDEX = 'rabbitmq_detailed_raft_log_commit_index';

/** Rows without vhost/queue labels are the node-wide aggregate (or Ra systems that are not queues). */
export function parseLocalMembers(text: string): LocalMember[] {
  return pickSamples(text, new Set([COMMIT_INDEX]))
    .filter((s) => s.labels.vhost !== undefined && s.labels.queue !== undefined)
    .map((s) => ({ vhost: s.labels.vhost!, queue: s.labels.queue!, commitIndex: s.value }));
}

/** What the management API says of a quorum queue: the leader node ('' when it found none alive). */
export interface QueueRecord {
  vhost: string;
  name: string;
  type: string;
  leader?: string;
  members: string[];
}

export function parseQueueList(body: string): QueueRecord[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`rabbitmq /api/queues reply is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  if (!Array.isArray(json)) {
    throw new Error(`rabbitmq /api/queues reply is not a list: ${JSON.stringify(body.slice(0, 120))}`);
  }
  const queues: QueueRecord[] = [];
  for (const raw of json) {
    if (raw === null || typeof raw !== 'object') continue;
    const q = raw as Record<string, unknown>;
    if (typeof q.name !== 'string' || typeof q.vhost !== 'string') continue;
    queues.push({
      vhost: q.vhost,
      name: q.name,
      type: typeof q.type === 'string' ? q.type : '',
      leader: typeof q.leader === 'string' && q.leader !== '' ? q.leader : undefined,
      members: Array.isArray(q.members) ? q.members.filter((m): m is string => typeof m === 'string') : [],
    });
  }
  return queues;
}

/** Shard id: the management API's path for the queue, `<url-encoded vhost>/<queue>` (`%2F/orders`). */
export const queueShardId = (vhost: string, queue: string): string => `${encodeURIComponent(vhost)}/${queue}`;

/**
 * This node's role in one quorum queue, from the queue record's leader:
 *  - no record (the management API failed or timed out, or the queue is newer than the list) ->
 *    unknown ('leader-unknown');
 *  - no leader (the management API found the recorded leader's process not alive) -> unknown
 *    ('no-leader');
 *  - the leader is this node -> primary ('leader'); another node -> secondary ('follower').
 */
export function queueRole(record: QueueRecord | undefined, node: string): { role: Role; nativeRole: string } {
  if (!record) return { role: 'unknown', nativeRole: 'leader-unknown' };
  if (record.leader === undefined) return { role: 'unknown', nativeRole: 'no-leader' };
  if (record.leader === node) return { role: 'primary', nativeRole: 'leader' };
  return { role: 'secondary', nativeRole: 'follower' };
}

/** The quorum queues with a member on this node as shards (commit offset: the raft commit index). */
export function rabbitShards(
  members: LocalMember[],
  records: QueueRecord[] | undefined,
  node: string,
): ShardObservation[] {
  const byId = new Map((records ?? []).map((r) => [queueShardId(r.vhost, r.name), r]));
  return members.map((m) => {
    const id = queueShardId(m.vhost, m.queue);
    return {
      id,
      ...queueRole(byId.get(id), node),
      commitOffset: { value: m.commitIndex, unit: 'raft-index' },
    };
  });
}
