/**
 * Identity rules shared by every driver (docs per datastore say what each one's ids are):
 *  - node_id: the datastore's own stable id where it has one, else --node-id, else <host>:<port> of the
 *    target, with the machine's hostname in place of a loopback host (so two machines' exporters that
 *    both watch 127.0.0.1:6379 still get distinct, meaningful ids).
 *  - cluster_id: --cluster-id, else the datastore's own cluster identity, else the fallback
 *    (--cluster-id.fallback, else 'default'). The snapshot says which of the three it is
 *    (clusterIdSource), because a fallback id may be shared by unrelated clusters.
 *  - The single shard that is the whole dataset (a shard without an id) is named after the cluster_id.
 */
import { hostname } from 'node:os';
import { applyHeartbeat } from './heartbeat';
import type { ClusterIdSource, Observation, Snapshot, Target } from './model';

/** The cluster id of a datastore that has no identity of its own, when nothing else is configured. */
export const DEFAULT_CLUSTER_ID = 'default';

export interface IdentityOptions {
  target: Pick<Target, 'host' | 'port'>;
  nodeId?: string;
  clusterId?: string;
  /** Used instead of 'default' when the datastore has no cluster identity (--cluster-id.fallback). */
  fallbackClusterId?: string;
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

function resolveClusterId(obs: Observation, opts: IdentityOptions): { id: string; source: ClusterIdSource } {
  if (opts.clusterId !== undefined) return { id: opts.clusterId, source: 'flag' };
  if (obs.nativeClusterId !== undefined) return { id: obs.nativeClusterId, source: 'datastore' };
  return { id: opts.fallbackClusterId ?? DEFAULT_CLUSTER_ID, source: 'fallback' };
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
  const cluster = resolveClusterId(obs, opts);
  return {
    datastore: obs.datastore,
    version: obs.version,
    nodeId: obs.nativeNodeId ?? opts.nodeId ?? defaultNodeId(opts),
    clusterId: cluster.id,
    clusterIdSource: cluster.source,
    // A cluster id from the datastore is an identity: nothing for rules to second-guess.
    replicationGroup: cluster.source === 'datastore' ? undefined : obs.replicationGroup,
    clusterDisplayName: obs.clusterDisplayName,
    shards: obs.shards.map((s) => ({
      ...applyHeartbeat(s, heartbeatMode, collectedAtSeconds),
      id: s.id ?? cluster.id,
    })),
    performance: obs.performance,
    collectedAtSeconds,
  };
}
