/**
 * The MongoDB driver through the official `mongodb` client on real sockets.
 *
 * Always runs: the real exporter against a closed loopback port and against a TCP server that
 * accepts and never answers (a hung node) must report datastore_up 0 within the collection timeout,
 * with no model series, and keep answering /metrics at once.
 *
 * Opt-in: with MONGODB_TEST_URL set (e.g. mongodb://user:pass@127.0.0.1:27017/?authSource=admin, a
 * replica set member, standalone or mongos), the exporter runs against that node and every model
 * metric is checked against what the node itself answers. No MongoDB server can be installed on the
 * CI machines, so this part is NOT run there; when the variable is set and the node is unreachable,
 * the test FAILS (it never skips).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { MongoClient, type Document } from 'mongodb';
import { startTestExporter, type TestExporter } from './support/exporter';
import { MODEL_METRICS, find, roleOf, value } from './support/metrics-text';
import { loadFixture } from './support/mongodb';
import { startMongoStub } from './support/mongodb-wire';
import { freePort, waitFor } from './support/processes';

const LIVE_URL = process.env.MONGODB_TEST_URL;

describe('mongodb driver on real sockets (no server needed)', () => {
  test('closed port: datastore_up 0 within the timeout, no model series, the error logged', async () => {
    const port = await freePort();
    const exporter = await startTestExporter(['--target', `mongodb://127.0.0.1:${port}/`]);
    try {
      const started = Date.now();
      await exporter.nextCollections(1);
      // The first collection ends by its 800 ms deadline (plus scheduling slack), not by a driver default.
      expect(Date.now() - started).toBeLessThan(5000);
      const s = await exporter.scrape();
      expect(value(s, 'datastore_up')).toBe(0);
      for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
      expect(exporter.collector.state.lastError).toMatch(/ECONNREFUSED|timed out|Server selection/i);
      expect(exporter.logs.some((l) => /level=warn msg="collection failed"/.test(l))).toBe(true);
    } finally {
      await exporter.stop();
    }
  });

  test('hung node (accepts, never answers): the collection times out and /metrics answers at once', async () => {
    const sockets = new Set<Socket>();
    let accepted = 0;
    const server: Server = createServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.resume(); // read and drop the handshake: never reply
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const exporter = await startTestExporter(['--target', `mongodb://127.0.0.1:${port}/`]);
    try {
      await exporter.nextCollections(2);
      const started = Date.now();
      const s = await exporter.scrape();
      expect(Date.now() - started).toBeLessThan(500);
      expect(value(s, 'datastore_up')).toBe(0);
      for (const name of MODEL_METRICS) expect(find(s, name)).toHaveLength(0);
      expect(exporter.collector.state.lastError).toMatch(/timed out/i);
      expect(accepted).toBeGreaterThan(0);
    } finally {
      await exporter.stop();
    }
    try {
      // Each failed collection closes its client: the exporter leaves no connection to the hung node.
      await waitFor('the exporter to close its connections', () => sockets.size === 0, 5000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('official client against a wire-protocol stub: roles follow the node, errors decode, 2 connections held', async () => {
    const stub = await startMongoStub(loadFixture('primary'));
    const exporter = await startTestExporter(['--target', `mongodb://127.0.0.1:${stub.port}/`]);
    try {
      await waitFor(
        'datastore_up 1',
        async () => value(await exporter.scrape(), 'datastore_up') === 1,
        10000,
      );
      let s = await exporter.scrape();
      expect(
        value(s, 'datastore_node_info', { node_id: 'm1.example.net:27017', cluster_id: 'replset' }),
      ).toBe(1);
      expect(roleOf(s, 'replset')).toBe('primary');
      expect(value(s, 'datastore_shard_commit_offset', { shard_id: 'replset' })).toBe(1723763173_000001);
      expect(find(s, 'datastore_shard_replication_lag_seconds')).toHaveLength(0);
      expect(stub.commands).toEqual(
        expect.arrayContaining(['hello', 'replSetGetStatus', 'serverStatus', 'buildInfo']),
      );
      // What clients_connected subtracts: the monitoring connection and the one pooled connection.
      expect(stub.openConnections()).toBe(2);
      expect(value(s, 'datastore_clients_connected')).toBe(17 - 2);

      // A secondary: the read preference lets the commands run there.
      stub.use(loadFixture('secondary-lagging'));
      await waitFor(
        'secondary',
        async () => roleOf(await exporter.scrape(), 'replset') === 'secondary',
        5000,
      );
      s = await exporter.scrape();
      expect(value(s, 'datastore_shard_replication_lag_seconds', { shard_id: 'replset' })).toBe(7);

      // Standalone: the client decodes the {ok: 0, code: 76} reply into the error the driver expects.
      stub.use(loadFixture('standalone'));
      await waitFor('standalone', async () => roleOf(await exporter.scrape(), 'default') === 'primary', 5000);
      expect(value(await exporter.scrape(), 'datastore_up')).toBe(1);
      expect(stub.openConnections()).toBe(2);

      // Hung mid-collection: the command times out, the client is closed (its connections with it),
      // and the next connect recovers once the node answers again.
      stub.hang.add('serverStatus');
      await waitFor('datastore_up 0', async () => value(await exporter.scrape(), 'datastore_up') === 0, 5000);
      expect(exporter.collector.state.lastError).toMatch(/timed out/);
      expect(find(await exporter.scrape(), 'datastore_shard_role')).toHaveLength(0);
      stub.hang.delete('serverStatus');
      await waitFor(
        'datastore_up 1 again',
        async () => value(await exporter.scrape(), 'datastore_up') === 1,
        5000,
      );
      await waitFor('back to 2 connections', () => stub.openConnections() === 2, 5000);

      // mongos: no shard series, clients only.
      stub.use(loadFixture('mongos'));
      await waitFor(
        'mongos',
        async () => find(await exporter.scrape(), 'datastore_shard_role').length === 0,
        5000,
      );
      s = await exporter.scrape();
      expect(value(s, 'datastore_clients_connected')).toBe(40);
      expect(find(s, 'datastore_writes_total')).toHaveLength(0);
    } finally {
      await exporter.stop();
      await stub.close();
    }
  });

  test(`the live checks below run only when MONGODB_TEST_URL is set (${LIVE_URL ? 'set' : 'unset'} here)`, () => {
    expect(liveTestsDefined).toBe(LIVE_URL !== undefined && LIVE_URL !== '');
  });
});

let liveTestsDefined = false;

if (LIVE_URL) {
  liveTestsDefined = true;

  describe(`live MongoDB at MONGODB_TEST_URL`, () => {
    let exporter: TestExporter;
    let client: MongoClient;

    beforeAll(async () => {
      // The checker connects exactly like the exporter: directly to that one node.
      client = new MongoClient(LIVE_URL, { directConnection: true, serverSelectionTimeoutMS: 5000 });
      await client.connect(); // unreachable or refused: this throws and every test below FAILS
      exporter = await startTestExporter(['--target', LIVE_URL, '--collect.timeout', '900ms']);
      await waitFor(
        'datastore_up 1 against MONGODB_TEST_URL',
        async () => value(await exporter.scrape(), 'datastore_up') === 1,
        15000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last error: ${exporter.collector.state.lastError}`);
      });
    });
    afterAll(async () => {
      await exporter?.stop();
      await client?.close();
    });

    async function admin(command: Document): Promise<Document | { error: { code?: number } }> {
      try {
        return await client.db('admin').command(command);
      } catch (err) {
        return { error: err as { code?: number } };
      }
    }

    test('up, version, node id, shard and role agree with the node itself', async () => {
      const s = await exporter.scrape();
      expect(value(s, 'datastore_up')).toBe(1);
      const buildInfo = (await admin({ buildInfo: 1 })) as Document;
      expect(
        value(s, 'datastore_version_info', { datastore: 'mongodb', version: buildInfo.version as string }),
      ).toBe(1);
      const hello = (await admin({ hello: 1 })) as Document;
      const status = await admin({ replSetGetStatus: 1 });
      const roles = find(s, 'datastore_shard_role').filter((x) => x.value === 1);

      if (hello.msg === 'isdbgrid') {
        expect(roles).toHaveLength(0); // mongos holds no shard
        return;
      }
      expect(roles).toHaveLength(1); // exactly one shard, exactly one role set
      if ('error' in status) {
        expect(status.error.code).toBe(76); // standalone
        expect(roleOf(s, 'default')).toBe('primary');
        expect(
          value(s, 'datastore_node_info', { node_id: `${hostname()}:${new URL(LIVE_URL).port || 27017}` }),
        ).toBe(1);
        return;
      }
      const set = status.set as string;
      const self = (status.members as Document[]).find((m) => m.self === true)!;
      expect(value(s, 'datastore_node_info', { node_id: self.name as string, cluster_id: set })).toBe(1);
      const expected = status.myState === 1 ? 'primary' : status.myState === 2 ? 'secondary' : 'unknown';
      expect(roleOf(s, set)).toBe(expected);
      const lag = find(s, 'datastore_shard_replication_lag_seconds', { shard_id: set });
      if (expected === 'primary') expect(lag).toHaveLength(0);
      for (const l of lag) expect(l.value).toBeGreaterThanOrEqual(0);
      if (self.optime) {
        const lastOp = value(s, 'datastore_shard_last_operation_timestamp_seconds', { shard_id: set });
        // The oplog moves at least every 10 s (the primary's no-op writer): last-op is recent.
        expect(Date.now() / 1000 - lastOp).toBeLessThan(120);
        const offset = value(s, 'datastore_shard_commit_offset', { shard_id: set });
        expect(Math.floor(offset / 1e6)).toBe(lastOp);
      }
    });

    test('clients, reads and writes are present and counters do not go backwards', async () => {
      const before = await exporter.scrape();
      await exporter.nextCollections(2);
      const after = await exporter.scrape();
      expect(value(after, 'datastore_clients_connected')).toBeGreaterThanOrEqual(0);
      const hello = (await admin({ hello: 1 })) as Document;
      if (hello.msg === 'isdbgrid') return; // mongos: clients only
      for (const name of ['datastore_reads_total', 'datastore_writes_total']) {
        expect(value(after, name)).toBeGreaterThanOrEqual(value(before, name));
      }
    });
  });
}
