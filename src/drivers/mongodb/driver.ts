/**
 * MongoDB driver (mongod standalone, replica set members incl. arbiters and config servers, mongos),
 * over the official `mongodb` driver connected DIRECTLY to the target node.
 *
 * This file is thin I/O: it runs `hello` (or `isMaster` on servers without it), `replSetGetStatus`,
 * `serverStatus` and `buildInfo` on the admin database and hands the answers to the pure mapper in
 * drivers/mongodb/parse.ts, where all of the mapping lives (docs/mongodb.md has the table):
 *  - cluster id and shard id: the replica set name; node id: the `self` member's name.
 *  - role: myState 1 primary, 2 secondary, anything else unknown (native role: its stateStr).
 *  - lag: the primary's optime minus our own (seconds), only when a primary is known.
 *  - last operation: our own optime's seconds; commit offset: our optime as seconds × 10^6 + increment.
 *  - clients: connections.current minus the exporter's own; reads: query + getmore; writes: insert +
 *    update + delete, client and replicated.
 *
 * The connection is reached through a `MongoConnectionFactory` so tests can put a fake command runner
 * behind the real driver logic (connect, observe, close, errors); in production it is the official
 * MongoClient with:
 *  - directConnection: the exporter watches ONE node and must never follow the driver's discovery to
 *    the primary (it would then report the primary's state as this node's).
 *  - readPreference secondaryPreferred: commands are accepted on secondaries too.
 *  - maxPoolSize 1 and serverMonitoringMode 'poll': one pooled connection plus one monitoring
 *    connection, no streaming/RTT connections. Those two are subtracted from connections.current.
 *  - every timeout (server selection, connect, socket) set to the collection deadline.
 */
import type { Socket } from 'node:net';
import { MongoClient, type Document } from 'mongodb';
import { AdvanceTracker } from '../shared/advance-tracker';
import type { Driver, DriverOptions, MemberList, Observation, Target } from '../../core/model';
import { mongoMembers } from './members';
import { unreadableFile } from '../shared/url-settings';
import { ReadBudget } from '../shared/read-budget';
import { guardFraming } from './framing';
import {
  COMMAND_NOT_FOUND,
  TOPOLOGY_ERROR_CODES,
  isMongos,
  mapObservation,
  mapPerformance,
  toNumber,
  type ReplSetStatusOutcome,
} from './parse';

/** Shown in the server's logs and currentOp as the client's appName. */
export const APP_NAME = 'datastore-exporter';

/** Server error code for a missing privilege. */
const UNAUTHORIZED = 13;

/**
 * serverStatus sections the mapping does not read, excluded to keep the command cheap (wiredTiger,
 * metrics and locks alone are most of its size). Kept: connections, opcounters, opcountersRepl and
 * the instance fields. A name a server does not know is ignored by it.
 */
export const SERVER_STATUS_EXCLUDED_SECTIONS = [
  'asserts',
  'batchedDeletes',
  'bucketCatalog',
  'catalogStats',
  'collectionCatalog',
  'defaultRWConcern',
  'electionMetrics',
  'extra_info',
  'flowControl',
  'globalLock',
  'indexBuilds',
  'indexBulkBuilder',
  'indexStats',
  'locks',
  'logicalSessionRecordCache',
  'mem',
  'metrics',
  'network',
  'opLatencies',
  'opWorkingTime',
  'oplogTruncation',
  'queryAnalyzers',
  'readConcernCounters',
  'readPreferenceCounters',
  'repl',
  'scramCache',
  'security',
  'sharding',
  'shardingStatistics',
  'storageEngine',
  'tcmalloc',
  'tenantMigrations',
  'transactions',
  'transportSecurity',
  'twoPhaseCommitCoordinator',
  'wiredTiger',
];

export const SERVER_STATUS_COMMAND: Document = {
  serverStatus: 1,
  ...Object.fromEntries(SERVER_STATUS_EXCLUDED_SECTIONS.map((section) => [section, 0])),
};

/** Runs one database command and resolves with its reply, or rejects with the server's error. */
export type RunCommand = (db: string, command: Document) => Promise<Document>;

/** One connection to the node, as the driver logic sees it. */
export interface MongoConnection {
  /** Opens the connection; rejects when the node cannot be reached or authentication fails. */
  open(): Promise<void>;
  runCommand: RunCommand;
  /** Connections this holds to the server, subtracted from connections.current. */
  readonly ownConnections: number;
  /** Drops the connection at once, abandoning commands in flight. Never throws, never hangs. */
  close(): Promise<void>;
}

/** `budget` must watch every socket the connection opens (drivers/shared/read-budget.ts). */
export type MongoConnectionFactory = (opts: DriverOptions, budget: ReadBudget) => MongoConnection;

/**
 * What one collection may read (drivers/shared/read-budget.ts): hello and buildInfo ~1 KiB,
 * serverStatus without the excluded sections ~5 KiB, replSetGetStatus ~1.5 KiB per member (50 members:
 * ~75 KiB). The driver's own hello on the monitoring connection counts too.
 */
const READ_BUDGET_BYTES = 2 * 1024 * 1024;

/** The driver's Connection class (internal, pinned by package-lock): subclassed to see each socket. */
type ConnectionClass = new (stream: Socket, options: object) => object;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Connection } = require('mongodb/lib/cmap/connection') as { Connection: ConnectionClass };

/**
 * The official driver opens its sockets itself (pooled and monitoring connections) and offers no
 * socket hook, but builds every connection with the class given as `connectionType`: this one checks
 * the framing of every chunk (framing.ts) and hands the socket to the budget before anything is read.
 */
function countingConnectionType(budget: ReadBudget): ConnectionClass {
  return class CountedConnection extends Connection {
    constructor(stream: Socket, options: object) {
      // Before super(): the driver's parser is attached to the socket in its constructor.
      guardFraming(stream);
      super(stream, options);
      budget.watch(stream);
    }
  };
}

/** The official MongoClient for one node (see the file comment for why each option). Parses the URL. */
function officialClient(target: Target, timeoutMs: number, budget?: ReadBudget): MongoClient {
  // Credentials go in `auth`, not the URL: the password may come from --target.password-file.
  const url = new URL(target.url.href);
  url.username = '';
  url.password = '';
  return new MongoClient(url.href, {
    directConnection: true,
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: timeoutMs,
    maxPoolSize: 1,
    serverMonitoringMode: 'poll',
    appName: APP_NAME,
    readPreference: 'secondaryPreferred',
    // The collector retries (with backoff); the driver must not retry behind its back.
    retryReads: false,
    retryWrites: false,
    auth:
      target.username !== undefined ? { username: target.username, password: target.password } : undefined,
    // Accepted by MongoClient (its option table types it `any`), not in its public typings.
    ...(budget ? ({ connectionType: countingConnectionType(budget) } as object) : {}),
  });
}

/** TLS files the URL may name (tlsCAFile...): read by the driver on connect, checked up front. */
const FILE_OPTIONS = ['tlsCAFile', 'tlsCertificateKeyFile', 'tlsCRLFile'];

/**
 * What the official driver finds wrong with the URL's options (`?tls=maybe`, an unknown option, a
 * bad read preference...), or a TLS file it could not read: found by parsing the URL as connect()
 * would, without connecting. The message may quote option values: the caller scrubs the secret ones.
 */
export function mongoUrlProblem(target: Target): string | undefined {
  try {
    officialClient(target, 1000);
  } catch (err) {
    return String((err as Error)?.message ?? err).split('\n')[0];
  }
  for (const [name, value] of target.url.searchParams) {
    const option = FILE_OPTIONS.find((o) => o.toLowerCase() === name.toLowerCase());
    const problem = option ? unreadableFile(option, value) : undefined;
    if (problem) return problem;
  }
  return undefined;
}

/** The official MongoClient, configured for one node. */
export function officialDriverConnection(opts: DriverOptions, budget: ReadBudget): MongoConnection {
  const { timeoutMs } = opts;
  const client = officialClient(opts.target, timeoutMs, budget);
  const abort = new AbortController();
  return {
    ownConnections: 2,
    async open() {
      await client.connect();
    },
    runCommand: (db, command) => client.db(db).command(command, { signal: abort.signal }),
    async close() {
      abort.abort();
      // close() ends server sessions with one more command: against a hung server that could wait a
      // whole socket timeout, so it is given a short grace and then left to finish in the background.
      const closing = client.close().catch((err: unknown) => {
        opts.logger.debug('mongodb close failed', { err: (err as Error).message });
      });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(timeoutMs, 1000));
        timer.unref();
        void closing.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** The server error code of a failed command, if the error carries one. */
export function errorCode(err: unknown): number | undefined {
  return toNumber((err as { code?: unknown } | null)?.code);
}

function errorCodeName(err: unknown): string | undefined {
  const name = (err as { codeName?: unknown } | null)?.codeName;
  return typeof name === 'string' ? name : undefined;
}

/** A command failure with the command named and, for a missing privilege, the role that grants it. */
function commandFailed(command: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    errorCode(err) === UNAUTHORIZED ? ' (the exporter user needs the clusterMonitor role on admin)' : '';
  return new Error(`mongodb ${command} failed: ${message}${hint}`, { cause: err });
}

export class MongoDriver implements Driver {
  private connection?: MongoConnection;
  /** Servers before 4.4.2/4.2.10 (and 4.0.21, 3.6.21) lack `hello`: learnt once, kept across reconnects. */
  private helloCommand: 'hello' | 'isMaster' = 'hello';
  /** When writes_total was first seen to advance: a standalone's only "last operation". */
  private readonly writes = new AdvanceTracker();
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'mongodb');

  constructor(
    private readonly opts: DriverOptions,
    private readonly connectionFactory: MongoConnectionFactory = officialDriverConnection,
  ) {}

  async connect(): Promise<void> {
    // Kept before opening, so a close() during a hung open can still drop it.
    const connection = this.connectionFactory(this.opts, this.budget);
    this.connection = connection;
    await this.budget.run(() => connection.open());
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close().catch(() => undefined);
    this.budget.destroyAll();
  }

  private async run(command: Document): Promise<Document> {
    const connection = this.connection;
    if (!connection) throw new Error('mongodb connection is not open');
    return connection.runCommand('admin', command);
  }

  private async hello(): Promise<Document> {
    if (this.helloCommand === 'hello') {
      try {
        return await this.run({ hello: 1 });
      } catch (err) {
        if (errorCode(err) !== COMMAND_NOT_FOUND) throw commandFailed('hello', err);
        this.helloCommand = 'isMaster';
        this.opts.logger.info('server has no hello command, using isMaster');
      }
    }
    try {
      return await this.run({ isMaster: 1 });
    } catch (err) {
      throw commandFailed('isMaster', err);
    }
  }

  private async replSetStatus(hello: Document): Promise<ReplSetStatusOutcome> {
    // mongos has no replica set state; asking would only produce an error.
    if (isMongos(hello)) return { kind: 'skipped' };
    try {
      return { kind: 'status', doc: await this.run({ replSetGetStatus: 1 }) };
    } catch (err) {
      const code = errorCode(err);
      // Standalone, removed from the set, not yet initiated: answers about the topology, not failures.
      if (code !== undefined && TOPOLOGY_ERROR_CODES.has(code)) {
        return { kind: 'error', code, codeName: errorCodeName(err), message: (err as Error).message };
      }
      throw commandFailed('replSetGetStatus', err);
    }
  }

  private async command(name: string, command: Document): Promise<Document> {
    try {
      return await this.run(command);
    } catch (err) {
      throw commandFailed(name, err);
    }
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const ownConnections = this.connection?.ownConnections ?? 0;
    const hello = await this.hello();
    const replSetStatus = await this.replSetStatus(hello);
    const serverStatus = await this.command('serverStatus', SERVER_STATUS_COMMAND);
    const buildInfo = await this.command('buildInfo', { buildInfo: 1 });
    const { writesTotal } = mapPerformance(serverStatus, ownConnections, isMongos(hello));
    const writesAdvancedAtSeconds = writesTotal === undefined ? undefined : this.writes.observe(writesTotal);
    return mapObservation(
      { hello, replSetStatus, serverStatus, buildInfo },
      { ownConnections, writesAdvancedAtSeconds },
    );
  }

  /** The replica set as this member's hello describes it (drivers/mongodb/members.ts). */
  async members(): Promise<MemberList> {
    const hello = await this.budget.run(() => this.hello());
    return mongoMembers(hello, { host: this.opts.target.host, port: this.opts.target.port });
  }
}

export function createDriver(opts: DriverOptions): Driver {
  return new MongoDriver(opts);
}
