/**
 * GET /discover: first the pure parts (member lists -> http_sd target groups under the /probe rules;
 * each driver's mapping on documented replies), then one probe-mode exporter discovering REAL Redis
 * replication and a real Redis Cluster. The other datastores are discovered live, through a real
 * Prometheus, in test/discovery-e2e.test.ts.
 */
import request from 'supertest';
import { parseProbeConfig } from '../src/probe/config';
import { META, memberGroups, memberUrl } from '../src/probe/discovery';
import { resolveProbeTarget } from '../src/probe/target';
import { clusterMembers, clusterNodeAddress, replicationMembers } from '../src/drivers/redis/members';
import { parseClusterNodes, parseInfo } from '../src/drivers/redis/parse';
import { etcdMembers } from '../src/drivers/etcd/members';
import { parseStatus } from '../src/drivers/etcd/parse';
import { kafkaMembers } from '../src/drivers/kafka/members';
import type { KafkaMetadata } from '../src/drivers/kafka/parse';
import { mongoMembers } from '../src/drivers/mongodb/members';
import { mysqlMembers, replicaHostsStatement } from '../src/drivers/mysql/members';
import { normalizeReplicaStatusRow, parseServerVersion } from '../src/drivers/mysql/parse';
import { natsMembers } from '../src/drivers/nats/members';
import { addressFromApplicationName, postgresMembers } from '../src/drivers/postgresql/members';
import { rabbitMembers } from '../src/drivers/rabbitmq/members';
import { parseServerLine, zookeeperMembers } from '../src/drivers/zookeeper/members';
import { parseConf } from '../src/drivers/zookeeper/parse';
import metadataFixture from './fixtures/kafka/metadata-v6-three-brokers.json';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { find, value } from './support/metrics-text';
import { PROMTOOL, promtoolCheckMetrics } from './support/promtool';
import { loadFixture } from './support/mongodb';
import { freePort, tempDir, waitFor } from './support/processes';
import {
  labelByTarget,
  startProbeModeExporter,
  targetsOf,
  writeProbeConfig,
  type ProbeModeExporter,
} from './support/probe-exporter';
import { startRedisCluster, startRedisPair, type RedisCluster, type RedisNode } from './support/redis';

const config = (allowed: string[], modules = 'auth_modules: { m: {} }') =>
  parseProbeConfig(`allowed_targets: ${JSON.stringify(allowed)}\n${modules}\n`, '"probe.yml"', () => 'pw');

describe('the documented scrape configs', () => {
  test.each(['discovery-scrape-config', 'scale-out-scrape-config'])(
    'docs/probe.md %s passes promtool check config',
    (marker) => {
      const doc = readFileSync(join(__dirname, '..', 'docs', 'probe.md'), 'utf8');
      const block = new RegExp(`<!-- ${marker} -->\\s*\`\`\`yaml\\n([\\s\\S]*?)\`\`\``).exec(doc);
      expect(block).not.toBeNull();
      const dir = tempDir('promtool-config');
      try {
        const file = join(dir.path, 'prometheus.yml');
        writeFileSync(file, block![1]!);
        const r = spawnSync(PROMTOOL, ['check', 'config', file], { encoding: 'utf8' });
        expect({ status: r.status, output: `${r.stdout}${r.stderr}` }).toEqual({
          status: 0,
          output: expect.stringContaining('SUCCESS') as string,
        });
      } finally {
        dir.remove();
      }
    },
  );
});

describe('member lists -> http_sd target groups', () => {
  const cfg = config(['redis://10.0.0.*:6379', 'postgresql://db-*.example.net:5432', 'redis://[::1]:*']);
  const seed = resolveProbeTarget(
    { target: 'redis://10.0.0.1:6379', auth_module: 'm', cluster_id: 'cache' },
    cfg,
  );

  test('each member is a /probe URL with the seed scheme and path; IPv6 in brackets', () => {
    const pg = resolveProbeTarget({ target: 'postgresql://db-1.example.net:5432/app' }, cfg);
    expect(memberUrl(pg, { host: 'db-2.example.net', port: 5432 })).toBe(
      'postgresql://db-2.example.net:5432/app',
    );
    expect(memberUrl(seed, { host: '::1', port: 7000 })).toBe('redis://[::1]:7000');
  });

  test('members outside the allowlist or with bad addresses are left out and counted; duplicates once', () => {
    const found = memberGroups(
      seed,
      {
        members: [
          { host: '10.0.0.1', port: 6379, role: 'primary', nativeRole: 'master', self: true },
          { host: '10.0.0.2', port: 6379, role: 'secondary', nativeRole: 'slave' },
          { host: '10.0.0.2', port: 6379, role: 'secondary' },
          { host: '10.0.1.9', port: 6379, role: 'secondary' },
          { host: '10.0.0.3', port: 6380, role: 'secondary' },
          { host: '010.0.0.4', port: 6379, role: 'secondary' },
        ],
        complete: true,
        withoutAddress: { count: 1, reason: 'replica listed without ip/port' },
      },
      { datastore: 'redis', clusterId: 'cache' },
      cfg,
    );
    expect(targetsOf(found.groups)).toEqual(['redis://10.0.0.1:6379', 'redis://10.0.0.2:6379']);
    expect(found.leftOut).toEqual({ not_allowed: 2, invalid_address: 1, without_address: 1 });
    const [primary] = found.groups;
    expect(primary!.labels).toEqual({
      [`${META}datastore`]: 'redis',
      [`${META}cluster_id`]: 'cache',
      [`${META}seed`]: 'redis://10.0.0.1:6379',
      [`${META}members_complete`]: 'false',
      [`${META}members_left_out`]: '4',
      [`${META}role`]: 'primary',
      [`${META}native_role`]: 'master',
      [`${META}is_seed`]: 'true',
      __param_auth_module: 'm',
      __param_cluster_id: 'cache',
    });
    // Only meta labels and parameters: nothing that would become a target label of every series.
    for (const g of found.groups) {
      expect(Object.keys(g.labels).filter((k) => !k.startsWith('__'))).toEqual([]);
    }
  });
});

describe('Redis members (pure)', () => {
  const self = { host: '10.0.0.1', port: 6379 };

  test('a primary lists itself and its connected replicas', () => {
    const info = parseInfo(
      [
        '# Replication',
        'role:master',
        'connected_slaves:2',
        'slave0:ip=10.0.0.2,port=6379,state=online,offset=100,lag=0',
        'slave1:ip=10.0.0.3,port=6380,state=wait_bgsave,offset=0,lag=0',
        'master_repl_offset:100',
      ].join('\r\n'),
    );
    expect(replicationMembers(info, self)).toEqual({
      members: [
        { host: '10.0.0.1', port: 6379, role: 'primary', nativeRole: 'master', self: true },
        { host: '10.0.0.2', port: 6379, role: 'secondary', nativeRole: 'slave' },
        { host: '10.0.0.3', port: 6380, role: 'secondary', nativeRole: 'slave' },
      ],
      complete: true,
    });
  });

  test('a replica lists itself and its primary, and says it cannot see its siblings', () => {
    const info = parseInfo(
      'role:slave\nmaster_host:10.0.0.1\nmaster_port:6379\nmaster_link_status:up\nconnected_slaves:0\n',
    );
    const list = replicationMembers(info, { host: '10.0.0.2', port: 6379 });
    expect(list.members).toEqual([
      { host: '10.0.0.2', port: 6379, role: 'secondary', nativeRole: 'slave', self: true },
      { host: '10.0.0.1', port: 6379, role: 'unknown', nativeRole: 'master' },
    ]);
    expect(list.complete).toBe(false);
    expect(list.reason).toMatch(/siblings/);
  });

  test('CLUSTER NODES: every node with its shard; handshake and address-less nodes counted', () => {
    const nodes = parseClusterNodes(
      [
        'a1 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191',
        'a2 10.0.0.2:7000@17000,redis-2.example.net master - 0 0 2 connected 8192-16383',
        'b1 10.0.0.3:7000@17000 slave a1 0 0 1 connected',
        'b2 [::1]:7001@17001 slave a2 0 0 2 connected',
        'c1 :0@0 master,noaddr - 0 0 0 disconnected',
        'c2 10.0.0.9:7000@17000 handshake - 0 0 0 disconnected',
      ].join('\n'),
    );
    const list = clusterMembers(nodes, self);
    expect(list.members).toEqual([
      { host: '10.0.0.1', port: 7000, role: 'primary', nativeRole: 'master', shard: '0-8191', self: true },
      { host: '10.0.0.2', port: 7000, role: 'primary', nativeRole: 'master', shard: '8192-16383' },
      { host: '10.0.0.3', port: 7000, role: 'secondary', nativeRole: 'slave', shard: '0-8191' },
      { host: '::1', port: 7001, role: 'secondary', nativeRole: 'slave', shard: '8192-16383' },
    ]);
    expect(list.complete).toBe(false);
    expect(list.withoutAddress?.count).toBe(2);
    expect(clusterNodeAddress(':7000@17000')).toBeUndefined();
  });
});

const addresses = (list: { members: { host: string; port: number }[] }): string[] =>
  list.members.map((m) => `${m.host}:${m.port}`);

describe('PostgreSQL members (pure)', () => {
  const self = { host: '10.0.0.1', port: 5432 };

  test('a primary lists standbys whose application_name is host:port; others are counted', () => {
    const list = postgresMembers(
      {
        in_recovery: false,
        sender_host: null,
        sender_port: null,
        standbys: [
          { application_name: '10.0.0.2:5432', client_addr: '10.0.0.2', state: 'streaming' },
          { application_name: '[fd00::3]:5433', client_addr: 'fd00::3', state: 'catchup' },
          { application_name: 'walreceiver', client_addr: '10.0.0.4', state: 'streaming' },
          { application_name: 'pg_basebackup', client_addr: '10.0.0.5', state: 'backup' },
        ],
      },
      self,
    );
    expect(addresses(list)).toEqual(['10.0.0.1:5432', '10.0.0.2:5432', 'fd00::3:5433']);
    expect(list.members.map((m) => m.role)).toEqual(['primary', 'secondary', 'secondary']);
    expect(list.complete).toBe(false);
    expect(list.withoutAddress?.count).toBe(1);
    expect(list.reason).toMatch(/application_name/);
  });

  test('a standby lists its upstream (a Unix socket means its own host) and says it is incomplete', () => {
    const tcp = postgresMembers(
      { in_recovery: true, sender_host: 'db-1.example.net', sender_port: 5432, standbys: [] },
      { host: 'db-2.example.net', port: 5432 },
    );
    expect(tcp.members).toEqual([
      { host: 'db-2.example.net', port: 5432, role: 'secondary', nativeRole: 'standby', self: true },
      { host: 'db-1.example.net', port: 5432, role: 'unknown', nativeRole: 'upstream' },
    ]);
    expect(tcp.complete).toBe(false);
    expect(tcp.reason).toMatch(/siblings/);
    const socket = postgresMembers(
      { in_recovery: true, sender_host: '/var/run/postgresql', sender_port: 5433, standbys: null },
      self,
    );
    expect(addresses(socket)).toEqual(['10.0.0.1:5432', '10.0.0.1:5433']);
  });

  test('application_name host:port parsing', () => {
    expect(addressFromApplicationName('db-2.example.net:5432')).toEqual({
      host: 'db-2.example.net',
      port: 5432,
    });
    for (const bad of ['walreceiver', 'db-2:0', 'db-2:99999', 'a b:5432', '', null]) {
      expect(addressFromApplicationName(bad)).toBeUndefined();
    }
  });
});

describe('MySQL / MariaDB members (pure)', () => {
  const mariadb = parseServerVersion('10.11.19-MariaDB-0+deb12u1-log');
  const mysql8 = parseServerVersion('8.0.36', 'MySQL Community Server - GPL');
  const self = { host: '10.0.0.1', port: 3306 };

  test('statements per flavour', () => {
    expect(replicaHostsStatement(mariadb)).toBe('SHOW SLAVE HOSTS');
    expect(replicaHostsStatement(mysql8)).toBe('SHOW REPLICAS');
    expect(replicaHostsStatement(parseServerVersion('8.0.21'))).toBe('SHOW SLAVE HOSTS');
  });

  test('a primary lists its replica hosts (MySQL 8 SHOW REPLICAS columns)', () => {
    const list = mysqlMembers(
      mysql8,
      [],
      {
        kind: 'rows',
        rows: [
          { Server_Id: 2, Host: 'db-2.example.net', Port: 3306, Source_Id: 1, Replica_UUID: 'x' },
          { Server_Id: 3, Host: '', Port: 3306, Source_Id: 1, Replica_UUID: 'y' },
        ],
      },
      self,
    );
    expect(list.members).toEqual([
      { ...self, role: 'primary', nativeRole: 'source', self: true },
      { host: 'db-2.example.net', port: 3306, role: 'secondary', nativeRole: 'replica' },
    ]);
    expect(list.withoutAddress?.count).toBe(1);
    expect(list.complete).toBe(false);
  });

  test('a replica lists its source; a refused SHOW SLAVE HOSTS counts Slaves_connected and names the privilege', () => {
    const channel = normalizeReplicaStatusRow({
      Connection_name: '',
      Master_Host: '10.0.0.9',
      Master_Port: 3306,
      Slave_IO_Running: 'Yes',
      Slave_SQL_Running: 'Yes',
    });
    const list = mysqlMembers(mariadb, [channel], { kind: 'denied', connected: 2 }, self);
    expect(list.members).toEqual([
      { ...self, role: 'secondary', nativeRole: 'slave', self: true },
      { host: '10.0.0.9', port: 3306, role: 'unknown', nativeRole: 'master' },
    ]);
    expect(list.withoutAddress?.count).toBe(2);
    expect(list.reason).toMatch(/REPLICATION MASTER ADMIN/);
    expect(list.reason).toMatch(/siblings/);
  });
});

describe('ZooKeeper members (pure)', () => {
  const conf = (lines: string[]) =>
    parseConf(['clientPort=2181', 'serverId=1', 'membership: ', ...lines].join('\n'));

  test('server lines with a client address; roles as a leader knows them; the seed at its own address', () => {
    const list = zookeeperMembers(
      conf([
        'server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181',
        'server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181',
        'server.3=10.0.0.3:2888:3888:observer;10.0.1.3:2182',
        'version=100000000',
      ]),
      'leader',
      { host: 'zk-1.example.net', port: 2181 },
    );
    expect(list.members).toEqual([
      { host: 'zk-1.example.net', port: 2181, role: 'primary', nativeRole: 'leader', self: true },
      { host: '10.0.0.2', port: 2181, role: 'secondary', nativeRole: 'follower' },
      { host: '10.0.1.3', port: 2182, role: 'unknown', nativeRole: 'observer' },
    ]);
    expect(list.complete).toBe(true);
  });

  test('a follower does not know the leader; lines without a client port are counted, not guessed', () => {
    const list = zookeeperMembers(
      conf([
        'server.1=10.0.0.1:2888:3888',
        'server.2=10.0.0.2:2888:3888',
        'server.3=[fd00::3]:2888:3888;2181',
      ]),
      'follower',
      { host: '10.0.0.1', port: 2181 },
    );
    expect(addresses(list)).toEqual(['10.0.0.1:2181', 'fd00::3:2181']);
    expect(list.members[1]!.role).toBe('unknown');
    expect(list.withoutAddress?.count).toBe(1);
    expect(list.reason).toMatch(/;2181/);
    expect(parseServerLine(1, 'garbage')).toBeUndefined();
  });

  test('a standalone server is its own ensemble', () => {
    expect(
      zookeeperMembers(parseConf('clientPort=2181\nserverId=0'), 'standalone', { host: 'h', port: 2181 }),
    ).toEqual({
      members: [{ host: 'h', port: 2181, role: 'primary', nativeRole: 'standalone', self: true }],
      complete: true,
    });
  });
});

describe('etcd members (pure)', () => {
  // Ids as the gateway sends them: uint64 in decimal strings.
  const status = parseStatus(
    JSON.stringify({
      header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '5' },
      version: '3.5.9',
      leader: '9372538179322589801',
    }),
  );
  const list = etcdMembers(
    JSON.stringify({
      header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437' },
      members: [
        {
          ID: '10276657743932975437',
          name: 'a',
          peerURLs: ['http://10.0.0.1:2380'],
          clientURLs: ['http://10.0.0.1:2379'],
        },
        {
          ID: '9372538179322589801',
          name: 'b',
          peerURLs: ['http://10.0.0.2:2380'],
          clientURLs: ['http://10.0.0.2:2379'],
        },
        {
          ID: '1',
          name: 'c',
          peerURLs: ['https://[fd00::3]:2380'],
          clientURLs: ['https://[fd00::3]:2379'],
          isLearner: true,
        },
        { ID: '2', peerURLs: ['http://10.0.0.4:2380'] },
      ],
    }),
    status,
    { host: 'etcd-1.example.net', port: 2379 },
  );

  test('each member at its first client URL, roles from the leader this member knows', () => {
    expect(list.members).toEqual([
      { host: 'etcd-1.example.net', port: 2379, role: 'secondary', nativeRole: 'follower', self: true },
      { host: '10.0.0.2', port: 2379, role: 'primary', nativeRole: 'leader' },
      { host: 'fd00::3', port: 2379, role: 'unknown', nativeRole: 'learner' },
    ]);
    expect(list.withoutAddress).toEqual({ count: 1, reason: 'no client URL' });
  });
});

describe('MongoDB members (pure, documented hello replies)', () => {
  const hello = (name: string) => loadFixture(name, 'relaxed').hello;

  test('an arbiter lists the members, the primary and itself (at the seed address)', () => {
    const list = mongoMembers(hello('arbiter'), { host: 'arb.example.net', port: 27017 });
    expect(list.members).toEqual([
      { host: 'arb.example.net', port: 27017, role: 'unknown', nativeRole: 'arbiter', self: true },
      { host: '10.0.0.156', port: 27017, role: 'primary', nativeRole: 'primary' },
      { host: '10.0.0.157', port: 27017, role: 'secondary', nativeRole: 'member' },
    ]);
    expect(list.complete).toBe(true);
  });

  test('a secondary of a 3.0 set with an arbiter; without a known primary the others are unknown', () => {
    const list = mongoMembers(hello('secondary-3.0'), { host: 'mongo2', port: 27017 });
    expect(list.members.map((m) => [`${m.host}:${m.port}`, m.role, m.nativeRole])).toEqual([
      ['mongo2:27017', 'secondary', 'member'],
      ['mongo1:27017', 'primary', 'primary'],
      ['mongo3:27017', 'unknown', 'arbiter'],
    ]);
    const leaderless = mongoMembers(hello('secondary-no-primary'), { host: 'm3.example.net', port: 27017 });
    expect(leaderless.members.map((m) => m.role)).toEqual(['unknown', 'unknown', 'unknown']);
  });

  test('a mongos is incomplete (discover each shard); a standalone is alone', () => {
    const mongos = mongoMembers(hello('mongos'), { host: 'router', port: 27017 });
    expect(mongos.complete).toBe(false);
    expect(mongos.reason).toMatch(/shard/);
    expect(mongoMembers(hello('standalone'), { host: 'h', port: 27017 }).members).toHaveLength(1);
  });
});

describe('Kafka members (pure, documented Metadata reply)', () => {
  test('every registered broker at its advertised address; the controller named', () => {
    const list = kafkaMembers(metadataFixture as unknown as KafkaMetadata, {
      host: 'KAFKA-2.kafka.svc',
      port: 9092,
    });
    expect(list.members).toEqual([
      { host: 'kafka-1.kafka.svc', port: 9092, role: 'unknown', nativeRole: 'broker' },
      { host: 'kafka-2.kafka.svc', port: 9092, role: 'unknown', nativeRole: 'controller', self: true },
      { host: 'kafka-3.kafka.svc', port: 9092, role: 'unknown', nativeRole: 'broker' },
    ]);
    expect(list.complete).toBe(true);
  });
});

describe('NATS and RabbitMQ members (pure)', () => {
  test('NATS: the seed alone; its route peers counted, their monitoring ports being unknown', () => {
    const routez = JSON.stringify({
      server_id: 'NA',
      num_routes: 3,
      routes: [
        { rid: 1, remote_id: 'NB', ip: '10.0.0.2', port: 6222 },
        { rid: 2, remote_id: 'NC', ip: '10.0.0.3', port: 6222 },
        { rid: 3, remote_id: 'NC', ip: '10.0.0.3', port: 6222 },
      ],
    });
    const list = natsMembers(routez, { host: 'n1', port: 8222 });
    expect(addresses(list)).toEqual(['n1:8222']);
    expect(list.withoutAddress?.count).toBe(2);
    expect(list.complete).toBe(false);
  });

  test('RabbitMQ: running nodes at their management listener; stopped nodes counted', () => {
    const overview = JSON.stringify({
      node: 'rabbit@mq-0.mq',
      listeners: [
        { node: 'rabbit@mq-0.mq', protocol: 'amqp', ip_address: '::', port: 5672 },
        { node: 'rabbit@mq-0.mq', protocol: 'http', ip_address: '::', port: 15672 },
        { node: 'rabbit@mq-1.mq', protocol: 'http', ip_address: '::', port: 15672 },
        { node: 'rabbit@mq-2.mq', protocol: 'http', ip_address: '10.0.0.3', port: 15673 },
      ],
    });
    const nodes = JSON.stringify([
      { name: 'rabbit@mq-0.mq' },
      { name: 'rabbit@mq-1.mq' },
      { name: 'rabbit@mq-2.mq' },
      { name: 'rabbit@mq-3.mq' },
    ]);
    const list = rabbitMembers(overview, nodes, { host: '10.0.0.1', port: 15672 });
    expect(addresses(list)).toEqual(['10.0.0.1:15672', 'mq-1.mq:15672', '10.0.0.3:15673']);
    expect(list.members[0]!.self).toBe(true);
    expect(list.withoutAddress?.count).toBe(1);
  });
});

describe('live: Redis replication and Redis Cluster', () => {
  let dir: ReturnType<typeof tempDir>;
  let pair: { primary: RedisNode; replicas: RedisNode[] };
  let cluster: RedisCluster;
  let exporter: ProbeModeExporter;
  let excluded: number;

  beforeAll(async () => {
    dir = tempDir('discovery');
    [pair, cluster] = await Promise.all([startRedisPair(2), startRedisCluster()]);
    excluded = pair.replicas[1]!.port;
    // Every loopback Redis port but one replica's.
    const file = writeProbeConfig(dir.path, {
      allowed_targets: ['redis://127.0.0.1:*', 'rediss://127.0.0.1:*'],
      auth_modules: { plain: {} },
    });
    const narrow = writeProbeConfig(
      dir.path,
      {
        allowed_targets: [pair.primary.port, pair.replicas[0]!.port].map((p) => `redis://127.0.0.1:${p}`),
      },
      'narrow.yml',
    );
    exporter = await startProbeModeExporter(['--probe.config-file', file]);
    narrowExporter = await startProbeModeExporter(['--probe.config-file', narrow]);
  }, 120000);
  let narrowExporter: ProbeModeExporter;

  afterAll(async () => {
    await Promise.all([exporter?.stop(), narrowExporter?.stop()]);
    await Promise.all([
      pair?.primary.stop(),
      ...(pair?.replicas ?? []).map((r) => r.stop()),
      cluster?.stop(),
    ]);
    dir?.remove();
  });

  test('the primary as seed: itself and both replicas, complete, with the http_sd content type', async () => {
    const res = await exporter.discover({ target: pair.primary.url, cluster_id: 'cache' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-discovery-complete']).toBe('true');
    const groups = res.body as { targets: string[]; labels: Record<string, string> }[];
    expect(targetsOf(groups)).toEqual([pair.primary.url, ...pair.replicas.map((r) => r.url)].sort());
    expect(labelByTarget(groups, `${META}role`)).toEqual({
      [pair.primary.url]: 'primary',
      [pair.replicas[0]!.url]: 'secondary',
      [pair.replicas[1]!.url]: 'secondary',
    });
    expect(new Set(groups.map((g) => g.labels[`${META}cluster_id`]))).toEqual(new Set(['cache']));
    expect(new Set(groups.map((g) => g.labels.__param_cluster_id))).toEqual(new Set(['cache']));
  });

  test('a replica as seed: itself and the primary, marked incomplete with the reason', async () => {
    const res = await exporter.discover({ target: pair.replicas[0]!.url, auth_module: 'plain' });
    expect(res.status).toBe(200);
    expect(targetsOf(res.body)).toEqual([pair.primary.url, pair.replicas[0]!.url].sort());
    expect(res.headers['x-discovery-complete']).toBe('false');
    expect(res.headers['x-discovery-note']).toMatch(/siblings/);
    expect(
      new Set(res.body.map((g: { labels: Record<string, string> }) => g.labels.__param_auth_module)),
    ).toEqual(new Set(['plain']));
  });

  test('a replica outside allowed_targets is left out, counted in the answer and on /metrics', async () => {
    const res = await narrowExporter.discover({ target: pair.primary.url });
    expect(res.status).toBe(200);
    expect(targetsOf(res.body)).toEqual([pair.primary.url, pair.replicas[0]!.url].sort());
    expect(targetsOf(res.body)).not.toContain(`redis://127.0.0.1:${excluded}`);
    expect(res.headers['x-discovery-left-out']).toBe('not_allowed=1');
    expect(res.headers['x-discovery-complete']).toBe('false');
    expect(res.body[0].labels[`${META}members_left_out`]).toBe('1');
    const metrics = await narrowExporter.metrics();
    expect(
      value(metrics, 'datastore_exporter_discovery_members_left_out_total', { reason: 'not_allowed' }),
    ).toBe(1);
    expect(value(metrics, 'datastore_exporter_discoveries_total', { result: 'ok' })).toBe(1);
  });

  test('a seed outside the allowlist is 403 and never contacted; bad queries are 400', async () => {
    const refused = await narrowExporter.discover({ target: `redis://127.0.0.1:${excluded}` });
    expect(refused.status).toBe(403);
    expect((await narrowExporter.discover({})).status).toBe(400);
    expect((await narrowExporter.discover({ target: pair.primary.url, auth_module: 'nope' })).status).toBe(
      400,
    );
    expect((await narrowExporter.discover({ target: pair.primary.url, cluster_id: 'a b' })).status).toBe(400);
    const withPassword = await narrowExporter.discover({
      target: `redis://:hunter2@127.0.0.1:${pair.primary.port}`,
    });
    expect(withPassword.status).toBe(400);
    expect(narrowExporter.logs.join('\n')).not.toContain('hunter2');
    const metrics = await narrowExporter.metrics();
    expect(promtoolCheckMetrics((await request(narrowExporter.server).get('/metrics')).text)).toEqual({
      status: 0,
      output: '',
    });
    expect(value(metrics, 'datastore_exporter_discoveries_total', { result: 'forbidden' })).toBe(1);
    expect(value(metrics, 'datastore_exporter_discoveries_total', { result: 'bad_request' })).toBe(4);
  });

  test('a seed that does not answer is 502 (Prometheus keeps its last members)', async () => {
    const dead = await freePort();
    const res = await exporter.discover({ target: `redis://127.0.0.1:${dead}` });
    expect(res.status).toBe(502);
    expect(res.text).toMatch(/did not answer/);
  });

  test('Redis Cluster: any node as seed lists all six, roles and shards as the cluster says', async () => {
    const seedNode = cluster.nodes[4]!;
    let groups: Awaited<ReturnType<typeof exporter.groups>> = [];
    // Compared with each node's own INFO role; retried because a loaded machine can make the cluster
    // fail a node over (node timeout 2 s) between the two views.
    await waitFor(
      "the seed's view agrees with every node's role",
      async () => {
        groups = await exporter.groups({ target: seedNode.url, cluster_id: 'sessions' });
        const roles = labelByTarget(groups, `${META}role`);
        return cluster.nodes.every(
          (n) => roles[n.url] === (n.info('replication').get('role') === 'master' ? 'primary' : 'secondary'),
        );
      },
      20000,
      250,
    );
    expect(targetsOf(groups)).toEqual(cluster.nodes.map((n) => n.url).sort());
    // Three shards, two nodes each; the seed flagged.
    const shards = Object.values(labelByTarget(groups, `${META}shard`));
    expect(new Set(shards).size).toBe(3);
    expect(labelByTarget(groups, `${META}is_seed`)[seedNode.url]).toBe('true');
    expect(groups.every((g) => g.labels[`${META}members_complete`] === 'true')).toBe(true);
  });

  test('every discovered member answers /probe with the cluster_id the discovery passed on', async () => {
    const groups = await exporter.groups({ target: pair.primary.url, cluster_id: 'cache' });
    for (const g of groups) {
      const samples = await exporter.probeSamples({
        target: g.targets[0]!,
        cluster_id: g.labels.__param_cluster_id!,
      });
      expect(value(samples, 'datastore_up')).toBe(1);
      expect(find(samples, 'datastore_node_info')[0]!.labels.cluster_id).toBe('cache');
    }
  });
});
