/**
 * The metrics layer: maps a Snapshot and the collector's state onto Prometheus metrics.
 *
 * Model metrics live in a registry built afresh for each snapshot, so a shard or role that disappears
 * leaves no stale series, and the rendered text is cached per snapshot: a scrape that finds the same
 * snapshot only concatenates strings. Exporter self-metrics and process metrics are rendered per scrape.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CollectorState } from './collector';
import { ROLES, type Snapshot } from './model';
import { EXPORTER_VERSION } from './version';

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;
export type ContentType = typeof PROMETHEUS_CONTENT_TYPE | typeof OPENMETRICS_CONTENT_TYPE;

function newRegistry(contentType: ContentType): Registry<ContentType> {
  const registry = new Registry<ContentType>();
  registry.setContentType(contentType);
  return registry;
}

const FROM_LAST = 'Value from the last collection.';

/** Builds the model metrics for one snapshot into a fresh registry. */
export function buildSnapshotRegistry(snapshot: Snapshot, contentType: ContentType): Registry<ContentType> {
  const registry = newRegistry(contentType);
  const registers = [registry];
  const shardLabels = ['cluster_id', 'shard_id'] as const;

  new Gauge({
    name: 'datastore_node_info',
    help: `Identity of the datastore node this exporter watches (always 1). ${FROM_LAST}`,
    labelNames: ['datastore', 'node_id', 'cluster_id'],
    registers,
  }).set({ datastore: snapshot.datastore, node_id: snapshot.nodeId, cluster_id: snapshot.clusterId }, 1);

  new Gauge({
    name: 'datastore_version_info',
    help: `Version of the datastore node (always 1). ${FROM_LAST}`,
    labelNames: ['datastore', 'version'],
    registers,
  }).set({ datastore: snapshot.datastore, version: snapshot.version }, 1);

  const role = new Gauge({
    name: 'datastore_shard_role',
    help: `Role of this node in each shard: one series per role, 1 for the current role. ${FROM_LAST}`,
    labelNames: [...shardLabels, 'role'],
    registers,
  });
  const lag = new Gauge({
    name: 'datastore_shard_replication_lag_seconds',
    help: `Seconds this node is behind the shard's primary; only on non-primary shards and only where known. ${FROM_LAST}`,
    labelNames: shardLabels,
    registers,
  });
  const lastOp = new Gauge({
    name: 'datastore_shard_last_operation_timestamp_seconds',
    help: `Unix time of the last write the shard saw; where the datastore keeps none, the time the exporter first saw the write position advance (resolution: one collection interval; absent until seen). ${FROM_LAST}`,
    labelNames: shardLabels,
    registers,
  });
  const offset = new Gauge({
    name: 'datastore_shard_commit_offset',
    help: `The datastore's own monotonic position in the shard (bytes, zxid, revision, LSN...; see README per datastore). ${FROM_LAST}`,
    labelNames: shardLabels,
    registers,
  });

  for (const shard of snapshot.shards) {
    const labels = { cluster_id: snapshot.clusterId, shard_id: shard.id };
    for (const r of ROLES) role.set({ ...labels, role: r }, shard.role === r ? 1 : 0);
    if (shard.lagSeconds !== undefined && shard.role !== 'primary') lag.set(labels, shard.lagSeconds);
    if (shard.lastOperationTimestampSeconds !== undefined)
      lastOp.set(labels, shard.lastOperationTimestampSeconds);
    if (shard.commitOffset !== undefined) offset.set(labels, shard.commitOffset.value);
  }

  const perf = snapshot.performance;
  if (perf.clientsConnected !== undefined) {
    new Gauge({
      name: 'datastore_clients_connected',
      help: `Clients connected to the node (the exporter's own connection excluded where possible). ${FROM_LAST}`,
      registers,
    }).set(perf.clientsConnected);
  }
  if (perf.readsTotal !== undefined) {
    new Counter({
      name: 'datastore_reads_total',
      help: `Read operations as the datastore counts them (see README per datastore). ${FROM_LAST}`,
      registers,
    }).inc(perf.readsTotal);
  }
  if (perf.writesTotal !== undefined) {
    new Counter({
      name: 'datastore_writes_total',
      help: `Write operations as the datastore counts them (see README per datastore). ${FROM_LAST}`,
      registers,
    }).inc(perf.writesTotal);
  }
  return registry;
}

/** Exporter self-metrics (and prom-client's process/nodejs metrics), read from the collector at scrape time. */
export function buildSelfRegistry(
  state: () => CollectorState,
  contentType: ContentType,
  withProcessMetrics: boolean,
): Registry<ContentType> {
  const registry = newRegistry(contentType);
  const registers = [registry];
  new Gauge({
    name: 'datastore_up',
    help: 'Whether the last collection from the datastore succeeded (1) or not (0).',
    registers,
    collect() {
      this.set(state().up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'datastore_exporter_collect_duration_seconds',
    help: 'How long the last collection took, in seconds.',
    registers,
    collect() {
      this.set(state().lastDurationSeconds);
    },
  });
  let errorsReported = 0;
  new Counter({
    name: 'datastore_exporter_collect_errors_total',
    help: 'Collections that failed (datastore down, timeout, error).',
    registers,
    collect() {
      // The collector owns the count; a counter can only grow, so add what is new since last scrape.
      const total = state().errorsTotal;
      if (total > errorsReported) this.inc(total - errorsReported);
      errorsReported = total;
    },
  });
  new Gauge({
    name: 'datastore_exporter_last_collect_success_timestamp_seconds',
    help: 'Unix time of the last successful collection (0 if none yet): how fresh the snapshot is.',
    registers,
    collect() {
      this.set(state().lastSuccessSeconds ?? 0);
    },
  });
  new Gauge({
    name: 'datastore_exporter_build_info',
    help: 'Version of the exporter and of Node.js it runs on (always 1).',
    labelNames: ['version', 'nodejs_version'],
    registers,
  }).set({ version: EXPORTER_VERSION, nodejs_version: process.version }, 1);
  if (withProcessMetrics) {
    collectDefaultMetrics({ register: registry });
    // prom-client's totals of active handles/requests/resources are gauges named `_total`, which
    // breaks Prometheus naming (promtool rejects them); the per-type gauges without `_total` stay.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      registry.removeSingleMetric(name);
    }
  }
  return registry;
}

const EOF_LINE = '# EOF\n';

/** Joins rendered registries into one exposition; OpenMetrics allows a single trailing `# EOF`. */
export function joinExpositions(parts: string[], contentType: ContentType): string {
  if (contentType !== OPENMETRICS_CONTENT_TYPE) return parts.join('');
  return parts.map((p) => (p.endsWith(EOF_LINE) ? p.slice(0, -EOF_LINE.length) : p)).join('') + EOF_LINE;
}

/** Picks OpenMetrics when the scraper's Accept header asks for it, else the Prometheus text format. */
export function negotiateContentType(accept: string | undefined): ContentType {
  return accept?.includes('application/openmetrics-text')
    ? OPENMETRICS_CONTENT_TYPE
    : PROMETHEUS_CONTENT_TYPE;
}

/**
 * Renders the exposition for a collector: self-metrics every time, model metrics from the cache of
 * the current snapshot (rebuilt only when a new snapshot is published).
 */
export class MetricsRenderer {
  private readonly selfRegistries = new Map<ContentType, Registry<ContentType>>();
  private cache = new Map<ContentType, Promise<string>>();
  private cachedFor: Snapshot | null = null;

  constructor(
    private readonly state: () => CollectorState,
    private readonly withProcessMetrics = true,
  ) {}

  private selfRegistry(contentType: ContentType): Registry<ContentType> {
    let registry = this.selfRegistries.get(contentType);
    if (!registry) {
      registry = buildSelfRegistry(this.state, contentType, this.withProcessMetrics);
      this.selfRegistries.set(contentType, registry);
    }
    return registry;
  }

  private snapshotText(snapshot: Snapshot, contentType: ContentType): Promise<string> {
    if (this.cachedFor !== snapshot) {
      this.cache = new Map();
      this.cachedFor = snapshot;
    }
    let text = this.cache.get(contentType);
    if (!text) {
      text = buildSnapshotRegistry(snapshot, contentType).metrics();
      this.cache.set(contentType, text);
    }
    return text;
  }

  async render(contentType: ContentType): Promise<string> {
    const snapshot = this.state().snapshot;
    const parts = [await this.selfRegistry(contentType).metrics()];
    if (snapshot) parts.push(await this.snapshotText(snapshot, contentType));
    return joinExpositions(parts, contentType);
  }
}
