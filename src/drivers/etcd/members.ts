/**
 * The members of an etcd cluster as one member knows them (GET /discover). Pure: the JSON gateway's
 * `POST /v3/cluster/member/list` reply and the member's status in, a MemberList out.
 *
 * The member list is the cluster's own membership (raft configuration), served by the member from its
 * local copy. Each member is reached at its first client URL (the driver's port); a member added but
 * not started yet has no client URL and is counted without an address. Roles come from the asking
 * member's view: its leader is the primary, learners are unknown (as in the model), the other voting
 * members follow that leader; without a known leader every other member is unknown.
 */
import type { Member, MemberList } from '../../core/model';
import { idToHex, record, type EtcdStatus } from './parse';

/** host and port of a client URL (`http://10.0.0.1:2379`), or undefined. */
function clientAddress(url: unknown): { host: string; port: number } | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    const u = new URL(url);
    if (!u.hostname) return undefined;
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port };
  } catch {
    return undefined;
  }
}

export function etcdMembers(
  memberListBody: string,
  status: EtcdStatus,
  self: { host: string; port: number },
): MemberList {
  let json: unknown;
  try {
    json = JSON.parse(memberListBody);
  } catch {
    throw new Error(`etcd member list reply is not JSON: ${JSON.stringify(memberListBody.slice(0, 120))}`);
  }
  const raw = record(json).members;
  if (!Array.isArray(raw)) throw new Error('etcd member list reply has no members');
  const members: Member[] = [];
  let withoutAddress = 0;
  for (const entry of raw.map(record)) {
    const id = idToHex(entry.ID);
    const isSelf = id !== undefined && id === status.memberId;
    const urls = Array.isArray(entry.clientURLs) ? entry.clientURLs : [];
    const address = isSelf ? self : clientAddress(urls[0]);
    if (!address) {
      withoutAddress++;
      continue;
    }
    const learner = entry.isLearner === true;
    const leader = status.leaderId;
    const member: Member = learner
      ? { ...address, role: 'unknown', nativeRole: 'learner' }
      : leader === undefined
        ? { ...address, role: 'unknown', nativeRole: 'no-leader' }
        : id === leader
          ? { ...address, role: 'primary', nativeRole: 'leader' }
          : { ...address, role: 'secondary', nativeRole: 'follower' };
    if (isSelf) member.self = true;
    members.push(member);
  }
  return {
    members,
    complete: withoutAddress === 0,
    reason: withoutAddress > 0 ? 'members without a client URL (added, not started yet)' : undefined,
    withoutAddress: withoutAddress > 0 ? { count: withoutAddress, reason: 'no client URL' } : undefined,
  };
}
