/**
 * The members of a ZooKeeper ensemble as one server knows them (GET /discover). Pure: the `conf`
 * fields (its `server.N=` lines: the static config, or under `membership:` the dynamic one) and the
 * server's own `srvr` Mode in, a MemberList out.
 *
 *  - A server line is `host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]`.
 *    The driver connects to the CLIENT port, which only the part after `;` gives (ZooKeeper 3.5+
 *    format). A line without it is counted as a member without an address: the exporter never
 *    guesses that every server uses the seed's client port. A wildcard client host (0.0.0.0, ::)
 *    means the quorum host.
 *  - Roles: the seed knows its own; a leader knows every other participant follows it; a follower
 *    does not know which of the others leads (unknown). Observers are 'unknown', as in the model.
 *  - A standalone server is its own ensemble.
 */
import type { Member, MemberList, Role } from '../../core/model';
import { confServerId, roleOfMode } from './parse';

export interface ServerLine {
  id: number;
  quorumHost: string;
  type: 'participant' | 'observer';
  client?: { host: string; port: number };
}

/** One `server.N=` value; undefined when it is not a server line. */
export function parseServerLine(id: number, value: string): ServerLine | undefined {
  const [quorum = '', client] = value.split(';', 2);
  const m = /^(\[[^\]]+\]|[^:]+):\d+:\d+(?::(participant|observer))?$/.exec(quorum.trim());
  if (!m) return undefined;
  const quorumHost = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const line: ServerLine = { id, quorumHost, type: (m[2] as ServerLine['type']) ?? 'participant' };
  if (client !== undefined) {
    const c = /^(?:(\[[^\]]+\]|[^:]*):)?(\d+)$/.exec(client.trim());
    const port = c ? Number(c[2]) : 0;
    if (c && port > 0 && port < 65536) {
      const host = c[1]?.replace(/^\[(.*)\]$/, '$1');
      const wildcard = !host || host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
      line.client = { host: wildcard ? quorumHost : host, port };
    }
  }
  return line;
}

export function zookeeperMembers(
  conf: Map<string, string>,
  mode: string | undefined,
  self: { host: string; port: number },
): MemberList {
  const selfRole = roleOfMode(mode);
  const members: Member[] = [{ ...self, role: selfRole, nativeRole: mode, self: true }];
  if (mode === 'standalone') return { members, complete: true };
  const myId = confServerId(conf);
  let withoutAddress = 0;
  for (const [key, value] of conf) {
    const m = /^server\.(\d+)$/.exec(key);
    if (!m) continue;
    const id = Number(m[1]);
    if (id === myId) continue;
    const line = parseServerLine(id, value);
    if (!line?.client) {
      withoutAddress++;
      continue;
    }
    let role: Role = 'unknown';
    let nativeRole: string = line.type;
    if (line.type === 'participant' && mode === 'leader') {
      role = 'secondary';
      nativeRole = 'follower';
    }
    members.push({ ...line.client, role, nativeRole });
  }
  return {
    members,
    complete: withoutAddress === 0,
    reason:
      withoutAddress > 0
        ? 'server lines without a client address: write them as server.N=host:2888:3888;2181'
        : undefined,
    withoutAddress:
      withoutAddress > 0 ? { count: withoutAddress, reason: 'server line without ;clientPort' } : undefined,
  };
}
