/**
 * The HTTP surface: /metrics (or --web.telemetry-path), /healthz, /ready, the status page at `/`, the
 * Replicante agent API (/api/unstable/..., JSON from the latest snapshot) and, when configured,
 * GET /probe (multi-target probing, probe/service.ts) and GET /discover (probe/discovery.ts).
 * Except /probe, it only reads what the collector published; no such request waits on the datastore.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { CollectorState } from '../core/collector';
import {
  MetricsRenderer,
  buildSelfRegistry,
  joinExpositions,
  negotiateContentType,
  type ContentType,
} from './metrics';
import type { Logger } from '../core/logger';
import type { Snapshot } from '../core/model';
import type { DiscoveryService } from '../probe/discovery';
import type { ProbeService } from '../probe/service';
import { agentInfo, datastoreInfo, errorBody, shardsInfo, type AgentVersion } from './replicante-api';
import { EXPORTER_VERSION, versionInfo } from '../core/version';
import { parseRefresh, renderStatusPage, type StatusPageContext } from './status-page';
import type { WebConfig } from '../config/web-config';
import { OPEN_PATHS, webGuard } from './listener';
import { telemetryPathProblem } from './paths';
import { acceptsGzip, type PreparedBody, type PreparedExposition } from './prepared';

const gzipAsync = promisify(gzip);

export interface AppOptions {
  telemetryPath: string;
  /** The single-target collector's state; absent when only /probe is served (no --target). */
  state?: () => CollectorState;
  logger: Logger;
  /** prom-client's process/nodejs metrics; off in tests that count series. */
  processMetrics?: boolean;
  /** GET /probe, when --probe.config-file is set. */
  probe?: ProbeService;
  /** GET /discover (Prometheus http_sd JSON of a seed's cluster), with /probe. */
  discovery?: DiscoveryService;
  /** For /api/unstable/info/agent; default: the package version, checkout and taint "unknown". */
  agentVersion?: AgentVersion;
  /** --web.config.file: basic auth, headers and rate limit guard every route (TLS is the listener's). */
  web?: WebConfig;
  /** What the status page at `/` says about the target and its schedule (http/status-page.ts). */
  status?: Pick<
    StatusPageContext,
    'target' | 'datastore' | 'collectIntervalSeconds' | 'collectTimeoutMs' | 'heartbeatIntervalMs'
  >;
}

/** Replicante's agent API root (its agents' `APIRoot::UnstableAPI`). */
export const REPLICANTE_API = '/api/unstable';

/** Collector-only self-metrics, dropped from /metrics when there is no collector (probe-only mode). */
const COLLECTOR_SELF_METRICS = [
  'datastore_up',
  'datastore_exporter_collect_duration_seconds',
  'datastore_exporter_collect_errors_total',
  'datastore_exporter_last_collect_success_timestamp_seconds',
];

const NO_COLLECTOR: CollectorState = {
  snapshot: null,
  up: false,
  attempted: true,
  lastDurationSeconds: 0,
  errorsTotal: 0,
};

async function sendExposition(req: Request, res: Response, body: string, contentType: ContentType) {
  res.set('Content-Type', contentType);
  res.vary('Accept').vary('Accept-Encoding');
  if (acceptsGzip(req.get('accept-encoding'))) {
    res.set('Content-Encoding', 'gzip').send(await gzipAsync(body));
  } else {
    res.send(body);
  }
}

/** The prepared answer through Express (after the web guard): its ETag makes `send` hash nothing. */
async function sendPrepared(req: Request, res: Response, prepared: PreparedExposition): Promise<void> {
  const body = acceptsGzip(req.get('accept-encoding')) ? await prepared.gzip() : prepared.identity;
  res.set('Content-Type', prepared.contentType);
  res.vary('Accept').vary('Accept-Encoding');
  if (body !== prepared.identity) res.set('Content-Encoding', 'gzip');
  res.set('ETag', body.etag).send(body.bytes);
}

/** Writes a prepared answer as Express's `send` would (HEAD: the headers only). */
function writePrepared(req: IncomingMessage, res: ServerResponse, body: PreparedBody): void {
  res.writeHead(200, body.headers);
  if (req.method === 'HEAD') res.end();
  else res.end(body.bytes);
}

/** Whether the web config makes the guard do anything (TLS alone is the listener's, not the guard's). */
function guarded(web: WebConfig | undefined): boolean {
  return !!web && (web.users.size > 0 || !!web.rateLimit || Object.keys(web.headers).length > 0);
}

export function createApp(opts: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // Checked at start-up (config/flags.ts); again here for callers that build the app themselves.
  const pathProblem = telemetryPathProblem(opts.telemetryPath);
  if (pathProblem) throw new Error(`telemetry path ${pathProblem}`);
  if (opts.web) {
    // Health paths stay open to kubelet/Docker probes (http/listener.ts); the metrics path cannot be one.
    app.use(webGuard(opts.web, OPEN_PATHS));
  }
  const { state, probe } = opts;
  const renderer = state ? new MetricsRenderer(state, opts.processMetrics ?? true) : undefined;
  // Without a collector, /metrics is the exporter's own process and build metrics (and the probe ones).
  const processOnly = new Map<ContentType, Registry<ContentType>>();
  const renderProcessOnly = (contentType: ContentType): Promise<string> => {
    let registry = processOnly.get(contentType);
    if (!registry) {
      registry = buildSelfRegistry(() => NO_COLLECTOR, contentType, opts.processMetrics ?? true);
      for (const name of COLLECTOR_SELF_METRICS) registry.removeSingleMetric(name);
      processOnly.set(contentType, registry);
    }
    return registry.metrics();
  };

  // The telemetry path is a literal (http/paths.ts validated it): compared as it is, never handed to
  // Express as a route pattern.
  const telemetryPath = opts.telemetryPath;
  app.use(async (req: Request, res: Response, next) => {
    if (req.path !== telemetryPath || (req.method !== 'GET' && req.method !== 'HEAD')) {
      next();
      return;
    }
    try {
      const contentType = negotiateContentType(req.get('accept'));
      if (renderer && !probe && !opts.discovery) {
        await sendPrepared(req, res, await renderer.prepared(contentType));
        return;
      }
      const parts = [renderer ? await renderer.render(contentType) : await renderProcessOnly(contentType)];
      if (probe) parts.push(await probe.metrics(contentType));
      if (opts.discovery) parts.push(await opts.discovery.metrics(contentType));
      await sendExposition(req, res, joinExpositions(parts, contentType), contentType);
    } catch (err) {
      opts.logger.error('rendering metrics failed', { err });
      res.status(500).type('text/plain').send('rendering metrics failed\n');
    }
  });

  // Liveness: the process answers. Deliberately no datastore check (a down datastore is datastore_up 0).
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });

  // Readiness: the first collection has been attempted, so /metrics says something true.
  // Probe-only: ready at once (each probe collects on request).
  app.get('/ready', (_req, res) => {
    if (!state || state().attempted) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send('first collection not finished yet\n');
  });

  if (probe) {
    app.get('/probe', async (req: Request, res: Response) => {
      try {
        const contentType = negotiateContentType(req.get('accept'));
        const query = req.query as { target?: unknown; auth_module?: unknown; cluster_id?: unknown };
        const result = await probe.probe(
          { target: query.target, auth_module: query.auth_module, cluster_id: query.cluster_id },
          req.get('x-prometheus-scrape-timeout-seconds'),
          contentType,
        );
        if (result.status === 200) await sendExposition(req, res, result.body, result.contentType);
        else res.status(result.status).type('text/plain').send(`${result.message}\n`);
      } catch (err) {
        opts.logger.error('probe failed', { err });
        res.status(500).type('text/plain').send('probe failed\n');
      }
    });
  }

  const { discovery } = opts;
  if (discovery) {
    app.get('/discover', async (req: Request, res: Response) => {
      try {
        const query = req.query as { target?: unknown; auth_module?: unknown; cluster_id?: unknown };
        const result = await discovery.discover({
          target: query.target,
          auth_module: query.auth_module,
          cluster_id: query.cluster_id,
        });
        if (result.status === 200) res.set(result.headers).json(result.groups);
        else res.status(result.status).type('text/plain').send(`${result.message}\n`);
      } catch (err) {
        opts.logger.error('discovery failed', { err });
        res.status(500).type('text/plain').send('discovery failed\n');
      }
    });
  }

  // The Replicante agent API (http/replicante-api.ts): the --target node's latest snapshot as JSON. A down
  // datastore is a 503 with Replicante's error body, never the last good (stale) snapshot.
  const agentVersion = opts.agentVersion ?? {
    checkout: 'unknown',
    number: EXPORTER_VERSION,
    taint: 'unknown',
  };
  app.get(`${REPLICANTE_API}/info/agent`, (_req, res) => {
    res.json(agentInfo(agentVersion));
  });
  const fromSnapshot = (map: (snapshot: Snapshot) => unknown) => (_req: Request, res: Response) => {
    if (!state) {
      res
        .status(404)
        .json(errorBody('no --target: the agent API describes the --target node (see /probe for others)'));
      return;
    }
    const current = state();
    if (current.snapshot) {
      res.json(map(current.snapshot));
    } else if (!current.attempted) {
      res.status(503).json(errorBody('the first collection from the datastore has not finished yet'));
    } else {
      res
        .status(503)
        .json(errorBody(`datastore unavailable: ${current.lastError ?? 'the last collection failed'}`));
    }
  };
  app.get(`${REPLICANTE_API}/info/datastore`, fromSnapshot(datastoreInfo));
  app.get(`${REPLICANTE_API}/shards`, fromSnapshot(shardsInfo));

  // The status page: everything it shows was published by the collector; it never waits on the datastore.
  const statusContext: StatusPageContext = {
    ...opts.status,
    version: versionInfo(),
    telemetryPath: opts.telemetryPath,
    apiRoot: REPLICANTE_API,
    probe: !!probe,
  };
  app.get('/', (req, res) => {
    const html = renderStatusPage(statusContext, {
      state: state?.(),
      nowSeconds: Date.now() / 1000,
      refreshSeconds: parseRefresh(req.query.refresh),
    });
    // A status page must never be served from a cache (browser or proxy) as if it were current.
    res.set('Cache-Control', 'no-store').type('html').send(html);
  });

  if (renderer && !probe && !opts.discovery && !guarded(opts.web)) {
    serveScrapesBeforeExpress(app, renderer, telemetryPath);
  }
  return app;
}

/**
 * The hot path: a plain scrape of the telemetry path (GET or HEAD, the exact path with or without a
 * query, no conditional request headers) is answered from the prepared bytes before Express's
 * router, request and response set-up run at all. Everything else (other paths, conditional
 * requests, a render that fails) goes through Express, whose middleware above gives the same answer.
 * Only installed when the answer is the collector's alone (no /probe, /discover) and no web guard
 * (basic auth, rate limit, headers) applies: guarded scrapes stay behind the guard, in Express.
 */
function serveScrapesBeforeExpress(app: Express, renderer: MetricsRenderer, telemetryPath: string): void {
  const withQuery = `${telemetryPath}?`;
  const expressHandle = (
    app as unknown as { handle: (req: Request, res: Response, next?: NextFunction) => void }
  ).handle;
  const viaExpress = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void =>
    expressHandle.call(app, req as Request, res as Response, next);
  (app as unknown as { handle: typeof viaExpress }).handle = (req, res, next) => {
    const { url, method, headers } = req;
    if (
      (method !== 'GET' && method !== 'HEAD') ||
      (url !== telemetryPath && !url?.startsWith(withQuery)) ||
      headers['if-none-match'] !== undefined ||
      headers['if-modified-since'] !== undefined
    ) {
      viaExpress(req, res, next);
      return;
    }
    const contentType = negotiateContentType(headers.accept);
    const gzipped = acceptsGzip(headers['accept-encoding']);
    const ready = renderer.preparedNow(contentType);
    const body = ready && (gzipped ? ready.gzipReady : ready.identity);
    if (body) {
      writePrepared(req, res, body);
      return;
    }
    renderer
      .prepared(contentType)
      .then((prepared) => (gzipped ? prepared.gzip() : prepared.identity))
      .then(
        (prepared) => writePrepared(req, res, prepared),
        // Express's middleware renders again and answers 500 (and logs) if it fails again.
        () => viaExpress(req, res, next),
      );
  };
}
