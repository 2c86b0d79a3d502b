/**
 * The RabbitMQ quorum queue driver against a real 3-node cluster (Debian rabbitmq-server 3.10, started
 * by the test on loopback), one exporter per node, plus its parsers on replies recorded from it.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import amqp from 'amqplib';
import {
  parseLocalMembers,
  parseNodeMetrics,
  parseQueueList,
  pickSamples,
  queueRole,
  rabbitShards,
} from '../src/drivers/rabbitmq/parse';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { requireBinary, tempDir, waitFor } from './support/processes';
import { raftStates, startRabbitCluster, type RabbitCluster, type RabbitNode } from './support/rabbitmq';

/** Recorded from RabbitMQ 3.10.8 (Prometheus plugin /metrics, excerpt). */
const METRICS = `# TYPE rabbitmq_connections gauge
# HELP rabbitmq_connections Connections currently open
rabbitmq_connections 2
rabbitmq_build_info{rabbitmq_version="3.10.8",prometheus_plugin_version="3.10.8",prometheus_client_version="4.9.1",erlang_version="25.2.3"} 1
rabbitmq_identity_info{rabbitmq_node="r1@localhost",rabbitmq_cluster="rc1",rabbitmq_cluster_permanent_id="rabbitmq-cluster-id-tMQ_HWK6fLxTCws4_shA8g"} 1
rabbitmq_global_messages_delivered_total{protocol="amqp091",queue_type="rabbit_classic_queue"} 0
rabbitmq_global_messages_delivered_total{protocol="amqp091",queue_type="rabbit_quorum_queue"} 1
rabbitmq_global_messages_delivered_total{protocol="amqp091",queue_type="rabbit_stream_queue"} 0
rabbitmq_global_messages_received_total{protocol="amqp091"} 6
erlang_vm_allocators{alloc="temp_alloc",instance_no="0",kind="mbcs",usage="blocks"} 0
`;

/** Recorded from RabbitMQ 3.10.8 (/metrics/detailed?family=ra_metrics, excerpt). */
const RA_METRICS = `# TYPE rabbitmq_detailed_raft_log_commit_index counter
rabbitmq_detailed_raft_log_commit_index 16
rabbitmq_detailed_raft_log_commit_index{vhost="/",queue="q1"} 12
rabbitmq_detailed_raft_log_commit_index{vhost="prod",queue="odd \\"name\\" {x}"} 3
rabbitmq_detailed_raft_term_total{vhost="/",queue="q1"} 2
`;

/** Recorded from RabbitMQ 3.10.8 (/api/queues?disable_stats=true with columns), the leader's node hung. */
const QUEUES = `[{"leader":"r1@localhost","members":["r1@localhost","r2@localhost","r3@localhost"],"name":"q1","type":"quorum","vhost":"/"},
{"name":"cl1","type":"classic","vhost":"/"},{"name":"q2","type":"quorum","vhost":"prod","members":["r2@localhost"]}]`;

describe('RabbitMQ replies (recorded from RabbitMQ 3.10.8)', () => {
  test('node metrics: identity, version, connections, received and delivered summed over labels', () => {
    expect(parseNodeMetrics(METRICS)).toEqual({
      node: 'r1@localhost',
      clusterName: 'rc1',
      clusterId: 'rabbitmq-cluster-id-tMQ_HWK6fLxTCws4_shA8g',
      version: '3.10.8',
      connections: 2,
      messagesReceived: 6,
      messagesDelivered: 1,
    });
    expect(() => parseNodeMetrics('rabbitmq_connections 1\n')).toThrow(/lacks rabbitmq_identity_info/);
  });

  test('local members from ra_metrics (the unlabelled aggregate skipped, escaped names kept)', () => {
    expect(parseLocalMembers(RA_METRICS)).toEqual([
      { vhost: '/', queue: 'q1', commitIndex: 12 },
      { vhost: 'prod', queue: 'odd "name" {x}', commitIndex: 3 },
    ]);
    expect(pickSamples('x{a="}"} 1\nx 2 1700000000\nx{broken 3\n', new Set(['x']))).toEqual([
      { name: 'x', labels: { a: '}' }, value: 1 },
      { name: 'x', labels: {}, value: 2 },
    ]);
  });

  test('roles from the queue records: leader, follower, no leader, no record', () => {
    const records = parseQueueList(QUEUES);
    const members = parseLocalMembers(RA_METRICS);
    expect(rabbitShards(members, records, 'r1@localhost')).toEqual([
      {
        id: '%2F/q1',
        role: 'primary',
        nativeRole: 'leader',
        commitOffset: { value: 12, unit: 'raft-index' },
      },
      {
        id: 'prod/odd "name" {x}',
        role: 'unknown',
        nativeRole: 'leader-unknown',
        commitOffset: { value: 3, unit: 'raft-index' },
      },
    ]);
    expect(rabbitShards(members, records, 'r2@localhost')[0]!.role).toBe('secondary');
    expect(queueRole(records[2], 'r2@localhost')).toEqual({ role: 'unknown', nativeRole: 'no-leader' });
    expect(rabbitShards(members, undefined, 'r1@localhost').map((s) => s.nativeRole)).toEqual([
      'leader-unknown',
      'leader-unknown',
    ]);
    expect(() => parseQueueList('{"error":"not_authorised"}')).toThrow(/not a list/);
  });
});

const SHARD = '%2F/orders';

describe('RabbitMQ 3-node cluster, quorum queues (real rabbitmq-server 3.10)', () => {
  let cluster: RabbitCluster;
  let nodes: RabbitNode[];
  const exporters: TestExporter[] = [];
  let secrets: { path: string; remove(): void };
  let passwordFile: string;

  const scrapeAll = (): Promise<Sample[][]> => Promise.all(exporters.map((e) => e.scrape()));
  const nextAll = (n: number): Promise<void> =>
    Promise.all(exporters.map((e) => e.nextCollections(n))).then(() => undefined);
  const targetOf = (n: RabbitNode, user = 'monitor'): string =>
    `rabbitmq://${user}@127.0.0.1:${n.managementPort}?prometheus_port=${n.prometheusPort}`;
  /** The node whose own raft state is leader, asked through a running node. */
  const leaderIndex = async (via: RabbitNode): Promise<number> => {
    const states = await raftStates(via, 'orders');
    const leaders = [...states].filter(([, state]) => state === 'leader').map(([name]) => name);
    if (leaders.length !== 1) throw new Error(`raft states: ${JSON.stringify([...states])}`);
    return nodes.findIndex((n) => n.name === leaders[0]);
  };
  const onlyPrimary = (scrapes: Sample[][]): number => {
    const primaries = scrapes.flatMap((s, i) => (roleOf(s, SHARD) === 'primary' ? [i] : []));
    if (primaries.length !== 1) throw new Error(`expected one primary, found ${primaries.length}`);
    return primaries[0]!;
  };

  beforeAll(async () => {
    cluster = await startRabbitCluster(3);
    nodes = [...cluster.nodes];
    // Least privilege: the lowest management tag, and access to the vhost with no permission at all.
    await nodes[0]!.cli('rabbitmqctl', 'add_user', 'monitor', 's3cret-monitor');
    await nodes[0]!.cli('rabbitmqctl', 'set_user_tags', 'monitor', 'management');
    await nodes[0]!.cli('rabbitmqctl', 'set_permissions', '-p', '/', 'monitor', '', '', '');
    const conn = await amqp.connect(nodes[0]!.amqpUrl);
    const ch = await conn.createChannel();
    await ch.assertQueue('orders', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue('plain', { durable: true });
    await conn.close();
    secrets = tempDir('rabbitmq-secrets');
    passwordFile = `${secrets.path}/password`;
    writeFileSync(passwordFile, 's3cret-monitor\n');
    for (const n of nodes) {
      exporters.push(
        await startTestExporter(['--target', targetOf(n), '--target.password-file', passwordFile]),
      );
    }
    await nextAll(2);
  });
  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    await cluster?.stop();
    secrets?.remove();
  });

  test('identity, version and roles match the nodes own raft state; only quorum queues are shards', async () => {
    const scrapes = await scrapeAll();
    const leader = await leaderIndex(nodes[0]!);
    const clusterIds = new Set<string>();
    for (let i = 0; i < nodes.length; i++) {
      const s = scrapes[i]!;
      expect(exporters[i]!.collector.state.lastError).toBeUndefined();
      expect(value(s, 'datastore_up')).toBe(1);
      const [info] = find(s, 'datastore_node_info', { datastore: 'rabbitmq', node_id: nodes[i]!.name });
      expect(info).toBeDefined();
      clusterIds.add(info!.labels.cluster_id!);
      const overview = await nodes[i]!.api<{ rabbitmq_version: string }>('/api/overview');
      expect(value(s, 'datastore_version_info', { version: overview.rabbitmq_version })).toBe(1);
      expect(roleOf(s, SHARD)).toBe(i === leader ? 'primary' : 'secondary');
      // The classic queue is no shard; no lag is known.
      expect(find(s, 'datastore_shard_role', { shard_id: '%2F/plain' })).toHaveLength(0);
      expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
    }
    expect(clusterIds.size).toBe(1);
    expect([...clusterIds][0]).toMatch(/^rabbitmq-cluster-id-/);
    expect(onlyPrimary(scrapes)).toBe(leader);
  });

  test('clients, writes and reads are counted on the node the client is connected to; the raft position moves everywhere', async () => {
    let scrapes = await scrapeAll();
    const writesBefore = scrapes.map((s) => value(s, 'datastore_writes_total'));
    const readsBefore = scrapes.map((s) => value(s, 'datastore_reads_total'));
    const offsetsBefore = scrapes.map((s) => value(s, 'datastore_shard_commit_offset', { shard_id: SHARD }));
    for (const s of scrapes) expect(value(s, 'datastore_clients_connected')).toBe(0);

    const publisher = await amqp.connect(nodes[1]!.amqpUrl);
    const consumer = await amqp.connect(nodes[2]!.amqpUrl);
    try {
      const pch = await publisher.createConfirmChannel();
      for (let i = 0; i < 6; i++) pch.sendToQueue('orders', Buffer.from(`order-${i}`), { persistent: true });
      await pch.waitForConfirms();
      const cch = await consumer.createChannel();
      for (let i = 0; i < 4; i++) {
        const m = await cch.get('orders', { noAck: false });
        if (!m) throw new Error('no message');
        cch.ack(m);
      }
      await nextAll(2);
      scrapes = await scrapeAll();
      expect(scrapes.map((s) => value(s, 'datastore_clients_connected'))).toEqual([0, 1, 1]);
      expect(scrapes.map((s, i) => value(s, 'datastore_writes_total') - writesBefore[i]!)).toEqual([0, 6, 0]);
      expect(scrapes.map((s, i) => value(s, 'datastore_reads_total') - readsBefore[i]!)).toEqual([0, 0, 4]);
    } finally {
      await publisher.close();
      await consumer.close();
    }
    // Every member applies the commands: its commit index and last-op move (ra_metrics refresh on a tick).
    const t0 = Date.now() / 1000 - 10;
    await waitFor(
      'commit offsets and last-op moved on every member',
      async () => {
        const now = await scrapeAll();
        return now.every(
          (s, i) =>
            value(s, 'datastore_shard_commit_offset', { shard_id: SHARD }) >= offsetsBefore[i]! + 6 &&
            value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: SHARD }) >= t0,
        );
      },
      15000,
      200,
    );
  });

  let victim = -1;
  testServerStopped({
    what: 'the leader node',
    exporter: () => exporters[victim]!,
    stop: async () => {
      victim = await leaderIndex(nodes[0]!);
      await nodes[victim]!.process.stop(15000);
    },
    downWithinMs: 5000,
    whileDown: async () => {
      const survivor = nodes.find((_, i) => i !== victim)!;
      const others = nodes.flatMap((_, i) => (i === victim ? [] : [i]));
      const newLeader = await waitFor(
        'a survivor whose own raft state is leader',
        async () => {
          const leader = await leaderIndex(survivor);
          return leader !== victim ? leader + 1 : undefined;
        },
        30000,
        250,
      ).then((n) => n - 1);
      // Then within one interval (1 s; allow the collections in flight to finish).
      await waitFor(
        'the survivors report the new leader as the one primary',
        async () => {
          const scrapes = await Promise.all(others.map((i) => exporters[i]!.scrape()));
          return others[onlyPrimary(scrapes)] === newLeader;
        },
        2500,
        50,
      );
    },
    restart: () => nodes[victim]!.restart(),
    upWithinMs: 20000,
    afterRecovery: async () => {
      await waitFor(
        'one primary among all three again, the restarted node a member',
        async () => {
          const leader = await leaderIndex(nodes[0]!);
          const scrapes = await scrapeAll();
          return onlyPrimary(scrapes) === leader && roleOf(scrapes[victim]!, SHARD) !== undefined;
        },
        30000,
        250,
      );
    },
  });

  let hung = -1;
  testServerHung({
    what: 'a follower node',
    exporter: () => exporters[hung]!,
    pause: async () => {
      const leader = await leaderIndex(nodes[0]!);
      hung = nodes.findIndex((_, i) => i !== leader);
      nodes[hung]!.process.pause();
    },
    whileDown: async () => {
      const others = nodes.flatMap((_, i) => (i === hung ? [] : [i]));
      await Promise.all(others.map((i) => exporters[i]!.nextCollections(2)));
      // The node-local data keeps the others up, whatever the management API does meanwhile.
      for (const i of others) expect(value(await exporters[i]!.scrape(), 'datastore_up')).toBe(1);
    },
    resume: () => Promise.resolve(nodes[hung]!.process.resume()),
    timeoutSays: { in: 'lastError', pattern: /timed out|collection/ },
    downWithinMs: 5000,
    upWithinMs: 15000,
    afterRecovery: async () => {
      await waitFor(
        'one primary again',
        async () => onlyPrimary(await scrapeAll()) === (await leaderIndex(nodes[0]!)),
        20000,
        250,
      );
    },
  });

  test('the monitoring user can do nothing over AMQP (publishing is refused)', async () => {
    const conn = await amqp.connect(`amqp://monitor:s3cret-monitor@127.0.0.1:${nodes[0]!.amqpPort}`);
    try {
      const ch = await conn.createChannel();
      const closed = new Promise<Error>((resolve) => ch.on('error', resolve));
      ch.sendToQueue('orders', Buffer.from('not allowed'));
      expect((await closed).message).toMatch(/ACCESS_REFUSED/);
    } finally {
      await conn.close().catch(() => undefined);
    }
  });

  test('a wrong password: datastore_up 0 with the management 401 said; no password in any log', async () => {
    const bad = await startTestExporter(['--target', targetOf(nodes[0]!, 'monitor:wrong-pw')]);
    try {
      await bad.nextCollections(1);
      expect(value(await bad.scrape(), 'datastore_up')).toBe(0);
      expect(bad.collector.state.lastError).toMatch(/HTTP 401/);
      for (const log of [...bad.logs, ...exporters.flatMap((e) => e.logs)]) {
        expect(log).not.toContain('wrong-pw');
        expect(log).not.toContain('s3cret-monitor');
      }
    } finally {
      await bad.stop();
    }
  });

  test('promtool check metrics passes on the real output of every node', async () => {
    requireBinary('/usr/bin/promtool', 'the Debian package prometheus');
    for (const e of exporters) {
      const text = await e.scrapeText();
      expect(text).toContain('datastore_shard_role{');
      execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    }
  });
});
