/**
 * A datastore (or anything on an allowed /probe address) that answers with a never-ending reply,
 * against the real exporter bin, measured from outside (/proc): every driver stops reading at its
 * budget (drivers/shared/read-budget.ts), the collection fails (datastore_up 0, the reason logged),
 * the process never crashes, and its RSS stays under the Helm chart's 256 Mi memory limit during
 * the episode and after it. Before the budgets, RSS reached 1.1-1.6 GB within 3 s and stayed there.
 *
 * The hostile server (test/support/hostile.ts) speaks just enough of each protocol for the client
 * library to expect a reply, announces one far larger than any real one, and streams filler as fast
 * as the exporter reads, in a child process of its own. Figures (RSS before, peak, after) are printed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseExposition, value } from './support/metrics-text';
import { startHostileServer, type HostileProtocol, type HostileServer } from './support/hostile';
import { freePort, requireBinary, sleep, tempDir, waitFor } from './support/processes';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
/** The Helm chart's default memory limit (helm/values.yaml resources.limits.memory). */
const CHART_LIMIT_MIB = 256;
/** The image's NODE_OPTIONS (Dockerfile ENV), so the process is sized as it runs in the chart. */
const IMAGE_NODE_OPTIONS = /NODE_OPTIONS="([^"]+)"/.exec(
  readFileSync(join(__dirname, '..', 'Dockerfile'), 'utf8'),
)![1]!;

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

interface Exporter {
  child: ChildProcess;
  port: number;
  logs(): string;
  stop(): Promise<void>;
}

async function startBin(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exporter> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [CLI, '--web.listen-address', `127.0.0.1:${port}`, '--log.level', 'debug', ...args],
    { env: { PATH: process.env.PATH, NODE_OPTIONS: IMAGE_NODE_OPTIONS, ...env } },
  );
  let logs = '';
  child.stderr!.on('data', (d) => (logs = (logs + d).slice(-200000)));
  child.stdout!.on('data', (d) => (logs = (logs + d).slice(-200000)));
  await waitFor(
    'exporter listening',
    async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
    15000,
  );
  return {
    child,
    port,
    logs: () => logs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** RSS samples every 50 ms while `during` runs. */
async function sampleRss(pid: number, during: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  const timer = setInterval(() => {
    try {
      samples.push(rssMiB(pid));
    } catch {
      /* exited: the assertions below say so */
    }
  }, 50);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  return samples;
}

const figures: string[] = [];
afterAll(() =>
  console.log(`RSS under a never-ending reply (MiB: at start, peak, 2 s after):\n${figures.join('\n')}`),
);

const COLLECT = ['--collect.interval', '1s', '--collect.timeout', '900ms'];

describe.each<[string, HostileProtocol, (port: number) => string]>([
  ['redis', 'redis', (p) => `redis://127.0.0.1:${p}`],
  ['postgresql', 'postgresql', (p) => `postgresql://mon:pw@127.0.0.1:${p}/postgres`],
  ['mysql', 'mysql', (p) => `mysql://mon:pw@127.0.0.1:${p}`],
  ['mongodb', 'mongodb', (p) => `mongodb://127.0.0.1:${p}`],
  ['kafka', 'kafka', (p) => `kafka://127.0.0.1:${p}`],
  ['etcd', 'http', (p) => `etcd://127.0.0.1:${p}`],
  ['zookeeper', 'text', (p) => `zookeeper://127.0.0.1:${p}`],
  ['nats', 'http', (p) => `nats://127.0.0.1:${p}`],
  ['rabbitmq', 'http', (p) => `rabbitmq://mon:pw@127.0.0.1:${p}?prometheus_port=${p}`],
])('%s: a never-ending reply on the datastore port', (name, protocol, url) => {
  let hostile: HostileServer;
  let exporter: Exporter;
  beforeAll(async () => {
    hostile = await startHostileServer(protocol);
    exporter = await startBin(['--target', url(hostile.port), ...COLLECT]);
  });
  afterAll(async () => {
    await exporter?.stop();
    await hostile?.stop();
  });

  test('the collection fails at the read budget; RSS stays under the chart limit, during and after', async () => {
    const pid = exporter.child.pid!;
    const start = rssMiB(pid);
    const during = await sampleRss(pid, async () => {
      await waitFor(
        'a collection failed at the read budget',
        () => /sent more than \d+ MiB for one collection/.test(exporter.logs()),
        15000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${exporter.logs().slice(-3000)}`);
      });
      // Several collections (each reconnects and is flooded again).
      await sleep(4000);
    });
    const metrics = parseExposition(await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).text());
    await hostile.stop();
    await sleep(2000);
    const after = rssMiB(pid);
    const peak = Math.max(...during);
    figures.push(`  ${name.padEnd(10)} ${start.toFixed(0)} / ${peak.toFixed(0)} / ${after.toFixed(0)}`);
    expect(exporter.child.exitCode).toBeNull();
    expect(value(metrics, 'datastore_up')).toBe(0);
    expect(peak).toBeLessThan(CHART_LIMIT_MIB);
    expect(after).toBeLessThan(CHART_LIMIT_MIB);
  }, 60000);
});

describe('mongodb: a reply that announces a message of 0 bytes', () => {
  // The official driver's parser reads one message of the announced length per loop turn: 0 bytes
  // read nothing, and it looped forever, synchronously (the process hung, then ran out of memory).
  // Seen with a mongodb:// target pointed at another datastore's port.
  let hostile: HostileServer;
  let exporter: Exporter;
  beforeAll(async () => {
    hostile = await startHostileServer('mongodb-empty');
    exporter = await startBin(['--target', `mongodb://127.0.0.1:${hostile.port}`, ...COLLECT]);
  });
  afterAll(async () => {
    await exporter?.stop();
    await hostile?.stop();
  });

  test('the connection is refused as not MongoDB; the exporter keeps answering', async () => {
    await waitFor(
      'the framing was refused',
      () => /not a MongoDB reply \(a message of 0 bytes/.test(exporter.logs()),
      15000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${exporter.logs().slice(-3000)}`);
    });
    const started = Date.now();
    const metrics = parseExposition(await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).text());
    expect(Date.now() - started).toBeLessThan(5000);
    expect(exporter.child.exitCode).toBeNull();
    expect(value(metrics, 'datastore_up')).toBe(0);
    expect(rssMiB(exporter.child.pid!)).toBeLessThan(CHART_LIMIT_MIB);
  }, 60000);
});

describe('redis over TLS (rediss): the budget counts the encrypted stream too', () => {
  const dir = tempDir('hostile-tls');
  let hostile: HostileServer;
  let exporter: Exporter;
  beforeAll(async () => {
    requireBinary('/usr/bin/openssl', 'openssl');
    const key = join(dir.path, 'key.pem');
    const cert = join(dir.path, 'cert.pem');
    execFileSync(
      '/usr/bin/openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'pipe' },
    );
    hostile = await startHostileServer('redis', { key, cert });
    exporter = await startBin(['--target', `rediss://127.0.0.1:${hostile.port}`, ...COLLECT], {
      NODE_EXTRA_CA_CERTS: cert,
    });
  });
  afterAll(async () => {
    await exporter?.stop();
    await hostile?.stop();
    dir.remove();
  });

  test('the collection fails at the read budget; RSS stays under the chart limit', async () => {
    const pid = exporter.child.pid!;
    const start = rssMiB(pid);
    const during = await sampleRss(pid, async () => {
      await waitFor(
        'a collection failed at the read budget',
        () => /sent more than \d+ MiB for one collection/.test(exporter.logs()),
        15000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${exporter.logs().slice(-3000)}`);
      });
      await sleep(3000);
    });
    const peak = Math.max(...during);
    figures.push(`  rediss     ${start.toFixed(0)} / ${peak.toFixed(0)} / -`);
    expect(exporter.child.exitCode).toBeNull();
    expect(peak).toBeLessThan(CHART_LIMIT_MIB);
  }, 60000);
});

describe('/probe of an allowed address that streams a never-ending reply', () => {
  const dir = tempDir('hostile-probe');
  let hostile: HostileServer;
  let exporter: Exporter;
  beforeAll(async () => {
    hostile = await startHostileServer('redis');
    const modules = Array.from({ length: 8 }, (_, i) => `  m${i}: {}`);
    const config = join(dir.path, 'probe.yml');
    writeFileSync(
      config,
      [`allowed_targets: ["redis://127.0.0.1:${hostile.port}"]`, 'auth_modules:', ...modules].join('\n'),
    );
    exporter = await startBin([
      '--probe.config-file',
      config,
      '--probe.max-concurrent',
      '32',
      '--probe.max-connections-per-host',
      '32',
      '--probe.timeout',
      '2s',
    ]);
  });
  afterAll(async () => {
    await exporter?.stop();
    await hostile?.stop();
    dir.remove();
  });

  test('32 probes at once, again and again: every one is datastore_up 0; RSS stays under the chart limit', async () => {
    const pid = exporter.child.pid!;
    const start = rssMiB(pid);
    const ups: number[] = [];
    const during = await sampleRss(pid, async () => {
      for (let round = 0; round < 10; round++) {
        const answers = await Promise.all(
          Array.from({ length: 32 }, (_, i) =>
            fetch(
              `http://127.0.0.1:${exporter.port}/probe?target=${encodeURIComponent(`redis://127.0.0.1:${hostile.port}/${i % 16}`)}&auth_module=m${i % 8}`,
            ).then(async (r) =>
              r.status === 200 ? value(parseExposition(await r.text()), 'datastore_up') : r.status,
            ),
          ),
        );
        ups.push(...answers);
      }
    });
    await hostile.stop();
    await sleep(2000);
    const after = rssMiB(pid);
    const peak = Math.max(...during);
    figures.push(`  /probe x32 ${start.toFixed(0)} / ${peak.toFixed(0)} / ${after.toFixed(0)}`);
    expect(exporter.child.exitCode).toBeNull();
    // 0: the probe's datastore_up; 503 when all 32 collections of the round before still run.
    expect(ups.every((u) => u === 0 || u === 503)).toBe(true);
    expect(ups.filter((u) => u === 0).length).toBeGreaterThan(0);
    expect(exporter.logs()).toMatch(
      /sent more than \d+ MiB for one collection|hold more than \d+ MiB at once/,
    );
    expect(peak).toBeLessThan(CHART_LIMIT_MIB);
    expect(after).toBeLessThan(CHART_LIMIT_MIB);
  }, 90000);
});
