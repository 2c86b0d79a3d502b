/**
 * MariaDB WITHOUT --heartbeat, against real servers, where default mode has to be honest with only
 * what a node knows: a binlog primary and a GTID replica that reaches it through a delaying TCP proxy
 * (test/support/delay-proxy.ts) with MASTER_HEARTBEAT_PERIOD = 1 s. Each node is watched by an
 * exporter without --heartbeat and one with it (the truth for lag, and a mixed deployment), both as
 * the monitoring user of docs/mysql.md plus the heartbeat grants.
 *
 * The tests share one topology and run in order.
 */
import type { Connection } from 'mysql2/promise';
import { CREATE_HEARTBEAT_STATEMENTS, HEARTBEAT_TABLE } from '../src/drivers/mysql/heartbeat';
import { startDelayProxy, type DelayProxy } from './support/delay-proxy';
import { startTestExporter, type TestExporter } from './support/exporter';
import {
  EXPORTER_GRANT,
  EXPORTER_PASSWORD,
  EXPORTER_USER,
  TESTER_PASSWORD,
  TESTER_USER,
  startMariadb,
  waitCaughtUp,
  type MariadbNode,
} from './support/mariadb';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { freePorts, sleep, waitFor } from './support/processes';

/** Transactions in a MariaDB GTID position (sum of seq_no over domains). */
function gtidCount(pos: string): number {
  return pos
    .split(',')
    .filter(Boolean)
    .reduce((sum, g) => sum + Number(g.trim().split('-')[2]), 0);
}

/** Until the replica has applied what the primary had written when asked (heartbeats keep coming). */
async function waitApplied(replica: MariadbNode, primary: MariadbNode, timeoutMs = 20000): Promise<void> {
  const target = gtidCount(primary.value('SELECT @@gtid_binlog_pos'));
  await waitFor(
    `replica ${replica.port} to apply ${target} transactions`,
    () => gtidCount(replica.value('SELECT @@gtid_slave_pos')) >= target,
    timeoutMs,
    100,
  );
}

const SHARD = { shard_id: 'default' };
const LAG = 'datastore_shard_replication_lag_seconds';
const LAST_OP = 'datastore_shard_last_operation_timestamp_seconds';
const DELAY_S = 3;
const HEARTBEAT_PERIOD_S = 1;
const EXPORTER = `'${EXPORTER_USER}'@'127.0.0.1'`;

/** INSERTs on the primary every `everyMs` until stopped. */
async function steadyLoad(node: MariadbNode, everyMs: number): Promise<{ stop(): Promise<void> }> {
  const conn: Connection = await node.connectTester();
  let running = true;
  const loop = (async () => {
    while (running) {
      await conn.query('INSERT INTO app.events () VALUES ()');
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await conn.end();
    },
  };
}

describe('mariadb default mode: lag, role and counters, next to a heartbeat exporter', () => {
  let primary: MariadbNode;
  let replica: MariadbNode;
  let proxy: DelayProxy;
  let plainPrimary: TestExporter;
  let plainReplica: TestExporter;
  let hbPrimary: TestExporter;
  let hbReplica: TestExporter;

  const lagOf = async (e: TestExporter): Promise<number | undefined> =>
    find(await e.scrape(), LAG, SHARD)[0]?.value;
  const counters = (s: Sample[]) => ({
    writes: value(s, 'datastore_writes_total'),
    reads: value(s, 'datastore_reads_total'),
    lastOp: find(s, LAST_OP, SHARD)[0]?.value,
  });

  beforeAll(async () => {
    const [p, r] = await freePorts(2);
    [primary, replica] = await Promise.all([startMariadb(p!, 1), startMariadb(r!, 2)]);
    primary.sql(
      [
        `CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw'`,
        `GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'`,
        `CREATE USER ${EXPORTER} IDENTIFIED BY '${EXPORTER_PASSWORD}'`,
        `GRANT ${EXPORTER_GRANT} ON *.* TO ${EXPORTER}`,
        `CREATE USER '${TESTER_USER}'@'127.0.0.1' IDENTIFIED BY '${TESTER_PASSWORD}'`,
        `GRANT ALL ON *.* TO '${TESTER_USER}'@'127.0.0.1'`,
        'CREATE DATABASE app',
        'CREATE TABLE app.events (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))',
        ...CREATE_HEARTBEAT_STATEMENTS,
        // Every exporter reads the row (docs/mysql.md); the heartbeat writer also upserts it.
        `GRANT SELECT, INSERT, UPDATE ON ${HEARTBEAT_TABLE} TO ${EXPORTER}`,
      ].join('; '),
    );
    proxy = await startDelayProxy(p!, 0);
    replica.sql(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${proxy.port}, MASTER_USER='repl', ` +
        `MASTER_PASSWORD='repl-pw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, ` +
        `MASTER_HEARTBEAT_PERIOD=${HEARTBEAT_PERIOD_S}; START SLAVE`,
    );
    await waitCaughtUp(replica, primary);
    const start = (node: MariadbNode, heartbeat: boolean): Promise<TestExporter> =>
      startTestExporter([
        '--target',
        node.url,
        '--target.password-file',
        node.passwordFile,
        ...(heartbeat ? ['--heartbeat'] : []),
      ]);
    [plainPrimary, plainReplica, hbPrimary, hbReplica] = await Promise.all([
      start(primary, false),
      start(replica, false),
      start(primary, true),
      start(replica, true),
    ]);
    await Promise.all([plainPrimary, plainReplica, hbPrimary, hbReplica].map((e) => e.waitUp()));
    await waitFor(
      'heartbeats read on the replica',
      async () => find(await hbReplica.scrape(), 'datastore_shard_heartbeat_timestamp_seconds').length === 1,
      15000,
    );
  }, 120000);

  afterAll(async () => {
    await Promise.all([plainPrimary, plainReplica, hbPrimary, hbReplica].map((e) => e?.stop()));
    await proxy?.close();
    await Promise.all([primary, replica].map((n) => n?.stop()));
  });

  test('an exporter without --heartbeat sees no heartbeat writes, reads or last-op; a client INSERT moves them', async () => {
    const plain = [plainPrimary, plainReplica];
    for (const e of plain)
      expect(find(await e.scrape(), 'datastore_shard_heartbeat_timestamp_seconds')).toHaveLength(0);
    // Read first: the CLI's SELECT is a client read like any other. Then two collections: one already
    // running may have read the counters before it.
    const seqBefore = Number(primary.value(`SELECT seq FROM ${HEARTBEAT_TABLE}`));
    await Promise.all(plain.map((e) => e.nextCollections(2)));
    const before = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
    // ~12 heartbeat upserts on the primary, applied on the replica, read by both exporters.
    await sleep(6000);
    await Promise.all(plain.map((e) => e.nextCollections(1)));
    const idle = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
    expect(idle).toEqual(before);
    expect(Number(primary.value(`SELECT seq FROM ${HEARTBEAT_TABLE}`))).toBeGreaterThan(seqBefore + 8);

    const t0 = Math.floor(Date.now() / 1000);
    const conn = await primary.connectTester();
    await conn.query('INSERT INTO app.events () VALUES ()');
    await conn.end();
    let seen = '';
    await waitFor(
      'the write on both nodes',
      async () => {
        const now = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
        seen = `before ${JSON.stringify(before)}, now ${JSON.stringify(now)}, t0 ${t0}`;
        return now.every((c, i) => c.writes === before[i]!.writes + 1 && (c.lastOp ?? 0) >= t0);
      },
      10000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${seen}`);
    });
    const after = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
    // The one read since: the CLI's SELECT of the heartbeat seq above, on the primary.
    expect(after.map((c) => c.reads)).toEqual([before[0]!.reads + 1, before[1]!.reads]);
  }, 30000);

  test(`a ${DELAY_S} s network delay: MariaDB cannot see it, so default mode says nothing (never 0); heartbeat mode can`, async () => {
    proxy.delayMs = DELAY_S * 1000;
    const load = await steadyLoad(primary, 200);
    const plain: (number | undefined)[] = [];
    const truth: number[] = [];
    try {
      await sleep((DELAY_S + 2) * 1000);
      for (let i = 0; i < 5; i++) {
        await Promise.all([plainReplica, hbReplica].map((e) => e.nextCollections(1)));
        plain.push(await lagOf(plainReplica));
        truth.push((await lagOf(hbReplica))!);
      }
    } finally {
      await load.stop();
      proxy.delayMs = 0;
    }
    console.log(
      `mariadb ${DELAY_S} s network delay: default mode ${plain.map((x) => x ?? 'absent').join(' ')}; heartbeat ${truth.map((x) => x.toFixed(2)).join(' ')}`,
    );
    // Absent (cannot tell), or a value the server saw while applying: never 0 while 3 s behind.
    for (const [i, lag] of plain.entries()) {
      if (lag === undefined) continue;
      expect(lag).toBeGreaterThan(0);
      expect(lag).toBeLessThanOrEqual(truth[i]! + 0.5);
    }
    for (const lag of truth) expect(Math.abs(lag - DELAY_S)).toBeLessThanOrEqual(1);
    await waitApplied(replica, primary);
  }, 40000);

  test('a silently stalled link (nothing forwarded, IO thread still connected): lag right within 1 s once silent longer than the heartbeat period', async () => {
    const load = await steadyLoad(primary, 200);
    const rows: { since: number; plain: number | undefined; truth: number; io: string }[] = [];
    try {
      await sleep(2000);
      proxy.pause();
      const pausedAt = Date.now() / 1000;
      for (let i = 0; i < 8; i++) {
        await Promise.all([plainReplica, hbReplica].map((e) => e.nextCollections(1)));
        rows.push({
          since: Date.now() / 1000 - pausedAt,
          plain: await lagOf(plainReplica),
          truth: (await lagOf(hbReplica))!,
          io: replica.replicaStatus()!['Slave_IO_Running']!,
        });
      }
    } finally {
      proxy.resume();
      await load.stop();
    }
    console.log(
      `mariadb stalled link: ${rows.map((r) => `${r.since.toFixed(1)}s IO ${r.io} default ${r.plain?.toFixed(2) ?? 'absent'} / heartbeat ${r.truth.toFixed(2)}`).join('; ')}`,
    );
    // The IO thread never noticed: Seconds_Behind_Master alone would have said 0 throughout.
    expect(rows.every((r) => r.io === 'Yes')).toBe(true);
    // Silent beyond the period + margin (1 + 1.1 s), seen at the next collection.
    const tellable = HEARTBEAT_PERIOD_S + 1 + HEARTBEAT_PERIOD_S / 10 + 1;
    for (const r of rows) {
      // While it cannot tell: absent (never 0), or a value the server saw, never above the truth...
      if (r.plain !== undefined) expect(r.plain).toBeLessThanOrEqual(r.truth + 0.5);
      else expect(r.since).toBeLessThanOrEqual(tellable + 1);
      // ...then the time since the link stalled, short by at most one collection (the exporter sees a
      // receive at its next collection); heartbeat lag adds its own interval on the other side.
      if (r.since > tellable) {
        expect(r.plain).toBeDefined();
        expect(r.plain).toBeLessThanOrEqual(r.since + 0.25);
        expect(r.plain).toBeGreaterThanOrEqual(r.since - 1.25);
        expect(Math.abs(r.plain! - r.truth)).toBeLessThanOrEqual(1.5);
      }
    }
    expect(rows[rows.length - 1]!.plain!).toBeGreaterThan(tellable);
    await waitApplied(replica, primary);
    await waitFor(
      'default-mode lag gone again',
      async () => (await lagOf(plainReplica)) === undefined,
      10000,
    );
  }, 40000);

  test('role: STOP SLAVE with read_only off is unknown (two writable nodes), read_only on makes it secondary; a read-only node without replication is unknown', async () => {
    const roleNow = async (e: TestExporter): Promise<{ role?: string; native?: string }> => {
      await e.nextCollections(2);
      // The native role is in the JSON APIs (Replicante's), read here from the collector.
      return {
        role: roleOf(await e.scrape(), 'default'),
        native: e.collector.state.snapshot?.shards[0]?.nativeRole,
      };
    };
    expect(replica.value('SELECT @@read_only')).toBe('0');
    expect(await roleNow(plainReplica)).toEqual({ role: 'secondary', native: 'slave' });
    replica.sql('STOP SLAVE');
    try {
      // A manual failover half done: it replicates nothing and takes writes, like the primary.
      expect(await roleNow(plainReplica)).toEqual({ role: 'unknown', native: 'slave (stopped, writable)' });
      expect(find(await plainReplica.scrape(), LAG)).toHaveLength(0);
      replica.sql('SET GLOBAL read_only = 1');
      // A paused replica that takes no writes.
      expect(await roleNow(plainReplica)).toEqual({ role: 'secondary', native: 'slave' });
    } finally {
      replica.sql('SET GLOBAL read_only = 0; START SLAVE');
    }
    expect(await roleNow(plainReplica)).toEqual({ role: 'secondary', native: 'slave' });

    expect(await roleNow(plainPrimary)).toEqual({ role: 'primary', native: 'master' });
    primary.sql('SET GLOBAL read_only = 1');
    try {
      // Demoted or fenced: takes no writes and replicates nothing.
      expect(await roleNow(plainPrimary)).toEqual({ role: 'unknown', native: 'master (read_only)' });
    } finally {
      primary.sql('SET GLOBAL read_only = 0');
    }
    expect(await roleNow(plainPrimary)).toEqual({ role: 'primary', native: 'master' });
  }, 40000);
});
