/**
 * The runtime side of --web.config.file (config/web-config.ts parses it): the HTTPS server with its client
 * certificate policy, basic auth with bcrypt, extra response headers and the rate limit.
 *
 * Behaviour follows exporter-toolkit so that a file means the same here as for the Go exporters:
 *  - basic auth guards every path except /healthz and /ready (see OPEN_PATHS for why), answering
 *    401 with `WWW-Authenticate: Basic`; an unknown user is checked against a fixed dummy hash so
 *    that timing does not tell which user names exist;
 *  - bcrypt is slow by design (~50-100 ms at cost 10 in pure JS), and Prometheus sends the same
 *    credentials every scrape: a successful check is remembered for CACHE_TTL_MS under
 *    sha256(user, password, hash) (never the password itself), and checks run one at a time so a flood
 *    of wrong passwords costs one core at most, never the collector's event loop turns;
 *  - the certificate, key and client CA files are re-read when they change (polled), so a rotated
 *    certificate (cert-manager, a renewed Let's Encrypt one) is served without a restart, like
 *    exporter-toolkit's reload on every connection; a broken new file is logged and the old one kept.
 */
import { createHash } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket, TlsOptions } from 'node:tls';
import bcrypt from 'bcryptjs';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../core/logger';
import {
  secureContextOptions,
  type RateLimit,
  type TlsServerSettings,
  type WebConfig,
} from '../config/web-config';

/**
 * Paths served without basic auth: kubelet and Docker health checks cannot hold a password without
 * putting it in the pod spec or the image, and these answer only "ok"/"ready" (no metric, no target,
 * no version). Everything else, /metrics, /probe, the Replicante API and the landing page included,
 * needs credentials. TLS and the rate limit apply to these paths too.
 */
export const OPEN_PATHS: readonly string[] = ['/healthz', '/ready'];

/** How long a successful bcrypt check is remembered. */
export const CACHE_TTL_MS = 60_000;
const CACHE_MAX_ENTRIES = 1000;
/** bcrypt (cost 10) of a random string nobody knows: what an unknown user is checked against. */
const DUMMY_HASH = '$2b$10$R6y0GcSlNgDkxAmDLkmEuu4Zbhgm.dbM3yDeOgkDAH1afGvq7CSPi';
/** How often the TLS files are polled for changes. */
const TLS_RELOAD_POLL_MS = 10_000;

/** Basic auth against bcrypt hashes, with the success cache and one check at a time. */
export class BasicAuthChecker {
  private readonly cache = new Map<string, number>();
  private queue: Promise<unknown> = Promise.resolve();
  /** bcrypt comparisons actually run (the rest came from the cache); for tests. */
  bcryptRuns = 0;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    private readonly ttlMs = CACHE_TTL_MS,
  ) {}

  async check(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    const key = createHash('sha256')
      .update(JSON.stringify([user, password, hash ?? '']))
      .digest('hex');
    if (hash !== undefined && this.cached(key)) return true;
    const run = this.queue.then(async () => {
      // Another request with the same credentials may have filled the cache while this one queued.
      if (hash !== undefined && this.cached(key)) return true;
      this.bcryptRuns++;
      const ok = await bcrypt.compare(password, hash ?? DUMMY_HASH);
      if (ok && hash !== undefined) this.remember(key);
      return ok && hash !== undefined;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private cached(key: string): boolean {
    const expiry = this.cache.get(key);
    if (expiry === undefined) return false;
    if (expiry > Date.now()) return true;
    this.cache.delete(key);
    return false;
  }

  private remember(key: string): void {
    // Bounded: the oldest entry goes first (a Map iterates in insertion order).
    if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, Date.now() + this.ttlMs);
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
 * auth (401) for every path but `openPaths`.
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
    if (limiter && !limiter.take()) {
      res.status(429).type('text/plain').send('Too Many Requests\n');
      return;
    }
    for (const [name, value] of headers) res.set(name, value);
    // Exact match only: a path Express would route elsewhere ('/healthz/x') is never let through.
    if (!auth || openPaths.includes(req.path)) {
      next();
      return;
    }
    const credentials = parseBasicAuth(req.get('authorization'));
    if (!credentials) {
      unauthorized(res);
      return;
    }
    auth.check(credentials.user, credentials.password).then(
      (ok) => (ok ? next() : unauthorized(res)),
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
  options: { reloadPollMs?: number } = {},
): Promise<Server> {
  const settings = web?.tls;
  let server: Server;
  const stopWatching: (() => void)[] = [];
  if (!settings) {
    server = app.listen(port, host ?? '');
  } else {
    const where = `--web.config.file ${web.source}`;
    const https = createHttpsServer(
      { ...secureContextOptions(settings, where), ...clientCertOptions(settings) },
      app,
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
    server = https.listen(port, host ?? '');
  }
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
