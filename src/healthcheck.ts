/**
 * The container image's HEALTHCHECK (`node dist/healthcheck.js`): exit 0 when the exporter in this
 * container answers GET /healthz, else 1. The slim image has no curl, and a fixed `fetch('http://...')`
 * would break as soon as the exporter serves TLS (--web.config.file) or listens elsewhere.
 *
 * It follows the exporter's own settings: `--web.listen-address` and `--web.config.file` as given to
 * the container's main process (its command line, /proc/1/cmdline: the image's ENTRYPOINT, or after
 * an init such as `docker run --init`), else DATASTORE_WEB_LISTEN_ADDRESS / DATASTORE_WEB_CONFIG_FILE,
 * else :9860 over plain HTTP. It always connects to 127.0.0.1 (the exporter must listen there too; of
 * several --web.listen-address it takes the first that does).
 *
 * With tls_server_config it speaks HTTPS without verifying the certificate: it checks that its own
 * container's process answers, over loopback, not who it is. When the web config REQUIRES a client
 * certificate (RequireAnyClientCert, RequireAndVerifyClientCert), which this check does not hold, an
 * answered TLS handshake counts (the exporter then refuses the request at the TLS layer: it is alive).
 * /healthz needs no basic auth and takes no rate-limit token (http/listener.ts OPEN_PATHS).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';
import { parseWebConfig, type WebConfig } from './config/web-config';

const DEFAULT_PORT = 9860;
const TIMEOUT_MS = 4000;

/** Every `--name value` or `--name=value` in an argument list, in order. */
export function flagValues(argv: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === `--${name}` && argv[i + 1] !== undefined) values.push(argv[i + 1]!);
    else if (arg.startsWith(`--${name}=`)) values.push(arg.slice(name.length + 3));
  }
  return values;
}

/** A flag's value (the exporter accepts it once; the last, should it appear more often). */
export function flagValue(argv: readonly string[], name: string): string | undefined {
  return flagValues(argv, name).at(-1);
}

/**
 * Of several --web.listen-address (the exporter listens on each), one this check can reach on
 * 127.0.0.1: every interface (`:9860`, `0.0.0.0:`, `[::]:`) or loopback; else the first.
 */
function reachableListen(addresses: string[]): string | undefined {
  const host = (a: string): string => a.slice(0, a.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  return (
    addresses.find(
      (a) => ['', '0.0.0.0', '::', 'localhost'].includes(host(a)) || host(a).startsWith('127.'),
    ) ?? addresses[0]
  );
}

/** The main process's arguments, when this runs beside it in a container; [] elsewhere. */
function mainProcessArgs(): string[] {
  try {
    return readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export interface HealthTarget {
  port: number;
  web?: WebConfig;
}

/** Where and how to ask, from the main process's flags, else the environment. */
export function healthTarget(argv: readonly string[], env: NodeJS.ProcessEnv): HealthTarget {
  const listen =
    reachableListen(flagValues(argv, 'web.listen-address')) ??
    env.DATASTORE_WEB_LISTEN_ADDRESS ??
    `:${DEFAULT_PORT}`;
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1)) || DEFAULT_PORT;
  const file = flagValue(argv, 'web.config.file') ?? env.DATASTORE_WEB_CONFIG_FILE;
  if (!file) return { port };
  return { port, web: parseWebConfig(readFileSync(file, 'utf8'), JSON.stringify(file), dirname(file)) };
}

const CLIENT_CERT_REQUIRED = new Set(['RequireAnyClientCert', 'RequireAndVerifyClientCert']);

/** Resolves true when the exporter answered (see the file comment for what counts). */
export function check(target: HealthTarget, timeoutMs = TIMEOUT_MS): Promise<boolean> {
  const tls = target.web?.tls;
  const handshakeIsEnough = tls !== undefined && CLIENT_CERT_REQUIRED.has(tls.clientAuth);
  return new Promise((resolve) => {
    const options = {
      host: '127.0.0.1',
      port: target.port,
      path: '/healthz',
      timeout: timeoutMs,
      rejectUnauthorized: false,
    };
    const done = (ok: boolean): void => {
      req.destroy();
      resolve(ok);
    };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('timeout', () => done(false));
    req.on('error', (err: NodeJS.ErrnoException) =>
      // A TLS alert is the server's answer: it refused the certificate we do not have.
      done(handshakeIsEnough && /^ERR_SSL_/.test(err.code ?? '')),
    );
    if (handshakeIsEnough) req.on('socket', (socket) => socket.once('secureConnect', () => done(true)));
    req.end();
  });
}

if (require.main === module) {
  let target: HealthTarget;
  try {
    target = healthTarget(mainProcessArgs(), process.env);
  } catch (err) {
    console.error(`healthcheck: ${(err as Error).message}`);
    process.exit(1);
  }
  void check(target).then((ok) => process.exit(ok ? 0 : 1));
}
