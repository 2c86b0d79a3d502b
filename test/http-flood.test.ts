/**
 * A flood of HTTP connections cannot keep a fresh scrape out nor starve the collector.
 *
 * The real exporter bin and a real Redis; the flood comes from a child process:
 *  - idle: 3,000 sockets that connect and send nothing (reconnecting when closed), against an
 *    exporter whose file descriptor limit is 2,048 (prlimit), the light version of ~20,000 sockets
 *    against the usual 20,000: before, every descriptor was taken and no scrape got in;
 *  - busy: 2,000 keep-alive connections requesting /metrics as fast as they are answered
 *    (autocannon): before, fresh scrapes timed out and the 1 s collection of a healthy Redis failed.
 * During each, fresh scrapes (a new connection each, as Prometheus makes when its keep-alive
 * connection was closed) must answer 200 within a scrape timeout of 10 s with datastore_up 1, and the
 * collector must not fail once. Latencies are printed.
 *
 * Then the pieces: the connection guard, the per-turn request admission, the file-limit reading, and
 * the collector's deadline that does not charge the datastore for time the event loop was busy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Collector } from '../src/core/collector';
import { createLogger } from '../src/core/logger';
import { parseTarget } from '../src/core/target';
import { createDriver } from '../src/drivers/redis/driver';
import { admitRequests, connectionLimit, guardConnections, openFileLimit } from '../src/http/listener';
import { freePort, requireBinary, sleep, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const PRLIMIT = '/usr/bin/prlimit';

interface Scrape {
  status: number;
  ms: number;
  up?: number;
}

/** One scrape on a new connection, with Prometheus's default 10 s timeout. */
function freshScrape(port: number): Promise<Scrape> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: 10000 },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          const m = /^datastore_up (\S+)/m.exec(body);
          resolve({
            status: res.statusCode ?? 0,
            ms: performance.now() - t0,
            up: m ? Number(m[1]) : undefined,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
    req.end();
  });
}

const ATTACKER = `
const net = require('node:net');
const [port, mode, n, seconds] = process.argv.slice(1);
if (mode === 'idle') {
  // Connect and say nothing; whatever the server closes is opened again.
  const open = () => {
    const s = net.connect(Number(port), '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => setTimeout(open, 10));
  };
  for (let i = 0; i < Number(n); i++) open();
} else {
  require(${JSON.stringify(require.resolve('autocannon'))})(
    { url: 'http://127.0.0.1:' + port + '/metrics', connections: Number(n), duration: Number(seconds) },
    (err, r) => console.log(JSON.stringify({ requests: r.requests.total, errors: r.errors })),
  );
}
`;

async function floodAndScrape(opts: {
  mode: 'idle' | 'busy';
  connections: number;
  fileLimit?: number;
}): Promise<void> {
  requireBinary(PRLIMIT, 'util-linux');
  const redis: RedisNode = await startRedis(await freePort());
  const port = await freePort();
  const limit = String(opts.fileLimit ?? 20000);
  const exporter: ChildProcess = spawn(PRLIMIT, [
    `--nofile=${limit}:${limit}`,
    process.execPath,
    CLI,
    '--target',
    redis.url,
    '--web.listen-address',
    `127.0.0.1:${port}`,
    '--collect.interval',
    '1s',
    '--collect.timeout',
    '800ms',
  ]);
  let logs = '';
  exporter.stderr!.on('data', (d) => (logs += d));
  let attacker: ChildProcess | undefined;
  try {
    await waitFor('up', async () => (await freshScrape(port)).up === 1, 15000);
    attacker = spawn(process.execPath, [
      '-e',
      ATTACKER,
      String(port),
      opts.mode,
      String(opts.connections),
      '30',
    ]);
    // The flood is on once the exporter holds most of the connections (or all it may hold).
    const pid = exporter.pid!;
    const target = Math.min(opts.connections, Math.floor((opts.fileLimit ?? 20000) / 2)) * 0.9;
    await waitFor('the flood built up', () => readdirSync(`/proc/${pid}/fd`).length >= target, 20000);
    await sleep(1000);
    const scrapes: Scrape[] = [];
    for (let i = 0; i < 6; i++) {
      scrapes.push(await freshScrape(port));
      await sleep(1000);
    }
    console.log(
      `${opts.mode} flood of ${opts.connections} connections${opts.fileLimit ? ` (file limit ${opts.fileLimit})` : ''}: ` +
        `fresh scrapes ${scrapes.map((s) => (s.status ? `${s.ms.toFixed(0)} ms` : 'failed')).join(', ')}`,
    );
    expect(exporter.exitCode).toBeNull();
    // Before: idle, 0 of 6 got in (connection refused: no descriptor left); busy, timeouts.
    expect(scrapes.map((s) => [s.status, s.up])).toEqual(Array(6).fill([200, 1]));
    // The collector never failed: a healthy Redis was never reported down.
    expect(logs).not.toMatch(/collection failed/);
  } finally {
    attacker?.kill('SIGKILL');
    exporter.kill('SIGKILL');
    await redis.stop();
  }
}

describe('the real bin under a connection flood', () => {
  test('3,000 idle sockets against a file limit of 2,048: fresh scrapes get in, datastore_up stays 1', async () => {
    await floodAndScrape({ mode: 'idle', connections: 3000, fileLimit: 2048 });
  }, 90000);

  test('2,000 busy keep-alive connections: fresh scrapes get in, datastore_up stays 1', async () => {
    await floodAndScrape({ mode: 'busy', connections: 2000 });
  }, 90000);
});

describe('the pieces', () => {
  test('the connection limit is half the file descriptors, at most 4096', () => {
    expect(
      openFileLimit(
        'Limit Soft Limit Hard Limit Units\nMax open files            2048                 4096                 files\n',
      ),
    ).toBe(2048);
    expect(openFileLimit('Max open files unlimited unlimited files')).toBe(Number.MAX_SAFE_INTEGER);
    expect(openFileLimit('nothing here')).toBe(1024);
    expect([
      connectionLimit(1024),
      connectionLimit(20000),
      connectionLimit(1048576),
      connectionLimit(10),
    ]).toEqual([512, 4096, 4096, 16]);
  });

  test('beyond the limit a new connection closes the oldest idle one, never itself', async () => {
    const server = createServer((_req, res) => setTimeout(() => res.end('ok'), 300));
    const stats = guardConnections(server, 3);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const closed: number[] = [];
    const open = (i: number): Promise<Socket> =>
      new Promise((resolve) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.on('close', () => closed.push(i));
        s.on('error', () => undefined);
      });
    try {
      const busy = await open(0);
      busy.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(50);
      await open(1);
      await open(2);
      await open(3); // beyond: the oldest IDLE one (1) goes, not the busy 0
      await waitFor('eviction', () => closed.length > 0, 2000);
      expect(closed).toEqual([1]);
      await open(4); // then 2
      await waitFor('eviction', () => closed.length > 1, 2000);
      expect(closed).toEqual([1, 2]);
      expect(stats.evicted).toBe(2);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('at most N requests start per turn of the event loop, the rest in arrival order', async () => {
    const started: number[] = [];
    const turns: number[][] = [[]];
    let turn = 0;
    const handler = admitRequests((req: IncomingMessage) => {
      started.push(Number(req.url));
      turns[turn]!.push(Number(req.url));
    }, 3);
    const fake = (i: number) =>
      [{ url: String(i), socket: { destroyed: i === 5 } }, {}] as unknown as [
        IncomingMessage,
        ServerResponse,
      ];
    for (let i = 0; i < 8; i++) handler(...fake(i));
    const tick = (): Promise<void> =>
      new Promise((r) =>
        setImmediate(() => {
          turn++;
          turns.push([]);
          r();
        }),
      );
    for (let i = 0; i < 4; i++) await tick();
    // 3 per turn, FIFO; request 5's client left while it waited.
    expect(started).toEqual([0, 1, 2, 3, 4, 6, 7]);
    expect(Math.max(...turns.map((t) => t.length))).toBeLessThanOrEqual(3);
  });

  test("the collector's deadline does not charge the datastore for a busy event loop", async () => {
    const redis = await startRedis(await freePort());
    const logger = createLogger('error', 'logfmt', () => undefined);
    const driver = createDriver({
      target: parseTarget(redis.url),
      timeoutMs: 800,
      logger,
      extra: {},
      heartbeat: false,
    });
    const collector = new Collector(driver, {
      intervalSeconds: 1,
      timeoutMs: 800,
      maxBackoffSeconds: 1,
      identity: { target: { host: '127.0.0.1', port: redis.port } },
      logger,
    });
    try {
      await collector.collect();
      expect(collector.state.up).toBe(true);
      // The reply arrives while the loop is held for 1.5 s (as by a burst of expensive requests):
      // a wall-clock deadline of 800 ms expired before the reply could be read.
      const collecting = collector.collect();
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        /* busy */
      }
      await collecting;
      expect(collector.state.up).toBe(true);
      // A hung datastore is still reported (within the ceiling of 4x the deadline).
      redis.process.pause();
      const t0 = Date.now();
      await collector.collect();
      expect(collector.state.up).toBe(false);
      expect(collector.state.lastError).toMatch(/timed out after 800 ms/);
      expect(Date.now() - t0).toBeLessThan(3200 + 1000);
    } finally {
      redis.process.resume();
      await collector.stop();
      await redis.stop();
    }
  }, 30000);
});
