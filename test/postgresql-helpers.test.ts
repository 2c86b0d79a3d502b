/**
 * The PostgreSQL driver's pure parts: LSN arithmetic, the standby lag rules and the session settings.
 * The live behaviour of the same code is proven in postgresql.test.ts against real servers.
 */
import fc from 'fast-check';
import { ConfigError } from '../src/core/errors';
import type { Target } from '../src/core/model';
import { parseTarget } from '../src/core/target';
import { clientConfig, sslOptions } from '../src/drivers/postgresql/connection';
import { StandbyLag, WriteTransactionWatch, parseLsn, parseSnapshot } from '../src/drivers/postgresql/parse';

describe('parseLsn', () => {
  test('converts X/Y exactly to X * 2^32 + Y', () => {
    expect(parseLsn('0/0')).toBe(0);
    expect(parseLsn('0/1501570')).toBe(0x1501570);
    expect(parseLsn('16/B374D848')).toBe(0x16 * 2 ** 32 + 0xb374d848);
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffffffff * 2 ** 32 + 0xffffffff);
  });

  test('every LSN below 2^53 round-trips exactly (PostgreSQL prints %X/%X)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 21 - 1 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (hi, lo) => {
          const text = `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
          const n = parseLsn(text)!;
          expect(n).toBe(hi * 2 ** 32 + lo);
          expect(Math.floor(n / 2 ** 32)).toBe(hi);
          expect(n % 2 ** 32).toBe(lo);
        },
      ),
    );
  });

  test('NULL and anything that is not an LSN give undefined, never a number', () => {
    for (const bad of [null, undefined, '', '0', '/', '1/', '/1', 'G/0', '1/2/3', '123456789/0', ' x ']) {
      expect(parseLsn(bad)).toBeUndefined();
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        const n = parseLsn(s);
        expect(n === undefined || (Number.isInteger(n) && n >= 0)).toBe(true);
      }),
    );
  });
});

describe('StandbyLag', () => {
  const streaming = { streaming: true, receiveLsn: 100, replayLsn: 100 };

  test('streaming with everything received replayed is 0, however old the last commit', () => {
    const lag = new StandbyLag();
    for (const now of [1000, 1001, 5000]) {
      expect(lag.observe({ ...streaming, nowSeconds: now, lastReplayedCommitSeconds: 10 })).toBe(0);
    }
    // Also before any transaction was replayed (fresh standby, idle primary).
    expect(new StandbyLag().observe({ ...streaming, nowSeconds: 1000 })).toBe(0);
  });

  test('a receiver that restarted from the segment start (receive < replay) is still caught up', () => {
    expect(new StandbyLag().observe({ streaming: true, receiveLsn: 50, replayLsn: 100, nowSeconds: 1 })).toBe(
      0,
    );
  });

  test('replay behind what was received: now minus the last replayed commit time', () => {
    const lag = new StandbyLag();
    expect(
      lag.observe({
        streaming: true,
        receiveLsn: 200,
        replayLsn: 100,
        lastReplayedCommitSeconds: 997,
        nowSeconds: 1000,
      }),
    ).toBe(3);
  });

  test('after an idle stretch, lag counts from the moment the standby was last seen current', () => {
    const lag = new StandbyLag();
    // Idle for an hour, caught up; last commit long ago.
    expect(lag.observe({ ...streaming, nowSeconds: 3600, lastReplayedCommitSeconds: 0 })).toBe(0);
    // A new write arrives and waits (e.g. recovery_min_apply_delay): 1 s, not an hour.
    expect(
      lag.observe({
        streaming: true,
        receiveLsn: 200,
        replayLsn: 100,
        lastReplayedCommitSeconds: 0,
        nowSeconds: 3601,
      }),
    ).toBe(1);
  });

  test('not streaming: never 0 even when everything received is replayed; grows from the last moment seen current', () => {
    const lag = new StandbyLag();
    expect(lag.observe({ ...streaming, nowSeconds: 100, lastReplayedCommitSeconds: 50 })).toBe(0);
    expect(
      lag.observe({ ...streaming, streaming: false, nowSeconds: 105, lastReplayedCommitSeconds: 50 }),
    ).toBe(5);
    expect(
      lag.observe({ ...streaming, streaming: false, nowSeconds: 110, lastReplayedCommitSeconds: 50 }),
    ).toBe(10);
  });

  test('not streaming and never seen current: age of the last replayed commit, or absent if none', () => {
    expect(
      new StandbyLag().observe({
        streaming: false,
        receiveLsn: 100,
        replayLsn: 100,
        lastReplayedCommitSeconds: 40,
        nowSeconds: 100,
      }),
    ).toBe(60);
    expect(new StandbyLag().observe({ streaming: false, replayLsn: 100, nowSeconds: 100 })).toBeUndefined();
    expect(
      new StandbyLag().observe({ streaming: true, receiveLsn: 200, replayLsn: 100, nowSeconds: 100 }),
    ).toBeUndefined();
  });

  test('never negative (primary clock slightly ahead), and reset() forgets what was seen', () => {
    const lag = new StandbyLag();
    expect(
      lag.observe({ streaming: false, replayLsn: 1, lastReplayedCommitSeconds: 101, nowSeconds: 100 }),
    ).toBe(0);
    lag.observe({ ...streaming, nowSeconds: 200 });
    lag.reset();
    expect(lag.observe({ streaming: false, replayLsn: 1, nowSeconds: 300 })).toBeUndefined();
  });

  test('property: the result is undefined or a finite number >= 0, and 0 only when streaming', () => {
    const sample = fc.record({
      streaming: fc.boolean(),
      receiveLsn: fc.option(fc.nat(), { nil: undefined }),
      replayLsn: fc.option(fc.nat(), { nil: undefined }),
      lastReplayedCommitSeconds: fc.option(fc.double({ min: 0, max: 2e9, noNaN: true }), { nil: undefined }),
      nowSeconds: fc.double({ min: 0, max: 2e9, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 20 }), (samples) => {
        const lag = new StandbyLag();
        for (const s of samples) {
          const v = lag.observe(s);
          if (v === undefined) continue;
          expect(Number.isFinite(v) && v >= 0).toBe(true);
          const caughtUp =
            s.streaming &&
            s.receiveLsn !== undefined &&
            s.replayLsn !== undefined &&
            s.replayLsn >= s.receiveLsn;
          if (caughtUp) expect(v).toBe(0);
        }
      }),
    );
  });
});

describe("StandbyLag with the WAL receiver's message times", () => {
  const caughtUp = { streaming: true, receiveLsn: 100, replayLsn: 100, walReceiverTimeoutSeconds: 4 };

  test("the last message's transit time; under 0.1 s (clock noise) it is 0", () => {
    const lag = new StandbyLag();
    expect(
      lag.observe({ ...caughtUp, nowSeconds: 1000, lastMsgSendSeconds: 996.9, lastMsgReceiptSeconds: 999.9 }),
    ).toBeCloseTo(3, 6);
    expect(
      lag.observe({
        ...caughtUp,
        nowSeconds: 1001,
        lastMsgSendSeconds: 1000.95,
        lastMsgReceiptSeconds: 1001,
      }),
    ).toBe(0);
    // A receipt before the send (clocks apart): 0, not negative.
    expect(
      lag.observe({ ...caughtUp, nowSeconds: 1002, lastMsgSendSeconds: 1002, lastMsgReceiptSeconds: 1001.5 }),
    ).toBe(0);
  });

  test('a link silent for longer than wal_receiver_timeout / 2 + transit + 1 s counts from the last send', () => {
    const lag = new StandbyLag();
    const last = { lastMsgSendSeconds: 100, lastMsgReceiptSeconds: 100.01 };
    expect(lag.observe({ ...caughtUp, ...last, nowSeconds: 102.9 })).toBe(0); // 2.9 s: could be an idle primary
    expect(lag.observe({ ...caughtUp, ...last, nowSeconds: 103.1 })).toBeCloseTo(3.1, 6); // > 2 + 0.01 + 1
    expect(lag.observe({ ...caughtUp, ...last, nowSeconds: 110 })).toBeCloseTo(10, 6);
    // Without a timeout (0: off) silence cannot be told from an idle primary.
    expect(
      new StandbyLag().observe({ ...caughtUp, ...last, walReceiverTimeoutSeconds: 0, nowSeconds: 500 }),
    ).toBe(0);
  });
});

describe('WriteTransactionWatch', () => {
  const at = (nextXid: number, inProgress: number[] = [], heartbeats?: number, ownHeartbeats = 0) => ({
    nextXid: BigInt(nextXid),
    inProgress: inProgress.map(BigInt),
    heartbeats,
    ownHeartbeats,
  });

  test('a write transaction that ended since the last look, not one still running', () => {
    const w = new WriteTransactionWatch();
    expect(w.observe(at(100))).toBe(false); // first look: a baseline
    expect(w.observe(at(100))).toBe(false);
    expect(w.observe(at(101, [100]))).toBe(false); // assigned, still running
    expect(w.observe(at(101))).toBe(true); // it ended
    expect(w.observe(at(101))).toBe(false);
  });

  test("heartbeats are not writes: the row's seq (any exporter's), else this exporter's own", () => {
    const w = new WriteTransactionWatch();
    w.observe(at(100, [], 10));
    expect(w.observe(at(102, [], 12))).toBe(false); // two heartbeats
    expect(w.observe(at(105, [], 14))).toBe(true); // two heartbeats and a client write
    const own = new WriteTransactionWatch();
    own.observe(at(100, [], undefined, 5));
    expect(own.observe(at(101, [], undefined, 6))).toBe(false);
    expect(own.observe(at(103, [], undefined, 7))).toBe(true);
  });

  test('parseSnapshot: [xmax, ...xip] as text; anything else is undefined', () => {
    expect(parseSnapshot(['831', '829', '830'])).toEqual({ nextXid: 831n, inProgress: [829n, 830n] });
    expect(parseSnapshot(null)).toBeUndefined();
    expect(parseSnapshot(['x'])).toBeUndefined();
  });
});

describe('clientConfig', () => {
  const target = (url: string, passwordFromFile?: string): Target => parseTarget(url, passwordFromFile);

  test('one read-only session with a statement timeout, the connect timeout and the exporter name', () => {
    const c = clientConfig(target('postgresql://mon:urlpw@db.example:6543/app'), 800);
    expect(c).toMatchObject({
      host: 'db.example',
      port: 6543,
      user: 'mon',
      password: 'urlpw',
      database: 'app',
      application_name: 'datastore-exporter',
      connectionTimeoutMillis: 800,
      statement_timeout: 800,
      options: '-c default_transaction_read_only=on',
      ssl: false,
    });
  });

  test('the password file wins over the URL; the database defaults to postgres; postgres:// works', () => {
    const c = clientConfig(target('postgres://mon:urlpw@127.0.0.1', 'from-file'), 500);
    expect(c.password).toBe('from-file');
    expect(c.database).toBe('postgres');
    expect(c.port).toBe(5432);
  });

  test('URL query parameters cannot undo the read-only session or the timeouts', () => {
    // Refused when the target is parsed (at start-up), not silently ignored...
    for (const param of [
      'options=-c%20default_transaction_read_only%3Doff',
      'statement_timeout=0',
      'application_name=x',
    ]) {
      expect(() => target(`postgresql://mon@h/db?${param}`)).toThrow(
        /unknown URL parameter "\w+" \(supported: host, sslmode, sslrootcert\)/,
      );
    }
    // ...and never read by clientConfig, whatever the URL object holds.
    const t = target('postgresql://mon@h/db');
    t.url.search = '?options=-c%20default_transaction_read_only%3Doff&statement_timeout=0&application_name=x';
    const c = clientConfig(t, 800);
    expect(c.options).toBe('-c default_transaction_read_only=on');
    expect(c.statement_timeout).toBe(800);
    expect(c.application_name).toBe('datastore-exporter');
  });

  test('?host=/dir selects a Unix socket directory', () => {
    expect(clientConfig(target('postgresql://mon@localhost/db?host=/var/run/postgresql'), 800).host).toBe(
      '/var/run/postgresql',
    );
  });

  test('sslmode follows libpq', () => {
    expect(sslOptions(null, null, 'h')).toBe(false);
    expect(sslOptions('disable', null, 'h')).toBe(false);
    expect(sslOptions('require', null, 'h')).toEqual({ rejectUnauthorized: false });
    const full = sslOptions('verify-full', null, 'h') as Record<string, unknown>;
    expect(full.rejectUnauthorized).toBe(true);
    expect('checkServerIdentity' in full).toBe(false);
    const ca = sslOptions('verify-ca', null, 'h') as { checkServerIdentity?: () => unknown };
    expect(ca.checkServerIdentity?.()).toBeUndefined();
    expect(() => sslOptions('bogus', null, 'h')).toThrow(ConfigError);
    expect(() => sslOptions('verify-full', '/nonexistent/root.crt', 'h')).toThrow(/cannot read sslrootcert/);
  });
});
