/**
 * Reliability against a real Redis, with the real exporter process (the built bin) measured from the
 * outside (/proc): a datastore that flaps for a minute, and 200 concurrent scrapers for 30 s.
 * The exporter must never crash, never serve a stale number, recover within one interval, keep its
 * RSS and open sockets flat, and put no extra load on the datastore however often it is scraped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Collector } from '../src/core/collector';
import { DEFAULT_DEADLINE_CEILING_FACTOR } from '../src/core/deadline';
import { createLogger } from '../src/core/logger';
import type { Driver } from '../src/core/model';
import { parseTarget } from '../src/core/target';
import { MODEL_METRICS, find, parseExposition, value } from './support/metrics-text';
import { freePort, sleep, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';
import { createDriver } from '../src/drivers/redis/driver';

const CLI = join(__dirname, '..', 'dist', 'cli.js');

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function openSockets(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

async function startBin(target: string): Promise<{ child: ChildProcess; url: string; logs: () => string }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      CLI,
      '--target',
      target,
      '--web.listen-address',
      `127.0.0.1:${port}`,
      '--collect.interval',
      '1s',
      '--collect.timeout',
      '800ms',
    ],
    // The Docker image's runtime setting (Dockerfile NODE_OPTIONS). Without it, Node.js 24's V8 sizes
    // its young generation to the allocation rate of 200 scrapers: one full-suite run saw RSS grow by
    // 75 MiB after the warm-up, sizing rather than a leak (the heap in use stays ~15-30 MiB).
    {
      env: {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=1`.trim(),
      },
    },
  );
  let logs = '';
  child.stderr!.on('data', (d) => (logs = (logs + d).slice(-50000)));
  const url = `http://127.0.0.1:${port}/metrics`;
  await waitFor('exporter listening', async () => (await fetch(url)).ok, 10000);
  return { child, url, logs: () => logs };
}

async function scrape(url: string) {
  return parseExposition(await (await fetch(url)).text());
}

describe('a datastore that flaps every few seconds for a minute', () => {
  let node: RedisNode;
  let exporter: Awaited<ReturnType<typeof startBin>>;

  beforeAll(async () => {
    node = await startRedis(await freePort());
    exporter = await startBin(node.url);
  });
  afterAll(async () => {
    exporter?.child.kill('SIGKILL');
    await node?.stop();
  });

  test('never crashes, never stale, recovers within one interval, RSS and sockets flat', async () => {
    const pid = exporter.child.pid!;
    await waitFor('up', async () => value(await scrape(exporter.url), 'datastore_up') === 1);
    await sleep(2000);
    const socketsStart = openSockets(pid);
    // The RSS baseline is taken after two flaps: V8 sizes its heap to the work during the first
    // failures and reconnects (on Node.js 24 the heap reserves ~55 MiB for ~20 MiB in use, then stays
    // there), and the question here is growth from cycle to cycle, which a leak would show.
    let rssAfterWarmUp: number | undefined;
    let downSince: number | undefined;
    let upSince: number | undefined = Date.now();
    const violations: string[] = [];
    const recoveries: number[] = [];
    const end = Date.now() + 60000;
    let cycle = 0;
    const flapper = (async () => {
      while (Date.now() < end - 4000) {
        await sleep(3000);
        await node.process.kill();
        downSince = Date.now();
        upSince = undefined;
        await sleep(2000 + (cycle++ % 3) * 500);
        await node.restart();
        upSince = Date.now();
        downSince = undefined;
        if (cycle === 2) rssAfterWarmUp = rssKiB(pid);
      }
    })();
    while (Date.now() < end) {
      const s = await scrape(exporter.url);
      const up = value(s, 'datastore_up');
      const modelSeries = MODEL_METRICS.reduce((n, m) => n + find(s, m).length, 0);
      // Never a model series without a successful last collection (no stale numbers).
      if (up === 0 && modelSeries > 0) violations.push(`${modelSeries} model series while datastore_up 0`);
      if (up === 1 && find(s, 'datastore_shard_role').length !== 3) violations.push('up without shard roles');
      // Down for longer than an interval + the collection deadline must show as down. The deadline
      // counts free event-loop time, so on a loaded machine it may stretch up to its ceiling of
      // DEFAULT_DEADLINE_CEILING_FACTOR x 800 ms (core/deadline.ts): seen 2.0-3.1 s in loaded full runs.
      if (
        downSince !== undefined &&
        Date.now() - downSince > 1000 + DEFAULT_DEADLINE_CEILING_FACTOR * 800 &&
        up === 1
      ) {
        violations.push(`stale up ${Date.now() - downSince} ms after the kill`);
      }
      if (upSince !== undefined && up === 1 && recoveries.length < cycle)
        recoveries.push(Date.now() - upSince);
      await sleep(100);
    }
    await flapper;
    await waitFor('up at the end', async () => value(await scrape(exporter.url), 'datastore_up') === 1, 3000);
    expect(violations).toEqual([]);
    expect(cycle).toBeGreaterThanOrEqual(8);
    // Recovery: at most one interval (1 s) plus the collection after the restart.
    expect(Math.max(...recoveries)).toBeLessThanOrEqual(2000);
    expect(exporter.child.exitCode).toBeNull();
    const rssEnd = rssKiB(pid);
    // Flat: no growth beyond noise over the ~8 disconnect/reconnect cycles after the warm-up.
    expect(rssAfterWarmUp).toBeDefined();
    expect(rssEnd).toBeLessThan(rssAfterWarmUp! * 1.25 + 4096);
    expect(openSockets(pid)).toBeLessThanOrEqual(socketsStart + 1);
    expect(exporter.logs()).toMatch(/collection failed/);
  }, 90000);
});

describe('200 concurrent scrapers for 30 s', () => {
  let node: RedisNode;
  let exporter: Awaited<ReturnType<typeof startBin>>;

  beforeAll(async () => {
    node = await startRedis(await freePort());
    exporter = await startBin(node.url);
    await waitFor('up', async () => value(await scrape(exporter.url), 'datastore_up') === 1);
  });
  afterAll(async () => {
    exporter?.child.kill('SIGKILL');
    await node?.stop();
  });

  const commands = (): number => Number(node.info('stats').get('total_commands_processed'));
  const connections = (): number => Number(node.info('stats').get('total_connections_received'));

  test('no errors, flat RSS, and the datastore sees no extra load', async () => {
    const pid = exporter.child.pid!;
    // Baseline: datastore load with nobody scraping, over 5 s.
    let c0 = commands();
    await sleep(5000);
    const idlePerSecond = (commands() - c0 - 1) / 5;
    await Promise.all(Array.from({ length: 20 }, () => fetch(exporter.url).then((r) => r.text())));
    c0 = commands();
    const conn0 = connections();
    // RSS sampled every second during the load: it may rise to serve 200 connections, then stays flat.
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(rssKiB(pid)), 1000);
    const result = await autocannon({ url: exporter.url, connections: 200, duration: 30 });
    clearInterval(sampler);
    const loadedPerSecond = (commands() - c0 - 1) / 30;
    const newConnections = connections() - conn0 - 2;
    const afterWarmUp = rss[9]!;
    const peakLater = Math.max(...rss.slice(10));
    console.log(
      `autocannon: ${result.requests.total} requests, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; ` +
        `RSS at 10 s ${afterWarmUp} KiB, peak after ${peakLater} KiB; redis commands/s idle ${idlePerSecond}, loaded ${loadedPerSecond}`,
    );
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.requests.total).toBeGreaterThan(1000);
    // The datastore's load is that of the collection loop alone: scrapes add nothing.
    expect(newConnections).toBe(0);
    expect(loadedPerSecond).toBeLessThanOrEqual(idlePerSecond * 1.5 + 1);
    // Flat: ~100k requests in the last 20 s; a leak of even 1 KiB per request would add ~100 MiB,
    // while V8's lazily collected garbage stays within a few tens of MiB.
    expect(peakLater - afterWarmUp).toBeLessThan(32 * 1024);
    expect(exporter.child.exitCode).toBeNull();
  }, 60000);
});

describe('collections never overlap, even when the timeout equals the interval', () => {
  let node: RedisNode;
  beforeAll(async () => {
    node = await startRedis(await freePort());
  });
  afterAll(async () => node?.stop());

  test('a hung server: at most one collection in flight at any time', async () => {
    // The real Redis driver, wrapped only to count collections in flight.
    const real = createDriver({
      target: parseTarget(node.url),
      timeoutMs: 1000,
      logger: createLogger('error', 'logfmt', () => undefined),
      extra: {},
      heartbeat: false,
    });
    let inFlight = 0;
    let maxInFlight = 0;
    const counting: Driver = {
      connect: () => real.connect(),
      close: () => real.close(),
      async observe() {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return await real.observe();
        } finally {
          inFlight--;
        }
      },
    };
    const collector = new Collector(counting, {
      intervalSeconds: 1,
      timeoutMs: 1000,
      maxBackoffSeconds: 1,
      identity: { target: { host: '127.0.0.1', port: node.port } },
      logger: createLogger('error', 'logfmt', () => undefined),
    });
    collector.start();
    try {
      await waitFor('up', () => collector.state.up);
      node.process.pause();
      await sleep(5000);
      expect(collector.state.up).toBe(false);
      node.process.resume();
      await waitFor('up again', () => collector.state.up, 5000);
      // A timed-out observe is abandoned by closing its connection, which rejects it at once, and
      // no collection starts while another runs: never two in flight.
      expect(maxInFlight).toBe(1);
    } finally {
      node.process.resume();
      await collector.stop();
    }
  }, 30000);
});
