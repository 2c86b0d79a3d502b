/**
 * Real RabbitMQ nodes for tests (Debian rabbitmq-server 3.10 on Erlang 25): a cluster of N nodes on
 * loopback, each in the foreground (`RUNNING_UNDER_SYSTEMD=true` makes rabbitmq-server exec erl, so
 * the PID we hold is the node's beam.smp), with its own node name, AMQP, distribution, management and
 * Prometheus ports, data directory and HOME (holding the shared Erlang cookie). The nodes register
 * with an epmd of the test's own, on a free port and in the foreground too, so nothing outlives the
 * test and other RabbitMQ/Erlang nodes on the machine are not touched.
 *
 * The first node boots alone, then the others join it through the classic_config peer discovery
 * (started together; ~20 s for three on this 2-core machine).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { promisify } from 'node:util';
import { freePorts, requireBinary, startProcess, tempDir, waitFor, type ServerProcess } from './processes';

const execFileAsync = promisify(execFile);

export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
export const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
export const EPMD = '/usr/bin/epmd';

export interface RabbitNode {
  /** Erlang node name, e.g. dsx1@localhost. */
  name: string;
  amqpPort: number;
  managementPort: number;
  prometheusPort: number;
  /** `amqp://guest:guest@127.0.0.1:<amqpPort>` for the test's own clients. */
  amqpUrl: string;
  process: ServerProcess;
  /** Runs a RabbitMQ CLI tool (rabbitmqctl, rabbitmq-queues...) against this node; stdout. */
  cli(tool: string, ...args: string[]): Promise<string>;
  /** GET a management API path as guest, parsed. */
  api<T = unknown>(path: string): Promise<T>;
  /** Start the node again on the same ports and data directory (after a stop or kill). */
  restart(): Promise<void>;
}

export interface RabbitCluster {
  name: string;
  nodes: RabbitNode[];
  running(): RabbitNode[];
  stop(): Promise<void>;
}

/** What rabbitmq-queues quorum_status says of each member: the node's own raft state. */
export async function raftStates(node: RabbitNode, queue: string, vhost = '/'): Promise<Map<string, string>> {
  const out = await node.cli(
    'rabbitmq-queues',
    'quorum_status',
    queue,
    '--vhost',
    vhost,
    '--formatter',
    'json',
  );
  const rows = JSON.parse(out) as { Node?: string; 'Node Name'?: string; 'Raft State'?: string }[];
  return new Map(rows.map((r) => [String(r['Node Name'] ?? r.Node), String(r['Raft State'])]));
}

async function waitBooted(n: RabbitNode, timeoutMs = 60000): Promise<void> {
  await waitFor(
    `rabbitmq ${n.name} booted`,
    async () => {
      if (n.process.exited()) throw new Error('exited');
      const res = await fetch(`http://127.0.0.1:${n.prometheusPort}/metrics/detailed?family=ra_metrics`, {
        signal: AbortSignal.timeout(2000),
      });
      return res.ok && (await n.api<{ node?: string }>('/api/overview')).node === n.name;
    },
    timeoutMs,
    250,
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}\n--- rabbitmq ${n.name} log tail ---\n${n.process.output().slice(-3000)}`,
    );
  });
}

export async function startRabbitCluster(size = 3): Promise<RabbitCluster> {
  requireBinary(RABBITMQ_SERVER, 'the Debian package rabbitmq-server');
  requireBinary(EPMD, 'the Debian package erlang-base (a dependency of rabbitmq-server)');
  const ports = await freePorts(1 + size * 4);
  const epmdPort = ports[0]!;
  const dir = tempDir('rabbitmq');
  const cookie = `dsx${epmdPort}cookie`;
  const clusterName = `dsx-rabbit-${epmdPort}`;
  const epmd = startProcess(EPMD, ['-port', String(epmdPort)], { env: { ERL_EPMD_ADDRESS: '127.0.0.1' } });
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `dsx${i + 1}@localhost`,
    amqpPort: ports[1 + 4 * i]!,
    distPort: ports[2 + 4 * i]!,
    managementPort: ports[3 + 4 * i]!,
    prometheusPort: ports[4 + 4 * i]!,
  }));
  const nodes = specs.map((spec, i): RabbitNode => {
    const base = `${dir.path}/n${i + 1}`;
    mkdirSync(`${base}/home`, { recursive: true });
    writeFileSync(`${base}/home/.erlang.cookie`, cookie);
    chmodSync(`${base}/home/.erlang.cookie`, 0o400);
    writeFileSync(`${base}/enabled_plugins`, '[rabbitmq_management,rabbitmq_prometheus].\n');
    writeFileSync(
      `${base}/rabbitmq.conf`,
      [
        `listeners.tcp.default = 127.0.0.1:${spec.amqpPort}`,
        `management.tcp.ip = 127.0.0.1`,
        `management.tcp.port = ${spec.managementPort}`,
        `prometheus.tcp.ip = 127.0.0.1`,
        `prometheus.tcp.port = ${spec.prometheusPort}`,
        `cluster_name = ${clusterName}`,
        'cluster_formation.peer_discovery_backend = classic_config',
        ...specs.map((s, j) => `cluster_formation.classic_config.nodes.${j + 1} = ${s.name}`),
        // guest may log in over loopback only by default; the tests connect over loopback anyway.
        'loopback_users = none',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      HOME: `${base}/home`,
      ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_NODENAME: spec.name,
      RABBITMQ_DIST_PORT: String(spec.distPort),
      RABBITMQ_CONFIG_FILE: `${base}/rabbitmq`,
      RABBITMQ_ENABLED_PLUGINS_FILE: `${base}/enabled_plugins`,
      RABBITMQ_MNESIA_BASE: `${base}/mnesia`,
      RABBITMQ_LOG_BASE: `${base}/log`,
      RABBITMQ_LOGS: '-',
      RABBITMQ_PID_FILE: `${base}/pid`,
      // Not /etc/rabbitmq/rabbitmq-env.conf: this node is configured by the variables above only.
      RABBITMQ_CONF_ENV_FILE: `${base}/no-env-file`,
      RUNNING_UNDER_SYSTEMD: 'true',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    const n: RabbitNode = {
      name: spec.name,
      amqpPort: spec.amqpPort,
      managementPort: spec.managementPort,
      prometheusPort: spec.prometheusPort,
      amqpUrl: `amqp://guest:guest@127.0.0.1:${spec.amqpPort}`,
      process: undefined as unknown as ServerProcess,
      async cli(tool, ...args) {
        const { stdout } = await execFileAsync(`${RABBITMQ_BIN}/${tool}`, ['-n', spec.name, ...args], {
          env: { ...process.env, ...env },
          timeout: 30000,
        });
        return stdout;
      },
      async api<T>(path: string): Promise<T> {
        const res = await fetch(`http://127.0.0.1:${spec.managementPort}${path}`, {
          headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`GET ${path} on ${spec.name}: HTTP ${res.status}`);
        return (await res.json()) as T;
      },
      async restart() {
        n.process = startProcess(RABBITMQ_SERVER, [], { env });
        await waitBooted(n);
      },
    };
    return n;
  });
  const cluster: RabbitCluster = {
    name: clusterName,
    nodes,
    running: () => nodes.filter((n) => n.process && !n.process.exited()),
    async stop() {
      // Throw-away data: a short grace, then SIGKILL (a clean RabbitMQ stop takes seconds per node).
      await Promise.all(nodes.filter((n) => n.process).map((n) => n.process.stop(3000)));
      await epmd.stop(1000);
      dir.remove();
    },
  };
  try {
    await nodes[0]!.restart();
    await Promise.all(nodes.slice(1).map((n) => n.restart()));
    await waitFor(
      `all ${size} rabbitmq nodes clustered`,
      async () => {
        const seen = await nodes[0]!.api<{ name: string; running: boolean }[]>('/api/nodes');
        return seen.filter((s) => s.running).length === size;
      },
      30000,
      250,
    );
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
