/**
 * The status page in a real browser (Debian's headless Chromium) against real Redis servers: a
 * primary and its replica each show their own role, datastore-controlled text stays text in the DOM
 * the browser built, and a datastore that goes down shows DOWN with its (redacted) error. Screenshots
 * at a phone's size are written to test-output/ for people to look at; the assertions are on the DOM.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PHONE, dumpDom, screenshot } from './support/chromium';
import { startTestExporter, type TestExporter } from './support/exporter';
import { freePort, waitFor } from './support/processes';
import { startRedis, startRedisPair, type RedisNode } from './support/redis';

const OUTPUT = join(__dirname, '..', 'test-output');
const PASSWORD = 'status-page-pw-5821';
/** A cluster id with markup in it: --cluster-id is also the name of Redis's single shard. */
const CLUSTER_ID = '<b>cache</b>&"eu"';

let primary: RedisNode;
let replica: RedisNode;
let guarded: RedisNode | undefined;
const exporters: TestExporter[] = [];
let primaryExporter: TestExporter;
let replicaExporter: TestExporter;
let guardedExporter: TestExporter;

const pageUrl = (e: TestExporter): string => `http://127.0.0.1:${e.port}/`;

/** The text content of the first element matching `open` (an opening-tag pattern), tags stripped. */
function textOf(dom: string, open: RegExp): string | undefined {
  const m = new RegExp(`${open.source}(.*?)</(td|span|dd|section)>`, 's').exec(dom);
  return m?.[1]?.replace(/<[^>]+>/g, '').trim();
}

/** The shard rows of the table: [shard id as the browser decoded it, role, role cell text]. */
function shardRows(dom: string): [string, string, string][] {
  return [...dom.matchAll(/<tr data-shard-id="([^"]*)" data-role="([^"]*)">(.*?)<\/tr>/gs)].map((m) => [
    m[1]!,
    m[2]!,
    textOf(m[3]!, /<td class="role[^"]*"[^>]*>/) ?? '',
  ]);
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  ({
    primary,
    replicas: [replica],
  } = (await startRedisPair(1)) as { primary: RedisNode; replicas: [RedisNode] });
  guarded = await startRedis(await freePort(), ['--requirepass', PASSWORD]);
  primaryExporter = await startTestExporter(['--target', primary.url, '--cluster-id', CLUSTER_ID]);
  replicaExporter = await startTestExporter(['--target', replica.url, '--cluster-id', CLUSTER_ID]);
  guardedExporter = await startTestExporter(['--target', `redis://:${PASSWORD}@127.0.0.1:${guarded.port}`]);
  exporters.push(primaryExporter, replicaExporter, guardedExporter);
  await Promise.all(exporters.map((e) => e.waitUp()));
}, 60000);

afterAll(async () => {
  await Promise.all(exporters.map((e) => e.stop()));
  await Promise.all([primary?.stop(), replica?.stop(), guarded?.stop()]);
});

test('the primary’s page: UP, its node, and the shard as primary', async () => {
  const dom = await dumpDom(pageUrl(primaryExporter));
  expect(textOf(dom, /<span class="badge up" id="health">/)).toBe('UP');
  expect(shardRows(dom)).toEqual([[expect.any(String), 'primary', 'primary (master)']]);
  expect(dom).toContain(`redis://127.0.0.1:${primary.port}`);
  expect(dom).toMatch(/Datastore<\/dt><dd>redis 7\./);
  const png = await screenshot(pageUrl(primaryExporter), join(OUTPUT, 'status-page-primary.png'));
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  expect(png.readUInt32BE(16)).toBe(PHONE.width);
});

test('the replica’s page: the same shard, as secondary', async () => {
  const dom = await dumpDom(pageUrl(replicaExporter));
  expect(textOf(dom, /<span class="badge up" id="health">/)).toBe('UP');
  expect(shardRows(dom)).toEqual([[expect.any(String), 'secondary', 'secondary (slave)']]);
  await screenshot(pageUrl(replicaExporter), join(OUTPUT, 'status-page-replica.png'));
});

test('markup in datastore-controlled text stays text in the browser’s DOM', async () => {
  const dom = await dumpDom(pageUrl(primaryExporter));
  // The browser decoded the attribute to the real id, and serialises the cell's text escaped again:
  // had the page let the markup through, the DOM would hold a <b> element.
  const rows = shardRows(dom);
  expect(rows).toHaveLength(1);
  expect(rows[0]![0]).toBe('&lt;b&gt;cache&lt;/b&gt;&amp;&quot;eu&quot;');
  expect(dom).not.toMatch(/<b>|<\/b>/);
  expect(textOf(dom, /<td class="shard"[^>]*>/)).toBe('&lt;b&gt;cache&lt;/b&gt;&amp;"eu"');
});

test('a datastore that goes down: DOWN, the error, the target redacted, no stale shard rows', async () => {
  const before = (await dumpDom(pageUrl(guardedExporter))).length;
  expect(before).toBeGreaterThan(0);
  await guarded!.stop();
  guarded = undefined;
  await waitFor(
    'the collector to see the datastore down',
    () => !guardedExporter.collector.state.up,
    15000,
    50,
  );
  // The error shown is the collector's; which one depends on the moment (the connection closing, then
  // refused reconnects), so it is read around the browser's request.
  const errorBefore = guardedExporter.collector.state.lastError;
  const dom = await dumpDom(pageUrl(guardedExporter));
  const errorAfter = guardedExporter.collector.state.lastError;
  expect(textOf(dom, /<span class="badge down" id="health">/)).toBe('DOWN');
  const shown = textOf(dom, /<span class="error">/)
    ?.replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  expect(shown).toBeTruthy();
  expect([errorBefore, errorAfter]).toContain(shown);
  expect(dom).toContain(':REDACTED@127.0.0.1:');
  expect(dom).not.toContain(PASSWORD);
  expect(shardRows(dom)).toEqual([]);
  await screenshot(pageUrl(guardedExporter), join(OUTPUT, 'status-page-down.png'));
});

test('?refresh=5 makes the page reload itself, still without any script', async () => {
  const dom = await dumpDom(`${pageUrl(primaryExporter)}?refresh=5`);
  expect(dom).toContain('<meta http-equiv="refresh" content="5">');
  expect(dom).not.toContain('<script');
});
