/**
 * The HTTP surface: /metrics (or --web.telemetry-path), /healthz, /ready and a small landing page.
 * It only reads what the collector published; no request ever waits on the datastore.
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import express, { type Express, type Request, type Response } from 'express';
import type { CollectorState } from './collector';
import { MetricsRenderer, negotiateContentType } from './metrics';
import type { Logger } from './logger';

const gzipAsync = promisify(gzip);

export interface AppOptions {
  telemetryPath: string;
  state: () => CollectorState;
  logger: Logger;
  /** prom-client's process/nodejs metrics; off in tests that count series. */
  processMetrics?: boolean;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function createApp(opts: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  const renderer = new MetricsRenderer(opts.state, opts.processMetrics ?? true);

  app.get(opts.telemetryPath, async (req: Request, res: Response) => {
    try {
      const contentType = negotiateContentType(req.get('accept'));
      const body = await renderer.render(contentType);
      res.set('Content-Type', contentType);
      res.vary('Accept').vary('Accept-Encoding');
      if (/\bgzip\b/.test(req.get('accept-encoding') ?? '')) {
        res.set('Content-Encoding', 'gzip').send(await gzipAsync(body));
      } else {
        res.send(body);
      }
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
  app.get('/ready', (_req, res) => {
    if (opts.state().attempted) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send('first collection not finished yet\n');
  });

  app.get('/', (_req, res) => {
    const path = escapeHtml(opts.telemetryPath);
    res
      .type('html')
      .send(
        `<!doctype html><html><head><title>datastore-exporter</title></head><body>` +
          `<h1>datastore-exporter</h1><p><a href="${path}">Metrics</a></p>` +
          `<p><a href="/healthz">Health</a> · <a href="/ready">Readiness</a></p></body></html>\n`,
      );
  });

  return app;
}
