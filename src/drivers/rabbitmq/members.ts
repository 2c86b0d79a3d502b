/**
 * The nodes of a RabbitMQ cluster as one node's management plugin knows them (GET /discover). Pure:
 * the `/api/overview` and `/api/nodes` replies in, a MemberList out.
 *
 * /api/overview `listeners` holds every RUNNING node's listeners; a node's management listener
 * (protocol `http`) gives the port the driver connects to. Its host is the listener's address, or,
 * when it listens on every interface (`::`, `0.0.0.0`), the host part of the node name (`rabbit@host`),
 * which is how the nodes reach each other and must resolve for the exporter too. A node of /api/nodes
 * without a running management listener (stopped, or without the plugin) is counted without an address.
 */
import type { Member, MemberList } from '../../core/model';

interface Listener {
  node?: unknown;
  protocol?: unknown;
  ip_address?: unknown;
  port?: unknown;
}

const WILDCARDS = new Set(['::', '0.0.0.0', '[::]', '']);

function parse(body: string, what: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new Error(`rabbitmq ${what} reply is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
}

export function rabbitMembers(
  overviewBody: string,
  nodesBody: string,
  self: { host: string; port: number },
): MemberList {
  const overview = parse(overviewBody, '/api/overview') as { node?: unknown; listeners?: unknown };
  const nodes = parse(nodesBody, '/api/nodes');
  const me = typeof overview.node === 'string' ? overview.node : undefined;
  const listeners = (Array.isArray(overview.listeners) ? overview.listeners : []) as Listener[];
  const byNode = new Map<string, { host: string; port: number }>();
  for (const l of listeners) {
    if (l.protocol !== 'http' || typeof l.node !== 'string' || typeof l.port !== 'number') continue;
    const ip = typeof l.ip_address === 'string' ? l.ip_address : '';
    const host = WILDCARDS.has(ip) ? l.node.slice(l.node.indexOf('@') + 1) : ip;
    if (host && !byNode.has(l.node)) byNode.set(l.node, { host, port: l.port });
  }
  const names = new Set<string>(
    (Array.isArray(nodes) ? nodes : [])
      .map((n: { name?: unknown }) => n.name)
      .filter((n): n is string => typeof n === 'string'),
  );
  for (const node of byNode.keys()) names.add(node);
  if (me) names.add(me);
  const members: Member[] = [];
  let withoutAddress = 0;
  for (const name of [...names].sort()) {
    const address = name === me ? self : byNode.get(name);
    if (!address) {
      withoutAddress++;
      continue;
    }
    // Quorum queues have leaders, nodes have no role of their own.
    const member: Member = { ...address, role: 'unknown', nativeRole: 'node' };
    if (name === me) member.self = true;
    members.push(member);
  }
  return {
    members,
    complete: withoutAddress === 0,
    reason: withoutAddress > 0 ? 'nodes without a running management listener' : undefined,
    withoutAddress:
      withoutAddress > 0 ? { count: withoutAddress, reason: 'no running management listener' } : undefined,
  };
}
