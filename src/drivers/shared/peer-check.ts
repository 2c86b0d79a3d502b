/**
 * "Is the server at this port the datastore the URL says?" A PostgreSQL URL pointed at a Redis port
 * only ever gets "timeout expired" from the client library (Redis waits for a newline that the
 * PostgreSQL start-up packet never sends); the operator needs "that port is Redis".
 *
 * After a connect fails in a way a protocol mismatch would explain (a timeout, an unexpected close, a
 * parse error: not a refused connection or an error the datastore itself answered), one or two short
 * probe connections tell the common peers apart by what they say:
 *  - nothing sent, wait briefly: MySQL/MariaDB speak first (a handshake, or an error packet);
 *  - PostgreSQL's SSLRequest (8 bytes, what libpq sends first): PostgreSQL answers one byte, S or N;
 *  - a plain-text line, `GET / HTTP/1.0`: Redis answers in RESP (-ERR, -NOAUTH...), an HTTP server
 *    (etcd's gateway and any other) with an HTTP status line.
 * The expected datastore's own opener goes first, so a healthy server of that kind sees nothing its
 * own clients would not send, beyond one connection closed early. ZooKeeper, Kafka and MongoDB just
 * close on such bytes: they stay unidentified, and the message stays as it was.
 *
 * The probe runs in the background, once per run of failures (again only after a success), so it never
 * delays a collection or adds a connection per retry; when the peer is another kind, a warning is
 * logged at once and the next failures' errors carry the note (so the status page and /probe show it).
 */
import { connect, type Socket } from 'node:net';
import type { Driver, DriverLogger, Target } from '../../core/model';
import { ConfigError } from '../../core/errors';

/** The protocols told apart; a driver declares the one it speaks (DriverRegistration.protocol). */
export type PeerProtocol = 'redis' | 'postgresql' | 'mysql' | 'http';

export interface PeerIdentity {
  protocol: PeerProtocol;
  /** How to name it to an operator, e.g. "MySQL/MariaDB (10.11.6-MariaDB)". */
  description: string;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
/**
 * A plain-text line both kinds answer: Redis runs it as an inline command (GET with the wrong number
 * of arguments: "-ERR ..." or "-NOAUTH ..."), an HTTP server answers with a status line. (A bare PING
 * would do for Redis, but etcd's port only hands a connection to its HTTP server once the first bytes
 * look like HTTP.)
 */
const TEXT_LINE = Buffer.from('GET / HTTP/1.0\r\n\r\n');

/** What the first bytes a server sent say it is, or undefined. Pure, for tests. */
export function classifyReply(bytes: Buffer): PeerIdentity | undefined {
  if (bytes.length === 0) return undefined;
  // MySQL protocol packet: 3-byte little-endian length, sequence id 0, then 0x0a (handshake v10,
  // followed by the NUL-terminated server version) or 0xff (an error, e.g. "host not allowed").
  if (bytes.length >= 5 && bytes[3] === 0 && (bytes[4] === 0x0a || bytes[4] === 0xff)) {
    const length = bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16);
    if (length > 0 && length < 1 << 16) {
      if (bytes[4] === 0xff) return { protocol: 'mysql', description: 'MySQL/MariaDB' };
      const end = bytes.indexOf(0, 5);
      const version = end > 5 ? bytes.subarray(5, end).toString('latin1') : '';
      if (/^[\x20-\x7e]+$/.test(version)) {
        // MariaDB prefixes "5.5.5-" for old clients' sake.
        return { protocol: 'mysql', description: `MySQL/MariaDB (${version.replace(/^5\.5\.5-/, '')})` };
      }
    }
  }
  if (bytes.length === 1 && (bytes[0] === 0x53 || bytes[0] === 0x4e)) {
    return { protocol: 'postgresql', description: 'PostgreSQL' };
  }
  const text = bytes.subarray(0, 64).toString('latin1');
  if (/^HTTP\/\d(\.\d)? \d{3}/.test(text)) return { protocol: 'http', description: 'an HTTP server' };
  if (/^[+-][A-Za-z]/.test(text) && text.includes('\r\n')) return { protocol: 'redis', description: 'Redis' };
  return undefined;
}

interface Exchange {
  identity?: PeerIdentity;
  /**
   * No point in a second try: the connection failed (refused, unreachable), or the server closed it
   * before anything was sent (it drops every connection: the other opener would learn nothing).
   */
  hopeless: boolean;
}

/**
 * One connection: wait `greetingMs` for the server to speak first, else send `opener` and wait
 * `replyMs` for an answer; classify whatever arrived. Never rejects.
 */
function exchange(host: string, port: number, opener: Buffer, greetingMs: number, replyMs: number) {
  return new Promise<Exchange>((resolve) => {
    let received = Buffer.alloc(0);
    let connected = false;
    let sent = false;
    let timer: NodeJS.Timeout | undefined;
    const socket: Socket = connect({ host, port });
    const finish = (): void => {
      clearTimeout(timer);
      clearTimeout(deadline);
      socket.destroy();
      resolve({
        identity: classifyReply(received),
        hopeless: !connected || (!sent && received.length === 0),
      });
    };
    // Bounded even if the connect itself hangs.
    const deadline = setTimeout(finish, greetingMs + replyMs + 2000);
    socket.setNoDelay(true);
    socket.once('connect', () => {
      connected = true;
      timer = setTimeout(() => {
        sent = true;
        socket.write(opener);
        timer = setTimeout(finish, replyMs);
      }, greetingMs);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]).subarray(0, 4096);
      // A reply may come in pieces: give the rest a moment, then decide on what arrived.
      clearTimeout(timer);
      timer = setTimeout(finish, 50);
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}

/**
 * Tells which of the known protocols the server at host:port speaks, or undefined (refused, silent,
 * or something else). At most two short connections; the first opener is the expected protocol's
 * own, so a healthy server of the expected kind only ever sees what its own clients send (Redis
 * drops a connection on PostgreSQL's SSLRequest, PostgreSQL logs a bad start-up packet on text: the
 * second connection tries the other opener). Never rejects.
 */
export async function identifyPeer(
  host: string,
  port: number,
  expected?: PeerProtocol,
  waits: { greetingMs?: number; replyMs?: number } = {},
): Promise<PeerIdentity | undefined> {
  const greetingMs = waits.greetingMs ?? 300;
  const replyMs = waits.replyMs ?? 500;
  const openers = expected === 'postgresql' ? [SSL_REQUEST, TEXT_LINE] : [TEXT_LINE, SSL_REQUEST];
  const first = await exchange(host, port, openers[0]!, greetingMs, replyMs);
  if (first.identity || first.hopeless) return first.identity;
  return (await exchange(host, port, openers[1]!, 0, replyMs)).identity;
}

/** Errors a protocol mismatch produces (the client waited, or choked on bytes it did not expect). */
const MISMATCH_SYMPTOM =
  /time(d)? ?out|timeout|ETIMEDOUT|ECONNRESET|EPIPE|hang up|closed|terminated|unexpected|parse|protocol|malformed|bounds|invalid/i;

function worthChecking(err: unknown): boolean {
  if (err instanceof ConfigError) return false;
  // Errors the datastore itself answered (SQLSTATE from PostgreSQL or MySQL): the peer is the right kind.
  const fields = err as { sqlState?: unknown; severity?: unknown };
  if (fields && (fields.sqlState !== undefined || fields.severity !== undefined)) return false;
  return MISMATCH_SYMPTOM.test(err instanceof Error ? err.message : String(err));
}

export interface PeerCheckOptions {
  /** The protocol the driver speaks; undefined: the driver's datastore is not one identifyPeer knows. */
  protocol?: PeerProtocol;
  /** The datastore's name for messages, e.g. "PostgreSQL". */
  datastore: string;
  target: Pick<Target, 'host' | 'port'>;
  logger: DriverLogger;
  /** Injected in tests. */
  identify?: (host: string, port: number, expected?: PeerProtocol) => Promise<PeerIdentity | undefined>;
}

/**
 * Wraps a driver so that a failed connect to a server of another kind says so (see the file comment).
 * "Connect" is the whole set-up: some clients connect happily to any TCP port and only fail on their
 * first exchange, so a failure of the first observe() after a connect counts too. Everything else
 * passes straight through.
 */
export function withPeerCheck(driver: Driver, opts: PeerCheckOptions): Driver {
  const identify = opts.identify ?? identifyPeer;
  const where = `${opts.target.host.includes(':') ? `[${opts.target.host}]` : opts.target.host}:${opts.target.port}`;
  /** Set when the peer was found to be another kind, until an observation succeeds. */
  let note: string | undefined;
  /** The peer was checked during this run of failures. */
  let checked = false;
  /** An observation succeeded on the current connection: later failures are not about the peer's kind. */
  let established = false;

  const setupFailed = (err: unknown): Error => {
    if (note)
      return new Error(`${err instanceof Error ? err.message : String(err)} (${note})`, { cause: err });
    if (!checked && worthChecking(err)) {
      checked = true;
      void identify(opts.target.host, opts.target.port, opts.protocol)
        .catch(() => undefined)
        .then((peer) => {
          if (!peer || peer.protocol === opts.protocol) return;
          note = `the server at ${where} is not ${opts.datastore}: it answers as ${peer.description}; check the target's host and port`;
          opts.logger.warn(note);
        });
    }
    return err instanceof Error ? err : new Error(String(err));
  };

  const wrapped: Driver = {
    async connect() {
      established = false;
      try {
        await driver.connect();
      } catch (err) {
        throw setupFailed(err);
      }
    },
    async observe() {
      try {
        const observation = await driver.observe();
        established = true;
        note = undefined;
        checked = false;
        return observation;
      } catch (err) {
        throw established ? err : setupFailed(err);
      }
    },
    close: () => driver.close(),
  };
  // The optional parts of the contract pass through as they are.
  if (driver.heartbeat) Object.assign(wrapped, { heartbeat: driver.heartbeat });
  if (driver.members) wrapped.members = driver.members.bind(driver);
  return wrapped;
}
