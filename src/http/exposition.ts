/**
 * Renders a Snapshot's model metrics straight to the Prometheus text format or OpenMetrics.
 *
 * Why not prom-client here: a registry costs a label-set hash per series, and a Kafka broker with
 * 10k partitions is ~60k series: prom-client needs most of a second for that, plain string building a
 * few milliseconds. The output is built afresh from each snapshot (so a shard or role that
 * disappears leaves no stale series), once per snapshot and content type (the caller caches it).
 * prom-client still serves the exporter's own and the process metrics (src/http/metrics.ts).
 */
import { ROLES, type Snapshot } from '../core/model';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
export type ContentType = typeof PROMETHEUS_CONTENT_TYPE | typeof OPENMETRICS_CONTENT_TYPE;

const FROM_LAST = 'Value from the last collection.';

/** HELP texts, also the documentation of each model metric. */
export const MODEL_HELP = {
  datastore_node_info: `Identity of the datastore node this exporter watches (always 1). cluster_id_source: where cluster_id comes from: "flag" (--cluster-id), "datastore" (its own cluster identity) or "fallback" (it has none: --cluster-id.fallback or "default", which unrelated clusters in one job may share). replication_group, only when cluster_id does not come from the datastore: an id the nodes replicating together share now (not stable across failover), so that rules can see several clusters behind one cluster_id. ${FROM_LAST}`,
  datastore_version_info: `Version of the datastore node (always 1). ${FROM_LAST}`,
  datastore_shard_role: `Role of this node in each shard: one series per role, 1 for the current role. ${FROM_LAST}`,
  datastore_shard_replication_lag_seconds: `Seconds this node is behind the shard's primary; only on non-primary shards and only where known. ${FROM_LAST}`,
  datastore_shard_last_operation_timestamp_seconds: `Unix time of the last write the shard saw; where the datastore keeps none, the time the exporter first saw the write position advance (resolution: one collection interval; absent until seen). ${FROM_LAST}`,
  datastore_shard_commit_offset: `The datastore's own monotonic position in the shard (bytes, transactions, revision, LSN...; see the docs per datastore). Where datastore_shard_commit_epoch exists, the position within that epoch. ${FROM_LAST}`,
  datastore_shard_commit_epoch: `Only where the datastore's position restarts with each epoch (ZooKeeper: the zxid's epoch, new at each leader election): the epoch that datastore_shard_commit_offset counts within. Compare offsets within the newest epoch only: a node still in an older epoch has none of the newer epoch's writes. ${FROM_LAST}`,
  datastore_shard_key_ranges_info: `The part of the key space each shard holds now, in the datastore's notation (Redis Cluster: slot ranges; empty for a shard without slots), always 1. Changes with resharding, unlike shard_id. ${FROM_LAST}`,
  datastore_shard_heartbeat_timestamp_seconds: `Heartbeat mode: Unix time the shard's primary wrote into the replicated data, as this node has it (lag = now - this on a replica; assumes synchronised clocks). ${FROM_LAST}`,
  datastore_clients_connected: `Clients connected to the node (the exporter's own connection excluded where possible). ${FROM_LAST}`,
  datastore_reads_total: `Read operations as the datastore counts them (see docs/<datastore>.md). ${FROM_LAST}`,
  datastore_writes_total: `Write operations as the datastore counts them (see docs/<datastore>.md). ${FROM_LAST}`,
} as const;

type MetricName = keyof typeof MODEL_HELP;

/** Label value escaping of the text format: backslash, double quote and newline. */
function escapeLabel(value: string): string {
  return /[\\"\n]/.test(value)
    ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
    : value;
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/** Accumulates metric families, writing the HELP/TYPE header only for families with samples. */
class FamilyWriter {
  private out = '';
  constructor(private readonly openMetrics: boolean) {}

  /** `samples` is the family's sample lines, already joined ('' when it has none). */
  family(name: MetricName, type: 'gauge' | 'counter', samples: string): void {
    if (samples === '') return;
    // OpenMetrics names a counter family without its `_total` suffix.
    const familyName = this.openMetrics && type === 'counter' ? name.replace(/_total$/, '') : name;
    this.out += `# HELP ${familyName} ${MODEL_HELP[name]}\n# TYPE ${familyName} ${type}\n` + samples;
  }

  text(): string {
    return this.openMetrics ? this.out + '# EOF\n' : this.out;
  }
}

export function renderSnapshot(snapshot: Snapshot, contentType: ContentType): string {
  const w = new FamilyWriter(contentType === OPENMETRICS_CONTENT_TYPE);
  const cluster = escapeLabel(snapshot.clusterId);
  const datastore = escapeLabel(snapshot.datastore);

  const group =
    snapshot.replicationGroup === undefined
      ? ''
      : `,replication_group="${escapeLabel(snapshot.replicationGroup)}"`;
  w.family(
    'datastore_node_info',
    'gauge',
    `datastore_node_info{datastore="${datastore}",node_id="${escapeLabel(snapshot.nodeId)}",cluster_id="${cluster}",cluster_id_source="${snapshot.clusterIdSource}"${group}} 1\n`,
  );
  w.family(
    'datastore_version_info',
    'gauge',
    `datastore_version_info{datastore="${datastore}",version="${escapeLabel(snapshot.version)}"} 1\n`,
  );

  // String concatenation (V8 ropes) beats arrays + join at 100k+ lines, and has no argument limits.
  let roles = '';
  let lags = '';
  let lastOps = '';
  let offsets = '';
  let epochs = '';
  let keyRanges = '';
  let heartbeats = '';
  for (const shard of snapshot.shards) {
    const labels = `cluster_id="${cluster}",shard_id="${escapeLabel(shard.id)}"`;
    const rolePrefix = `datastore_shard_role{${labels},role="`;
    for (const role of ROLES) roles += rolePrefix + role + (shard.role === role ? '"} 1\n' : '"} 0\n');
    if (shard.lagSeconds !== undefined && shard.role !== 'primary') {
      lags += `datastore_shard_replication_lag_seconds{${labels}} ${formatValue(shard.lagSeconds)}\n`;
    }
    if (shard.lastOperationTimestampSeconds !== undefined) {
      lastOps += `datastore_shard_last_operation_timestamp_seconds{${labels}} ${formatValue(shard.lastOperationTimestampSeconds)}\n`;
    }
    if (shard.commitOffset !== undefined) {
      offsets += `datastore_shard_commit_offset{${labels}} ${formatValue(shard.commitOffset.value)}\n`;
      if (shard.commitOffset.epoch !== undefined) {
        epochs += `datastore_shard_commit_epoch{${labels}} ${formatValue(shard.commitOffset.epoch)}\n`;
      }
    }
    if (shard.keyRanges !== undefined) {
      keyRanges += `datastore_shard_key_ranges_info{${labels},key_ranges="${escapeLabel(shard.keyRanges)}"} 1\n`;
    }
    if (shard.heartbeatTimestampSeconds !== undefined) {
      heartbeats += `datastore_shard_heartbeat_timestamp_seconds{${labels}} ${formatValue(shard.heartbeatTimestampSeconds)}\n`;
    }
  }
  w.family('datastore_shard_role', 'gauge', roles);
  w.family('datastore_shard_replication_lag_seconds', 'gauge', lags);
  w.family('datastore_shard_last_operation_timestamp_seconds', 'gauge', lastOps);
  w.family('datastore_shard_commit_offset', 'gauge', offsets);
  w.family('datastore_shard_commit_epoch', 'gauge', epochs);
  w.family('datastore_shard_key_ranges_info', 'gauge', keyRanges);
  w.family('datastore_shard_heartbeat_timestamp_seconds', 'gauge', heartbeats);

  const perf = snapshot.performance;
  const single = (name: MetricName, v: number | undefined): string =>
    v === undefined ? '' : `${name} ${formatValue(v)}\n`;
  w.family(
    'datastore_clients_connected',
    'gauge',
    single('datastore_clients_connected', perf.clientsConnected),
  );
  w.family('datastore_reads_total', 'counter', single('datastore_reads_total', perf.readsTotal));
  w.family('datastore_writes_total', 'counter', single('datastore_writes_total', perf.writesTotal));
  return w.text();
}
