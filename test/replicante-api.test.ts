/**
 * The Replicante agent API: first the mapping against the exact JSON that Replicante's own Rust models
 * (replicante_models_agent, serde) produce and accept, then the three endpoints of real exporters
 * watching a real Redis primary and replica and a PostgreSQL primary and streaming standby, and a
 * datastore that goes down (503 with Replicante's error body, never the last good snapshot).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { readBuildInfo } from '../src/exporter';
import type { Shard, Snapshot } from '../src/core/model';
import {
  agentInfo,
  agentVersion,
  datastoreInfo,
  errorBody,
  replicanteKind,
  shardInfo,
  shardsInfo,
} from '../src/http/replicante-api';
import { EXPORTER_VERSION } from '../src/core/version';
import { startTestExporter, type TestExporter } from './support/exporter';
import { startPgCluster, type PgCluster } from './support/postgres';
import { freePort, freePorts, tempDir, waitFor } from './support/processes';
import { startRedisPair, type RedisNode } from './support/redis';

const API = '/api/unstable';

function snapshot(shards: Shard[], extra: Partial<Snapshot> = {}): Snapshot {
  return {
    datastore: 'zookeeper',
    version: '3.8.0',
    nodeId: 'zk-1',
    clusterId: 'payments',
    clusterIdSource: 'flag',
    shards,
    performance: {},
    collectedAtSeconds: 1700000000,
    ...extra,
  };
}

describe('mapping (byte for byte what Replicante serialises)', () => {
  test('agent info: {"version":{"checkout","number","taint"}}', () => {
    expect(JSON.stringify(agentInfo({ checkout: 'abc123', number: '1.2.3', taint: 'tainted' }))).toBe(
      '{"version":{"checkout":"abc123","number":"1.2.3","taint":"tainted"}}',
    );
    expect(agentVersion({}, '0.1.0')).toEqual({ checkout: 'unknown', number: '0.1.0', taint: 'unknown' });
    expect(agentVersion({ checkout: 'f00', taint: 'not tainted' }, '0.1.0')).toEqual({
      checkout: 'f00',
      number: '0.1.0',
      taint: 'not tainted',
    });
  });

  test('datastore info, with cluster_display_name null when the datastore has none', () => {
    expect(JSON.stringify(datastoreInfo(snapshot([])))).toBe(
      '{"cluster_display_name":null,"cluster_id":"payments","kind":"Zookeeper","node_id":"zk-1","version":"3.8.0"}',
    );
    expect(datastoreInfo(snapshot([], { clusterDisplayName: 'Payments' })).cluster_display_name).toBe(
      'Payments',
    );
  });

  test("kind: Replicante's agents' spelling where they had one", () => {
    expect(
      [
        'mongodb',
        'kafka',
        'zookeeper',
        'redis',
        'postgresql',
        'mysql',
        'etcd',
        'nats',
        'rabbitmq',
        'other',
      ].map(replicanteKind),
    ).toEqual([
      'MongoDB',
      'Kafka',
      'Zookeeper',
      'Redis',
      'PostgreSQL',
      'MySQL',
      'etcd',
      'NATS',
      'RabbitMQ',
      'other',
    ]);
  });

  test('shards: roles, units and nulls as serde encodes CommitOffset, CommitUnit and ShardRole', () => {
    const shards: Shard[] = [
      { id: 'shard-1', role: 'primary', commitOffset: { value: 12345, unit: 'zxid' } },
      { id: 'shard-2', role: 'secondary', lagSeconds: 2.9, commitOffset: { value: 99, unit: 'lsn' } },
      { id: 'shard-3', role: 'unknown', nativeRole: 'RECOVERING' },
      { id: 'shard-4', role: 'unknown' },
      // A lag on a primary is never reported (as in the metrics).
      { id: 'shard-5', role: 'primary', lagSeconds: 3 },
      { id: 'shard-6', role: 'secondary', commitOffset: { value: 7, unit: 'seconds' } },
    ];
    expect(shardsInfo(snapshot(shards)).shards.map((s) => JSON.stringify(s))).toEqual([
      '{"commit_offset":{"unit":{"unit":"zxid"},"value":12345},"id":"shard-1","lag":null,"role":"primary"}',
      '{"commit_offset":{"unit":{"unit":"lsn"},"value":99},"id":"shard-2","lag":{"unit":"seconds","value":2},"role":"secondary"}',
      '{"commit_offset":null,"id":"shard-3","lag":null,"role":{"unknown":"RECOVERING"}}',
      '{"commit_offset":null,"id":"shard-4","lag":null,"role":{"unknown":"unknown"}}',
      '{"commit_offset":null,"id":"shard-5","lag":null,"role":"primary"}',
      '{"commit_offset":{"unit":"seconds","value":7},"id":"shard-6","lag":null,"role":"secondary"}',
    ]);
  });

  test('values are whole numbers (i64); a non-finite value is null rather than invalid JSON', () => {
    const s = shardInfo({
      id: 'x',
      role: 'secondary',
      lagSeconds: Infinity,
      commitOffset: { value: NaN, unit: 'bytes' },
    });
    expect(s.lag).toBeNull();
    expect(s.commit_offset).toBeNull();
  });

  test("errors: the agents' body", () => {
    expect(JSON.stringify(errorBody('datastore unavailable'))).toBe(
      '{"error":"datastore unavailable","layers":["datastore unavailable"],"trace":null}',
    );
  });

  test('build details: environment first, then build-info.json, else unknown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsx-build-info-'));
    try {
      const file = join(dir, 'build-info.json');
      expect(readBuildInfo({}, file)).toEqual({ checkout: undefined, taint: undefined });
      writeFileSync(file, JSON.stringify({ commit: 'abc', taint: 'not tainted' }));
      expect(readBuildInfo({}, file)).toEqual({ checkout: 'abc', taint: 'not tainted' });
      expect(readBuildInfo({ DATASTORE_EXPORTER_GIT_COMMIT: 'def' }, file)).toEqual({
        checkout: 'def',
        taint: 'not tainted',
      });
      writeFileSync(file, 'not json');
      expect(readBuildInfo({}, file)).toEqual({ checkout: undefined, taint: undefined });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const PG_PASSWORD = `pg-${randomBytes(12).toString('hex')}`;

describe('the agent API of exporters watching real servers', () => {
  let primary: RedisNode;
  let replica: RedisNode;
  let pg: PgCluster;
  let redisPrimaryExporter: TestExporter;
  let redisReplicaExporter: TestExporter;
  let pgPrimaryExporter: TestExporter;
  let pgStandbyExporter: TestExporter;
  let deadExporter: TestExporter;
  const exporters: TestExporter[] = [];
  const secrets = tempDir('replicante');

  beforeAll(async () => {
    const [pgPrimary, pgStandby] = await freePorts(2);
    let redis: { primary: RedisNode; replicas: RedisNode[] };
    [redis, pg] = await Promise.all([
      startRedisPair(1),
      startPgCluster({
        primaryPort: pgPrimary!,
        standbys: [{ name: 'standby', port: pgStandby! }],
        setup: `CREATE ROLE dsx_monitor LOGIN PASSWORD '${PG_PASSWORD}'; GRANT pg_monitor TO dsx_monitor;`,
      }),
    ]);
    primary = redis.primary;
    replica = redis.replicas[0]!;
    const passwordFile = join(secrets.path, 'pg-password');
    writeFileSync(passwordFile, PG_PASSWORD);
    const start = async (flags: string[]): Promise<TestExporter> => {
      const e = await startTestExporter(flags);
      exporters.push(e);
      return e;
    };
    const pgFlags = (port: number) => [
      '--target',
      `postgresql://dsx_monitor@127.0.0.1:${port}/postgres`,
      '--target.password-file',
      passwordFile,
    ];
    [redisPrimaryExporter, redisReplicaExporter, pgPrimaryExporter, pgStandbyExporter, deadExporter] =
      await Promise.all([
        start(['--target', primary.url]),
        start(['--target', replica.url]),
        start(pgFlags(pg.primary.port)),
        start(pgFlags(pg.standbys[0]!.port)),
        start(['--target', `redis://127.0.0.1:${await freePort()}`]),
      ]);
    await Promise.all(
      [redisPrimaryExporter, redisReplicaExporter, pgPrimaryExporter, pgStandbyExporter].map((e) =>
        e.waitUp(),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await Promise.all([primary?.stop(), replica?.stop(), pg?.stop()]);
    secrets.remove();
  });

  const get = (e: TestExporter, path: string) => request(e.server).get(`${API}${path}`);

  test('/info/agent: the package version; checkout and taint unknown without build details', async () => {
    const res = await get(redisPrimaryExporter, '/info/agent').expect(200);
    expect(res.type).toBe('application/json');
    expect(res.body).toEqual({
      version: { checkout: expect.any(String), number: EXPORTER_VERSION, taint: expect.any(String) },
    });
    // The agent info does not depend on the datastore.
    await get(deadExporter, '/info/agent').expect(200);
  });

  test('Redis primary and replica: datastore info and shards', async () => {
    const version = primary.info('server').get('redis_version');
    for (const [exporter, node] of [
      [redisPrimaryExporter, primary],
      [redisReplicaExporter, replica],
    ] as const) {
      const info = await get(exporter, '/info/datastore').expect(200);
      expect(info.body).toEqual({
        cluster_display_name: null,
        cluster_id: 'default',
        kind: 'Redis',
        node_id: `${hostname()}:${node.port}`,
        version,
      });
    }
    const p = (await get(redisPrimaryExporter, '/shards').expect(200)).body;
    expect(p).toEqual({
      shards: [
        {
          commit_offset: { unit: { unit: 'bytes' }, value: expect.any(Number) },
          id: 'default',
          lag: null,
          role: 'primary',
        },
      ],
    });
    const r = (await get(redisReplicaExporter, '/shards').expect(200)).body;
    // Redis cannot tell a connected replica's lag in seconds: null, never a fake 0.
    expect(r).toEqual({
      shards: [
        {
          commit_offset: { unit: { unit: 'bytes' }, value: expect.any(Number) },
          id: 'default',
          lag: null,
          role: 'secondary',
        },
      ],
    });
    for (const body of [p, r]) expect(Number.isInteger(body.shards[0].commit_offset.value)).toBe(true);
  });

  test('PostgreSQL primary and streaming standby: cluster id, LSN offset, lag in whole seconds', async () => {
    const systemId = pg.primary.psql('SELECT system_identifier FROM pg_control_system()');
    const serverVersion = pg.primary.psql('SHOW server_version');
    for (const exporter of [pgPrimaryExporter, pgStandbyExporter]) {
      const info = (await get(exporter, '/info/datastore').expect(200)).body;
      expect(info).toMatchObject({
        cluster_display_name: null,
        cluster_id: systemId,
        kind: 'PostgreSQL',
        version: serverVersion,
      });
    }
    const p = (await get(pgPrimaryExporter, '/shards').expect(200)).body;
    expect(p).toEqual({
      shards: [
        {
          commit_offset: { unit: { unit: 'lsn' }, value: expect.any(Number) },
          id: systemId,
          lag: null,
          role: 'primary',
        },
      ],
    });
    const s = (await get(pgStandbyExporter, '/shards').expect(200)).body;
    expect(s).toEqual({
      shards: [
        {
          commit_offset: { unit: { unit: 'lsn' }, value: expect.any(Number) },
          id: systemId,
          lag: { unit: 'seconds', value: expect.any(Number) },
          role: 'secondary',
        },
      ],
    });
    expect(Number.isInteger(s.shards[0].lag.value) && s.shards[0].lag.value >= 0).toBe(true);
  });

  test('a datastore that is down: 503 with the error body for datastore info and shards', async () => {
    await waitFor('a first collection attempt', () => deadExporter.collector.state.attempted, 10000, 20);
    for (const path of ['/info/datastore', '/shards']) {
      const res = await get(deadExporter, path).expect(503);
      expect(res.type).toBe('application/json');
      expect(res.body).toEqual({
        error: expect.stringMatching(/^datastore unavailable: /),
        layers: [expect.any(String)],
        trace: null,
      });
    }
  });

  test('a datastore that goes down answers 503 at once, not its last good snapshot', async () => {
    await get(redisReplicaExporter, '/shards').expect(200);
    await replica.process.kill();
    await waitFor(
      'replica exporter sees the replica down',
      () => !redisReplicaExporter.collector.state.up,
      10000,
      20,
    );
    await get(redisReplicaExporter, '/shards').expect(503);
    await get(redisReplicaExporter, '/info/datastore').expect(503);
    // The metrics agree: no model series either.
    const s = await redisReplicaExporter.scrape();
    expect(s.find((x) => x.name === 'datastore_up')?.value).toBe(0);
    expect(s.find((x) => x.name === 'datastore_shard_role')).toBeUndefined();
  });
});
