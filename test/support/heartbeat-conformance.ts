/**
 * The heartbeat scenarios every driver with heartbeat mode must pass against its real servers, written
 * once. A test file starts its topology once, describes it through a HeartbeatHarness and calls
 * describeHeartbeatConformance() inside its own describe, after its driver-specific tests: the
 * shared tests run in order and the last one fails the primary over.
 */
import type { TestExporter } from './exporter';
import { lagGrowth, lagSamples } from './heartbeat';
import { find, roleOf, value } from './metrics-text';
import { sleep, waitFor } from './processes';
import { promtoolCheckMetrics } from './promtool';

const LAG = 'datastore_shard_replication_lag_seconds';
const HEARTBEAT_TIME = 'datastore_shard_heartbeat_timestamp_seconds';

/** The replicated heartbeat record {t, w}: when and by which node it was written. */
export interface HeartbeatRecord {
  t: number;
  w: string;
}

/** One node of the topology and the --heartbeat exporter that watches it. */
export interface HeartbeatNode {
  readonly name: string;
  readonly exporter: TestExporter;
  /** The record on this node as the datastore's own client or CLI reads it; undefined while none. */
  record(): Promise<HeartbeatRecord | undefined>;
  /** What this node writes as `w` when it is the primary. */
  writerId(): Promise<string>;
}

/** A write load from a client of the datastore on the primary, until stopped. */
export interface ClientLoad {
  stop(): Promise<void>;
}

/** How a node's lag is checked to be back to normal: after two collections, or within a time. */
export interface CatchUp {
  node: HeartbeatNode;
  /** The lag must fall below this (1 s, or the injected delay + 1 s for the delayed node). */
  below: number;
  /** Wait up to this long; without it the lag must be below after the next two collections. */
  withinMs?: number;
  /** Awaited first: the datastore's own view that the node replicates again. */
  ready?(): Promise<void>;
}

export interface HeartbeatHarness {
  /** For the printed figures: "redis", "mariadb", ... */
  readonly datastore: string;
  /** The replication delay the delayed node is given, in seconds. */
  readonly delayS: number;
  /** The labels of the shard the topology forms. */
  shard(): Record<string, string>;
  primary(): HeartbeatNode;
  /** Replicas that replicate with no injected delay while no delay is on. */
  inSync(): HeartbeatNode[];
  /** The replica that gets the injected delay. */
  delayed(): HeartbeatNode;
  /** Every node of the topology. */
  nodes(): HeartbeatNode[];
  /** Client writes on the current primary (the datastore's own client), about 20 a second. */
  startLoad(): Promise<ClientLoad>;
  /**
   * For a delay that is switched rather than configured (a peer proxy): turns it on and off. Until
   * it is on, the delayed node counts among the in-sync ones.
   */
  delay?: { on(): Promise<void>; off(): Promise<void> };
  /** Stops one replica's replication: its lag must then grow with wall time until resume(). */
  pause(): Promise<{ node: HeartbeatNode; resume(): Promise<CatchUp | undefined> }>;
  /**
   * Makes another node the primary, with no configuration of any exporter. Returns the promoted
   * node, and the node that must then replicate from it with a small lag (if the scenario has one),
   * with how it catches up; restore() (if any) puts the original topology back afterwards.
   */
  failover(): Promise<{
    promoted: HeartbeatNode;
    /** How long the promoted node may take to write its first heartbeat. */
    writesWithinMs: number;
    follower?: CatchUp;
    restore?(): Promise<void>;
  }>;
  /**
   * What a replica's exporter must never log (default: a failed heartbeat write). The writer runs
   * for primaries only, so a driver that logs nothing else about writes can ask for more.
   */
  readonly replicaLogsNever?: RegExp;
  /** Extra per-driver assertions while the delay is on / the replica is paused. */
  whileDelayed?(): Promise<void>;
  whilePaused?(node: HeartbeatNode): Promise<void>;
}

const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(' ');

async function lagOf(e: TestExporter, shard: Record<string, string>): Promise<number | undefined> {
  return find(await e.scrape(), LAG, shard)[0]?.value;
}

/** A node's lag is back to normal, in the way the harness says it gets there. */
export async function expectCaughtUp(c: CatchUp, shard: Record<string, string>): Promise<void> {
  await c.ready?.();
  if (c.withinMs === undefined) {
    await c.node.exporter.nextCollections(2);
    expect(value(await c.node.exporter.scrape(), LAG, shard)).toBeLessThan(c.below);
  } else {
    await waitFor(
      `${c.node.name}: lag below ${c.below} s again`,
      async () => ((await lagOf(c.node.exporter, shard)) ?? Infinity) < c.below,
      c.withinMs,
    );
  }
}

/**
 * Registers the shared heartbeat tests in the calling describe; `h` is read only when they run.
 * `beforeFailover` registers the caller's tests that need the scenarios' history (client writes
 * already made) but the original primary: they run after the scenarios, before the failover.
 */
export function describeHeartbeatConformance(
  h: HeartbeatHarness,
  options: { beforeFailover?: () => void } = {},
): void {
  const samplesOf = (nodes: HeartbeatNode[], n: number): Promise<number[][]> =>
    Promise.all(nodes.map((x) => lagSamples(x.exporter, h.shard(), n)));

  test('conformance: the primary writes {t, w} as itself and reports no lag; replicas never write', async () => {
    const primary = h.primary();
    const writer = await primary.writerId();
    const replicas = h.nodes().filter((n) => n !== primary);
    await waitFor(
      'the heartbeat on every node',
      async () => {
        for (const n of h.nodes()) if ((await n.record()) === undefined) return false;
        return true;
      },
      (h.delayS + 5) * 1000,
    );
    await primary.exporter.nextCollections(2);
    expect(Math.abs((await primary.record())!.t - Date.now() / 1000)).toBeLessThan(2);
    for (let i = 0; i < 3; i++) {
      await primary.exporter.nextCollections(1);
      for (const n of h.nodes()) expect((await n.record())?.w).toBe(writer);
    }
    const s = await primary.exporter.scrape();
    expect(roleOf(s, h.shard().shard_id!)).toBe('primary');
    expect(find(s, LAG)).toHaveLength(0);
    expect(value(s, HEARTBEAT_TIME, h.shard())).toBeGreaterThan(Date.now() / 1000 - 2);
    for (const n of replicas) {
      const r = await n.exporter.scrape();
      expect(roleOf(r, h.shard().shard_id!)).toBe('secondary');
      expect(find(r, HEARTBEAT_TIME)).toHaveLength(1);
      // The writer runs for primaries only: a replica's exporter never tried (so never failed).
      expect(n.exporter.logs.join('\n')).not.toMatch(h.replicaLogsNever ?? /heartbeat write failed/);
    }
  });

  test('conformance: no delay: lag in [0, 1) s on every in-sync replica, idle and under load', async () => {
    const replicas = h.inSync();
    await Promise.all(replicas.map((n) => n.exporter.nextCollections(1)));
    const idle = await samplesOf(replicas, 5);
    const load = await h.startLoad();
    let loaded: number[][];
    try {
      await sleep(500);
      loaded = await samplesOf(replicas, 5);
    } finally {
      await load.stop();
    }
    console.log(
      `${h.datastore} heartbeat lag, no delay: idle ${fmt(idle.flat())}; under load ${fmt(loaded.flat())}`,
    );
    for (const lag of [...idle.flat(), ...loaded.flat()]) {
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(1);
    }
  });

  test('conformance: injected delay: lag within ±1 s of it, idle and under load; in-sync replicas stay below 1 s', async () => {
    const delayed = h.delayed();
    const delayS = h.delayS;
    if (h.delay) {
      await h.delay.on();
      await waitFor(
        'the delay visible in the reported lag',
        async () => ((await lagOf(delayed.exporter, h.shard())) ?? 0) > delayS - 1,
        delayS * 1000 + 5000,
      );
    } else {
      await waitFor(
        'lag reported by the delayed replica',
        async () => (await lagOf(delayed.exporter, h.shard())) !== undefined,
        15000,
      );
    }
    try {
      await delayed.exporter.nextCollections(1);
      const idle = (await samplesOf([delayed], 5)).flat();
      const inSync = (await samplesOf(h.inSync(), 2)).flat();
      const load = await h.startLoad();
      let loaded: number[];
      try {
        await sleep(500);
        loaded = (await samplesOf([delayed], 5)).flat();
      } finally {
        await load.stop();
      }
      console.log(
        `${h.datastore} heartbeat lag, ${delayS} s injected: idle ${fmt(idle)}; under load ${fmt(loaded)}; undelayed ${fmt(inSync)}`,
      );
      for (const lag of [...idle, ...loaded]) expect(Math.abs(lag - delayS)).toBeLessThanOrEqual(1);
      for (const lag of inSync) expect(lag).toBeLessThan(1);
      await h.whileDelayed?.();
    } finally {
      await h.delay?.off();
    }
  });

  test('conformance: a paused replica: its lag grows at the rate of wall time (±0.5 s)', async () => {
    const { node, resume } = await h.pause();
    let caughtUp: CatchUp | undefined;
    try {
      const { l0, l1, wall } = await lagGrowth(node.exporter, h.shard());
      console.log(
        `${h.datastore} heartbeat, paused replica ${node.name}: lag ${l0.toFixed(2)} -> ${l1.toFixed(2)} over ${wall.toFixed(2)} s`,
      );
      expect(Math.abs(l1 - l0 - wall)).toBeLessThanOrEqual(0.5);
      await h.whilePaused?.(node);
    } finally {
      caughtUp = await resume();
    }
    if (caughtUp) await expectCaughtUp(caughtUp, h.shard());
  });

  test('conformance: promtool check metrics passes on every node', async () => {
    for (const n of h.nodes()) {
      const text = await n.exporter.scrapeText();
      expect(text).toContain(`${HEARTBEAT_TIME}{`);
      const r = promtoolCheckMetrics(text);
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    }
  });

  options.beforeFailover?.();

  test('conformance: failover: the promoted node takes over writing the heartbeat, with no configuration', async () => {
    const t0 = Date.now();
    const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const { promoted, writesWithinMs, follower, restore } = await h.failover();
    try {
      const writer = await promoted.writerId();
      await waitFor(
        'heartbeat written by the promoted node',
        async () => (await promoted.record().catch(() => undefined))?.w === writer,
        writesWithinMs,
        250,
      );
      const written = since();
      await promoted.exporter.nextCollections(1);
      expect(find(await promoted.exporter.scrape(), LAG)).toHaveLength(0);
      expect(promoted.exporter.logs.join('\n')).not.toMatch(/heartbeat write failed/);
      expect(Math.abs((await promoted.record())!.t - Date.now() / 1000)).toBeLessThan(2);
      if (follower) {
        await expectCaughtUp(follower, h.shard());
        expect(roleOf(await follower.node.exporter.scrape(), h.shard().shard_id!)).toBe('secondary');
      }
      console.log(
        `${h.datastore} heartbeat failover: promoted node's heartbeat at ${written}, follower lag < 1 s at ${since()}`,
      );
    } finally {
      await restore?.();
    }
  });
}
