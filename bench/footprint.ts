/**
 * What an exporter process costs while it sits beside its datastore, measured from outside
 * (/proc/<pid>) so that ours and the Go peers are measured the same way:
 *  - start to the first /metrics answer that says the target is up;
 *  - RSS after the idle period (anon = the process's own memory, file = mapped binary and libraries);
 *  - idle CPU (utime + stime from /proc/<pid>/stat) over the idle period, extrapolated to an hour;
 *  - RSS peak (sampled every 50 ms) and req/s under N concurrent scrapers (autocannon, real HTTP);
 *  - RSS and heap SETTLE_SECONDS after the load. Heap is what the exporter itself reports
 *    (nodejs_heap_size_used_bytes / go_memstats_heap_alloc_bytes), read by one scrape.
 * Figures only: nothing here asserts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface FootprintOptions {
  /** Seconds idle after the first good answer before RSS/CPU are read (CPU from IDLE_WARMUP on). */
  idleSeconds: number;
  loadSeconds: number;
  connections: number;
  settleSeconds: number;
}

export interface Footprint {
  startToUpMs: number;
  idleRssMiB: number;
  idleAnonMiB: number;
  idleFileMiB: number;
  idleCpuSecondsPerHour: number;
  heapIdleMiB: number;
  peakRssMiB: number;
  requestsPerSecond: number;
  non2xx: number;
  afterRssMiB: number;
  heapAfterMiB: number;
}

/** CPU measured after this many seconds of the idle period: start-up work is not idle cost. */
const IDLE_WARMUP_SECONDS = 5;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** utime + stime of a process, in seconds (clock ticks of 1/100 s on Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const mib = (kib: number): number => kib / 1024;

/** The heap in use the exporter reports about itself, in MiB (NaN when it reports none). */
async function reportedHeapMiB(url: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const m = /^(?:nodejs_heap_size_used_bytes|go_memstats_heap_alloc_bytes) (\S+)$/m.exec(text);
  return m ? Number(m[1]) / 1048576 : NaN;
}

/**
 * Starts `cmd args`, waits for `url` to answer with `up`, then measures. The process is killed at the end.
 */
export async function measureFootprint(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  url: string,
  up: RegExp,
  opts: FootprintOptions,
): Promise<Footprint> {
  const started = performance.now();
  const child: ChildProcess = spawn(cmd, args, {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, ...env },
  });
  try {
    const pid = child.pid!;
    let startToUpMs = NaN;
    while (performance.now() - started < 20000) {
      try {
        const text = await (await fetch(url)).text();
        if (up.test(text)) {
          startToUpMs = performance.now() - started;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
    if (Number.isNaN(startToUpMs)) throw new Error(`${cmd} did not answer up at ${url} within 20 s`);
    await sleep(IDLE_WARMUP_SECONDS * 1000);
    const cpuStart = cpuSeconds(pid);
    const cpuStartAt = performance.now();
    await sleep(Math.max(0, opts.idleSeconds - IDLE_WARMUP_SECONDS) * 1000);
    const idleCpu = cpuSeconds(pid) - cpuStart;
    const idleWindow = (performance.now() - cpuStartAt) / 1000;
    const idleRssMiB = mib(statusKiB(pid, 'VmRSS'));
    const idleAnonMiB = mib(statusKiB(pid, 'RssAnon'));
    const idleFileMiB = mib(statusKiB(pid, 'RssFile'));
    const heapIdleMiB = await reportedHeapMiB(url);

    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, statusKiB(pid, 'VmRSS'));
    }, 50);
    const result = await autocannon({
      url,
      connections: opts.connections,
      duration: opts.loadSeconds,
    });
    clearInterval(sampler);
    peak = Math.max(peak, statusKiB(pid, 'VmRSS'));
    await sleep(opts.settleSeconds * 1000);
    return {
      startToUpMs,
      idleRssMiB,
      idleAnonMiB,
      idleFileMiB,
      idleCpuSecondsPerHour: (idleCpu / idleWindow) * 3600,
      heapIdleMiB,
      peakRssMiB: mib(peak),
      requestsPerSecond: result.requests.average,
      non2xx: result.non2xx + result.errors,
      afterRssMiB: mib(statusKiB(pid, 'VmRSS')),
      heapAfterMiB: await reportedHeapMiB(url),
    };
  } finally {
    child.kill('SIGKILL');
  }
}

/** The median of each figure over repetitions. */
export function medianFootprint(runs: Footprint[]): Footprint {
  const median = (k: keyof Footprint): number => {
    const sorted = runs.map((r) => r[k]).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  const out = {} as Footprint;
  for (const k of Object.keys(runs[0]!) as (keyof Footprint)[]) out[k] = median(k);
  return out;
}

/** The range of one figure over repetitions, as `min-max` (one value when they agree). */
export function range(runs: Footprint[], k: keyof Footprint, digits = 1): string {
  const values = runs.map((r) => r[k]);
  const lo = Math.min(...values).toFixed(digits);
  const hi = Math.max(...values).toFixed(digits);
  return lo === hi ? lo : `${lo}-${hi}`;
}

/** One line: the load average, for figures measured on a shared machine. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
