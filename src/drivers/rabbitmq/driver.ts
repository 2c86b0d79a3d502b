/**
 * RabbitMQ quorum queue driver (RabbitMQ >= 3.10 with the management and prometheus plugins):
 * `rabbitmq://monitor@host:15672` (the management port), the Prometheus plugin on the same host at
 * `?prometheus_port=` (default 15692).
 *
 * Mapping (docs/rabbitmq.md; the logic is in drivers/rabbitmq/parse.ts, this file only does I/O). One
 * collection is three HTTP GETs:
 *  1. Prometheus `/metrics` (node-local): node name, cluster name and permanent id, version, client
 *     connections, messages received and delivered by this node.
 *  2. Prometheus `/metrics/detailed?family=ra_metrics` (node-local): the quorum queue members running on
 *     this node, with their raft commit index: the shards, and their commit offsets.
 *  3. Management `/api/queues?disable_stats=true` (the replicated queue records): each quorum queue's
 *     leader, for the role. This one is NOT purely local: the management plugin checks that the
 *     recorded leader is alive with a call to its node (measured: ~1 s per queue when that node hangs).
 *     RabbitMQ 3.10 exposes a member's own raft state over no HTTP endpoint, so the role comes from
 *     here; it gets half of the collection deadline, and when it fails or runs out the shards are still
 *     reported, with role unknown ('leader-unknown'), and everything local stays up.
 *  - Last operation: the time the exporter first saw a queue's commit index advance.
 *  - Lag: absent (a follower knows the commit index the leader last sent it, not how far behind it is
 *    in time).
 *
 * Why HTTP and not AMQP or the Erlang distribution: an AMQP connection counts as a client and says
 * nothing about roles; the distribution needs the Erlang cookie, which is full control of the node.
 */
import { ConfigError } from '../../core/errors';
import type { Driver, DriverOptions, MemberList, Observation } from '../../core/model';
import { rabbitMembers } from './members';
import { AdvanceTrackers } from '../shared/advance-tracker';
import { HttpGetter, type HttpReply } from '../shared/http-getter';
import { ReadBudget } from '../shared/read-budget';
import {
  parseLocalMembers,
  parseNodeMetrics,
  parseQueueList,
  queueShardId,
  rabbitShards,
  type QueueRecord,
} from './parse';

const PARAMS = ['prometheus_port'] as const;
const DEFAULT_PROMETHEUS_PORT = 15692;
/**
 * What one collection may read (drivers/shared/read-budget.ts): /metrics is ~90 kB, /api/queues
 * without stats ~300 bytes per queue, the ra_metrics family a few hundred bytes per local member.
 */
const READ_BUDGET_BYTES = 16 * 1024 * 1024;
/** Only the columns the role needs: the reply stays small on clusters with many queues. */
const QUEUES_PATH = '/api/queues?disable_stats=true&columns=name,vhost,type,leader,members';

export class RabbitmqDriver implements Driver {
  private readonly prometheus: HttpGetter;
  private readonly management: HttpGetter;
  private readonly trackers = new AdvanceTrackers();
  private roleFailureLogged?: string;
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'rabbitmq');

  constructor(private readonly opts: DriverOptions) {
    const { target } = opts;
    const params = target.url.searchParams;
    for (const key of params.keys()) {
      if (!(PARAMS as readonly string[]).includes(key)) {
        throw new ConfigError(
          `--target: unknown rabbitmq URL parameter "${key}" (supported: ${PARAMS.join(', ')})`,
        );
      }
    }
    const rawPort = params.get('prometheus_port');
    const prometheusPort = rawPort === null ? DEFAULT_PROMETHEUS_PORT : Number(rawPort);
    if (!Number.isInteger(prometheusPort) || prometheusPort < 1 || prometheusPort > 65535) {
      throw new ConfigError('--target: prometheus_port must be a TCP port (1-65535)');
    }
    if (target.username === undefined) {
      throw new ConfigError(
        '--target: a rabbitmq:// target needs a management user (rabbitmq://monitor@host:15672; see docs/rabbitmq.md)',
      );
    }
    this.prometheus = new HttpGetter({
      host: target.host,
      port: prometheusPort,
      label: 'rabbitmq prometheus',
      budget: this.budget,
    });
    this.management = new HttpGetter({
      host: target.host,
      port: target.port,
      label: 'rabbitmq management',
      budget: this.budget,
      auth: { username: target.username, password: target.password ?? '' },
    });
  }

  async connect(): Promise<void> {
    this.prometheus.open();
    this.management.open();
  }

  async close(): Promise<void> {
    this.prometheus.close();
    this.management.close();
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const started = Date.now();
    const node = parseNodeMetrics(ok(await this.prometheus.get('/metrics', this.opts.timeoutMs), '/metrics'));
    const members = parseLocalMembers(
      ok(
        await this.prometheus.get('/metrics/detailed?family=ra_metrics', this.opts.timeoutMs),
        '/metrics/detailed',
      ),
    );
    const records = members.length > 0 ? await this.queueRecords(started) : [];
    const shards = rabbitShards(members, records, node.node);
    const lastOps = this.trackers.observeAll(
      new Map(members.map((m) => [queueShardId(m.vhost, m.queue), m.commitIndex])),
    );
    for (const shard of shards) shard.lastOperationTimestampSeconds = lastOps.get(shard.id!);
    return {
      datastore: 'rabbitmq',
      version: node.version,
      nativeNodeId: node.node,
      nativeClusterId: node.clusterId ?? node.clusterName,
      clusterDisplayName: node.clusterName,
      shards,
      performance: {
        clientsConnected: node.connections,
        readsTotal: node.messagesDelivered,
        writesTotal: node.messagesReceived,
      },
    };
  }

  /** The cluster's nodes as this node's management plugin lists them (drivers/rabbitmq/members.ts). */
  async members(): Promise<MemberList> {
    const get = async (path: string): Promise<string> => {
      const reply = await this.management.get(path, this.opts.timeoutMs);
      if (reply.status === 200) return reply.body;
      throw new Error(
        `rabbitmq management ${path} answered HTTP ${reply.status}: ${reply.body.slice(0, 200).trim()}`,
      );
    };
    const [overview, nodes] = await this.budget.run(async () => [
      await get('/api/overview'),
      await get('/api/nodes?columns=name'),
    ]);
    return rabbitMembers(overview, nodes, { host: this.opts.target.host, port: this.opts.target.port });
  }

  /**
   * The queue records for the roles, within what is left of half the deadline. A refused login is an
   * error (bad configuration must show); a timeout or server error leaves the roles unknown.
   */
  private async queueRecords(started: number): Promise<QueueRecord[] | undefined> {
    const budget = Math.max(50, this.opts.timeoutMs / 2 - (Date.now() - started));
    let reply: HttpReply;
    try {
      reply = await this.management.get(QUEUES_PATH, budget);
    } catch (err) {
      this.roleUnavailable((err as Error).message);
      // A timed-out request was abandoned with its socket: start a fresh one for the next collection.
      this.management.open();
      return undefined;
    }
    if (reply.status === 401 || reply.status === 403) {
      throw new Error(
        `rabbitmq management /api/queues answered HTTP ${reply.status}: ${reply.body.slice(0, 200).trim()} (the user needs the "monitoring" tag; see docs/rabbitmq.md)`,
      );
    }
    if (reply.status !== 200) {
      this.roleUnavailable(`HTTP ${reply.status}: ${reply.body.slice(0, 200).trim()}`);
      return undefined;
    }
    this.roleFailureLogged = undefined;
    return parseQueueList(reply.body);
  }

  private roleUnavailable(reason: string): void {
    // Once per kind of failure, not every interval.
    if (this.roleFailureLogged === reason) return;
    this.roleFailureLogged = reason;
    this.opts.logger.warn('rabbitmq management /api/queues unavailable: quorum queue roles unknown', {
      err: reason,
    });
  }
}

function ok(reply: HttpReply, path: string): string {
  if (reply.status === 200) return reply.body;
  throw new Error(
    `rabbitmq prometheus ${path} answered HTTP ${reply.status}: ${reply.body.slice(0, 200).trim()}`,
  );
}

export function createDriver(opts: DriverOptions): Driver {
  return new RabbitmqDriver(opts);
}
