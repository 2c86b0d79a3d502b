/**
 * Basic auth under a flood of wrong passwords: failed attempts must never starve good ones, and an
 * unknown user must cost what a known one costs.
 *
 * First BasicAuthChecker's rules one by one (bcrypt runs counted, never timed), then a real exporter with
 * basic auth (bcrypt cost 10, as htpasswd -B makes it) flooded over HTTP: an attacker on 127.0.0.1,
 * Prometheus on 127.0.0.2 (Linux routes all of 127/8 to the loopback interface, so the two are
 * distinct client addresses as they would be in a cluster). Figures are printed, not asserted.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import * as bcryptThread from '../src/http/bcrypt-thread';
import { loadServerConfig, type ServerConfig } from '../src/config/flags';
import { parseWebConfig } from '../src/config/web-config';
import { startServer, type RunningServer } from '../src/exporter';
import { createLogger } from '../src/core/logger';
import {
  BasicAuthChecker,
  MAX_PENDING_CHECKS,
  MAX_PENDING_PER_CLIENT,
  bcryptCost,
  type AuthOutcome,
} from '../src/http/listener';
import { freePort, sleep, tempDir, waitFor } from './support/processes';

const fastHash = (password: string, cost = 4): string => bcrypt.hashSync(password, cost);

// The bcrypt thread is shared by every listener in this process and outlives them.
afterAll(() => bcryptThread.stopBcryptThread());

describe('BasicAuthChecker: failed attempts cannot starve good ones', () => {
  test('credentials that passed before go ahead of every new credential when their cache entry expires', async () => {
    // ttl 0: the success cache is always expired, as after a minute without scrapes.
    const checker = new BasicAuthChecker(new Map([['prometheus', fastHash('good', 6)]]), 0);
    expect(await checker.check('prometheus', 'good', { address: 'prom' })).toBe('ok');
    // A flood from 8 addresses fills the queue (4 each, 32 in all)...
    const flood = Array.from({ length: MAX_PENDING_CHECKS }, (_, i) =>
      checker.check('prometheus', `wrong-${i}`, { address: `attacker-${i % 8}` }),
    );
    const runsBefore = checker.bcryptRuns;
    // ...and Prometheus, from one of the flooding addresses even, is checked right after the run in
    // progress. Before: FIFO behind all 32.
    const outcome = await checker.check('prometheus', 'good', { address: 'attacker-0' });
    expect(outcome).toBe('ok');
    expect(checker.bcryptRuns - runsBefore).toBeLessThanOrEqual(2);
    expect(await Promise.all(flood)).toEqual(Array(MAX_PENDING_CHECKS).fill('denied'));
  });

  test('pending checks are bounded per client address and in all; beyond, "busy" at once without bcrypt', async () => {
    const checker = new BasicAuthChecker(new Map([['prometheus', fastHash('good')]]));
    const outcomes: AuthOutcome[] = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        checker.check('prometheus', `wrong-${i}`, { address: 'attacker' }),
      ),
    );
    // One starts at once, MAX_PENDING_PER_CLIENT wait; the rest are refused without any bcrypt work.
    expect(outcomes.filter((o) => o === 'denied')).toHaveLength(1 + MAX_PENDING_PER_CLIENT);
    expect(outcomes.filter((o) => o === 'busy')).toHaveLength(300 - 1 - MAX_PENDING_PER_CLIENT);
    expect(checker.bcryptRuns).toBe(1 + MAX_PENDING_PER_CLIENT);
  });

  test('new credentials are served round-robin per address: a flooding address delays another by one check per turn', async () => {
    const checker = new BasicAuthChecker(new Map([['prometheus', fastHash('good', 6)]]));
    // 7 flooding addresses with 4 checks each (28 waiting), then a first-time Prometheus elsewhere.
    const flood = Array.from({ length: 28 }, (_, i) =>
      checker.check('prometheus', `wrong-${i}`, { address: `attacker-${Math.floor(i / 4)}` }),
    );
    const runsBefore = checker.bcryptRuns;
    expect(await checker.check('prometheus', 'good', { address: 'prometheus' })).toBe('ok');
    // One turn: at most one check of each of the 7 addresses ran before it (FIFO: all 28).
    expect(checker.bcryptRuns - runsBefore).toBeLessThanOrEqual(7 + 1);
    await Promise.all(flood);
  });

  test('a check whose client has gone is dropped before bcrypt runs', async () => {
    const checker = new BasicAuthChecker(new Map([['prometheus', fastHash('good', 6)]]));
    let gone = false;
    const checks = Array.from({ length: MAX_PENDING_CHECKS }, (_, i) =>
      checker.check('prometheus', `wrong-${i}`, { address: `client-${i % 8}`, gone: () => gone }),
    );
    // Every client hangs up while the first check runs.
    gone = true;
    await Promise.all(checks);
    expect(checker.bcryptRuns).toBe(1);
    expect(checker.dropped).toBe(MAX_PENDING_CHECKS - 1);
  });

  test("an unknown user is checked against a dummy hash of the users' own cost", async () => {
    const users = new Map([
      ['prometheus', fastHash('good', 12)],
      ['grafana', fastHash('other', 12)],
    ]);
    const checker = new BasicAuthChecker(users);
    const compare = jest.spyOn(bcryptThread, 'compareInThread');
    try {
      const time = async (user: string): Promise<number> => {
        const t0 = performance.now();
        expect(await checker.check(user, `pw-${Math.random()}`)).toBe('denied');
        return performance.now() - t0;
      };
      const known = await time('prometheus');
      const unknown = await time('nobody');
      console.log(
        `bcrypt cost 12: wrong password of a known user ${known.toFixed(0)} ms, unknown user ${unknown.toFixed(0)} ms`,
      );
      // Before: the dummy hash was cost 10 whatever the users' cost (307 ms against 78.5 ms).
      const hashes = compare.mock.calls.map((call) => call[1]);
      expect(hashes.map(bcryptCost)).toEqual([12, 12]);
    } finally {
      compare.mockRestore();
    }
  });

  test('users hashed at different costs: a start-up warning says timing can tell them apart', () => {
    const c = parseWebConfig(
      `basic_auth_users: { a: "${fastHash('x', 4)}", b: "${fastHash('y', 5)}" }`,
      '"web.yml"',
      '/tmp',
    );
    expect(c.warnings).toEqual([expect.stringMatching(/different bcrypt costs \(4, 5\)/)]);
  });
});

/** One GET with basic auth from a chosen local address, on its own connection. */
function get(port: number, auth: string, localAddress: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/metrics',
        localAddress,
        agent: false,
        headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * The attacker, in a child process: the exporter under test runs in this process, and the attack's
 * own work must not share its event loop. `requests`: N GETs at once with wrong passwords from
 * 127.0.0.1, one status per line. `leave`: N requests from 8 addresses, every connection closed
 * after `wait` ms.
 */
const ATTACKER = `
const http = require('node:http'), net = require('node:net');
const [port, mode, n, wait] = process.argv.slice(1).map((v, i) => (i === 1 ? v : Number(v)));
const auth = (i) => 'Basic ' + Buffer.from('prometheus:wrong-' + mode + '-' + i).toString('base64');
if (mode === 'requests') {
  for (let i = 0; i < n; i++) {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false,
      headers: { authorization: auth(i) } }, (res) => { res.resume(); console.log(res.statusCode); })
      .on('error', (e) => console.log('error ' + e.message));
  }
} else {
  const socks = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.1.' + (1 + (i % 8)) });
    s.on('error', () => {});
    s.write('GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: ' + auth(i) + '\\r\\n\\r\\n');
    socks.push(s);
  }
  setTimeout(() => { socks.forEach((s) => s.destroy()); console.log('left'); }, wait);
}
`;

function attack(port: number, mode: 'requests' | 'leave', n: number, waitMs = 0) {
  const child = spawn(process.execPath, ['-e', ATTACKER, String(port), mode, String(n), String(waitMs)]);
  const lines: string[] = [];
  let buffered = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { lines, exited, kill: () => child.kill('SIGKILL') };
}

describe('a real exporter with basic auth (bcrypt cost 10) under a flood of wrong passwords', () => {
  const dir = tempDir('auth-flood');
  let server: RunningServer;
  let port: number;

  beforeAll(async () => {
    const web = join(dir.path, 'web.yml');
    // `slow` (cost 14, ~1.3 s a check) keeps the checker busy while other checks queue up.
    writeFileSync(
      web,
      `basic_auth_users: { prometheus: "${bcrypt.hashSync('scrape-pw', 10)}", slow: "${bcrypt.hashSync('x', 14)}" }\n`,
    );
    const config = loadServerConfig(
      [
        '--target',
        `redis://127.0.0.1:${await freePort()}`,
        '--web.listen-address',
        '127.0.0.1:0',
        '--web.config.file',
        web,
      ],
      {},
    ) as ServerConfig;
    server = await startServer(
      config,
      createLogger('error', 'logfmt', () => undefined),
      { processMetrics: false },
    );
    port = server.port;
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  test('300 wrong passwords at once, then a first-time good scrape from another address: it gets in at once', async () => {
    const attacker = attack(port, 'requests', 300);
    try {
      // The flood has arrived once the first requests are refused as busy.
      await waitFor('the flood queued', () => attacker.lines.includes('429'), 20000, 5);
      const good = await get(port, 'prometheus:scrape-pw', '127.0.0.2');
      const checkedBefore = attacker.lines.filter((l) => l === '401').length;
      await attacker.exited;
      const count = (status: string): number => attacker.lines.filter((l) => l === status).length;
      console.log(
        `auth flood: a first-time good scrape answered in ${good.ms.toFixed(0)} ms, after ${checkedBefore} wrong passwords were checked; ` +
          `the flood got ${count('401')} x 401 and ${count('429')} x 429`,
      );
      expect(good.status).toBe(200);
      // Before: FIFO, so all 300 bcrypt runs (~80 ms each: 22.6 s measured) came first.
      expect(checkedBefore).toBeLessThanOrEqual(1 + MAX_PENDING_PER_CLIENT);
      expect(count('401') + count('429')).toBe(300);
    } finally {
      attacker.kill();
    }
  }, 60000);

  test('connections that send a wrong password and leave cost no bcrypt once they are gone', async () => {
    const compare = jest.spyOn(bcryptThread, 'compareInThread');
    try {
      // A slow check runs...
      const slow = get(port, 'slow:wrong', '127.0.0.4');
      // ...while 8 client addresses x 4 (exactly the pending limit: none refused busy) send wrong
      // passwords and hang up before their turn.
      const attacker = attack(port, 'leave', MAX_PENDING_CHECKS, 700);
      await attacker.exited;
      expect(attacker.lines).toEqual(['left']);
      expect((await slow).status).toBe(401);
      // Time for ~18 bcrypt runs at cost 10, had they not been dropped.
      await sleep(1500);
      const forLeavers = compare.mock.calls.filter((call) => call[0].startsWith('wrong-leave')).length;
      console.log(
        `${MAX_PENDING_CHECKS} clients that left while waiting: ${forLeavers} bcrypt runs for them`,
      );
      // Before: every one of them ran bcrypt, one after the other (with 200 such connections, every
      // good scrape timed out once its cached success expired).
      expect(forLeavers).toBe(0);
      expect((await get(port, 'prometheus:scrape-pw', '127.0.0.3')).status).toBe(200);
    } finally {
      compare.mockRestore();
    }
  }, 60000);
});
