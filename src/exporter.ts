/**
 * Wires one exporter together: config -> driver -> collector -> HTTP server, plus the /probe service
 * when --probe.config-file is set.
 * Used by the CLI and by tests (which start it in-process on a free port).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Collector } from './core/collector';
import type { Config, ServerConfig } from './config/flags';
import { createDriver, driverForScheme } from './drivers/registry';
import type { Logger } from './core/logger';
import { DiscoveryService } from './probe/discovery';
import { ProbeService } from './probe/service';
import { agentVersion } from './http/replicante-api';
import { createApp } from './http/routes';
import { EXPORTER_VERSION, readBuildInfo } from './core/version';
import { connectionLimit, listenWeb } from './http/listener';

export interface RunningExporter {
  collector: Collector;
  /** GET /probe, when --probe.config-file is set. */
  probe?: ProbeService;
  /** GET /discover, with /probe. */
  discovery?: DiscoveryService;
  /** The server of the first --web.listen-address. */
  server: Server;
  /** One server per --web.listen-address, in the order given. */
  servers: Server[];
  /** The port actually bound by the first (useful with port 0). */
  port: number;
  stop(): Promise<void>;
}

/** An exporter that may run without a --target (only /probe). */
export interface RunningServer extends Omit<RunningExporter, 'collector'> {
  collector?: Collector;
}

/** The git details of this build: moved to core/version.ts, re-exported for existing callers. */
export { readBuildInfo } from './core/version';

/** `[::1]:9860`, `127.0.0.1:9860`, `:9860`: as --web.listen-address is written. */
function listenText(host: string | undefined, port: number): string {
  return `${host?.includes(':') ? `[${host}]` : (host ?? '')}:${port}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
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
    const driver = createDriver(registration, {
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
    status: config.target
      ? {
          target: config.target.redactedUrl,
          datastore: driverForScheme(config.target.scheme)?.name,
          collectIntervalSeconds: config.collectIntervalSeconds,
          collectTimeoutMs: config.collectTimeoutMs,
          heartbeatIntervalMs: config.heartbeatIntervalMs,
        }
      : undefined,
  });

  for (const warning of config.web?.warnings ?? []) logger.warn(warning);
  // Every --web.listen-address serves the same app; if one cannot be bound, none stays open.
  const servers: Server[] = [];
  // The connection limit (http/listener.ts) is shared out: all addresses together stay within it.
  const maxConnections = Math.max(16, Math.floor(connectionLimit() / config.listen.length));
  try {
    for (const address of config.listen) {
      servers.push(await listenWeb(app, config.web, address.port, address.host, logger, { maxConnections }));
    }
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }
  const server = servers[0]!;
  const port = (server.address() as AddressInfo).port;
  servers.forEach((s, i) => {
    logger.info('listening', {
      address: listenText(config.listen[i]!.host, (s.address() as AddressInfo).port),
      path: config.telemetryPath,
      probe: probe ? '/probe, /discover' : undefined,
      tls: config.web ? !!config.web.tls : undefined,
      client_auth: config.web?.tls?.clientAuth,
      basic_auth_users: config.web ? config.web.users.size : undefined,
    });
  });
  collector?.start();

  return {
    collector,
    probe,
    discovery,
    server,
    servers,
    port,
    async stop() {
      await Promise.all(servers.map(closeServer));
      await Promise.all([collector?.stop(), probe?.close(), discovery?.close()]);
    },
  };
}
