/**
 * The MySQL/MariaDB driver end to end against real mariadbd processes: a binlog primary, a GTID
 * replica and a replica with MASTER_DELAY, each watched by its own exporter that logs in as a
 * least-privilege user whose password comes from a file. Every model field is checked against what the
 * mariadb CLI says on the same node. (MySQL 8's formats are covered by test/mysql-format.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import type { Connection } from 'mysql2/promise';
import { MysqlDriver } from '../src/drivers/mysql/driver';
import { parseTarget } from '../src/core/target';
import { startTestExporter, type TestExporter } from './support/exporter';
import { testServerHung, testServerStopped } from './support/outage-conformance';
import { find, roleOf, value, type Sample } from './support/metrics-text';
import { requireBinary, sleep, waitFor } from './support/processes';
import {
  EXPORTER_GRANT,
  EXPORTER_PASSWORD,
  EXPORTER_USER,
  TESTER_PASSWORD,
  TESTER_USER,
  startMariadbReplication,
  waitCaughtUp,
  type MariadbNode,
  type MariadbReplication,
} from './support/mariadb';

const PROMTOOL = '/usr/bin/promtool';
const DELAY_SECONDS = 3;
const SHARD = 'default';
const LAG = 'datastore_shard_replication_lag_seconds';
const LAST_OP = 'datastore_shard_last_operation_timestamp_seconds';
const OFFSET = 'datastore_shard_commit_offset';

/** DML counters the driver documents as writes, recomputed here from the CLI. */
const WRITE_COUNTERS = [
  'Com_insert',
  'Com_insert_select',
  'Com_update',
  'Com_update_multi',
  'Com_delete',
  'Com_delete_multi',
  'Com_replace',
  'Com_replace_select',
  'Com_load',
];

/** SHOW GLOBAL STATUS / VARIABLES as a map. SHOW statements, not SELECTs: they leave Com_select alone. */
function showMap(node: MariadbNode, what: 'STATUS' | 'VARIABLES'): Map<string, string> {
  return new Map(node.sql(`SHOW GLOBAL ${what}`).map((r) => [r['Variable_name']!, r['Value']!]));
}

/** Transactions in a MariaDB GTID position: sum of the seq_no of each domain-server-seq. */
function gtidSum(pos: string): number {
  return pos
    .split(',')
    .filter((g) => g.trim() !== '')
    .reduce((sum, g) => sum + Number(g.trim().split('-')[2]), 0);
}

function lagOf(s: Sample[]): number | undefined {
  return find(s, LAG, { shard_id: SHARD })[0]?.value;
}

describe('mariadb primary, GTID replica and delayed replica', () => {
  let topo: MariadbReplication;
  let primary: MariadbNode;
  let replica: MariadbNode;
  let delayed: MariadbNode;
  const exporters = new Map<MariadbNode, TestExporter>();
  const exp = (node: MariadbNode): TestExporter => exporters.get(node)!;
  const scrape = (node: MariadbNode): Promise<Sample[]> => exp(node).scrape();

  beforeAll(async () => {
    requireBinary(PROMTOOL, 'the Debian package prometheus');
    topo = await startMariadbReplication(DELAY_SECONDS);
    ({ primary, replica, delayed } = topo);
    for (const node of [primary, replica, delayed]) {
      exporters.set(
        node,
        await startTestExporter(['--target', node.url, '--target.password-file', node.passwordFile]),
      );
    }
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(1)));
  }, 90000);

  afterAll(async () => {
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await topo?.stop();
  });

  test('the exporter logs in as a user holding only SLAVE MONITOR', () => {
    const grants = primary
      .sql(`SHOW GRANTS FOR '${EXPORTER_USER}'@'127.0.0.1'`)
      .map((r) => Object.values(r)[0]);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatch(new RegExp(`^GRANT ${EXPORTER_GRANT} ON \\*\\.\\* TO \`${EXPORTER_USER}\``));
  });

  test('the session is read-only, in UTC, with a server-side statement timeout (even for a user who may write)', async () => {
    const driver = new MysqlDriver({
      target: parseTarget(`mariadb://${TESTER_USER}@127.0.0.1:${primary.port}`, TESTER_PASSWORD),
      timeoutMs: 800,
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined },
      extra: {},
      heartbeat: false,
    });
    await driver.connect();
    try {
      // The driver's own statement runner: the same session the exporter collects on.
      const query = (
        driver as unknown as { query(sql: string): Promise<Record<string, unknown>[]> }
      ).query.bind(driver);
      const session = new Map(
        (
          await query(
            "SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_read_only', 'max_statement_time', 'time_zone')",
          )
        ).map((r) => [String(r['Variable_name']), String(r['Value'])]),
      );
      expect(Object.fromEntries(session)).toEqual({
        tx_read_only: 'ON',
        max_statement_time: '0.800000',
        time_zone: '+00:00',
      });
      await expect(query('INSERT INTO app.events () VALUES ()')).rejects.toThrow(/READ ONLY transaction/i);
    } finally {
      await driver.close();
    }
  });

  test('every field on every node matches the mariadb CLI', async () => {
    for (const node of [primary, replica, delayed]) {
      await exp(node).nextCollections(1);
      const s = await scrape(node);
      // Read with SHOW statements only, so Com_select stays what the exporter saw.
      const status = showMap(node, 'STATUS');
      const vars = showMap(node, 'VARIABLES');
      const slave = node.replicaStatus();
      const what = `node ${node.port}`;

      expect([what, value(s, 'datastore_up')]).toEqual([what, 1]);
      expect(value(s, 'datastore_version_info', { datastore: 'mysql', version: vars.get('version')! })).toBe(
        1,
      );
      const nodeId = `${vars.get('server_id')}@${vars.get('hostname')}:${vars.get('port')}`;
      expect(
        value(s, 'datastore_node_info', { datastore: 'mysql', node_id: nodeId, cluster_id: 'default' }),
      ).toBe(1);
      expect(find(s, 'datastore_shard_role')).toHaveLength(3);
      if (node === primary) {
        expect(slave).toBeUndefined();
        expect(roleOf(s, SHARD)).toBe('primary');
        expect(find(s, LAG)).toHaveLength(0);
      } else {
        expect(slave).toBeDefined();
        expect(roleOf(s, SHARD)).toBe('secondary');
        expect(slave!['Slave_IO_Running']).toBe('Yes');
        // Above 0 the server's value; at 0 ("applied all that was received") unknown: absent.
        const sbm = Number(slave!['Seconds_Behind_Master']);
        expect(lagOf(s)).toBe(sbm > 0 ? sbm : undefined);
      }
      expect(value(s, OFFSET, { shard_id: SHARD })).toBe(gtidSum(vars.get('gtid_current_pos')!));
      // The CLI's own connection and the exporter's are not clients, nor are the replicas' binlog
      // dump connections (2 on the primary): one definition with the other datastores.
      const replicaLinks = node === primary ? 2 : 0;
      expect(Number(status.get('Slaves_connected'))).toBe(replicaLinks);
      expect(value(s, 'datastore_clients_connected')).toBe(
        Number(status.get('Threads_connected')) - 2 - replicaLinks,
      );
      expect(value(s, 'datastore_reads_total')).toBe(
        Number(status.get('Com_select')) + Number(status.get('Qcache_hits')),
      );
      expect(value(s, 'datastore_writes_total')).toBe(
        WRITE_COUNTERS.reduce((sum, c) => sum + Number(status.get(c) ?? 0), 0),
      );
      // No write since the exporter started: the time of the last one is unknown, not invented.
      expect(find(s, LAST_OP)).toHaveLength(0);
    }
  });

  test('writes move writes_total and last-op on the primary, and on the replicas after replay', async () => {
    const before = new Map<MariadbNode, Sample[]>();
    for (const node of [primary, replica, delayed]) before.set(node, await scrape(node));
    const t0 = Date.now() / 1000;
    primary.sql(
      'INSERT INTO app.events () VALUES (); INSERT INTO app.events () VALUES (); ' +
        'INSERT INTO app.events () VALUES (); UPDATE app.events SET at = at + INTERVAL 1 SECOND WHERE id = 1; ' +
        // One statement logged as a row event (3 rows): replicas count it once too.
        'SET SESSION binlog_format = ROW; UPDATE app.events SET at = at + INTERVAL 1 SECOND WHERE id <= 3',
    );
    const WRITES = 5;
    const primaryOffset = gtidSum(primary.value('SELECT @@gtid_binlog_pos'));

    await exp(primary).nextCollections(2);
    let s = await scrape(primary);
    expect(value(s, 'datastore_writes_total')).toBe(
      value(before.get(primary)!, 'datastore_writes_total') + WRITES,
    );
    expect(value(s, OFFSET, { shard_id: SHARD })).toBe(value(before.get(primary)!, OFFSET) + WRITES);
    expect(value(s, OFFSET, { shard_id: SHARD })).toBe(primaryOffset);
    const primaryLastOp = value(s, LAST_OP, { shard_id: SHARD });
    expect(primaryLastOp).toBeGreaterThanOrEqual(t0);
    expect(primaryLastOp).toBeLessThanOrEqual(Date.now() / 1000);

    // The replica applies at once, the delayed one DELAY_SECONDS after the commit on the primary.
    for (const node of [replica, delayed]) {
      s = await waitFor(
        `last-op on ${node.port}`,
        async () => {
          const now = await scrape(node);
          return find(now, LAST_OP).length === 1 ? now : undefined;
        },
        10000,
        100,
      );
      expect(value(s, OFFSET, { shard_id: SHARD })).toBe(primaryOffset);
      const lastOp = value(s, LAST_OP, { shard_id: SHARD });
      expect(lastOp).toBeGreaterThanOrEqual(node === delayed ? t0 + DELAY_SECONDS - 1 : t0);
      // MariaDB counts replicated statements, and row events, in the replica's Com_* (see docs).
      expect(value(s, 'datastore_writes_total')).toBe(
        value(before.get(node)!, 'datastore_writes_total') + WRITES,
      );
    }

    // A read moves reads_total, never last-op.
    const reads = value(await scrape(primary), 'datastore_reads_total');
    primary.sql('SELECT COUNT(*) FROM app.events');
    await exp(primary).nextCollections(2);
    s = await scrape(primary);
    expect(value(s, 'datastore_reads_total')).toBe(reads + 1);
    expect(value(s, LAST_OP, { shard_id: SHARD })).toBe(primaryLastOp);
  });

  test('promtool check metrics passes on every node\u2019s real output', async () => {
    for (const node of [primary, replica, delayed]) {
      const text = await exp(node).scrapeText();
      expect(text).toMatch(/datastore_shard_last_operation_timestamp_seconds\{/);
      execFileSync(PROMTOOL, ['check', 'metrics'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
    }
  });

  test('delayed replica: lag within 1 s of MASTER_DELAY under a steady write load, absent (never 0) when idle', async () => {
    const writer: Connection = await primary.connectTester();
    let writing = true;
    const load = (async () => {
      while (writing) {
        await writer.query('INSERT INTO app.events () VALUES ()');
        await sleep(200);
      }
    })();
    const samples: { lag: number; cliLag: number; appliedAge: number }[] = [];
    const fastLags: number[] = [];
    try {
      // Past the first DELAY_SECONDS, the delayed replica applies a write every 200 ms.
      await sleep((DELAY_SECONDS + 2) * 1000);
      for (let i = 0; i < 6; i++) {
        await exp(delayed).nextCollections(1);
        const lag = lagOf(await scrape(delayed));
        const cliLag = Number(delayed.replicaStatus()!['Seconds_Behind_Master']);
        // How old the newest row applied on the delayed replica is: the lag a client there sees.
        const appliedAge = Number(
          delayed.value('SELECT UNIX_TIMESTAMP(NOW(6)) - UNIX_TIMESTAMP(MAX(at)) FROM app.events'),
        );
        expect(lag).toBeDefined();
        samples.push({ lag: lag!, cliLag, appliedAge });
        // The undelayed replica: absent while caught up (0 would claim what it cannot know), else small.
        fastLags.push(lagOf(await scrape(replica)) ?? 0);
      }
    } finally {
      writing = false;
      await load;
      await writer.end();
    }
    console.log(
      `MASTER_DELAY=${DELAY_SECONDS}s under 5 writes/s: ${JSON.stringify(samples)}; undelayed replica: ${JSON.stringify(fastLags)}`,
    );
    for (const { lag } of samples) {
      expect(lag).toBeGreaterThanOrEqual(DELAY_SECONDS - 1);
      expect(lag).toBeLessThanOrEqual(DELAY_SECONDS + 1);
    }
    for (const lag of fastLags) expect(lag).toBeLessThanOrEqual(1);

    // Idle: once the last write is applied the server says 0, which only means "applied all it
    // received": the lag is absent (unknown), and stays absent: no false lag on an idle replica, no 0.
    await waitCaughtUp(delayed, primary);
    await waitFor('idle lag absent', async () => lagOf(await scrape(delayed)) === undefined, 5000, 100);
    for (let i = 0; i < 3; i++) {
      await exp(delayed).nextCollections(1);
      const s = await scrape(delayed);
      expect(lagOf(s)).toBeUndefined();
      expect(roleOf(s, SHARD)).toBe('secondary');
    }
  });

  test('SQL thread stopped: lag absent (unknown), still secondary', async () => {
    replica.sql('STOP SLAVE SQL_THREAD');
    try {
      await waitFor('lag absent', async () => lagOf(await scrape(replica)) === undefined, 2500, 100);
      expect(replica.replicaStatus()!['Seconds_Behind_Master']).toBe('NULL');
      const s = await scrape(replica);
      expect(roleOf(s, SHARD)).toBe('secondary');
      expect(find(s, OFFSET)).toHaveLength(1);
    } finally {
      replica.sql('START SLAVE SQL_THREAD');
    }
    await waitFor(
      'applier running and caught up again',
      () => replica.replicaStatus()!['Seconds_Behind_Master'] === '0',
      5000,
      100,
    );
  });

  test('IO thread broken: lag is the time since it was last seen connected, growing; gone once it reconnects', async () => {
    // The replica's IO thread reconnects with a password the primary no longer accepts.
    primary.sql("SET PASSWORD FOR 'repl'@'127.0.0.1' = PASSWORD('changed')");
    const broken = Date.now() / 1000;
    replica.sql('STOP SLAVE IO_THREAD; START SLAVE IO_THREAD');
    try {
      await waitFor(
        'IO thread connecting',
        () => replica.replicaStatus()!['Slave_IO_Running'] === 'Connecting',
      );
      await exp(replica).nextCollections(3);
      const first = lagOf(await scrape(replica));
      const status = replica.replicaStatus()!;
      // The server itself says NULL: what it knows is only that the link is down.
      expect(status['Seconds_Behind_Master']).toBe('NULL');
      expect(status['Last_IO_Errno']).toBe('1045');
      expect(first).toBeDefined();
      // Last seen connected at most one interval before the break; rounded to whole seconds.
      expect(first!).toBeGreaterThanOrEqual(Date.now() / 1000 - broken - 2);
      expect(first!).toBeLessThanOrEqual(Date.now() / 1000 - broken + 2);
      await exp(replica).nextCollections(2);
      const s = await scrape(replica);
      expect(lagOf(s)!).toBeGreaterThan(first!);
      expect(roleOf(s, SHARD)).toBe('secondary');
    } finally {
      primary.sql("SET PASSWORD FOR 'repl'@'127.0.0.1' = PASSWORD('repl-pw')");
    }
    // MASTER_CONNECT_RETRY=1: reconnected within seconds, lag back to Seconds_Behind_Master.
    await waitFor(
      'reconnected, outage lag gone',
      async () => lagOf(await scrape(replica)) === undefined,
      10000,
      100,
    );
    expect(replica.replicaStatus()!['Slave_IO_Running']).toBe('Yes');
  });

  test('promotion: STOP SLAVE; RESET SLAVE ALL flips the role to primary within one interval; the GTID offset goes on', async () => {
    const before = value(await scrape(replica), OFFSET, { shard_id: SHARD });
    replica.sql('STOP SLAVE; RESET SLAVE ALL');
    expect(replica.replicaStatus()).toBeUndefined();
    // One interval is 1 s; allow the collection in flight to finish.
    await waitFor('promoted', async () => roleOf(await scrape(replica), SHARD) === 'primary', 2500, 50);
    expect(find(await scrape(replica), LAG)).toHaveLength(0);
    // The domain's seq_no keeps counting on the new primary: no reset, no jump at the promotion, and
    // its own first write is the next number (comparable with the old primary's, in transactions).
    expect(value(await scrape(replica), OFFSET, { shard_id: SHARD })).toBe(before);
    replica.sql('INSERT INTO app.events () VALUES ()');
    await exp(replica).nextCollections(2);
    expect(value(await scrape(replica), OFFSET, { shard_id: SHARD })).toBe(before + 1);
  });

  testServerHung({
    what: 'the delayed replica',
    exporter: () => exp(delayed),
    pause: () => Promise.resolve(delayed.process.pause()),
    resume: () => Promise.resolve(delayed.process.resume()),
    downWithinMs: 10000,
    upWithinMs: 5000,
  });

  testServerStopped({
    what: 'the primary',
    how: 'killed',
    exporter: () => exp(primary),
    stop: () => primary.kill(),
    downWithinMs: 10000,
    restart: () => primary.restart(),
    upWithinMs: 5000,
    afterRecovery: async () => {
      expect(roleOf(await scrape(primary), SHARD)).toBe('primary');
    },
  });

  test('a user without SLAVE MONITOR fails loudly instead of reporting a wrong role', async () => {
    primary.sql("CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-pw'");
    const other = await startTestExporter(['--target', `mariadb://weak:weak-pw@127.0.0.1:${primary.port}`]);
    try {
      await other.nextCollections(2);
      const s = await other.scrape();
      expect(value(s, 'datastore_up')).toBe(0);
      expect(find(s, 'datastore_shard_role')).toHaveLength(0);
      expect(other.logs.some((l) => /SLAVE MONITOR/.test(l))).toBe(true);
      // The password given in the URL is redacted in every log line.
      expect(other.logs.join('\n')).not.toContain('weak-pw');
      expect(other.logs.some((l) => /REDACTED@127\.0\.0\.1/.test(l))).toBe(true);
    } finally {
      await other.stop();
    }
  });

  test('the password never appears in logs or /metrics', async () => {
    for (const node of [primary, replica, delayed]) {
      const e = exp(node);
      expect(e.logs.length).toBeGreaterThan(0);
      expect(e.logs.join('\n')).not.toContain(EXPORTER_PASSWORD);
      expect(await e.scrapeText()).not.toContain(EXPORTER_PASSWORD);
    }
  });
});
