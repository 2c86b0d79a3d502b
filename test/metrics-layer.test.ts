/**
 * The metrics layer and HTTP surface on snapshots built by hand: every field of the model, the
 * state set, no stale series across snapshots, text vs OpenMetrics, gzip, health and readiness.
 * (The same layer is exercised against real datastores in the driver tests.)
 */
import request from 'supertest';
import { get, request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { CollectorState } from '../src/core/collector';
import { createLogger } from '../src/core/logger';
import type { Snapshot } from '../src/core/model';
import { createApp } from '../src/http/routes';
import { telemetryPathProblem } from '../src/http/paths';
import type { ProbeService } from '../src/probe/service';
import type { DiscoveryService } from '../src/probe/discovery';
import { find, parseExposition, value } from './support/metrics-text';
import { promtoolCheckMetrics } from './support/promtool';

function snapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    datastore: 'redis',
    version: '7.0.15',
    nodeId: 'node-a',
    clusterId: 'c1',
    clusterIdSource: 'flag',
    shards: [
      {
        id: 's1',
        role: 'primary',
        lagSeconds: 3,
        lastOperationTimestampSeconds: 1700000000,
        commitOffset: { value: 42, unit: 'bytes' },
      },
      { id: 's2', role: 'secondary', lagSeconds: 2.5, lastOperationTimestampSeconds: 1700000001 },
      { id: 's3', role: 'unknown' },
    ],
    performance: { clientsConnected: 7, readsTotal: 100, writesTotal: 50 },
    collectedAtSeconds: 1700000002,
    ...overrides,
  };
}

function appWith(state: { current: CollectorState }) {
  return createApp({
    telemetryPath: '/metrics',
    state: () => state.current,
    logger: createLogger('error', 'logfmt', () => undefined),
    processMetrics: true,
  });
}

const up = (snap: Snapshot): CollectorState => ({
  snapshot: snap,
  up: true,
  attempted: true,
  lastDurationSeconds: 0.01,
  errorsTotal: 0,
  lastSuccessSeconds: snap.collectedAtSeconds,
});

describe('metrics layer', () => {
  test('maps every model field; the role is a state set; lag never appears on a primary', async () => {
    const state = { current: up(snapshot()) };
    const s = parseExposition((await request(appWith(state)).get('/metrics')).text);
    expect(value(s, 'datastore_up')).toBe(1);
    expect(value(s, 'datastore_node_info', { datastore: 'redis', node_id: 'node-a', cluster_id: 'c1' })).toBe(
      1,
    );
    expect(value(s, 'datastore_version_info', { datastore: 'redis', version: '7.0.15' })).toBe(1);
    for (const [shard, role] of [
      ['s1', 'primary'],
      ['s2', 'secondary'],
      ['s3', 'unknown'],
    ]) {
      for (const r of ['primary', 'secondary', 'unknown']) {
        expect(value(s, 'datastore_shard_role', { cluster_id: 'c1', shard_id: shard!, role: r })).toBe(
          r === role ? 1 : 0,
        );
      }
    }
    expect(find(s, 'datastore_shard_replication_lag_seconds').map((x) => x.labels.shard_id)).toEqual(['s2']);
    expect(value(s, 'datastore_shard_replication_lag_seconds', { shard_id: 's2' })).toBe(2.5);
    expect(value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 's1' })).toBe(1700000000);
    expect(find(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 's3' })).toHaveLength(0);
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 's1' })).toBe(42);
    expect(value(s, 'datastore_clients_connected')).toBe(7);
    expect(value(s, 'datastore_reads_total')).toBe(100);
    expect(value(s, 'datastore_writes_total')).toBe(50);
    expect(value(s, 'datastore_exporter_last_collect_success_timestamp_seconds')).toBe(1700000002);
    expect(find(s, 'datastore_exporter_build_info')).toHaveLength(1);
    expect(find(s, 'process_resident_memory_bytes')).toHaveLength(1);
  });

  test('identity: where cluster_id comes from, the replication group, key ranges and commit epochs', async () => {
    const state = {
      current: up(
        snapshot({
          clusterId: 'default',
          clusterIdSource: 'fallback',
          replicationGroup: '8c1f0e',
          shards: [
            {
              id: 's1',
              role: 'primary',
              keyRanges: '0-5460,10923',
              commitOffset: { value: 7, unit: 'transactions', epoch: 3 },
            },
            { id: 's2', role: 'secondary', keyRanges: '', commitOffset: { value: 9, unit: 'bytes' } },
          ],
        }),
      ),
    };
    const text = (await request(appWith(state)).get('/metrics')).text;
    const s = parseExposition(text);
    expect(find(s, 'datastore_node_info')[0]!.labels).toEqual({
      datastore: 'redis',
      node_id: 'node-a',
      cluster_id: 'default',
      cluster_id_source: 'fallback',
      replication_group: '8c1f0e',
    });
    expect(value(s, 'datastore_shard_key_ranges_info', { shard_id: 's1', key_ranges: '0-5460,10923' })).toBe(
      1,
    );
    expect(value(s, 'datastore_shard_key_ranges_info', { shard_id: 's2' })).toBe(1);
    // An epoch only where the driver has one; the offset is the position within it.
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 's1' })).toBe(7);
    expect(find(s, 'datastore_shard_commit_epoch').map((x) => [x.labels.shard_id, x.value])).toEqual([
      ['s1', 3],
    ]);
    expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });

    // Without a replication group (a cluster identity of its own), no such label at all.
    state.current = up(snapshot({ clusterIdSource: 'datastore' }));
    const again = parseExposition((await request(appWith(state)).get('/metrics')).text);
    expect(find(again, 'datastore_node_info')[0]!.labels).toEqual({
      datastore: 'redis',
      node_id: 'node-a',
      cluster_id: 'c1',
      cluster_id_source: 'datastore',
    });
    expect(find(again, 'datastore_shard_key_ranges_info')).toHaveLength(0);
    expect(find(again, 'datastore_shard_commit_epoch')).toHaveLength(0);
  });

  test("build_info carries the git revision and branch (Prometheus version.Info's labels)", async () => {
    const saved = { ...process.env };
    process.env.DATASTORE_EXPORTER_GIT_COMMIT = '0123456789abcdef';
    process.env.DATASTORE_EXPORTER_GIT_BRANCH = 'main';
    try {
      const s = parseExposition((await request(appWith({ current: up(snapshot()) })).get('/metrics')).text);
      const [info] = find(s, 'datastore_exporter_build_info');
      expect(info?.labels).toEqual({
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        revision: '0123456789abcdef',
        branch: 'main',
        nodejs_version: process.version,
      });
    } finally {
      process.env = saved;
    }
  });

  test('a shard or role that disappears leaves no stale series', async () => {
    const state = { current: up(snapshot()) };
    const app = appWith(state);
    await request(app).get('/metrics');
    state.current = up(snapshot({ shards: [{ id: 's2', role: 'primary' }], performance: {} }));
    const s = parseExposition((await request(app).get('/metrics')).text);
    expect(find(s, 'datastore_shard_role').map((x) => x.labels.shard_id)).toEqual(['s2', 's2', 's2']);
    expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
    expect(find(s, 'datastore_shard_commit_offset')).toHaveLength(0);
    expect(find(s, 'datastore_clients_connected')).toHaveLength(0);
    expect(find(s, 'datastore_reads_total')).toHaveLength(0);
  });

  test('datastore down: datastore_up 0, self-metrics stay, no model series; errors counter only grows', async () => {
    const state = { current: up(snapshot()) };
    const app = appWith(state);
    state.current = { ...state.current, snapshot: null, up: false, errorsTotal: 3 };
    let s = parseExposition((await request(app).get('/metrics')).text);
    expect(value(s, 'datastore_up')).toBe(0);
    expect(value(s, 'datastore_exporter_collect_errors_total')).toBe(3);
    expect(s.filter((x) => /^datastore_(node|version|shard|clients|reads|writes)/.test(x.name))).toHaveLength(
      0,
    );
    state.current = { ...state.current, errorsTotal: 5 };
    s = parseExposition((await request(app).get('/metrics')).text);
    expect(value(s, 'datastore_exporter_collect_errors_total')).toBe(5);
  });

  test('OpenMetrics when the Accept header asks, with a single # EOF; gzip when asked', async () => {
    const app = appWith({ current: up(snapshot()) });
    const om = await request(app)
      .get('/metrics')
      .set('Accept', 'application/openmetrics-text; version=1.0.0');
    expect(om.headers['content-type']).toMatch(/^application\/openmetrics-text/);
    expect(om.text.match(/# EOF/g)).toHaveLength(1);
    expect(om.text.endsWith('# EOF\n')).toBe(true);
    expect(om.text).toContain('# TYPE datastore_writes counter');
    // Read the raw bytes with node:http: supertest would silently gunzip them for us.
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as { port: number };
      const raw = await new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
        get({ port, host: '127.0.0.1', path: '/metrics', headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }),
          );
        }).on('error', reject);
      });
      expect(raw.encoding).toBe('gzip');
      expect(gunzipSync(raw.body).toString()).toContain('datastore_node_info{');
    } finally {
      server.close();
    }
  });

  test('a scrape served from the prepared bytes answers exactly as the Express path does', async () => {
    const state = { current: up(snapshot()) };
    // Without process metrics the answer depends on the snapshot alone, however slow the machine.
    const app = createApp({
      telemetryPath: '/metrics',
      state: () => state.current,
      logger: createLogger('error', 'logfmt', () => undefined),
      processMetrics: false,
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as { port: number };
    type Raw = { status: number; headers: Record<string, unknown>; body: Buffer };
    const raw = (method: string, headers: Record<string, string>): Promise<Raw> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ port, host: '127.0.0.1', path: '/metrics', method, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        });
        req.on('error', reject).end();
      });
    const shown = (r: Raw) => ({
      status: r.status,
      type: r.headers['content-type'],
      vary: r.headers['vary'],
      encoding: r.headers['content-encoding'],
      length: r.headers['content-length'],
      etag: r.headers['etag'],
      body: r.body.toString('base64'),
    });
    try {
      for (const accept of ['text/plain', 'application/openmetrics-text; version=1.0.0']) {
        for (const encoding of ['identity', 'gzip']) {
          for (const method of ['GET', 'HEAD']) {
            const headers = { Accept: accept, 'Accept-Encoding': encoding };
            const fast = await raw(method, headers);
            // A conditional request that matches nothing goes through Express and its middleware.
            const viaExpress = await raw(method, { ...headers, 'If-None-Match': '"no-such-etag"' });
            expect(fast.status).toBe(200);
            expect(shown(fast)).toEqual(shown(viaExpress));
            expect(fast.headers['content-length']).toBe(
              String(method === 'HEAD' ? (await raw('GET', headers)).body.length : fast.body.length),
            );
          }
        }
      }
      // The ETag is Express's own: a conditional request with it is answered 304 by Express.
      const first = await raw('GET', {});
      const again = await raw('GET', { 'If-None-Match': String(first.headers['etag']) });
      expect(again.status).toBe(304);
      // A new snapshot is a new answer at once, not the prepared bytes of the previous one.
      state.current = up(
        snapshot({ performance: { clientsConnected: 8, readsTotal: 101, writesTotal: 51 } }),
      );
      const next = await raw('GET', {});
      expect(value(parseExposition(next.body.toString()), 'datastore_clients_connected')).toBe(8);
      expect(next.headers['etag']).not.toBe(first.headers['etag']);
    } finally {
      server.close();
    }
  });

  test('text output with every field passes promtool check metrics', async () => {
    const text = (await request(appWith({ current: up(snapshot()) })).get('/metrics')).text;
    const r = promtoolCheckMetrics(text);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  test('/healthz always answers; /ready only after the first collection was attempted; / links to metrics', async () => {
    const state = {
      current: {
        snapshot: null,
        up: false,
        attempted: false,
        lastDurationSeconds: 0,
        errorsTotal: 0,
      } as CollectorState,
    };
    const app = appWith(state);
    await request(app).get('/healthz').expect(200, 'ok\n');
    await request(app).get('/ready').expect(503);
    state.current = { ...state.current, attempted: true };
    await request(app).get('/ready').expect(200);
    expect((await request(app).get('/').expect(200)).text).toContain('href="/metrics"');
  });
});

describe('--web.telemetry-path cannot take a route of the app', () => {
  test('every fixed route is refused as a telemetry path (a new route must be added to http/paths.ts)', () => {
    const app = createApp({
      telemetryPath: '/metrics',
      state: () => up(snapshot()),
      logger: createLogger('error', 'logfmt', () => undefined),
      processMetrics: false,
      // Present only to register their routes; never called here.
      probe: {} as ProbeService,
      discovery: {} as DiscoveryService,
    });
    const routes = (app.router as unknown as { stack: { route?: { path: string } }[] }).stack
      .map((layer) => layer.route?.path)
      .filter((path): path is string => typeof path === 'string');
    expect(routes).toEqual(expect.arrayContaining(['/healthz', '/ready', '/probe', '/discover', '/']));
    for (const path of routes) expect([path, telemetryPathProblem(path)]).toEqual([path, expect.any(String)]);
  });
});
