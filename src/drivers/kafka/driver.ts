/**
 * Kafka driver (`kafka://host:port`): the local node is the broker at the target address, and ALL of
 * the driver's requests go to that broker alone, over one kafkajs connection.
 *
 * Mapping (docs/kafka.md; the logic is in drivers/kafka/parse.ts, this file only does I/O):
 *  - node id: the broker id, found in the cluster metadata by the target host:port, or --kafka.broker-id
 *    (advertised listeners may differ from the address dialled). Broker ids are cluster-unique and
 *    survive restarts. cluster id: the Metadata cluster id (v2+). Version: 'unknown' (not in the protocol).
 *  - Shards: the partitions with a replica on this broker, `topic/partition`. Role from the partition's
 *    CURRENT leader (not the preferred leader replicas[0]); out of the ISR -> secondary, nativeRole
 *    'out-of-sync'; no leader -> unknown.
 *  - Commit offset: the high watermark of the partitions this broker leads; last operation: when it was
 *    first seen to advance. Lag, clients, reads/writes: absent (not available over the Kafka protocol).
 *
 * Why not kafkajs's Admin client: its metadata calls go to a RANDOM broker of the cluster (the broker
 * pool shuffles), its offset calls go to every partition's leader, and it connects to the ADVERTISED
 * addresses: all three break "local information only". And its Metadata parser throws on the first
 * partition-level error code, so one offline partition or one dead replica (LEADER_NOT_AVAILABLE,
 * REPLICA_NOT_AVAILABLE) would fail the whole collection exactly when the cluster is degraded
 * (kafkajs issue #1460). So the driver drives kafkajs one level lower: one Broker over one connection
 * to the target, with kafkajs's own protocol encoders/decoders and version negotiation (ApiVersions),
 * keeping the decoded responses and judging error codes per partition in drivers/kafka/parse.ts.
 * Those modules are kafkajs internals (kafkajs/src/...), pinned by package-lock; the typed seam below is
 * the only place that touches them.
 *
 * Per collection: one Metadata request (all topics; any broker answers it from its own metadata cache,
 * so this is local information) and, when the broker leads any partition, one ListOffsets request for
 * exactly those partitions.
 */
import type { Socket } from 'node:net';
import { AdvanceTrackers } from '../shared/advance-tracker';
import { ReadBudget } from '../shared/read-budget';
import type { Driver, DriverOptions, DriverLogger, MemberList, Observation, Target } from '../../core/model';
import { kafkaMembers } from './members';
import {
  SASL_MECHANISMS,
  TLS_ON,
  kafkaObservation,
  latestOffsetsRequest,
  resolveLocalBrokerId,
  type KafkaMetadata,
  type ListOffsetsTopicRequest,
  type ListOffsetsTopicResponse,
} from './parse';

/** What the driver needs from the local broker: the I/O boundary, injectable for tests. */
export interface KafkaBrokerConnection {
  /** Connect to the target broker (TCP, ApiVersions negotiation, SASL when configured). */
  connect(): Promise<void>;
  /** Metadata for ALL topics, decoded, with per-partition error codes kept rather than thrown. */
  metadata(): Promise<KafkaMetadata>;
  /** ListOffsets (latest, READ_UNCOMMITTED: the high watermark), decoded, partition errors kept. */
  listLatestOffsets(request: ListOffsetsTopicRequest[]): Promise<ListOffsetsTopicResponse[]>;
  /** Drop the connection at once, failing any request in flight. Never throws. */
  close(): Promise<void>;
}

/** `budget` must watch every socket the connection opens (drivers/shared/read-budget.ts). */
export type KafkaConnectionFactory = (opts: DriverOptions, budget: ReadBudget) => KafkaBrokerConnection;

/**
 * What one collection may read (drivers/shared/read-budget.ts): the Metadata of ALL topics is the
 * big one, ~45 bytes per partition (4.4 MiB for 100,000 partitions, docs/kafka.md), ListOffsets
 * less. kafkajs concatenates a response's chunks as they come (quadratic copying), one more reason
 * not to let a never-ending one run on.
 */
const READ_BUDGET_BYTES = 16 * 1024 * 1024;

export class KafkaDriver implements Driver {
  private connection?: KafkaBrokerConnection;
  /** One tracker per led partition; survives reconnects (a high watermark never goes back). */
  private readonly trackers = new AdvanceTrackers();
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'kafka');

  constructor(
    private readonly opts: DriverOptions,
    private readonly createConnection: KafkaConnectionFactory = createKafkaJsConnection,
  ) {}

  async connect(): Promise<void> {
    const connection = this.createConnection(this.opts, this.budget);
    this.connection = connection;
    await this.budget.run(() => connection.connect());
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close().catch(() => undefined);
    this.budget.destroyAll();
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const connection = this.connection;
    if (!connection) throw new Error('kafka connection is not open');
    const metadata = await connection.metadata();
    const localBrokerId = resolveLocalBrokerId(
      metadata.brokers,
      this.opts.target,
      this.opts.extra['broker-id'],
    );
    const request = latestOffsetsRequest(metadata, localBrokerId);
    const offsets = request.length > 0 ? await connection.listLatestOffsets(request) : [];
    return kafkaObservation({ metadata, localBrokerId, offsets, trackers: this.trackers });
  }

  /** The brokers as this broker's Metadata lists them (drivers/kafka/members.ts). */
  async members(): Promise<MemberList> {
    const connection = this.connection;
    if (!connection) throw new Error('kafka connection is not open');
    return kafkaMembers(await this.budget.run(() => connection.metadata()), {
      host: this.opts.target.host,
      port: this.opts.target.port,
    });
  }
}

export function createDriver(opts: DriverOptions): Driver {
  return new KafkaDriver(opts);
}

// ---------------------------------------------------------------------------------------------------
// The kafkajs seam: typed views of the few kafkajs internals the driver uses.

interface ProtocolExchange {
  request: { apiKey: number; apiVersion: number; apiName: string };
  response: { decode(raw: Buffer): Promise<unknown>; parse(decoded: unknown): Promise<unknown> };
}
type RequestDefinition = { versions: string[] };
type ApiVersionRange = { minVersion: number; maxVersion: number };

interface KafkaJsConnection {
  rejectRequests(error: Error): void;
}

interface KafkaJsBroker {
  /** ApiVersions as negotiated on connect: api key -> supported version range. */
  versions: Record<number, ApiVersionRange> | null;
  connectionPool: { pool: KafkaJsConnection[]; send(exchange: ProtocolExchange): Promise<unknown> };
  lookupRequest(apiKey: number, definition: RequestDefinition): (args: object) => ProtocolExchange;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

type SocketFactory = (args: { host: string; port: number; ssl: unknown; onConnect: () => void }) => Socket;

interface KafkaJsLogger {
  namespace(name: string): KafkaJsLogger;
}

/* eslint-disable @typescript-eslint/no-require-imports */
const kafkajs = {
  Broker: require('kafkajs/src/broker') as new (options: object) => KafkaJsBroker,
  ConnectionPool: require('kafkajs/src/network/connectionPool') as new (options: object) => object,
  requests: (require('kafkajs/src/protocol/requests') as { requests: Record<string, RequestDefinition> })
    .requests,
  apiKeys: require('kafkajs/src/protocol/requests/apiKeys') as Record<string, number>,
  createLogger: (require('kafkajs/src/loggers') as { createLogger: (options: object) => KafkaJsLogger })
    .createLogger,
  defaultSocketFactory: require('kafkajs/src/network/socketFactory') as () => SocketFactory,
  RequestQueue: require('kafkajs/src/network/requestQueue') as { prototype: KafkaJsRequestQueue },
};
/* eslint-enable @typescript-eslint/no-require-imports */

interface KafkaJsRequestQueue {
  pending: unknown[];
  scheduleCheckPendingRequests(this: KafkaJsRequestQueue): void;
}

/**
 * kafkajs 2.2.4's request queue re-arms its pending-request check after every check, even with
 * nothing pending: the delay is then `throttledUntil - now`, negative, which Node runs as 1 ms. So
 * every open connection wakes the process 1000 times a second for as long as it is open (measured:
 * ~100 CPU seconds an hour for an idle exporter, docs/performance.md). A check is only ever needed
 * for requests waiting in `pending` (throttled or over the in-flight limit), so with none waiting
 * none is scheduled; push() schedules one as soon as a request has to wait.
 */
function stopIdlePendingChecks(queue: { prototype: KafkaJsRequestQueue }): void {
  const schedule = queue.prototype.scheduleCheckPendingRequests;
  queue.prototype.scheduleCheckPendingRequests = function (this: KafkaJsRequestQueue) {
    if (this.pending.length > 0) schedule.call(this);
  };
}
stopIdlePendingChecks(kafkajs.RequestQueue);

/** kafkajs log levels (kafkajs `logLevel`): WARN keeps its connection errors, drops per-request noise. */
const KAFKAJS_LOG_WARN = 2;
/** ListOffsets isolation level 0: the high watermark, not the last stable offset (READ_COMMITTED). */
const READ_UNCOMMITTED = 0;
/** ListOffsets replica id of an ordinary client (not a follower). */
const CONSUMER_REPLICA_ID = -1;
const CLIENT_ID = 'datastore-exporter';

/**
 * kafkajs log lines go to the exporter's logger at debug: the collector already reports each failed
 * collection at warn. kafkajs's own debug level is never enabled: it logs every decoded response,
 * which for a 10k-partition Metadata response is megabytes per collection.
 */
function kafkaJsLogCreator(logger: DriverLogger) {
  return () =>
    (entry: { namespace: string; label: string; log: { message?: string } & Record<string, unknown> }) => {
      const { message, broker, error } = entry.log;
      logger.debug(`kafkajs: ${message ?? ''}`, {
        namespace: entry.namespace,
        level: entry.label,
        broker,
        error,
      });
    };
}

/**
 * TLS and SASL from the target URL: `?tls=true` for TLS; a username (and password,
 * from the URL or --target.password-file) for SASL, mechanism `?sasl=plain|scram-sha-256|scram-sha-512`
 * (default plain). Custom CAs: NODE_EXTRA_CA_CERTS. The values were checked when the target was
 * parsed (kafkaUrlProblem).
 */
export function kafkaSecurityOptions(target: Target): { ssl: boolean; sasl?: object } {
  const params = target.url.searchParams;
  const ssl = TLS_ON.test(params.get('tls') ?? '');
  if (!target.username) return { ssl };
  const mechanism = (params.get('sasl') ?? 'plain').toLowerCase();
  if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new Error(`unsupported ?sasl=${mechanism} (supported: ${SASL_MECHANISMS.join(', ')})`);
  }
  return { ssl, sasl: { mechanism, username: target.username, password: target.password ?? '' } };
}

/** The production connection: one kafkajs Broker on one TCP connection to the target address. */
export function createKafkaJsConnection(opts: DriverOptions, budget: ReadBudget): KafkaBrokerConnection {
  const { target, timeoutMs } = opts;
  const sockets = new Set<Socket>();
  const baseSocketFactory = kafkajs.defaultSocketFactory();
  // Remember our sockets so close() can destroy them at once (kafkajs's disconnect waits for requests
  // in flight, which a hung broker never answers).
  const socketFactory: SocketFactory = (args) => {
    const socket = baseSocketFactory(args);
    // Before kafkajs attaches its own listeners: every byte of every response is counted.
    budget.watch(socket);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
  let broker: KafkaJsBroker | undefined;

  const send = async <T>(apiName: 'Metadata' | 'ListOffsets', args: object): Promise<T> => {
    if (!broker) throw new Error('kafka connection is not open');
    const { request, response } = broker.lookupRequest(
      kafkajs.apiKeys[apiName]!,
      kafkajs.requests[apiName]!,
    )(args);
    // Decode with kafkajs, but skip its parse(): it throws on the first partition error code.
    const identity = async (decoded: unknown): Promise<unknown> => decoded;
    return (await broker.connectionPool.send({
      request,
      response: { decode: (raw) => response.decode(raw), parse: identity },
    })) as T;
  };

  return {
    async connect() {
      const { ssl, sasl } = kafkaSecurityOptions(target);
      const logger = kafkajs.createLogger({
        level: KAFKAJS_LOG_WARN,
        logCreator: kafkaJsLogCreator(opts.logger),
      });
      const connectionPool = new kafkajs.ConnectionPool({
        host: target.host,
        port: target.port,
        ssl: ssl || null,
        sasl: sasl ?? null,
        clientId: CLIENT_ID,
        socketFactory,
        connectionTimeout: timeoutMs,
        requestTimeout: timeoutMs,
        // Off: kafkajs enforces it with a 100 ms interval timer per connection for as long as the
        // connection is open, which was nearly all of the exporter's idle CPU against Kafka
        // (docs/performance.md). Every request here is already bounded from outside: the collector's
        // and /probe's and /discover's deadlines fail the collection and close() this connection,
        // which rejects what is in flight and destroys the socket.
        enforceRequestTimeout: false,
        logger,
      });
      broker = new kafkajs.Broker({
        connectionPool,
        logger,
        authenticationTimeout: timeoutMs,
        // An exporter must never create topics as a side effect of looking.
        allowAutoTopicCreation: false,
      });
      await broker.connect();
      const metadataVersions = broker.versions?.[kafkajs.apiKeys.Metadata!];
      // Metadata v0 cannot ask for "all topics" the way kafkajs encodes it, nor carries a controller or
      // cluster id: Kafka 0.10+ (Metadata v1) is required.
      if (!metadataVersions || metadataVersions.maxVersion < 1) {
        throw new Error('the broker does not support Metadata v1+: Kafka 0.10 or later is required');
      }
    },

    async metadata() {
      // topics: [] is encoded as a null array: all topics. Never auto-create.
      return send<KafkaMetadata>('Metadata', { topics: [], allowAutoTopicCreation: false });
    },

    async listLatestOffsets(request) {
      const decoded = await send<{ responses: ListOffsetsTopicResponse[] }>('ListOffsets', {
        replicaId: CONSUMER_REPLICA_ID,
        isolationLevel: READ_UNCOMMITTED,
        topics: request,
      });
      return decoded.responses;
    },

    async close() {
      const current = broker;
      broker = undefined;
      const closed = new Error('connection closed by the exporter');
      try {
        // Fail requests in flight first, so kafkajs's disconnect has nothing to wait for...
        for (const connection of current?.connectionPool.pool ?? []) connection.rejectRequests(closed);
      } catch {
        /* never throw from close() */
      }
      // ...then drop the sockets: with an error, so a connect still in progress fails at once too.
      for (const socket of sockets) socket.destroy(closed);
      sockets.clear();
      await current?.disconnect().catch(() => undefined);
    },
  };
}
