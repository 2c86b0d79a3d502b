/**
 * Identity rules shared by every driver (README "Identity"):
 *  - node_id: the datastore's own stable id where it has one, else --node-id, else <host>:<port> of the
 *    target, with the machine's hostname in place of a loopback host (so two machines' exporters that
 *    both watch 127.0.0.1:6379 still get distinct, meaningful ids).
 *  - cluster_id: --cluster-id, else the datastore's own cluster identity, else 'default'.
 *  - The single shard that is the whole dataset (a shard without an id) is named after the cluster_id.
 */
import { hostname } from 'node:os';
import { applyHeartbeat } from './heartbeat';
import type { Observation, Snapshot, Target } from './model';

export interface IdentityOptions {
  target: Pick<Target, 'host' | 'port'>;
  nodeId?: string;
  clusterId?: string;
  /** Injected in tests; defaults to os.hostname(). */
  hostname?: string;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function defaultNodeId(opts: IdentityOptions): string {
  const host = isLoopback(opts.target.host) ? (opts.hostname ?? hostname()) : opts.target.host;
  return `${host}:${opts.target.port}`;
}

/**
 * The Snapshot of one Observation (pure): identity resolved by the rules above, and each shard's
 * heartbeat record applied in heartbeat mode (core/heartbeat.ts applyHeartbeat).
 */
export function resolveSnapshot(
  obs: Observation,
  opts: IdentityOptions,
  collectedAtSeconds: number,
  heartbeatMode = false,
): Snapshot {
  const clusterId = opts.clusterId ?? obs.nativeClusterId ?? 'default';
  return {
    datastore: obs.datastore,
    version: obs.version,
    nodeId: obs.nativeNodeId ?? opts.nodeId ?? defaultNodeId(opts),
    clusterId,
    clusterDisplayName: obs.clusterDisplayName,
    shards: obs.shards.map((s) => ({
      ...applyHeartbeat(s, heartbeatMode, collectedAtSeconds),
      id: s.id ?? clusterId,
    })),
    performance: obs.performance,
    collectedAtSeconds,
  };
}
