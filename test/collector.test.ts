/**
 * The collector loop's reconnect policy, against a real TCP endpoint that accepts and drops every
 * connection (a datastore that is "up" at the TCP level but never answers the protocol).
 */
import { createServer, type Server } from 'node:net';
import { cronPattern } from '../src/core/collector';
import { startTestExporter } from './support/exporter';
import { find, value } from './support/metrics-text';
import { sleep } from './support/processes';

function droppingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((sock) => {
    count++;
    sock.destroy();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port, connections: () => count }),
    ),
  );
}

describe('collector', () => {
  test('cron patterns: seconds field below a minute, minutes field above', () => {
    expect(cronPattern(5)).toBe('*/5 * * * * *');
    expect(cronPattern(1)).toBe('*/1 * * * * *');
    expect(cronPattern(120)).toBe('0 */2 * * * *');
  });

  test('after failures, reconnect attempts back off (doubling from one interval up to --collect.max-backoff)', async () => {
    const fast = await droppingServer();
    const slow = await droppingServer();
    // Same failing endpoint kind, same interval: one without backoff beyond the interval, one with 4 s.
    const noBackoff = await startTestExporter(['--target', `redis://127.0.0.1:${fast.port}`]);
    const backoff = await startTestExporter([
      '--target',
      `redis://127.0.0.1:${slow.port}`,
      '--collect.max-backoff',
      '4s',
    ]);
    try {
      await sleep(7500);
      // 1 s interval for 7.5 s: about 8 attempts without backoff; with 1, 2, 4, 4 s waits about 4.
      expect(fast.connections()).toBeGreaterThanOrEqual(6);
      expect(slow.connections()).toBeGreaterThanOrEqual(2);
      expect(slow.connections()).toBeLessThanOrEqual(5);
      for (const e of [noBackoff, backoff]) {
        const s = await e.scrape();
        expect(value(s, 'datastore_up')).toBe(0);
        expect(find(s, 'datastore_shard_role')).toHaveLength(0);
        // Every skipped tick is still a failed collection: nothing fresh was published.
        expect(value(s, 'datastore_exporter_collect_errors_total')).toBeGreaterThanOrEqual(6);
      }
    } finally {
      await noBackoff.stop();
      await backoff.stop();
      fast.server.close();
      slow.server.close();
    }
  });
});
