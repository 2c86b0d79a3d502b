/**
 * `npm run bench`: figures, not assertions. Prints tables to stdout.
 *
 * 1. Side by side with the peer exporters (Debian's prometheus-redis-exporter,
 *    prometheus-postgres-exporter, prometheus-mysqld-exporter, when installed), against the SAME real
 *    nodes started here: scrape latency p50/p99 over N scrapes, response size, series count, exporter
 *    RSS, and the load each puts on the datastore per scrape (commands / connections opened).
 * 2. Scale: render time and memory of /metrics for synthetic snapshots of 1k, 10k and 100k shards
 *    through the real metrics layer.
 * 3. Kafka: collection cost for 10k partitions (bench/kafka-metadata.ts).
 *
 * Each exporter is a separate process (ours is the built CLI), measured from outside.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { PROMETHEUS_CONTENT_TYPE, renderSnapshot } from '../src/http/exposition';
import type { AddressInfo } from 'node:net';
import type { Shard, Snapshot } from '../src/core/model';
import type { CollectorState } from '../src/core/collector';
import { createApp } from '../src/http/routes';
import { createLogger } from '../src/core/logger';
import { freePort, freePorts, tempDir, waitFor } from '../test/support/processes';
import { startRedis, type RedisNode } from '../test/support/redis';
import { startPgCluster, type PgCluster } from '../test/support/postgres';
import { EXPORTER_PASSWORD, EXPORTER_USER, startMariadb, type MariadbNode } from '../test/support/mariadb';
import { formatKafkaBenchResult, runKafkaMetadataBench } from './kafka-metadata';
import { KAFKA_IDLE_HEADER, formatKafkaIdle, measureKafkaIdle } from './kafka-idle';
import { loadAverage, measureFootprint, medianFootprint, range, type Footprint } from './footprint';

const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 300);
/** BENCH_OURS_NODE_OPTIONS: NODE_OPTIONS for our exporter only (e.g. to compare V8 flags). */
const OURS_ENV: NodeJS.ProcessEnv =
  process.env.BENCH_OURS_NODE_OPTIONS !== undefined
    ? { NODE_OPTIONS: process.env.BENCH_OURS_NODE_OPTIONS }
    : {};
/** Footprint (bench/footprint.ts): repetitions and periods, in seconds. BENCH_REPEAT=0 skips it. */
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const FOOTPRINT = {
  idleSeconds: Number(process.env.BENCH_IDLE_SECONDS ?? 60),
  loadSeconds: Number(process.env.BENCH_LOAD_SECONDS ?? 20),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 50),
  settleSeconds: Number(process.env.BENCH_SETTLE_SECONDS ?? 30),
};
/** Ours: the built CLI; BENCH_CLI names another build (e.g. of an earlier commit) to compare. */
const CLI = process.env.BENCH_CLI ?? join(__dirname, '..', '..', 'dist', 'cli.js');

interface ScrapeFigures {
  p50Ms: number;
  p99Ms: number;
  bytes: number;
  series: number;
  rssMiB: number;
  /** Datastore-side cost per scrape, as named by the datastore's counter. */
  loadPerScrape: Record<string, number>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function scrapeOnce(url: string): Promise<{ ms: number; text: string }> {
  const t = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  return { ms: performance.now() - t, text };
}

/** N sequential scrapes; the datastore counters are read before and after by `load()`. */
async function measure(
  url: string,
  pid: number,
  load: () => Promise<Record<string, number>>,
): Promise<ScrapeFigures> {
  for (let i = 0; i < 10; i++) await scrapeOnce(url); // warm-up
  const before = await load();
  const times: number[] = [];
  let last = '';
  for (let i = 0; i < SCRAPES; i++) {
    const r = await scrapeOnce(url);
    times.push(r.ms);
    last = r.text;
  }
  const after = await load();
  times.sort((a, b) => a - b);
  const loadPerScrape: Record<string, number> = {};
  // Minus the one round trip (and connection) that reading the counters itself cost, between the two reads.
  for (const k of Object.keys(after)) loadPerScrape[k] = Math.max(0, after[k]! - before[k]! - 1) / SCRAPES;
  return {
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    bytes: Buffer.byteLength(last),
    series: last.split('\n').filter((l) => l && !l.startsWith('#')).length,
    rssMiB: rssMiB(pid),
    loadPerScrape,
  };
}

/** Exporter processes' last stderr lines, for the error message when one does not come up. */
const stderrTails = new Map<ChildProcess, string>();

function startExporterProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  child.stderr?.on('data', (d: Buffer) =>
    stderrTails.set(child, ((stderrTails.get(child) ?? '') + d).slice(-2000)),
  );
  return child;
}

async function waitMetrics(url: string, ready: (text: string) => boolean): Promise<void> {
  await waitFor(`exporter at ${url}`, async () => ready((await scrapeOnce(url)).text), 20000);
}

interface Row {
  datastore: string;
  exporter: string;
  f: ScrapeFigures;
}

async function compare(
  datastore: string,
  ours: { args: string[]; env?: NodeJS.ProcessEnv },
  peer: { bin: string; args: (port: number) => string[]; env?: NodeJS.ProcessEnv } | undefined,
  load: () => Promise<Record<string, number>>,
): Promise<Row[]> {
  const rows: Row[] = [];
  const port = await freePort();
  const us = startExporterProcess(
    process.execPath,
    [CLI, '--web.listen-address', `127.0.0.1:${port}`, ...ours.args],
    { ...OURS_ENV, ...ours.env },
  );
  try {
    const url = `http://127.0.0.1:${port}/metrics`;
    await waitMetrics(url, (t) => /^datastore_up 1$/m.test(t)).catch((err: Error) => {
      throw new Error(`${err.message}; exporter stderr: ${stderrTails.get(us) ?? ''}`);
    });
    rows.push({ datastore, exporter: 'datastore-exporter', f: await measure(url, us.pid!, load) });
  } finally {
    us.kill('SIGKILL');
  }
  await footprintOf(
    datastore,
    'datastore-exporter',
    process.execPath,
    (p) => [CLI, '--web.listen-address', `127.0.0.1:${p}`, ...ours.args],
    { ...OURS_ENV, ...ours.env },
    /^datastore_up 1$/m,
  );
  if (process.env.BENCH_PEERS === '0') return rows;
  if (peer && existsSync(peer.bin)) {
    const peerPort = await freePort();
    const them = startExporterProcess(peer.bin, peer.args(peerPort), peer.env);
    try {
      const url = `http://127.0.0.1:${peerPort}/metrics`;
      await waitMetrics(url, (t) => /_up 1$/m.test(t));
      rows.push({ datastore, exporter: peer.bin.split('/').pop()!, f: await measure(url, them.pid!, load) });
    } catch (err) {
      console.log(`(${peer.bin} did not come up against ${datastore}: ${(err as Error).message})`);
    } finally {
      them.kill('SIGKILL');
    }
    await footprintOf(datastore, peer.bin.split('/').pop()!, peer.bin, peer.args, peer.env, /_up 1$/m);
  } else if (peer) {
    console.log(
      `(${peer.bin} not installed: no peer figures for ${datastore}; apt-get install ${peer.bin.split('/').pop()})`,
    );
  }
  return rows;
}

interface FootprintRow {
  datastore: string;
  exporter: string;
  runs: Footprint[];
  loadAverages: string[];
}
const footprints: FootprintRow[] = [];

/** REPEAT footprint runs of one exporter, each a fresh process on a fresh port (bench/footprint.ts). */
async function footprintOf(
  datastore: string,
  exporter: string,
  cmd: string,
  args: (port: number) => string[],
  env: NodeJS.ProcessEnv | undefined,
  up: RegExp,
): Promise<void> {
  if (REPEAT <= 0) return;
  const row: FootprintRow = { datastore, exporter, runs: [], loadAverages: [] };
  for (let i = 0; i < REPEAT; i++) {
    const port = await freePort();
    try {
      row.runs.push(
        await measureFootprint(cmd, args(port), env ?? {}, `http://127.0.0.1:${port}/metrics`, up, FOOTPRINT),
      );
      row.loadAverages.push(loadAverage());
    } catch (err) {
      console.log(`(footprint of ${exporter} against ${datastore} failed: ${(err as Error).message})`);
    }
  }
  if (row.runs.length) footprints.push(row);
}

function printFootprints(): void {
  if (!footprints.length) return;
  const f = FOOTPRINT;
  console.log(
    `\n## Footprint: idle ${f.idleSeconds} s, then ${f.connections} concurrent scrapers for ${f.loadSeconds} s, then ${f.settleSeconds} s (${REPEAT} runs: min-max; Node ${process.version})\n`,
  );
  console.log(
    '| datastore | exporter | start to up ms | RSS idle MiB (anon + file) | idle CPU s/hour | RSS peak MiB | RSS after MiB | heap idle -> after MiB | req/s | non-2xx | load average |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of footprints) {
    const m = medianFootprint(r.runs);
    console.log(
      `| ${r.datastore} | ${r.exporter} | ${range(r.runs, 'startToUpMs', 0)} | ${range(r.runs, 'idleRssMiB')} (${m.idleAnonMiB.toFixed(1)} + ${m.idleFileMiB.toFixed(1)}) | ${range(r.runs, 'idleCpuSecondsPerHour')} | ${range(r.runs, 'peakRssMiB')} | ${range(r.runs, 'afterRssMiB')} | ${m.heapIdleMiB.toFixed(1)} -> ${m.heapAfterMiB.toFixed(1)} | ${range(r.runs, 'requestsPerSecond', 0)} | ${m.non2xx} | ${r.loadAverages.join('; ')} |`,
    );
  }
  console.log(
    '\n| datastore | peer | RSS idle ours/peer | RSS peak ours/peer | idle CPU ours/peer | start to up ours/peer | req/s ours/peer |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const ours of footprints.filter((r) => r.exporter === 'datastore-exporter')) {
    const peer = footprints.find((r) => r.datastore === ours.datastore && r.exporter !== ours.exporter);
    if (!peer) {
      const why = process.env.BENCH_PEERS === '0' ? 'peers skipped (BENCH_PEERS=0)' : 'peer not installed';
      console.log(`| ${ours.datastore} | ${why} | | | | | |`);
      continue;
    }
    const a = medianFootprint(ours.runs);
    const b = medianFootprint(peer.runs);
    const ratio = (x: number, y: number): string => (y > 0 ? (x / y).toFixed(2) : x > 0 ? 'inf' : '1.00');
    console.log(
      `| ${ours.datastore} | ${peer.exporter} | ${ratio(a.idleRssMiB, b.idleRssMiB)} | ${ratio(a.peakRssMiB, b.peakRssMiB)} | ${ratio(a.idleCpuSecondsPerHour, b.idleCpuSecondsPerHour)} | ${ratio(a.startToUpMs, b.startToUpMs)} | ${ratio(a.requestsPerSecond, b.requestsPerSecond)} |`,
    );
  }
}

function redisLoad(node: RedisNode): () => Promise<Record<string, number>> {
  return async () => {
    const info = node.info('stats');
    return {
      commands: Number(info.get('total_commands_processed')),
      connections: Number(info.get('total_connections_received')),
    };
  };
}

async function benchRedis(): Promise<Row[]> {
  const node = await startRedis(await freePort());
  try {
    return await compare(
      'redis',
      { args: ['--target', node.url] },
      {
        bin: '/usr/bin/prometheus-redis-exporter',
        args: (p) => ['--redis.addr', node.url, '--web.listen-address', `127.0.0.1:${p}`],
      },
      redisLoad(node),
    );
  } finally {
    await node.stop();
  }
}

async function benchPostgres(): Promise<Row[]> {
  const [port] = await freePorts(1);
  const cluster: PgCluster = await startPgCluster({
    primaryPort: port!,
    standbys: [],
    setup: "CREATE ROLE exporter LOGIN PASSWORD 'bench-pw' IN ROLE pg_monitor",
  });
  const dir = tempDir('bench-pg');
  try {
    const pw = join(dir.path, 'pw');
    writeFileSync(pw, 'bench-pw');
    const load = async (): Promise<Record<string, number>> => {
      const c = new Client({
        host: '127.0.0.1',
        port: port!,
        user: 'exporter',
        password: 'bench-pw',
        database: 'postgres',
      });
      await c.connect();
      const r = await c.query<{ s: string }>('SELECT sum(sessions)::bigint AS s FROM pg_stat_database');
      await c.end();
      return { connections: Number(r.rows[0].s) };
    };
    const dsn = `postgresql://exporter:bench-pw@127.0.0.1:${port}/postgres?sslmode=disable`;
    return await compare(
      'postgresql',
      {
        args: ['--target', `postgresql://exporter@127.0.0.1:${port}/postgres`, '--target.password-file', pw],
      },
      {
        bin: '/usr/bin/prometheus-postgres-exporter',
        args: (p) => ['--web.listen-address', `127.0.0.1:${p}`],
        env: { DATA_SOURCE_NAME: dsn },
      },
      load,
    );
  } finally {
    await cluster.stop();
    dir.remove();
  }
}

async function benchMariadb(): Promise<Row[]> {
  const node: MariadbNode = await startMariadb(await freePort(), 1);
  const dir = tempDir('bench-my');
  try {
    // Ours with its least privileges; mysqld_exporter with the privileges its README asks for.
    node.sql(
      [
        `CREATE USER '${EXPORTER_USER}'@'127.0.0.1' IDENTIFIED BY '${EXPORTER_PASSWORD}'`,
        `GRANT SLAVE MONITOR ON *.* TO '${EXPORTER_USER}'@'127.0.0.1'`,
        "CREATE USER 'mysqld_exporter'@'127.0.0.1' IDENTIFIED BY 'peer-pw'",
        "GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'mysqld_exporter'@'127.0.0.1'",
      ].join('; '),
    );
    const cnf = join(dir.path, 'my.cnf');
    writeFileSync(
      cnf,
      `[client]\nuser=mysqld_exporter\npassword=peer-pw\nhost=127.0.0.1\nport=${node.port}\n`,
    );
    const load = async (): Promise<Record<string, number>> => ({
      connections: node.globalStatus('Connections'),
    });
    return await compare(
      'mariadb',
      { args: ['--target', node.url, '--target.password-file', node.passwordFile] },
      {
        bin: '/usr/bin/prometheus-mysqld-exporter',
        args: (p) => [`--config.my-cnf=${cnf}`, '--web.listen-address', `127.0.0.1:${p}`],
      },
      load,
    );
  } finally {
    await node.stop();
    dir.remove();
  }
}

/**
 * What a pooled /probe target costs, measured from outside like the footprint: our CLI with a probe
 * config of POOLED auth modules (no credentials) on one redis-server, i.e. POOLED distinct pooled
 * targets, each with its own driver, collector and connection. RSS and reported heap after 1 and after
 * POOLED targets. redis_exporter keeps no pool (it connects per /scrape): its RSS after as many
 * /scrape calls is printed beside it.
 */
async function benchProbeTargets(): Promise<void> {
  const POOLED = 100;
  const redis = await startRedis(await freePort());
  const dir = tempDir('bench-probe-mem');
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const address = `redis://127.0.0.1:${redis.port}`;
  try {
    const configFile = join(dir.path, 'probe.yml');
    const modules = Array.from({ length: POOLED }, (_, i) => `  m${i}: {}`).join('\n');
    writeFileSync(configFile, `allowed_targets: ["${address}"]\nauth_modules:\n${modules}\n`);
    const port = await freePort();
    const us = startExporterProcess(process.execPath, [
      CLI,
      '--web.listen-address',
      `127.0.0.1:${port}`,
      '--probe.config-file',
      configFile,
      '--probe.max-targets',
      String(POOLED + 10),
    ]);
    const figures: string[] = [];
    try {
      const probe = async (i: number): Promise<void> => {
        const res = await fetch(
          `http://127.0.0.1:${port}/probe?target=${encodeURIComponent(address)}&auth_module=m${i}`,
        );
        const text = await res.text();
        if (!/^datastore_up 1$/m.test(text))
          throw new Error(`probe m${i}: ${res.status} ${text.slice(0, 200)}`);
      };
      await waitFor('our /probe', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 20000);
      const heap = async (): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1]) / 1048576;
      };
      await probe(0);
      await sleep(2000);
      const rss1 = rssMiB(us.pid!);
      const heap1 = await heap();
      for (let i = 1; i < POOLED; i++) await probe(i);
      await sleep(2000);
      const rssN = rssMiB(us.pid!);
      const heapN = await heap();
      figures.push(
        `| datastore-exporter | ${rss1.toFixed(1)} | ${rssN.toFixed(1)} | ${(((rssN - rss1) * 1024) / (POOLED - 1)).toFixed(0)} | ${(((heapN - heap1) * 1024) / (POOLED - 1)).toFixed(0)} |`,
      );
    } finally {
      us.kill('SIGKILL');
    }
    const peerBin = '/usr/bin/prometheus-redis-exporter';
    if (existsSync(peerBin)) {
      const peerPort = await freePort();
      const them = startExporterProcess(peerBin, ['--web.listen-address', `127.0.0.1:${peerPort}`]);
      try {
        const scrape = async (): Promise<void> => {
          await (
            await fetch(`http://127.0.0.1:${peerPort}/scrape?target=${encodeURIComponent(address)}`)
          ).text();
        };
        await waitFor('redis_exporter', async () => (await fetch(`http://127.0.0.1:${peerPort}/`)).ok, 20000);
        await scrape();
        await sleep(2000);
        const rss1 = rssMiB(them.pid!);
        for (let i = 1; i < POOLED; i++) await scrape();
        await sleep(2000);
        const rssN = rssMiB(them.pid!);
        figures.push(
          `| redis_exporter (no pool) | ${rss1.toFixed(1)} | ${rssN.toFixed(1)} | ${(((rssN - rss1) * 1024) / (POOLED - 1)).toFixed(0)} | |`,
        );
      } finally {
        them.kill('SIGKILL');
      }
    } else {
      figures.push('| redis_exporter | peer not installed | | | |');
    }
    console.log(
      `\n## /probe: memory per pooled target (${POOLED} targets on one redis-server; load average ${loadAverage()})\n`,
    );
    console.log(
      '| exporter | RSS after 1 target MiB | RSS after 100 MiB | KiB RSS per target | KiB heap per target |',
    );
    console.log('|---|---:|---:|---:|---:|');
    for (const line of figures) console.log(line);
  } finally {
    await redis.stop();
    dir.remove();
  }
}

function syntheticSnapshot(shards: number): Snapshot {
  const list: Shard[] = [];
  for (let i = 0; i < shards; i++) {
    list.push({
      id: `topic-${Math.floor(i / 100)}/${i % 100}`,
      role: i % 3 === 0 ? 'primary' : 'secondary',
      lagSeconds: i % 3 === 0 ? undefined : i % 7,
      lastOperationTimestampSeconds: 1700000000 + i,
      commitOffset: { value: i * 1000, unit: 'offset' },
    });
  }
  return {
    datastore: 'kafka',
    version: 'bench',
    nodeId: '1',
    clusterId: 'bench',
    clusterIdSource: 'datastore',
    shards: list,
    performance: { clientsConnected: 1, readsTotal: 1, writesTotal: 1 },
    collectedAtSeconds: 1700000000,
  };
}

/** Median of 20 real HTTP scrapes (the first one, which renders, left out) of an app serving `snapshot`. */
async function cachedScrapeMs(snapshot: Snapshot): Promise<number> {
  const state: CollectorState = {
    snapshot,
    up: true,
    attempted: true,
    lastDurationSeconds: 0,
    errorsTotal: 0,
    lastSuccessSeconds: snapshot.collectedAtSeconds,
  };
  const app = createApp({
    telemetryPath: '/metrics',
    state: () => state,
    logger: createLogger('error', 'logfmt', () => undefined),
    processMetrics: true,
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    await scrapeOnce(url);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) times.push((await scrapeOnce(url)).ms);
    return percentile(
      times.sort((a, b) => a - b),
      50,
    );
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

async function benchScale(): Promise<void> {
  console.log('\n## Rendering /metrics for synthetic snapshots (real metrics layer)\n');
  console.log(
    '| shards | series | first render ms (build + text) | cached scrape over HTTP ms (p50) | text MiB | heap delta MiB |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const n of [1000, 10000, 100000]) {
    const snapshot = syntheticSnapshot(n);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const times: number[] = [];
    let text = '';
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      text = renderSnapshot(snapshot, PROMETHEUS_CONTENT_TYPE);
      times.push(performance.now() - t);
    }
    const heapAfter = process.memoryUsage().heapUsed;
    times.sort((a, b) => a - b);
    // A scrape of an unchanged snapshot, over real HTTP (keep-alive loopback, as Prometheus scrapes),
    // through the real app: after the first scrape, the prepared answer is written as it is.
    const cached = await cachedScrapeMs(snapshot);
    const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    console.log(
      `| ${n} | ${series} | ${times[2]!.toFixed(1)} | ${cached.toFixed(3)} | ${(Buffer.byteLength(text) / 1048576).toFixed(1)} | ${((heapAfter - heapBefore) / 1048576).toFixed(1)} |`,
    );
  }
}

function printComparison(rows: Row[]): void {
  console.log(`\n## Side by side, ${SCRAPES} sequential scrapes each, same real node\n`);
  console.log(
    '| datastore | exporter | p50 ms | p99 ms | bytes | series | RSS MiB | datastore load per scrape |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const load = Object.entries(r.f.loadPerScrape)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ');
    console.log(
      `| ${r.datastore} | ${r.exporter} | ${r.f.p50Ms.toFixed(2)} | ${r.f.p99Ms.toFixed(2)} | ${r.f.bytes} | ${r.f.series} | ${r.f.rssMiB.toFixed(1)} | ${load} |`,
    );
  }
  const byStore = new Map<string, Row[]>();
  for (const r of rows) byStore.set(r.datastore, [...(byStore.get(r.datastore) ?? []), r]);
  console.log('\n| datastore | p50 ours/peer | p99 ours/peer | RSS ours/peer |');
  console.log('|---|---:|---:|---:|');
  for (const [store, [ours, peer]] of byStore) {
    if (!ours || !peer) continue;
    console.log(
      `| ${store} | ${(ours.f.p50Ms / peer.f.p50Ms).toFixed(2)} | ${(ours.f.p99Ms / peer.f.p99Ms).toFixed(2)} | ${(ours.f.rssMiB / peer.f.rssMiB).toFixed(2)} |`,
    );
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const only = (process.env.BENCH_ONLY ?? 'redis,postgresql,mariadb,probe,scale,kafka').split(',');
  const rows: Row[] = [];
  if (only.includes('redis')) rows.push(...(await benchRedis()));
  if (only.includes('postgresql')) rows.push(...(await benchPostgres()));
  if (only.includes('mariadb')) rows.push(...(await benchMariadb()));
  if (rows.length) printComparison(rows);
  printFootprints();
  if (only.includes('probe')) await benchProbeTargets();
  if (only.includes('scale')) await benchScale();
  if (only.includes('kafka')) {
    console.log('\n## Kafka: one collection for a broker with N partitions (bench/kafka-metadata.ts)\n');
    for (const r of await runKafkaMetadataBench()) console.log(formatKafkaBenchResult(r));
    const seconds = Number(process.env.BENCH_KAFKA_IDLE_SECONDS ?? 60);
    console.log(
      `\n## Kafka: idle CPU of the exporter process against a wire-protocol broker (${seconds} s)\n`,
    );
    console.log(KAFKA_IDLE_HEADER);
    for (const partitions of [10, 1000])
      console.log(formatKafkaIdle(await measureKafkaIdle(partitions, seconds)));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
