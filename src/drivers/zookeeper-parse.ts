/**
 * Pure parsers for ZooKeeper's four-letter-word replies (`srvr`, `mntr`, `conf`), 3.4 to 3.9, and
 * the few jute records of the client protocol that heartbeat mode needs (see the second half).
 *
 * The 4lw replies are plain text whose fields vary by version (3.6 added the metrics-provider lines
 * to `mntr`, 3.5 added `membership:` to `conf`, leaders append `Proposal sizes` to `srvr`...). These
 * parsers never throw: unknown or malformed lines are skipped, and a missing field is `undefined`,
 * so a new ZooKeeper release adding lines cannot break collection.
 */
import type { HeartbeatRecord, Role } from '../model';

/** What a 4lw reply says when it is not the data asked for. */
export type ReplyProblem = 'not-whitelisted' | 'not-serving' | 'empty';

/**
 * Recognises the replies that carry no data:
 *  - 3.5+ answers a command missing from `4lw.commands.whitelist` with
 *    "<cmd> is not executed because it is not in the whitelist.";
 *  - a server without a running ZooKeeperServer (leader election, lost quorum, follower still
 *    syncing) answers "This ZooKeeper instance is not currently serving requests";
 *  - older servers, and some proxies, just close the socket on a command they refuse.
 */
export function replyProblem(text: string): ReplyProblem | undefined {
  if (/is not executed because it is not in the whitelist/i.test(text)) return 'not-whitelisted';
  if (/not currently serving requests/i.test(text)) return 'not-serving';
  if (text.trim() === '') return 'empty';
  return undefined;
}

export interface SrvrReply {
  /** The raw text after "Zookeeper version:", e.g. "3.8.0-5a02a05e..., built on 2022-02-25 08:49 UTC". */
  rawVersion?: string;
  /** The server state: leader, follower, observer, standalone, read-only... */
  mode?: string;
  /** Last zxid this server applied (epoch in the high 32 bits, counter in the low 32). */
  zxid?: bigint;
  /** Open client connections, the 4lw connection asking included. */
  connections?: number;
}

/** `srvr` (and `stat`): "Key: value" lines. */
export function parseSrvr(text: string): SrvrReply {
  const reply: SrvrReply = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (key) {
      case 'zookeeper version':
        reply.rawVersion = value;
        break;
      case 'mode':
        if (value) reply.mode = value;
        break;
      case 'zxid':
        reply.zxid = parseZxid(value);
        break;
      case 'connections':
        reply.connections = nonNegativeInteger(value);
        break;
    }
  }
  return reply;
}

/** "0x100000002" -> 4294967298n; anything else (garbage, negative, > 64 bits) -> undefined. */
export function parseZxid(text: string): bigint | undefined {
  const m = /^0x([0-9a-f]{1,16})$/i.exec(text.trim());
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** A zxid's two halves: the leader epoch that proposed it, and the counter within that epoch. */
export function splitZxid(zxid: bigint): { epoch: bigint; counter: bigint } {
  return { epoch: zxid >> 32n, counter: zxid & 0xffffffffn };
}

/**
 * `mntr`: one "zk_key<TAB>value" per line. Keys are kept as written; a line without a tab is split
 * at its first whitespace (some proxies and copies of the output turn tabs into spaces).
 */
export function parseMntr(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\S+)(?:\t|\s+)(.*)$/.exec(line.trimEnd());
    if (!m || !m[1]!.startsWith('zk_')) continue;
    fields.set(m[1]!, m[2]!.trim());
  }
  return fields;
}

/** A numeric `mntr` field ("3", "3.0", "74.3333"), or undefined when absent or not a finite number. */
export function mntrNumber(mntr: Map<string, string>, key: string): number | undefined {
  const raw = mntr.get(key);
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

/** `conf`: "key=value" lines; `membership:` and the `server.N=` lines under it are kept as keys too. */
export function parseConf(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    fields.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return fields;
}

/** `conf` serverId (the `myid`), or undefined when absent or not a non-negative integer. */
export function confServerId(conf: Map<string, string>): number | undefined {
  return nonNegativeInteger(conf.get('serverId') ?? '');
}

/**
 * The release from the version text: "3.8.0-5a02a05e..., built on ..." -> "3.8.0",
 * "3.5.4-beta-7f51e5b6..., built on ..." -> "3.5.4-beta", Debian's "3.8.0-${mvngit.commit.id}" ->
 * "3.8.0". Text that does not start with a dotted version is returned up to its first comma.
 */
export function parseVersion(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const m = /^v?(\d+(?:\.\d+)+(?:-(?:alpha|beta)\b)?)/i.exec(text);
  if (m) return m[1];
  const head = text.split(',')[0]!.trim();
  return head === '' ? undefined : head;
}

/**
 * Server state -> model role:
 *  - leader -> primary: it orders every write (ZAB proposals) for the whole data tree;
 *  - follower -> secondary: it votes, applies the leader's log and can become leader;
 *  - standalone -> primary: a single server owns the data alone;
 *  - observer -> unknown: it applies the leader's log but never votes and can never become leader,
 *    so it adds nothing to write durability or failover. The model's roles are primary and the
 *    replicas that back it; counting observers as secondaries would make "how many secondaries"
 *    alerts count nodes that cannot replace the leader. The raw mode stays in nativeRole;
 *  - anything else (read-only, a future state) -> unknown.
 */
export function roleOfMode(mode: string | undefined): Role {
  switch (mode?.trim().toLowerCase()) {
    case 'leader':
    case 'standalone':
      return 'primary';
    case 'follower':
      return 'secondary';
    default:
      return 'unknown';
  }
}

/** Read and write operations from `mntr`, where the server counts them. */
export interface OperationCounts {
  readsTotal?: number;
  writesTotal?: number;
}

/** 3.6+ ServerMetrics summary names, present in every `mntr` of a server that has per-namespace counts. */
const SERVER_METRICS_MARKERS = ['zk_cnt_updatelatency', 'zk_updatelatency_count'];

/**
 * Reads and writes from ZooKeeper 3.6+'s per-namespace summaries (a namespace is the first path
 * element: /app/x counts under "app"). DataTree counts:
 *  - reads: getData, exists and getChildren answered by THIS server (client pings, session set-up
 *    and reads of "/" itself are not counted);
 *  - writes: create, delete and setData applied to this server's data tree, i.e. on every member
 *    for every committed write (replicated writes included), sub-operations of a multi included.
 * Default metrics provider: `zk_cnt_<ns>_read_per_namespace`; Prometheus metrics provider (not
 * packaged by Debian, format from its source): `zk_read_per_namespace_count{key="<ns>"}`.
 * A server without ServerMetrics (3.5 and older) yields no counts at all; a 3.6+ server that has
 * seen no namespace yet yields zeros. `excludedNamespaces` are left out: the exporter's own
 * heartbeat namespace, so that its writes (on every member) and reads are not counted as the users'.
 */
export function operationCounts(
  mntr: Map<string, string>,
  excludedNamespaces: readonly string[] = [],
): OperationCounts {
  if (!SERVER_METRICS_MARKERS.some((k) => mntr.has(k))) return {};
  let readsTotal = 0;
  let writesTotal = 0;
  for (const [key, raw] of mntr) {
    const m =
      /^zk_cnt_(.+)_(read|write)_per_namespace$/.exec(key) ??
      /^zk_()(read|write)_per_namespace_count\{(.*)\}$/.exec(key);
    if (!m) continue;
    const namespace = m[1] || /(?:^|,)key="([^"]*)"/.exec(m[3] ?? '')?.[1];
    if (namespace !== undefined && excludedNamespaces.includes(namespace)) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) continue;
    if (m[2] === 'read') readsTotal += n;
    else writesTotal += n;
  }
  return { readsTotal, writesTotal };
}

function nonNegativeInteger(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// The ZooKeeper client protocol (jute records, big-endian, every packet prefixed by its length),
// for exactly what heartbeat mode does: open a session, authenticate (digest), create, setData,
// getData, ping, close. Field layouts from zookeeper.jute (stable since 3.0; 3.4+ adds the
// read-only flag to the connect records). Encoders return whole framed packets; decoders never
// trust a length they were sent (a truncated or hostile frame is an error, not an over-read).

/** Operation codes (ZooDefs.OpCode). */
export const ZK_OP = {
  create: 1,
  getData: 4,
  setData: 5,
  ping: 11,
  auth: 100,
  closeSession: -11,
} as const;

/** Reserved xids of replies that are not answers to numbered requests. */
export const ZK_XID = { watchEvent: -1, ping: -2, auth: -4 } as const;

/** Permission bits of an ACL (ZooDefs.Perms). */
export const ZK_PERM = { read: 1, write: 2, create: 4, delete: 8, admin: 16, all: 31 } as const;

/** The error codes the driver acts on or explains (KeeperException.Code). */
export const ZK_ERR = {
  ok: 0,
  noNode: -101,
  noAuth: -102,
  nodeExists: -110,
  sessionExpired: -112,
  authFailed: -115,
} as const;

const ERROR_NAMES: Record<number, string> = {
  [-101]: 'NONODE',
  [-102]: 'NOAUTH',
  [-103]: 'BADVERSION',
  [-108]: 'NOTEMPTY',
  [-110]: 'NODEEXISTS',
  [-112]: 'SESSIONEXPIRED',
  [-114]: 'INVALIDACL',
  [-115]: 'AUTHFAILED',
  [-118]: 'SESSIONMOVED',
  [-119]: 'NOTREADONLY',
  [-127]: 'THROTTLEDOP',
  [-8]: 'BADARGUMENTS',
  [-13]: 'NEWCONFIGNOQUORUM',
  [-14]: 'RECONFIGINPROGRESS',
};

/** "NOAUTH (-102)", for error messages. */
export function zkErrorName(code: number): string {
  return `${ERROR_NAMES[code] ?? 'error'} (${code})`;
}

export interface ZkAcl {
  perms: number;
  scheme: string;
  id: string;
}

/** Builds a jute record (big-endian ints, length-prefixed buffers and strings). */
export class JuteWriter {
  private readonly parts: Buffer[] = [];
  int(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    this.parts.push(b);
    return this;
  }
  long(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    this.parts.push(b);
    return this;
  }
  bool(v: boolean): this {
    this.parts.push(Buffer.from([v ? 1 : 0]));
    return this;
  }
  buffer(b: Buffer): this {
    return this.int(b.length).raw(b);
  }
  string(s: string): this {
    return this.buffer(Buffer.from(s, 'utf8'));
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  /** The record with its 4-byte length prefix: how the protocol frames every packet. */
  framed(): Buffer {
    const body = Buffer.concat(this.parts);
    const length = Buffer.alloc(4);
    length.writeInt32BE(body.length);
    return Buffer.concat([length, body]);
  }
}

/** Reads a jute record; any read past the end throws (the frame was truncated or is not jute). */
export class JuteReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (n < 0 || this.at + n > this.buf.length) throw new Error('zookeeper reply is truncated');
  }
  int(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.at);
    this.at += 4;
    return v;
  }
  long(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.at);
    this.at += 8;
    return v;
  }
  /** A length-prefixed buffer; length -1 is jute's null. */
  buffer(): Buffer | undefined {
    const length = this.int();
    if (length === -1) return undefined;
    this.need(length);
    const v = this.buf.subarray(this.at, this.at + length);
    this.at += length;
    return v;
  }
  get remaining(): number {
    return this.buf.length - this.at;
  }
}

/**
 * ConnectRequest: a new session (session id 0, zero password), read-only not allowed: a server cut
 * off from its quorum must not hand out a session whose reads look current.
 */
export function encodeConnectRequest(sessionTimeoutMs: number): Buffer {
  return new JuteWriter()
    .int(0) // protocol version
    .long(0n) // last zxid seen: none, a new session
    .int(sessionTimeoutMs)
    .long(0n) // session id: new
    .buffer(Buffer.alloc(16)) // password of a new session
    .bool(false) // read-only sessions not allowed
    .framed();
}

export interface ConnectResponse {
  /** Negotiated session timeout (ms); 0 means the server refused (e.g. an expired session). */
  sessionTimeoutMs: number;
  sessionId: bigint;
}

export function decodeConnectResponse(frame: Buffer): ConnectResponse {
  const r = new JuteReader(frame);
  r.int(); // protocol version
  const sessionTimeoutMs = r.int();
  const sessionId = r.long();
  r.buffer(); // password (only needed to resume the session, which this client never does)
  return { sessionTimeoutMs, sessionId };
}

/** A request packet: RequestHeader (xid, type) followed by the request record. */
export function encodeRequest(xid: number, op: number, record: Buffer = Buffer.alloc(0)): Buffer {
  return new JuteWriter().int(xid).int(op).raw(record).framed();
}

/** AuthPacket (xid -4): e.g. scheme 'digest', auth 'user:password'. */
export function encodeAuth(scheme: string, auth: string): Buffer {
  return encodeRequest(
    ZK_XID.auth,
    ZK_OP.auth,
    new JuteWriter().int(0).string(scheme).buffer(Buffer.from(auth, 'utf8')).framed().subarray(4),
  );
}

export function encodeGetData(xid: number, path: string): Buffer {
  // No watch: the driver polls; a watch would be server state kept for nothing.
  return encodeRequest(xid, ZK_OP.getData, new JuteWriter().string(path).bool(false).framed().subarray(4));
}

/** SetDataRequest with version -1: overwrite whatever version is there. */
export function encodeSetData(xid: number, path: string, data: Buffer): Buffer {
  return encodeRequest(
    xid,
    ZK_OP.setData,
    new JuteWriter().string(path).buffer(data).int(-1).framed().subarray(4),
  );
}

/** CreateRequest of a persistent node (flags 0). */
export function encodeCreate(xid: number, path: string, data: Buffer, acl: readonly ZkAcl[]): Buffer {
  const w = new JuteWriter().string(path).buffer(data).int(acl.length);
  for (const a of acl) w.int(a.perms).string(a.scheme).string(a.id);
  return encodeRequest(xid, ZK_OP.create, w.int(0).framed().subarray(4));
}

export interface ReplyHeader {
  xid: number;
  /** The server's last applied zxid when it answered (for a write: that write's zxid). */
  zxid: bigint;
  err: number;
  /** The response record after the header. */
  body: Buffer;
}

export function decodeReplyHeader(frame: Buffer): ReplyHeader {
  const r = new JuteReader(frame);
  const xid = r.int();
  const zxid = r.long();
  const err = r.int();
  return { xid, zxid, err, body: frame.subarray(16) };
}

/** The fields of a znode's Stat the driver uses. */
export interface ZkStat {
  /** zxid of the last setData (or of the create). */
  mzxid: bigint;
  /** Number of setData since the node was created. */
  version: number;
}

function decodeStat(r: JuteReader): ZkStat {
  r.long(); // czxid
  const mzxid = r.long();
  r.long(); // ctime
  r.long(); // mtime
  const version = r.int();
  r.int(); // cversion
  r.int(); // aversion
  r.long(); // ephemeralOwner
  r.int(); // dataLength
  r.int(); // numChildren
  r.long(); // pzxid
  return { mzxid, version };
}

/** GetDataResponse: the data (undefined for a node holding null) and its Stat. */
export function decodeGetDataResponse(body: Buffer): { data?: Buffer; stat: ZkStat } {
  const r = new JuteReader(body);
  const data = r.buffer();
  return { data, stat: decodeStat(r) };
}

/**
 * Splits a byte stream into length-prefixed frames. A frame longer than `maxFrameBytes` (jute's own
 * default limit is 1 MB; heartbeat replies are ~100 bytes) means the stream is not what we think:
 * an error, not an allocation.
 */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly maxFrameBytes: number) {}
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    while (this.pending.length >= 4) {
      const length = this.pending.readInt32BE(0);
      if (length < 0 || length > this.maxFrameBytes) {
        throw new Error(`zookeeper sent a frame of ${length} bytes: not the ZooKeeper client protocol?`);
      }
      if (this.pending.length < 4 + length) break;
      frames.push(this.pending.subarray(4, 4 + length));
      this.pending = this.pending.subarray(4 + length);
    }
    return frames;
  }
}

/** The heartbeat znode's content: `{"t": <unix seconds>, "w": "<writer node_id>"}`. */
export function encodeHeartbeat(record: HeartbeatRecord): Buffer {
  return Buffer.from(JSON.stringify({ t: record.timestampSeconds, w: record.writerNodeId }), 'utf8');
}

/** The record in a heartbeat znode, or undefined if it holds anything else (never throws). */
export function parseHeartbeat(data: Buffer | undefined): HeartbeatRecord | undefined {
  if (data === undefined) return undefined;
  try {
    const v = JSON.parse(data.toString('utf8')) as { t?: unknown; w?: unknown };
    return typeof v.t === 'number' && Number.isFinite(v.t) && typeof v.w === 'string'
      ? { timestampSeconds: v.t, writerNodeId: v.w }
      : undefined;
  } catch {
    return undefined;
  }
}
