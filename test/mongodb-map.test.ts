/**
 * MongoDB format tests. No MongoDB server can be installed here: the mapping is tested on responses
 * in MongoDB's documented formats (test/fixtures/mongodb, one file per topology case, each naming its
 * source), first through the pure mapper, then through the real driver logic (MongoDriver), the real
 * Collector and the real metrics layer, with a fake command runner in place of the official client.
 */
import fc from 'fast-check';
import { MongoServerError, Timestamp, type Document } from 'mongodb';
import { Collector } from '../src/core/collector';
import { createLogger } from '../src/core/logger';
import { PROMETHEUS_CONTENT_TYPE, renderSnapshot } from '../src/http/exposition';
import type { DriverOptions, Observation } from '../src/core/model';
import { parseTarget } from '../src/core/target';
import {
  MongoDriver,
  SERVER_STATUS_COMMAND,
  SERVER_STATUS_EXCLUDED_SECTIONS,
} from '../src/drivers/mongodb/driver';
import {
  commitOffsetOf,
  mapObservation,
  opTimeOf,
  timestampParts,
  toNumber,
  type MongoResponses,
} from '../src/drivers/mongodb/parse';
import { find, parseExposition, roleOf, value } from './support/metrics-text';
import { commandName, fakeMongo, fixtureNames, loadFixture, responsesOf } from './support/mongodb';

const OWN = 2;

function map(name: string, mode: 'canonical' | 'relaxed', writesAdvancedAtSeconds?: number): Observation {
  return mapObservation(responsesOf(loadFixture(name, mode)), {
    ownConnections: OWN,
    writesAdvancedAtSeconds,
  });
}

function onlyShard(obs: Observation) {
  expect(obs.shards).toHaveLength(1);
  return obs.shards[0]!;
}

test('every fixture names its source and holds the four command replies', () => {
  const names = fixtureNames();
  expect(names.length).toBeGreaterThanOrEqual(15);
  for (const name of names) {
    const f = loadFixture(name);
    expect(f._source.length).toBeGreaterThan(20);
    for (const key of ['hello', 'replSetGetStatus', 'serverStatus', 'buildInfo'] as const) {
      expect(typeof f[key]).toBe('object');
    }
  }
});

// Every case twice: 64-bit integers as bson Long objects, and as plain numbers (the driver's default).
describe.each(['canonical', 'relaxed'] as const)('mapping with %s Extended JSON', (mode) => {
  test('primary (7.0): role, identity, own optime as last-op and commit offset, no lag', () => {
    const obs = map('primary', mode);
    expect(obs.datastore).toBe('mongodb');
    expect(obs.version).toBe('7.0.12');
    expect(obs.nativeClusterId).toBe('replset');
    expect(obs.nativeNodeId).toBe('m1.example.net:27017');
    expect(onlyShard(obs)).toEqual({
      id: 'replset',
      role: 'primary',
      nativeRole: 'PRIMARY',
      lastOperationTimestampSeconds: 1723763173,
      commitOffset: { value: 1723763173_000001, unit: 'oplog_timestamp' },
    });
    // connections.current 17 minus the exporter's 2; reads query+getmore; writes insert+update+delete.
    expect(obs.performance).toEqual({
      clientsConnected: 15,
      readsTotal: 1200 + 9000,
      writesTotal: 3000 + 450 + 25,
    });
  });

  test('secondary (4.0 manual example): own optime ahead of the heartbeat-old primary optime is lag 0', () => {
    const obs = map('secondary-4.0', mode);
    expect(obs.nativeNodeId).toBe('m2.example.net:27017');
    const shard = onlyShard(obs);
    expect(shard).toMatchObject({ id: 'replset', role: 'secondary', nativeRole: 'SECONDARY' });
    expect(shard.lagSeconds).toBe(0);
    expect(shard.lastOperationTimestampSeconds).toBe(1543869234);
    expect(obs.version).toBe('4.0.28');
    // Replicated writes (opcountersRepl) count as writes of this node.
    expect(obs.performance).toEqual({
      clientsConnected: 7,
      readsTotal: 340 + 12,
      writesTotal: 5120 + 733 + 41,
    });
  });

  test('secondary behind a known primary: lag is primary optime minus own optime, in seconds', () => {
    const shard = onlyShard(map('secondary-lagging', mode));
    expect(shard).toMatchObject({ id: 'replset', role: 'secondary', lagSeconds: 7 });
    expect(shard.lastOperationTimestampSeconds).toBe(1723763166);
    expect(shard.commitOffset).toEqual({ value: 1723763166_000012, unit: 'oplog_timestamp' });
  });

  test('secondary with no primary known: lag absent (never a fake 0), last-op still known', () => {
    const shard = onlyShard(map('secondary-no-primary', mode));
    expect(shard.role).toBe('secondary');
    expect(shard).not.toHaveProperty('lagSeconds');
    expect(shard.lastOperationTimestampSeconds).toBe(1723763166);
  });

  test('3.0 optimes (bare Timestamps) map like {ts, t} ones', () => {
    const obs = map('secondary-3.0', mode);
    expect(obs.nativeClusterId).toBe('mydata');
    expect(obs.nativeNodeId).toBe('mongo2:27017');
    expect(onlyShard(obs)).toEqual({
      id: 'mydata',
      role: 'secondary',
      nativeRole: 'SECONDARY',
      lagSeconds: 1537670465 - 1537670461,
      lastOperationTimestampSeconds: 1537670461,
      commitOffset: { value: 1537670461_000007, unit: 'oplog_timestamp' },
    });
  });

  test('arbiter: role unknown, no optime so no lag, no last-op, no commit offset', () => {
    const obs = map('arbiter', mode);
    expect(obs.nativeNodeId).toBe('10.0.0.155:27017');
    expect(onlyShard(obs)).toEqual({ id: 'replset', role: 'unknown', nativeRole: 'ARBITER' });
  });

  test('RECOVERING: role unknown, lag still measured against the known primary', () => {
    const shard = onlyShard(map('recovering', mode));
    expect(shard).toMatchObject({ role: 'unknown', nativeRole: 'RECOVERING', lagSeconds: 95 });
  });

  test('ROLLBACK: role unknown, no lag (its optime is on a branch being undone)', () => {
    const shard = onlyShard(map('rollback', mode));
    expect(shard).toMatchObject({ role: 'unknown', nativeRole: 'ROLLBACK' });
    expect(shard).not.toHaveProperty('lagSeconds');
  });

  test('STARTUP2 (initial sync): Timestamp(0, 0) is no optime, not the epoch', () => {
    expect(onlyShard(map('startup2', mode))).toEqual({
      id: 'replset',
      role: 'unknown',
      nativeRole: 'STARTUP2',
    });
  });

  test('standalone (error 76): one unnamed shard, primary, last-op from the writes tracker', () => {
    const obs = map('standalone', mode, 1700000000);
    expect(obs.nativeClusterId).toBeUndefined();
    expect(obs.nativeNodeId).toBeUndefined();
    expect(obs.shards).toEqual([
      { role: 'primary', nativeRole: 'standalone', lastOperationTimestampSeconds: 1700000000 },
    ]);
    expect(onlyShard(map('standalone', mode)).lastOperationTimestampSeconds).toBeUndefined();
    expect(obs.performance).toEqual({ clientsConnected: 3, readsTotal: 820, writesTotal: 154 });
  });

  test('removed from the set (error 93): the set-named shard with role unknown and the reason', () => {
    const obs = map('removed', mode);
    expect(obs.nativeClusterId).toBe('replset');
    expect(obs.shards).toEqual([{ id: 'replset', role: 'unknown', nativeRole: 'InvalidReplicaSetConfig' }]);
    expect(obs.performance.clientsConnected).toBe(0);
  });

  test('never initiated (error 94): one unnamed shard with role unknown', () => {
    const obs = map('not-initialized', mode);
    expect(obs.nativeClusterId).toBeUndefined();
    expect(obs.shards).toEqual([{ role: 'unknown', nativeRole: 'NotYetInitialized' }]);
  });

  test('removed, pre-3.2 style (myState 10 REMOVED): role unknown, no lag', () => {
    const shard = onlyShard(map('removed-3.0', mode));
    expect(shard).toMatchObject({ id: 'miRS', role: 'unknown', nativeRole: 'REMOVED' });
    expect(shard).not.toHaveProperty('lagSeconds');
  });

  test('mongos: no shards, version and clients only', () => {
    const obs = map('mongos', mode);
    expect(obs).toEqual({
      datastore: 'mongodb',
      version: '7.0.12',
      shards: [],
      performance: { clientsConnected: 40 },
    });
  });

  test('config server replica set member: its own shard, named after its set', () => {
    const obs = map('configsvr', mode);
    expect(obs.nativeClusterId).toBe('configRS');
    expect(obs.nativeNodeId).toBe('cfg2.example.net:27019');
    expect(onlyShard(obs)).toMatchObject({ id: 'configRS', role: 'secondary', lagSeconds: 1 });
  });
});

describe('BSON value handling', () => {
  test('Timestamps: bson objects and canonical Extended JSON; high half = seconds', () => {
    expect(timestampParts(new Timestamp({ t: 1526229410, i: 7 }))).toEqual({
      seconds: 1526229410,
      increment: 7,
    });
    // Seconds past 2^31 (2038) must not turn negative through the signed Long halves.
    expect(timestampParts(new Timestamp({ t: 2 ** 31 + 5, i: 1 }))).toEqual({
      seconds: 2 ** 31 + 5,
      increment: 1,
    });
    expect(timestampParts({ $timestamp: { t: 10, i: 2 } })).toEqual({ seconds: 10, increment: 2 });
    expect(timestampParts(new Date())).toBeUndefined();
    expect(timestampParts(1526229410)).toBeUndefined();
  });

  test('optimes: {ts, t} and bare Timestamp forms; Timestamp(0, 0) and garbage are no optime', () => {
    const ts = new Timestamp({ t: 1526229410, i: 1 });
    expect(opTimeOf({ ts, t: 6 })).toEqual({ seconds: 1526229410, increment: 1 });
    expect(opTimeOf(ts)).toEqual({ seconds: 1526229410, increment: 1 });
    expect(opTimeOf({ ts: new Timestamp({ t: 0, i: 0 }), t: -1 })).toBeUndefined();
    expect(opTimeOf(new Date('2018-05-13T16:36:50Z'))).toBeUndefined();
    expect(opTimeOf(undefined)).toBeUndefined();
  });

  test('numbers: number, bigint, bson Long/Int32/Double; anything else undefined', () => {
    const { Long, Int32, Double } = jest.requireActual<typeof import('mongodb')>('mongodb');
    expect(toNumber(5)).toBe(5);
    expect(toNumber(5n)).toBe(5);
    expect(toNumber(Long.fromNumber(123456789012))).toBe(123456789012);
    expect(toNumber(new Int32(7))).toBe(7);
    expect(toNumber(new Double(1.5))).toBe(1.5);
    expect(toNumber('5')).toBeUndefined();
    expect(toNumber(NaN)).toBeUndefined();
    expect(toNumber(null)).toBeUndefined();
  });

  test('commit offset is exact in a float64 and ordered like the optime', () => {
    const optime = fc.record({
      seconds: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      increment: fc.nat(999_999),
    });
    fc.assert(
      fc.property(optime, optime, (a, b) => {
        const va = commitOffsetOf(a).value;
        const vb = commitOffsetOf(b).value;
        expect(Number.isSafeInteger(va)).toBe(true);
        expect(Math.floor(va / 1e6)).toBe(a.seconds);
        const cmp = a.seconds - b.seconds || a.increment - b.increment;
        expect(Math.sign(va - vb)).toBe(Math.sign(cmp));
      }),
    );
    // Beyond 999,999 operations in one second the value stops growing but never goes backwards.
    expect(commitOffsetOf({ seconds: 10, increment: 5_000_000 }).value).toBe(10_999_999);
  });

  test('the mapper never throws on arbitrary documents (unknown shapes leave fields absent)', () => {
    const doc = fc.dictionary(fc.string(), fc.anything());
    const members = fc.array(
      fc.record({
        self: fc.boolean(),
        state: fc.oneof(fc.integer({ min: -1, max: 11 }), fc.anything()),
        health: fc.oneof(fc.constantFrom(0, 1), fc.anything()),
        name: fc.anything(),
        stateStr: fc.anything(),
        optime: fc.oneof(
          fc.anything(),
          fc.record({ ts: fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((t) => new Timestamp({ t, i: 1 })) }),
        ),
      }),
    );
    fc.assert(
      fc.property(doc, doc, doc, members, fc.anything(), (hello, serverStatus, buildInfo, ms, myState) => {
        const responses: MongoResponses = {
          hello,
          replSetStatus: { kind: 'status', doc: { set: 'rs', myState, members: ms } },
          serverStatus,
          buildInfo,
        };
        const obs = mapObservation(responses, { ownConnections: OWN });
        expect(obs.shards.length).toBeLessThanOrEqual(1);
        for (const s of obs.shards) {
          if (s.lagSeconds !== undefined) expect(s.lagSeconds).toBeGreaterThanOrEqual(0);
          if (s.role === 'primary') expect(s.lagSeconds).toBeUndefined();
        }
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// The I/O boundary: the real MongoDriver, Collector and metrics layer over a fake command runner.

const logs: string[] = [];
const logger = createLogger('debug', 'logfmt', (line) => logs.push(line));

function driverOptions(url = 'mongodb://127.0.0.1:27017/'): DriverOptions {
  return { target: parseTarget(url), timeoutMs: 300, logger, extra: {}, heartbeat: false };
}

function collectorFor(driver: MongoDriver, clusterId?: string): Collector {
  return new Collector(driver, {
    intervalSeconds: 1,
    timeoutMs: 300,
    maxBackoffSeconds: 1,
    identity: { target: { host: '127.0.0.1', port: 27017 }, clusterId, hostname: 'testhost' },
    logger,
  });
}

async function metricsOf(collector: Collector) {
  const snapshot = collector.state.snapshot;
  if (!snapshot) throw new Error(`no snapshot: ${collector.state.lastError}`);
  return parseExposition(renderSnapshot(snapshot, PROMETHEUS_CONTENT_TYPE));
}

describe('MongoDriver over a fake command runner', () => {
  test('runs hello, replSetGetStatus, a trimmed serverStatus and buildInfo on admin, and maps them', async () => {
    const fake = fakeMongo(loadFixture('primary', 'relaxed'));
    const driver = new MongoDriver(driverOptions(), fake.factory);
    await driver.connect();
    const obs = await driver.observe();
    expect(fake.commands.map((c) => c.db)).toEqual(['admin', 'admin', 'admin', 'admin']);
    expect(fake.commands.map((c) => commandName(c.command))).toEqual([
      'hello',
      'replSetGetStatus',
      'serverStatus',
      'buildInfo',
    ]);
    const serverStatus = fake.commands[2]!.command;
    expect(serverStatus).toBe(SERVER_STATUS_COMMAND);
    for (const section of ['wiredTiger', 'metrics', 'locks', 'repl']) expect(serverStatus[section]).toBe(0);
    for (const section of ['connections', 'opcounters', 'opcountersRepl']) {
      expect(SERVER_STATUS_EXCLUDED_SECTIONS).not.toContain(section);
    }
    expect(obs).toEqual(
      mapObservation(responsesOf(loadFixture('primary', 'relaxed')), { ownConnections: 2 }),
    );
    await driver.close();
    expect(fake.closes).toBe(1);
    await expect(driver.observe()).rejects.toThrow(/not open/);
  });

  test('clients subtract the connections the connection says it holds', async () => {
    const fake = fakeMongo(loadFixture('primary'), 1);
    const driver = new MongoDriver(driverOptions(), fake.factory);
    await driver.connect();
    expect((await driver.observe()).performance.clientsConnected).toBe(16);
  });

  test('standalone: error 76 from the driver is a topology, and last-op appears once writes advance', async () => {
    const fixture = loadFixture('standalone', 'relaxed');
    const fake = fakeMongo(fixture);
    const driver = new MongoDriver(driverOptions(), fake.factory);
    await driver.connect();
    const first = await driver.observe();
    expect(first.shards).toEqual([
      { role: 'primary', nativeRole: 'standalone', lastOperationTimestampSeconds: undefined },
    ]);
    const before = Date.now() / 1000;
    const more = structuredClone(fixture);
    (more.serverStatus.opcounters as Document).insert = 121;
    fake.use(more);
    const second = await driver.observe();
    expect(second.performance.writesTotal).toBe(first.performance.writesTotal! + 1);
    expect(second.shards[0]!.lastOperationTimestampSeconds).toBeGreaterThanOrEqual(before);
  });

  test('mongos: replSetGetStatus is never sent', async () => {
    const fake = fakeMongo(loadFixture('mongos'));
    const driver = new MongoDriver(driverOptions(), fake.factory);
    await driver.connect();
    expect((await driver.observe()).shards).toEqual([]);
    expect(fake.commands.map((c) => commandName(c.command))).toEqual(['hello', 'serverStatus', 'buildInfo']);
  });

  test('a server without hello (CommandNotFound): isMaster is used, and remembered', async () => {
    const fake = fakeMongo(loadFixture('secondary-4.0'));
    const answer = fake.answer;
    fake.answer = async (command) => {
      if (commandName(command) === 'hello') {
        throw new MongoServerError({
          ok: 0,
          errmsg: 'no such command: hello',
          code: 59,
          codeName: 'CommandNotFound',
        });
      }
      return answer(command);
    };
    const driver = new MongoDriver(driverOptions(), fake.factory);
    await driver.connect();
    expect(onlyShard(await driver.observe()).role).toBe('secondary');
    await driver.observe();
    expect(fake.commands.map((c) => commandName(c.command)).filter((n) => /hello|isMaster/.test(n))).toEqual([
      'hello',
      'isMaster',
      'isMaster',
    ]);
  });

  test('a missing privilege fails the collection with the command and the role to grant', async () => {
    const fake = fakeMongo(loadFixture('primary'));
    const answer = fake.answer;
    fake.answer = async (command) => {
      if (commandName(command) === 'replSetGetStatus') {
        throw new MongoServerError({
          ok: 0,
          errmsg: 'not authorized on admin to execute command { replSetGetStatus: 1 }',
          code: 13,
          codeName: 'Unauthorized',
        });
      }
      return answer(command);
    };
    const driver = new MongoDriver(driverOptions(), fake.factory);
    await driver.connect();
    await expect(driver.observe()).rejects.toThrow(
      /mongodb replSetGetStatus failed: not authorized .*clusterMonitor/,
    );
  });

  test('through the collector and metrics: set name is cluster and shard; --cluster-id keeps the set as shard id', async () => {
    const collector = collectorFor(
      new MongoDriver(driverOptions(), fakeMongo(loadFixture('secondary-lagging')).factory),
    );
    await collector.collect();
    let s = await metricsOf(collector);
    expect(value(s, 'datastore_node_info', { node_id: 'm3.example.net:27017', cluster_id: 'replset' })).toBe(
      1,
    );
    expect(value(s, 'datastore_version_info', { datastore: 'mongodb', version: '7.0.12' })).toBe(1);
    expect(roleOf(s, 'replset')).toBe('secondary');
    expect(value(s, 'datastore_shard_replication_lag_seconds', { shard_id: 'replset' })).toBe(7);
    expect(value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 'replset' })).toBe(
      1723763166,
    );
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'replset' })).toBe(1723763166_000012);
    expect(value(s, 'datastore_clients_connected')).toBe(4);

    const named = collectorFor(
      new MongoDriver(driverOptions(), fakeMongo(loadFixture('configsvr')).factory),
      'payments',
    );
    await named.collect();
    s = await metricsOf(named);
    expect(
      value(s, 'datastore_node_info', { cluster_id: 'payments', node_id: 'cfg2.example.net:27019' }),
    ).toBe(1);
    expect(
      find(s, 'datastore_shard_role', { cluster_id: 'payments', shard_id: 'configRS', role: 'secondary' })[0]
        ?.value,
    ).toBe(1);

    // A standalone's unnamed shard takes the cluster id; with no --cluster-id that is 'default'.
    const standalone = collectorFor(
      new MongoDriver(driverOptions(), fakeMongo(loadFixture('standalone')).factory),
    );
    await standalone.collect();
    s = await metricsOf(standalone);
    expect(value(s, 'datastore_node_info', { node_id: 'testhost:27017', cluster_id: 'default' })).toBe(1);
    expect(roleOf(s, 'default')).toBe('primary');
    expect(find(s, 'datastore_shard_commit_offset')).toHaveLength(0);

    // mongos: no shard series at all.
    const mongos = collectorFor(new MongoDriver(driverOptions(), fakeMongo(loadFixture('mongos')).factory));
    await mongos.collect();
    s = await metricsOf(mongos);
    expect(find(s, 'datastore_shard_role')).toHaveLength(0);
    expect(find(s, 'datastore_reads_total')).toHaveLength(0);
    expect(value(s, 'datastore_clients_connected')).toBe(40);
  });

  test('a hung command times out the collection, closes the connection, and the next connect recovers', async () => {
    const fake = fakeMongo(loadFixture('primary'));
    const answer = fake.answer;
    let hang = true;
    fake.answer = (command) =>
      hang && commandName(command) === 'serverStatus'
        ? new Promise<Document>(() => undefined)
        : answer(command);
    const collector = collectorFor(new MongoDriver(driverOptions(), fake.factory));
    await collector.collect();
    expect(collector.state.up).toBe(false);
    expect(collector.state.snapshot).toBeNull();
    expect(collector.state.lastError).toMatch(/timed out after 300 ms/);
    expect(fake.closes).toBe(1);

    hang = false;
    await new Promise((r) => setTimeout(r, 800)); // past the 1 s backoff (minus its slack)
    await collector.collect();
    expect(collector.state.up).toBe(true);
    expect(fake.opens).toBe(2);
    expect(roleOf(await metricsOf(collector), 'replset')).toBe('primary');
  });

  test('a connection that cannot open: datastore down with the error, no snapshot', async () => {
    const fake = fakeMongo(loadFixture('primary'));
    const factory = fake.factory;
    fake.factory = (opts, budget) => ({
      ...factory(opts, budget),
      open: () => Promise.reject(new Error('Server selection timed out after 300 ms')),
    });
    const collector = collectorFor(new MongoDriver(driverOptions(), fake.factory));
    await collector.collect();
    expect(collector.state).toMatchObject({ up: false, snapshot: null });
    expect(collector.state.lastError).toMatch(/Server selection timed out/);
  });

  test('error 93/94 from replSetGetStatus through the driver: role unknown, not a failure', async () => {
    for (const [name, nativeRole] of [
      ['removed', 'InvalidReplicaSetConfig'],
      ['not-initialized', 'NotYetInitialized'],
    ] as const) {
      const driver = new MongoDriver(driverOptions(), fakeMongo(loadFixture(name)).factory);
      await driver.connect();
      expect(onlyShard(await driver.observe())).toMatchObject({ role: 'unknown', nativeRole });
    }
  });
});
