/**
 * When the heartbeat writer writes (src/core/heartbeat.ts): off the wall clock's multiples of the
 * interval by half an interval (at most half a second), so never on the whole seconds where cron
 * starts every collection.
 * Jest's fake clock drives Date.now and the timers together, so the write times are exact.
 */
import { HeartbeatWriter, msUntilNextHeartbeat } from '../src/core/heartbeat';
import type { HeartbeatRecord } from '../src/core/model';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined };

describe('msUntilNextHeartbeat', () => {
  test('aims at half an interval (at most half a second) past each multiple of the interval', () => {
    expect(msUntilNextHeartbeat(10_000, 500)).toBe(250);
    expect(msUntilNextHeartbeat(10_100, 500)).toBe(150);
    expect(msUntilNextHeartbeat(10_300, 500)).toBe(450);
    expect(msUntilNextHeartbeat(10_000, 1000)).toBe(500);
    expect(msUntilNextHeartbeat(10_900, 1000)).toBe(600);
    // Longer intervals: half a second past (half of 2 s would be a whole second again).
    expect(msUntilNextHeartbeat(10_000, 2000)).toBe(500);
    expect(msUntilNextHeartbeat(10_000, 5000)).toBe(500);
    expect(msUntilNextHeartbeat(11_000, 5000)).toBe(4500);
  });

  test('a timer that fired a little late waits the rest of the interval; a little early, one more interval', () => {
    expect(msUntilNextHeartbeat(10_253, 500)).toBe(497);
    expect(msUntilNextHeartbeat(10_249, 500)).toBe(501);
    expect(msUntilNextHeartbeat(10_250, 500)).toBe(500);
  });
});

describe('HeartbeatWriter', () => {
  afterEach(() => jest.useRealTimers());

  test('started at any moment, it writes at .250 and .750 of each second with a 500 ms interval', async () => {
    jest.useFakeTimers({ now: 1_800_000_000_123 });
    const written: number[] = [];
    const store = {
      write: async (_shard: string | undefined, record: HeartbeatRecord) => {
        written.push(record.timestampSeconds * 1000);
        await Promise.resolve();
      },
    };
    const writer = new HeartbeatWriter(
      store,
      () => ({ nodeId: 'n1', primaryShardIds: [undefined] }),
      500,
      400,
      silent,
    );
    writer.start();
    await jest.advanceTimersByTimeAsync(3000);
    writer.stop();
    await jest.advanceTimersByTimeAsync(2000);
    expect(written.map((ms) => ms % 1000)).toEqual([250, 750, 250, 750, 250, 750]);
    expect(written[0]).toBe(1_800_000_000_250);
  });

  test('a tick that ran late does not shift the writes after it', async () => {
    jest.useFakeTimers({ now: 1_800_000_000_000 });
    const written: number[] = [];
    let blockUntil = 0;
    const store = {
      write: async (_shard: string | undefined, record: HeartbeatRecord) => {
        written.push(record.timestampSeconds * 1000);
        // The first write is slow (a busy datastore): the next tick is skipped, not delayed.
        if (blockUntil === 0) {
          blockUntil = Date.now() + 700;
          await new Promise((r) => setTimeout(r, 700));
        }
      },
    };
    const writer = new HeartbeatWriter(
      store,
      () => ({ nodeId: 'n1', primaryShardIds: ['s'] }),
      500,
      2000,
      silent,
    );
    writer.start();
    await jest.advanceTimersByTimeAsync(2600);
    writer.stop();
    expect(written.map((ms) => ms % 1000)).toEqual([250, 250, 750, 250]);
  });
});
