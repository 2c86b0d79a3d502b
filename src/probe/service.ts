/**
 * Multi-target probing: `GET /probe?target=<url>[&auth_module=<name>]` collects from that target on
 * request and answers in the same metric contract as /metrics (the blackbox / postgres / mysqld
 * exporter pattern), so one exporter can watch many nodes through Prometheus relabelling.
 *
 * The pieces are the single-target ones: parseTarget() and the driver registry make the driver, a
 * Collector (never started: no cron) owns its one pooled connection, and the metrics layer renders
 * the answer (buildSelfRegistry for datastore_up & co, renderSnapshot for the model, cached per
 * snapshot). What is new is only the request side: the allowlist and auth modules (probe/target.ts),
 * the pool (probe/pool.ts), the caps and the per-probe deadline.
 *
 * Deadline: min(--probe.timeout, X-Prometheus-Scrape-Timeout-Seconds minus a margin), so the answer
 * (datastore_up 0 if the datastore is too slow) reaches Prometheus before it gives up on the scrape.
 * The collection itself is bounded by --probe.timeout (the Collector's own deadline, which also closes
 * a hung connection); a probe that stops waiting earlier leaves it to finish for the pool.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { Collector, type CollectorState } from '../core/collector';
import { ConfigError, TimeoutError, withTimeout } from '../core/errors';
import { createDriver, driverForScheme } from '../drivers/registry';
import type { Logger } from '../core/logger';
import { renderSnapshot } from '../http/exposition';
import { buildSelfRegistry, joinExpositions, type ContentType } from '../http/metrics';
import type { Snapshot } from '../core/model';
import type { ProbeFileConfig } from './config';
import { PoolExhausted, TargetPool, type PooledTarget } from './pool';
import { ProbeRequestError, resolveProbeTarget, type ProbeTarget } from './target';

export interface ProbeSettings {
  config: ProbeFileConfig;
  /** Ceiling of one probe's collection, connect included (--probe.timeout). */
  timeoutMs: number;
  /**
   * Probes in flight at once, and collections running at once (--probe.max-concurrent); beyond: 503.
   * The second matters when probes stop waiting early: their collections still hold connections.
   */
  maxConcurrent: number;
  /** Pooled targets (--probe.max-targets); beyond: the least recently used idle one is closed. */
  maxTargets: number;
  /** Pooled targets per datastore address (--probe.max-connections-per-host), whatever the path. */
  maxPerHost: number;
  /** A pooled target not probed for this long is closed (--probe.idle-timeout). */
  idleTimeoutMs: number;
}

export type ProbeResponse =
  { status: 200; contentType: ContentType; body: string } | { status: 400 | 403 | 503; message: string };

/** How probes ended, for datastore_exporter_probes_total{result}. */
const RESULTS = ['up', 'down', 'bad_request', 'forbidden', 'overloaded'] as const;
type ProbeResult = (typeof RESULTS)[number];

/**
 * Taken off Prometheus's scrape timeout so the answer arrives before Prometheus gives up (rendering
 * and the network need some time too); the blackbox exporter's default offset is the same 0.5 s.
 */
export const SCRAPE_TIMEOUT_MARGIN_MS = 500;

/** The probe's deadline from X-Prometheus-Scrape-Timeout-Seconds (ignored when absent or invalid). */
export function probeDeadlineMs(scrapeTimeoutHeader: string | undefined, timeoutMs: number): number {
  const seconds = Number(scrapeTimeoutHeader);
  if (!scrapeTimeoutHeader || !Number.isFinite(seconds) || seconds <= 0) return timeoutMs;
  const ms = seconds * 1000;
  // A very short scrape timeout keeps half of itself rather than nothing.
  const budget = ms > 2 * SCRAPE_TIMEOUT_MARGIN_MS ? ms - SCRAPE_TIMEOUT_MARGIN_MS : ms / 2;
  return Math.min(timeoutMs, budget);
}

export class ProbeService {
  readonly pool: TargetPool;
  private inFlight = 0;
  private closed = false;
  private readonly results: Record<ProbeResult, number> = {
    up: 0,
    down: 0,
    bad_request: 0,
    forbidden: 0,
    overloaded: 0,
  };
  private readonly registries = new Map<ContentType, Registry<ContentType>>();

  constructor(
    readonly settings: ProbeSettings,
    private readonly logger: Logger,
  ) {
    if (settings.config.allowlist.size === 0) {
      logger.warn('the probe config allows no targets: every /probe answers 403', {
        config: settings.config.source,
      });
    }
    for (const module of settings.config.authModules.values()) {
      if (module.password !== undefined && !module.allowlist) {
        logger.warn(
          'auth module has a password and no allowed_targets: it is sent to any target of allowed_targets that a probe names',
          { auth_module: module.name },
        );
      }
    }
    this.pool = new TargetPool({
      maxTargets: settings.maxTargets,
      maxPerHost: settings.maxPerHost,
      idleTimeoutMs: settings.idleTimeoutMs,
      createCollector: (target) => this.createCollector(target),
      onEvict: (entry, reason) =>
        this.logger.debug('closing pooled probe target', {
          target: entry.probeTarget.target.redactedUrl,
          reason,
        }),
    });
  }

  private createCollector(probeTarget: ProbeTarget): Collector {
    const { target } = probeTarget;
    const registration = driverForScheme(target.scheme)!;
    const logger = this.logger.child({ datastore: registration.name, probe_target: target.redactedUrl });
    const driver = createDriver(registration, {
      target,
      timeoutMs: this.settings.timeoutMs,
      logger,
      extra: {},
      heartbeat: false,
    });
    return new Collector(driver, {
      // No schedule: the interval only seeds the reconnect backoff, which a maximum of 0 switches off,
      // because every probe is a fresh attempt (Prometheus paces them; a probe must not answer "down"
      // from a backoff without trying).
      intervalSeconds: 1,
      maxBackoffSeconds: 0,
      timeoutMs: this.settings.timeoutMs,
      identity: { target, clusterId: probeTarget.clusterId },
      // --cluster-id applies to --target only: a probed target is named by its probe's cluster_id.
      clusterIdAdvice: 'give each cluster its own cluster_id parameter on /probe (or /discover)',
      logger,
      secrets: [target.password],
    });
  }

  private refuse(status: 400 | 403 | 503, message: string, result: ProbeResult): ProbeResponse {
    this.results[result]++;
    // The message never holds the raw target (probe/target.ts), so it is safe to log.
    this.logger.debug('probe refused', { status, reason: message });
    return { status, message };
  }

  async probe(
    query: { target?: unknown; auth_module?: unknown; cluster_id?: unknown },
    scrapeTimeoutHeader: string | undefined,
    contentType: ContentType,
  ): Promise<ProbeResponse> {
    if (this.closed) return this.refuse(503, 'the exporter is shutting down', 'overloaded');
    if (this.inFlight >= this.settings.maxConcurrent) {
      return this.refuse(
        503,
        `${this.settings.maxConcurrent} probes are already running (--probe.max-concurrent); try again later`,
        'overloaded',
      );
    }
    let entry: PooledTarget;
    try {
      const probeTarget = resolveProbeTarget(query, this.settings.config);
      // A probe that joins a running collection costs no connection; a new collection needs a slot.
      if (
        !this.pool.get(probeTarget.key)?.collector.collecting &&
        this.pool.collecting >= this.settings.maxConcurrent
      ) {
        return this.refuse(
          503,
          `${this.settings.maxConcurrent} collections are already running (--probe.max-concurrent; probes that stopped waiting still hold theirs); try again later`,
          'overloaded',
        );
      }
      entry = this.pool.acquire(probeTarget);
    } catch (err) {
      if (err instanceof ProbeRequestError) {
        return this.refuse(err.status, err.message, err.status === 403 ? 'forbidden' : 'bad_request');
      }
      if (err instanceof PoolExhausted) return this.refuse(503, err.message, 'overloaded');
      // A driver refusing the settings the auth module gave it (e.g. an invalid sslmode).
      if (err instanceof ConfigError)
        return this.refuse(400, err.message.replace(/^--target:? ?/, 'target: '), 'bad_request');
      throw err;
    }
    this.inFlight++;
    try {
      const deadlineMs = probeDeadlineMs(scrapeTimeoutHeader, this.settings.timeoutMs);
      const state = await this.collect(entry, deadlineMs);
      if (this.closed) return this.refuse(503, 'the exporter is shutting down', 'overloaded');
      this.results[state.up ? 'up' : 'down']++;
      return { status: 200, contentType, body: await this.render(entry, state, contentType) };
    } finally {
      this.inFlight--;
      this.pool.release(entry);
    }
  }

  /**
   * Collects (or joins the collection already running for this target) within the deadline. A pooled
   * connection that worked last time but fails now (the server restarted, a proxy dropped the idle
   * socket) is retried once on a fresh connection within the same deadline, so a broken pooled
   * connection does not make the probe report a healthy datastore as down.
   */
  private async collect(entry: PooledTarget, deadlineMs: number): Promise<CollectorState> {
    const started = performance.now();
    const wasUp = entry.collector.state.up;
    let attempt = await this.collectWithin(entry, deadlineMs, started);
    const remaining = deadlineMs - (performance.now() - started);
    if (!attempt.state.up && !attempt.timedOut && wasUp && remaining > 0) {
      attempt = await this.collectWithin(entry, remaining, started);
    }
    return attempt.state;
  }

  private async collectWithin(
    entry: PooledTarget,
    ms: number,
    started: number,
  ): Promise<{ state: CollectorState; timedOut: boolean }> {
    try {
      await withTimeout(entry.collector.collect(), ms, 'probe');
      return { state: entry.collector.state, timedOut: false };
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      // Down, with no model metrics: never the numbers of an earlier probe.
      const previous = entry.collector.state;
      const state: CollectorState = {
        snapshot: null,
        up: false,
        attempted: true,
        lastDurationSeconds: (performance.now() - started) / 1000,
        errorsTotal: previous.errorsTotal + 1,
        lastSuccessSeconds: previous.lastSuccessSeconds,
        lastError: `probe deadline of ${Math.round(ms)} ms exceeded`,
      };
      return { state, timedOut: true };
    }
  }

  private snapshotText(entry: PooledTarget, snapshot: Snapshot, contentType: ContentType): Promise<string> {
    if (entry.rendered?.snapshot !== snapshot) entry.rendered = { snapshot, texts: new Map() };
    let text = entry.rendered.texts.get(contentType);
    if (!text) {
      text = Promise.resolve(renderSnapshot(snapshot, contentType));
      entry.rendered.texts.set(contentType, text);
    }
    return text;
  }

  private async render(
    entry: PooledTarget,
    state: CollectorState,
    contentType: ContentType,
  ): Promise<string> {
    // A registry per probe: datastore_up & co describe this probe's outcome, not another probe's.
    const parts = [await buildSelfRegistry(() => state, contentType, false).metrics()];
    if (state.snapshot) parts.push(await this.snapshotText(entry, state.snapshot, contentType));
    return joinExpositions(parts, contentType);
  }

  /** The exporter's own probe metrics, for /metrics (not for /probe answers). */
  metrics(contentType: ContentType): Promise<string> {
    let registry = this.registries.get(contentType);
    if (!registry) {
      registry = this.buildRegistry(contentType);
      this.registries.set(contentType, registry);
    }
    return registry.metrics();
  }

  private buildRegistry(contentType: ContentType): Registry<ContentType> {
    const registry = new Registry<ContentType>();
    registry.setContentType(contentType);
    const registers = [registry];
    const results = this.results;
    const pool = this.pool;
    new Counter({
      name: 'datastore_exporter_probes_total',
      help: 'Probes answered, by result: up/down (datastore_up 1/0), bad_request (400), forbidden (403), overloaded (503).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        for (const r of RESULTS) this.inc({ result: r }, results[r]);
      },
    });
    const inFlight = (): number => this.inFlight;
    new Gauge({
      name: 'datastore_exporter_probes_in_flight',
      help: 'Probes running now (capped by --probe.max-concurrent).',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    new Gauge({
      name: 'datastore_exporter_probe_targets',
      help: 'Targets with a pooled connection (capped by --probe.max-targets).',
      registers,
      collect() {
        this.set(pool.size);
      },
    });
    new Counter({
      name: 'datastore_exporter_probe_target_evictions_total',
      help: 'Pooled targets closed, by reason: idle (--probe.idle-timeout), lru (--probe.max-targets), shutdown.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(pool.evictions)) this.inc({ reason }, n);
      },
    });
    return registry;
  }

  /** Refuses new probes and closes every pooled connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}
