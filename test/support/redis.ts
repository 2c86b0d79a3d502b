/** Real redis-server processes for tests: standalone, replicas and a Redis Cluster, on free ports. */
import { execFileSync } from 'node:child_process';
import {
  freePorts,
  portOpen,
  requireBinary,
  startProcess,
  tempDir,
  waitFor,
  type ServerProcess,
} from './processes';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';

export interface RedisNode {
  port: number;
  url: string;
  process: ServerProcess;
  dir: string;
  /** Runs redis-cli against this node and returns its raw output (trimmed). */
  cli(...args: string[]): string;
  /** INFO as key -> value. */
  info(section?: string): Map<string, string>;
  stop(): Promise<void>;
  /** Start the same node again (same port, same directory and config), e.g. after a kill. */
  restart(): Promise<void>;
}

export function redisCli(port: number, args: string[], password?: string): string {
  const auth = password ? ['-a', password, '--no-auth-warning'] : [];
  return execFileSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], {
    encoding: 'utf8',
  }).trim();
}

function parseInfoText(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

export async function startRedis(port: number, extraArgs: string[] = []): Promise<RedisNode> {
  requireBinary(REDIS_SERVER, 'the Debian package redis-server');
  const dir = tempDir(`redis-${port}`);
  const passwordAt = extraArgs.indexOf('--requirepass');
  const password = passwordAt >= 0 ? extraArgs[passwordAt + 1] : undefined;
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir.path,
    '--save',
    '',
    '--appendonly',
    'no',
    // Replicas would otherwise wait 5 s before the first sync.
    '--repl-diskless-sync-delay',
    '0',
    ...extraArgs,
  ];
  const node: RedisNode = {
    port,
    url: `redis://127.0.0.1:${port}`,
    process: startProcess(REDIS_SERVER, args),
    dir: dir.path,
    cli: (...a) => redisCli(port, a, password),
    info: (section) => parseInfoText(redisCli(port, section ? ['INFO', section] : ['INFO'], password)),
    async stop() {
      await node.process.stop();
      dir.remove();
    },
    async restart() {
      node.process = startProcess(REDIS_SERVER, args);
      await waitReady(node);
    },
  };
  await waitReady(node);
  return node;
}

async function waitReady(node: RedisNode): Promise<void> {
  await waitFor(`redis on port ${node.port} (output: ${node.process.output().slice(-500)})`, async () => {
    if (node.process.exited()) throw new Error(`redis-server exited: ${node.process.output().slice(-500)}`);
    return (await portOpen(node.port)) && node.cli('PING') === 'PONG';
  });
}

export async function startRedisPair(
  replicas: number,
): Promise<{ primary: RedisNode; replicas: RedisNode[] }> {
  const [p, ...rs] = await freePorts(1 + replicas);
  const primary = await startRedis(p!);
  const nodes = await Promise.all(
    rs.map((port) => startRedis(port, ['--replicaof', '127.0.0.1', String(p)])),
  );
  for (const r of nodes) {
    await waitFor(
      `replica ${r.port} in sync`,
      () => r.info('replication').get('master_link_status') === 'up',
    );
  }
  return { primary, replicas: nodes };
}

export interface RedisCluster {
  nodes: RedisNode[];
  stop(): Promise<void>;
}

/**
 * 3 masters + 3 replicas, created with redis-cli --cluster create; waits until every node agrees on
 * the slots and on which replica follows which master.
 * cluster-node-timeout is 2 s, so a killed master is replaced by its replica within a few seconds.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const ports = await freePorts(12);
  const nodes: RedisNode[] = [];
  for (let i = 0; i < 6; i++) {
    // The bus port defaults to port+10000, which may be taken: give each node a free one.
    nodes.push(
      await startRedis(ports[i]!, [
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(ports[6 + i]),
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
      ]),
    );
  }
  execFileSync(
    REDIS_CLI,
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitForClusterAgreement(nodes);
  await waitForMembershipAgreement(nodes);
  return { nodes, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

/** Until every node reports cluster_state:ok and the same set of masters with the same slots. */
export async function waitForClusterAgreement(nodes: RedisNode[], timeoutMs = 30000): Promise<void> {
  await waitFor(
    'redis cluster agreement',
    () => {
      const views = nodes.map((n) => {
        if (n.info('cluster').get('cluster_enabled') !== '1') return null;
        if (!/cluster_state:ok/.test(n.cli('CLUSTER', 'INFO'))) return null;
        return n
          .cli('CLUSTER', 'NODES')
          .split('\n')
          .filter((l) => /\bmaster\b/.test(l.split(' ')[2] ?? '') && l.split(' ').length > 8)
          .map((l) => `${l.split(' ')[0]}:${l.split(' ').slice(8).join(',')}`)
          .sort()
          .join('|');
      });
      const replicasSynced = nodes.every(
        (n) =>
          n.info('replication').get('role') !== 'slave' ||
          n.info('replication').get('master_link_status') === 'up',
      );
      return (
        views.every((v) => v !== null && v === views[0]) &&
        views[0]!.split('|').length === 3 &&
        replicasSynced
      );
    },
    timeoutMs,
    250,
  );
}

/**
 * Until every node lists the same replica -> master links. Right after creation, gossip takes a
 * moment to tell every node which replica follows which master, and until then a node derives its
 * shard from fewer members (docs/redis.md: a shard id is the lowest id among the members it knows).
 */
export async function waitForMembershipAgreement(nodes: RedisNode[]): Promise<void> {
  await waitFor(
    'every node knows every replica of every master',
    () => {
      const views = nodes.map((n) =>
        clusterNodes(n)
          .map((l) => `${l.id}>${l.masterId ?? '-'}`)
          .sort()
          .join('|'),
      );
      const links = views[0]!.split('|').filter((x) => !x.endsWith('>-'));
      return views.every((v) => v === views[0]) && links.length === nodes.length / 2;
    },
    30000,
    250,
  );
}

/** One line of CLUSTER NODES, parsed by the test itself (independently of the driver's parser). */
export interface ClusterNodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId?: string;
  /** Slot ranges as Redis writes them ('0-5460'), migration markers left out. */
  slots: string[];
}

/** CLUSTER NODES of one node, as redis-cli prints it. */
export function clusterNodes(node: RedisNode): ClusterNodeLine[] {
  return node
    .cli('CLUSTER', 'NODES')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(' ');
      return {
        id: f[0]!,
        port: Number(/:(\d+)@/.exec(f[1]!)?.[1]),
        flags: f[2]!.split(','),
        masterId: f[3] === '-' ? undefined : f[3],
        slots: f.slice(8).filter((s) => !s.startsWith('[')),
      };
    });
}

/** Whether `slot` is inside one of `ranges` ('0-5460', '7000'). */
export function slotInRanges(slot: number, ranges: string[]): boolean {
  return ranges.some((r) => {
    const [a, b] = r.split('-').map(Number);
    return slot >= a! && slot <= (b ?? a!);
  });
}

/**
 * Moves one slot with its keys from one master to another, the way redis-cli --cluster reshard does:
 * IMPORTING on the target, MIGRATING on the source, MIGRATE the keys in batches, then SETSLOT NODE on
 * the target, the source and every other master (so no node keeps an old view for long).
 */
export function moveSlot(nodes: RedisNode[], slot: number, from: RedisNode, to: RedisNode): void {
  const fromId = from.cli('CLUSTER', 'MYID');
  const toId = to.cli('CLUSTER', 'MYID');
  expectOk(to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId));
  expectOk(from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId));
  for (;;) {
    const keys = from
      .cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')
      .split('\n')
      .filter((k) => k !== '');
    if (keys.length === 0) break;
    expectOk(from.cli('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys));
  }
  expectOk(to.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', toId));
  expectOk(from.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', toId));
  for (const n of nodes) {
    if (n === from || n === to || n.process.exited()) continue;
    if (
      clusterNodes(n)
        .find((l) => l.flags.includes('myself'))
        ?.flags.includes('master')
    ) {
      n.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
    }
  }
}

function expectOk(reply: string): void {
  if (reply !== 'OK') throw new Error(`redis replied ${JSON.stringify(reply)}, not OK`);
}

/**
 * CLUSTER FAILOVER on a replica, until it is master. A manual failover that does not complete within
 * Redis's own manual-failover timeout (5 s) is abandoned by Redis (seen right after a cluster is
 * created, on a loaded machine): it is asked again, as an operator would, up to three times.
 */
export async function clusterFailover(replica: RedisNode): Promise<void> {
  const isMaster = (): boolean =>
    clusterNodes(replica)
      .find((l) => l.flags.includes('myself'))!
      .flags.includes('master');
  for (let attempt = 1; ; attempt++) {
    expectOk(replica.cli('CLUSTER', 'FAILOVER'));
    try {
      await waitFor(`CLUSTER FAILOVER on ${replica.port} (attempt ${attempt})`, isMaster, 7000, 100);
      return;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
}
