/**
 * The Redis driver end to end against real redis-server processes: a standalone node and a primary
 * with two replicas that really replicate. Every model metric is checked against what redis-cli says.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { find, parseExposition, roleOf, value } from './support/metrics-text';
import { promtoolCheckMetrics } from './support/promtool';
import { freePort, tempDir, waitFor } from './support/processes';
import { startRedis, startRedisPair, type RedisNode } from './support/redis';

/**
 * Counters as the driver defines them, recomputed from redis-cli: calls of 'write'-flagged commands,
 * and of 'readonly' ones but SUBSTR (every exporter's heartbeat reads, docs/redis.md).
 */
function cliCommandCalls(node: RedisNode, kind: 'write' | 'readonly'): number {
  let total = 0;
  for (const [key, v] of node.info('commandstats')) {
    const name = key.replace(/^cmdstat_/, '');
    if (name === 'substr') continue;
    const flags = node.cli('COMMAND', 'INFO', name);
    const isWrite = /^write$/m.test(flags);
    const isRead = /^readonly$/m.test(flags);
    if ((kind === 'write' && isWrite) || (kind === 'readonly' && isRead && !isWrite)) {
      total += Number(/calls=(\d+)/.exec(v)![1]);
    }
  }
  return total;
}

describe('redis standalone', () => {
  let node: RedisNode;
  let exporter: TestExporter;

  beforeAll(async () => {
    node = await startRedis(await freePort());
    exporter = await startTestExporter(['--target', node.url]);
    await exporter.waitUp();
  });
  afterAll(async () => {
    await exporter?.stop();
    await node?.stop();
  });

  test('identity, version, role and clients match redis-cli', async () => {
    const s = await exporter.scrape();
    expect(value(s, 'datastore_up')).toBe(1);
    const info = node.info('server');
    expect(
      value(s, 'datastore_version_info', { datastore: 'redis', version: info.get('redis_version')! }),
    ).toBe(1);
    // Standalone Redis has no stable node id: <machine hostname>:<port> for a loopback target.
    expect(
      value(s, 'datastore_node_info', { node_id: `${hostname()}:${node.port}`, cluster_id: 'default' }),
    ).toBe(1);
    // No cluster identity: the fallback says so, with the replication id as replication group, and
    // a warning at the first collection names the flag (once).
    expect(find(s, 'datastore_node_info')[0]!.labels).toMatchObject({
      cluster_id_source: 'fallback',
      replication_group: node.info('replication').get('master_replid'),
    });
    const warnings = exporter.logs.filter((l) => /level=warn .*no cluster identity/.test(l));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/cluster_id is \\"default\\".*--cluster-id/);
    expect(roleOf(s, 'default')).toBe('primary');
    expect(find(s, 'datastore_shard_role')).toHaveLength(3);
    // No lag on a primary, ever.
    expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
    expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'default' })).toBe(
      Number(node.info('replication').get('master_repl_offset')),
    );
    // Clients: everyone but the exporter itself. redis-cli's CLIENT LIST sees redis-cli too.
    const listed = node
      .cli('CLIENT', 'LIST')
      .split('\n')
      .filter((l) => !/ name=datastore-exporter /.test(l) && !/ cmd=client\|list /.test(l));
    expect(value(s, 'datastore_clients_connected')).toBe(listed.length);
  });

  test('last operation is absent until a write is seen, then writes move writes_total and last-op', async () => {
    let s = await exporter.scrape();
    expect(find(s, 'datastore_shard_last_operation_timestamp_seconds')).toHaveLength(0);
    const writesBefore = value(s, 'datastore_writes_total');
    const readsBefore = value(s, 'datastore_reads_total');
    const t0 = Date.now() / 1000;
    node.cli('SET', 'k1', 'v');
    node.cli('INCR', 'counter');
    node.cli('GET', 'k1');
    node.cli('MGET', 'k1', 'counter');
    await exporter.nextCollections(2);
    s = await exporter.scrape();
    expect(value(s, 'datastore_writes_total')).toBe(writesBefore + 2);
    expect(value(s, 'datastore_reads_total')).toBe(readsBefore + 2);
    expect(value(s, 'datastore_writes_total')).toBe(cliCommandCalls(node, 'write'));
    expect(value(s, 'datastore_reads_total')).toBe(cliCommandCalls(node, 'readonly'));
    const lastOp = value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 'default' });
    expect(lastOp).toBeGreaterThanOrEqual(t0);
    expect(lastOp).toBeLessThanOrEqual(Date.now() / 1000);
    // Reads alone do not move last-op.
    node.cli('GET', 'k1');
    await exporter.nextCollections(2);
    s = await exporter.scrape();
    expect(value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 'default' })).toBe(
      lastOp,
    );
  });

  test('--cluster-id names the cluster and the single shard', async () => {
    const other = await startTestExporter([
      '--target',
      node.url,
      '--cluster-id',
      'payments',
      '--node-id',
      'n1',
    ]);
    try {
      await other.nextCollections(1);
      const s = await other.scrape();
      expect(
        value(s, 'datastore_node_info', { node_id: 'n1', cluster_id: 'payments', cluster_id_source: 'flag' }),
      ).toBe(1);
      // The replication group stays: rules can still see two groups given the same --cluster-id.
      expect(find(s, 'datastore_node_info')[0]!.labels.replication_group).toMatch(/^[0-9a-f]{40}$/);
      expect(roleOf(s, 'payments')).toBe('primary');
      expect(other.logs.join('\n')).not.toMatch(/no cluster identity/);
    } finally {
      await other.stop();
    }
  });

  test('--cluster-id.fallback names a cluster without identity, still marked as a fallback, without a warning', async () => {
    const other = await startTestExporter(['--target', node.url, '--cluster-id.fallback', 'cache-7']);
    try {
      await other.nextCollections(1);
      const s = await other.scrape();
      expect(value(s, 'datastore_node_info', { cluster_id: 'cache-7', cluster_id_source: 'fallback' })).toBe(
        1,
      );
      expect(roleOf(s, 'cache-7')).toBe('primary');
      expect(other.logs.join('\n')).toMatch(/level=info msg="the datastore has no cluster identity.*cache-7/);
      expect(other.logs.join('\n')).not.toMatch(/level=warn .*no cluster identity/);
    } finally {
      await other.stop();
    }
  });

  test('the least privileges in docs/redis.md are enough: an ACL user with a password file', async () => {
    node.cli(
      'ACL',
      'SETUSER',
      'exporter',
      'on',
      '>acl-pw-789',
      '+info',
      '+command|info',
      '+cluster|myid',
      '+cluster|nodes',
      '+client|setname',
    );
    const dir = tempDir('redis-acl');
    const pwFile = join(dir.path, 'pw');
    writeFileSync(pwFile, 'acl-pw-789\n');
    const limited = await startTestExporter([
      '--target',
      `redis://exporter@127.0.0.1:${node.port}`,
      '--target.password-file',
      pwFile,
    ]);
    try {
      await limited.nextCollections(1);
      const text = await limited.scrapeText();
      const s = parseExposition(text);
      expect(value(s, 'datastore_up')).toBe(1);
      expect(roleOf(s, 'default')).toBe('primary');
      expect(find(s, 'datastore_writes_total')).toHaveLength(1);
      expect(text + limited.logs.join('\n')).not.toContain('acl-pw-789');
      expect(node.cli('CLIENT', 'LIST')).toMatch(/name=datastore-exporter .*user=exporter/);
    } finally {
      await limited.stop();
      dir.remove();
    }
  });

  test('the real output passes promtool check metrics', async () => {
    const r = promtoolCheckMetrics(await exporter.scrapeText());
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  testServerStopped({
    what: 'the server',
    how: 'killed',
    exporter: () => exporter,
    stop: () => node.process.kill(),
    downWithinMs: 10000,
    restart: () => node.restart(),
    // Recovery within one interval of the restart (plus the collection itself).
    upWithinMs: 3000,
    afterRecovery: async () => {
      expect(roleOf(await exporter.scrape(), 'default')).toBe('primary');
    },
  });

  testServerHung({
    what: 'the server',
    exporter: () => exporter,
    pause: () => Promise.resolve(node.process.pause()),
    resume: () => Promise.resolve(node.process.resume()),
    downWithinMs: 10000,
    upWithinMs: 5000,
  });
});

describe('redis primary with two replicas', () => {
  let primary: RedisNode;
  let replicas: RedisNode[];
  const exporters: TestExporter[] = [];

  beforeAll(async () => {
    ({ primary, replicas } = await startRedisPair(2));
    for (const n of [primary, ...replicas]) exporters.push(await startTestExporter(['--target', n.url]));
    await Promise.all(exporters.map((e) => e.waitUp()));
  });
  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await Promise.all([primary, ...replicas].map((n) => n?.stop()));
  });

  test('roles and offsets on every node match INFO replication', async () => {
    const nodes = [primary, ...replicas];
    for (let i = 0; i < nodes.length; i++) {
      const s = await exporters[i]!.scrape();
      const repl = nodes[i]!.info('replication');
      expect(roleOf(s, 'default')).toBe(repl.get('role') === 'master' ? 'primary' : 'secondary');
      const offset = value(s, 'datastore_shard_commit_offset', { shard_id: 'default' });
      const cliOffset = Number(
        repl.get(repl.get('role') === 'master' ? 'master_repl_offset' : 'slave_repl_offset'),
      );
      // The offset may move between the collection and our INFO (the primary PINGs replicas).
      expect(offset).toBeLessThanOrEqual(cliOffset);
      expect(cliOffset - offset).toBeLessThan(1000);
      // Link up: no honest lag in seconds exists, so none is reported (never a fake 0).
      expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
      // One replication group: the primary's replication id, on the primary and its replicas.
      expect(find(s, 'datastore_node_info')[0]!.labels.replication_group).toBe(
        primary.info('replication').get('master_replid'),
      );
      expect(promtoolCheckMetrics(await exporters[i]!.scrapeText()).status).toBe(0);
    }
  });

  test('writes on the primary move writes_total and last-op on the primary and on the replicas', async () => {
    const before = await Promise.all(
      exporters.map(async (e) => value(await e.scrape(), 'datastore_writes_total')),
    );
    const t0 = Date.now() / 1000;
    primary.cli('SET', 'replicated', '1');
    primary.cli('LPUSH', 'list', 'a', 'b');
    await Promise.all(exporters.map((e) => e.nextCollections(2)));
    for (let i = 0; i < exporters.length; i++) {
      const s = await exporters[i]!.scrape();
      expect(value(s, 'datastore_writes_total')).toBeGreaterThanOrEqual(before[i]! + 2);
      expect(
        value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: 'default' }),
      ).toBeGreaterThanOrEqual(t0);
    }
    expect(replicas[0]!.cli('GET', 'replicated')).toBe('1');
  });

  test('a replica whose link is down reports the outage as lag, growing with time', async () => {
    const replica = replicas[1]!;
    const exporter = exporters[2]!;
    // Point the replica at a port where nothing listens: the link goes down and stays down.
    replica.cli('REPLICAOF', '127.0.0.1', String(await freePort()));
    try {
      await waitFor(
        'lag reported',
        async () => find(await exporter.scrape(), 'datastore_shard_replication_lag_seconds').length === 1,
        10000,
      );
      await exporter.nextCollections(3);
      const s = await exporter.scrape();
      const lag = value(s, 'datastore_shard_replication_lag_seconds', { shard_id: 'default' });
      const cli = Number(replica.info('replication').get('master_link_down_since_seconds'));
      expect(lag).toBeGreaterThanOrEqual(1);
      expect(Math.abs(cli - lag)).toBeLessThanOrEqual(2);
      expect(roleOf(s, 'default')).toBe('secondary');
    } finally {
      replica.cli('REPLICAOF', '127.0.0.1', String(primary.port));
    }
    await waitFor(
      'replica back in sync',
      () => replica.info('replication').get('master_link_status') === 'up',
    );
  });

  test('failover: REPLICAOF NO ONE flips the role within one interval; the offset goes on from where it was', async () => {
    const replica = replicas[0]!;
    const exporter = exporters[1]!;
    const offsetOf = async (e: TestExporter): Promise<number> =>
      value(await e.scrape(), 'datastore_shard_commit_offset', { shard_id: 'default' });
    await waitFor(
      'replica at the primary offset',
      () =>
        replica.info('replication').get('slave_repl_offset') ===
        primary.info('replication').get('master_repl_offset'),
    );
    await Promise.all(exporters.map((e) => e.nextCollections(1)));
    const before = await offsetOf(exporter);
    replica.cli('REPLICAOF', 'NO', 'ONE');
    try {
      // One interval is 1 s; allow the collection in flight to finish.
      await waitFor(
        'promoted replica reports primary',
        async () => roleOf(await exporter.scrape(), 'default') === 'primary',
        2500,
      );
      // A promoted replica keeps its offset (PSYNC2: one offset space across failovers), so that
      // in-sync nodes stay 0 apart; it starts a new replication id, i.e. a replication group of its own.
      const after = await offsetOf(exporter);
      expect(after).toBeGreaterThanOrEqual(before);
      expect(after - before).toBeLessThan(1000);
      expect(Math.abs(after - (await offsetOf(exporters[0]!)))).toBeLessThan(1000);
      const groups = await Promise.all(
        exporters.map(
          async (e) => find(await e.scrape(), 'datastore_node_info')[0]!.labels.replication_group,
        ),
      );
      expect(groups[1]).toBe(replica.info('replication').get('master_replid'));
      expect(groups[1]).not.toBe(groups[0]);
    } finally {
      replica.cli('REPLICAOF', '127.0.0.1', String(primary.port));
    }
    await waitFor(
      'demoted again',
      async () => roleOf(await exporter.scrape(), 'default') === 'secondary',
      2500,
    );
  });
});
