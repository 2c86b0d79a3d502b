/**
 * Benchmark: what one exporter replica in probe mode holds, for sizing scale-out (docs/probe.md
 * "Scale-out"). Prints figures; asserts nothing (the behaviour is tested in test/scale-out.test.ts).
 *
 * One exporter process (the built CLI, with the image's NODE_OPTIONS) probes 100 real redis-server
 * processes on loopback. Each server is probed with up to 10 auth modules (m0..m9, no credentials;
 * BENCH_MODULES changes it):
 * the pool key is (auth module, target URL), so that is up to 1000 distinct pooled targets, each with
 * its own driver, Collector and TCP connection to a real server. Every 100 pooled targets it probes all
 * of them in rounds, 10 at a time (as Prometheus' concurrent scrapes would), and records:
 *  - the process's resident memory (/proc VmRSS) and V8 heap (its own nodejs_heap_size_used_bytes);
 *  - the latency of each warm probe (HTTP on loopback, keep-alive) in the last round, and the round time.
 * Two runs:
 *  1. retained cost: the image's settings, and a full GC in the exporter before each measurement
 *     (a preload file makes SIGUSR2 call gc()): what a pooled target really keeps, by least squares;
 *  2. under a heap cap that fits a 256 MiB container (--max-old-space-size=160, no forced GC): the
 *     resident memory a replica actually reaches, and whether 1000 targets still fit.
 *
 * Run:  npm run build && npx tsc -p tsconfig.json --outDir build && node build/bench/scale-out.js
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { freePort, tempDir, waitFor } from '../test/support/processes';
import { startRedis, type RedisNode } from '../test/support/redis';

const SERVERS = Number(process.env.BENCH_SERVERS ?? 100);
const MODULES = Number(process.env.BENCH_MODULES ?? 10);
const STEP = 100;
const CONCURRENCY = 10;
const ROUNDS = 3;
const LIMIT_MIB = 256;
const HEADROOM_MIB = 32;
/** The old-space cap of run 2: 256 MiB minus room for code, stacks, sockets' buffers and young space. */
const CAPPED_OLD_SPACE_MIB = 160;
const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function slope(xs: number[], ys: number[]): number {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i]! - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

interface Step {
  n: number;
  rss: number;
  heap: number;
  p50: number;
  p99: number;
  roundMs: number;
}

/** One exporter process through 0..N pooled targets; `forceGc`: a full GC before each measurement. */
async function measure(
  nodes: RedisNode[],
  dir: string,
  nodeOptions: string,
  forceGc: boolean,
): Promise<Step[]> {
  const config = join(dir, 'probe.yml');
  const modules = Array.from({ length: MODULES }, (_, i) => `  m${i}: {}`).join('\n');
  writeFileSync(config, `allowed_targets: ["redis://127.0.0.1:*"]\nauth_modules:\n${modules}\n`);
  const preload = join(dir, 'gc-on-sigusr2.js');
  writeFileSync(preload, "process.on('SIGUSR2', () => globalThis.gc());\n");
  const port = await freePort();
  const exporter = spawn(
    process.execPath,
    [
      ...(forceGc ? ['--expose-gc', '--require', preload] : []),
      CLI,
      '--web.listen-address',
      `127.0.0.1:${port}`,
      '--probe.config-file',
      config,
      '--probe.max-targets',
      String(nodes.length * MODULES + 10),
      '--probe.max-concurrent',
      '64',
      '--log.level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: nodeOptions } },
  );
  const pid = exporter.pid!;
  try {
    await waitFor(
      'exporter listening',
      async () => (await get(port, '/healthz').catch(() => undefined))?.status === 200,
    );
    const targets: string[] = [];
    for (let m = 0; m < MODULES; m++) {
      for (const n of nodes) targets.push(`/probe?target=${encodeURIComponent(n.url)}&auth_module=m${m}`);
    }
    const heapMiB = async (): Promise<number> => {
      const text = (await get(port, '/metrics')).body;
      return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 1048576;
    };
    const steps: Step[] = [];
    for (let n = 0; n <= targets.length; n += STEP) {
      let latencies: number[] = [];
      let roundMs = 0;
      for (let round = 0; round < (n === 0 ? 0 : ROUNDS); round++) {
        latencies = [];
        const queue = targets.slice(0, n);
        const started = performance.now();
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            for (let path = queue.shift(); path; path = queue.shift()) {
              const t0 = performance.now();
              const res = await get(port, path);
              latencies.push(performance.now() - t0);
              if (res.status !== 200 || !/^datastore_up 1$/m.test(res.body)) {
                throw new Error(`probe ${path}: ${res.status} ${res.body.slice(0, 200)}`);
              }
            }
          }),
        );
        roundMs = performance.now() - started;
      }
      if (forceGc) process.kill(pid, 'SIGUSR2');
      await new Promise((r) => setTimeout(r, 1000));
      const sorted = latencies.sort((a, b) => a - b);
      steps.push({
        n,
        rss: rssMiB(pid),
        heap: await heapMiB(),
        p50: n === 0 ? NaN : percentile(sorted, 0.5),
        p99: n === 0 ? NaN : percentile(sorted, 0.99),
        roundMs,
      });
    }
    return steps;
  } finally {
    exporter.kill('SIGTERM');
  }
}

function table(title: string, steps: Step[]): void {
  console.log(`\n## ${title}`);
  console.log(
    '| pooled targets | RSS MiB | heap MiB | warm probe p50 | p99 | round of all targets (10 at a time) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const s of steps) {
    const ms = (v: number): string => (s.n ? `${v.toFixed(2)} ms` : '-');
    console.log(
      `| ${s.n} | ${s.rss.toFixed(1)} | ${s.heap.toFixed(1)} | ${ms(s.p50)} | ${ms(s.p99)} | ${s.n ? `${s.roundMs.toFixed(0)} ms` : '-'} |`,
    );
  }
}

async function main(): Promise<void> {
  const dir = tempDir('bench-scale-out');
  const nodes: RedisNode[] = [];
  try {
    for (let i = 0; i < SERVERS; i += 10) {
      const ports = await Promise.all(Array.from({ length: Math.min(10, SERVERS - i) }, () => freePort()));
      nodes.push(...(await Promise.all(ports.map((p) => startRedis(p)))));
    }
    const image = '--max-semi-space-size=1';
    const retained = await measure(nodes, dir.path, image, true);
    table(
      `Retained cost (image settings, full GC before each measurement), ${SERVERS} redis-server processes`,
      retained,
    );
    const loaded = retained.filter((s) => s.n > 0);
    const rssPer = slope(
      loaded.map((s) => s.n),
      loaded.map((s) => s.rss),
    );
    const heapPer = slope(
      loaded.map((s) => s.n),
      loaded.map((s) => s.heap),
    );
    const base = retained[0]!.rss;
    console.log(
      `\nper pooled target: ${(rssPer * 1024).toFixed(0)} KiB RSS, ${(heapPer * 1024).toFixed(0)} KiB heap (least squares over ${loaded.length} steps)`,
    );
    console.log(
      `projected: ${Math.floor((LIMIT_MIB - HEADROOM_MIB - base) / rssPer)} targets within ${LIMIT_MIB} MiB with ${HEADROOM_MIB} MiB kept free (from ${base.toFixed(0)} MiB with none)`,
    );

    const capped = await measure(
      nodes,
      dir.path,
      `${image} --max-old-space-size=${CAPPED_OLD_SPACE_MIB}`,
      false,
    );
    table(
      `Under --max-old-space-size=${CAPPED_OLD_SPACE_MIB} (no forced GC), ${SERVERS} redis-server processes`,
      capped,
    );
    const within = capped.filter((s) => s.rss <= LIMIT_MIB - HEADROOM_MIB).map((s) => s.n);
    console.log(
      `\nlargest measured step with RSS <= ${LIMIT_MIB - HEADROOM_MIB} MiB: ${Math.max(...within)} targets; highest RSS seen: ${Math.max(...capped.map((s) => s.rss)).toFixed(0)} MiB`,
    );
  } finally {
    agent.destroy();
    await Promise.all(nodes.map((n) => n.stop()));
    dir.remove();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
