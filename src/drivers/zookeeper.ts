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
 *    cluster_id: ZooKeeper has no ensemble id: --cluster-id, else 'default'.
 *  - Commit offset: the zxid (`srvr` Zxid; `mntr` has no zxid in 3.4-3.9), unit 'zxid'.
 *  - Last operation: when the zxid was first seen to advance within a leader epoch (ZxidTracker).
 *    Every committed transaction moves it: data writes, but also global session open/close and
 *    failed writes, which ZooKeeper commits as transactions too. A new epoch alone (election) does not.
 *  - Lag: a ZooKeeper server cannot tell how far behind the leader it is in seconds: absent.
 *  - Clients: `mntr` zk_num_alive_connections minus the exporter's own 4lw connection.
 *  - Reads/writes: 3.6+ per-namespace counters in `mntr` (operationCounts). Not zk_packets_*
 *    (packets, pings included) nor zk_cnt_readlatency/updatelatency (reads include client pings,
 *    writes include session open/close and count only on the server the client talks to).
 *  - A server that is up but not serving (leader election, lost quorum) answers every useful 4lw
 *    with "not currently serving requests": reported as role unknown with the identity and version
 *    of its last serving answer, no offset and no counters; until it has served once, as a failure.
 */
import { connect, type Socket } from 'node:net';
import type { Driver, DriverOptions, Observation, ShardObservation } from '../model';
import {
  confServerId,
  mntrNumber,
  operationCounts,
  parseConf,
  parseMntr,
  parseSrvr,
  parseVersion,
  replyProblem,
  roleOfMode,
  splitZxid,
} from './zookeeper-parse';

/** The commands the driver needs, for error messages that say how to fix the server's config. */
const REQUIRED_WHITELIST = 'srvr,mntr,conf';

/** `mntr` of a 3.8 server is ~20 KB; a reply this large is not ZooKeeper, or something is wrong. */
const MAX_REPLY_BYTES = 8 * 1024 * 1024;

/** A reply that carries no data because the server is not serving requests (no quorum, election). */
class NotServingError extends Error {
  constructor(cmd: string) {
    super(
      `zookeeper is not serving requests ('${cmd}': leader election in progress, quorum lost, or still syncing with the leader)`,
    );
  }
}

/**
 * Remembers when the zxid was first seen to advance, counting only moves WITHIN a leader epoch.
 *
 * A zxid is (epoch << 32) | counter. A new leader starts a new epoch with counter 0: the zxid grows
 * although nobody wrote anything, so a plain "zxid went up" would report every election as a write.
 * Rules: same epoch and counter up -> advance; new epoch with counter > 0 -> advance (those
 * transactions were committed in the new epoch since the last look); new epoch with counter 0 ->
 * new baseline only; zxid down (data wiped, another server at the address) -> new baseline.
 */
export class ZxidTracker {
  private last?: { epoch: bigint; counter: bigint };
  private advancedAt?: number;

  /** Feed the current zxid; returns the Unix time (seconds) of the last advance seen, if any. */
  observe(zxid: bigint, nowSeconds: number = Date.now() / 1000): number | undefined {
    const current = splitZxid(zxid);
    const last = this.last;
    if (last !== undefined) {
      const sameEpochAdvance = current.epoch === last.epoch && current.counter > last.counter;
      const newEpochWrites = current.epoch > last.epoch && current.counter > 0n;
      if (sameEpochAdvance || newEpochWrites) this.advancedAt = nowSeconds;
    }
    this.last = current;
    return this.advancedAt;
  }

  get lastAdvanceSeconds(): number | undefined {
    return this.advancedAt;
  }
}

/** Identity learned from the last answer of a serving server, kept while it is not serving. */
interface KnownIdentity {
  version: string;
  nativeNodeId?: string;
}

export class ZooKeeperDriver implements Driver {
  private readonly inFlight = new Set<Socket>();
  private readonly zxids = new ZxidTracker();
  private known?: KnownIdentity;

  constructor(private readonly opts: DriverOptions) {}

  /** One 4lw round trip: connect, send the command, read until the server closes, under the deadline. */
  private fourLetterWord(cmd: string): Promise<string> {
    const { host, port } = this.opts.target;
    const timeoutMs = this.opts.timeoutMs;
    return new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      this.inFlight.add(sock);
      const chunks: Buffer[] = [];
      let size = 0;
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
      sock.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_REPLY_BYTES) {
          finish(new Error(`zookeeper '${cmd}' reply exceeds ${MAX_REPLY_BYTES} bytes`));
          return;
        }
        chunks.push(d);
      });
      // The server closes the socket once it has answered: end of stream = the whole reply.
      sock.once('end', () => finish());
      sock.once('close', () => finish(new Error(`zookeeper '${cmd}': connection closed`)));
      sock.once('error', (err: Error) => finish(new Error(`zookeeper '${cmd}': ${err.message}`)));
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
    await this.command('srvr').catch((err: unknown) => {
      if (!(err instanceof NotServingError)) throw err;
    });
  }

  async close(): Promise<void> {
    for (const sock of this.inFlight) sock.destroy();
    this.inFlight.clear();
    // After a failure the server may have been restarted or replaced: learn its identity afresh.
    this.known = undefined;
  }

  async observe(): Promise<Observation> {
    try {
      return await this.observeServing();
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

    const standalone = srvr.mode === 'standalone';
    const serverId = confServerId(conf);
    // Standalone: serverId is always 0, shared by every standalone server: not an identity.
    const nativeNodeId = !standalone && serverId !== undefined ? String(serverId) : undefined;
    this.known = { version, nativeNodeId };

    const shard: ShardObservation = {
      role: roleOfMode(srvr.mode),
      nativeRole: srvr.mode,
      commitOffset: { value: Number(srvr.zxid), unit: 'zxid' },
      lastOperationTimestampSeconds: this.zxids.observe(srvr.zxid),
    };
    const alive = mntrNumber(mntr, 'zk_num_alive_connections');
    return {
      datastore: 'zookeeper',
      version,
      nativeNodeId,
      shards: [shard],
      performance: {
        // The mntr connection itself is counted while it is open.
        clientsConnected: alive === undefined ? undefined : Math.max(0, alive - 1),
        ...operationCounts(mntr),
      },
    };
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
          lastOperationTimestampSeconds: this.zxids.lastAdvanceSeconds,
        },
      ],
      performance: {},
    };
  }
}

export function createDriver(opts: DriverOptions): Driver {
  return new ZooKeeperDriver(opts);
}
