/**
 * The PostgreSQL driver end to end against real servers: a primary, a streaming standby and a
 * standby with recovery_min_apply_delay = 3 s, all made by the test (initdb, pg_basebackup -R).
 * The exporter connects over TCP as a role that has nothing but pg_monitor, with its password read
 * from --target.password-file. Every model metric is checked against what psql says.
 *
 * The tests share one topology and run in order: the later ones stop, kill and promote servers.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { clientConfig } from '../src/drivers/postgresql/connection';
import { STATUS_QUERY } from '../src/drivers/postgresql/status';
import { parseTarget } from '../src/core/target';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import {
  startPgCluster,
  steadyWrites,
  waitReplayed,
  waitStreaming,
  type PgCluster,
  type PgNode,
} from './support/postgres';
import { freePort, freePorts, sleep, tempDir, waitFor } from './support/processes';

const PROMTOOL = '/usr/bin/promtool';
/** Rows of a table read by one sequential scan: one read, however many rows. */
const BIG_ROWS = 10000;
const APPLY_DELAY_SECONDS = 3;
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const PLAIN_PASSWORD = `plain-${randomBytes(12).toString('hex')}`;

const LAG = 'datastore_shard_replication_lag_seconds';
const LAST_OP = 'datastore_shard_last_operation_timestamp_seconds';
const OFFSET = 'datastore_shard_commit_offset';

function promtoolCheck(text: string): void {
  // Throws (failing the test) on a non-zero exit, with promtool's complaints in the message.
  execFileSync(PROMTOOL, ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function numberFrom(node: PgNode, sql: string): number {
  const text = node.psql(sql);
  const n = Number(text);
  if (text === '' || !Number.isFinite(n))
    throw new Error(`${node.name}: ${sql} gave ${JSON.stringify(text)}`);
  return n;
}

function optional(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = find(samples, name, labels);
  return found.length === 1 ? found[0]!.value : undefined;
}

/** Other client backends as psql sees them: not psql itself, not the exporter. */
function psqlClientCount(node: PgNode): number {
  return numberFrom(
    node,
    `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
       AND pid <> pg_backend_pid() AND application_name <> 'datastore-exporter'`,
  );
}

function psqlWrites(node: PgNode): number {
  return numberFrom(node, 'SELECT sum(tup_inserted + tup_updated + tup_deleted) FROM pg_stat_database');
}

describe('postgresql primary, streaming standby and delayed standby', () => {
  let cluster: PgCluster;
  let primary: PgNode;
  let standby: PgNode;
  let delayed: PgNode;
  let systemId: string;
  let secrets: ReturnType<typeof tempDir>;
  let passwordFile: string;
  const exporters = new Map<PgNode, TestExporter>();
  /** Every exporter started in this file, for the "password never leaks" check. */
  const allExporters: TestExporter[] = [];

  const url = (node: PgNode, user = 'dsx_monitor'): string =>
    `postgresql://${user}@127.0.0.1:${node.port}/postgres`;
  const exporterFor = (node: PgNode): TestExporter => exporters.get(node)!;
  const startExporterFor = async (node: PgNode, file = passwordFile): Promise<TestExporter> => {
    const e = await startTestExporter(['--target', url(node), '--target.password-file', file]);
    allExporters.push(e);
    return e;
  };
  const shard = (): { shard_id: string } => ({ shard_id: systemId });

  beforeAll(async () => {
    const [p, s, d] = await freePorts(3);
    cluster = await startPgCluster({
      primaryPort: p!,
      standbys: [
        // track_commit_timestamp on the standby only: after its promotion (last test) it is a primary
        // that keeps commit times, while the original primary proves the fallback without them.
        { name: 'standby', port: s!, settings: { track_commit_timestamp: 'on' } },
        { name: 'delayed', port: d!, settings: { recovery_min_apply_delay: `${APPLY_DELAY_SECONDS}s` } },
      ],
      setup: `
        CREATE ROLE dsx_monitor LOGIN PASSWORD '${PASSWORD}';
        GRANT pg_monitor TO dsx_monitor;
        CREATE ROLE dsx_plain LOGIN PASSWORD '${PLAIN_PASSWORD}';
        CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);
        CREATE TABLE big AS SELECT generate_series(1, ${BIG_ROWS}) AS n;`,
    });
    ({ primary } = cluster);
    [standby, delayed] = cluster.standbys as [PgNode, PgNode];
    systemId = primary.psql('SELECT system_identifier FROM pg_control_system()');
    secrets = tempDir('pg-secrets');
    passwordFile = join(secrets.path, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    for (const node of [primary, standby, delayed]) exporters.set(node, await startExporterFor(node));
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(1)));
  }, 90000);

  afterAll(async () => {
    // The others (wrong password, fresh) stop in their own tests.
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await cluster?.stop();
    secrets?.remove();
  });

  test('identity, version, role, offset and clients on every node match psql; promtool accepts the output', async () => {
    const held: Client[] = [await primary.connect(), await primary.connect()];
    try {
      await Promise.all([...exporters.values()].map((e) => e.nextCollections(2)));
      for (const [node, exporter] of exporters) {
        const text = await exporter.scrapeText();
        promtoolCheck(text);
        const s = await exporter.scrape();
        const isPrimary = node === primary;
        expect(value(s, 'datastore_up')).toBe(1);
        // cluster_id = system identifier, the same on all three; node_id = host:port (no native id).
        expect(
          value(s, 'datastore_node_info', {
            datastore: 'postgresql',
            node_id: `${hostname()}:${node.port}`,
            cluster_id: systemId,
          }),
        ).toBe(1);
        expect(node.psql('SELECT system_identifier FROM pg_control_system()')).toBe(systemId);
        expect(
          value(s, 'datastore_version_info', {
            datastore: 'postgresql',
            version: node.psql('SHOW server_version'),
          }),
        ).toBe(1);
        expect(roleOf(s, systemId)).toBe(isPrimary ? 'primary' : 'secondary');
        expect(node.psql('SELECT pg_is_in_recovery()')).toBe(isPrimary ? 'f' : 't');
        expect(find(s, 'datastore_shard_role')).toHaveLength(3);

        // Offset: the WAL position in bytes, as psql computes it with pg_lsn arithmetic.
        const offset = value(s, OFFSET, shard());
        const psqlOffset = numberFrom(
          node,
          `SELECT ${isPrimary ? 'pg_current_wal_lsn()' : 'pg_last_wal_replay_lsn()'} - '0/0'::pg_lsn`,
        );
        expect(offset).toBeLessThanOrEqual(psqlOffset);
        expect(psqlOffset - offset).toBeLessThan(64 * 1024);
        expect(offset).toBeGreaterThan(0);

        // Idle and streaming: standbys report lag 0, a primary none at all.
        if (isPrimary) expect(find(s, LAG)).toHaveLength(0);
        else expect(value(s, LAG, shard())).toBe(0);

        // Clients: the two held sessions on the primary, nobody on the standbys; never the exporter.
        // psql's view is polled: the backend of a psql that just exited may still be on its way out.
        const clients = value(s, 'datastore_clients_connected');
        expect(clients).toBe(isPrimary ? 2 : 0);
        await waitFor(
          `psql to count ${clients} clients on ${node.name}`,
          () => psqlClientCount(node) === clients,
          5000,
        );

        // The exporter's own session: the monitoring role, named, and not a superuser.
        expect(
          node.psql(
            `SELECT usename || ' ' || r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
              WHERE application_name = 'datastore-exporter'`,
          ),
        ).toBe('dsx_monitor false');
      }
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }
  });

  test('the session is read-only with a statement timeout; pg_monitor is what makes replication visible', async () => {
    const config = clientConfig(parseTarget(url(primary), PASSWORD), 800);
    const session = new Client(config);
    await session.connect();
    try {
      expect(
        (await session.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only,
      ).toBe('on');
      expect((await session.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('800ms');
      await expect(session.query(`INSERT INTO events (note) VALUES ('no')`)).rejects.toThrow(
        /read-only transaction/,
      );
      await expect(session.query('SELECT pg_sleep(2)')).rejects.toThrow(/statement timeout/);
    } finally {
      await session.end();
    }

    // The whole status query as the pg_monitor role on a standby: the WAL receiver is visible...
    const monitor = new Client(clientConfig(parseTarget(url(standby), PASSWORD), 800));
    await monitor.connect();
    const row = (await monitor.query(STATUS_QUERY)).rows[0];
    await monitor.end();
    expect(row).toMatchObject({
      system_identifier: systemId,
      in_recovery: true,
      wal_receiver_status: 'streaming',
    });
    // ...while a role without pg_monitor gets NULL there (pg_read_all_stats is part of pg_monitor).
    const plain = new Client(clientConfig(parseTarget(url(standby, 'dsx_plain'), PLAIN_PASSWORD), 800));
    await plain.connect();
    const plainRow = (await plain.query(STATUS_QUERY)).rows[0];
    await plain.end();
    expect(plainRow.wal_receiver_status).toBeNull();
  });

  test('writes move writes_total and last-op on the primary, and after replay last-op on both standbys', async () => {
    const pe = exporterFor(primary);
    let s = await pe.scrape();
    // Nothing written since the exporter started: the write time is not known yet, so absent.
    expect(find(s, LAST_OP)).toHaveLength(0);
    const writesBefore = value(s, 'datastore_writes_total');
    const standbyWritesBefore = value(await exporterFor(standby).scrape(), 'datastore_writes_total');

    const t0 = Date.now() / 1000;
    primary.psql(`
      INSERT INTO events (note) SELECT 'w' || i FROM generate_series(1, 3) AS i;
      UPDATE events SET note = 'updated' WHERE id = (SELECT min(id) FROM events);
      DELETE FROM events WHERE id = (SELECT max(id) FROM events);`);
    await pe.nextCollections(2);
    s = await pe.scrape();
    const writes = value(s, 'datastore_writes_total');
    expect(writes).toBeGreaterThanOrEqual(writesBefore + 5);
    expect(writes).toBe(psqlWrites(primary));
    const lastOp = value(s, LAST_OP, shard());
    expect(lastOp).toBeGreaterThanOrEqual(t0 - 0.5);
    expect(lastOp).toBeLessThanOrEqual(Date.now() / 1000 + 0.5);

    // Streaming standby: the primary commit time of the replayed transaction, exactly as psql says.
    await waitReplayed(primary, standby);
    await exporterFor(standby).nextCollections(2);
    const ss = await exporterFor(standby).scrape();
    const replayed = numberFrom(standby, 'SELECT extract(epoch FROM pg_last_xact_replay_timestamp())');
    expect(value(ss, LAST_OP, shard())).toBeCloseTo(replayed, 3);
    expect(replayed).toBeGreaterThanOrEqual(t0 - 0.5);
    // A standby executes no row writes: replay does not count in its pg_stat_database.
    expect(value(ss, 'datastore_writes_total')).toBe(standbyWritesBefore);
    expect(value(ss, 'datastore_writes_total')).toBe(psqlWrites(standby));

    // Delayed standby: the same commit shows up only after the apply delay.
    const seenAt = await waitFor(
      'delayed standby last-op to reach the write',
      async () => {
        const v = optional(await exporterFor(delayed).scrape(), LAST_OP, shard());
        return v !== undefined && v >= t0 - 0.5 ? Date.now() / 1000 : undefined;
      },
      10000,
      50,
    );
    expect(seenAt - t0).toBeGreaterThanOrEqual(APPLY_DELAY_SECONDS - 0.5);

    // Reads count operations, not rows: 20 single-row lookups (pgbench -S style) and one sequential
    // scan of BIG_ROWS rows are 21 reads. This cluster has no pg_stat_statements: they are counted as
    // transactions that wrote nothing, which a session publishes when it goes idle or ends; the
    // exporter's own statements are left out. They move neither writes nor last-op.
    const readsBefore = value(await pe.scrape(), 'datastore_reads_total');
    const reader = await primary.connect();
    for (let i = 1; i <= 20; i++) await reader.query('SELECT note FROM events WHERE id = $1', [i]);
    expect((await reader.query('SELECT count(*) AS n FROM big')).rows[0].n).toBe(String(BIG_ROWS));
    await reader.end();
    await waitFor(
      '21 reads counted',
      async () => value(await pe.scrape(), 'datastore_reads_total') - readsBefore >= 21,
      15000,
    );
    await pe.nextCollections(3);
    s = await pe.scrape();
    expect(value(s, 'datastore_reads_total') - readsBefore).toBe(21);
    expect(value(s, 'datastore_writes_total')).toBe(writes);
    expect(value(s, LAST_OP, shard())).toBe(lastOp);
  });

  test('idle, caught-up standbys: lag 0 that does not grow (where now() - last replay time keeps growing)', async () => {
    await waitReplayed(primary, delayed);
    await Promise.all([standby, delayed].map((n) => exporterFor(n).nextCollections(1)));
    const naive = (): number =>
      numberFrom(delayed, 'SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())');
    const naiveBefore = naive();
    for (let i = 0; i < 4; i++) {
      await Promise.all([standby, delayed].map((n) => exporterFor(n).nextCollections(1)));
      for (const node of [standby, delayed])
        expect(value(await exporterFor(node).scrape(), LAG, shard())).toBe(0);
    }
    // The formula peer exporters use would have reported a growing lag over the same seconds.
    expect(naive()).toBeGreaterThan(naiveBefore + 3);
  });

  test(`delayed standby under a steady write load reports the ${APPLY_DELAY_SECONDS} s apply delay within ±1 s`, async () => {
    const writer = await primary.connect();
    const load = steadyWrites(writer, `INSERT INTO events (note) VALUES ('load')`, 200);
    const delayedLags: number[] = [];
    const streamingLags: number[] = [];
    try {
      // Let the delay fill up: after it, every collection sees commits waiting to be applied.
      await sleep((APPLY_DELAY_SECONDS + 1.5) * 1000);
      for (let i = 0; i < 6; i++) {
        await Promise.all([standby, delayed].map((n) => exporterFor(n).nextCollections(1)));
        delayedLags.push(value(await exporterFor(delayed).scrape(), LAG, shard()));
        streamingLags.push(value(await exporterFor(standby).scrape(), LAG, shard()));
      }
    } finally {
      await load.stop();
      await writer.end();
    }
    const stats = (xs: number[]): string =>
      `min ${Math.min(...xs).toFixed(3)} max ${Math.max(...xs).toFixed(3)} mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)}`;
    console.log(
      `injected delay ${APPLY_DELAY_SECONDS}s -> reported lag ${stats(delayedLags)}; streaming standby ${stats(streamingLags)}`,
    );
    for (const lag of delayedLags) {
      expect(lag).toBeGreaterThanOrEqual(APPLY_DELAY_SECONDS - 1);
      expect(lag).toBeLessThanOrEqual(APPLY_DELAY_SECONDS + 1);
    }
    for (const lag of streamingLags) expect(lag).toBeLessThanOrEqual(1);

    // Load stopped: once the last commits are applied, the delayed standby is back at 0.
    await waitFor(
      'delayed standby lag back to 0',
      async () => value(await exporterFor(delayed).scrape(), LAG, shard()) === 0,
      (APPLY_DELAY_SECONDS + 4) * 1000,
    );
  });

  test('WAL receiver not streaming: lag grows from the moment the standby was last seen current', async () => {
    const se = exporterFor(standby);
    const original = standby.psql('SHOW primary_conninfo');
    const deadPort = await freePort();
    standby.psql(
      `ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${deadPort} user=postgres connect_timeout=1'`,
    );
    standby.psql('SELECT pg_reload_conf()');
    const cutAt = Date.now() / 1000;
    let fresh: TestExporter | undefined;
    try {
      await waitFor(
        'standby not streaming',
        () => standby.psql('SELECT status FROM pg_stat_wal_receiver') !== 'streaming',
      );
      // The primary moves on; the standby cannot know.
      primary.psql(`INSERT INTO events (note) VALUES ('unseen by the cut-off standby')`);
      // Everything received is replayed, so "receive == replay -> 0" would claim it is current.
      expect(standby.psql('SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()')).toBe('t');

      const lags: number[] = [];
      for (let i = 0; i < 3; i++) {
        await se.nextCollections(1);
        const lag = value(await se.scrape(), LAG, shard());
        lags.push(lag);
        // Seconds since the cut (the exporter last saw it current at most one interval before).
        const sinceCut = Date.now() / 1000 - cutAt;
        console.log(
          `not streaming: ${sinceCut.toFixed(3)} s after the cut-off, reported lag ${lag.toFixed(3)}`,
        );
        expect(Math.abs(lag - sinceCut)).toBeLessThanOrEqual(1.5);
      }
      expect(lags[2]!).toBeGreaterThan(lags[0]!);
      expect(roleOf(await se.scrape(), systemId)).toBe('secondary');

      // An exporter that never saw the standby current: the age of the last replayed commit.
      fresh = await startExporterFor(standby);
      await fresh.nextCollections(2);
      const freshLag = value(await fresh.scrape(), LAG, shard());
      const lastReplayedAge = numberFrom(
        standby,
        'SELECT extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())',
      );
      console.log(
        `not streaming, fresh exporter: lag ${freshLag.toFixed(3)}, psql age of last replayed commit ${lastReplayedAge.toFixed(3)}`,
      );
      expect(Math.abs(freshLag - lastReplayedAge)).toBeLessThanOrEqual(1.5);
    } finally {
      await fresh?.stop();
      standby.psql(`ALTER SYSTEM SET primary_conninfo = '${original.replace(/'/g, "''")}'`);
      standby.psql('SELECT pg_reload_conf()');
    }
    await waitStreaming(standby);
    await waitFor(
      'lag back to 0 once streaming again',
      async () => value(await se.scrape(), LAG, shard()) === 0,
      10000,
    );
  });

  test('wrong password: datastore_up 0 with the server’s reason logged; no password anywhere', async () => {
    const wrongFile = join(secrets.path, 'wrong');
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    writeFileSync(wrongFile, wrong);
    const e = await startExporterFor(primary, wrongFile);
    try {
      await e.nextCollections(1);
      const text = await e.scrapeText();
      expect(value(await e.scrape(), 'datastore_up')).toBe(0);
      expect(e.logs.some((l) => /password authentication failed for user \\?"dsx_monitor/.test(l))).toBe(
        true,
      );
      expect(e.logs.join('\n')).not.toContain(wrong);
      expect(text).not.toContain(wrong);
    } finally {
      await e.stop();
    }
  });

  let backend = 0;
  testServerHung({
    what: 'a standby and its exporter session',
    exporter: () => exporterFor(delayed),
    pause: () => {
      backend = numberFrom(
        delayed,
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'datastore-exporter'`,
      );
      process.kill(delayed.process.pid, 'SIGSTOP');
      process.kill(backend, 'SIGSTOP');
      return Promise.resolve();
    },
    // Reconnects meanwhile hit a postmaster that never answers: they time out as well.
    whileDown: () => exporterFor(delayed).nextCollections(2),
    resume: () => {
      process.kill(backend, 'SIGCONT');
      process.kill(delayed.process.pid, 'SIGCONT');
      return Promise.resolve();
    },
    downWithinMs: 10000,
    upWithinMs: 10000,
    afterRecovery: async () => {
      // The abandoned session and any half-made connections are gone: one exporter session remains.
      await waitFor(
        'one exporter session',
        () =>
          delayed.psql(
            `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'datastore-exporter'`,
          ) === '1',
        10000,
      );
    },
  });

  testServerStopped({
    what: 'the primary',
    how: 'killed',
    exporter: () => exporterFor(primary),
    stop: () => primary.kill(),
    downWithinMs: 10000,
    restart: () => primary.restart(),
    upWithinMs: 8000,
    afterRecovery: async () => {
      const e = exporterFor(primary);
      expect(roleOf(await e.scrape(), systemId)).toBe('primary');
      promtoolCheck(await e.scrapeText());
      await waitStreaming(standby);
    },
  });

  test('promotion (pg_promote) flips the role within one interval; then last-op is the commit timestamp', async () => {
    const e = exporterFor(standby);
    expect(roleOf(await e.scrape(), systemId)).toBe('secondary');
    const offsetBefore = value(await e.scrape(), OFFSET, shard());
    expect(standby.psql('SELECT pg_promote()')).toBe('t');
    // One interval is 1 s; allow the collection in flight to finish.
    await waitFor(
      'promoted standby reports primary',
      async () => roleOf(await e.scrape(), systemId) === 'primary',
      2500,
    );
    let s = await e.scrape();
    expect(find(s, LAG)).toHaveLength(0);
    // The new timeline starts where replay stopped: the LSN goes on (no reset, no jump beyond the
    // end-of-recovery records), so the promoted node stays comparable with its former standbys.
    const offsetAfter = value(s, OFFSET, shard());
    expect(offsetAfter).toBeGreaterThanOrEqual(offsetBefore);
    expect(offsetAfter - offsetBefore).toBeLessThan(16 * 1024 * 1024);
    // (the WAL file name starts with the timeline: a new one since the promotion)
    expect(
      parseInt(standby.psql('SELECT pg_walfile_name(pg_current_wal_lsn())').slice(0, 8), 16),
    ).toBeGreaterThan(1);

    // track_commit_timestamp is on here: last-op is pg_last_committed_xact(), to the microsecond.
    standby.psql(`INSERT INTO events (note) VALUES ('written on the promoted node')`);
    await e.nextCollections(2);
    s = await e.scrape();
    const committed = numberFrom(standby, 'SELECT extract(epoch FROM (pg_last_committed_xact()).timestamp)');
    expect(value(s, LAST_OP, shard())).toBeCloseTo(committed, 3);
    const offset = value(s, OFFSET, shard());
    const psqlOffset = numberFrom(standby, `SELECT pg_current_wal_lsn() - '0/0'::pg_lsn`);
    expect(offset).toBeLessThanOrEqual(psqlOffset);
    expect(psqlOffset - offset).toBeLessThan(64 * 1024);
    promtoolCheck(await e.scrapeText());
  });

  test('the password never appears in any exporter log or /metrics output', async () => {
    for (const e of allExporters) {
      expect(e.logs.length).toBeGreaterThan(0);
      expect(e.logs.join('\n')).not.toContain(PASSWORD);
    }
    for (const e of exporters.values()) expect(await e.scrapeText()).not.toContain(PASSWORD);
  });
});
