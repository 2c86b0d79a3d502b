/**
 * Pure parsers for what an etcd member answers over HTTP: the JSON gateway's Maintenance/Status reply,
 * its error bodies, and the few counters the driver reads from etcd's own /metrics text.
 * They never throw on unexpected extra fields or lines: a newer etcd adding fields cannot break
 * collection. A reply without the fields the model needs is an error, said clearly.
 */
import type { Role } from '../../core/model';

/** What the driver uses from `POST /v3/maintenance/status`, ids already in etcdctl's hex form. */
export interface EtcdStatus {
  /** header.member_id as hex, as `etcdctl endpoint status -w table` prints it (no zero padding). */
  memberId: string;
  /** header.cluster_id as hex. */
  clusterId: string;
  /** The leader's member id as hex; undefined while the member knows no leader (election, no quorum). */
  leaderId?: string;
  /** header.revision: the MVCC store's current revision (moves only on writes). */
  revision: number;
  raftIndex?: number;
  raftTerm?: number;
  version: string;
  dbSizeBytes?: number;
  /** isLearner (etcd >= 3.4); omitted by the gateway when false. */
  isLearner: boolean;
  /** Alarms and other errors the member reports (e.g. 'NOSPACE'), etcd >= 3.4. */
  errors: string[];
}

/**
 * etcd ids are uint64 and the gateway sends them as decimal strings (proto3 JSON), which keeps them
 * exact; a JS number would not (ids exceed 2^53). etcdctl prints them with Go's %x: lowercase hex,
 * no padding ('3fe7c54fa521314' has 15 digits). Returns undefined for absent, zero or malformed ids.
 */
export function idToHex(raw: unknown): string | undefined {
  if (typeof raw !== 'string' && typeof raw !== 'number') return undefined;
  const text = String(raw);
  if (!/^\d{1,20}$/.test(text)) return undefined;
  const id = BigInt(text);
  return id === 0n ? undefined : id.toString(16);
}

/** A uint64/int64 counter sent as a decimal string (or number); undefined if absent or malformed. */
export function int(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw)) return undefined;
  return Number(raw);
}

export function record(raw: unknown): Record<string, unknown> {
  return raw !== null && typeof raw === 'object' && !Array.isArray(raw)
    ? (raw as Record<string, unknown>)
    : {};
}

export function parseStatus(body: string): EtcdStatus {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`etcd status reply is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  const status = record(json);
  const header = record(status.header);
  const memberId = idToHex(header.member_id);
  const clusterId = idToHex(header.cluster_id);
  // An empty store is at revision 1, so a missing revision is a malformed reply, not "no writes".
  const revision = int(header.revision);
  if (!memberId || !clusterId || revision === undefined || typeof status.version !== 'string') {
    throw new Error(
      `etcd status reply lacks header.member_id, header.cluster_id, header.revision or version: ${JSON.stringify(body.slice(0, 200))}`,
    );
  }
  return {
    memberId,
    clusterId,
    leaderId: idToHex(status.leader),
    revision,
    raftIndex: int(status.raftIndex),
    raftTerm: int(status.raftTerm),
    version: status.version,
    dbSizeBytes: int(status.dbSize),
    isLearner: status.isLearner === true,
    errors: Array.isArray(status.errors) ? status.errors.map(String) : [],
  };
}

/**
 * The model role of this member:
 *  - the member is the leader -> primary ('leader');
 *  - a learner -> unknown ('learner'): it receives the log but does not vote, cannot become leader
 *    and refuses client reads and writes, so counting it as a secondary would overstate the
 *    replicas a failover or a read could use;
 *  - no leader known (an election in progress, or this member cut off from quorum) -> unknown
 *    ('no-leader'): it follows no primary, and may be arbitrarily stale;
 *  - otherwise a follower of a known leader -> secondary ('follower').
 */
export function roleFromStatus(status: EtcdStatus): { role: Role; nativeRole: string } {
  if (status.isLearner) return { role: 'unknown', nativeRole: 'learner' };
  if (status.leaderId === undefined) return { role: 'unknown', nativeRole: 'no-leader' };
  if (status.leaderId === status.memberId) return { role: 'primary', nativeRole: 'leader' };
  return { role: 'secondary', nativeRole: 'follower' };
}

/** The gateway's error body: `{"error": "...", "message": "...", "code": <grpc code>}`. */
export interface GatewayError {
  message: string;
  grpcCode?: number;
}

export function parseGatewayError(body: string): GatewayError | undefined {
  try {
    const json = record(JSON.parse(body));
    const message = typeof json.message === 'string' ? json.message : json.error;
    if (typeof message !== 'string') return undefined;
    return { message, grpcCode: typeof json.code === 'number' ? json.code : undefined };
  } catch {
    return undefined;
  }
}

/**
 * Values of unlabelled samples in a Prometheus text exposition, for the given metric names only.
 * Cheap on etcd's ~150 kB /metrics: one indexOf per wanted name, no line splitting, no allocation for
 * the thousands of lines we do not need. A name that is absent (or not a number) is left out.
 */
export function pickUnlabelledSamples(text: string, names: readonly string[]): Map<string, number> {
  const found = new Map<string, number>();
  for (const name of names) {
    const needle = `${name} `;
    let at = text.startsWith(needle) ? 0 : -1;
    if (at < 0) {
      const i = text.indexOf(`\n${needle}`);
      if (i >= 0) at = i + 1;
    }
    if (at < 0) continue;
    const end = text.indexOf('\n', at);
    // `name value [timestamp]`: the value is the second field.
    const value = Number(
      text
        .slice(at + needle.length, end < 0 ? undefined : end)
        .trim()
        .split(/\s+/)[0],
    );
    if (Number.isFinite(value)) found.set(name, value);
  }
  return found;
}

/**
 * The MVCC operation counters, by the names etcd 3.4+ uses (etcd_mvcc_*), falling back to the
 * etcd_debugging_mvcc_* names that 3.3 had and 3.4 still serves alongside (3.5 dropped some of them).
 */
const COUNTERS = {
  range: ['etcd_mvcc_range_total', 'etcd_debugging_mvcc_range_total'],
  put: ['etcd_mvcc_put_total', 'etcd_debugging_mvcc_put_total'],
  delete: ['etcd_mvcc_delete_total', 'etcd_debugging_mvcc_delete_total'],
} as const;

export const MVCC_COUNTER_NAMES: readonly string[] = Object.values(COUNTERS).flat();

export interface MvccOperations {
  /** Range operations executed by this member's MVCC store (gets, txn compares and gets). */
  reads?: number;
  /** Put and delete-range operations applied by this member (local or replicated). */
  writes?: number;
}

/** Reads and writes from /metrics; a side is absent unless all of its counters are found. */
export function mvccOperations(metricsText: string): MvccOperations {
  const samples = pickUnlabelledSamples(metricsText, MVCC_COUNTER_NAMES);
  const counter = (names: readonly string[]): number | undefined =>
    names.map((n) => samples.get(n)).find((v) => v !== undefined);
  const range = counter(COUNTERS.range);
  const put = counter(COUNTERS.put);
  const del = counter(COUNTERS.delete);
  return {
    reads: range,
    writes: put !== undefined && del !== undefined ? put + del : undefined,
  };
}
