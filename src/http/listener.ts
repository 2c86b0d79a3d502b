/**
 * The runtime side of --web.config.file (config/web-config.ts parses it): the HTTPS server with its client
 * certificate policy, basic auth with bcrypt, extra response headers and the rate limit.
 *
 * Behaviour follows exporter-toolkit so that a file means the same here as for the Go exporters:
 *  - basic auth and the rate limit guard every path except /healthz and /ready (OPEN_PATHS says why),
 *    basic auth answering 401 with `WWW-Authenticate: Basic`; an unknown user is checked against a
 *    dummy hash of the same cost as the configured users' hashes, so that timing does not tell which
 *    user names exist;
 *  - bcrypt is slow by design (~80 ms at cost 10, ~300 ms at cost 12 in pure JS), and Prometheus
 *    sends the same credentials every scrape: a successful check is remembered for CACHE_TTL_MS under
 *    sha256(user, password, hash) (never the password itself). Failed attempts must never starve good
 *    ones (BasicAuthChecker): one bcrypt at a time, credentials that passed before go first, new
 *    ones wait in a bounded queue served round-robin per client address, a check whose client has
 *    left is dropped before it runs, and a repeated wrong password costs no bcrypt at all;
 *  - the certificate, key and client CA files are re-read when they change (polled), so a rotated
 *    certificate (cert-manager, a renewed Let's Encrypt one) is served without a restart, like
 *    exporter-toolkit's reload on every connection; a broken new file is logged and the old one kept.
 */
import { createHash } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../core/logger';
import { compareInThread } from './bcrypt-thread';
import {
  secureContextOptions,
  type RateLimit,
  type TlsServerSettings,
  type WebConfig,
} from '../config/web-config';

/**
 * Paths served without basic auth and outside the rate limit: kubelet and Docker health checks
 * cannot hold a password without putting it in the pod spec or the image, and these answer only
 * "ok"/"ready" (no metric, no target, no version). A kubelet probe answered 429 counts as failed, so
 * a burst of scrapes that used up the bucket would get a healthy pod restarted; these answers cost
 * nothing, and the listener's connection limits still bound a flood of them. Everything else,
 * /metrics, /probe, the Replicante API and the landing page included, needs credentials and takes a
 * token. TLS applies to these paths too.
 */
export const OPEN_PATHS: readonly string[] = ['/healthz', '/ready'];

/** How long a successful bcrypt check is remembered. */
export const CACHE_TTL_MS = 60_000;
/** Entries of each of the success, known-good and failure memories (oldest dropped first). */
const MEMORY_MAX_ENTRIES = 1000;
/** How long a failed check is remembered: the same wrong password again costs no bcrypt. */
const FAILURE_TTL_MS = 60_000;
/** New credentials waiting for bcrypt, in all and per client address; beyond, 429 at once. */
export const MAX_PENDING_CHECKS = 32;
export const MAX_PENDING_PER_CLIENT = 4;
/**
 * The salt and hash of a bcrypt of a random string nobody knows. An unknown user is checked against
 * it, with the cost of the configured users' hashes put in front (dummyHash): bcrypt's time depends
 * on the cost alone, so an unknown user answers as slowly as a known one with a wrong password.
 */
const DUMMY_SALT_AND_HASH = 'R6y0GcSlNgDkxAmDLkmEuu4Zbhgm.dbM3yDeOgkDAH1afGvq7CSPi';
/** How often the TLS files are polled for changes. */
const TLS_RELOAD_POLL_MS = 10_000;

/** The most connections the server holds at once, whatever the file descriptor limit. */
export const MAX_CONNECTIONS = 4096;

/** The process's soft limit on open files (RLIMIT_NOFILE), from /proc; 1024 where unreadable. */
export function openFileLimit(limitsText?: string): number {
  let text = limitsText;
  try {
    text ??= readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return 1024;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === 'unlimited') return Number.MAX_SAFE_INTEGER;
  const n = Number(soft);
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

/**
 * Connections the server holds at once: half the file descriptors, at most MAX_CONNECTIONS. Far
 * above what scrapers need (a Prometheus pair, /probe jobs, a few curl), and never all the
 * descriptors: the other half stays for the collector's and /probe's datastore connections and the
 * files the exporter reads (at ~20,000 idle sockets, the limit, every scrape was refused and a
 * healthy Redis was reported down). High enough that a few thousand busy connections are all held
 * (evicting them only makes them reconnect, which fills the kernel's accept queue ahead of a fresh
 * scrape); see guardConnections for what happens beyond.
 */
export function connectionLimit(fileLimit = openFileLimit()): number {
  return Math.max(16, Math.min(MAX_CONNECTIONS, Math.floor(fileLimit / 2)));
}

/**
 * Timeouts suited to a scraper, which sends its whole request at once: the request headers within
 * 10 s of connecting (a connection that sends nothing is closed then), the whole request within 30 s,
 * an idle kept-alive connection closed after 5 s; checked every second. The TLS handshake gets 10 s.
 */
export const SERVER_TIMEOUTS = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
  handshakeTimeout: 10_000,
};

/** Requests started per turn of the event loop; the rest wait their turn, in arrival order. */
export const REQUESTS_PER_TURN = 16;

/**
 * Starts at most REQUESTS_PER_TURN requests per turn of the event loop, in arrival order.
 *
 * Why: Node (libuv) accepts ONE new connection per turn of the event loop. Under a flood of busy
 * connections each turn handled every request that had arrived (a thousand and more), so turns took
 * hundreds of milliseconds and a fresh scrape waited in the kernel's accept queue behind hundreds of
 * connections for longer than its timeout. Handling a bounded number per turn keeps turns short, so
 * new connections are accepted quickly and the collector's replies are read on time; the requests
 * beyond wait in a FIFO, where a new one is at most one full round behind (each client has at most
 * its one request waiting). A request whose client left while waiting is dropped.
 */
export function admitRequests(handler: RequestListener, perTurn = REQUESTS_PER_TURN): RequestListener {
  const waiting: [IncomingMessage, ServerResponse][] = [];
  let startedThisTurn = 0;
  let scheduled = false;
  // A turn: the poll phase (requests arrive and may start at once), then the check phase, where this
  // immediate starts waiting ones with what is left of the turn's allowance, and a new turn begins.
  const endOfTurn = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      while (waiting.length > 0 && startedThisTurn < perTurn) {
        const [req, res] = waiting.shift()!;
        if (req.socket.destroyed) continue;
        startedThisTurn++;
        handler(req, res);
      }
      startedThisTurn = 0;
      if (waiting.length > 0) endOfTurn();
    });
  };
  return (req, res) => {
    if (waiting.length === 0 && startedThisTurn < perTurn) {
      startedThisTurn++;
      endOfTurn();
      handler(req, res);
      return;
    }
    waiting.push([req, res]);
    endOfTurn();
  };
}

/**
 * Keeps the server at `max` connections: a new connection beyond it closes the oldest one that has
 * no request in progress (never sent one, or idle between two); only if every connection is busy, the
 * oldest busy one. The newest connection always gets in, so a fresh scrape is not locked out by
 * connections that were there first; one that sends its request at once is busy before enough newer
 * ones could arrive to push it out. With TLS, connections are counted by their TCP socket (one that
 * never completes the handshake counts too).
 */
export function guardConnections(server: Server, max: number): { readonly size: number; evicted: number } {
  /** TCP socket -> requests in progress on it; Map order is age. */
  const connections = new Map<Socket, number>();
  const stats = {
    evicted: 0,
    get size() {
      return connections.size;
    },
  };
  const tcpOf = (socket: Socket): Socket => (socket as Socket & { _parent?: Socket })._parent ?? socket;
  server.on('connection', (socket: Socket) => {
    connections.set(socket, 0);
    socket.once('close', () => connections.delete(socket));
    if (connections.size <= max) return;
    let victim: Socket | undefined;
    for (const [candidate, busy] of connections) {
      if (candidate === socket) continue;
      victim ??= candidate;
      if (busy === 0) {
        victim = candidate;
        break;
      }
    }
    if (victim) {
      connections.delete(victim);
      stats.evicted++;
      victim.destroy();
    }
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const tcp = tcpOf(req.socket);
    const busy = connections.get(tcp);
    if (busy === undefined) return;
    connections.set(tcp, busy + 1);
    res.once('close', () => {
      const now = connections.get(tcp);
      if (now !== undefined) connections.set(tcp, Math.max(0, now - 1));
    });
  });
  return stats;
}

/** The cost (log2 rounds) of a bcrypt hash: `$2y$12$...` -> 12. */
export function bcryptCost(hash: string): number {
  return Number(hash.split('$')[2]);
}

/** The dummy hash for unknown users: the users' most common cost (the higher one on a tie). */
export function dummyHash(users: ReadonlyMap<string, string>): string {
  const counts = new Map<number, number>();
  for (const hash of users.values()) counts.set(bcryptCost(hash), (counts.get(bcryptCost(hash)) ?? 0) + 1);
  let cost = 10;
  let best = 0;
  for (const [c, n] of counts) {
    if (n > best || (n === best && c > cost)) [cost, best] = [c, n];
  }
  return `$2b$${String(cost).padStart(2, '0')}$${DUMMY_SALT_AND_HASH}`;
}

/** What an authentication attempt came to. `busy`: too many checks waiting, try again (429). */
export type AuthOutcome = 'ok' | 'denied' | 'busy';

/** Who asks: the client address (for fairness and limits), and whether it is still waiting. */
export interface AuthClient {
  address: string;
  /** True once the client has gone (connection closed): its check is dropped before bcrypt runs. */
  gone?: () => boolean;
}

interface PendingCheck {
  user: string;
  password: string;
  hash: string | undefined;
  key: string;
  client: AuthClient;
  resolve: (outcome: AuthOutcome) => void;
}

/** A bounded insertion-ordered memory of keys (sha256 of credentials), with an optional expiry. */
class KeyMemory {
  private readonly entries = new Map<string, number>();
  constructor(private readonly ttlMs: number) {}

  has(key: string): boolean {
    const expiry = this.entries.get(key);
    if (expiry === undefined) return false;
    if (expiry > Date.now()) return true;
    this.entries.delete(key);
    return false;
  }

  add(key: string): void {
    this.entries.delete(key);
    if (this.entries.size >= MEMORY_MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, Date.now() + this.ttlMs);
  }
}

/**
 * Basic auth against bcrypt hashes, built so that failed attempts cannot starve good ones:
 *  - one bcrypt at a time, on a worker thread (http/bcrypt-thread.ts): a flood costs one core at
 *    most and never holds the event loop that accepts connections and runs the collector;
 *  - a success is cached for CACHE_TTL_MS; credentials that EVER passed (kept longer, bounded) are
 *    checked again ahead of every new credential when their cache entry expires: Prometheus, once
 *    in, never queues behind a flood of wrong passwords;
 *  - new credentials wait in a queue served round-robin per client address, bounded per client
 *    (MAX_PENDING_PER_CLIENT) and in all (MAX_PENDING_CHECKS): beyond, the answer is `busy` at once,
 *    without bcrypt; one flooding address delays another by at most one check per turn;
 *  - a check whose client has gone is dropped before bcrypt runs;
 *  - a failure is remembered for FAILURE_TTL_MS: the same wrong password again is denied at once.
 * None of these depends on whether the user exists, so they reveal no user names.
 */
export class BasicAuthChecker {
  private readonly successes: KeyMemory;
  private readonly knownGood = new KeyMemory(Number.POSITIVE_INFINITY);
  private readonly failures = new KeyMemory(FAILURE_TTL_MS);
  private readonly dummy: string;
  /** Credentials that passed before, waiting for re-verification: served first. */
  private readonly priority: PendingCheck[] = [];
  /** New credentials by client address; Map order is the round-robin order. */
  private readonly waiting = new Map<string, PendingCheck[]>();
  private waitingCount = 0;
  /** Checks of the same credentials waiting for the one bcrypt run in progress or queued. */
  private readonly joined = new Map<string, PendingCheck[]>();
  private running = false;
  /** bcrypt comparisons actually run; checks refused as busy; checks dropped because the client left. */
  bcryptRuns = 0;
  refusedBusy = 0;
  dropped = 0;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    ttlMs = CACHE_TTL_MS,
    /** bcrypt's compare; default: on a worker thread (http/bcrypt-thread.ts). */
    private readonly compare?: (password: string, hash: string) => Promise<boolean>,
  ) {
    this.successes = new KeyMemory(ttlMs);
    this.dummy = dummyHash(users);
  }

  check(user: string, password: string, client: AuthClient = { address: '' }): Promise<AuthOutcome> {
    const hash = this.users.get(user);
    const key = createHash('sha256')
      .update(JSON.stringify([user, password, hash ?? '']))
      .digest('hex');
    if (hash !== undefined && this.successes.has(key)) return Promise.resolve('ok');
    if (this.failures.has(key)) return Promise.resolve('denied');
    return new Promise<AuthOutcome>((resolve) => {
      const check: PendingCheck = { user, password, hash, key, client, resolve };
      // The same credentials already queued (Prometheus's concurrent scrapes): one bcrypt for all.
      const joined = this.joined.get(key);
      if (joined) {
        joined.push(check);
        return;
      }
      if (hash !== undefined && this.knownGood.has(key)) {
        this.priority.push(check);
      } else {
        const queue = this.waiting.get(client.address) ?? [];
        if (queue.length >= MAX_PENDING_PER_CLIENT || this.waitingCount >= MAX_PENDING_CHECKS) {
          this.refusedBusy++;
          resolve('busy');
          return;
        }
        queue.push(check);
        this.waiting.set(client.address, queue);
        this.waitingCount++;
      }
      this.joined.set(key, [check]);
      this.pump();
    });
  }

  /** The next check to run: known-good first, then one per client address in turn. */
  private next(): PendingCheck | undefined {
    const first = this.priority.shift();
    if (first) return first;
    for (const [address, queue] of this.waiting) {
      const check = queue.shift()!;
      this.waitingCount--;
      // Round-robin: this address goes to the back of the line.
      this.waiting.delete(address);
      if (queue.length > 0) this.waiting.set(address, queue);
      return check;
    }
    return undefined;
  }

  private pump(): void {
    if (this.running) return;
    const check = this.next();
    if (!check) return;
    const waiters = this.joined.get(check.key) ?? [check];
    // Dropped before any bcrypt work when every client waiting for this result has gone.
    const present = waiters.filter((w) => !w.client.gone?.());
    if (present.length === 0) {
      this.joined.delete(check.key);
      this.dropped += waiters.length;
      for (const w of waiters) w.resolve('denied');
      this.pump();
      return;
    }
    this.running = true;
    this.bcryptRuns++;
    // Fire and forget: the chain cannot reject (a failed compare counts as a mismatch, the
    // handlers only update sets and resolve waiters), and pump() starts the next check when it ends.
    void (this.compare ?? compareInThread)(check.password, check.hash ?? this.dummy)
      .catch(() => false)
      .then((matches) => {
        const ok = matches && check.hash !== undefined;
        if (ok) {
          this.successes.add(check.key);
          this.knownGood.add(check.key);
        } else {
          this.failures.add(check.key);
        }
        const all = this.joined.get(check.key) ?? waiters;
        this.joined.delete(check.key);
        for (const w of all) w.resolve(ok ? 'ok' : 'denied');
      })
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}

/** `Authorization: Basic base64(user:password)` -> its parts, or undefined when absent or malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** A token bucket: `burst` requests at once, then one per interval (Go's rate.Limiter semantics). */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly limit: RateLimit) {
    this.tokens = limit.burst;
  }

  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.limit.burst, this.tokens + (now - this.last) / this.limit.intervalMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * The request guard: rate limit (429), extra headers (on every answer, 401s included), then basic
 * auth (401); `openPaths` pass the rate limit and basic auth (see OPEN_PATHS).
 */
export function webGuard(web: WebConfig, openPaths: readonly string[]): RequestHandler {
  const limiter = web.rateLimit ? new TokenBucket(web.rateLimit) : undefined;
  const auth = web.users.size > 0 ? new BasicAuthChecker(web.users) : undefined;
  const headers = Object.entries(web.headers);
  const unauthorized = (res: Response): void => {
    res.set('WWW-Authenticate', 'Basic realm="datastore-exporter", charset="UTF-8"');
    res.status(401).type('text/plain').send('Unauthorized\n');
  };
  return (req: Request, res: Response, next: NextFunction): void => {
    // Exact match only: a path Express would route elsewhere ('/healthz/x') is never let through.
    const open = openPaths.includes(req.path);
    if (limiter && !open && !limiter.take()) {
      res.status(429).type('text/plain').send('Too Many Requests\n');
      return;
    }
    for (const [name, value] of headers) res.set(name, value);
    if (!auth || open) {
      next();
      return;
    }
    const credentials = parseBasicAuth(req.get('authorization'));
    if (!credentials) {
      unauthorized(res);
      return;
    }
    let gone = false;
    res.once('close', () => (gone = true));
    const client: AuthClient = { address: req.socket.remoteAddress ?? '', gone: () => gone };
    auth.check(credentials.user, credentials.password, client).then(
      (outcome) => {
        if (gone) return;
        if (outcome === 'ok') next();
        else if (outcome === 'denied') unauthorized(res);
        else res.status(429).set('Retry-After', '1').type('text/plain').send('Too Many Requests\n');
      },
      (err: unknown) => next(err),
    );
  };
}

/** Node's server options for the client certificate policy (the rest is checked per connection). */
function clientCertOptions(
  settings: TlsServerSettings,
): Pick<TlsOptions, 'requestCert' | 'rejectUnauthorized'> {
  switch (settings.clientAuth) {
    case 'NoClientCert':
      return { requestCert: false, rejectUnauthorized: false };
    case 'RequireAndVerifyClientCert':
      return { requestCert: true, rejectUnauthorized: true };
    default:
      // Asked for but verified (or required) by clientCertProblem, after the handshake.
      return { requestCert: true, rejectUnauthorized: false };
  }
}

/** Why a connection's client certificate is refused under the policy, or undefined if it is fine. */
export function clientCertProblem(socket: TLSSocket, settings: TlsServerSettings): string | undefined {
  if (settings.clientAuth === 'NoClientCert' || settings.clientAuth === 'RequestClientCert') return undefined;
  const cert = socket.getPeerCertificate();
  const present = !!cert && Object.keys(cert).length > 0;
  if (!present) {
    return settings.clientAuth === 'VerifyClientCertIfGiven' ? undefined : 'no client certificate';
  }
  if (settings.clientAuth !== 'RequireAnyClientCert' && !socket.authorized) {
    return `client certificate not verified: ${String(socket.authorizationError)}`;
  }
  if (settings.clientAllowedSans) {
    // "DNS:a.example, IP Address:10.0.0.1, email:x@y, URI:spiffe://..." -> the values.
    const sans = (cert.subjectaltname ?? '')
      .split(', ')
      .map((entry) => entry.slice(entry.indexOf(':') + 1))
      .filter(Boolean);
    if (!sans.some((san) => settings.clientAllowedSans!.includes(san))) {
      return 'client certificate has none of client_allowed_sans';
    }
  }
  return undefined;
}

/** Listens with plain HTTP, or HTTPS when the web config has TLS. */
export async function listenWeb(
  app: Express,
  web: WebConfig | undefined,
  port: number,
  host: string | undefined,
  logger: Logger,
  options: { reloadPollMs?: number; maxConnections?: number } = {},
): Promise<Server> {
  const settings = web?.tls;
  let server: Server;
  const stopWatching: (() => void)[] = [];
  if (!settings) {
    server = createHttpServer(SERVER_TIMEOUTS, admitRequests(app));
  } else {
    const where = `--web.config.file ${web.source}`;
    // node:https only when TLS is configured: a plain-HTTP exporter does not load it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const https = (require('node:https') as typeof import('node:https')).createServer(
      { ...SERVER_TIMEOUTS, ...secureContextOptions(settings, where), ...clientCertOptions(settings) },
      admitRequests(app),
    );
    https.on('secureConnection', (socket: TLSSocket) => {
      const problem = clientCertProblem(socket, settings);
      if (problem) {
        logger.debug('TLS connection refused', { reason: problem, remote: socket.remoteAddress });
        socket.destroy();
      }
    });
    for (const source of [settings.cert, settings.key, settings.clientCa]) {
      if (!source || !('file' in source)) continue;
      const onChange = (): void => {
        try {
          https.setSecureContext(secureContextOptions(settings, where));
          logger.info('reloaded the TLS certificate files', { file: source.file });
        } catch (err) {
          logger.error('kept the previous TLS certificate: the changed files are not usable', { err });
        }
      };
      watchFile(
        source.file,
        { interval: options.reloadPollMs ?? TLS_RELOAD_POLL_MS, persistent: false },
        onChange,
      );
      stopWatching.push(() => unwatchFile(source.file, onChange));
    }
    server = https;
  }
  server.keepAliveTimeout = SERVER_TIMEOUTS.keepAliveTimeout;
  guardConnections(server, options.maxConnections ?? connectionLimit());
  server.listen(port, host ?? '');
  server.once('close', () => stopWatching.forEach((stop) => stop()));
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err) => {
      stopWatching.forEach((stop) => stop());
      reject(err);
    });
  });
  return server;
}
