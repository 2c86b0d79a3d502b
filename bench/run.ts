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
import type { Shard, Snapshot } from '../src/core/model';
import { freePort, freePorts, tempDir, waitFor } from '../test/support/processes';
import { startRedis, type RedisNode } from '../test/support/redis';
import { startPgCluster, type PgCluster } from '../test/support/postgres';
import { EXPORTER_PASSWORD, EXPORTER_USER, startMariadb, type MariadbNode } from '../test/support/mariadb';
import { formatKafkaBenchResult, runKafkaMetadataBench } from './kafka-metadata';

const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 300);
const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

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
    ours.env,
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
  } else if (peer) {
    console.log(
      `(${peer.bin} not installed: no peer figures for ${datastore}; apt-get install ${peer.bin.split('/').pop()})`,
    );
  }
  return rows;
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

async function benchScale(): Promise<void> {
  console.log('\n## Rendering /metrics for synthetic snapshots (real metrics layer)\n');
  console.log(
    '| shards | series | first render ms (build + text) | cached scrape ms | text MiB | heap delta MiB |',
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
    // A scrape of an unchanged snapshot only concatenates the cached text.
    const t2 = performance.now();
    for (let i = 0; i < 100; i++) void (text + '');
    const cached = (performance.now() - t2) / 100;
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
  const only = (process.env.BENCH_ONLY ?? 'redis,postgresql,mariadb,scale,kafka').split(',');
  const rows: Row[] = [];
  if (only.includes('redis')) rows.push(...(await benchRedis()));
  if (only.includes('postgresql')) rows.push(...(await benchPostgres()));
  if (only.includes('mariadb')) rows.push(...(await benchMariadb()));
  if (rows.length) printComparison(rows);
  if (only.includes('scale')) await benchScale();
  if (only.includes('kafka')) {
    console.log('\n## Kafka: one collection for a broker with N partitions (bench/kafka-metadata.ts)\n');
    for (const r of await runKafkaMetadataBench()) console.log(formatKafkaBenchResult(r));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
