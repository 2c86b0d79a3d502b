/**
 * The members of a MySQL / MariaDB node's replication topology as the node itself knows them
 * (GET /discover). Pure: result rows in, a MemberList out.
 *
 *  - Its sources: every replication channel's Source_Host / Master_Host and port (the address the
 *    replica was told with CHANGE MASTER / CHANGE REPLICATION SOURCE).
 *  - Its replicas: SHOW SLAVE HOSTS (MariaDB; MySQL < 8.0.22) / SHOW REPLICAS (MySQL >= 8.0.22): each
 *    connected replica's report_host (else, on MariaDB, the address it connects from) and its
 *    report_port (default: its own port). These need a privilege beyond monitoring: REPLICATION
 *    MASTER ADMIN (MariaDB >= 10.5.2) or REPLICATION SLAVE (MySQL). Without it the replicas are
 *    counted (MariaDB's Slaves_connected) and left out.
 *  - A replica does not know its siblings; Group Replication's membership is not read: incomplete.
 */
import type { Member, MemberList } from '../../core/model';
import {
  isGroupReplicationChannel,
  nativeRoleWords,
  toNumber,
  type ReplicaChannel,
  type ServerInfo,
} from './parse';

/** The statement listing the replicas connected to this node. */
export function replicaHostsStatement(info: ServerInfo): string {
  if (info.flavour === 'mariadb') return 'SHOW SLAVE HOSTS';
  const atLeast8022 =
    info.major > 8 || (info.major === 8 && (info.minor > 0 || (info.minor === 0 && info.patch >= 22)));
  return atLeast8022 ? 'SHOW REPLICAS' : 'SHOW SLAVE HOSTS';
}

/** What the replica-hosts statement gave: its rows, or a refusal (with Slaves_connected if known). */
export type ReplicaHosts =
  { kind: 'rows'; rows: Record<string, unknown>[] } | { kind: 'denied'; connected?: number };

function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const s = String(value).trim();
  return s === '' ? undefined : s;
}

function port(value: unknown): number | undefined {
  const n = toNumber(value);
  return n !== undefined && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

export function mysqlMembers(
  info: ServerInfo,
  channels: ReplicaChannel[],
  hosts: ReplicaHosts,
  self: { host: string; port: number },
): MemberList {
  const words = nativeRoleWords(info);
  const groupReplication = channels.some(isGroupReplicationChannel);
  const sources = channels.filter((c) => !isGroupReplicationChannel(c));
  const isReplica = sources.length > 0;
  const members: Member[] = [
    {
      ...self,
      role: groupReplication ? 'unknown' : isReplica ? 'secondary' : 'primary',
      nativeRole: groupReplication ? 'group_replication' : isReplica ? words.secondary : words.primary,
      self: true,
    },
  ];
  let withoutAddress = 0;
  for (const channel of sources) {
    const sourcePort = port(channel.sourcePort);
    if (channel.sourceHost && sourcePort) {
      // Its source: the primary, unless this replica is chained below another replica.
      members.push({
        host: channel.sourceHost,
        port: sourcePort,
        role: 'unknown',
        nativeRole: words.primary,
      });
    } else {
      withoutAddress++;
    }
  }
  const reasons: string[] = [];
  if (hosts.kind === 'rows') {
    for (const row of hosts.rows) {
      const host = text(row['Host']);
      const replicaPort = port(row['Port']);
      if (host && replicaPort) {
        members.push({ host, port: replicaPort, role: 'secondary', nativeRole: words.secondary });
      } else {
        withoutAddress++;
      }
    }
  } else {
    withoutAddress += hosts.connected ?? 0;
    reasons.push(
      `${replicaHostsStatement(info)} was refused: it needs ${info.flavour === 'mariadb' ? 'REPLICATION MASTER ADMIN' : 'REPLICATION SLAVE'} (docs/mysql.md)`,
    );
  }
  if (isReplica) reasons.push('a replica knows its sources and its own replicas, not its siblings');
  if (groupReplication) reasons.push('Group Replication membership is not read');
  return {
    members,
    complete: reasons.length === 0 && withoutAddress === 0,
    reason: reasons.length > 0 ? reasons.join('; ') : undefined,
    withoutAddress:
      withoutAddress > 0
        ? {
            count: withoutAddress,
            reason: hosts.kind === 'denied' ? 'replicas not listed (privilege)' : 'no host or port known',
          }
        : undefined,
  };
}
