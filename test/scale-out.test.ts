/**
 * Scale-out across exporter replicas: a real Prometheus runs the hashmod relabelling of docs/probe.md
 * ("Scale-out") over the members that /discover finds, against 2 probe-mode exporter replicas and 100
 * real redis-server targets on loopback (one primary and its 99 replicas, all discovered from the
 * primary). Every target is scraped, by exactly one replica, and each replica pools exactly the
 * targets Prometheus sends it. Figures (memory and latency per pooled target) are in bench/scale-out.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadProbeConfig } from '../src/probe/config';
import { resolveProbeTarget } from '../src/probe/target';
import { value } from './support/metrics-text';
import { freePort, startProcess, tempDir, waitFor, type ServerProcess } from './support/processes';
import { PROMETHEUS } from './support/prometheus';
import {
  startProbeModeExporter,
  targetsOf,
  writeProbeConfig,
  type ProbeModeExporter,
} from './support/probe-exporter';
import { startRedis, type RedisNode } from './support/redis';

const TARGETS = 100;
const REPLICAS = 2;
const DOC = join(__dirname, '..', 'docs', 'probe.md');

interface Job {
  job_name: string;
  metrics_path: string;
  http_sd_configs: { url: string; refresh_interval?: string }[];
  relabel_configs: { action?: string; modulus?: number; replacement?: string; [k: string]: unknown }[];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port prefix P whose ports P0 .. P(n-1) are free: replica i listens on `${P}${i}`, so the
 * documented `replacement: <host>-$1...` form becomes `127.0.0.1:${P}$1`, unchanged in kind.
 */
async function portPrefix(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = 2000 + Math.floor(Math.random() * 4500);
    const ports = Array.from({ length: n }, (_, i) => prefix * 10 + i);
    if ((await Promise.all(ports.map(canListen))).every(Boolean)) return prefix;
  }
  throw new Error('no free port prefix');
}

describe(`${REPLICAS} exporter replicas share ${TARGETS} discovered redis-server targets through hashmod`, () => {
  const dir = tempDir('scale-out');
  const nodes: RedisNode[] = [];
  const exporters: ProbeModeExporter[] = [];
  let prometheus: ServerProcess | undefined;
  let promUrl = '';
  let configFile = '';
  let primary: RedisNode;

  beforeAll(async () => {
    primary = await startRedis(await freePort());
    nodes.push(primary);
    // In batches: 99 replicas syncing from one primary, without swamping two cores.
    for (let started = 1; started < TARGETS;) {
      const batch = Math.min(10, TARGETS - started);
      const ports = await Promise.all(Array.from({ length: batch }, () => freePort()));
      nodes.push(
        ...(await Promise.all(
          ports.map((p) => startRedis(p, ['--replicaof', '127.0.0.1', String(primary.port)])),
        )),
      );
      started += batch;
    }
    await waitFor(
      `the primary lists its ${TARGETS - 1} replicas`,
      () => primary.info('replication').get('connected_slaves') === String(TARGETS - 1),
      60000,
      200,
    );
    configFile = writeProbeConfig(dir.path, { allowed_targets: ['redis://127.0.0.1:*'] });
    const prefix = await portPrefix(REPLICAS);
    for (let i = 0; i < REPLICAS; i++) {
      exporters.push(
        await startProbeModeExporter([
          '--probe.config-file',
          configFile,
          '--web.listen-address',
          `127.0.0.1:${prefix}${i}`,
        ]),
      );
    }

    const block = /<!-- scale-out-scrape-config -->\s*```yaml\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'));
    expect(block).not.toBeNull();
    const [job] = (parseYaml(block![1]!) as { scrape_configs: Job[] }).scrape_configs;
    const hashmod = job!.relabel_configs.find((r) => r.action === 'hashmod');
    expect(hashmod?.modulus).toBe(REPLICAS);
    const seed = new URLSearchParams({ target: primary.url, cluster_id: 'cache' });
    job!.http_sd_configs = [
      { url: `http://127.0.0.1:${exporters[0]!.port}/discover?${seed.toString()}`, refresh_interval: '5s' },
    ];
    for (const rule of job!.relabel_configs) {
      if (rule.replacement?.includes('$1')) rule.replacement = `127.0.0.1:${prefix}$1`;
    }
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const promConfig = join(dir.path, 'prometheus.yml');
    writeFileSync(
      promConfig,
      stringifyYaml({ global: { scrape_interval: '2s', scrape_timeout: '1500ms' }, scrape_configs: [job] }),
    );
    prometheus = startProcess(PROMETHEUS, [
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${join(dir.path, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ]);
  }, 300000);

  afterAll(async () => {
    await prometheus?.stop();
    await Promise.all(exporters.map((e) => e.stop()));
    // Every redis-server by its PID (RedisNode.stop).
    await Promise.all(nodes.map((n) => n.stop()));
    dir.remove();
  }, 120000);

  const query = async (
    expr: string,
  ): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (
      (await res.json()) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      }
    ).data.result;
  };

  test('pooled Redis targets share one node-redis client class (not ~220 KiB of closures each)', async () => {
    const { registration } = await import('../src/drivers/redis');
    const { parseTarget } = await import('../src/core/target');
    const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined };
    const drivers = nodes.slice(0, 2).map((n) =>
      registration.create({
        target: parseTarget(n.url),
        timeoutMs: 2000,
        logger,
        extra: {},
        heartbeat: false,
      }),
    );
    try {
      await Promise.all(drivers.map((d) => d.connect()));
      const classes = drivers.map((d) => {
        const client = (d as unknown as { client: object }).client;
        return Object.getPrototypeOf(Object.getPrototypeOf(client)) as object;
      });
      expect(classes[0]).toBe(classes[1]);
    } finally {
      await Promise.all(drivers.map((d) => d.close()));
    }
  });

  test('discovery lists all 100 targets', async () => {
    const groups = await exporters[1]!.groups({ target: primary.url, cluster_id: 'cache' });
    expect(targetsOf(groups)).toEqual(nodes.map((n) => n.url).sort());
  });

  test('every target is scraped, each by exactly one replica, and each replica pools only its share', async () => {
    await waitFor(
      `Prometheus has datastore_up 1 for all ${TARGETS} targets`,
      async () => {
        if (prometheus!.exited()) throw new Error(`prometheus exited: ${prometheus!.output().slice(-1500)}`);
        return (await query('datastore_up == 1')).length === TARGETS;
      },
      120000,
      500,
    );
    // One series per target: nobody else scraped it under another address.
    const perInstance = await query('count by (instance) (datastore_up)');
    expect(perInstance).toHaveLength(TARGETS);
    expect(perInstance.every((r) => r.value[1] === '1')).toBe(true);

    // Which replica Prometheus sends each target to...
    const res = await fetch(`${promUrl}/api/v1/targets?state=active`);
    const active = (
      (await res.json()) as {
        data: { activeTargets: { scrapeUrl: string; labels: Record<string, string> }[] };
      }
    ).data.activeTargets;
    expect(active).toHaveLength(TARGETS);
    const config = loadProbeConfig(configFile);
    const shares = exporters.map(() => 0);
    for (const t of active) {
      const port = Number(new URL(t.scrapeUrl).port);
      const owner = exporters.findIndex((e) => e.port === port);
      expect({ target: t.labels.instance, owner: owner >= 0 }).toEqual({
        target: t.labels.instance,
        owner: true,
      });
      shares[owner]!++;
      // ...holds that target's pooled connection, and the other replica does not.
      const key = resolveProbeTarget({ target: t.labels.instance, cluster_id: 'cache' }, config).key;
      expect(exporters.map((e) => e.probe!.pool.has(key))).toEqual(exporters.map((_, i) => i === owner));
    }
    // hashmod spreads 100 URLs over both replicas (each gets a real share, not all of them).
    expect(shares.every((n) => n > TARGETS / 5)).toBe(true);
    const pooled = await Promise.all(
      exporters.map(async (e) => value(await e.metrics(), 'datastore_exporter_probe_targets')),
    );
    expect(pooled).toEqual(shares);
    expect(pooled.reduce((a, b) => a + b, 0)).toBe(TARGETS);
  }, 180000);
});
