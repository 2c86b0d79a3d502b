/**
 * The Datastore Model (docs/datastore-model.md) as plain types, and the Driver contract.
 *
 * Data flows one way: config -> driver -> Observation -> (core resolves identity) -> Snapshot
 * -> metrics / JSON. Drivers only produce Observations; they never import prom-client or express.
 */

/** The node's role in one shard. Anything a driver cannot map with confidence is 'unknown'. */
export type Role = 'primary' | 'secondary' | 'unknown';

export const ROLES: readonly Role[] = ['primary', 'secondary', 'unknown'];

/** A datastore's own monotonic position (bytes of replication stream, revision, LSN...). */
export interface CommitOffset {
  value: number;
  /** What the number counts, documented per driver: 'bytes', 'transactions', 'revision', 'lsn'... */
  unit: string;
  /**
   * Only where the datastore's position restarts from 0 with each epoch (ZooKeeper: a zxid is
   * epoch << 32 | counter, and each leader election starts a new epoch): the epoch, with `value`
   * the position within it. Positions are compared within the newest epoch only: a node that still
   * reports an older epoch has none of the newer epoch's writes, whatever its number says.
   */
  epoch?: number;
}

/** One shard as seen from the local node. */
export interface ShardObservation {
  /**
   * The shard's id. Omit it for the single shard that is the whole dataset: the core then names the
   * shard after the resolved cluster id, so that flags like --cluster-id apply to it too.
   */
  id?: string;
  role: Role;
  /** The datastore's own word for the role ('master', 'follower', 'RECOVERING'...), for JSON APIs. */
  nativeRole?: string;
  /** Seconds this node is behind the primary. Only set where it is known honestly: never a fake 0. */
  lagSeconds?: number;
  /** Unix time (seconds) of the last write this shard saw, where known. */
  lastOperationTimestampSeconds?: number;
  commitOffset?: CommitOffset;
  /**
   * The part of the key space the shard holds now, in the datastore's own notation (Redis Cluster:
   * slot ranges, '0-5460,10923'; '' for a shard that owns no slots). Informational only: it changes
   * with resharding, which is why it is never the shard's id.
   */
  keyRanges?: string;
  /**
   * The shard's heartbeat record as this node has it (what an exporter in heartbeat mode wrote on the
   * shard's primary), where the driver read it. Drivers read it wherever that is cheap, in both
   * modes: the heartbeat namespace is fixed, so every exporter can keep heartbeat traffic out of its
   * counters. The core turns it into heartbeat time and lag only in heartbeat mode (core/heartbeat.ts).
   */
  heartbeat?: HeartbeatRecord;
}

/** Performance counters of the node. Absent fields mean "this datastore cannot tell". */
export interface PerformanceObservation {
  clientsConnected?: number;
  /** Monotonic counters as the datastore counts them; each driver documents its definition. */
  readsTotal?: number;
  writesTotal?: number;
}

/** What a driver returns from one collection: everything it could learn from the local node. */
export interface Observation {
  /** Driver kind, e.g. 'redis'. Used as the `datastore` label. */
  datastore: string;
  version: string;
  /** The datastore's own stable, cluster-unique node id, where it has one (e.g. CLUSTER MYID). */
  nativeNodeId?: string;
  /**
   * The datastore's own cluster identity, where it has one (e.g. PostgreSQL system identifier), or
   * one derived from facts every member shares (Redis Cluster: the lowest node id it knows).
   */
  nativeClusterId?: string;
  /**
   * Where the datastore has no cluster identity: an id that the nodes replicating together share
   * right now (Redis: the replication id of the primary's stream). Not an identity, since it may
   * change (at a failover, a restart): it only lets rules see that several replication groups report
   * one cluster id. Published only while the cluster id does not come from the datastore.
   */
  replicationGroup?: string;
  /** A human name for the cluster, where the datastore has one (Replicante's cluster_display_name). */
  clusterDisplayName?: string;
  shards: ShardObservation[];
  performance: PerformanceObservation;
}

/** A shard with its id resolved and, in heartbeat mode, its heartbeat applied. */
export interface Shard extends Omit<ShardObservation, 'heartbeat'> {
  id: string;
  /**
   * Heartbeat mode only: Unix time written by the shard's primary into the replicated data, as this
   * node has it at the collection.
   */
  heartbeatTimestampSeconds?: number;
}

/**
 * Where a snapshot's cluster id comes from: --cluster-id ('flag'), the datastore's own identity
 * ('datastore'), or neither ('fallback': --cluster-id.fallback or 'default', which clusters of the
 * same kind in one job then share).
 */
export type ClusterIdSource = 'flag' | 'datastore' | 'fallback';

/** The published result of one successful collection, with identity resolved by the core. */
export interface Snapshot {
  datastore: string;
  version: string;
  nodeId: string;
  clusterId: string;
  clusterIdSource: ClusterIdSource;
  /** Observation.replicationGroup, kept only when clusterIdSource is not 'datastore'. */
  replicationGroup?: string;
  clusterDisplayName?: string;
  shards: Shard[];
  performance: PerformanceObservation;
  /** Unix time (seconds) when the collection that produced this snapshot finished. */
  collectedAtSeconds: number;
}

/** A parsed, validated target. The password is kept apart from the URL so it is never printed. */
export interface Target {
  /** URL scheme without ':' (e.g. 'redis'), which selects the driver. */
  scheme: string;
  /** The URL with any password removed: safe to log. */
  redactedUrl: string;
  /** The full URL including credentials, for the driver only. Never log this. */
  url: URL;
  host: string;
  port: number;
  username?: string;
  /** From the URL or, taking precedence, from --target.password-file. */
  password?: string;
}

/** Logging interface drivers may use; the core supplies a structured logger. */
export interface DriverLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** Everything a driver is constructed with. */
export interface DriverOptions {
  target: Target;
  /** Deadline for connecting and for each round trip, in milliseconds. */
  timeoutMs: number;
  logger: DriverLogger;
  /** Driver-specific options (e.g. --kafka.broker-id), by flag name without the driver prefix. */
  extra: Record<string, string>;
  /**
   * Heartbeat mode (--heartbeat) is on: the core writes heartbeats through Driver.heartbeat on
   * primaries and publishes heartbeat lag. A driver whose heartbeat read is not free of side effects
   * (a ZooKeeper session is a transaction) reads the record only then.
   */
  heartbeat: boolean;
}

/**
 * One datastore driver: one instance per target, holding ONE pooled connection.
 * The collector calls connect() once (and again after a failure), then observe() every interval.
 */
export interface Driver {
  /** Open the connection. Rejects on failure; the collector retries with backoff. */
  connect(): Promise<void>;
  /** Collect an Observation from the local node over the open connection. */
  observe(): Promise<Observation>;
  /**
   * Drop the connection at once, abandoning any request in flight (a hung server must not keep a
   * stuck request queued). Must not throw; safe to call when not connected.
   */
  close(): Promise<void>;
  /**
   * Present exactly on drivers that support heartbeat mode, as their registration declares
   * (DriverRegistration.heartbeat; test/registry.test.ts checks that the two agree).
   */
  readonly heartbeat?: HeartbeatStore;
  /**
   * The members of this node's cluster as this node alone knows them (GET /discover). Called on a
   * connected driver; drivers whose datastore cannot list its members from one node leave it out.
   */
  members?(): Promise<MemberList>;
}

export type DriverFactory = (options: DriverOptions) => Driver;

/** A driver that supports heartbeat mode. */
export type HeartbeatDriver = Driver & { readonly heartbeat: HeartbeatStore };

/** What the primary writes into the replicated data in heartbeat mode (--heartbeat). */
export interface HeartbeatRecord {
  /** Unix time (seconds, fractional) on the writer's clock when it wrote. */
  timestampSeconds: number;
  /** node_id of the writer, so a reader can tell who the primary was. */
  writerNodeId: string;
}

/**
 * Heartbeat support of a driver (pt-heartbeat's idea, for every datastore that accepts writes): the
 * node that is primary for a shard writes a HeartbeatRecord into a dedicated, tiny, namespaced place
 * that replicates with the shard's data. Reading it back is part of observe() (ShardObservation
 * .heartbeat), so there is no call order to respect: the store only writes, over the driver's one
 * connection. Shards are named by the driver's own shard id (undefined = the whole dataset), exactly
 * as in its Observation.
 */
export interface HeartbeatStore {
  write(shardId: string | undefined, record: HeartbeatRecord): Promise<void>;
}

/** One member of a node's cluster, as that node knows it (GET /discover, probe/discovery.ts). */
export interface Member {
  /** Where the driver reaches it: a DNS name or an IP (IPv6 without brackets), as the datastore says. */
  host: string;
  /** The port the driver connects to (the one a target URL names), not a peer or replication port. */
  port: number;
  /** Its role as far as the answering node knows it now; 'unknown' where it cannot tell. */
  role: Role;
  /** The datastore's own word ('master', 'standby', 'upstream', 'arbiter'...). */
  nativeRole?: string;
  /** The shard it belongs to, where the datastore names shards (Redis Cluster: the slot ranges). */
  shard?: string;
  /** The answering node itself. */
  self?: boolean;
}

/** What one node knows of its cluster's members. */
export interface MemberList {
  members: Member[];
  /**
   * False where this node cannot see every member from where it stands (a replica does not know its
   * siblings), with the reason in one line. Members without an address make a list incomplete too.
   */
  complete: boolean;
  reason?: string;
  /** Members the node knows of but cannot give the driver's address for: left out, and why. */
  withoutAddress?: { count: number; reason: string };
}
