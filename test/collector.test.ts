/**
 * The collector loop's reconnect policy, against a real TCP endpoint that accepts and drops every
 * connection (a datastore that is "up" at the TCP level but never answers the protocol), and against
 * a real, hung redis-server (SIGSTOP): what the self-metrics say about the failed attempts.
 */
import { createServer, type Server } from 'node:net';
import { Collector, cronPattern } from '../src/core/collector';
import { DEFAULT_DEADLINE_CEILING_FACTOR } from '../src/core/deadline';
import { resolveSnapshot, type IdentityOptions } from '../src/core/identity';
import { createLogger } from '../src/core/logger';
import type { Driver, Observation } from '../src/core/model';
import { startTestExporter } from './support/exporter';
import { find, value } from './support/metrics-text';
import { freePort, sleep, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';

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
      // 1 s interval for 7.5 s: about 8 attempts without backoff; with 1, 2, 4, 4 s waits about 4. Each
      // also sees ONE more connection: the check of what answers on the port after the first failure
      // (src/drivers/shared/peer-check.ts), once per run of failures.
      expect(fast.connections()).toBeGreaterThanOrEqual(6);
      expect(slow.connections()).toBeGreaterThanOrEqual(2);
      expect(slow.connections()).toBeLessThanOrEqual(5 + 1);
      for (const [e, endpoint] of [
        [noBackoff, fast],
        [backoff, slow],
      ] as const) {
        const s = await e.scrape();
        expect(value(s, 'datastore_up')).toBe(0);
        expect(find(s, 'datastore_shard_role')).toHaveLength(0);
        // Each failed attempt counts once; a tick skipped while backing off is no attempt, no error.
        const errors = value(s, 'datastore_exporter_collect_errors_total');
        // (Less the one connection of the peer check, which is not a collection.)
        expect(Math.abs(errors - (endpoint.connections() - 1))).toBeLessThanOrEqual(1);
      }
      expect(value(await backoff.scrape(), 'datastore_exporter_collect_errors_total')).toBeLessThanOrEqual(5);
    } finally {
      await noBackoff.stop();
      await backoff.stop();
      fast.server.close();
      slow.server.close();
    }
  });

  describe('identity', () => {
    const target = { host: 'db.example.net', port: 6379 };
    const observation = (extra: Partial<Observation> = {}): Observation => ({
      datastore: 'redis',
      version: '7.0.15',
      shards: [{ role: 'primary' }],
      performance: {},
      replicationGroup: 'g1',
      ...extra,
    });

    test('cluster id: --cluster-id, else the datastore own, else the fallback; the source says which', () => {
      const resolve = (obs: Observation, opts: Partial<IdentityOptions> = {}) =>
        resolveSnapshot(obs, { target, ...opts }, 0);
      expect(resolve(observation({ nativeClusterId: 'c1' }))).toMatchObject({
        clusterId: 'c1',
        clusterIdSource: 'datastore',
        replicationGroup: undefined,
        shards: [{ id: 'c1' }],
      });
      expect(resolve(observation({ nativeClusterId: 'c1' }), { clusterId: 'cache' })).toMatchObject({
        clusterId: 'cache',
        clusterIdSource: 'flag',
        replicationGroup: 'g1',
        shards: [{ id: 'cache' }],
      });
      expect(resolve(observation())).toMatchObject({
        clusterId: 'default',
        clusterIdSource: 'fallback',
        replicationGroup: 'g1',
        shards: [{ id: 'default' }],
      });
      expect(resolve(observation(), { fallbackClusterId: 'release-7' })).toMatchObject({
        clusterId: 'release-7',
        clusterIdSource: 'fallback',
      });
      // The fallback never wins over the datastore's own identity.
      expect(
        resolve(observation({ nativeClusterId: 'c1' }), { fallbackClusterId: 'release-7' }).clusterId,
      ).toBe('c1');
    });

    async function logsOf(
      identity: Partial<IdentityOptions>,
      obs: Observation,
      advice?: string,
    ): Promise<string[]> {
      const lines: string[] = [];
      const driver: Driver = {
        connect: async () => undefined,
        observe: async () => obs,
        close: async () => undefined,
      };
      const collector = new Collector(driver, {
        intervalSeconds: 1,
        timeoutMs: 1000,
        maxBackoffSeconds: 1,
        identity: { target, ...identity },
        logger: createLogger('debug', 'logfmt', (l) => lines.push(l)),
        clusterIdAdvice: advice,
      });
      for (let i = 0; i < 3; i++) await collector.collect();
      expect(collector.state.up).toBe(true);
      return lines.filter((l) => /cluster identity/.test(l));
    }

    test('the built-in default is warned about once, naming --cluster-id; a chosen fallback is an info line; none otherwise', async () => {
      const warned = await logsOf({}, observation());
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatch(
        /level=warn .*cluster_id is \\"default\\".*--cluster-id.*cluster_id_source=fallback/,
      );
      const chosen = await logsOf({ fallbackClusterId: 'release-7' }, observation());
      expect(chosen).toHaveLength(1);
      expect(chosen[0]).toMatch(/level=info .*cluster_id=release-7/);
      expect(await logsOf({}, observation({ nativeClusterId: 'c1' }))).toEqual([]);
      expect(await logsOf({ clusterId: 'cache' }, observation())).toEqual([]);
      const probed = await logsOf({}, observation(), 'relabel cluster_id in the scrape job');
      expect(probed[0]).toMatch(/relabel cluster_id in the scrape job/);
    });
  });

  describe('a hung server (SIGSTOP) with backoff', () => {
    let redis: RedisNode;
    beforeAll(async () => {
      redis = await startRedis(await freePort());
    });
    afterAll(async () => {
      await redis?.stop();
    });

    test('each failed attempt is one error; skipped ticks neither add errors nor zero the duration', async () => {
      const exporter = await startTestExporter(['--target', redis.url, '--collect.max-backoff', '4s']);
      try {
        await exporter.waitUp();
        redis.process.pause();
        const errorsAt = async (): Promise<number> =>
          value(await exporter.scrape(), 'datastore_exporter_collect_errors_total');
        await waitFor('the first failure', async () => (await errorsAt()) >= 1, 5000, 50);
        // Every scrape for 9 s (backoff 1, 2, 4, 4 s after the failures; each attempt waits for the
        // 800 ms deadline): the duration stays the last attempt's, the errors grow by attempts.
        const durations: number[] = [];
        const end = Date.now() + 9000;
        while (Date.now() < end) {
          durations.push(value(await exporter.scrape(), 'datastore_exporter_collect_duration_seconds'));
          await sleep(100);
        }
        const errors = await errorsAt();
        // The attempts as the collector logged them: the first at warn, the rest at debug.
        const attempts = exporter.logs.filter((l) => /msg="collection failed"/.test(l)).length;
        console.log(
          `hung server: ${attempts} failed attempts logged, errors_total ${errors}, durations ${Math.min(...durations).toFixed(3)}-${Math.max(...durations).toFixed(3)} s over ${durations.length} scrapes`,
        );
        expect(errors).toBe(attempts);
        // 9-10 s of backoff 1, 2, 4, 4 (each attempt + 0.8 s): 4 or 5 attempts, not one per tick (10).
        expect(errors).toBeGreaterThanOrEqual(3);
        expect(errors).toBeLessThanOrEqual(6);
        // Each attempt hit the deadline; the duration never reads 0 while skipped ticks pass. The
        // deadline counts free event-loop time, so on a loaded machine it may stretch, never past its
        // ceiling (core/deadline.ts).
        for (const d of durations) {
          expect(d).toBeGreaterThanOrEqual(0.75);
          expect(d).toBeLessThan(DEFAULT_DEADLINE_CEILING_FACTOR * 0.8 + 0.3);
        }
        expect(value(await exporter.scrape(), 'datastore_up')).toBe(0);
      } finally {
        redis.process.resume();
        await exporter.stop();
      }
    });
  });
});
