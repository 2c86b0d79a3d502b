/**
 * The PromQL building blocks of the dashboards. They read the exporter's own series only, never the
 * recording rules, so that a dashboard imported alone on a Prometheus without the rules shows
 * everything. What the rules do for alerts (keep a node's identity and a shard's membership while it
 * is down) is done here with `last_over_time(...[$lookback])`: a node or shard that stopped reporting
 * stays on the panels for the dashboard's "Keep gone nodes for" variable.
 *
 * Every selector is filtered by the dashboard variables (job, cluster_id where the series carries it,
 * instance); node-level series, which carry no cluster_id, are joined to the node identity, which is
 * filtered by cluster.
 */

/** Matchers on series that carry cluster_id (shard metrics, datastore_node_info). */
export const CLUSTER = 'job=~"$job", cluster_id=~"$cluster_id", instance=~"$instance"';
/** Matchers on node-level series (no cluster_id: joined with identity()). */
export const NODE = 'job=~"$job", instance=~"$instance"';
/** Labels of one node's view of one shard. */
export const SHARD_NODE = 'job, instance, cluster_id, shard_id';
/** Labels of one shard. */
export const SHARD = 'job, cluster_id, shard_id';
/** Age of a shard's newest heartbeat above which its writer counts as stopped (as the rules say). */
export const HEARTBEAT_STOPPED_AFTER_SECONDS = 30;

/** `metric{<cluster matchers>[, extra]}`. */
export function sel(metric: string, extra?: string): string {
  return `${metric}{${CLUSTER}${extra ? `, ${extra}` : ''}}`;
}

/** `metric{<node matchers>}`: node-level series. */
export function nodeSel(metric: string): string {
  return `${metric}{${NODE}}`;
}

/** The last value of a cluster-filtered series within $lookback: what a node last reported. */
export function seen(metric: string, extra?: string): string {
  return `last_over_time(${sel(metric, extra)}[$lookback])`;
}

/**
 * The node identity (datastore, cluster_id, node_id per job and instance): the current
 * datastore_node_info, else the last one seen within $lookback, so that a node whose datastore or
 * exporter is down keeps its place in its cluster. `extra` narrows it (e.g. to some datastores).
 */
export function identity(extra?: string): string {
  return (
    `(${sel('datastore_node_info', extra)} or on (job, instance) ` +
    `topk by (job, instance) (1, ${seen('datastore_node_info', extra)}))`
  );
}

/** `<expr> * on (job, instance) group_left (<labels>) identity`: adds e.g. cluster_id and node_id. */
export function withIdentity(expr: string, labels = 'cluster_id, node_id', extra?: string): string {
  return `${expr} * on (job, instance) group_left (${labels}) ${identity(extra)}`;
}

/**
 * Copies label `from` to `to`, shortened for legends: a hex id or UUID of 12 characters or more (Redis
 * Cluster node ids, etcd member and cluster ids, MySQL server_uuid) to its first 8 characters, a long decimal id (PostgreSQL's
 * system identifier, whose leading digits are a creation time shared by clusters made the same day)
 * to its last 8. Anything else (host:port, names) as is.
 */
export function shortened(expr: string, from: string, to: string): string {
  const copy = `label_replace(${expr}, "${to}", "$1", "${from}", "(.*)")`;
  const hex = `label_replace(${copy}, "${to}", "$1…", "${from}", "([0-9a-f]{8})[0-9a-f-]{4,}")`;
  return `label_replace(${hex}, "${to}", "…$1", "${from}", "[0-9]{4,}([0-9]{8})")`;
}

/** Adds a short `node` label (from node_id) for legends. */
export function withNode(expr: string): string {
  return shortened(expr, 'node_id', 'node');
}

/** Every shard reported within $lookback: the ones that stopped reporting too. */
export const SHARDS = `group by (${SHARD}) (${seen('datastore_shard_role')})`;

/**
 * A readable `shard` label per shard: the short cluster id alone where the shard is the whole
 * dataset (named after its cluster: PostgreSQL, MySQL, etcd, ZooKeeper, replicated Redis...), else
 * "<cluster> / <shard>". Equality of two labels is found by matching: each cluster, relabelled with
 * shard_id = cluster_id, matches exactly its whole-dataset shard.
 */
function shardNames(): string {
  const whole =
    `${SHARDS} and on (${SHARD}) ` +
    `label_replace(group by (job, cluster_id) (${SHARDS}), "shard_id", "$1", "cluster_id", "(.*)")`;
  // `whole` in parentheses: `and` and `unless` bind equally, left to right, so without them this read
  // (SHARDS unless SHARDS) and ... and named no shard but the whole-dataset ones.
  const parts = shortened(shortened(`(${SHARDS} unless on (${SHARD}) (${whole}))`, 'cluster_id', 'sc'), 'shard_id', 'ss');
  return `(${shortened(`(${whole})`, 'cluster_id', 'shard')} or label_join(${parts}, "shard", " / ", "sc", "ss"))`;
}

/** Adds the readable `shard` label to a per-shard (or per shard and node) expression. */
export function withShard(expr: string): string {
  return `(${expr}) * on (${SHARD}) group_left (shard) ${shardNames()}`;
}

/**
 * Each node's commit offset as a position comparable across the nodes of its shard. Where the
 * datastore counts within epochs (datastore_shard_commit_epoch: ZooKeeper's zxid counter restarts with
 * each leader election), only offsets of the shard's newest epoch count as they are, and a node still
 * in an older epoch is at 0 of the newest one (it has none of its writes); elsewhere (no epoch series:
 * epoch 0 everywhere), the offset itself.
 */
function commitPosition(): string {
  const offset = sel('datastore_shard_commit_offset');
  const epoch = `(${sel('datastore_shard_commit_epoch')} or 0 * ${offset})`;
  return (
    `(${offset} and on (${SHARD_NODE}) ` +
    `(${epoch} == on (${SHARD}) group_left max by (${SHARD}) (${epoch})) ` +
    `or 0 * ${offset})`
  );
}

/** How far each node's position is behind the newest of its shard (0 for the newest), per node. */
export const BEHIND = `max by (${SHARD_NODE}) (max by (${SHARD}) (${commitPosition()}) - on (${SHARD}) group_right () ${commitPosition()})`;

/** Shards whose heartbeat stopped on every node: the newest heartbeat any node has is old. */
export const WRITER_STOPPED = `(time() - max by (${SHARD}) (${sel('datastore_shard_heartbeat_timestamp_seconds')}) > ${HEARTBEAT_STOPPED_AFTER_SECONDS})`;

/** Secondaries that report now (one series per shard and node). */
export const REPLICAS_REPORTING = `max by (${SHARD_NODE}) (${sel('datastore_shard_role', 'role="secondary"')} == 1)`;

/**
 * Nodes that were secondaries when they last reported within $lookback and report no shard now:
 * their exporter or their datastore is down. They stay listed as replicas of unknown state.
 */
export const REPLICAS_GONE =
  `(max by (${SHARD_NODE}) (${seen('datastore_shard_role', 'role="secondary"')} == 1) ` +
  `unless on (job, instance) ${sel('datastore_shard_role')})`;

/**
 * Where only offsets exist: the replica's position has reached what its shard's newest node had one
 * $__rate_interval ago. Not "0 behind": the nodes are collected and scraped at different moments, so
 * under a steady write load a replica that keeps up is almost always a few writes behind the newest
 * sample (seen: a MariaDB replica 0 behind at no instant of a 3-minute run with a write every 500 ms).
 */
const REACHED_RECENT_NEWEST =
  `(${commitPosition()} >= on (${SHARD}) group_left ` +
  `max by (${SHARD}) (min_over_time(${sel('datastore_shard_commit_offset')}[$__rate_interval])))`;

/**
 * A replica is in sync: lag of at most 1 s where lag is known (and meaningful), else 0 behind its
 * shard's newest or at most one $__rate_interval of writes behind it (REACHED_RECENT_NEWEST).
 */
export const IN_SYNC =
  `(max by (${SHARD_NODE}) (${sel('datastore_shard_replication_lag_seconds')} <= 1) unless on (${SHARD}) ${WRITER_STOPPED}) ` +
  `or on (${SHARD_NODE}) ` +
  `((${BEHIND} == 0 or on (${SHARD_NODE}) max by (${SHARD_NODE}) ${REACHED_RECENT_NEWEST}) ` +
  `unless on (${SHARD_NODE}) (${sel('datastore_shard_replication_lag_seconds')} unless on (${SHARD}) ${WRITER_STOPPED}))`;

/**
 * Time since an instant-vector condition was last true (resolution $__interval, up to $lookback);
 * with `first = 'min'`, since it was first true within $lookback.
 */
export function timeSince(condition: string, by: string, first: 'max' | 'min' = 'max'): string {
  return `time() - ${first} by (${by}) (${first}_over_time(timestamp(${condition})[$lookback:$__interval]))`;
}
