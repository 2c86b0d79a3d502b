/**
 * Runs the real exporter in-process for tests (real config parsing, driver, collector and HTTP
 * server on a free port) and scrapes it over HTTP.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { loadConfig, type Config } from '../../src/config/flags';
import { startExporter, type RunningExporter } from '../../src/exporter';
import { createLogger } from '../../src/core/logger';
import { freePort, startProcess, waitFor, type ServerProcess } from './processes';
import { parseExposition, type Sample } from './metrics-text';

export interface TestExporter extends RunningExporter {
  config: Config;
  logs: string[];
  /** GET /metrics and parse it. */
  scrape(): Promise<Sample[]>;
  /** GET /metrics as text. */
  scrapeText(): Promise<string>;
  /** Waits until `n` more collections have finished after this call. */
  nextCollections(n?: number): Promise<void>;
  /** Waits until the latest collection succeeded (datastore_up 1); the error says why if not. */
  waitUp(timeoutMs?: number): Promise<void>;
}

/** Starts an exporter with CLI-style flags; defaults: 1s interval, 800ms timeout, 127.0.0.1:0. */
export async function startTestExporter(flags: string[], env: NodeJS.ProcessEnv = {}): Promise<TestExporter> {
  // A flag may be given once: a default applies only where the test did not set its own.
  const given = (name: string): boolean => flags.some((f) => f === `--${name}` || f.startsWith(`--${name}=`));
  const defaults = [
    ['web.listen-address', '127.0.0.1:0'],
    ['collect.interval', '1s'],
    ['collect.timeout', '800ms'],
  ].flatMap(([name, value]) => (given(name!) ? [] : [`--${name}`, value!]));
  const config = loadConfig([...defaults, ...flags], env);
  if (typeof config === 'string') throw new Error(`unexpected ${config}`);
  const logs: string[] = [];
  const logger = createLogger('debug', 'logfmt', (line) => logs.push(line));
  const running = await startExporter(config, logger, { processMetrics: false });
  const scrapeText = async (): Promise<string> => {
    const res = await request(running.server).get(config.telemetryPath).expect(200);
    return res.text;
  };
  return {
    ...running,
    config,
    logs,
    scrapeText,
    scrape: async () => parseExposition(await scrapeText()),
    async waitUp(timeoutMs = 10000) {
      await waitFor(
        `datastore_up 1 for ${config.target.redactedUrl} (last error: ${running.collector.state.lastError ?? 'none'})`,
        () => running.collector.state.up,
        timeoutMs,
        20,
      );
    },
    async nextCollections(n = 1) {
      for (let i = 0; i < n; i++) {
        const before = running.collector.state;
        await waitFor('a collection', () => running.collector.state !== before, 15000, 20);
      }
    },
  };
}

/** The built bin (`npm run build`; `npm test` builds first). */
export const EXPORTER_CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

export interface ExporterProcess {
  port: number;
  process: ServerProcess;
  stop(): Promise<void>;
}

/**
 * Runs the built exporter as a child process, as in production: for tests whose own process blocks
 * (synchronous redis-cli calls on a loaded machine) while a real Prometheus scrapes the exporters,
 * where an in-process exporter would miss scrapes and make its series go stale. Same defaults as
 * startTestExporter: 1 s interval, 800 ms timeout. Resolves once datastore_up is 1. `port`: listen on
 * that port (to start an exporter again where Prometheus scrapes it), else a free one.
 */
export async function startExporterProcess(flags: string[], listenPort?: number): Promise<ExporterProcess> {
  if (!existsSync(EXPORTER_CLI)) throw new Error(`${EXPORTER_CLI} is missing: run npm run build first`);
  const port = listenPort ?? (await freePort());
  const child = startProcess(process.execPath, [
    EXPORTER_CLI,
    '--web.listen-address',
    `127.0.0.1:${port}`,
    '--collect.interval',
    '1s',
    '--collect.timeout',
    '800ms',
    ...flags,
  ]);
  await waitFor(
    `exporter process on ${port} up (output: ${child.output().slice(-500)})`,
    async () => {
      if (child.exited()) throw new Error(`exporter exited: ${child.output().slice(-1000)}`);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
      return res?.ok && /^datastore_up 1$/m.test(await res.text());
    },
    20000,
    100,
  );
  return { port, process: child, stop: () => child.stop() };
}
