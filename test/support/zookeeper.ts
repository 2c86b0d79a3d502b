/**
 * Real ZooKeeper servers for tests (Debian `zookeeper` 3.8, /usr/share/java/zookeeper.jar): a
 * 3-node ensemble and standalone servers on free loopback ports, each JVM started in the
 * foreground (we hold its PID), plus two small, independent clients used to check the exporter:
 *  - `fourLetterWord`: the raw 4lw text, as `echo srvr | nc` would print it;
 *  - `ZkSession`: a minimal ZooKeeper wire-protocol client (connect, create, getData, close), so
 *    writes and reads take milliseconds instead of a zkCli.sh JVM each.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { startDelayProxy, type DelayProxy } from './delay-proxy';
import { freePorts, requireBinary, startProcess, tempDir, waitFor, type ServerProcess } from './processes';
import { JuteWriter } from '../../src/drivers/zookeeper/wire';

export const JAVA = '/usr/bin/java';
export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
/** slf4j binding (Debian libslf4j-java, a zookeeper dependency): gives server logs for failure messages. */
const SLF4J_SIMPLE = '/usr/share/java/slf4j-simple.jar';

/** The 4lw commands the driver needs (docs/zookeeper.md), plus ruok for readiness checks. */
export const WHITELIST = 'srvr,mntr,conf,ruok';

export interface ZkServer {
  /** Server id (myid); 0 for a standalone server. */
  id: number;
  clientPort: number;
  url: string;
  process: ServerProcess;
  /** One four-letter word, answered as raw text. */
  fourLetter(cmd: string): Promise<string>;
  /** `srvr` as key -> value ('Mode', 'Zxid', ...). */
  srvr(): Promise<Map<string, string>>;
  stop(): Promise<void>;
  /** Starts the same server again (same ports, data directory and config). */
  restart(): Promise<void>;
}

/** Sends one 4lw command and returns everything the server writes before it closes the socket. */
export function fourLetterWord(port: number, cmd: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`${cmd} on ${port}: timeout`)));
    sock.once('connect', () => sock.write(cmd));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.once('error', reject);
    sock.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function parseColonLines(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

/** `mntr` as key -> value (tab separated). */
export function parseMntrText(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [k, v] = line.split('\t');
    if (k && v !== undefined) m.set(k, v.trim());
  }
  return m;
}

function jvmArgs(cfg: string): string[] {
  const classpath = [ZOOKEEPER_JAR, ...(existsSync(SLF4J_SIMPLE) ? [SLF4J_SIMPLE] : [])].join(':');
  return [
    // Small heap and a quick-starting JIT/GC: four JVMs share two cores with other test files.
    '-Xmx128m',
    '-Xms32m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
    '-cp',
    classpath,
    'org.apache.zookeeper.server.quorum.QuorumPeerMain',
    cfg,
  ];
}

interface ServerSpec {
  id: number;
  clientPort: number;
  dir: string;
  config: string[];
}

function makeServer(spec: ServerSpec): ZkServer {
  mkdirSync(join(spec.dir, 'data'), { recursive: true });
  if (spec.id > 0) writeFileSync(join(spec.dir, 'data', 'myid'), `${spec.id}\n`);
  const cfg = join(spec.dir, 'zoo.cfg');
  writeFileSync(
    cfg,
    [
      // Short ticks make elections and follower syncs fast; limits stay generous for busy CI cores.
      'tickTime=500',
      'initLimit=20',
      'syncLimit=10',
      `dataDir=${join(spec.dir, 'data')}`,
      `clientPort=${spec.clientPort}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      ...spec.config,
    ].join('\n') + '\n',
  );
  const server: ZkServer = {
    id: spec.id,
    clientPort: spec.clientPort,
    url: `zookeeper://127.0.0.1:${spec.clientPort}`,
    process: startProcess(JAVA, jvmArgs(cfg)),
    fourLetter: (cmd) => fourLetterWord(spec.clientPort, cmd),
    srvr: async () => parseColonLines(await fourLetterWord(spec.clientPort, 'srvr')),
    stop: () => server.process.stop(),
    async restart() {
      server.process = startProcess(JAVA, jvmArgs(cfg));
      await waitServing(server);
    },
  };
  return server;
}

/** Until the server answers `srvr` with a Mode (i.e. it serves requests: not LOOKING). */
export async function waitServing(server: ZkServer, timeoutMs = 40000): Promise<string> {
  return waitFor(
    `zookeeper ${server.id} on port ${server.clientPort} serving`,
    async () => {
      if (server.process.exited()) {
        throw new Error(`zookeeper ${server.id} exited: ${server.process.output().slice(-1500)}`);
      }
      return (await server.srvr()).get('Mode');
    },
    timeoutMs,
    200,
  );
}

function requireZooKeeper(): void {
  requireBinary(JAVA, 'a Java runtime (the Debian package zookeeper depends on default-jre)');
  requireBinary(ZOOKEEPER_JAR, 'the Debian package zookeeper');
}

export interface ZkEnsemble {
  servers: ZkServer[];
  /** The server whose srvr says Mode: leader (waits for one). */
  leader(): Promise<ZkServer>;
  stop(): Promise<void>;
}

/**
 * A 3-node ensemble on loopback, with the 4lw whitelist the driver needs; waits for a leader.
 * `clientAddressInServerLines` writes each server line with its client address (`;127.0.0.1:<port>`,
 * the ZooKeeper 3.5+ form that lets a server tell its peers' client ports).
 */
export async function startEnsemble(
  options: { clientAddressInServerLines?: boolean } = {},
): Promise<ZkEnsemble> {
  requireZooKeeper();
  const ports = await freePorts(9);
  const dir = tempDir('zk-ensemble');
  const members = [1, 2, 3].map(
    (id) =>
      `server.${id}=127.0.0.1:${ports[2 + id]}:${ports[5 + id]}:participant` +
      (options.clientAddressInServerLines ? `;127.0.0.1:${ports[id - 1]}` : ''),
  );
  const servers = [1, 2, 3].map((id) =>
    makeServer({
      id,
      clientPort: ports[id - 1]!,
      dir: join(dir.path, `zk${id}`),
      config: [`4lw.commands.whitelist=${WHITELIST}`, ...members],
    }),
  );
  const ensemble: ZkEnsemble = {
    servers,
    leader: () =>
      waitFor(
        'a zookeeper leader',
        async () => {
          for (const s of servers) {
            if (!s.process.exited() && (await s.srvr().catch(() => undefined))?.get('Mode') === 'leader')
              return s;
          }
          return undefined;
        },
        40000,
        200,
      ),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      dir.remove();
    },
  };
  try {
    await Promise.all(servers.map((s) => waitServing(s)));
  } catch (err) {
    await ensemble.stop();
    throw err;
  }
  return ensemble;
}

export interface ZkDelayedEnsemble extends ZkEnsemble {
  /** Server 1: it reaches the other servers' quorum (leader) ports only through `proxy`. */
  delayed: ZkServer;
  /**
   * Delays (or, paused, holds back) everything a leader sends to server 1: proposals, commits and
   * pings. One proxy per other server, driven together, so whichever of them leads, it applies.
   */
  proxy: Pick<DelayProxy, 'delayMs' | 'pause' | 'resume'>;
}

/**
 * A 3-node ensemble whose server 1 is a follower with an injectable replication delay: a follower
 * connects to the leader's quorum port as listed in ITS OWN config, so server 1's config lists
 * servers 2 and 3 at delay proxies (their election ports stay direct). Servers 2 and 3 start first
 * and elect a leader among themselves, so server 1 joins as a follower. syncLimit (in ticks of
 * 500 ms) bounds how long the leader tolerates unacknowledged proposals and how long server 1
 * waits for the leader: it must exceed the injected delay plus any pause.
 */
export async function startDelayedEnsemble(syncLimit = 40): Promise<ZkDelayedEnsemble> {
  requireZooKeeper();
  const ports = await freePorts(9);
  const dir = tempDir('zk-delayed');
  const quorumPort = (id: number): number => ports[2 + id]!;
  const electionPort = (id: number): number => ports[5 + id]!;
  const proxies = await Promise.all([2, 3].map((id) => startDelayProxy(quorumPort(id), 0)));
  const line = (id: number, quorum: number): string =>
    `server.${id}=127.0.0.1:${quorum}:${electionPort(id)}:participant`;
  const direct = [1, 2, 3].map((id) => line(id, quorumPort(id)));
  const viaProxies = [line(1, quorumPort(1)), line(2, proxies[0]!.port), line(3, proxies[1]!.port)];
  const start = (id: number): ZkServer =>
    makeServer({
      id,
      clientPort: ports[id - 1]!,
      dir: join(dir.path, `zk${id}`),
      // A later key wins in zoo.cfg (java.util.Properties): these override makeServer's limits.
      // initLimit 4 s: every sync happens with no delay injected, and a short initLimit keeps a
      // failed leader's re-election short: when server 1 reaches the new leader's proxy before
      // the leader listens, it gets a closed connection (not a refused one, which it would retry),
      // starts a new election round, and the new leader only re-elects after initLimit.
      config: [
        `4lw.commands.whitelist=${WHITELIST}`,
        `syncLimit=${syncLimit}`,
        'initLimit=8',
        ...(id === 1 ? viaProxies : direct),
      ],
    });
  // Servers 2 and 3 first: they elect a leader, which server 1 then joins as a follower.
  const servers: ZkServer[] = [start(2), start(3)];
  const proxy = {
    get delayMs() {
      return proxies[0]!.delayMs;
    },
    set delayMs(ms: number) {
      for (const p of proxies) p.delayMs = ms;
    },
    pause: () => proxies.forEach((p) => p.pause()),
    resume: () => proxies.forEach((p) => p.resume()),
  };
  const ensemble: ZkDelayedEnsemble = {
    servers,
    get delayed() {
      return servers[0]!;
    },
    proxy,
    leader: () =>
      waitFor(
        'a zookeeper leader',
        async () => {
          for (const s of servers) {
            if (!s.process.exited() && (await s.srvr().catch(() => undefined))?.get('Mode') === 'leader')
              return s;
          }
          return undefined;
        },
        40000,
        200,
      ),
    async stop() {
      proxy.resume();
      await Promise.all(servers.map((s) => s.stop()));
      await Promise.all(proxies.map((p) => p.close()));
      dir.remove();
    },
  };
  try {
    await Promise.all(servers.map((s) => waitServing(s)));
    servers.unshift(start(1));
    await waitServing(servers[0]!);
    const mode = (await servers[0]!.srvr()).get('Mode');
    if (mode !== 'follower') throw new Error(`server 1 joined as ${mode}, not as a follower`);
  } catch (err) {
    await ensemble.stop();
    throw err;
  }
  return ensemble;
}

/** A standalone server; `whitelist` undefined leaves ZooKeeper's default (3.8: `srvr` only). */
export async function startStandalone(whitelist: string | undefined): Promise<ZkServer & { remove(): void }> {
  requireZooKeeper();
  const [clientPort] = await freePorts(1);
  const dir = tempDir('zk-standalone');
  const server = makeServer({
    id: 0,
    clientPort: clientPort!,
    dir: dir.path,
    config: whitelist === undefined ? [] : [`4lw.commands.whitelist=${whitelist}`],
  });
  try {
    await waitServing(server);
  } catch (err) {
    await server.stop();
    dir.remove();
    throw err;
  }
  return { ...server, remove: () => dir.remove() };
}

// ---------------------------------------------------------------------------------------------
// A minimal ZooKeeper client (jute wire format, protocol version 0): enough to write and read.

const OP_CREATE = 1;
const OP_GET_DATA = 4;
const OP_SET_DATA = 5;
const OP_PING = 11;
const OP_CLOSE_SESSION = -11;

export interface ZkReply {
  xid: number;
  zxid: bigint;
  err: number;
  body: Buffer;
}

/** One ZooKeeper session over one TCP connection. Requests are sent one at a time. */
export class ZkSession {
  private buffered = Buffer.alloc(0);
  private waiting?: { resolve: (frame: Buffer) => void; reject: (err: Error) => void };
  private frames: Buffer[] = [];
  private xid = 0;
  private closedError?: Error;
  sessionId = 0n;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      while (this.buffered.length >= 4) {
        const len = this.buffered.readInt32BE(0);
        if (this.buffered.length < 4 + len) break;
        this.frames.push(this.buffered.subarray(4, 4 + len));
        this.buffered = this.buffered.subarray(4 + len);
      }
      this.deliver();
    });
    sock.on('error', (err) => {
      this.closedError = err;
      this.waiting?.reject(err);
    });
    sock.on('close', () => {
      this.closedError ??= new Error('zookeeper closed the connection');
      this.waiting?.reject(this.closedError);
    });
  }

  private deliver(): void {
    const frame = this.frames.shift();
    if (!frame) return;
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w.resolve(frame);
    else this.frames.unshift(frame);
  }

  private nextFrame(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.frames.length === 0 && this.closedError) return reject(this.closedError);
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }

  /**
   * Opens a session (global, so its open and close are transactions). It sends no pings by itself:
   * the 10 s default (the servers' maximum at tickTime 500) keeps it alive between test steps.
   */
  static async open(port: number, sessionTimeoutMs = 10000): Promise<ZkSession> {
    const sock = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const session = new ZkSession(sock);
    sock.write(
      new JuteWriter()
        .int(0) // protocol version
        .long(0n) // last zxid seen
        .int(sessionTimeoutMs)
        .long(0n) // session id: new session
        .buffer(Buffer.alloc(16))
        .bool(false) // read-only not allowed
        .framed(),
    );
    const resp = await session.nextFrame();
    const timeout = resp.readInt32BE(4);
    session.sessionId = resp.readBigInt64BE(8);
    if (timeout <= 0 || session.sessionId === 0n) {
      sock.destroy();
      throw new Error('zookeeper refused the session');
    }
    return session;
  }

  private async request(type: number, body: JuteWriter): Promise<ZkReply> {
    const xid = ++this.xid;
    this.sock.write(new JuteWriter().int(xid).int(type).raw(body.framed().subarray(4)).framed());
    for (;;) {
      const frame = await this.nextFrame();
      const reply = {
        xid: frame.readInt32BE(0),
        zxid: frame.readBigInt64BE(4),
        err: frame.readInt32BE(12),
        body: frame.subarray(16),
      };
      // Skip pings (-2) and watch notifications (-1): not ours.
      if (reply.xid === xid) return reply;
    }
  }

  /**
   * Creates a persistent znode, by default with open ACLs (world:anyone, all permissions); resolves
   * with the transaction's zxid.
   */
  async create(
    path: string,
    data: string,
    acl: { perms: number; scheme: string; id: string }[] = [{ perms: 31, scheme: 'world', id: 'anyone' }],
  ): Promise<bigint> {
    const body = new JuteWriter().string(path).buffer(Buffer.from(data)).int(acl.length);
    for (const a of acl) body.int(a.perms).string(a.scheme).string(a.id);
    body.int(0); // persistent
    const r = await this.request(OP_CREATE, body);
    if (r.err !== 0) throw new Error(`create ${path}: zookeeper error ${r.err}`);
    return r.zxid;
  }

  async setData(path: string, data: string): Promise<bigint> {
    const r = await this.request(
      OP_SET_DATA,
      new JuteWriter().string(path).buffer(Buffer.from(data)).int(-1),
    );
    if (r.err !== 0) throw new Error(`setData ${path}: zookeeper error ${r.err}`);
    return r.zxid;
  }

  async getData(path: string): Promise<string> {
    const r = await this.request(OP_GET_DATA, new JuteWriter().string(path).bool(false));
    if (r.err !== 0) throw new Error(`getData ${path}: zookeeper error ${r.err}`);
    const len = r.body.readInt32BE(0);
    return len < 0 ? '' : r.body.subarray(4, 4 + len).toString('utf8');
  }

  /** getData with the Stat fields tests compare: version (setData count) and mzxid. */
  async getDataStat(path: string): Promise<{ data: string; version: number; mzxid: bigint; zxid: bigint }> {
    const r = await this.request(OP_GET_DATA, new JuteWriter().string(path).bool(false));
    if (r.err !== 0) throw new Error(`getData ${path}: zookeeper error ${r.err}`);
    const len = r.body.readInt32BE(0);
    const stat = r.body.subarray(4 + Math.max(0, len));
    return {
      data: len < 0 ? '' : r.body.subarray(4, 4 + len).toString('utf8'),
      mzxid: stat.readBigInt64BE(8),
      version: stat.readInt32BE(32),
      zxid: r.zxid,
    };
  }

  /** `addauth digest user:password` (auth packet, xid -4); rejects if the server refuses. */
  async addAuthDigest(user: string, password: string): Promise<void> {
    this.sock.write(
      new JuteWriter()
        .int(-4)
        .int(100)
        .int(0)
        .string('digest')
        .buffer(Buffer.from(`${user}:${password}`))
        .framed(),
    );
    for (;;) {
      const frame = await this.nextFrame();
      if (frame.readInt32BE(0) !== -4) continue;
      const err = frame.readInt32BE(12);
      if (err !== 0) throw new Error(`addauth digest: zookeeper error ${err}`);
      return;
    }
  }

  /** A client heartbeat (xid -2), as every client sends when idle for a third of its session timeout. */
  async ping(): Promise<void> {
    this.sock.write(new JuteWriter().int(-2).int(OP_PING).framed());
    for (;;) if ((await this.nextFrame()).readInt32BE(0) === -2) return;
  }

  /** Closes the session (a transaction) and the connection. */
  async close(): Promise<void> {
    try {
      await this.request(OP_CLOSE_SESSION, new JuteWriter());
    } finally {
      this.sock.destroy();
    }
  }

  /** Drops the connection without closing the session (it expires after its timeout). */
  drop(): void {
    this.sock.destroy();
  }
}
