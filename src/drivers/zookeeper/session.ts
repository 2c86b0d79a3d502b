/**
 * A minimal ZooKeeper client session (connect, digest auth, create, setData, getData, ping, close)
 * for heartbeat mode; the jute records it sends are in wire.ts.
 */
import { connect, type Socket } from 'node:net';
import {
  decodeConnectResponse,
  decodeReplyHeader,
  encodeAuth,
  encodeConnectRequest,
  encodeRequest,
  FrameSplitter,
  ReplyHeader,
  ZK_ERR,
  ZK_OP,
  ZK_XID,
  zkErrorName,
} from './wire';
/**
 * Session timeout asked for; the server clamps it to [2, 20] x tickTime (4-40 s by default). A
 * session outlives a crashed exporter by this much; it holds no ephemeral node, so nothing waits on it.
 */
export const SESSION_TIMEOUT_MS = 30000;

/** jute's default jute.maxbuffer; heartbeat replies are ~150 bytes. */
const MAX_FRAME_BYTES = 1024 * 1024;

/** An error reply of the server (NOAUTH, NONODE...), as opposed to a lost or hung connection. */
export class ZooKeeperReplyError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface PendingRequest {
  what: string;
  resolve(reply: ReplyHeader): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One ZooKeeper client session on one TCP connection to ONE server (never another: the model reads
 * the local server's replica). Requests are pipelined and answered in order, matched by xid; each
 * has its own deadline, and a deadline that passes ends the whole session (a server that does not
 * answer one request will not answer the next: the queue behind it must not wait too). The session is
 * kept alive with a ping every third of the negotiated timeout, as ZooKeeper's own client does.
 * Any failure ends the session for good: the driver opens a new one (never resumes: a session id and
 * password would be more state to get right, for nothing the heartbeat needs).
 */
export class ZooKeeperSession {
  private readonly pending = new Map<number, PendingRequest>();
  private readonly frames = new FrameSplitter(MAX_FRAME_BYTES);
  private xid = 0;
  private failure?: Error;
  private pingTimer?: NodeJS.Timeout;
  private lastSentAt = Date.now();
  private sessionTimeoutMs = 0;
  /** Set while the connect handshake runs: its reply is the first frame and has no reply header. */
  private handshake?: { resolve(): void; reject(err: Error): void };

  private constructor(
    private readonly sock: Socket,
    private readonly timeoutMs: number,
  ) {
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = this.frames.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      for (const frame of frames) this.dispatch(frame);
    });
    sock.on('error', (err) => this.fail(new Error(`zookeeper session: ${err.message}`)));
    sock.on('close', () => this.fail(new Error('zookeeper closed the session connection')));
  }

  /**
   * Connects, opens a new session, and authenticates with `digest` if credentials are given. The
   * whole handshake has one deadline (`connectTimeoutMs`): on a follower, session creation is a
   * transaction that waits for the leader's commit, so it takes as long as the replication lag.
   */
  static async open(options: {
    host: string;
    port: number;
    timeoutMs: number;
    connectTimeoutMs: number;
    /** `user:password` for the digest scheme. */
    digest?: string;
    /** Sees the socket before any byte is read (the driver's read budget counts what it receives). */
    watch?: (sock: Socket) => void;
  }): Promise<ZooKeeperSession> {
    const sock = connect({ host: options.host, port: options.port });
    options.watch?.(sock);
    const session = new ZooKeeperSession(sock, options.timeoutMs);
    const deadline = setTimeout(
      () =>
        session.fail(new Error(`zookeeper session handshake timed out after ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    deadline.unref();
    try {
      await new Promise<void>((resolve, reject) => {
        session.handshake = { resolve, reject };
        sock.once('connect', () => sock.write(encodeConnectRequest(SESSION_TIMEOUT_MS)));
      });
      if (options.digest !== undefined) {
        const reply = await session.send(ZK_XID.auth, encodeAuth('digest', options.digest), 'authentication');
        if (reply.err !== ZK_ERR.ok) {
          throw new ZooKeeperReplyError(
            reply.err,
            `zookeeper refused the digest credentials of the target URL: ${zkErrorName(reply.err)}`,
          );
        }
      }
    } catch (err) {
      session.fail(err as Error);
      throw err;
    } finally {
      clearTimeout(deadline);
    }
    session.startPings();
    return session;
  }

  get isOpen(): boolean {
    return this.failure === undefined;
  }

  private dispatch(frame: Buffer): void {
    const handshake = this.handshake;
    if (handshake) {
      this.handshake = undefined;
      try {
        const response = decodeConnectResponse(frame);
        // Timeout 0: the server refused the session (it does so for an expired session id).
        if (response.sessionTimeoutMs <= 0) throw new Error('zookeeper refused to open a session');
        this.sessionTimeoutMs = response.sessionTimeoutMs;
        handshake.resolve();
      } catch (err) {
        this.fail(err as Error);
        handshake.reject(err as Error);
      }
      return;
    }
    let reply: ReplyHeader;
    try {
      reply = decodeReplyHeader(frame);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    // Watch events (xid -1) cannot come: the driver sets no watch.
    const request = this.pending.get(reply.xid);
    if (!request) return;
    this.pending.delete(reply.xid);
    clearTimeout(request.timer);
    if (reply.err === ZK_ERR.sessionExpired) {
      this.fail(new Error('zookeeper session expired'));
      request.reject(new Error('zookeeper session expired'));
      return;
    }
    request.resolve(reply);
  }

  /** Sends one framed request and waits for the reply with the same xid, under the deadline. */
  private send(xid: number, packet: Buffer, what: string): Promise<ReplyHeader> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new Error(`zookeeper ${what} timed out after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      timer.unref();
      this.pending.set(xid, { what, resolve, reject, timer });
      this.lastSentAt = Date.now();
      this.sock.write(packet);
    });
  }

  /** A numbered request; resolves with the reply header (err may be non-zero) and its record. */
  request(encode: (xid: number) => Buffer, what: string): Promise<ReplyHeader> {
    const xid = (this.xid = (this.xid % 0x7fffffff) + 1);
    return this.send(xid, encode(xid), what);
  }

  /** Client pings when idle, so the server does not expire the session between collections. */
  private startPings(): void {
    const every = Math.max(200, Math.floor(this.sessionTimeoutMs / 3));
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastSentAt < every || this.pending.has(ZK_XID.ping)) return;
      this.send(ZK_XID.ping, encodeRequest(ZK_XID.ping, ZK_OP.ping), 'ping').catch(() => undefined);
    }, every);
    this.pingTimer.unref();
  }

  /** Ends the session: everything pending fails with `err`, the socket is destroyed. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.handshake?.reject(err);
    this.handshake = undefined;
    clearInterval(this.pingTimer);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.sock.destroy();
  }

  /**
   * Closes the session at once: anything in flight fails now. A closeSession request is sent
   * without waiting for its answer, so the server ends the session now instead of at its timeout;
   * the socket is ended gracefully and destroyed after a short grace if the server does not close it.
   */
  close(): void {
    if (this.failure) return;
    const established = this.handshake === undefined && this.sessionTimeoutMs > 0;
    this.failure = new Error('zookeeper session closed');
    this.handshake?.reject(this.failure);
    this.handshake = undefined;
    clearInterval(this.pingTimer);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
    if (established && this.sock.writable) {
      this.sock.end(encodeRequest((this.xid % 0x7fffffff) + 1, ZK_OP.closeSession));
      setTimeout(() => this.sock.destroy(), 1000).unref();
    } else {
      this.sock.destroy();
    }
  }
}
