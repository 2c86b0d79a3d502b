/**
 * ZooKeeper driver (standalone or ensemble member), over the four-letter words `srvr`, `conf` and
 * `mntr` on the client port. The server must whitelist them: `4lw.commands.whitelist=srvr,mntr,conf`
 * (3.5+ allows only `srvr` by default).
 *
 * Connections: a 4lw connection is one-shot by protocol (the server answers one command, then
 * closes), so there is no pooled connection to keep. Each command opens a socket with the driver's
 * deadline (DriverOptions.timeoutMs) and the commands run one after the other; close() destroys
 * any socket still in flight. connect() runs `srvr` once to check reachability and the whitelist.
 * Not the AdminServer (HTTP JSON): it exists only from 3.5, listens on another port (8080) and is
 * often disabled, while the 4lw answer on the client port from 3.4 to 3.9.
 *
 * Mapping (docs/zookeeper.md):
 *  - version: `srvr` "Zookeeper version" release ("3.8.0"). Role: `srvr` Mode, read in the same
 *    reply as the zxid (leader/standalone -> primary, follower -> secondary, observer and anything
 *    else -> unknown; see roleOfMode). One shard: the whole data tree.
 *  - node id: `conf` serverId (the myid), unique within an ensemble. A standalone server reports
 *    serverId 0, which identifies nothing: the core's rules apply (--node-id, else host:port).
 *    cluster_id: ZooKeeper has no ensemble id: --cluster-id, else the fallback; the digest of the
 *    ensemble's membership (`conf` server.N lines) is the replication group.
 *  - Commit offset: the zxid (`srvr` Zxid; `mntr` has no zxid in 3.4-3.9) as its counter within its
 *    epoch (unit 'zxid_counter', epoch = the zxid's high 32 bits; see zxidOffset): compared as one
 *    number, a new leader's epoch would put in-sync followers 2^32 transactions behind.
 *  - Last operation (3.6+): when writes_total was first seen to advance: data writes only, applied
 *    on this member. Not the zxid, which every committed transaction moves: global session open and
 *    close (a read-only client moves it twice) and failed writes too. 3.4/3.5 have no write counter:
 *    there, when the zxid was first seen to advance within a leader epoch (ZxidTracker).
 *  - Lag: a ZooKeeper server cannot tell how far behind the leader it is in seconds: absent.
 *  - Clients: `mntr` zk_num_alive_connections minus the exporter's own connections (4lw, session).
 *  - Reads/writes: 3.6+ per-namespace counters in `mntr` (operationCounts), carried across server
 *    restarts (a restarted server counts the writes it replays from its log: see ContinuingCounter).
 *    Not zk_packets_* (packets, pings included) nor zk_cnt_readlatency/updatelatency (reads include
 *    client pings, writes include session open/close and count only on the server the client talks to).
 *  - A server that is up but not serving (leader election, lost quorum) answers every useful 4lw
 *    with "not currently serving requests": reported as role unknown with the identity and version
 *    of its last serving answer, no offset and no counters; until it has served once, as a failure.
 *
 * Heartbeat mode (--heartbeat; docs/zookeeper.md "Heartbeat mode"): the 4lw are read-only, so the
 * heartbeat needs a real client session: ONE session per driver (ZooKeeperSession below, a minimal
 * client for exactly connect, digest auth, create, setData, getData, ping and close), opened in
 * heartbeat mode only: an exporter without --heartbeat opens none (a session is a transaction) and
 * needs none to keep heartbeat traffic out of its numbers (the namespace is excluded by name). The leader's (or a standalone
 * server's) exporter writes {t, w} to HEARTBEAT_PATH with setData; ZooKeeper forwards a write
 * sent to a follower to the leader anyway, but the core only writes from primaries. Every exporter
 * reads the znode with getData on ITS OWN server, which answers from its local replica without
 * `sync`: a follower's copy is exactly as stale as its replication, which is the lag.
 * Heartbeat traffic (any exporter's) is kept out of the user-facing numbers:
 *  - reads/writes, and so last-op: the heartbeat namespace is excluded from the per-namespace
 *    counters (exact);
 *  - 3.4/3.5 last operation (heartbeat mode): each collection's getData returns, in one consistent
 *    view, the server's last applied zxid (reply header) and the heartbeat node's version (number of
 *    setData); a zxid advance made only of heartbeat setData (advance == version delta) is excused;
 *  - clients: the session's own connection is subtracted like the 4lw connection.
 */
import { connect, type Socket } from 'node:net';
import type {
  DriverOptions,
  HeartbeatDriver,
  HeartbeatRecord,
  HeartbeatStore,
  MemberList,
  Observation,
  ShardObservation,
} from '../../core/model';
import { AdvanceTracker } from '../shared/advance-tracker';
import { ContinuingCounter } from '../shared/continuing-counter';
import { zookeeperMembers } from './members';
import {
  encodeHeartbeat,
  HEARTBEAT_NAMESPACE,
  HEARTBEAT_PATH,
  heartbeatAcl,
  parseHeartbeat,
  replyError,
  writeHeartbeat,
} from './heartbeat';
import {
  confServerId,
  ensembleDigest,
  zxidOffset,
  mntrNumber,
  operationCounts,
  parseConf,
  parseMntr,
  parseSrvr,
  parseVersion,
  replyProblem,
  roleOfMode,
  splitZxid,
} from './parse';
import { ReadBudget } from '../shared/read-budget';
import { SESSION_TIMEOUT_MS, ZooKeeperSession } from './session';
import { decodeGetDataResponse, encodeGetData, type ReplyHeader, ZK_ERR } from './wire';

/** The commands the driver needs, for error messages that say how to fix the server's config. */
const REQUIRED_WHITELIST = 'srvr,mntr,conf';

/**
 * What one collection may read (drivers/shared/read-budget.ts): `mntr` of a 3.8 server is ~20 KiB,
 * `srvr` and `conf` under 2 KiB, the heartbeat session's replies ~150 bytes. A never-ending answer is
 * not ZooKeeper; it used to be buffered up to 8 MiB per command (three commands per collection).
 */
const READ_BUDGET_BYTES = 2 * 1024 * 1024;

/** A reply that carries no data because the server is not serving requests (no quorum, election). */
class NotServingError extends Error {
  constructor(cmd: string) {
    super(
      `zookeeper is not serving requests ('${cmd}': leader election in progress, quorum lost, or still syncing with the leader)`,
    );
  }
}

/**
 * Remembers when the zxid was first seen to advance, counting only moves WITHIN a leader epoch,
 * and not counting the exporter's own heartbeat writes.
 *
 * A zxid is (epoch << 32) | counter. A new leader starts a new epoch with counter 0: the zxid grows
 * although nobody wrote anything, so a plain "zxid went up" would report every election as a write.
 * Rules: same epoch and counter up -> advance; new epoch with counter > 0 -> advance (those
 * transactions were committed in the new epoch since the last look); new epoch with counter 0 ->
 * new baseline only; zxid down (data wiped, another server at the address) -> new baseline.
 *
 * Heartbeat mode: `heartbeatVersion` is the heartbeat znode's version read in the SAME reply as the
 * zxid (getData: reply header zxid + Stat). The server applies transactions in zxid order, so the
 * heartbeat setData between two looks are exactly the version delta, all of them inside the zxid
 * range between the looks: an advance no larger than that delta is only heartbeats. Across an epoch
 * change only the new epoch's counter is known, so heartbeats are assumed to be in the new epoch
 * (a user write in the old epoch's tail may then be missed). A version that went down (the node was
 * deleted and created again) excuses nothing.
 */
export class ZxidTracker {
  private last?: { epoch: bigint; counter: bigint; heartbeatVersion?: number };
  private advancedAt?: number;

  /** Feed the current zxid; returns the Unix time (seconds) of the last advance seen, if any. */
  observe(
    zxid: bigint,
    nowSeconds: number = Date.now() / 1000,
    heartbeatVersion?: number,
  ): number | undefined {
    const current = splitZxid(zxid);
    const last = this.last;
    if (last !== undefined) {
      const heartbeats =
        heartbeatVersion !== undefined &&
        last.heartbeatVersion !== undefined &&
        heartbeatVersion >= last.heartbeatVersion
          ? BigInt(heartbeatVersion - last.heartbeatVersion)
          : 0n;
      const sameEpochAdvance = current.epoch === last.epoch && current.counter - last.counter > heartbeats;
      const newEpochWrites = current.epoch > last.epoch && current.counter > heartbeats;
      if (sameEpochAdvance || newEpochWrites) this.advancedAt = nowSeconds;
    }
    this.last = { ...current, heartbeatVersion };
    return this.advancedAt;
  }

  get lastAdvanceSeconds(): number | undefined {
    return this.advancedAt;
  }
}

/** What one getData of the heartbeat znode says, in one consistent view of the local server. */
interface HeartbeatView {
  record?: HeartbeatRecord;
  /** The server's last applied zxid when it answered. */
  zxid: bigint;
  /** The znode's version (setData count); undefined when the znode does not exist. */
  version?: number;
}

/** Identity learned from the last answer of a serving server, kept while it is not serving. */
interface KnownIdentity {
  version: string;
  nativeNodeId?: string;
}

export class ZooKeeperDriver implements HeartbeatDriver {
  private readonly inFlight = new Set<Socket>();
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'zookeeper');
  private readonly zxids = new ZxidTracker();
  /** 3.6+: when writes_total (heartbeat namespace excluded) was first seen to advance. */
  private readonly writeAdvances = new AdvanceTracker();
  private readonly reads = new ContinuingCounter();
  private readonly writes = new ContinuingCounter();
  /** zk_uptime (ms) at the last serving answer: a smaller one means the server restarted. */
  private lastUptimeMs?: number;
  /** The last operation reported, kept while the server is not serving. */
  private lastOperation?: number;
  private known?: KnownIdentity;
  private session?: ZooKeeperSession;
  private opening?: Promise<ZooKeeperSession>;
  /** Bumped by close(): a session that finishes opening after it belongs to nobody. */
  private generation = 0;
  private sessionFailures = 0;

  constructor(private readonly opts: DriverOptions) {}

  readonly heartbeat: HeartbeatStore = {
    write: async (_shardId, record) => {
      // On the leader a session opens in milliseconds: the writer's own deadline bounds the wait.
      const session = this.session?.isOpen ? this.session : await this.openSession();
      await writeHeartbeat(session, encodeHeartbeat(record), heartbeatAcl(this.opts.target.username));
    },
  };

  /**
   * The session if it is open; otherwise starts opening one in the background and returns
   * undefined. A collection never waits for a session: on a lagging follower opening one takes as
   * long as the lag (session creation is a transaction), which could exceed the collection deadline
   * and would then never succeed. Until it opens the heartbeat is simply not known (no lag reported).
   */
  private sessionIfOpen(): ZooKeeperSession | undefined {
    if (this.session?.isOpen) return this.session;
    this.openSession().catch(() => undefined);
    return undefined;
  }

  private openSession(): Promise<ZooKeeperSession> {
    if (this.opening) return this.opening;
    const { target, timeoutMs, logger } = this.opts;
    const generation = this.generation;
    const opening = ZooKeeperSession.open({
      host: target.host,
      port: target.port,
      timeoutMs,
      // The session timeout asked for: a session that takes longer to open is useless anyway.
      connectTimeoutMs: Math.max(timeoutMs, SESSION_TIMEOUT_MS),
      digest: target.username === undefined ? undefined : `${target.username}:${target.password ?? ''}`,
      watch: (sock) => this.budget.watch(sock),
    }).then(
      (session) => {
        if (generation !== this.generation) {
          session.close();
          throw new Error('zookeeper session opened after the driver was closed');
        }
        this.session = session;
        this.sessionFailures = 0;
        logger.debug('zookeeper heartbeat session open');
        return session;
      },
      (err: Error) => {
        // Said once per outage at warn (e.g. wrong credentials), then at debug.
        (this.sessionFailures++ === 0 ? logger.warn : logger.debug).call(
          logger,
          'zookeeper heartbeat session failed to open',
          { err: err.message },
        );
        throw err;
      },
    );
    this.opening = opening;
    const clear = (): void => {
      if (this.opening === opening) this.opening = undefined;
    };
    opening.then(clear, clear);
    return opening;
  }

  /**
   * getData of the heartbeat znode on the local server. Undefined when there is no session yet or
   * it was lost (lag unknown this time; a new session is being opened); an error REPLY (e.g.
   * NOAUTH: the ACL does not let the exporter read) fails the collection with a message that says
   * what to fix.
   */
  private async readHeartbeat(): Promise<HeartbeatView | undefined> {
    const session = this.sessionIfOpen();
    if (!session) return undefined;
    let reply: ReplyHeader;
    try {
      reply = await session.request((xid) => encodeGetData(xid, HEARTBEAT_PATH), `getData ${HEARTBEAT_PATH}`);
    } catch (err) {
      this.opts.logger.warn('zookeeper heartbeat session lost', { err: (err as Error).message });
      return undefined;
    }
    if (reply.err === ZK_ERR.noNode) return { zxid: reply.zxid };
    if (reply.err !== ZK_ERR.ok) throw replyError(reply.err, `getData ${HEARTBEAT_PATH}`);
    const { data, stat } = decodeGetDataResponse(reply.body);
    return { record: parseHeartbeat(data), zxid: reply.zxid, version: stat.version };
  }

  /** One 4lw round trip: connect, send the command, read until the server closes, under the deadline. */
  private fourLetterWord(cmd: string): Promise<string> {
    const { host, port } = this.opts.target;
    const timeoutMs = this.opts.timeoutMs;
    return new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      this.inFlight.add(sock);
      this.budget.watch(sock);
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(sock);
        sock.destroy();
        if (err) reject(err);
        else resolve(Buffer.concat(chunks).toString('utf8'));
      };
      const timer = setTimeout(
        () => finish(new Error(`zookeeper '${cmd}' timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      timer.unref();
      sock.setNoDelay(true);
      sock.once('connect', () => sock.write(cmd));
      sock.on('data', (d: Buffer) => chunks.push(d));
      // The server closes the socket once it has answered: end of stream = the whole reply.
      sock.once('end', () => finish());
      sock.once('close', () =>
        finish(this.budget.error ?? new Error(`zookeeper '${cmd}': connection closed`)),
      );
      sock.once('error', (err: Error) =>
        finish(this.budget.error ?? new Error(`zookeeper '${cmd}': ${err.message}`)),
      );
    });
  }

  /** Runs a command and turns the replies that carry no data into errors that say what to do. */
  private async command(cmd: string): Promise<string> {
    const text = await this.fourLetterWord(cmd);
    switch (replyProblem(text)) {
      case 'not-whitelisted':
        throw new Error(
          `zookeeper refused '${cmd}': "${text.trim()}" Add 4lw.commands.whitelist=${REQUIRED_WHITELIST} to the server's configuration.`,
        );
      case 'not-serving':
        throw new NotServingError(cmd);
      case 'empty':
        throw new Error(
          `zookeeper closed the connection without answering '${cmd}' (four-letter words disabled, or not a ZooKeeper server); the driver needs 4lw.commands.whitelist=${REQUIRED_WHITELIST}`,
        );
      default:
        return text;
    }
  }

  async connect(): Promise<void> {
    // Reachability and whitelist. A server that is not serving yet is reachable: observe() reports it.
    await this.budget
      .run(() => this.command('srvr'))
      .catch((err: unknown) => {
        if (!(err instanceof NotServingError)) throw err;
      });
  }

  async close(): Promise<void> {
    for (const sock of this.inFlight) sock.destroy();
    this.inFlight.clear();
    // After a failure the server may have been restarted or replaced: learn its identity afresh.
    this.known = undefined;
    this.generation++;
    this.opening = undefined;
    this.session?.close();
    this.session = undefined;
    this.budget.destroyAll();
  }

  async observe(): Promise<Observation> {
    try {
      return await this.budget.run(() => this.observeServing());
    } catch (err) {
      if (!(err instanceof NotServingError)) throw err;
      return this.notServing(err);
    }
  }

  private async observeServing(): Promise<Observation> {
    const srvr = parseSrvr(await this.command('srvr'));
    const version = parseVersion(srvr.rawVersion);
    if (srvr.mode === undefined || srvr.zxid === undefined || version === undefined) {
      throw new Error('zookeeper srvr reply has no version, Mode or Zxid: not a ZooKeeper server?');
    }
    const conf = parseConf(await this.command('conf'));
    const mntr = parseMntr(await this.command('mntr'));
    // Our own connections while mntr counted: the mntr socket, and the heartbeat session's.
    const ownConnections = 1 + (this.session?.isOpen || this.opening ? 1 : 0);
    // Heartbeat mode only (a session is a transaction): read last, so that the lag is fresh.
    const view = this.opts.heartbeat ? await this.readHeartbeat() : undefined;

    const standalone = srvr.mode === 'standalone';
    const serverId = confServerId(conf);
    // Standalone: serverId is always 0, shared by every standalone server: not an identity.
    const nativeNodeId = !standalone && serverId !== undefined ? String(serverId) : undefined;
    this.known = { version, nativeNodeId };

    const uptime = mntrNumber(mntr, 'zk_uptime');
    const restarted = uptime !== undefined && this.lastUptimeMs !== undefined && uptime < this.lastUptimeMs;
    if (uptime !== undefined) this.lastUptimeMs = uptime;
    const counts = operationCounts(mntr, [HEARTBEAT_NAMESPACE]);
    const readsTotal =
      counts.readsTotal === undefined ? undefined : this.reads.observe(counts.readsTotal, restarted);
    const writesTotal =
      counts.writesTotal === undefined ? undefined : this.writes.observe(counts.writesTotal, restarted);
    // The zxid tracker is fed either way, so 3.4/3.5 and a server that loses its counters agree.
    // With a heartbeat view, its zxid and version come from one reply: heartbeats are excused.
    const zxidAdvancedAt = view
      ? this.zxids.observe(view.zxid, undefined, view.version)
      : this.zxids.observe(srvr.zxid);
    this.lastOperation = writesTotal === undefined ? zxidAdvancedAt : this.writeAdvances.observe(writesTotal);

    const shard: ShardObservation = {
      role: roleOfMode(srvr.mode),
      nativeRole: srvr.mode,
      commitOffset: zxidOffset(srvr.zxid),
      lastOperationTimestampSeconds: this.lastOperation,
      heartbeat: view?.record,
    };
    const alive = mntrNumber(mntr, 'zk_num_alive_connections');
    return {
      datastore: 'zookeeper',
      version,
      nativeNodeId,
      replicationGroup: ensembleDigest(conf),
      shards: [shard],
      performance: {
        clientsConnected: alive === undefined ? undefined : Math.max(0, alive - ownConnections),
        readsTotal,
        writesTotal,
      },
    };
  }

  /** The ensemble as this server's configuration says (drivers/zookeeper/members.ts). */
  members(): Promise<MemberList> {
    return this.budget.run(async () => {
      const srvr = parseSrvr(await this.command('srvr'));
      const conf = parseConf(await this.command('conf'));
      const { host, port } = this.opts.target;
      return zookeeperMembers(conf, srvr.mode, { host, port });
    });
  }

  /**
   * Up but not serving: the node exists and answers, it just has no role right now. Reported as
   * role unknown, keeping the identity from its last serving answer so its series do not change
   * during an election. Without one (the exporter started during the outage), it is a failure.
   */
  private notServing(err: NotServingError): Observation {
    if (!this.known) throw new Error(`${err.message}; its identity is not known yet`);
    this.opts.logger.debug('zookeeper not serving requests', { err: err.message });
    return {
      datastore: 'zookeeper',
      version: this.known.version,
      nativeNodeId: this.known.nativeNodeId,
      shards: [
        {
          role: 'unknown',
          nativeRole: 'not-serving',
          lastOperationTimestampSeconds: this.lastOperation,
        },
      ],
      performance: {},
    };
  }
}

export function createDriver(opts: DriverOptions): ZooKeeperDriver {
  return new ZooKeeperDriver(opts);
}
