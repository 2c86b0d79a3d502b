/**
 * Redis driver (standalone, replication, Redis Cluster), over one node-redis connection.
 *
 * Mapping (docs/redis.md):
 *  - version: INFO server redis_version. Role: INFO replication role (master -> primary, slave ->
 *    secondary); in Cluster mode the node's own CLUSTER NODES flags, read in the same view as its slots.
 *  - Shards: standalone/replication: one shard (the whole dataset). Cluster: the shard of the master
 *    this node is or replicates, named by CLUSTER MYSHARDID (7.2+, Valkey) or, on 7.0, after the
 *    lowest node id among its members (./cluster.ts), with its slot ranges as key ranges.
 *  - node id: CLUSTER MYID in Cluster mode; standalone Redis has no stable id (run_id changes on restart).
 *  - cluster id: in Cluster mode the lowest node id the node knows (./cluster.ts). Standalone and
 *    replicated Redis have no cluster identity: the core's fallback, with the replication id
 *    (master_replid) as the replication group, so that rules see two groups behind one cluster id.
 *  - Lag: Redis cannot tell a replica how far behind it is in seconds. Reported only while the link to
 *    the primary is down (seconds since it went down: the replica's data is at least that old); else
 *    absent, with the replication offset (bytes) as commit offset. Never a fake 0.
 *  - Last operation: Redis keeps no last-write time: the time writes_total was first seen to advance.
 *    Not the replication offset, which moves every 10 s with the primary's PINGs to its replicas.
 *  - Reads/writes: INFO commandstats calls, split by each command's COMMAND INFO flags (readonly vs
 *    write), cached per command. Not total_reads_processed: those are socket reads, not operations.
 *  - Clients: connected_clients (which leaves out the replicas' links on a primary) minus the
 *    exporter's own connection and, on a replica, its link to the primary.
 *
 * Heartbeat traffic (docs/redis.md "Heartbeat mode") is kept out of the numbers by EVERY exporter,
 * with or without --heartbeat, since the key is fixed: each collection reads the shard's heartbeat
 * key (SUBSTR, which no exporter counts as a read); its `s` counts the heartbeat SETs the node
 * applied, which are subtracted from writes_total (and so from last-op). Without read access to the
 * key (NOPERM) nothing is subtracted.
 */
import { Socket } from 'node:net';
import { RedisClient } from '@redis/client';
import { AdvanceTracker } from '../shared/advance-tracker';
import { ReadBudget } from '../shared/read-budget';
import type {
  DriverOptions,
  HeartbeatDriver,
  HeartbeatStore,
  MemberList,
  Observation,
  ShardObservation,
} from '../../core/model';
import { CounterWithoutHeartbeats } from '../shared/heartbeat-exclusion';
import { clusterIdOf, DerivedShardIds, isPermissionDenied, isUnknownSubcommand, localShard } from './cluster';
import { formatHeartbeatJson, parseHeartbeatJson, type HeartbeatJson } from '../shared/heartbeat-json';
import { HEARTBEAT_READ_COMMAND, heartbeatKey, heartbeatReadArgs } from './heartbeat';
import { clusterMembers, replicationMembers } from './members';
import {
  commandKind,
  type CommandKind,
  infoNumber,
  parseClusterNodes,
  parseCommandStats,
  parseInfo,
} from './parse';

/**
 * node-redis builds a client CLASS (every command as closures: ~220 KiB of heap) per distinct options
 * object: createClient() caches one class, keyed by the JSON of ALL its options, so clients that
 * differ only in port or database (every pooled /probe target) would each build their own. The class
 * depends only on RESP, modules, functions and scripts: built once here, for every connection.
 */
const clientClass = RedisClient.factory({ RESP: 2 });

type Client = ReturnType<typeof clientClass>;

/** Sections we need; asking for them by name (Redis >= 7) keeps INFO small. */
const INFO_SECTIONS = ['server', 'clients', 'replication', 'commandstats', 'cluster'];

/** Name visible in CLIENT LIST, so operators can tell the exporter's connection apart. */
const CLIENT_NAME = 'datastore-exporter';

/**
 * What one collection may read (drivers/shared/read-budget.ts). INFO is ~5-15 KiB, COMMAND INFO for
 * every command ~60 KiB, CLUSTER NODES ~150 bytes per node (a 1,000-node cluster: ~150 KiB).
 */
const READ_BUDGET_BYTES = 2 * 1024 * 1024;

export class RedisDriver implements HeartbeatDriver {
  private client?: Client;
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'redis');
  private multiSectionInfo = true;
  /** Command kinds survive reconnects: a command's flags do not change while a server runs. */
  private readonly kinds = new Map<string, CommandKind>();
  private readonly writes = new AdvanceTracker();
  private clusterMode = false;
  /** A Cluster replica serves reads of its master's slots only after READONLY, once per connection. */
  private readonlySent = false;
  /** False once the server said it has no CLUSTER MYSHARDID (before 7.2) or refused it (ACL). */
  private myShardIdAvailable = true;
  /** Redis 7.0: the shard ids derived from CLUSTER NODES, as published (kept across reconnects). */
  private readonly derivedShardIds = new DerivedShardIds();
  /** The slots the local shard owned at the last collection: where its heartbeat key must live. */
  private shardSlots?: string;

  /** Next sequence number to write, while this node writes heartbeats (undefined: read it first). */
  private writerSeq?: number;
  /**
   * How this connection reads the heartbeat key: SUBSTR; GET where the ACL allows only that (its
   * reads then count in other exporters' reads_total); none where the ACL allows neither. Asked
   * again after a reconnect.
   */
  private heartbeatRead: 'substr' | 'get' | 'none' = 'substr';
  private readonly writesWithoutHeartbeats = new CounterWithoutHeartbeats();

  constructor(private readonly opts: DriverOptions) {}

  readonly heartbeat: HeartbeatStore = {
    write: async (shardId, record) => {
      const key = heartbeatKey(shardId, this.shardSlots);
      // A Cluster shard without slots has nowhere to keep a heartbeat (any key is another shard's).
      if (key === undefined) return;
      // Continue the shard's sequence from the replicated value (a new primary after a failover too).
      this.writerSeq ??= ((await this.readHeartbeat(key))?.seq ?? 0) + 1;
      await this.command(['SET', key, formatHeartbeatJson(record, this.writerSeq)]);
      this.writerSeq++;
    },
  };

  /** The heartbeat key's value on this node; undefined when there is none, or the ACL refuses it. */
  private async readHeartbeat(key: string): Promise<HeartbeatJson | undefined> {
    if (this.heartbeatRead === 'none') return undefined;
    if (this.clusterMode && !this.readonlySent) {
      await this.command(['READONLY']);
      this.readonlySent = true;
    }
    try {
      const args = this.heartbeatRead === 'substr' ? heartbeatReadArgs(key) : ['GET', key];
      return parseHeartbeatJson(await this.command<string | null>(args));
    } catch (err) {
      if (!/NOPERM/.test((err as Error).message)) throw err;
      if (this.heartbeatRead === 'substr') {
        this.heartbeatRead = 'get';
        this.opts.logger.debug('the ACL does not allow SUBSTR on the heartbeat key: trying GET', { key });
        return this.readHeartbeat(key);
      }
      // In heartbeat mode a set-up problem: the collection fails and says so (asked again next time).
      if (this.opts.heartbeat) {
        this.heartbeatRead = 'substr';
        throw new Error(
          `the ACL does not allow reading the heartbeat key ${key}: grant +substr +set ~__datastore_exporter:* (docs/redis.md): ${(err as Error).message}`,
        );
      }
      // Expected with the least-privilege ACL of default mode; asking every time would fill the ACL log.
      this.heartbeatRead = 'none';
      this.opts.logger.debug(
        'the ACL does not allow reading the heartbeat key: heartbeat writes, if any, count as writes (docs/redis.md)',
        { key, err: (err as Error).message },
      );
      return undefined;
    }
  }

  async connect(): Promise<void> {
    const { target, timeoutMs } = this.opts;
    // TLS: node-redis hands its options to tls.connect, which reads an unconnected socket given as
    // `socket` through stream events (JSStreamSocket), so every encrypted byte passes the budget.
    // Plain TCP: node-redis makes the socket itself; the budget watches it being created.
    const tlsTransport = target.scheme === 'rediss' ? new Socket() : undefined;
    if (tlsTransport) this.budget.watch(tlsTransport);
    // RESP again for the connection itself (its handshake and reply queue read the instance options).
    const options: NonNullable<Parameters<typeof clientClass>[0]> & { RESP: 2 } = {
      socket: {
        host: target.host,
        port: target.port,
        ...(tlsTransport ? { tls: true as const, socket: tlsTransport } : {}),
        connectTimeout: timeoutMs,
        // The collector owns reconnects (with backoff); the client must not retry behind its back.
        reconnectStrategy: false,
      },
      username: target.username,
      password: target.password,
      database: Number(target.url.pathname.slice(1)) || undefined,
      name: CLIENT_NAME,
      RESP: 2,
      // Fail at once while disconnected instead of queueing commands for later.
      disableOfflineQueue: true,
    };
    const client = clientClass(options);
    // Without a listener an 'error' event would crash the process; failures surface on commands.
    client.on('error', (err: Error) =>
      this.opts.logger.debug('redis connection error', { err: err.message }),
    );
    this.client = client as Client;
    this.readonlySent = false;
    this.writerSeq = undefined;
    // A server restarted on a newer version may have CLUSTER MYSHARDID now.
    this.myShardIdAvailable = true;
    this.heartbeatRead = 'substr';
    await this.budget.run(() => {
      const connecting = this.budget.watchSocketsCreatedBy(() => client.connect());
      // tls.connect ran inside connect() and wrapped the transport: now it may open.
      tlsTransport?.connect(target.port, target.host);
      return connecting;
    });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client?.isOpen) client.destroy();
    this.budget.destroyAll();
  }

  private async command<T>(args: string[]): Promise<T> {
    if (!this.client?.isReady) throw new Error('redis connection is not open');
    return this.client.sendCommand<T>(args);
  }

  private async info(): Promise<Map<string, string>> {
    if (this.multiSectionInfo) {
      try {
        return parseInfo(await this.command<string>(['INFO', ...INFO_SECTIONS]));
      } catch (err) {
        // Redis < 7 accepts one section only: fall back to 'all' (which includes commandstats).
        if (!/syntax|wrong number/i.test((err as Error).message)) throw err;
        this.multiSectionInfo = false;
      }
    }
    return parseInfo(await this.command<string>(['INFO', 'all']));
  }

  /** Learns the kind of commands not seen before with one COMMAND INFO round trip. */
  private async classify(commands: Iterable<string>): Promise<void> {
    const unknown = [...commands].filter((c) => !this.kinds.has(c));
    if (unknown.length === 0) return;
    const replies = await this.command<unknown[]>(['COMMAND', 'INFO', ...unknown]);
    unknown.forEach((name, i) => {
      const entry = replies[i];
      const flags =
        Array.isArray(entry) && Array.isArray(entry[2]) ? (entry[2] as unknown[]).map(String) : [];
      this.kinds.set(name, commandKind(flags));
    });
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const info = await this.info();
    const calls = parseCommandStats(info);
    await this.classify(calls.keys());
    let rawReads = 0;
    let rawWrites = 0;
    for (const [name, n] of calls) {
      // Every exporter's heartbeat reads (heartbeat.ts HEARTBEAT_READ_COMMAND) are no client reads.
      if (name === HEARTBEAT_READ_COMMAND) continue;
      const kind = this.kinds.get(name);
      if (kind === 'read') rawReads += n;
      else if (kind === 'write') rawWrites += n;
    }

    const isReplica = info.get('role') === 'slave';
    const connected = infoNumber(info, 'connected_clients');
    // A replica counts its link to the primary (the "master" client) among its clients once the link
    // is up; a primary leaves its replicas' links out. Neither is a client of the data.
    const replicationLinks = isReplica && info.get('master_link_status') === 'up' ? 1 : 0;
    const observation: Observation = {
      datastore: 'redis',
      version: info.get('redis_version') ?? 'unknown',
      shards: [],
      performance: {
        clientsConnected: connected === undefined ? undefined : Math.max(0, connected - 1 - replicationLinks),
      },
    };

    const shard: Omit<ShardObservation, 'role'> = {
      nativeRole: info.get('role'),
      lagSeconds: replicaLagSeconds(info),
    };
    const offset = infoNumber(info, isReplica ? 'slave_repl_offset' : 'master_repl_offset');
    if (offset !== undefined && offset >= 0) shard.commitOffset = { value: offset, unit: 'bytes' };

    this.clusterMode = info.get('cluster_enabled') === '1';
    this.shardSlots = undefined;
    if (this.clusterMode) {
      const [myId, nodesText, nativeShardId] = await Promise.all([
        this.command<string>(['CLUSTER', 'MYID']),
        this.command<string>(['CLUSTER', 'NODES']),
        this.myShardId(),
      ]);
      observation.nativeNodeId = myId;
      const nodes = parseClusterNodes(nodesText);
      observation.nativeClusterId = clusterIdOf(nodes);
      const local = localShard(
        nodes,
        myId,
        nativeShardId ?? ((masterId) => this.derivedShardIds.next(nodes, masterId)),
      );
      const flags = nodes.find((n) => n.id === myId)?.flags ?? [];
      if (local) {
        this.shardSlots = local.slots;
        const isMaster = local.isMaster && flags.includes('master');
        const isSlave = !local.isMaster && flags.includes('slave');
        observation.shards.push({
          ...shard,
          id: local.id,
          keyRanges: local.slots,
          role: isMaster ? 'primary' : isSlave ? 'secondary' : 'unknown',
          nativeRole: isMaster ? 'master' : isSlave ? 'slave' : flags.join(','),
          lagSeconds: isMaster ? undefined : shard.lagSeconds,
        });
      }
    } else {
      observation.replicationGroup = info.get('master_replid') || undefined;
      observation.shards.push({
        ...shard,
        role: info.get('role') === 'master' ? 'primary' : isReplica ? 'secondary' : 'unknown',
      });
    }

    const [only] = observation.shards;
    if (only?.role !== 'primary') this.writerSeq = undefined;
    // Read last, so that a heartbeat applied since INFO is seen in `s` first: the exclusion carries it.
    const ownKey = only ? heartbeatKey(only.id, this.shardSlots) : undefined;
    const stored = ownKey !== undefined ? await this.readHeartbeat(ownKey) : undefined;
    const writesTotal = this.writesWithoutHeartbeats.observe(rawWrites, stored?.seq);
    observation.performance.writesTotal = writesTotal;
    observation.performance.readsTotal = rawReads;
    if (only) {
      only.heartbeat = stored?.record;
      only.lastOperationTimestampSeconds = this.writes.observe(writesTotal);
    }
    return observation;
  }

  /** The group's members as this node knows them (drivers/redis/members.ts). */
  members(): Promise<MemberList> {
    return this.budget.run(() => this.listMembers());
  }

  private async listMembers(): Promise<MemberList> {
    const info = parseInfo(await this.command<string>(['INFO', 'replication']));
    const cluster = parseInfo(await this.command<string>(['INFO', 'cluster']));
    const self = { host: this.opts.target.host, port: this.opts.target.port };
    if (cluster.get('cluster_enabled') !== '1') return replicationMembers(info, self);
    return clusterMembers(parseClusterNodes(await this.command<string>(['CLUSTER', 'NODES'])), self);
  }

  /**
   * CLUSTER MYSHARDID (Redis 7.2+, Valkey), or undefined where the server has none (7.0: the id is
   * then derived from CLUSTER NODES) or the exporter's user may not run it. Asked at every collection:
   * a replica moved to another master changes shard.
   */
  private async myShardId(): Promise<string | undefined> {
    if (!this.myShardIdAvailable) return undefined;
    try {
      return await this.command<string>(['CLUSTER', 'MYSHARDID']);
    } catch (err) {
      const message = (err as Error).message;
      if (isPermissionDenied(message)) {
        this.opts.logger.warn(
          'CLUSTER MYSHARDID refused: shard ids are derived from CLUSTER NODES instead; grant +cluster|myshardid (docs/redis.md)',
          { err: message },
        );
      } else if (!isUnknownSubcommand(message)) {
        throw err;
      }
      this.myShardIdAvailable = false;
      return undefined;
    }
  }
}

/**
 * The only lag in seconds a Redis replica knows honestly: while its link to the primary is down, its
 * data is as old as the link's outage (master_link_down_since_seconds; -1 when it never synced).
 */
export function replicaLagSeconds(info: Map<string, string>): number | undefined {
  if (info.get('role') !== 'slave' || info.get('master_link_status') !== 'down') return undefined;
  const downFor = infoNumber(info, 'master_link_down_since_seconds');
  return downFor !== undefined && downFor >= 0 ? downFor : undefined;
}

export function createDriver(opts: DriverOptions): RedisDriver {
  return new RedisDriver(opts);
}
