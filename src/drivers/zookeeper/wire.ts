/**
 * The ZooKeeper client protocol (jute records, big-endian, every packet prefixed by its length),
 * for exactly what heartbeat mode does: open a session, authenticate (digest), create, setData,
 * getData, ping, close. Field layouts from zookeeper.jute (stable since 3.0; 3.4+ adds the
 * read-only flag to the connect records). Encoders return whole framed packets; decoders never
 * trust a length they were sent (a truncated or hostile frame is an error, not an over-read).
 */
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
