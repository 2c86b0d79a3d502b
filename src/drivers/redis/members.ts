/**
 * The members of a Redis node's group as the node itself knows them (GET /discover). Pure: INFO
 * fields and CLUSTER NODES text in, a MemberList out.
 *
 *  - Redis Cluster: CLUSTER NODES lists every node the cluster knows, with the address it announces
 *    (cluster-announce-ip / -port). Redis 7's optional `,hostname` is ignored: the ip is announced in
 *    every set-up. Nodes still in the handshake or without an address are left out, counted.
 *  - Replication, on a primary: itself and the replicas connected NOW (INFO `slaveN:ip=,port=`, the
 *    replica's address as the primary sees it, or replica-announce-ip/-port). A replica that is
 *    disconnected is not listed until it reconnects.
 *  - Replication, on a replica: itself, its primary (master_host/master_port, as configured on the
 *    replica) and its own replicas (chained replication). Not its siblings: incomplete.
 */
import type { Member, MemberList } from '../../core/model';
import type { ClusterNode } from './parse';

export interface SelfAddress {
  host: string;
  port: number;
}

/** `ip=127.0.0.1,port=6380,state=online,...` of an INFO `slaveN` field. */
function replicaField(value: string): { host?: string; port?: number; state?: string } {
  const fields = new Map(
    value.split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
    }),
  );
  const port = Number(fields.get('port'));
  return {
    host: fields.get('ip') || undefined,
    port: Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined,
    state: fields.get('state'),
  };
}

/** The replicas a node lists in INFO replication (`slave0`, `slave1`, ...), as secondaries. */
function listedReplicas(info: Map<string, string>): { members: Member[]; withoutAddress: number } {
  const members: Member[] = [];
  let withoutAddress = 0;
  for (const [key, value] of info) {
    if (!/^slave\d+$/.test(key)) continue;
    const replica = replicaField(value);
    if (replica.host && replica.port) {
      members.push({ host: replica.host, port: replica.port, role: 'secondary', nativeRole: 'slave' });
    } else {
      withoutAddress++;
    }
  }
  return { members, withoutAddress };
}

/** Standalone or replication (cluster_enabled:0): from INFO replication. */
export function replicationMembers(info: Map<string, string>, self: SelfAddress): MemberList {
  const role = info.get('role');
  const { members: replicas, withoutAddress } = listedReplicas(info);
  const members: Member[] = [
    {
      ...self,
      role: role === 'master' ? 'primary' : role === 'slave' ? 'secondary' : 'unknown',
      nativeRole: role,
      self: true,
    },
  ];
  let complete = true;
  let reason: string | undefined;
  if (role === 'slave') {
    const host = info.get('master_host');
    const port = Number(info.get('master_port'));
    if (host && Number.isInteger(port) && port > 0) {
      // Its primary as the replica was told it (replicaof): the primary unless chained.
      members.push({ host, port, role: 'unknown', nativeRole: 'master' });
    }
    complete = false;
    reason =
      'a replica knows its primary and its own replicas, not its siblings: use the primary as the seed';
  }
  members.push(...replicas);
  return {
    members,
    complete: complete && withoutAddress === 0,
    reason,
    withoutAddress:
      withoutAddress > 0 ? { count: withoutAddress, reason: 'replica listed without ip/port' } : undefined,
  };
}

/** `ip:port@cport[,hostname]` -> host and port; undefined when the node has no address yet. */
export function clusterNodeAddress(address: string): SelfAddress | undefined {
  const m = /^(.*):(\d+)(?:@\d+)?(?:,.*)?$/.exec(address);
  if (!m || !m[1]) return undefined;
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) return undefined;
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/** Redis Cluster: every node of CLUSTER NODES, with its shard (its master's slot ranges). */
export function clusterMembers(nodes: ClusterNode[], self: SelfAddress): MemberList {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const members: Member[] = [];
  let withoutAddress = 0;
  for (const node of nodes) {
    const isSelf = node.flags.includes('myself');
    if (node.flags.includes('handshake') || node.flags.includes('noaddr')) {
      if (!isSelf) withoutAddress++;
      continue;
    }
    const address = clusterNodeAddress(node.address) ?? (isSelf ? self : undefined);
    if (!address) {
      withoutAddress++;
      continue;
    }
    const master = node.masterId ? byId.get(node.masterId) : node;
    const isMaster = node.flags.includes('master');
    const isReplica = node.flags.includes('slave');
    members.push({
      ...address,
      role: isMaster ? 'primary' : isReplica ? 'secondary' : 'unknown',
      nativeRole: isMaster ? 'master' : isReplica ? 'slave' : node.flags.join(','),
      shard: master && master.slots.length > 0 ? master.slots.join(',') : undefined,
      self: isSelf || undefined,
    });
  }
  return {
    members,
    complete: withoutAddress === 0,
    reason: withoutAddress > 0 ? 'some nodes have no address yet (cluster handshake)' : undefined,
    withoutAddress:
      withoutAddress > 0
        ? { count: withoutAddress, reason: 'node in handshake or without address' }
        : undefined,
  };
}
