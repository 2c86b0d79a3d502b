/**
 * What a NATS server can say of its cluster's members (GET /discover): not enough to probe them. Pure:
 * the `/routez` reply in, a MemberList out.
 *
 * /routez lists the server's routes to its peers with each peer's CLUSTER address (the route port,
 * `cluster.listen`), while the driver reads the MONITORING port (`http:`), which no route, /varz or
 * JetStream reply carries. Every server could use a different one, so the exporter does not guess: the
 * answer is the seed, and its peers are counted as members without an address.
 */
import type { MemberList } from '../../core/model';

export function natsMembers(routezBody: string, self: { host: string; port: number }): MemberList {
  let routes: unknown = [];
  try {
    routes = (JSON.parse(routezBody) as { routes?: unknown }).routes ?? [];
  } catch {
    throw new Error(`nats /routez reply is not JSON: ${JSON.stringify(routezBody.slice(0, 120))}`);
  }
  // Several routes may lead to one peer (route pooling): count peers by their server id.
  const peers = new Set(
    (Array.isArray(routes) ? routes : []).map((r: { remote_id?: unknown; rid?: unknown }) =>
      String(r.remote_id ?? r.rid),
    ),
  );
  return {
    members: [{ ...self, role: 'unknown', nativeRole: 'server', self: true }],
    complete: peers.size === 0,
    reason:
      peers.size > 0
        ? "routes give the peers' cluster addresses, not their monitoring ports: list each server as a target"
        : undefined,
    withoutAddress:
      peers.size > 0 ? { count: peers.size, reason: 'route peer (monitoring port unknown)' } : undefined,
  };
}
