/**
 * A target URL pointed at another datastore's port says so (src/drivers/shared/peer-check.ts), instead
 * of the client library's "timeout expired" or "socket closed unexpectedly". Against real servers:
 * Redis, PostgreSQL, MariaDB and etcd (an HTTP server), each identified, and exporters with the wrong
 * scheme for each port. A healthy server of the expected kind never gets a note, nor junk it would log.
 */
import { createServer, type Server } from 'node:net';
import type { Driver, DriverLogger, MemberList, Observation } from '../src/core/model';
import {
  classifyReply,
  identifyPeer,
  withPeerCheck,
  type PeerIdentity,
} from '../src/drivers/shared/peer-check';
import { startEtcdCluster, type EtcdCluster } from './support/etcd';
import { startTestExporter, type TestExporter } from './support/exporter';
import { startMariadb, type MariadbNode } from './support/mariadb';
import { startPgCluster, type PgCluster } from './support/postgres';
import { freePort, waitFor } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';

describe('classifyReply: what the first bytes say', () => {
  function mysqlPacket(payload: Buffer): Buffer {
    return Buffer.concat([Buffer.from([payload.length & 0xff, payload.length >> 8, 0, 0]), payload]);
  }

  test.each<[string, Buffer, PeerIdentity | undefined]>([
    [
      'a MariaDB handshake',
      mysqlPacket(
        Buffer.from('\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00\x01\x02\x03\x04abcdefgh\x00', 'latin1'),
      ),
      { protocol: 'mysql', description: 'MySQL/MariaDB (10.11.6-MariaDB-0+deb12u1)' },
    ],
    [
      'a MySQL handshake',
      mysqlPacket(Buffer.from('\x0a8.0.36\x00\x01\x02\x03\x04', 'latin1')),
      { protocol: 'mysql', description: 'MySQL/MariaDB (8.0.36)' },
    ],
    [
      'a MySQL error packet instead of a handshake',
      mysqlPacket(Buffer.from("\xff\x6a\x04Host '10.0.0.1' is not allowed to connect", 'latin1')),
      { protocol: 'mysql', description: 'MySQL/MariaDB' },
    ],
    ['PostgreSQL refusing TLS', Buffer.from('N'), { protocol: 'postgresql', description: 'PostgreSQL' }],
    ['PostgreSQL accepting TLS', Buffer.from('S'), { protocol: 'postgresql', description: 'PostgreSQL' }],
    ['Redis', Buffer.from('+PONG\r\n'), { protocol: 'redis', description: 'Redis' }],
    [
      'Redis with a password',
      Buffer.from('-NOAUTH Authentication required.\r\n'),
      { protocol: 'redis', description: 'Redis' },
    ],
    [
      'an HTTP server',
      Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n'),
      { protocol: 'http', description: 'an HTTP server' },
    ],
    ['nothing', Buffer.alloc(0), undefined],
    ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), undefined],
    ['two bytes', Buffer.from('NN'), undefined],
    ['a TLS alert', Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]), undefined],
  ])('%s', (_name, bytes, expected) => {
    expect(classifyReply(bytes)).toEqual(expected);
  });
});

describe('withPeerCheck: when it looks, and what it says', () => {
  /** Connects fail or succeed in the order given; observe() fails with the next of `observeFailures`. */
  function fakeDriver(
    failures: (Error | undefined)[],
    observeFailures: (Error | undefined)[] = [],
  ): Driver & { connects: number } {
    let observes = 0;
    const driver = {
      connects: 0,
      async connect() {
        const failure = failures[driver.connects++];
        if (failure) throw failure;
      },
      async observe(): Promise<Observation> {
        const failure = observeFailures[observes++];
        if (failure) throw failure;
        return { datastore: 'fake', version: '1', shards: [], performance: {} };
      },
      close: () => Promise.resolve(),
    };
    return driver;
  }
  const logger = (): DriverLogger & { warnings: string[] } => {
    const warnings: string[] = [];
    return { warnings, debug: () => undefined, info: () => undefined, warn: (m) => warnings.push(m) };
  };
  const settle = () => new Promise((r) => setImmediate(r));

  test('a timeout: one check in the background, a warning, then the note on the next failures', async () => {
    const timeout = new Error('timeout expired');
    const driver = fakeDriver([timeout, timeout, timeout, undefined, timeout]);
    const log = logger();
    const asked: unknown[][] = [];
    const checked = withPeerCheck(driver, {
      protocol: 'postgresql',
      datastore: 'PostgreSQL',
      target: { host: 'db.example', port: 6379 },
      logger: log,
      identify: async (...args) => {
        asked.push(args);
        return { protocol: 'redis', description: 'Redis' };
      },
    });
    // The failing connect itself is not delayed or changed: the check runs after it.
    await expect(checked.connect()).rejects.toThrow(/^timeout expired$/);
    await settle();
    expect(asked).toEqual([['db.example', 6379, 'postgresql']]);
    const note =
      "the server at db.example:6379 is not PostgreSQL: it answers as Redis; check the target's host and port";
    expect(log.warnings).toEqual([note]);
    await expect(checked.connect()).rejects.toThrow(`timeout expired (${note})`);
    await expect(checked.connect()).rejects.toThrow(`timeout expired (${note})`);
    // Still one check for the whole run of failures; a successful observation clears the note.
    expect(asked).toHaveLength(1);
    await checked.connect();
    await checked.observe();
    await expect(checked.connect()).rejects.toThrow(/^timeout expired$/);
    await settle();
    expect(asked).toHaveLength(2);
  });

  test('a client that connects to anything and fails on its first exchange is checked too', async () => {
    const log = logger();
    const reset = new Error('read ECONNRESET');
    const checked = withPeerCheck(
      fakeDriver([undefined, undefined, undefined], [reset, reset, undefined, reset]),
      {
        protocol: 'redis',
        datastore: 'Redis',
        target: { host: '::1', port: 3306 },
        logger: log,
        identify: async () => ({ protocol: 'mysql', description: 'MySQL/MariaDB (8.0.36)' }),
      },
    );
    await checked.connect();
    await expect(checked.observe()).rejects.toBe(reset);
    await settle();
    const note =
      "the server at [::1]:3306 is not Redis: it answers as MySQL/MariaDB (8.0.36); check the target's host and port";
    expect(log.warnings).toEqual([note]);
    await checked.connect();
    await expect(checked.observe()).rejects.toThrow(`read ECONNRESET (${note})`);
    // Once an observation succeeded on a connection, its later failures are the datastore's own.
    await checked.connect();
    await checked.observe();
    await expect(checked.observe()).rejects.toBe(reset);
  });

  test('the expected kind, or nothing identified: no note', async () => {
    for (const peer of [{ protocol: 'redis', description: 'Redis' } as const, undefined]) {
      const log = logger();
      const checked = withPeerCheck(
        fakeDriver([new Error('Socket closed unexpectedly'), new Error('x closed')]),
        {
          protocol: 'redis',
          datastore: 'Redis',
          target: { host: '127.0.0.1', port: 6379 },
          logger: log,
          identify: async () => peer,
        },
      );
      await expect(checked.connect()).rejects.toThrow(/^Socket closed unexpectedly$/);
      await settle();
      await expect(checked.connect()).rejects.toThrow(/^x closed$/);
      expect(log.warnings).toEqual([]);
    }
  });

  test('heartbeat and members() pass through; absent stays absent', async () => {
    const heartbeat = { write: async () => undefined, read: async () => undefined };
    const full = Object.assign(fakeDriver([]), {
      heartbeat,
      members: async (): Promise<MemberList> => ({ members: [], complete: true }),
    });
    const opts = { datastore: 'Redis', target: { host: 'h', port: 1 }, logger: logger() };
    const wrapped = withPeerCheck(full, opts);
    expect(wrapped.heartbeat).toBe(heartbeat);
    expect(await wrapped.members!()).toEqual({ members: [], complete: true });
    const bare = withPeerCheck(fakeDriver([]), opts);
    expect(bare.heartbeat).toBeUndefined();
    expect(bare.members).toBeUndefined();
  });

  test('no check for a refused connection or an error the datastore answered itself', async () => {
    const answered = Object.assign(new Error('password authentication failed for user "u"'), {
      severity: 'FATAL',
    });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    let asked = 0;
    const checked = withPeerCheck(fakeDriver([answered, refused]), {
      protocol: 'postgresql',
      datastore: 'PostgreSQL',
      target: { host: '127.0.0.1', port: 5432 },
      logger: logger(),
      identify: async () => {
        asked++;
        return undefined;
      },
    });
    await expect(checked.connect()).rejects.toBe(answered);
    await expect(checked.connect()).rejects.toBe(refused);
    await settle();
    expect(asked).toBe(0);
  });
});

test('a server that drops every connection at once costs one connection, not two', async () => {
  let connections = 0;
  const dropping = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  const port = await new Promise<number>((resolve) =>
    dropping.listen(0, '127.0.0.1', () => resolve((dropping.address() as { port: number }).port)),
  );
  try {
    expect(await identifyPeer('127.0.0.1', port, 'redis')).toBeUndefined();
    expect(connections).toBe(1);
  } finally {
    dropping.close();
  }
});

describe('against real servers', () => {
  let redis: RedisNode;
  let pg: PgCluster;
  let maria: MariadbNode;
  let etcd: EtcdCluster;
  let silent: Server;
  let silentPort: number;
  const exporters: TestExporter[] = [];

  beforeAll(async () => {
    [redis, pg, maria, etcd] = await Promise.all([
      freePort().then((p) => startRedis(p, ['--requirepass', 'peer-check-pw'])),
      freePort().then((p) => startPgCluster({ primaryPort: p, standbys: [] })),
      freePort().then((p) => startMariadb(p, 1)),
      startEtcdCluster(1),
    ]);
    // A user allowed from 127.0.0.1, so that MariaDB greets TCP clients with its handshake (no user for
    // the host: it sends an error packet instead, which is recognised too).
    maria.sql("CREATE USER 'peer'@'127.0.0.1' IDENTIFIED BY 'peer-pw'");
    // Stands in for ZooKeeper, Kafka or MongoDB: accepts, reads, says nothing, closes.
    silent = createServer((socket) => {
      socket.on('data', () => socket.destroy());
      socket.on('error', () => undefined);
    });
    silentPort = await new Promise<number>((resolve) =>
      silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)),
    );
  }, 120000);

  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await Promise.all([redis?.stop(), pg?.stop(), maria?.stop(), etcd?.stop()]);
    silent?.close();
  });

  test('identifyPeer names each server, whichever protocol is expected', async () => {
    const ports: [string, number][] = [
      ['redis', redis.port],
      ['postgresql', pg.primary.port],
      ['mysql', maria.port],
      ['http', etcd.members[0]!.clientPort],
    ];
    for (const expected of [undefined, 'redis', 'postgresql', 'mysql', 'http'] as const) {
      for (const [protocol, port] of ports) {
        const peer = await identifyPeer('127.0.0.1', port, expected);
        expect({ expected, port: protocol, found: peer?.protocol }).toEqual({
          expected,
          port: protocol,
          found: protocol,
        });
      }
      expect(await identifyPeer('127.0.0.1', silentPort, expected)).toBeUndefined();
    }
    expect((await identifyPeer('127.0.0.1', maria.port))?.description).toMatch(/^MySQL\/MariaDB \(10\.\d+/);
    // Nothing listening: undefined, quickly (one refused connection, no second try).
    expect(await identifyPeer('127.0.0.1', await freePort())).toBeUndefined();
  });

  test("PostgreSQL, checked as expected, sees only libpq's own opening: nothing in its log", async () => {
    const logged = (): string => pg.primary.process.output();
    const before = logged().length;
    for (let i = 0; i < 3; i++) await identifyPeer('127.0.0.1', pg.primary.port, 'postgresql');
    // (Checked as another kind, a PostgreSQL port gets the text line first, which it does log.)
    await identifyPeer('127.0.0.1', pg.primary.port, 'redis');
    await waitFor(
      'the text line to be logged',
      () => /invalid length of startup packet/.test(logged().slice(before)),
      5000,
    );
    const lines = logged()
      .slice(before)
      .split('\n')
      .filter((l) => /startup packet/.test(l));
    expect(lines).toHaveLength(1);
  });

  test('MariaDB, checked as expected, counts one early-closed connection per check, no failed login', async () => {
    const before = maria.globalStatus('Aborted_connects');
    const deniedBefore = maria.globalStatus('Access_denied_errors');
    await identifyPeer('127.0.0.1', maria.port, 'mysql');
    await waitFor(
      'the aborted connect to be counted',
      () => maria.globalStatus('Aborted_connects') > before,
      5000,
    );
    expect(maria.globalStatus('Aborted_connects') - before).toBe(1);
    expect(maria.globalStatus('Access_denied_errors')).toBe(deniedBefore);
  });

  test.each([
    ['postgresql', 'PostgreSQL', () => redis.port, /it answers as Redis/],
    ['mysql', 'MySQL', () => pg.primary.port, /it answers as PostgreSQL/],
    ['redis', 'Redis', () => maria.port, /it answers as MySQL\/MariaDB \(10\./],
    ['etcd', 'etcd', () => redis.port, /it answers as Redis/],
    ['postgresql', 'PostgreSQL', () => etcd.members[0]!.clientPort, /it answers as an HTTP server/],
  ])('a %s:// target at another kind of port says it is not %s', async (scheme, name, port, answer) => {
    const exporter = await startTestExporter([
      '--target',
      `${scheme}://u:not-the-password@127.0.0.1:${port()}`,
      '--collect.timeout',
      '900ms',
    ]);
    exporters.push(exporter);
    const note = `the server at 127.0.0.1:${port()} is not ${name}: `;
    // Logged as soon as the check ends, then part of every later error (the status page shows it).
    const warning = await waitFor(
      'the warning',
      () => exporter.logs.find((l) => l.includes('level=warn') && l.includes(note)),
      15000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; logs:\n${exporter.logs.join('\n')}`);
    });
    expect(warning).toMatch(answer);
    const error = await waitFor(
      `the note in the error (last: ${exporter.collector.state.lastError})`,
      () =>
        exporter.collector.state.lastError?.includes(note) ? exporter.collector.state.lastError : undefined,
      15000,
    );
    expect(error).toMatch(answer);
    expect(error).toMatch(/check the target's host and port\)$/);
    expect(exporter.logs.join('\n') + error).not.toContain('not-the-password');
  });

  test('the right server with the wrong password: its own error, no note', async () => {
    const exporter = await startTestExporter([
      '--target',
      `postgresql://postgres:wrong-pw@127.0.0.1:${pg.primary.port}/postgres`,
    ]);
    exporters.push(exporter);
    await exporter.nextCollections(3);
    expect(exporter.collector.state.lastError).toMatch(/password authentication failed/);
    expect(exporter.logs.join('\n')).not.toMatch(/is not PostgreSQL/);
    const redisExporter = await startTestExporter(['--target', `redis://:wrong-pw@127.0.0.1:${redis.port}`]);
    exporters.push(redisExporter);
    await redisExporter.nextCollections(3);
    expect(redisExporter.collector.state.lastError).toMatch(/WRONGPASS|invalid username-password/);
    expect(redisExporter.logs.join('\n')).not.toMatch(/is not Redis/);
  });
});
