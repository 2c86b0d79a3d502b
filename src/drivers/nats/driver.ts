/**
 * NATS JetStream driver (nats-server >= 2.9), over the server's HTTP monitoring endpoint:
 * `nats://host:8222` (the monitoring port, `http:` in the server config; not the client port 4222).
 *
 * Mapping (docs/nats.md; the logic is in drivers/nats/parse.ts, this file only does I/O):
 *  - One collection = `GET /varz` (server name, version, cluster name, client connections) +
 *    `GET /jsz?streams=true&consumers=true` (the streams and consumers with a replica on THIS server,
 *    each with its raft leader as this server knows it). Both are answered by the local server from
 *    its own state: no request goes to another server.
 *  - node id: server_name. cluster id: the cluster name (absent when not clustered: the core's default).
 *  - Shards: each stream `<account>/<stream>` and each consumer `<account>/<stream>/<consumer>`; role
 *    from the group's leader: this server -> primary, another -> secondary, none -> unknown.
 *  - Stream commit offset: last_seq (unit 'sequence'); last operation: last_ts, the stored time of the
 *    last message (set by the stream leader, replicated with the message).
 *  - Lag: absent (see docs/nats.md: a follower does not know the leader's position; the leader's
 *    view of its followers is in raft entries and is the leader's, not theirs).
 *  - Clients: /varz connections (client connections only; routes, gateways and leaf nodes are counted
 *    apart; the exporter holds no NATS connection). Writes: messages stored in the streams replicated
 *    here (advances of their last_seq); reads: deliveries by the consumers this server leads (advances
 *    of delivered.consumer_seq). See SumOfAdvances for how the sums stay monotonic.
 *
 * Why not the NATS client protocol: JetStream's API ($JS.API.STREAM.INFO...) is answered by the stream
 * LEADER (a request routed across the cluster), a client connection counts as a client, and the nats
 * library is far heavier than two HTTP GETs.
 */
import { ConfigError } from '../../core/errors';
import type { Driver, DriverOptions, MemberList, Observation } from '../../core/model';
import { natsMembers } from './members';
import { HttpGetter } from '../shared/http-getter';
import { ReadBudget } from '../shared/read-budget';
import { SumOfAdvances } from './counters';
import { consumerShardId, natsShards, parseJsz, parseVarz, streamShardId } from './parse';

/**
 * What one collection may read (drivers/shared/read-budget.ts): /jsz with consumers is ~0.7 kB per
 * stream and ~0.8 kB per consumer, so 16 MiB is ~20k of them; /varz a few KiB. A larger reply is
 * refused rather than buffered (see docs/nats.md for --nats.consumers=false).
 */
const READ_BUDGET_BYTES = 16 * 1024 * 1024;

export class NatsDriver implements Driver {
  private readonly http: HttpGetter;
  private readonly withConsumers: boolean;
  private readonly writes = new SumOfAdvances();
  private readonly reads = new SumOfAdvances();
  private readonly budget = new ReadBudget(READ_BUDGET_BYTES, 'nats');

  constructor(private readonly opts: DriverOptions) {
    const { target } = opts;
    if ([...target.url.searchParams.keys()].length > 0 || (target.url.pathname || '/') !== '/') {
      throw new ConfigError('--target: a nats:// target takes no path or URL parameters');
    }
    if (target.username !== undefined) {
      throw new ConfigError(
        '--target: the NATS monitoring endpoint has no authentication; drop the user from the URL',
      );
    }
    this.withConsumers = (opts.extra.consumers ?? 'true').trim() !== 'false';
    this.http = new HttpGetter({
      host: target.host,
      port: target.port,
      label: 'nats monitoring',
      budget: this.budget,
    });
  }

  async connect(): Promise<void> {
    this.http.open();
  }

  async close(): Promise<void> {
    this.http.close();
  }

  observe(): Promise<Observation> {
    return this.budget.run(() => this.collect());
  }

  private async collect(): Promise<Observation> {
    const varz = parseVarz(await this.json('/varz'));
    const jsz = parseJsz(await this.json(`/jsz?streams=true&consumers=${this.withConsumers}&config=false`));
    const me = varz.serverName;
    return {
      datastore: 'nats',
      version: varz.version,
      nativeNodeId: me,
      nativeClusterId: varz.clusterName,
      clusterDisplayName: varz.clusterName,
      shards: natsShards(jsz, me),
      performance: {
        clientsConnected: varz.connections,
        writesTotal: this.writes.observe(new Map(jsz.streams.map((s) => [streamShardId(s), s.lastSeq]))),
        readsTotal: this.withConsumers
          ? this.reads.observe(
              new Map(
                jsz.consumers
                  .filter((c) => c.raft.leader === me || !c.raft.clustered)
                  .map((c) => [consumerShardId(c), c.deliveredSeq ?? 0]),
              ),
            )
          : undefined,
      },
    };
  }

  /** The seed alone, its route peers counted (drivers/nats/members.ts says why). */
  async members(): Promise<MemberList> {
    return natsMembers(await this.budget.run(() => this.json('/routez')), {
      host: this.opts.target.host,
      port: this.opts.target.port,
    });
  }

  /** GET a monitoring path; a non-200 answer is an error naming the path and the server's words. */
  private async json(path: string): Promise<string> {
    const reply = await this.http.get(path, this.opts.timeoutMs).catch((err: Error) => {
      // The client port answers with a NATS INFO line, which no HTTP parser accepts.
      if (/parse error/i.test(err.message)) {
        err.message += ' (is this the monitoring port, `http:` in the server config, not the client port?)';
      }
      throw err;
    });
    if (reply.status === 200) return reply.body;
    throw new Error(
      `nats monitoring ${path.split('?')[0]} answered HTTP ${reply.status}: ${reply.body.slice(0, 200).trim()}`,
    );
  }
}

export function createDriver(opts: DriverOptions): Driver {
  return new NatsDriver(opts);
}
