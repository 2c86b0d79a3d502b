/**
 * Pure mapping from MongoDB command responses to an Observation. All of the MongoDB driver's logic
 * lives here, so the format tests (test/mongodb-map.test.ts) cover it on responses in MongoDB's
 * documented shapes; src/drivers/mongodb/driver.ts only runs the commands.
 *
 * Inputs are the documents the official driver returns: BSON Timestamps arrive as bson `Timestamp`
 * objects, 64-bit integers as numbers or bson `Long`s, so every number goes through `toNumber` and
 * every Timestamp through `timestampParts`, which recognise them by `_bsontype` (not `instanceof`,
 * which would break across two copies of the bson package). Nothing here throws on a missing or
 * unexpected field: an unknown field is ignored and a missing one leaves its model field absent.
 *
 * Mapping (docs/mongodb.md has the full table):
 *  - mongos (`hello.msg == 'isdbgrid'`): no shards (a router holds no data), version and clients only.
 *  - standalone (replSetGetStatus fails with NoReplicationEnabled, 76): one shard, the whole dataset
 *    (no id, so it is named after cluster_id), primary.
 *  - replica set member: one shard named after the replica set (`set`), with the role from `myState`,
 *    lag from optimes, last operation and commit offset from the node's own optime. A config server
 *    (`hello.configsvr: 2`) or a shard of a sharded cluster is such a member too and needs no special
 *    case: its replica set is its own shard, named after the set ('configRS', 'shard01'...).
 *  - not a member (InvalidReplicaSetConfig 93: removed from the set; NotYetInitialized 94; or myState
 *    REMOVED): one shard with role unknown and the reason as native role.
 */
import type {
  CommitOffset,
  Observation,
  PerformanceObservation,
  Role,
  ShardObservation,
} from '../../core/model';

/** A BSON document as the driver hands it over. */
export type Doc = Record<string, unknown>;

/** Server error codes that describe the node's place in a topology rather than a failure. */
export const COMMAND_NOT_FOUND = 59;
export const NO_REPLICATION_ENABLED = 76;
export const INVALID_REPLICA_SET_CONFIG = 93;
export const NOT_YET_INITIALIZED = 94;
export const TOPOLOGY_ERROR_CODES: ReadonlySet<number> = new Set([
  NO_REPLICATION_ENABLED,
  INVALID_REPLICA_SET_CONFIG,
  NOT_YET_INITIALIZED,
]);

/** Replica set member states (`myState`, `members[].state`), from MongoDB's replica-states reference. */
export const MEMBER_STATES: Readonly<Record<number, string>> = {
  0: 'STARTUP',
  1: 'PRIMARY',
  2: 'SECONDARY',
  3: 'RECOVERING',
  5: 'STARTUP2',
  6: 'UNKNOWN',
  7: 'ARBITER',
  8: 'DOWN',
  9: 'ROLLBACK',
  10: 'REMOVED',
};
const PRIMARY = 1;
const SECONDARY = 2;
const ROLLBACK = 9;
const REMOVED = 10;

/** What replSetGetStatus answered. */
export type ReplSetStatusOutcome =
  /** The status document (the node is a replica set member, in whatever state). */
  | { kind: 'status'; doc: Doc }
  /** A server error with one of TOPOLOGY_ERROR_CODES: the node is not (yet, or any more) a member. */
  | { kind: 'error'; code: number; codeName?: string; message: string }
  /** Not asked: mongos has no replica set state of its own. */
  | { kind: 'skipped' };

/** The four command responses one collection is made of. */
export interface MongoResponses {
  /** `hello`, or `isMaster` on servers older than 4.4.2/4.2.10 (same fields, `ismaster` spelled so). */
  hello: Doc;
  replSetStatus: ReplSetStatusOutcome;
  serverStatus: Doc;
  buildInfo: Doc;
}

export interface MapOptions {
  /**
   * Connections the exporter itself holds to the node (the driver's monitoring connection and its
   * one pooled connection): subtracted from `connections.current` so clients_connected counts others.
   */
  ownConnections: number;
  /**
   * When writes_total was first seen to advance (AdvanceTracker): a standalone mongod has no oplog,
   * so this is the only honest "last operation" it has.
   */
  writesAdvancedAtSeconds?: number;
}

/** A BSON Timestamp split into its halves: seconds since the epoch, and the ordinal within the second. */
export interface TimestampParts {
  seconds: number;
  increment: number;
}

function isDoc(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bsonType(v: unknown): string | undefined {
  return isDoc(v) && typeof v._bsontype === 'string' ? v._bsontype : undefined;
}

/** A finite number from a JS number, bigint or bson Long/Int32/Double; undefined otherwise. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  const type = bsonType(v);
  if (type === 'Long' && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as unknown as { toNumber(): number }).toNumber();
  }
  if (type === 'Int32' || type === 'Double') {
    const n = Number((v as { valueOf(): unknown }).valueOf());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/**
 * The halves of a BSON Timestamp: a bson `Timestamp` object (as the driver returns it) or canonical
 * Extended JSON `{"$timestamp": {"t", "i"}}`. The high 32 bits are Unix seconds: that is what every
 * optime's `ts` carries (never `optimeDate`, a rounded Date derived from it).
 */
export function timestampParts(v: unknown): TimestampParts | undefined {
  if (bsonType(v) === 'Timestamp') {
    const ts = v as { t?: unknown; i?: unknown; high?: unknown; low?: unknown };
    // bson >= 5 exposes unsigned `t`/`i`; `high`/`low` are the signed Long halves underneath.
    const seconds = typeof ts.t === 'number' ? ts.t : typeof ts.high === 'number' ? ts.high >>> 0 : undefined;
    const increment = typeof ts.i === 'number' ? ts.i : typeof ts.low === 'number' ? ts.low >>> 0 : undefined;
    return seconds === undefined || increment === undefined ? undefined : { seconds, increment };
  }
  if (isDoc(v) && isDoc(v.$timestamp)) {
    const seconds = toNumber(v.$timestamp.t);
    const increment = toNumber(v.$timestamp.i);
    return seconds === undefined || increment === undefined ? undefined : { seconds, increment };
  }
  return undefined;
}

/**
 * A member's optime in either form: `{ts: Timestamp, t: term}` (3.2+, protocol version 1) or a bare
 * Timestamp (3.0, and protocol version 0 sets). Timestamp(0, 0) is what members without an applied
 * operation show (initial sync, STARTUP): no optime, rather than the epoch.
 */
export function opTimeOf(optime: unknown): TimestampParts | undefined {
  const parts = timestampParts(isDoc(optime) && 'ts' in optime ? optime.ts : optime);
  return parts && parts.seconds > 0 ? parts : undefined;
}

/**
 * The commit offset of an optime: seconds × 1,000,000 + increment. Both halves stay exact in a
 * float64 (a Prometheus sample), unlike the packed 64-bit Timestamp (seconds << 32 | increment),
 * which above 2^53 rounds away up to ~1000 operations. The increment is capped at 999,999 so the
 * value stays ordered like the optime even in a (practically impossible) second with more oplog
 * entries than that. `Math.floor(value / 1e6)` gives the seconds back.
 */
export function commitOffsetOf(optime: TimestampParts): CommitOffset {
  return { value: optime.seconds * 1_000_000 + Math.min(optime.increment, 999_999), unit: 'oplog_timestamp' };
}

/** Sum of the named counters of a serverStatus section; undefined if the section or any field is missing. */
function sumCounters(section: unknown, fields: readonly string[]): number | undefined {
  if (!isDoc(section)) return undefined;
  let total = 0;
  for (const field of fields) {
    const n = toNumber(section[field]);
    if (n === undefined) return undefined;
    total += n;
  }
  return total;
}

const READ_COUNTERS = ['query', 'getmore'] as const;
const WRITE_COUNTERS = ['insert', 'update', 'delete'] as const;

/**
 * Clients, reads and writes from serverStatus.
 *  - clients: connections.current minus the exporter's own connections.
 *  - reads: opcounters.query + opcounters.getmore.
 *  - writes: opcounters insert + update + delete, plus the same fields of opcountersRepl: a secondary
 *    counts the writes it applies from replication there, not in opcounters. Counting both makes
 *    writes_total the writes this node performed, so it moves on secondaries too (as on Redis).
 *  - mongos: clients only. Its opcounters count operations it routes, which the shards' mongods
 *    count again: reporting both would double every read and write summed over a cluster.
 */
export function mapPerformance(
  serverStatus: Doc,
  ownConnections: number,
  isMongos: boolean,
): PerformanceObservation {
  const connections = isDoc(serverStatus.connections) ? serverStatus.connections : {};
  const current = toNumber(connections.current);
  const performance: PerformanceObservation = {
    clientsConnected: current === undefined ? undefined : Math.max(0, current - ownConnections),
  };
  if (isMongos) return performance;
  performance.readsTotal = sumCounters(serverStatus.opcounters, READ_COUNTERS);
  const clientWrites = sumCounters(serverStatus.opcounters, WRITE_COUNTERS);
  const replicatedWrites = sumCounters(serverStatus.opcountersRepl, WRITE_COUNTERS);
  performance.writesTotal =
    clientWrites === undefined
      ? undefined
      : clientWrites + (replicatedWrites === undefined ? 0 : replicatedWrites);
  return performance;
}

function stringField(doc: Doc, field: string): string | undefined {
  const v = doc[field];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** True for a mongos router: `hello.msg` is "isdbgrid" there and nowhere else. */
export function isMongos(hello: Doc): boolean {
  return hello.msg === 'isdbgrid';
}

function roleOfState(state: number | undefined): Role {
  if (state === PRIMARY) return 'primary';
  if (state === SECONDARY) return 'secondary';
  return 'unknown';
}

/** The members array of a replSetGetStatus document (documents only). */
function membersOf(status: Doc): Doc[] {
  return Array.isArray(status.members) ? status.members.filter(isDoc) : [];
}

/**
 * The shard of a replica set member, from replSetGetStatus.
 *  - role: myState 1 primary, 2 secondary, anything else (STARTUP, RECOVERING, STARTUP2, UNKNOWN,
 *    ARBITER, DOWN, ROLLBACK, REMOVED) unknown; the native role is the member's stateStr.
 *  - last operation and commit offset: the node's own optime (its `self` member entry). An arbiter
 *    holds no data and has no optime: neither is reported. The top-level `optimes.appliedOpTime` is
 *    deliberately not used: on an arbiter it echoes the set's optime, not data this node holds.
 *  - lag: the primary's optime minus our own, in seconds, when a primary is known (a healthy member in
 *    state 1) and this node is not it. The primary's optime comes from its last heartbeat, so it can be
 *    a beat older than ours: a negative difference is 0 (not measurably behind), never a negative lag.
 *    Not reported in ROLLBACK: that node's optime is on a branch being undone, not behind the primary.
 */
export function replicaSetShard(status: Doc, hello: Doc): { shard: ShardObservation; selfName?: string } {
  const members = membersOf(status);
  const self = members.find((m) => m.self === true);
  const myState = toNumber(status.myState) ?? toNumber(self?.state);
  const role = roleOfState(myState);
  const nativeRole =
    (self && stringField(self, 'stateStr')) ??
    (myState !== undefined ? (MEMBER_STATES[myState] ?? `state ${myState}`) : undefined);
  const setName = stringField(status, 'set') ?? stringField(hello, 'setName');
  const shard: ShardObservation = { id: setName, role, nativeRole };

  const own = self ? opTimeOf(self.optime) : undefined;
  if (own) {
    shard.lastOperationTimestampSeconds = own.seconds;
    shard.commitOffset = commitOffsetOf(own);
  }
  if (own && role !== 'primary' && myState !== ROLLBACK && myState !== REMOVED) {
    const primary = members.find(
      (m) => m !== self && toNumber(m.state) === PRIMARY && toNumber(m.health) !== 0,
    );
    const primaryOpTime = primary ? opTimeOf(primary.optime) : undefined;
    if (primaryOpTime) shard.lagSeconds = Math.max(0, primaryOpTime.seconds - own.seconds);
  }
  return { shard, selfName: self ? stringField(self, 'name') : undefined };
}

/** The whole Observation of one collection. */
export function mapObservation(responses: MongoResponses, options: MapOptions): Observation {
  const { hello, replSetStatus, serverStatus, buildInfo } = responses;
  const mongos = isMongos(hello);
  const observation: Observation = {
    datastore: 'mongodb',
    version: stringField(buildInfo, 'version') ?? stringField(serverStatus, 'version') ?? 'unknown',
    shards: [],
    performance: mapPerformance(serverStatus, options.ownConnections, mongos),
  };
  if (mongos || replSetStatus.kind === 'skipped') return observation;

  if (replSetStatus.kind === 'error') {
    if (replSetStatus.code === NO_REPLICATION_ENABLED) {
      // Standalone: the whole dataset, always writable. No oplog, so no optime: last operation is
      // when writes_total was first seen to advance, and there is no commit offset.
      observation.shards.push({
        role: 'primary',
        nativeRole: 'standalone',
        lastOperationTimestampSeconds: options.writesAdvancedAtSeconds,
      });
      return observation;
    }
    // Not a member: removed from the set's config (93) or never initiated (94). The node still holds
    // (possibly stale) data, so it keeps its shard, with role unknown and the reason as native role.
    const setName = stringField(hello, 'setName');
    observation.nativeClusterId = setName;
    observation.nativeNodeId = stringField(hello, 'me');
    observation.shards.push({
      id: setName,
      role: 'unknown',
      nativeRole: replSetStatus.codeName ?? `error ${replSetStatus.code}`,
    });
    return observation;
  }

  const { shard, selfName } = replicaSetShard(replSetStatus.doc, hello);
  // The set name is both the cluster id (unless --cluster-id) and the shard id, on purpose even when
  // --cluster-id is given: in a sharded cluster each shard and the config servers are their own
  // replica set, and --cluster-id names the whole cluster while the set names tell its shards apart.
  observation.nativeClusterId = shard.id;
  observation.nativeNodeId = selfName ?? stringField(hello, 'me');
  observation.shards.push(shard);
  return observation;
}
