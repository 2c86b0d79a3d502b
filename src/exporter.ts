/**
 * Wires one exporter together: config -> driver -> collector -> HTTP server, plus the /probe service
 * when --probe.config-file is set.
 * Used by the CLI and by tests (which start it in-process on a free port).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Collector } from './core/collector';
import type { Config, ServerConfig } from './config/flags';
import { driverForScheme } from './drivers/registry';
import type { Logger } from './core/logger';
import { DiscoveryService } from './probe/discovery';
import { ProbeService } from './probe/service';
import { agentVersion } from './http/replicante-api';
import { createApp } from './http/routes';
import { EXPORTER_VERSION } from './core/version';
import { listenWeb } from './http/listener';

export interface RunningExporter {
  collector: Collector;
  /** GET /probe, when --probe.config-file is set. */
  probe?: ProbeService;
  /** GET /discover, with /probe. */
  discovery?: DiscoveryService;
  server: Server;
  /** The port actually bound (useful with port 0). */
  port: number;
  stop(): Promise<void>;
}

/** An exporter that may run without a --target (only /probe). */
export interface RunningServer extends Omit<RunningExporter, 'collector'> {
  collector?: Collector;
}

/**
 * The git details of this build, for Replicante's agent info: DATASTORE_EXPORTER_GIT_COMMIT /
 * DATASTORE_EXPORTER_GIT_TAINT, else build-info.json next to package.json ({"commit", "taint"}, written
 * at build time, see docs/replicante.md), else unknown.
 */
export function readBuildInfo(
  env: NodeJS.ProcessEnv = process.env,
  file = join(__dirname, '..', 'build-info.json'),
): { checkout?: string; taint?: string } {
  let info: { commit?: unknown; taint?: unknown } = {};
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as typeof info;
  } catch {
    // Not written by this build (e.g. running from a source checkout): unknown.
  }
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
  return {
    checkout: env.DATASTORE_EXPORTER_GIT_COMMIT || text(info.commit),
    taint: env.DATASTORE_EXPORTER_GIT_TAINT || text(info.taint),
  };
}

/** The single-target exporter (a --target is required); /probe too if configured. */
export async function startExporter(
  config: Config,
  logger: Logger,
  options: { processMetrics?: boolean } = {},
): Promise<RunningExporter> {
  const running = await startServer(config, logger, options);
  return { ...running, collector: running.collector! };
}

/** Any configuration: a --target collector, /probe, or both. */
export async function startServer(
  config: ServerConfig,
  logger: Logger,
  options: { processMetrics?: boolean } = {},
): Promise<RunningServer> {
  let collector: Collector | undefined;
  if (config.target) {
    const target = config.target;
    const registration = driverForScheme(target.scheme)!;
    const driverLogger = logger.child({ datastore: registration.name, target: target.redactedUrl });
    const driver = registration.create({
      target,
      timeoutMs: config.collectTimeoutMs,
      logger: driverLogger,
      extra: config.driverExtra,
      heartbeat: config.heartbeatIntervalMs !== undefined,
    });
    collector = new Collector(driver, {
      intervalSeconds: config.collectIntervalSeconds,
      timeoutMs: config.collectTimeoutMs,
      maxBackoffSeconds: config.maxBackoffSeconds,
      identity: {
        target,
        nodeId: config.nodeId,
        clusterId: config.clusterId,
        fallbackClusterId: config.fallbackClusterId,
      },
      logger: driverLogger,
      secrets: [target.password],
      heartbeat: config.heartbeatIntervalMs ? { intervalMs: config.heartbeatIntervalMs } : undefined,
    });
  }
  const probe = config.probe
    ? new ProbeService(config.probe, logger.child({ component: 'probe' }))
    : undefined;
  const discovery = config.probe
    ? new DiscoveryService(config.probe, logger.child({ component: 'discovery' }))
    : undefined;
  const single = collector;
  const app = createApp({
    telemetryPath: config.telemetryPath,
    state: single ? () => single.state : undefined,
    logger,
    processMetrics: options.processMetrics,
    probe,
    discovery,
    agentVersion: agentVersion(readBuildInfo(), EXPORTER_VERSION),
    web: config.web,
  });

  for (const warning of config.web?.warnings ?? []) logger.warn(warning);
  const server: Server = await listenWeb(app, config.web, config.listenPort, config.listenHost, logger);
  const port = (server.address() as AddressInfo).port;
  logger.info('listening', {
    address: `${config.listenHost ?? ''}:${port}`,
    path: config.telemetryPath,
    probe: probe ? '/probe, /discover' : undefined,
    tls: config.web ? !!config.web.tls : undefined,
    client_auth: config.web?.tls?.clientAuth,
    basic_auth_users: config.web ? config.web.users.size : undefined,
  });
  collector?.start();

  return {
    collector,
    probe,
    discovery,
    server,
    port,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all([collector?.stop(), probe?.close(), discovery?.close()]);
    },
  };
}
