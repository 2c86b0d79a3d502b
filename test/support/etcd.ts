/**
 * Real etcd members for tests (Debian etcd-server 3.4, etcdctl from etcd-client): a cluster of N
 * members on free loopback ports, each in the foreground with its own temporary data directory.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { freePorts, requireBinary, startProcess, tempDir, waitFor, type ServerProcess } from './processes';

export const ETCD = '/usr/bin/etcd';
export const ETCDCTL = '/usr/bin/etcdctl';

/** etcd 3.4 refuses to start on arm64 unless told that the platform is "unsupported" but wanted. */
const ARCH_ENV: NodeJS.ProcessEnv = process.arch === 'arm64' ? { ETCD_UNSUPPORTED_ARCH: 'arm64' } : {};

/** What etcdctl reports for one endpoint, ids in hex (as etcdctl's table prints them). */
export interface CtlStatus {
  memberId: string;
  clusterId: string;
  leaderId: string;
  revision: number;
  raftIndex: number;
  version: string;
  isLearner: boolean;
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  /** `etcd://127.0.0.1:<clientPort>` for the exporter. */
  url: string;
  /** `127.0.0.1:<clientPort>` for etcdctl. */
  endpoint: string;
  process: ServerProcess;
  /** Runs etcdctl (API v3) against this member only; returns stdout, trimmed. */
  ctl(...args: string[]): string;
  /** `etcdctl endpoint status -w json` of this member. */
  status(): CtlStatus;
  /** Start the member again on the same ports and data directory (after a kill). */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Members whose process runs. */
  running(): EtcdMember[];
  /** The member that every running member agrees is the leader. */
  leader(): EtcdMember;
  /** Adds a learner member (`member add --learner`) and starts it. */
  addLearner(): Promise<EtcdMember>;
  /** Removes a member from the cluster and stops its process. */
  removeMember(member: EtcdMember): Promise<void>;
  stop(): Promise<void>;
}

/**
 * etcdctl -w json prints uint64 ids as bare numbers, which JSON.parse would round (ids exceed 2^53):
 * quote every integer of 16+ digits before parsing, then convert with BigInt.
 */
export function parseCtlStatus(json: string): CtlStatus {
  const safe = json.replace(/:(\d{16,})/g, ':"$1"');
  const [entry] = JSON.parse(safe) as {
    Status: Record<string, unknown> & { header: Record<string, unknown> };
  }[];
  const s = entry!.Status;
  // proto3 JSON omits zero values: a missing leader is 0 ('0' in hex).
  const hex = (v: unknown): string => BigInt(v === undefined ? 0 : String(v)).toString(16);
  return {
    memberId: hex(s.header.member_id),
    clusterId: hex(s.header.cluster_id),
    leaderId: hex(s.leader),
    revision: Number(s.header.revision),
    raftIndex: Number(s.raftIndex),
    version: String(s.version),
    isLearner: s.isLearner === true,
  };
}

export function etcdctl(endpoint: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(ETCDCTL, ['--endpoints', endpoint, '--command-timeout', '5s', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  }).trim();
}

interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  /** The peer port the other members are told to dial (a proxy in front of peerPort); default peerPort. */
  advertisedPeerPort?: number;
}

const peerUrl = (m: MemberSpec): string => `http://127.0.0.1:${m.peerPort}`;
const advertisedPeerUrl = (m: MemberSpec): string => `http://127.0.0.1:${m.advertisedPeerPort ?? m.peerPort}`;

function startMember(
  spec: MemberSpec,
  initialCluster: MemberSpec[],
  state: 'new' | 'existing',
  dataDir: string,
  extraArgs: string[] = [],
): ServerProcess {
  const clientUrl = `${extraArgs.includes('--cert-file') ? 'https' : 'http'}://127.0.0.1:${spec.clientPort}`;
  const args = [
    '--name',
    spec.name,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl(spec),
    '--initial-advertise-peer-urls',
    advertisedPeerUrl(spec),
    '--initial-cluster',
    initialCluster.map((m) => `${m.name}=${advertisedPeerUrl(m)}`).join(','),
    '--initial-cluster-state',
    state,
    '--initial-cluster-token',
    `dsx-${initialCluster[0]!.peerPort}`,
    ...extraArgs,
  ];
  return startProcess(ETCD, args, { env: ARCH_ENV });
}

function member(
  spec: MemberSpec,
  start: () => ServerProcess,
  scheme: 'etcd' | 'etcds' = 'etcd',
  ctlArgs: string[] = [],
): EtcdMember {
  const endpoint = `127.0.0.1:${spec.clientPort}`;
  const ctlEndpoint = `${scheme === 'etcds' ? 'https' : 'http'}://${endpoint}`;
  const m: EtcdMember = {
    ...spec,
    url: `${scheme}://${endpoint}`,
    endpoint,
    process: start(),
    ctl: (...args) => etcdctl(ctlEndpoint, [...ctlArgs, ...args]),
    status: () => parseCtlStatus(m.ctl('endpoint', 'status', '-w', 'json')),
    async restart() {
      m.process = start();
      await waitHealthy(m);
    },
  };
  return m;
}

/** Until the member serves requests and knows a leader (a learner: until it has caught up). */
export async function waitHealthy(m: EtcdMember, timeoutMs = 20000): Promise<void> {
  await waitFor(
    `etcd ${m.name} healthy`,
    () => {
      if (m.process.exited()) throw new Error(`etcd ${m.name} exited: ${m.process.output().slice(-800)}`);
      return m.status().leaderId !== '0';
    },
    timeoutMs,
    200,
  );
}

export async function startEtcdCluster(
  size: number,
  options: {
    /** Peer port to advertise per member name (a proxy in front of the member's real peer port). */
    advertisedPeerPorts?: Map<string, number>;
    /** Extra etcd flags per member name. */
    memberArgs?: (name: string) => string[];
    /** Called with the real peer port of each member before any starts (to point proxies at it). */
    onPeerPorts?: (ports: Map<string, number>) => Promise<void>;
  } = {},
): Promise<EtcdCluster> {
  requireBinary(ETCD, 'the Debian package etcd-server');
  requireBinary(ETCDCTL, 'the Debian package etcd-client');
  const ports = await freePorts(size * 2);
  const specs: MemberSpec[] = Array.from({ length: size }, (_, i) => ({
    name: `m${i + 1}`,
    clientPort: ports[2 * i]!,
    peerPort: ports[2 * i + 1]!,
    advertisedPeerPort: options.advertisedPeerPorts?.get(`m${i + 1}`),
  }));
  await options.onPeerPorts?.(new Map(specs.map((s) => [s.name, s.peerPort])));
  const dirs: { remove(): void }[] = [];
  const members = specs.map((spec) => {
    const dir = tempDir(`etcd-${spec.name}`);
    dirs.push(dir);
    // On restart the data directory already holds the membership: the --initial-* flags are ignored.
    return member(spec, () => startMember(spec, specs, 'new', dir.path, options.memberArgs?.(spec.name)));
  });
  const cluster: EtcdCluster = {
    members,
    running: () => members.filter((m) => !m.process.exited()),
    leader() {
      const running = cluster.running();
      const leaders = new Set(running.map((m) => m.status().leaderId));
      if (leaders.size !== 1) throw new Error(`members disagree on the leader: ${[...leaders].join(', ')}`);
      const [leaderId] = leaders;
      const found = running.find((m) => m.status().memberId === leaderId);
      if (!found) throw new Error(`leader ${leaderId} is not a running member`);
      return found;
    },
    async addLearner() {
      const [clientPort, peerPort] = await freePorts(2);
      const spec: MemberSpec = {
        name: `m${members.length + 1}`,
        clientPort: clientPort!,
        peerPort: peerPort!,
      };
      const voter = cluster.running()[0]!;
      voter.ctl('member', 'add', spec.name, '--learner', `--peer-urls=${peerUrl(spec)}`);
      const dir = tempDir(`etcd-${spec.name}`);
      dirs.push(dir);
      const learner = member(spec, () => startMember(spec, [...specs, spec], 'existing', dir.path));
      members.push(learner);
      await waitHealthy(learner);
      return learner;
    },
    async removeMember(m) {
      const id = m.status().memberId;
      const other = cluster.running().find((o) => o !== m)!;
      other.ctl('member', 'remove', id);
      await m.process.stop(3000);
    },
    async stop() {
      // A leader's SIGTERM first tries to hand leadership over, waiting seconds when peers are gone:
      // the data is throw-away, so a short grace is enough.
      await Promise.all(members.map((m) => m.process.stop(1500)));
      for (const d of dirs) d.remove();
    },
  };
  try {
    await Promise.all(members.map((m) => waitHealthy(m)));
  } catch (err) {
    // Do not leave members (and their data directories) behind when the cluster never formed.
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** A single member serving https with client-certificate authentication, for the etcds:// scheme. */
export async function startTlsMember(tls: {
  caFile: string;
  certFile: string;
  keyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}): Promise<{ member: EtcdMember; stop(): Promise<void> }> {
  requireBinary(ETCD, 'the Debian package etcd-server');
  const [clientPort, peerPort] = await freePorts(2);
  const spec: MemberSpec = { name: 'tls1', clientPort: clientPort!, peerPort: peerPort! };
  const dir = tempDir('etcd-tls');
  const serverTls = [
    '--cert-file',
    tls.certFile,
    '--key-file',
    tls.keyFile,
    '--client-cert-auth',
    '--trusted-ca-file',
    tls.caFile,
  ];
  const ctlTls = ['--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile];
  const m = member(spec, () => startMember(spec, [spec], 'new', dir.path, serverTls), 'etcds', ctlTls);
  await waitHealthy(m);
  return {
    member: m,
    async stop() {
      await m.process.stop(1500);
      dir.remove();
    },
  };
}

/** A throw-away CA, a server certificate for 127.0.0.1 and a client certificate (EC keys: fast). */
export function makeCertificates(dir: string): {
  caFile: string;
  certFile: string;
  keyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
} {
  requireBinary('/usr/bin/openssl', 'the Debian package openssl');
  const run = (...args: string[]): void => {
    execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=dsx test CA',
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    run('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=dsx-${name}`);
    writeFileSync(`${dir}/${name}.ext`, ext + '\n');
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  }
  return {
    caFile: `${dir}/ca.crt`,
    certFile: `${dir}/server.crt`,
    keyFile: `${dir}/server.key`,
    clientCertFile: `${dir}/client.crt`,
    clientKeyFile: `${dir}/client.key`,
  };
}

/**
 * Delays what the other members send to ONE member over etcd's peer (raft) links, while every
 * member keeps running: the etcd analogue of a slow replication link.
 */
export interface PeerLinkDelay {
  /** Delays (and pause() holds back) the raft traffic received by this member (hex id). */
  delayMember(memberId: string | undefined): Promise<void>;
  /** The delay in ms, applied to bytes arriving from now on. */
  setDelay(ms: number): Promise<void>;
  /** Holds back everything sent to the member (delivered, in order, on resume). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export interface DelayedEtcdCluster extends EtcdCluster {
  peerDelay: PeerLinkDelay;
}

/**
 * The proxies, run in a child Node process: this test process blocks its event loop in every
 * execFileSync(etcdctl) (up to --command-timeout), and in-process proxies would then stall every
 * raft message, which stalls the cluster, which makes etcdctl time out: a deadlock.
 *
 * etcd peers exchange raft messages on long-lived HTTP streams: member F RECEIVES from member L on a
 * stream that F opened to L's advertised peer URL (`GET /raft/stream/{msgappv2,message}/<F's id>`),
 * and L receives F's acknowledgements on the stream L opened to F. So each member advertises a proxy
 * in front of its real peer port, and the proxies delay only the response bytes of the streams opened
 * by the chosen member: what any leader sends to it is late, what it answers is not.
 */
const PEER_PROXY_SCRIPT = `
const net = require('node:net');
const control = { memberId: undefined, delayMs: 0, paused: false };
const held = [];
const upstreams = [];
function proxy(index) {
  return net.createServer((client) => {
    const upstream = net.connect({ port: upstreams[index], host: '127.0.0.1' });
    let from;
    let sniffed = '';
    const delayed = () => from !== undefined && from === control.memberId;
    client.on('data', (chunk) => {
      if (from === undefined && sniffed.length < 4096) {
        sniffed += chunk.toString('latin1');
        from = (/^GET \\/raft\\/stream\\/[a-z0-9]+\\/([0-9a-f]+) /.exec(sniffed) || [])[1];
      }
      upstream.write(chunk);
    });
    let chain = Promise.resolve();
    upstream.on('data', (chunk) => {
      const due = Date.now() + (delayed() ? control.delayMs : 0);
      chain = chain.then(() => new Promise((resolve) => {
        const deliver = () => {
          if (control.paused && delayed()) { held.push(deliver); return; }
          if (!client.destroyed) client.write(chunk);
          resolve();
        };
        setTimeout(deliver, Math.max(0, due - Date.now()));
      }));
    });
    const closeBoth = () => { client.destroy(); upstream.destroy(); };
    for (const s of [client, upstream]) { s.on('close', closeBoth); s.on('error', closeBoth); }
  });
}
const count = Number(process.argv[1]);
const servers = Array.from({ length: count }, (_, i) => proxy(i));
Promise.all(servers.map((s) => new Promise((r) => s.listen(0, '127.0.0.1', () => r(s.address().port)))))
  .then((ports) => process.send({ ports }));
process.on('message', (m) => {
  if (m.upstreams) upstreams.push(...m.upstreams);
  if ('memberId' in m) control.memberId = m.memberId;
  if (m.delayMs !== undefined) control.delayMs = m.delayMs;
  if (m.paused === true) control.paused = true;
  if (m.paused === false) { control.paused = false; for (const d of held.splice(0)) d(); }
  process.send({ ack: m.seq });
});
process.on('disconnect', () => process.exit(0));
`;

/**
 * A cluster whose members reach each other only through proxies that can delay what one member
 * receives (see PEER_PROXY_SCRIPT). `memberArgs` gives members extra flags, e.g. an election timeout
 * longer than the delay for the delayed member, so that silence from the leader does not make it
 * campaign (that would disrupt the cluster: etcd 3.4 has pre-vote off by default).
 */
export async function startDelayedEtcdCluster(
  size: number,
  memberArgs?: (name: string) => string[],
): Promise<DelayedEtcdCluster> {
  const child = spawn(process.execPath, ['-e', PEER_PROXY_SCRIPT, String(size)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const acks = new Map<number, () => void>();
  let seq = 0;
  const ports = await new Promise<number[]>((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (m: { ports?: number[]; ack?: number }) => {
      if (m.ports) resolve(m.ports);
      if (m.ack !== undefined) acks.get(m.ack)?.();
    });
  });
  /** Sends a control message; resolves once the proxy process has applied it. */
  const send = (message: object): Promise<void> =>
    new Promise((resolve) => {
      const id = ++seq;
      acks.set(id, () => {
        acks.delete(id);
        resolve();
      });
      child.send({ ...message, seq: id });
    });
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const stopProxies = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill();
    await exited;
  };
  let cluster: EtcdCluster;
  try {
    cluster = await startEtcdCluster(size, {
      advertisedPeerPorts: new Map(names.map((n, i) => [n, ports[i]!])),
      memberArgs,
      onPeerPorts: (peerPorts) => send({ upstreams: names.map((n) => peerPorts.get(n)) }),
    });
  } catch (err) {
    await stopProxies();
    throw err;
  }
  const peerDelay: PeerLinkDelay = {
    delayMember: (memberId) => send({ memberId: memberId ?? null }),
    setDelay: (ms) => send({ delayMs: ms }),
    pause: () => send({ paused: true }),
    resume: () => send({ paused: false }),
  };
  return {
    ...cluster,
    peerDelay,
    async stop() {
      await cluster.stop();
      await stopProxies();
    },
  };
}
