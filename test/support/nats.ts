/**
 * Real nats-server processes for tests (Debian nats-server 2.9): a JetStream cluster of N servers on
 * free loopback ports (client, cluster and monitoring ports), each in the foreground with its own
 * temporary store directory, and a test client (the `nats` package) to publish, consume and ask the
 * JetStream API for the servers' own view.
 */
import { writeFileSync } from 'node:fs';
import { connect, type NatsConnection } from 'nats';
import { freePorts, requireBinary, startProcess, tempDir, waitFor, type ServerProcess } from './processes';

export const NATS_SERVER = '/usr/sbin/nats-server';

export interface NatsServer {
  name: string;
  clientPort: number;
  monitorPort: number;
  /** `nats://127.0.0.1:<monitorPort>` for the exporter. */
  url: string;
  process: ServerProcess;
  /** GET a monitoring path of this server, parsed. */
  monitor<T = Record<string, unknown>>(path: string): Promise<T>;
  /** Start the server again on the same ports and store (after a stop or kill). */
  restart(): Promise<void>;
}

export interface NatsCluster {
  name: string;
  servers: NatsServer[];
  running(): NatsServer[];
  /** A client connection to the given servers (default: all running), for the test's own traffic. */
  client(servers?: NatsServer[]): Promise<NatsConnection>;
  stop(): Promise<void>;
}

async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET ${path} on ${port}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Until the server answers /healthz ok and knows a JetStream meta leader. */
async function waitReady(s: NatsServer, timeoutMs = 20000): Promise<void> {
  await waitFor(
    `nats ${s.name} ready`,
    async () => {
      if (s.process.exited()) throw new Error(`nats ${s.name} exited: ${s.process.output().slice(-1500)}`);
      const health = await s.monitor<{ status?: string }>('/healthz');
      const jsz = await s.monitor<{ meta_cluster?: { leader?: string } }>('/jsz');
      return health.status === 'ok' && !!jsz.meta_cluster?.leader;
    },
    timeoutMs,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- nats ${s.name} log tail ---\n${s.process.output().slice(-1500)}`);
  });
}

export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  requireBinary(NATS_SERVER, 'the Debian package nats-server');
  const ports = await freePorts(size * 3);
  const clusterName = `dsx-${ports[0]}`;
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    clientPort: ports[3 * i]!,
    routePort: ports[3 * i + 1]!,
    monitorPort: ports[3 * i + 2]!,
  }));
  const dir = tempDir('nats');
  const servers = specs.map((spec): NatsServer => {
    const conf = `${dir.path}/${spec.name}.conf`;
    writeFileSync(
      conf,
      [
        `server_name: ${spec.name}`,
        `listen: 127.0.0.1:${spec.clientPort}`,
        `http: 127.0.0.1:${spec.monitorPort}`,
        `jetstream { store_dir: "${dir.path}/${spec.name}-store" }`,
        'cluster {',
        `  name: ${clusterName}`,
        `  listen: 127.0.0.1:${spec.routePort}`,
        `  routes: [${specs.map((o) => `nats-route://127.0.0.1:${o.routePort}`).join(', ')}]`,
        '}',
        '',
      ].join('\n'),
    );
    const start = (): ServerProcess => startProcess(NATS_SERVER, ['-c', conf]);
    const s: NatsServer = {
      name: spec.name,
      clientPort: spec.clientPort,
      monitorPort: spec.monitorPort,
      url: `nats://127.0.0.1:${spec.monitorPort}`,
      process: start(),
      monitor: (path) => getJson(spec.monitorPort, path),
      async restart() {
        s.process = start();
        await waitReady(s);
      },
    };
    return s;
  });
  const cluster: NatsCluster = {
    name: clusterName,
    servers,
    running: () => servers.filter((s) => !s.process.exited()),
    client: (only) =>
      connect({
        servers: (only ?? cluster.running()).map((s) => `127.0.0.1:${s.clientPort}`),
        timeout: 5000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 200,
      }),
    async stop() {
      await Promise.all(servers.map((s) => s.process.stop(3000)));
      dir.remove();
    },
  };
  try {
    await Promise.all(servers.map((s) => waitReady(s)));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
