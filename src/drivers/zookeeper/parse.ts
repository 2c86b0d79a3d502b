/**
 * Pure parsers for ZooKeeper's four-letter-word replies (`srvr`, `mntr`, `conf`), 3.4 to 3.9, and
 * the few jute records of the client protocol that heartbeat mode needs (see the second half).
 *
 * The 4lw replies are plain text whose fields vary by version (3.6 added the metrics-provider lines
 * to `mntr`, 3.5 added `membership:` to `conf`, leaders append `Proposal sizes` to `srvr`...). These
 * parsers never throw: unknown or malformed lines are skipped, and a missing field is `undefined`,
 * so a new ZooKeeper release adding lines cannot break collection.
 */
import { createHash } from 'node:crypto';
import type { CommitOffset, Role } from '../../core/model';

/** What a 4lw reply says when it is not the data asked for. */
export type ReplyProblem = 'not-whitelisted' | 'not-serving' | 'empty';

/**
 * Recognises the replies that carry no data:
 *  - 3.5+ answers a command missing from `4lw.commands.whitelist` with
 *    "<cmd> is not executed because it is not in the whitelist.";
 *  - a server without a running ZooKeeperServer (leader election, lost quorum, follower still
 *    syncing) answers "This ZooKeeper instance is not currently serving requests";
 *  - older servers, and some proxies, just close the socket on a command they refuse.
 */
export function replyProblem(text: string): ReplyProblem | undefined {
  if (/is not executed because it is not in the whitelist/i.test(text)) return 'not-whitelisted';
  if (/not currently serving requests/i.test(text)) return 'not-serving';
  if (text.trim() === '') return 'empty';
  return undefined;
}

export interface SrvrReply {
  /** The raw text after "Zookeeper version:", e.g. "3.8.0-5a02a05e..., built on 2022-02-25 08:49 UTC". */
  rawVersion?: string;
  /** The server state: leader, follower, observer, standalone, read-only... */
  mode?: string;
  /** Last zxid this server applied (epoch in the high 32 bits, counter in the low 32). */
  zxid?: bigint;
  /** Open client connections, the 4lw connection asking included. */
  connections?: number;
}

/** `srvr` (and `stat`): "Key: value" lines. */
export function parseSrvr(text: string): SrvrReply {
  const reply: SrvrReply = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (key) {
      case 'zookeeper version':
        reply.rawVersion = value;
        break;
      case 'mode':
        if (value) reply.mode = value;
        break;
      case 'zxid':
        reply.zxid = parseZxid(value);
        break;
      case 'connections':
        reply.connections = nonNegativeInteger(value);
        break;
    }
  }
  return reply;
}

/** "0x100000002" -> 4294967298n; anything else (garbage, negative, > 64 bits) -> undefined. */
export function parseZxid(text: string): bigint | undefined {
  const m = /^0x([0-9a-f]{1,16})$/i.exec(text.trim());
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** A zxid's two halves: the leader epoch that proposed it, and the counter within that epoch. */
export function splitZxid(zxid: bigint): { epoch: bigint; counter: bigint } {
  return { epoch: zxid >> 32n, counter: zxid & 0xffffffffn };
}

/**
 * `mntr`: one "zk_key<TAB>value" per line. Keys are kept as written; a line without a tab is split
 * at its first whitespace (some proxies and copies of the output turn tabs into spaces).
 */
export function parseMntr(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\S+)(?:\t|\s+)(.*)$/.exec(line.trimEnd());
    if (!m || !m[1]!.startsWith('zk_')) continue;
    fields.set(m[1]!, m[2]!.trim());
  }
  return fields;
}

/** A numeric `mntr` field ("3", "3.0", "74.3333"), or undefined when absent or not a finite number. */
export function mntrNumber(mntr: Map<string, string>, key: string): number | undefined {
  const raw = mntr.get(key);
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

/** `conf`: "key=value" lines; `membership:` and the `server.N=` lines under it are kept as keys too. */
export function parseConf(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    fields.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return fields;
}

/**
 * A digest of the ensemble's membership (`conf`'s server.N lines, 3.5+), or undefined for a
 * standalone server or a `conf` without them: the same on every member, different between ensembles
 * with different members. Not an identity: a reconfig or an address change alters it; it only lets
 * rules see several ensembles behind one fallback cluster id (the replication group).
 */
export function ensembleDigest(conf: Map<string, string>): string | undefined {
  const members = [...conf]
    .filter(([key]) => /^server\.\d+$/.test(key))
    .map(([key, value]) => `${key}=${value}`)
    .sort();
  if (members.length === 0) return undefined;
  return createHash('sha256').update(members.join('\n')).digest('hex').slice(0, 16);
}

/**
 * The commit offset of a zxid. The counter restarts at 0 with each leader epoch, and a new leader
 * reports the new epoch (counter 0) while in-sync followers still report the old epoch's last zxid:
 * the zxid as one number would put them 2^32 - counter "behind". So the offset is the counter, within
 * its epoch; rules and dashboards compare counters within the newest epoch only.
 */
export function zxidOffset(zxid: bigint): CommitOffset {
  const { epoch, counter } = splitZxid(zxid);
  return { value: Number(counter), unit: 'zxid_counter', epoch: Number(epoch) };
}

/** `conf` serverId (the `myid`), or undefined when absent or not a non-negative integer. */
export function confServerId(conf: Map<string, string>): number | undefined {
  return nonNegativeInteger(conf.get('serverId') ?? '');
}

/**
 * The release from the version text: "3.8.0-5a02a05e..., built on ..." -> "3.8.0",
 * "3.5.4-beta-7f51e5b6..., built on ..." -> "3.5.4-beta", Debian's "3.8.0-${mvngit.commit.id}" ->
 * "3.8.0". Text that does not start with a dotted version is returned up to its first comma.
 */
export function parseVersion(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const m = /^v?(\d+(?:\.\d+)+(?:-(?:alpha|beta)\b)?)/i.exec(text);
  if (m) return m[1];
  const head = text.split(',')[0]!.trim();
  return head === '' ? undefined : head;
}

/**
 * Server state -> model role:
 *  - leader -> primary: it orders every write (ZAB proposals) for the whole data tree;
 *  - follower -> secondary: it votes, applies the leader's log and can become leader;
 *  - standalone -> primary: a single server owns the data alone;
 *  - observer -> unknown: it applies the leader's log but never votes and can never become leader,
 *    so it adds nothing to write durability or failover. The model's roles are primary and the
 *    replicas that back it; counting observers as secondaries would make "how many secondaries"
 *    alerts count nodes that cannot replace the leader. The raw mode stays in nativeRole;
 *  - anything else (read-only, a future state) -> unknown.
 */
export function roleOfMode(mode: string | undefined): Role {
  switch (mode?.trim().toLowerCase()) {
    case 'leader':
    case 'standalone':
      return 'primary';
    case 'follower':
      return 'secondary';
    default:
      return 'unknown';
  }
}

/** Read and write operations from `mntr`, where the server counts them. */
export interface OperationCounts {
  readsTotal?: number;
  writesTotal?: number;
}

/** 3.6+ ServerMetrics summary names, present in every `mntr` of a server that has per-namespace counts. */
const SERVER_METRICS_MARKERS = ['zk_cnt_updatelatency', 'zk_updatelatency_count'];

/**
 * Reads and writes from ZooKeeper 3.6+'s per-namespace summaries (a namespace is the first path
 * element: /app/x counts under "app"). DataTree counts:
 *  - reads: getData, exists and getChildren answered by THIS server (client pings, session set-up
 *    and reads of "/" itself are not counted);
 *  - writes: create, delete and setData applied to this server's data tree, i.e. on every member
 *    for every committed write (replicated writes included), sub-operations of a multi included.
 * Default metrics provider: `zk_cnt_<ns>_read_per_namespace`; Prometheus metrics provider (not
 * packaged by Debian, format from its source): `zk_read_per_namespace_count{key="<ns>"}`.
 * A server without ServerMetrics (3.5 and older) yields no counts at all; a 3.6+ server that has
 * seen no namespace yet yields zeros. `excludedNamespaces` are left out: the exporter's own
 * heartbeat namespace, so that its writes (on every member) and reads are not counted as the users'.
 */
export function operationCounts(
  mntr: Map<string, string>,
  excludedNamespaces: readonly string[] = [],
): OperationCounts {
  if (!SERVER_METRICS_MARKERS.some((k) => mntr.has(k))) return {};
  let readsTotal = 0;
  let writesTotal = 0;
  for (const [key, raw] of mntr) {
    const m =
      /^zk_cnt_(.+)_(read|write)_per_namespace$/.exec(key) ??
      /^zk_()(read|write)_per_namespace_count\{(.*)\}$/.exec(key);
    if (!m) continue;
    const namespace = m[1] || /(?:^|,)key="([^"]*)"/.exec(m[3] ?? '')?.[1];
    if (namespace !== undefined && excludedNamespaces.includes(namespace)) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) continue;
    if (m[2] === 'read') readsTotal += n;
    else writesTotal += n;
  }
  return { readsTotal, writesTotal };
}

function nonNegativeInteger(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}
