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
 *    id joins the shard. The moment of a CLUSTER FAILOVER when the new master does not list its old
 *    master as its replica yet does not rename the shard (DerivedShardIds).
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

/** The shard of a master: the master and every node listed as its replica (failed ones too). */
export function shardMembers(nodes: ClusterNode[], masterId: string): string[] {
  const replicas = known(nodes)
    .filter((n) => n.masterId === masterId && n.id !== masterId)
    .map((n) => n.id);
  return [masterId, ...replicas];
}

/** Redis 7.0's shard id: the lowest node id among the master and its replicas (failed ones too). */
export function derivedShardId(nodes: ClusterNode[], masterId: string): string {
  return lowest(shardMembers(nodes, masterId))!;
}

/** At most this many collections in a row keep a shard's name through a failover's passing view. */
export const MAX_HOLD_COLLECTIONS = 10;

/**
 * Publishes Redis 7.0's derived shard ids without passing names. Each node learns a failover's new
 * roles at its own moment (gossip): right after a CLUSTER FAILOVER the new master may still list its
 * old master as a master (without slots, not failed) rather than as its replica, and would name the
 * shard after its members without it. While a member of the shard as last published is in that
 * state, the last name is kept (for at most MAX_HOLD_COLLECTIONS collections); a member that failed
 * (a killed master replaced by its replica), was forgotten or follows another master has left, and
 * the new name is published at once. A node that joined another shard takes that shard's name.
 */
export class DerivedShardIds {
  private published?: { id: string; members: string[] };
  private held = 0;

  next(nodes: ClusterNode[], masterId: string): string {
    const members = shardMembers(nodes, masterId);
    const id = lowest(members)!;
    const last = this.published;
    if (last && id !== last.id && last.members.includes(masterId) && this.held < MAX_HOLD_COLLECTIONS) {
      const passing = last.members
        .filter((m) => !members.includes(m))
        .some((m) => {
          const n = nodes.find((x) => x.id === m);
          return (
            n !== undefined &&
            n.flags.includes('master') &&
            !n.flags.some((f) => f === 'fail' || f === 'fail?') &&
            n.slots.length === 0
          );
        });
      if (passing) {
        this.held++;
        return last.id;
      }
    }
    this.held = 0;
    this.published = { id, members };
    return id;
  }
}

/**
 * The local node's shard: its own (if master) or its master's, named `name`: the server's own shard
 * id (CLUSTER MYSHARDID), or a function of the master's id (derivedShardId, or the name a
 * DerivedShardIds publishes). Undefined when the local
 * node or its master is missing from the reply (e.g. a replica whose master was forgotten).
 * A master without slots is still a shard (one that holds no data now), as in CLUSTER SHARDS: a
 * shard drained by a reshard keeps existing and keeps its name.
 */
export function localShard(
  nodes: ClusterNode[],
  myId: string,
  name: string | ((masterId: string) => string),
): ClusterShard | undefined {
  const me = nodes.find((n) => n.id === myId);
  if (!me) return undefined;
  const master = me.masterId ? nodes.find((n) => n.id === me.masterId) : me;
  if (!master) return undefined;
  return {
    id: typeof name === 'string' ? name : name(master.id),
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
