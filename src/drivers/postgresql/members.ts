/**
 * The members of a PostgreSQL node's replication tree as the node itself knows them (GET /discover).
 * Pure: the row of MEMBERS_QUERY in, a MemberList out.
 *
 * What a node can know, honestly:
 *  - A standby knows its upstream exactly: pg_stat_wal_receiver sender_host / sender_port, the
 *    address it streams from (from primary_conninfo). Streaming over a Unix socket means the
 *    upstream runs on the standby's own machine: the seed's host with sender_port.
 *  - Any node lists the standbys streaming from it (pg_stat_replication), but only with their CLIENT
 *    side: client_addr and an ephemeral client_port, never the port the standby listens on. So a
 *    standby is listed only where it says its address itself: an application_name of the form
 *    `host:port` (set in the standby's primary_conninfo, or its cluster_name, which the WAL receiver
 *    uses as application_name when primary_conninfo names none). Other standbys are counted as
 *    members without an address; the exporter never guesses a port.
 *  - A standby does not know its siblings (the other standbys of its upstream): incomplete.
 * pg_basebackup's WAL senders (state 'backup') are not members.
 */
import type { Member, MemberList } from '../../core/model';

/** Everything in one statement; the pg_monitor role may read all of it (docs/postgresql.md). */
export const MEMBERS_QUERY = `
SELECT
  pg_is_in_recovery() AS in_recovery,
  r.sender_host,
  r.sender_port,
  (SELECT coalesce(json_agg(json_build_object(
      'application_name', application_name,
      'client_addr', host(client_addr),
      'state', state)), '[]'::json)
    FROM pg_stat_replication) AS standbys
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`;

export interface StandbyRow {
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
}

export interface MembersRow {
  in_recovery: boolean;
  sender_host: string | null;
  sender_port: number | null;
  standbys: StandbyRow[] | null;
}

/** `host:port` (IPv6 in brackets) in an application_name, or undefined. */
export function addressFromApplicationName(name: string | null): { host: string; port: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(name ?? '');
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export function postgresMembers(row: MembersRow, self: { host: string; port: number }): MemberList {
  const members: Member[] = [
    {
      ...self,
      role: row.in_recovery ? 'secondary' : 'primary',
      nativeRole: row.in_recovery ? 'standby' : 'primary',
      self: true,
    },
  ];
  let withoutAddress = 0;
  if (row.in_recovery) {
    if (row.sender_host && row.sender_port) {
      // Its upstream: the primary, unless this standby cascades from another standby.
      const host = row.sender_host.startsWith('/') ? self.host : row.sender_host;
      members.push({ host, port: row.sender_port, role: 'unknown', nativeRole: 'upstream' });
    } else {
      withoutAddress++;
    }
  }
  for (const standby of row.standbys ?? []) {
    if (standby.state === 'backup') continue;
    const address = addressFromApplicationName(standby.application_name);
    if (address) members.push({ ...address, role: 'secondary', nativeRole: 'standby' });
    else withoutAddress++;
  }
  const reasons: string[] = [];
  if (row.in_recovery) {
    reasons.push(
      'a standby knows its upstream and its own standbys, not its siblings: use the primary as the seed',
    );
  }
  if (withoutAddress > 0) {
    reasons.push('a standby is listed only when its application_name (or cluster_name) is its host:port');
  }
  return {
    members,
    complete: reasons.length === 0,
    reason: reasons.length > 0 ? reasons.join('; ') : undefined,
    withoutAddress:
      withoutAddress > 0
        ? {
            count: withoutAddress,
            reason:
              row.in_recovery && !row.sender_host
                ? 'no WAL receiver, or a standby without host:port as application_name'
                : 'standby without host:port as application_name',
          }
        : undefined,
  };
}
