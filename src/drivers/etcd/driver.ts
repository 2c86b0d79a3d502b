/**
 * etcd driver (v3 API, etcd >= 3.4), over etcd's JSON gRPC gateway and /metrics on the client port:
 * `etcd://host:2379` (http) or `etcds://host:2379` (https).
 *
 * Mapping (docs/etcd.md):
 *  - One collection = `POST /v3/maintenance/status` (member id, cluster id and revision in the response
 *    header; leader, raft index, version, isLearner) + `GET /metrics` (MVCC operation counters).
 *  - node id: the member id in hex, as etcdctl prints it. cluster id: the etcd cluster id in hex.
 *    One shard: the whole keyspace (no id, so it is named after the cluster id).
 *  - Role: leader -> primary; follower of a known leader -> secondary; learner or no leader known ->
 *    unknown (see roleFromStatus for why).
 *  - Commit offset: the MVCC revision (unit 'revision'), the same number on every member once applied.
 *    Last operation: the time the revision was first seen to advance. The revision moves only on writes
 *    (puts, deletes that delete something, txns with such writes, lease expiry deleting keys);
 *    compaction, lease grants, auth and member changes move the raft index but not the revision.
 *  - Lag: absent. A member knows its own raft index, not the leader's: a lag needs a non-local call,
 *    and even then it is in entries, not seconds.
 *  - Reads: etcd_mvcc_range_total; writes: etcd_mvcc_put_total + etcd_mvcc_delete_total (see
 *    drivers/etcd/parse.ts). Clients: absent, etcd exports no count of client connections.
 *
 * Why the JSON gateway and not the etcd3 client: etcd3 loads grpc-js and protobuf definitions (start-up
 * time and memory for a 2-request poll), and balances and retries across endpoints by itself, while the
 * model needs exactly one member's view, asked once per interval under our deadline. The gateway is
 * plain HTTP/1.1 on the client port, which /metrics needs anyway, so one keep-alive socket serves both.
 * It keeps uint64 ids exact (decimal strings). It is on by default (--enable-grpc-gateway=true); a member
 * started with it off answers 404, which the error message says.
 *
 * Heartbeat mode (--heartbeat; docs/etcd.md "Heartbeat mode"): the leader's exporter puts {t, w} to
 * HEARTBEAT_KEY (`POST /v3/kv/put`, on the same kept-alive socket). Every exporter, with or without
 * --heartbeat (the key is fixed, so heartbeat puts of another exporter are excluded too), reads it back
 * in each collection with a SERIALIZABLE range (`POST /v3/kv/range`, serializable: true), which this
 * member answers from its own store: as stale as its replication, which is the lag (a linearizable read
 * would go through the leader and always be current). Heartbeat traffic is kept out of the numbers:
 *  - last operation: the range returns the member's revision and the key's version (its number of puts)
 *    in one read transaction; a revision advance no larger than the version advance is only heartbeats;
 *  - writes_total: minus the heartbeat puts (the key's version advance), on every member, since every
 *    member applies (and counts) every put; reads_total: minus the exporter's own ranges. Both are read
 *    next to, not atomically with, /metrics, so they are kept monotonic (see ExcludingCounter).
 */
import http from 'node:http';
import https from 'node:https';
import { ConfigError } from '../../core/errors';
import { ReadBudget } from '../shared/read-budget';
import { readFailure, readRegularFile } from '../../core/files';
import type {
  DriverOptions,
  HeartbeatDriver,
  HeartbeatStore,
  MemberList,
  Observation,
} from '../../core/model';
import { etcdMembers } from './members';
import {
  HEARTBEAT_KEY_PREFIX,
  heartbeatPutRequest,
  type HeartbeatRange,
  heartbeatRangeRequest,
  parseHeartbeatRange,
} from './heartbeat';
import { TLS_PARAMS } from './index';
import { mvccOperations, parseGatewayError, parseStatus, roleFromStatus } from './parse';

/**
 * What one collection may read (drivers/shared/read-budget.ts): /metrics is ~150 KiB on etcd 3.4-3.5,
 * the JSON answers under 1 KiB; anything far larger is not etcd, and is not buffered.
 */
const READ_BUDGET_BYTES = 2 * 1024 * 1024;

/** Abort reasons, so a failed request says whether the deadline or close() ended it. */
const TIMED_OUT = Symbol('timed out');
const CLOSED = Symbol('closed');

/** Without --heartbeat, a heartbeat range the member refused is asked for again this often. */
const HEARTBEAT_RETRY_MS = 60_000;

/** gRPC status code Unauthenticated: the token expired or was revoked. */
const GRPC_UNAUTHENTICATED = 16;

interface HttpReply {
  status: number;
  body: string;
}

/**
 * Remembers when the revision was first seen to advance, not counting the exporter's own heartbeat
 * puts. Each put is one revision. `heartbeatVersion` is the heartbeat key's version read in the SAME
 * range reply as the revision: between two such looks the heartbeat puts are exactly the version
 * delta, all within the revision range, so an advance no larger than that delta is only heartbeats.
 * A version that went down (someone deleted the key: a write) excuses nothing; without a version
 * (heartbeat mode off) every advance counts. A revision that went down is a new baseline.
 */
export class RevisionTracker {
  private last?: { revision: number; heartbeatVersion?: number };
  private advancedAt?: number;

  observe(
    revision: number,
    nowSeconds: number = Date.now() / 1000,
    heartbeatVersion?: number,
  ): number | undefined {
    const last = this.last;
    if (last !== undefined) {
      const heartbeats =
        heartbeatVersion !== undefined &&
        last.heartbeatVersion !== undefined &&
        heartbeatVersion >= last.heartbeatVersion
          ? heartbeatVersion - last.heartbeatVersion
          : 0;
      if (revision - last.revision > heartbeats) this.advancedAt = nowSeconds;
    }
    this.last = { revision, heartbeatVersion };
    return this.advancedAt;
  }
}

/**
 * A datastore counter minus the exporter's own share of it. The own share (heartbeat puts, the
 * exporter's ranges) is measured next to the counter, not atomically with it: one operation may be
 * in one and not yet in the other, so `raw - own` can dip by one. A published counter must not go
 * down (Prometheus would read a reset), so the value never goes below the last one published: a dip
 * delays showing a real operation by one collection, it never invents one. When the datastore's own
 * counter goes down (the member restarted), the subtraction starts over.
 */
export class ExcludingCounter {
  private lastRaw?: number;
  private own = 0;
  private published?: number;

  /** Operations of the exporter's own, measured since the last call; counted in a coming `raw`. */
  addOwn(n: number): void {
    this.own += n;
  }

  observe(raw: number): number {
    if (this.lastRaw !== undefined && raw < this.lastRaw) {
      this.own = 0;
      this.published = undefined;
    }
    this.lastRaw = raw;
    const value = Math.max(0, raw - this.own);
    this.published = this.published === undefined ? value : Math.max(this.published, value);
    return this.published;
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly grpcCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

export class EtcdDriver implements HeartbeatDriver {
  private agent?: http.Agent;
  /** Every request in flight, so close() can abandon them at once. */
  private readonly inFlight = new Set<AbortController>();
  private token?: string;
  private readonly revisions = new RevisionTracker();
  private metricsUnavailableLogged = false;
  private readonly secure: boolean;
  /**
   * Without --heartbeat, after the member refused the heartbeat range (no permission on the prefix,
   * auth enabled for an anonymous exporter): when to ask again (ms since the epoch).
   */
  private heartbeatRetryAt = 0;
  private lastHeartbeatVersion?: number;
  private readonly reads = new ExcludingCounter();
  private readonly writes = new ExcludingCounter();
  /** Heartbeat ranges this driver completed, and how many of them reads_total already excludes. */
  private ownRanges = 0;
  private ownRangesExcluded = 0;
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'etcd');

  readonly heartbeat: HeartbeatStore = {
    write: async (_shardId, record) => {
      await this.gateway('/v3/kv/put', heartbeatPutRequest(record));
    },
  };

  constructor(private readonly opts: DriverOptions) {
    const params = opts.target.url.searchParams;
    for (const key of params.keys()) {
      if (!(TLS_PARAMS as readonly string[]).includes(key)) {
        throw new ConfigError(
          `--target: unknown etcd URL parameter "${key}" (supported: ${TLS_PARAMS.join(', ')})`,
        );
      }
    }
    this.secure = opts.target.scheme === 'etcds';
    if (!this.secure && [...params.keys()].length > 0) {
      throw new ConfigError(`--target: ${TLS_PARAMS.join('/')} need the etcds:// (https) scheme`);
    }
  }

  connect(): Promise<void> {
    return this.budget.run(() => this.open());
  }

  private async open(): Promise<void> {
    await this.close();
    // One pooled, kept-alive connection (maxSockets 1): requests queue on it in order, and a dead
    // member costs one socket, not a growing pile. TLS files are read on every connect, so rotated
    // client certificates are picked up after the next failure without restarting the exporter.
    const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1 };
    this.agent = this.secure
      ? new https.Agent({ ...agentOptions, ...this.tlsFiles() })
      : new http.Agent(agentOptions);
    if (this.opts.target.username !== undefined) await this.authenticate();
  }

  async close(): Promise<void> {
    for (const controller of this.inFlight) controller.abort(CLOSED);
    this.inFlight.clear();
    this.agent?.destroy();
    this.agent = undefined;
    this.token = undefined;
    this.heartbeatRetryAt = 0;
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const status = parseStatus(await this.gateway('/v3/maintenance/status', {}));
    // Every own range completed so far is in the counters /metrics is about to show.
    const ownRanges = this.ownRanges;
    // After the status, on the same socket: the counters are a bonus, the status is the model.
    const operations = await this.mvccOperations();
    // Last, so that the heartbeat lag (now - record time) is fresh.
    const range = await this.rangeHeartbeat();
    this.reads.addOwn(ownRanges - this.ownRangesExcluded);
    this.ownRangesExcluded = ownRanges;
    if (range) {
      const last = this.lastHeartbeatVersion;
      // A version that went down: the key was deleted and put again; the puts since are ours.
      this.writes.addOwn(
        last === undefined ? 0 : range.version >= last ? range.version - last : range.version,
      );
      this.lastHeartbeatVersion = range.version;
    }
    const { role, nativeRole } = roleFromStatus(status);
    return {
      datastore: 'etcd',
      version: status.version,
      nativeNodeId: status.memberId,
      nativeClusterId: status.clusterId,
      shards: [
        {
          role,
          nativeRole,
          commitOffset: { value: status.revision, unit: 'revision' },
          heartbeat: range?.record,
          // With a heartbeat range, its revision and the key's version are one view: heartbeats excused.
          lastOperationTimestampSeconds: range
            ? this.revisions.observe(range.revision, undefined, range.version)
            : this.revisions.observe(status.revision),
        },
      ],
      performance: {
        readsTotal: operations.reads === undefined ? undefined : this.reads.observe(operations.reads),
        writesTotal: operations.writes === undefined ? undefined : this.writes.observe(operations.writes),
      },
    };
  }

  /** The cluster's membership as this member has it (drivers/etcd/members.ts). */
  members(): Promise<MemberList> {
    return this.budget.run(async () => {
      const status = parseStatus(await this.gateway('/v3/maintenance/status', {}));
      const list = await this.gateway('/v3/cluster/member/list', {});
      return etcdMembers(list, status, { host: this.opts.target.host, port: this.opts.target.port });
    });
  }

  /**
   * The heartbeat key as THIS member has it (serializable range: no trip to the leader). In heartbeat
   * mode a refusal fails the collection, with a message that says what to grant. Without, the record
   * only keeps heartbeat traffic out of the counters: a refusal (a user without the prefix, auth
   * enabled for an anonymous exporter) leaves it undefined, asked for again a minute later, and the
   * collection goes on.
   */
  private async rangeHeartbeat(): Promise<HeartbeatRange | undefined> {
    if (Date.now() < this.heartbeatRetryAt) return undefined;
    let body: string;
    try {
      body = await this.gateway('/v3/kv/range', heartbeatRangeRequest());
      this.ownRanges++;
    } catch (err) {
      if (!(err instanceof HttpStatusError) || this.opts.heartbeat) throw err;
      this.heartbeatRetryAt = Date.now() + HEARTBEAT_RETRY_MS;
      this.opts.logger.debug(
        'cannot read the heartbeat key: heartbeat puts, if any, count as writes (docs/etcd.md)',
        {
          err: err.message,
        },
      );
      return undefined;
    }
    return parseHeartbeatRange(body);
  }

  private tlsFiles(): https.AgentOptions {
    const params = this.opts.target.url.searchParams;
    const read = (name: string): Buffer | undefined => {
      const path = params.get(name);
      if (path === null) return undefined;
      try {
        return readRegularFile(path);
      } catch (err) {
        throw new Error(`cannot read etcd ${name} file ${JSON.stringify(path)}: ${readFailure(err)}`);
      }
    };
    return { ca: read('cacert'), cert: read('cert'), key: read('key') };
  }

  /** `POST /v3/auth/authenticate`: a simple or JWT token for the Authorization header. */
  private async authenticate(): Promise<void> {
    const { username, password } = this.opts.target;
    this.token = undefined;
    const body = await this.gateway('/v3/auth/authenticate', { name: username, password: password ?? '' });
    const token = (JSON.parse(body) as { token?: unknown }).token;
    if (typeof token !== 'string' || !token) throw new Error('etcd authentication returned no token');
    this.token = token;
  }

  /** A gateway call; a token etcd no longer accepts (expired TTL, restarted member) is renewed once. */
  private async gateway(path: string, payload: object): Promise<string> {
    try {
      return await this.gatewayOnce(path, payload);
    } catch (err) {
      const expired =
        err instanceof HttpStatusError &&
        this.token !== undefined &&
        (err.grpcCode === GRPC_UNAUTHENTICATED || /invalid auth token/.test(err.message));
      if (!expired) throw err;
      await this.authenticate();
      return this.gatewayOnce(path, payload);
    }
  }

  private async gatewayOnce(path: string, payload: object): Promise<string> {
    const reply = await this.request('POST', path, JSON.stringify(payload));
    if (reply.status === 200) return reply.body;
    const error = parseGatewayError(reply.body);
    const hint =
      reply.status === 404
        ? ' (no v3 JSON gateway: etcd older than 3.4, or started with --enable-grpc-gateway=false)'
        : path.startsWith('/v3/kv/') && /permission denied/.test(error?.message ?? '')
          ? ` (heartbeat mode: the user needs readwrite on the key prefix ${HEARTBEAT_KEY_PREFIX}; see docs/etcd.md "Heartbeat mode")`
          : reply.status === 503 && this.secure
            ? // Seen live: the gateway dials etcd's own gRPC port presenting the SERVER certificate.
              ' (with --client-cert-auth, the gateway needs the server certificate to allow clientAuth too)'
            : '';
    throw new HttpStatusError(
      reply.status,
      error?.grpcCode,
      `etcd ${path} answered HTTP ${reply.status}: ${error?.message ?? reply.body.slice(0, 200).trim()}${hint}`,
    );
  }

  /** Reads and writes from /metrics; an HTTP error there leaves them absent (logged once), not down. */
  private async mvccOperations(): Promise<{ reads?: number; writes?: number }> {
    const reply = await this.request('GET', '/metrics');
    if (reply.status === 200) return mvccOperations(reply.body);
    if (!this.metricsUnavailableLogged) {
      this.opts.logger.warn('etcd /metrics unavailable: reads and writes left absent', {
        status: reply.status,
      });
      this.metricsUnavailableLogged = true;
    }
    return {};
  }

  /**
   * One HTTP request on the pooled socket, with its own deadline, abandoned at once by close().
   * A keep-alive socket the server closed while idle fails on reuse with ECONNRESET: that request
   * never reached etcd, so it is sent once more on a fresh socket.
   */
  private async request(method: 'GET' | 'POST', path: string, body?: string): Promise<HttpReply> {
    try {
      return await this.requestOnce(method, path, body);
    } catch (err) {
      if (!(err as { reusedSocket?: boolean }).reusedSocket) throw err;
      return this.requestOnce(method, path, body);
    }
  }

  private requestOnce(method: 'GET' | 'POST', path: string, body?: string): Promise<HttpReply> {
    const agent = this.agent;
    if (!agent) return Promise.reject(new Error('etcd connection is not open'));
    const { host, port } = this.opts.target;
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(TIMED_OUT), this.opts.timeoutMs);
    timer.unref();
    const headers: http.OutgoingHttpHeaders = {
      accept: method === 'GET' ? 'text/plain' : 'application/json',
    };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (this.token) headers.authorization = this.token;
    const send = this.secure ? https.request : http.request;
    return new Promise<HttpReply>((resolve, reject) => {
      const req = send({ agent, host, port, method, path, headers, signal: controller.signal });
      // Errors of the request and of its response body end up here, once; an abort says why.
      const fail = (err: Error): void => {
        const reason: unknown = controller.signal.reason;
        if (reason === TIMED_OUT) reject(new Error(`etcd ${path} timed out after ${this.opts.timeoutMs} ms`));
        else if (reason === CLOSED) reject(new Error(`etcd ${path} abandoned: connection closed`));
        else if (req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET')
          reject(Object.assign(err, { reusedSocket: true }));
        else reject(err);
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          if (this.budget.take(chunk.length)) chunks.push(chunk);
          else req.destroy(this.budget.error);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', fail);
      });
      req.end(body);
    }).finally(() => {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    });
  }
}

export function createDriver(opts: DriverOptions): EtcdDriver {
  return new EtcdDriver(opts);
}
