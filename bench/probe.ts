/**
 * Benchmark: multi-target probing (GET /probe) against a real redis-server. Prints figures; asserts
 * nothing (the behaviour is tested in test/probe.test.ts).
 *
 *  1. time per probe with a warm pool: 200 sequential probes of one target, over HTTP (fetch with
 *     keep-alive on loopback, as Prometheus would) and in-process (ProbeService.probe(), no HTTP);
 *  2. the first (cold) probe of a target: connect + first collection;
 *  3. concurrent probes of one target: how many collections (Redis INFO calls) they cost;
 *  4. memory with 100 pooled targets on ONE redis-server. The pool key is (auth module, target URL),
 *     so the same address probed with 100 auth modules (m0..m99, no credentials) is 100 distinct
 *     pooled targets, each with its own driver, Collector and TCP connection (checked with CLIENT LIST):
 *     what a pooled target costs the exporter; only the other side of the sockets differs from 100
 *     real servers. Then 100 more targets that differ by database path (redis://.../1 ... /100, the
 *     server runs with --databases 128), measured apart: node-redis builds a client class per distinct
 *     client options, which the driver avoids (drivers/redis/driver.ts), and this shows it. RSS and
 *     heap after a forced GC (run with --expose-gc).
 *  5. a round of warm probes over the 100 pooled targets.
 *
 * Run:  npx tsc -p tsconfig.json --outDir dist/tsc-all && node --expose-gc dist/tsc-all/bench/probe.js
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadServerConfig } from '../src/config/flags';
import { startServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import { PROMETHEUS_CONTENT_TYPE } from '../src/http/metrics';
import { freePort, tempDir } from '../test/support/processes';
import { startRedis } from '../test/support/redis';

const SEQUENTIAL = 200;
const POOLED = 100;
const CONCURRENT = 10;
const CONCURRENT_ROUNDS = 20;

function stats(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return `mean ${mean.toFixed(2)} ms, median ${at(0.5).toFixed(2)} ms, p90 ${at(0.9).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms, max ${sorted[sorted.length - 1]!.toFixed(2)} ms (n=${ms.length})`;
}

function memory(): { rss: number; heap: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss / 1048576, heap: m.heapUsed / 1048576 };
}

function infoCalls(cli: (...args: string[]) => string): number {
  return Number(/cmdstat_info:calls=(\d+)/.exec(cli('INFO', 'commandstats'))?.[1] ?? 0);
}

async function main(): Promise<void> {
  if (!(globalThis as { gc?: unknown }).gc) {
    console.log('note: run with --expose-gc for meaningful memory figures');
  }
  const redis = await startRedis(await freePort(), ['--databases', '128']);
  const dir = tempDir('bench-probe');
  const configFile = join(dir.path, 'probe.yml');
  const modules = Array.from({ length: POOLED }, (_, i) => `  m${i}: {}`).join('\n');
  writeFileSync(
    configFile,
    `allowed_targets: ["redis://127.0.0.1:${redis.port}"]\nauth_modules:\n${modules}\n`,
  );
  const config = loadServerConfig(
    [
      '--web.listen-address',
      '127.0.0.1:0',
      '--probe.config-file',
      configFile,
      '--probe.max-targets',
      String(2 * POOLED + 10),
      '--probe.max-concurrent',
      '64',
    ],
    {},
  );
  if (typeof config === 'string') throw new Error(config);
  const exporter = await startServer(config, createLogger('error', 'logfmt'), { processMetrics: false });
  const probe = exporter.probe!;
  const base = `http://127.0.0.1:${exporter.port}/probe?target=`;
  const address = `redis://127.0.0.1:${redis.port}`;
  /** Pooled target number i: auth module m<i> on the plain address, or the database path /<i>. */
  const query = (i: number, byDatabase = false): string =>
    byDatabase ? encodeURIComponent(`${address}/${i}`) : `${encodeURIComponent(address)}&auth_module=m${i}`;
  const get = async (i: number, byDatabase = false): Promise<string> => {
    const res = await fetch(base + query(i, byDatabase));
    const text = await res.text();
    if (res.status !== 200 || !/^datastore_up 1$/m.test(text))
      throw new Error(`probe failed: ${res.status} ${text}`);
    return text;
  };
  const time = async (fn: () => Promise<unknown>): Promise<number> => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };

  try {
    console.log(`node ${process.version}, redis-server ${redis.info('server').get('redis_version')}`);
    const before = memory();

    // 2. cold probe (new pooled target: module load on the very first one, then connect + COMMAND INFO).
    const firstEver = await time(() => get(0));
    const cold: number[] = [];
    for (let i = 1; i <= 10; i++) cold.push(await time(() => get(i)));
    console.log(
      `first probe ever (driver module load + connect + first collection): ${firstEver.toFixed(1)} ms`,
    );
    console.log(`cold probe of a new target (connect + first collection): ${stats(cold)}`);

    // 1. warm pool, one target.
    for (let i = 0; i < 20; i++) await get(0);
    const overHttp: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) overHttp.push(await time(() => get(0)));
    console.log(`warm probe over HTTP, one target: ${stats(overHttp)}`);
    const inProcess: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      inProcess.push(
        await time(async () => {
          const r = await probe.probe(
            { target: address, auth_module: 'm0' },
            undefined,
            PROMETHEUS_CONTENT_TYPE,
          );
          if (r.status !== 200) throw new Error('probe failed');
        }),
      );
    }
    console.log(`warm probe in-process (ProbeService.probe, no HTTP), one target: ${stats(inProcess)}`);
    const bytes = (await get(0)).length;
    console.log(`answer size: ${bytes} bytes`);

    // 3. concurrent probes of one target.
    const infoBefore = infoCalls(redis.cli);
    const burst: number[] = [];
    for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
      burst.push(await time(() => Promise.all(Array.from({ length: CONCURRENT }, () => get(0)))));
    }
    const collections = infoCalls(redis.cli) - infoBefore - 1;
    console.log(
      `${CONCURRENT_ROUNDS} bursts of ${CONCURRENT} concurrent probes of one target: ${collections} collections (INFO calls) for ${CONCURRENT * CONCURRENT_ROUNDS} probes; per burst ${stats(burst)}`,
    );

    // 4. memory with 100 pooled targets (m0..m99; m0..m10 are pooled already).
    const oneTarget = memory();
    const poolBefore = probe.pool.size;
    for (let i = 11; i < POOLED; i++) await get(i);
    const pooled = probe.pool.size;
    const connections = redis
      .cli('CLIENT', 'LIST')
      .split('\n')
      .filter((l) => /name=datastore-exporter/.test(l)).length;
    const full = memory();
    const added = pooled - poolBefore;
    console.log(
      `pooled targets: ${pooled} (${connections} exporter connections in CLIENT LIST); ${added} added for this measurement`,
    );
    console.log(
      `RSS: ${before.rss.toFixed(1)} MiB at start (exporter listening, nothing pooled), ${oneTarget.rss.toFixed(1)} MiB with ${poolBefore} pooled, ${full.rss.toFixed(1)} MiB with ${pooled} pooled -> ${(((full.rss - oneTarget.rss) * 1024) / added).toFixed(0)} KiB RSS per added target`,
    );
    console.log(
      `heap used: ${before.heap.toFixed(1)} MiB at start, ${oneTarget.heap.toFixed(1)} MiB with ${poolBefore} pooled, ${full.heap.toFixed(1)} MiB with ${pooled} pooled -> ${(((full.heap - oneTarget.heap) * 1024) / added).toFixed(0)} KiB heap per added target`,
    );

    // 5. warm probes spread over the 100 pooled targets.
    const spread: number[] = [];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < POOLED; i++) spread.push(await time(() => get(i)));
    }
    console.log(`warm probe over HTTP, round-robin over ${POOLED} pooled targets: ${stats(spread)}`);

    // 4b. 100 more targets that differ by database path.
    const beforeDb = memory();
    for (let db = 1; db <= POOLED; db++) await get(db, true);
    const afterDb = memory();
    console.log(
      `${POOLED} more targets by database path (pool now ${probe.pool.size}): +${(afterDb.rss - beforeDb.rss).toFixed(1)} MiB RSS, +${(afterDb.heap - beforeDb.heap).toFixed(1)} MiB heap -> ${(((afterDb.heap - beforeDb.heap) * 1024) / POOLED).toFixed(0)} KiB heap per target`,
    );
  } finally {
    await exporter.stop();
    await redis.stop();
    dir.remove();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
