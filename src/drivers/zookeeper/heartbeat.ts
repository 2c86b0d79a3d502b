/**
 * Heartbeat mode for ZooKeeper (docs/zookeeper.md "Heartbeat mode"): where the record lives, its
 * content, its ACL, and the write (setData, creating the znodes the first time).
 */
import type { HeartbeatRecord } from '../../core/model';
import { formatHeartbeatJson, parseHeartbeatJson } from '../shared/heartbeat-json';
import { ZooKeeperReplyError, ZooKeeperSession } from './session';
import { encodeCreate, encodeSetData, ZK_ERR, ZK_PERM, ZkAcl, zkErrorName } from './wire';
/** The exporter's own namespace (first path element): excluded from reads and writes. */
export const HEARTBEAT_NAMESPACE = 'datastore_exporter';
export const HEARTBEAT_PARENT = `/${HEARTBEAT_NAMESPACE}`;
/** The heartbeat znode: `{"t": <unix seconds>, "w": "<writer node_id>"}`, written by the leader. */
export const HEARTBEAT_PATH = `${HEARTBEAT_PARENT}/heartbeat`;

/** The heartbeat znode's content: `{"t": <unix seconds>, "w": "<writer node_id>"}`. */
export function encodeHeartbeat(record: HeartbeatRecord): Buffer {
  return Buffer.from(formatHeartbeatJson(record), 'utf8');
}

/** The record in a heartbeat znode, or undefined if it holds anything else (never throws). */
export function parseHeartbeat(data: Buffer | undefined): HeartbeatRecord | undefined {
  return parseHeartbeatJson(data?.toString('utf8'))?.record;
}

/**
 * ACL of the znodes the exporter creates. With digest credentials in the target URL: everything for
 * the authenticated user (scheme `auth`), read for anyone (the heartbeat is a timestamp, and any
 * monitoring user may want to read it). Without: open (world:anyone), as the tree of a server without
 * authentication is anyway.
 */
export function heartbeatAcl(username: string | undefined): ZkAcl[] {
  const world = { scheme: 'world', id: 'anyone' };
  return username === undefined
    ? [{ perms: ZK_PERM.all, ...world }]
    : [
        { perms: ZK_PERM.all, scheme: 'auth', id: '' },
        { perms: ZK_PERM.read, ...world },
      ];
}

export function replyError(code: number, what: string): ZooKeeperReplyError {
  const hint =
    code === ZK_ERR.noAuth
      ? ` (the znode's ACL does not allow the exporter's identity; see docs/zookeeper.md "Heartbeat mode")`
      : '';
  return new ZooKeeperReplyError(code, `zookeeper refused heartbeat ${what}: ${zkErrorName(code)}${hint}`);
}

/**
 * setData of the heartbeat; the first time (NONODE) creates the parent and the znode. Creating races
 * with other exporters (after a failover, two may write for one interval): NODEEXISTS is success.
 */
export async function writeHeartbeat(session: ZooKeeperSession, data: Buffer, acl: ZkAcl[]): Promise<void> {
  const reply = await session.request(
    (xid) => encodeSetData(xid, HEARTBEAT_PATH, data),
    `setData ${HEARTBEAT_PATH}`,
  );
  if (reply.err === ZK_ERR.noNode) {
    for (const [path, content] of [
      [HEARTBEAT_PARENT, Buffer.alloc(0)],
      [HEARTBEAT_PATH, data],
    ] as const) {
      const created = await session.request((xid) => encodeCreate(xid, path, content, acl), `create ${path}`);
      if (created.err !== ZK_ERR.ok && created.err !== ZK_ERR.nodeExists) {
        throw replyError(created.err, `create ${path}`);
      }
    }
    return;
  }
  if (reply.err !== ZK_ERR.ok) throw replyError(reply.err, `setData ${HEARTBEAT_PATH}`);
}
