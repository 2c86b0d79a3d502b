/**
 * The Replicante agent API (JSON), mapped from a Snapshot. Pure: the HTTP routes are in http/routes.ts.
 *
 * The Datastore Model comes from Replicante (replicante.io), whose agents served it at
 * /api/unstable/info/agent, /api/unstable/info/datastore and /api/unstable/shards; serving the same
 * shapes lets an existing Replicante Core use this exporter as its agent. The shapes follow Replicante's
 * Rust models (replicante_models_agent, serde defaults), checked field by field in docs/replicante.md:
 *  - AgentInfo    {"version":{"checkout","number","taint"}}
 *  - DatastoreInfo {"cluster_display_name": string|null, "cluster_id", "kind", "node_id", "version"}
 *  - Shards       {"shards":[{"commit_offset","id","lag","role"}]}
 *      role: "primary" | "secondary" | {"unknown":"<native role>"}  (an externally tagged enum)
 *      commit_offset, lag: {"unit": "seconds" | {"unit":"<name>"}, "value": <i64>} or null
 *  - errors       {"error": "...", "layers": ["..."], "trace": null} (the agents' error body)
 */
import { DRIVERS } from '../drivers/registry';
import type { CommitOffset, Shard, Snapshot } from '../core/model';

export interface AgentVersion {
  /** The git commit the exporter was built from, or "unknown". */
  checkout: string;
  /** The exporter's package version. */
  number: string;
  /** Replicante's wording: "not tainted", "working directory tainted"..., or "unknown". */
  taint: string;
}

export interface AgentInfo {
  version: AgentVersion;
}

export interface DatastoreInfo {
  cluster_display_name: string | null;
  cluster_id: string;
  kind: string;
  node_id: string;
  version: string;
}

/** serde's encoding of Replicante's `CommitUnit` enum: `Seconds` or `Unit(String)`. */
export type ReplicanteUnit = 'seconds' | { unit: string };

export interface ReplicanteOffset {
  unit: ReplicanteUnit;
  /** An i64 in Replicante: always a whole number here. */
  value: number;
}

/** serde's encoding of Replicante's `ShardRole` enum. */
export type ReplicanteRole = 'primary' | 'secondary' | { unknown: string };

export interface ReplicanteShard {
  commit_offset: ReplicanteOffset | null;
  id: string;
  lag: ReplicanteOffset | null;
  role: ReplicanteRole;
}

export interface ShardsInfo {
  shards: ReplicanteShard[];
}

export interface ErrorBody {
  error: string;
  layers: string[];
  trace: null;
}

/** Replicante's `kind`, as the driver registers it; unknown drivers keep their label. */
export function replicanteKind(datastore: string): string {
  return DRIVERS.find((d) => d.name === datastore)?.replicanteKind ?? datastore;
}

export function agentInfo(version: AgentVersion): AgentInfo {
  return { version: { checkout: version.checkout, number: version.number, taint: version.taint } };
}

/** Build details as found (build-info file or environment): missing parts become "unknown". */
export function agentVersion(build: { checkout?: string; taint?: string }, number: string): AgentVersion {
  return { checkout: build.checkout || 'unknown', number, taint: build.taint || 'unknown' };
}

export function datastoreInfo(snapshot: Snapshot): DatastoreInfo {
  return {
    cluster_display_name: snapshot.clusterDisplayName ?? null,
    cluster_id: snapshot.clusterId,
    kind: replicanteKind(snapshot.datastore),
    node_id: snapshot.nodeId,
    version: snapshot.version,
  };
}

/** i64 in Replicante: whole numbers only (truncated: a lag of 2.7 s is "at least 2 s" behind). */
function wholeNumber(value: number): number | undefined {
  return Number.isFinite(value) ? Math.trunc(value) : undefined;
}

function offset(value: number, unit: ReplicanteUnit): ReplicanteOffset | null {
  const whole = wholeNumber(value);
  return whole === undefined ? null : { unit, value: whole };
}

function commitOffset(commit: CommitOffset | undefined): ReplicanteOffset | null {
  if (!commit) return null;
  return offset(commit.value, commit.unit === 'seconds' ? 'seconds' : { unit: commit.unit });
}

function role(shard: Shard): ReplicanteRole {
  if (shard.role === 'primary' || shard.role === 'secondary') return shard.role;
  return { unknown: shard.nativeRole ?? 'unknown' };
}

export function shardInfo(shard: Shard): ReplicanteShard {
  return {
    commit_offset: commitOffset(shard.commitOffset),
    id: shard.id,
    // As in the metrics: lag only on non-primary shards, only where known (never a fake 0).
    lag:
      shard.lagSeconds !== undefined && shard.role !== 'primary' ? offset(shard.lagSeconds, 'seconds') : null,
    role: role(shard),
  };
}

export function shardsInfo(snapshot: Snapshot): ShardsInfo {
  return { shards: snapshot.shards.map(shardInfo) };
}

export function errorBody(message: string): ErrorBody {
  return { error: message, layers: [message], trace: null };
}
