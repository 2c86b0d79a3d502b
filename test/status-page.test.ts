/**
 * The status page at `/` (src/http/status-page.ts) as HTML: what it shows in each state, escaping of
 * datastore-controlled text, the cap on huge shard lists, the optional refresh, and that it is
 * guarded like every other path under --web.config.file. test/status-page-browser.test.ts looks at
 * it in a real browser against real Redis servers.
 */
import bcrypt from 'bcryptjs';
import request from 'supertest';
import type { CollectorState } from '../src/core/collector';
import { createLogger } from '../src/core/logger';
import type { Shard, Snapshot } from '../src/core/model';
import { parseWebConfig } from '../src/config/web-config';
import { stopBcryptThread } from '../src/http/bcrypt-thread';
import { createApp } from '../src/http/routes';
import {
  MAX_SHARD_ROWS,
  formatSeconds,
  parseRefresh,
  renderStatusPage,
  type StatusPageContext,
} from '../src/http/status-page';

const NOW = 1_800_000_000;

const context: StatusPageContext = {
  version: { version: '1.2.3', revision: 'abc123', branch: 'main', nodejsVersion: 'v24.22.3' },
  telemetryPath: '/metrics',
  apiRoot: '/api/unstable',
  target: 'redis://:REDACTED@db.example:6379',
  datastore: 'redis',
  collectIntervalSeconds: 5,
  collectTimeoutMs: 3000,
  probe: false,
};

function snapshot(shards: Shard[], overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    datastore: 'redis',
    version: '7.0.15',
    nodeId: 'node-a:6379',
    clusterId: 'cache',
    clusterIdSource: 'flag',
    shards,
    performance: { clientsConnected: 4, readsTotal: 10, writesTotal: 20 },
    collectedAtSeconds: NOW - 2,
    ...overrides,
  };
}

function up(snap: Snapshot): CollectorState {
  return {
    snapshot: snap,
    up: true,
    attempted: true,
    lastDurationSeconds: 0.012,
    errorsTotal: 1,
    lastSuccessSeconds: NOW - 2,
    lastAttemptSeconds: NOW - 2,
  };
}

const down = (error: string): CollectorState => ({
  snapshot: null,
  up: false,
  attempted: true,
  lastDurationSeconds: 0.8,
  errorsTotal: 7,
  lastSuccessSeconds: NOW - 600,
  lastAttemptSeconds: NOW - 1,
  lastError: error,
});

/** The text of the element carrying `id` (tags stripped): enough for these flat sections. */
function section(html: string, id: string): string {
  const m = new RegExp(`<section id="${id}">(.*?)</section>`, 's').exec(html);
  if (!m) throw new Error(`no section ${id}`);
  return m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

// The basic-auth test starts the bcrypt thread, which is shared and outlives the app.
afterAll(() => stopBcryptThread());

describe('what the page shows', () => {
  const shards: Shard[] = [
    {
      id: 'shard-1',
      role: 'primary',
      nativeRole: 'master',
      lastOperationTimestampSeconds: NOW - 62,
      commitOffset: { value: 123456, unit: 'bytes' },
    },
    { id: 'shard-2', role: 'secondary', nativeRole: 'slave', lagSeconds: 1.5 },
  ];
  const html = renderStatusPage(context, { state: up(snapshot(shards)), nowSeconds: NOW });

  test('health, exporter version and revision, the redacted target', () => {
    expect(html).toContain('<span class="badge up" id="health">UP</span>');
    expect(section(html, 'exporter')).toBe(
      ' Exporter Version 1.2.3 Revision abc123 Branch main Node.js v24.22.3 ',
    );
    expect(section(html, 'target')).toContain('URL redis://:REDACTED@db.example:6379 Driver redis');
    expect(section(html, 'target')).toContain('Heartbeat off');
  });

  test('node and cluster identity', () => {
    expect(section(html, 'node')).toBe(
      ' Node Datastore redis 7.0.15 Node id node-a:6379 Cluster id cache (from --cluster-id) Activity 4 clients, 10 reads, 20 writes ',
    );
  });

  test('each shard with role, lag, last write age and commit offset', () => {
    const rows = [...html.matchAll(/<tr data-shard-id="([^"]*)" data-role="([^"]*)">(.*?)<\/tr>/g)].map(
      (m) => [m[1], m[2], m[3]!.replace(/<[^>]+>/g, '|').replace(/\|+/g, '|')],
    );
    expect(rows).toEqual([
      ['shard-1', 'primary', '|shard-1|primary (master)|—|1m 0s|123456 |bytes|'],
      ['shard-2', 'secondary', '|shard-2|secondary (slave)|1.5 s|—|—|'],
    ]);
    expect(section(html, 'shards')).toContain('primary: 1 secondary: 1');
  });

  test('the last collection: time, duration, schedule', () => {
    const at = new Date((NOW - 2) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(section(html, 'collection')).toBe(
      ` Last collection Result succeeded At ${at} (2 s ago) Duration 12 ms Last success ${at} (2 s ago)` +
        ' Failed collections 1 Schedule every 5 s, timeout 3 s ',
    );
  });

  test('links to the metrics, the JSON API, health and the docs', () => {
    for (const href of [
      '/metrics',
      '/api/unstable/info/agent',
      '/api/unstable/info/datastore',
      '/api/unstable/shards',
      '/healthz',
      '/ready',
    ]) {
      expect(html).toContain(`<a href="${href}">`);
    }
    expect(section(html, 'links')).toContain('docs/status-page.md');
  });

  test('identity details: a fallback cluster id says so; replication group, key ranges, commit epoch', () => {
    const page = renderStatusPage(context, {
      state: up(
        snapshot(
          [
            {
              id: 'n1',
              role: 'primary',
              keyRanges: '0-5460',
              commitOffset: { value: 7, unit: 'transactions', epoch: 3 },
            },
          ],
          { clusterId: 'default', clusterIdSource: 'fallback', replicationGroup: '8c1f0e' },
        ),
      ),
      nowSeconds: NOW,
    });
    expect(section(page, 'node')).toContain(
      'Cluster id default (a fallback: set --cluster-id) Replication group 8c1f0e',
    );
    expect(page).toContain('n1 <span class="unit">key ranges 0-5460</span>');
    expect(page).toContain('7 <span class="unit">transactions</span> <span class="unit">epoch 3</span>');
  });

  test('heartbeat mode: the interval and each shard’s heartbeat age', () => {
    const page = renderStatusPage(
      { ...context, heartbeatIntervalMs: 500 },
      {
        state: up(
          snapshot([
            { id: 's', role: 'secondary', heartbeatTimestampSeconds: NOW - 0.25 },
            { id: 't', role: 'primary' },
          ]),
        ),
        nowSeconds: NOW,
      },
    );
    expect(section(page, 'target')).toContain('Heartbeat on: the primary writes every 500 ms');
    expect(page).toContain('<td class="heartbeat" data-label="Heartbeat age">250 ms</td>');
    expect(page).toContain('<td class="heartbeat" data-label="Heartbeat age">none read</td>');
  });

  test('down: the error, the last success, and no node or shard data (never stale numbers)', () => {
    const page = renderStatusPage(context, {
      state: down('connect ECONNREFUSED 127.0.0.1:6379'),
      nowSeconds: NOW,
    });
    expect(page).toContain('<span class="badge down" id="health">DOWN</span>');
    expect(section(page, 'collection')).toContain('Result failed');
    expect(section(page, 'collection')).toContain('Error connect ECONNREFUSED 127.0.0.1:6379');
    expect(section(page, 'collection')).toContain('(10m 0s ago)');
    expect(page).not.toContain('<section id="node">');
    expect(page).not.toContain('<section id="shards">');
  });

  test('starting, and probe-only', () => {
    const starting = renderStatusPage(context, {
      state: { snapshot: null, up: false, attempted: false, lastDurationSeconds: 0, errorsTotal: 0 },
      nowSeconds: NOW,
    });
    expect(starting).toContain('id="health">STARTING</span>');
    expect(section(starting, 'collection')).toContain('the first collection has not finished yet');
    const probeOnly = renderStatusPage(
      { ...context, target: undefined, datastore: undefined, probe: true },
      { nowSeconds: NOW },
    );
    expect(probeOnly).toContain('id="health">PROBE ONLY</span>');
    expect(section(probeOnly, 'target')).toContain('none: only /probe is served');
    expect(probeOnly).not.toContain('<section id="collection">');
  });
});

describe('datastore-controlled text is escaped everywhere', () => {
  const evil = `<script>alert("x")</script><img src=x onerror='y'>&amp;`;
  const html = renderStatusPage(
    { ...context, target: `redis://${evil}` },
    {
      state: up(
        snapshot(
          [
            {
              id: evil,
              role: 'primary',
              nativeRole: evil,
              keyRanges: evil,
              commitOffset: { value: 1, unit: evil },
            },
          ],
          {
            version: evil,
            nodeId: evil,
            clusterId: evil,
            clusterDisplayName: evil,
          },
        ),
      ),
      nowSeconds: NOW,
    },
  );
  const downPage = renderStatusPage(context, { state: down(evil), nowSeconds: NOW });

  test('no markup from the data survives', () => {
    for (const page of [html, downPage]) {
      expect(page).not.toContain('<script');
      expect(page).not.toContain('<img');
      expect(page).not.toMatch(/onerror='/);
    }
    const escaped =
      '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#60;img src=x onerror=&#39;y&#39;&#62;&#38;amp;';
    // Shard id (cell and attribute), key ranges, native role, unit, version, ids, display name, target.
    expect(html.split(escaped).length - 1).toBeGreaterThanOrEqual(10);
    expect(downPage).toContain(`<span class="error">${escaped}</span>`);
  });

  test('the only tags are the page’s own', () => {
    const tags = new Set([...html.matchAll(/<\/?([a-z0-9]+)/g)].map((m) => m[1]));
    expect([...tags].sort()).toEqual(
      [
        'a',
        'body',
        'code',
        'dd',
        'div',
        'dl',
        'dt',
        'h1',
        'h2',
        'head',
        'header',
        'html',
        'li',
        'meta',
        'p',
        'section',
        'span',
        'style',
        'table',
        'tbody',
        'td',
        'th',
        'thead',
        'title',
        'tr',
        'ul',
      ].sort(),
    );
  });
});

describe('a huge shard list (a Kafka broker leading 10,000 partitions)', () => {
  const shards: Shard[] = Array.from({ length: 10_000 }, (_, i) => ({
    id: `orders-${i}`,
    role: i % 3 === 0 ? 'primary' : 'secondary',
    lagSeconds: i % 3 === 0 ? undefined : 0,
    commitOffset: { value: i * 1000, unit: 'offset' },
  }));
  const html = renderStatusPage(context, { state: up(snapshot(shards)), nowSeconds: NOW });

  test('the table is capped, with a note saying where the rest is', () => {
    expect(html.match(/<tr data-shard-id=/g)).toHaveLength(MAX_SHARD_ROWS);
    expect(html).toContain(
      `Showing the first ${MAX_SHARD_ROWS} of 10000 shards. Every shard is in <a href="/metrics">/metrics</a> and <a href="/api/unstable/shards">/api/unstable/shards</a>.`,
    );
    expect(section(html, 'shards')).toContain('Shards (10000) primary: 3334 secondary: 6666');
  });

  test('the page stays small', () => {
    expect(Buffer.byteLength(html)).toBeLessThan(100 * 1024);
  });
});

describe('refresh', () => {
  test('?refresh=N: whole seconds from 1 to 3600, anything else ignored', () => {
    expect(parseRefresh('5')).toBe(5);
    expect(parseRefresh('3600')).toBe(3600);
    for (const bad of [undefined, '', '0', '3601', '-1', '1.5', 'x', ['5'], '99999'])
      expect(parseRefresh(bad)).toBeUndefined();
  });

  test('a meta refresh when asked, and a link to stop it', () => {
    const state = up(snapshot([]));
    const refreshing = renderStatusPage(context, { state, nowSeconds: NOW, refreshSeconds: 5 });
    expect(refreshing).toContain('<meta http-equiv="refresh" content="5">');
    expect(refreshing).toContain('Refreshing every 5 s · <a href="/">stop</a>');
    const still = renderStatusPage(context, { state, nowSeconds: NOW });
    expect(still).not.toContain('http-equiv="refresh"');
    expect(still).toContain('<a href="/?refresh=5">Refresh every 5 s</a>');
    expect(still).not.toContain('<script');
  });
});

test('formatSeconds', () => {
  expect([0.004, 1.5, 12.34, 75, 3725, 90061].map(formatSeconds)).toEqual([
    '4 ms',
    '1.5 s',
    '12.3 s',
    '1m 15s',
    '1h 2m',
    '1d 1h',
  ]);
});

describe('served at /', () => {
  const logger = createLogger('error', 'logfmt', () => undefined);
  const state = up(snapshot([{ id: 'only', role: 'primary' }]));

  test('HTML, never cached, refresh from the query', async () => {
    const app = createApp({
      telemetryPath: '/metrics',
      state: () => state,
      logger,
      processMetrics: false,
      status: context,
    });
    const res = await request(app).get('/?refresh=10').expect(200);
    expect(res.get('content-type')).toMatch(/^text\/html/);
    expect(res.get('cache-control')).toBe('no-store');
    expect(res.text).toContain('<meta http-equiv="refresh" content="10">');
    expect(res.text).toContain('data-shard-id="only"');
  });

  test('under --web.config.file it needs credentials like every other path', async () => {
    const hash = bcrypt.hashSync('s3cret', 4);
    const web = parseWebConfig(`basic_auth_users:\n  alice: "${hash}"\n`, '"web.yml"', '/tmp');
    const app = createApp({
      telemetryPath: '/metrics',
      state: () => state,
      logger,
      processMetrics: false,
      status: context,
      web,
    });
    const denied = await request(app).get('/').expect(401);
    expect(denied.text).not.toContain('datastore-exporter');
    expect(denied.text).not.toContain('REDACTED@db.example');
    await request(app).get('/').auth('alice', 'wrong').expect(401);
    const ok = await request(app).get('/').auth('alice', 's3cret').expect(200);
    expect(ok.text).toContain('id="health">UP</span>');
    // The health paths stay open (kubelet), and show nothing of the page.
    expect((await request(app).get('/healthz').expect(200)).text).toBe('ok\n');
  });
});
