/**
 * The metrics layer: the exporter's self-metrics and process metrics (prom-client), joined with the
 * model metrics of the current snapshot (src/http/exposition.ts) into one exposition.
 *
 * A scrape never waits on the datastore, and under heavy scraping it must not starve the collection
 * loop either: the whole response is cached per collector state and content type for up to a second
 * (process metrics are at most that old), and the model text is rendered once per snapshot.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CollectorState } from '../core/collector';
import {
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  renderSnapshot,
  type ContentType,
} from './exposition';
import type { Snapshot } from '../core/model';
import { versionInfo } from '../core/version';
import { PreparedExposition } from './prepared';

export { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, type ContentType };

/**
 * How often prom-client's event-loop delay monitor samples (its nodejs_eventloop_lag_* metrics). Its
 * default, 10 ms, wakes an idle exporter 100 times a second; measured on Node 24 (docs/performance.md)
 * that is most of the idle CPU. At 1000 ms the lag metrics keep their names and meaning, with a
 * coarser resolution: a block of a second or more always shows, a shorter one when a sample falls
 * due during it.
 */
export const EVENT_LOOP_MONITOR_PRECISION_MS = 1000;

function newRegistry(contentType: ContentType): Registry<ContentType> {
  const registry = new Registry<ContentType>();
  registry.setContentType(contentType);
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
    help: 'How long the last collection attempt took, in seconds (ticks skipped while waiting to reconnect are no attempts).',
    registers,
    collect() {
      this.set(state().lastDurationSeconds);
    },
  });
  let errorsReported = 0;
  new Counter({
    name: 'datastore_exporter_collect_errors_total',
    help: 'Collection attempts that failed (datastore down, timeout, error); ticks skipped while waiting to reconnect are not counted.',
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
  const build = versionInfo();
  new Gauge({
    name: 'datastore_exporter_build_info',
    help: 'Version, git revision and branch of the exporter, and the Node.js it runs on (always 1).',
    labelNames: ['version', 'revision', 'branch', 'nodejs_version'],
    registers,
  }).set(
    {
      version: build.version,
      revision: build.revision,
      branch: build.branch,
      nodejs_version: build.nodejsVersion,
    },
    1,
  );
  if (withProcessMetrics) {
    collectDefaultMetrics({
      register: registry,
      eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_PRECISION_MS,
    });
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

interface CachedResponse {
  state: CollectorState;
  renderedAt: number;
  body: Promise<string>;
  /** The same body as bytes with headers (http/prepared.ts), made on the first scrape that wants it. */
  prepared?: Promise<PreparedExposition>;
  /** Set once `prepared` has resolved: served without waiting a turn. */
  ready?: PreparedExposition;
}

/**
 * Renders the exposition for a collector: self-metrics from prom-client, model metrics from the
 * current snapshot, the whole cached briefly (see the file comment).
 */
export class MetricsRenderer {
  private readonly selfRegistries = new Map<ContentType, Registry<ContentType>>();
  private readonly responses = new Map<ContentType, CachedResponse>();
  private readonly snapshotTexts = new Map<ContentType, { snapshot: Snapshot; text: string }>();

  constructor(
    private readonly state: () => CollectorState,
    private readonly withProcessMetrics = true,
    private readonly maxAgeMs = 1000,
  ) {}

  private selfRegistry(contentType: ContentType): Registry<ContentType> {
    let registry = this.selfRegistries.get(contentType);
    if (!registry) {
      registry = buildSelfRegistry(this.state, contentType, this.withProcessMetrics);
      this.selfRegistries.set(contentType, registry);
    }
    return registry;
  }

  private snapshotText(snapshot: Snapshot, contentType: ContentType): string {
    const cached = this.snapshotTexts.get(contentType);
    if (cached?.snapshot === snapshot) return cached.text;
    const text = renderSnapshot(snapshot, contentType);
    this.snapshotTexts.set(contentType, { snapshot, text });
    return text;
  }

  private async renderFresh(state: CollectorState, contentType: ContentType): Promise<string> {
    const parts = [await this.selfRegistry(contentType).metrics()];
    if (state.snapshot) parts.push(this.snapshotText(state.snapshot, contentType));
    return joinExpositions(parts, contentType);
  }

  private response(contentType: ContentType): CachedResponse {
    const state = this.state();
    const now = performance.now();
    let cached = this.responses.get(contentType);
    if (!cached || cached.state !== state || now - cached.renderedAt > this.maxAgeMs) {
      cached = { state, renderedAt: now, body: this.renderFresh(state, contentType) };
      this.responses.set(contentType, cached);
      // A failed render must not be served from the cache.
      cached.body.catch(() => this.responses.delete(contentType));
    }
    return cached;
  }

  render(contentType: ContentType): Promise<string> {
    return this.response(contentType).body;
  }

  /** The current answer as prepared bytes (http/prepared.ts): one conversion per render, not per scrape. */
  prepared(contentType: ContentType): Promise<PreparedExposition> {
    const cached = this.response(contentType);
    cached.prepared ??= cached.body.then((text) => {
      cached.ready = new PreparedExposition(text, contentType);
      return cached.ready;
    });
    return cached.prepared;
  }

  /** The current answer's prepared bytes if they are ready now (no render needed), else undefined. */
  preparedNow(contentType: ContentType): PreparedExposition | undefined {
    return this.response(contentType).ready;
  }
}
