/**
 * PostgreSQL WITHOUT --heartbeat, against real servers, where default mode has to be honest with
 * only what a node knows: a primary with pg_stat_statements and track_commit_timestamp off (the
 * default), and a standby that streams through a delaying TCP proxy (test/support/delay-proxy.ts)
 * with wal_receiver_timeout = 4 s. Each node is watched by an exporter without --heartbeat and one
 * with it: the heartbeat exporter gives the truth for lag, and the pair is a mixed deployment.
 *
 * The tests share one topology and run in order.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'pg';
import {
  CREATE_HEARTBEAT_TABLE,
  HEARTBEAT_SCHEMA,
  HEARTBEAT_TABLE,
} from '../src/drivers/postgresql/heartbeat';
import { startDelayProxy, type DelayProxy } from './support/delay-proxy';
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, value, type Sample } from './support/metrics-text';
import { startPgCluster, steadyWrites, waitStreaming, type PgCluster, type PgNode } from './support/postgres';
import { freePorts, sleep, tempDir, waitFor } from './support/processes';

const ROLE = 'dsx_monitor';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const REPLICATION_PASSWORD = `repl-${randomBytes(12).toString('hex')}`;
const DELAY_S = 3;
/** wal_receiver_timeout of the standby: a healthy link is never silent much longer than half of it. */
const RECEIVER_TIMEOUT_S = 4;
const LAG = 'datastore_shard_replication_lag_seconds';
const LAST_OP = 'datastore_shard_last_operation_timestamp_seconds';

describe('postgresql default mode: lag, reads and last-op, next to a heartbeat exporter', () => {
  let cluster: PgCluster;
  let primary: PgNode;
  let standby: PgNode;
  let proxy: DelayProxy;
  let secrets: ReturnType<typeof tempDir>;
  let shard: { shard_id: string };
  /** Without --heartbeat: the subjects. */
  let plainPrimary: TestExporter;
  let plainStandby: TestExporter;
  /** With --heartbeat: the truth for lag, and the other half of a mixed deployment. */
  let hbPrimary: TestExporter;
  let hbStandby: TestExporter;
  let writer: Client;

  const lagOf = async (e: TestExporter): Promise<number | undefined> =>
    find(await e.scrape(), LAG, shard)[0]?.value;
  const counters = (s: Sample[]) => ({
    writes: value(s, 'datastore_writes_total'),
    reads: value(s, 'datastore_reads_total'),
    lastOp: find(s, LAST_OP, shard)[0]?.value,
  });

  beforeAll(async () => {
    const [p, s] = await freePorts(2);
    const preload = { shared_preload_libraries: 'pg_stat_statements' };
    cluster = await startPgCluster({
      primaryPort: p!,
      primarySettings: preload,
      standbys: [
        {
          name: 'standby',
          port: s!,
          settings: { ...preload, wal_receiver_timeout: `${RECEIVER_TIMEOUT_S}s` },
        },
      ],
      setup: `
        ALTER ROLE postgres PASSWORD '${REPLICATION_PASSWORD}';
        CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}';
        GRANT pg_monitor TO ${ROLE};
        CREATE EXTENSION pg_stat_statements;
        CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);
        INSERT INTO events (note) SELECT 'row ' || i FROM generate_series(1, 100) AS i;
        ${CREATE_HEARTBEAT_TABLE};
        GRANT USAGE ON SCHEMA ${HEARTBEAT_SCHEMA} TO ${ROLE};
        GRANT SELECT, INSERT, UPDATE ON ${HEARTBEAT_TABLE} TO ${ROLE};`,
    });
    primary = cluster.primary;
    standby = cluster.standbys[0]!;
    // The standby streams over TCP through the proxy from here on.
    proxy = await startDelayProxy(p!, 0);
    standby.psql(
      `ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${proxy.port} user=postgres password=${REPLICATION_PASSWORD}'`,
    );
    standby.psql('SELECT pg_reload_conf()');
    await waitFor(
      'standby streaming through the proxy',
      () =>
        standby.psql(
          `SELECT status = 'streaming' AND sender_port = ${proxy.port} FROM pg_stat_wal_receiver`,
        ) === 't',
      20000,
    );
    shard = { shard_id: primary.psql('SELECT system_identifier FROM pg_control_system()') };
    secrets = tempDir('pg-default');
    const passwordFile = join(secrets.path, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const start = (node: PgNode, heartbeat: boolean): Promise<TestExporter> =>
      startTestExporter([
        '--target',
        `postgresql://${ROLE}@127.0.0.1:${node.port}/postgres`,
        '--target.password-file',
        passwordFile,
        ...(heartbeat ? ['--heartbeat'] : []),
      ]);
    [plainPrimary, plainStandby, hbPrimary, hbStandby] = await Promise.all([
      start(primary, false),
      start(standby, false),
      start(primary, true),
      start(standby, true),
    ]);
    await Promise.all([plainPrimary, plainStandby, hbPrimary, hbStandby].map((e) => e.waitUp()));
    writer = await primary.connect();
    // Heartbeats are flowing and read on the standby.
    await waitFor('heartbeat lag on the standby', async () => (await lagOf(hbStandby)) !== undefined, 15000);
  }, 120000);

  afterAll(async () => {
    await writer?.end();
    await Promise.all([plainPrimary, plainStandby, hbPrimary, hbStandby].map((e) => e?.stop()));
    await proxy?.close();
    await cluster?.stop();
    secrets?.remove();
  });

  test('without --heartbeat: no heartbeat time; a standby on a healthy link reports 0, not a growing age', async () => {
    await Promise.all([plainPrimary, plainStandby].map((e) => e.nextCollections(2)));
    for (const e of [plainPrimary, plainStandby]) {
      expect(find(await e.scrape(), 'datastore_shard_heartbeat_timestamp_seconds')).toHaveLength(0);
    }
    expect(find(await plainPrimary.scrape(), LAG)).toHaveLength(0);
    for (let i = 0; i < 3; i++) {
      await plainStandby.nextCollections(1);
      expect(await lagOf(plainStandby)).toBe(0);
    }
  });

  test('an exporter without --heartbeat sees no heartbeat writes, reads or last-op; a client INSERT moves them', async () => {
    const plain = [plainPrimary, plainStandby];
    await Promise.all(plain.map((e) => e.nextCollections(1)));
    const before = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
    // ~12 heartbeats written by the other exporter, read by it on both nodes every second.
    await sleep(6000);
    await Promise.all(plain.map((e) => e.nextCollections(1)));
    const idle = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
    expect(idle).toEqual(before);
    expect(Number(primary.psql(`SELECT seq FROM ${HEARTBEAT_TABLE}`))).toBeGreaterThan(10);

    const t0 = Date.now() / 1000;
    await writer.query(`INSERT INTO events (note) VALUES ('client write')`);
    await waitFor(
      'the write on both nodes',
      async () => {
        const now = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
        return now.every((c) => (c.lastOp ?? 0) >= t0 - 0.5);
      },
      10000,
      50,
    );
    await Promise.all(plain.map((e) => e.nextCollections(2)));
    const [p, s] = await Promise.all(plain.map(async (e) => counters(await e.scrape())));
    expect(p!.writes).toBe(before[0]!.writes + 1);
    // A standby executes no row writes (replay is not counted there).
    expect(s!.writes).toBe(before[1]!.writes);
    expect(p!.reads).toBe(before[0]!.reads);
    expect(s!.reads).toBe(before[1]!.reads);
  }, 30000);

  test('reads count statements: 20 single-row lookups are 20 reads at the next collection (pg_stat_statements)', async () => {
    await plainPrimary.nextCollections(1);
    const before = value(await plainPrimary.scrape(), 'datastore_reads_total');
    const reader = await primary.connect();
    try {
      for (let i = 1; i <= 20; i++) await reader.query('SELECT note FROM events WHERE id = $1', [i]);
      await plainPrimary.nextCollections(1);
      expect(value(await plainPrimary.scrape(), 'datastore_reads_total') - before).toBe(20);
      // Rows would have been another story: PostgreSQL's tup_returned for the same work.
      await plainPrimary.nextCollections(2);
      expect(value(await plainPrimary.scrape(), 'datastore_reads_total') - before).toBe(20);
    } finally {
      await reader.end();
    }
  });

  test('track_commit_timestamp off: an INSERT followed by an 8 s statement in the same session is seen within one interval', async () => {
    expect(primary.psql('SHOW track_commit_timestamp')).toBe('off');
    const session = await primary.connect();
    try {
      await plainPrimary.nextCollections(1);
      const writesBefore = value(await plainPrimary.scrape(), 'datastore_writes_total');
      const committed = Date.now() / 1000;
      await session.query(`INSERT INTO events (note) VALUES ('then a long statement')`);
      const long = session.query('SELECT pg_sleep(8)');
      const seenAt: number = await waitFor(
        'last-op at the INSERT',
        async () => (((await lagLastOp(plainPrimary)) ?? 0) >= committed - 0.5 ? Date.now() / 1000 : 0),
        8000,
        50,
      );
      const s = await plainPrimary.scrape();
      console.log(
        `INSERT + 8 s statement: last-op seen ${(seenAt - committed).toFixed(2)} s after the commit; writes_total moved by ${value(s, 'datastore_writes_total') - writesBefore} so far`,
      );
      // One 1 s interval, plus the collection itself and the polling.
      expect(seenAt - committed).toBeLessThanOrEqual(2);
      // pg_stat_database has not been told yet: the session publishes it after the statement.
      expect(value(s, 'datastore_writes_total')).toBe(writesBefore);
      await long;
      await waitFor(
        'writes_total catches up after the statement',
        async () => value(await plainPrimary.scrape(), 'datastore_writes_total') === writesBefore + 1,
        5000,
      );
    } finally {
      await session.end();
    }
  }, 20000);

  async function lagLastOp(e: TestExporter): Promise<number | undefined> {
    return find(await e.scrape(), LAST_OP, shard)[0]?.value;
  }

  test(`a standby behind a ${DELAY_S} s network delay: lag within 1 s of the truth while the primary writes`, async () => {
    proxy.delayMs = DELAY_S * 1000;
    const load = steadyWrites(writer, `INSERT INTO events (note) VALUES ('load')`, 200);
    const plain: number[] = [];
    const truth: number[] = [];
    try {
      await sleep((DELAY_S + 2) * 1000);
      for (let i = 0; i < 6; i++) {
        await Promise.all([plainStandby, hbStandby].map((e) => e.nextCollections(1)));
        plain.push((await lagOf(plainStandby))!);
        truth.push((await lagOf(hbStandby))!);
      }
    } finally {
      await load.stop();
      proxy.delayMs = 0;
    }
    console.log(
      `${DELAY_S} s network delay: default mode ${plain.map((x) => x.toFixed(2))}; heartbeat ${truth.map((x) => x.toFixed(2))}`,
    );
    for (const [i, lag] of plain.entries()) {
      expect(Math.abs(lag - DELAY_S)).toBeLessThanOrEqual(1);
      expect(Math.abs(lag - truth[i]!)).toBeLessThanOrEqual(1);
    }
    // Bytes already in the proxy keep their delay; then the link is healthy again: 0.
    await waitFor('default-mode lag back to 0', async () => (await lagOf(plainStandby)) === 0, 20000);
  }, 60000);

  test('a stopped WAL receiver (SIGSTOP) while the primary writes: lag right within 1 s once the link is silent for longer than wal_receiver_timeout / 2', async () => {
    await waitStreaming(standby);
    const pid = Number(standby.psql('SELECT pid FROM pg_stat_wal_receiver'));
    const load = steadyWrites(writer, `INSERT INTO events (note) VALUES ('load')`, 200);
    const rows: { since: number; plain: number; truth: number }[] = [];
    try {
      await sleep(2000);
      process.kill(pid, 'SIGSTOP');
      const stoppedAt = Date.now() / 1000;
      for (let i = 0; i < 9; i++) {
        await Promise.all([plainStandby, hbStandby].map((e) => e.nextCollections(1)));
        rows.push({
          since: Date.now() / 1000 - stoppedAt,
          plain: (await lagOf(plainStandby))!,
          truth: (await lagOf(hbStandby))!,
        });
      }
    } finally {
      process.kill(pid, 'SIGCONT');
      await load.stop();
    }
    console.log(
      `WAL receiver stopped: ${rows.map((r) => `${r.since.toFixed(1)}s default ${r.plain.toFixed(2)} / heartbeat ${r.truth.toFixed(2)}`).join('; ')}`,
    );
    // Silence longer than a healthy link allows: wal_receiver_timeout / 2 + 1 s margin (+ transit ~0).
    const tellable = RECEIVER_TIMEOUT_S / 2 + 1;
    for (const r of rows) {
      // Never above the truth (a lower bound while it cannot tell)...
      expect(r.plain).toBeLessThanOrEqual(r.truth + 0.5);
      // ...and right once the silence tells (one more second for the sampling).
      if (r.since > tellable + 1) expect(Math.abs(r.plain - r.truth)).toBeLessThanOrEqual(1);
    }
    expect(rows[rows.length - 1]!.plain).toBeGreaterThan(tellable);
    await waitFor('default-mode lag back to 0', async () => (await lagOf(plainStandby)) === 0, 20000);
  }, 60000);
});
