/**
 * What every driver's exporter does when its datastore goes away, written once and run against each
 * driver's real servers: a stopped server and a hung one (SIGSTOP) are `datastore_up 0` with no model
 * series at all (never a stale number), /metrics keeps answering at once, and the same exporter is
 * up again with fresh series when the server comes back. A test file registers these tests inside
 * its own describe, on the topology it has already started, where the order of its tests wants them.
 */
import type { TestExporter } from './exporter';
import { MODEL_METRICS, find, value, type Sample } from './metrics-text';
import { waitFor } from './processes';

/** A server of the caller's topology, made to fail, and the exporter that watches it. */
interface Outage {
  /** For the test title: "the primary", "the stream leader", ... */
  readonly what: string;
  /** The exporter whose target fails (asked once the server is stopped or hung). */
  exporter(): TestExporter;
  /** How long datastore_up may take to read 0 once the server is gone or hung. */
  readonly downWithinMs: number;
  /** How long datastore_up may take to read 1 once the server is back. */
  readonly upWithinMs: number;
  /** Driver-specific checks while the server is down or hung (the others elect, ...). */
  whileDown?(): Promise<void>;
  /** Driver-specific checks once the exporter is up again (role, promtool, sessions left, ...). */
  afterRecovery?(): Promise<void>;
}

export interface StoppedServer extends Outage {
  /** For the test title: "stopped" (default) or "killed". */
  readonly how?: 'stopped' | 'killed';
  /** Stops or kills the server. */
  stop(): Promise<void>;
  /** Starts it again on the same address. */
  restart(): Promise<void>;
  /**
   * Whether the failed collection is counted and logged as a warning (default true; false where
   * the original scenario did not look, e.g. the logs of a stop that a JVM takes long to finish).
   */
  readonly errorsCounted?: boolean;
  /** A collection-failure log line that must appear while down (e.g. ECONNREFUSED). */
  readonly failureLog?: RegExp;
}

export interface HungServer extends Outage {
  /** SIGSTOPs the server (and whatever else must hang with it). */
  pause(): Promise<void>;
  /** SIGCONTs it. */
  resume(): Promise<void>;
  /**
   * What the exporter says about the abandoned collection, in its logs (default: the 800 ms test
   * deadline) or as the collector's last error.
   */
  readonly timeoutSays?: { in: 'logs' | 'lastError'; pattern: RegExp };
}

/** No model series at all: up 0 is the only truth about the datastore while it cannot answer. */
export function expectNoModelSeries(s: Sample[]): void {
  for (const name of MODEL_METRICS) expect([name, find(s, name).length]).toEqual([name, 0]);
}

async function expectUpAgain(o: Outage): Promise<void> {
  const e = o.exporter();
  await waitFor(
    `${o.what}: datastore_up 1 again`,
    async () => value(await e.scrape(), 'datastore_up') === 1,
    o.upWithinMs,
  );
  // Fresh series: the node is described again (node info and a shard role), not the old numbers.
  const s = await e.scrape();
  expect(find(s, 'datastore_node_info').length).toBeGreaterThan(0);
  expect(find(s, 'datastore_shard_role').length).toBeGreaterThan(0);
  await o.afterRecovery?.();
}

/** Registers: the server stopped -> up 0, no model series; restarted -> up 1 with fresh series. */
export function testServerStopped(o: StoppedServer, timeoutMs?: number): void {
  test(
    `outage conformance: ${o.what} ${o.how ?? 'stopped'}: datastore_up 0 and no model series; restarted: up again without an exporter restart`,
    async () => {
      await o.stop();
      const e = o.exporter();
      try {
        await waitFor(
          'datastore_up 0',
          async () => value(await e.scrape(), 'datastore_up') === 0,
          o.downWithinMs,
        );
        const s = await e.scrape();
        expectNoModelSeries(s);
        if (o.errorsCounted !== false) {
          expect(value(s, 'datastore_exporter_collect_errors_total')).toBeGreaterThan(0);
          expect(e.logs.some((l) => /level=warn msg="collection failed"/.test(l))).toBe(true);
        }
        if (o.failureLog) {
          const failureLog = o.failureLog;
          expect(e.logs.some((l) => /msg="collection failed"/.test(l) && failureLog.test(l))).toBe(true);
        }
        await o.whileDown?.();
      } finally {
        await o.restart();
      }
      await expectUpAgain(o);
    },
    timeoutMs,
  );
}

/** Registers: the server hung -> up 0 within the deadline, /metrics fast, no series; resumed -> up 1. */
export function testServerHung(o: HungServer, timeoutMs?: number): void {
  test(
    `outage conformance: ${o.what} hung (SIGSTOP): datastore_up 0 within the deadline, /metrics answers at once, no model series; SIGCONT recovers`,
    async () => {
      await o.pause();
      const e = o.exporter();
      try {
        await waitFor(
          'datastore_up 0',
          async () => value(await e.scrape(), 'datastore_up') === 0,
          o.downWithinMs,
        );
        const started = Date.now();
        const s = await e.scrape();
        expect(Date.now() - started).toBeLessThan(500);
        expectNoModelSeries(s);
        const says = o.timeoutSays ?? { in: 'logs', pattern: /timed out after 800 ms/ };
        if (says.in === 'logs') expect(e.logs.some((l) => says.pattern.test(l))).toBe(true);
        else expect(e.collector.state.lastError).toMatch(says.pattern);
        await o.whileDown?.();
      } finally {
        await o.resume();
      }
      await expectUpAgain(o);
    },
    timeoutMs,
  );
}
