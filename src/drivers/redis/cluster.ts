/**
 * Redis Cluster identity (docs/redis.md "Identity"): which shard the local node is in, what the
 * shard and the cluster are called, and which slots the shard owns now. Pure: works on the parsed
 * CLUSTER NODES reply of the local node (and its CLUSTER MYSHARDID reply, where the server has one).
 *
 *  - Shard id: Redis 7.2+ and Valkey give every shard a random id (CLUSTER MYSHARDID) that its nodes
 *    keep across failover, resharding and restarts: used as is. Redis 7.0 has none, so the shard is
 *    named after the lowest node id among its members: its master and every node CLUSTER NODES lists
 *    as that master's replica, failed ones included (a failed replica stays linked to its master).
 *    Node ids are random and persist in nodes.conf, so that name survives slot moves, CLUSTER
 *    FAILOVER and restarts, and differs between clusters created separately. It changes when that
 *    member leaves the shard: CLUSTER FORGET, CLUSTER REPLICATE to another master, replica migration,
 *    or a failover after which the old master is failed and, no longer anybody's replica, belongs
 *    to no shard until it comes back (as a replica of the new master); and when a node with a lower
 *    id joins the shard.
 *  - Cluster id: the lowest node id of every node the local node knows (failed ones included;
 *    nodes still in handshake have a temporary id and are left out). Shared by all members, kept
 *    across failover, resharding and restarts; changes when that node is forgotten or a node with a
 *    lower id joins the cluster.
 *  - Slot ranges are informational: never an id, since every slot move would rename a shard.
 */
import type { ClusterNode } from './parse';

/** The local node's shard, as seen in its own CLUSTER NODES. */
export interface ClusterShard {
  id: string;
  /** The master's slot ranges, comma separated ('0-5460,10923'); '' when it owns none. */
  slots: string;
  /** The local node is the shard's master. */
  isMaster: boolean;
}

function known(nodes: ClusterNode[]): ClusterNode[] {
  // A node in handshake carries a random placeholder id until the handshake completes.
  return nodes.filter((n) => !n.flags.includes('handshake'));
}

function lowest(ids: string[]): string | undefined {
  return ids.length === 0 ? undefined : ids.reduce((a, b) => (b < a ? b : a));
}

/** The lowest node id the local node knows: the cluster id. */
export function clusterIdOf(nodes: ClusterNode[]): string | undefined {
  return lowest(known(nodes).map((n) => n.id));
}

/** Redis 7.0's shard id: the lowest node id among the master and its replicas (failed ones too). */
export function derivedShardId(nodes: ClusterNode[], masterId: string): string {
  const members = known(nodes)
    .filter((n) => n.id === masterId || n.masterId === masterId)
    .map((n) => n.id);
  return lowest([masterId, ...members])!;
}

/**
 * The local node's shard: its own (if master) or its master's, named by `nativeShardId`
 * (CLUSTER MYSHARDID) where the server has one, else by derivedShardId. Undefined when the local
 * node or its master is missing from the reply (e.g. a replica whose master was forgotten).
 * A master without slots is still a shard (one that holds no data now), as in CLUSTER SHARDS: a
 * shard drained by a reshard keeps existing and keeps its name.
 */
export function localShard(
  nodes: ClusterNode[],
  myId: string,
  nativeShardId: string | undefined,
): ClusterShard | undefined {
  const me = nodes.find((n) => n.id === myId);
  if (!me) return undefined;
  const master = me.masterId ? nodes.find((n) => n.id === me.masterId) : me;
  if (!master) return undefined;
  return {
    id: nativeShardId ?? derivedShardId(nodes, master.id),
    slots: master.slots.join(','),
    isMaster: master === me,
  };
}

/** Whether an error reply means the server has no CLUSTER MYSHARDID (Redis before 7.2). */
export function isUnknownSubcommand(message: string): boolean {
  return /unknown subcommand/i.test(message);
}

/** Whether an error reply is an ACL refusal (NOPERM), e.g. a user without +cluster|myshardid. */
export function isPermissionDenied(message: string): boolean {
  return /^NOPERM\b/.test(message);
}
