/**
 * Wires one exporter together: config -> driver -> collector -> HTTP server.
 * Used by the CLI and by tests (which start it in-process on a free port).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Collector } from './collector';
import type { Config } from './config';
import { driverForScheme } from './drivers';
import type { Logger } from './logger';
import { createApp } from './server';

export interface RunningExporter {
  collector: Collector;
  server: Server;
  /** The port actually bound (useful with port 0). */
  port: number;
  stop(): Promise<void>;
}

export async function startExporter(
  config: Config,
  logger: Logger,
  options: { processMetrics?: boolean } = {},
): Promise<RunningExporter> {
  const registration = driverForScheme(config.target.scheme)!;
  const driverLogger = logger.child({ datastore: registration.name, target: config.target.redactedUrl });
  const driver = registration.create({
    target: config.target,
    timeoutMs: config.collectTimeoutMs,
    logger: driverLogger,
    extra: config.driverExtra,
  });
  const collector = new Collector(driver, {
    intervalSeconds: config.collectIntervalSeconds,
    timeoutMs: config.collectTimeoutMs,
    maxBackoffSeconds: config.maxBackoffSeconds,
    identity: { target: config.target, nodeId: config.nodeId, clusterId: config.clusterId },
    logger: driverLogger,
    secrets: [config.target.password],
  });
  const app = createApp({
    telemetryPath: config.telemetryPath,
    state: () => collector.state,
    logger,
    processMetrics: options.processMetrics,
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.listenPort, config.listenHost ?? '', () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info('listening', { address: `${config.listenHost ?? ''}:${port}`, path: config.telemetryPath });
  collector.start();

  return {
    collector,
    server,
    port,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await collector.stop();
    },
  };
}
