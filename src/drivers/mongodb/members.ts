/**
 * The members of a MongoDB replica set as one member knows them (GET /discover). Pure: the `hello`
 * reply (documented fields `hosts`, `passives`, `arbiters`, `primary`, `me`, `setName`, `msg`) in,
 * a MemberList out.
 *
 *  - `hosts` are the electable members, `passives` the priority-0 ones, `arbiters` the arbiters, each
 *    as `host:port` in the replica set configuration. Hidden members are never in `hello` (by design,
 *    so that drivers do not send them reads): they are not discovered.
 *  - Roles: `primary` names the primary as this member knows it; the others are secondaries when a
 *    primary is known (hello does not give their state: one may be RECOVERING), else unknown.
 *    Arbiters hold no data: unknown, as in the model.
 *  - The seed itself (`me`) is reached at the seed's address, not at its configured name.
 *  - A mongos lists no shard member (discover each shard's replica set); a standalone is alone.
 */
import type { Member, MemberList } from '../../core/model';
import type { Doc } from './parse';

/** `host:port` or `[v6]:port` -> host and port (27017 when absent); undefined when malformed. */
export function mongoHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const port = m[2] ? Number(m[2]) : 27017;
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function names(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export function mongoMembers(hello: Doc, self: { host: string; port: number }): MemberList {
  const me = typeof hello.me === 'string' ? hello.me : undefined;
  const primary = typeof hello.primary === 'string' ? hello.primary : undefined;
  const selfRole = me !== undefined && me === primary ? 'primary' : primary ? 'secondary' : 'unknown';
  if (hello.msg === 'isdbgrid') {
    return {
      members: [{ ...self, role: 'unknown', nativeRole: 'mongos', self: true }],
      complete: false,
      reason:
        "a mongos does not list the shards' members: use a member of each shard's replica set as a seed",
    };
  }
  if (typeof hello.setName !== 'string') {
    return { members: [{ ...self, role: 'primary', nativeRole: 'standalone', self: true }], complete: true };
  }
  const arbiterOnly = hello.arbiterOnly === true;
  const members: Member[] = [
    {
      ...self,
      role: arbiterOnly ? 'unknown' : selfRole,
      nativeRole: arbiterOnly ? 'arbiter' : selfRole === 'primary' ? 'primary' : 'member',
      self: true,
    },
  ];
  let withoutAddress = 0;
  const add = (list: string[], kind: 'member' | 'passive' | 'arbiter'): void => {
    for (const name of list) {
      if (name === me) continue;
      const address = mongoHostPort(name);
      if (!address) {
        withoutAddress++;
        continue;
      }
      if (kind === 'arbiter') members.push({ ...address, role: 'unknown', nativeRole: 'arbiter' });
      else if (name === primary) members.push({ ...address, role: 'primary', nativeRole: 'primary' });
      else members.push({ ...address, role: primary ? 'secondary' : 'unknown', nativeRole: kind });
    }
  };
  add(names(hello.hosts), 'member');
  add(names(hello.passives), 'passive');
  add(names(hello.arbiters), 'arbiter');
  return {
    members,
    complete: withoutAddress === 0,
    reason: withoutAddress > 0 ? 'member names that are not host:port' : undefined,
    withoutAddress: withoutAddress > 0 ? { count: withoutAddress, reason: 'not host:port' } : undefined,
  };
}
