/**
 * Heartbeat mode on real MariaDB replication: a binlog primary, a GTID replica and a replica with
 * MASTER_DELAY = 3 s, each watched by an exporter with --heartbeat that logs in as the
 * least-privilege monitoring user plus the heartbeat grants of docs/mysql.md.
 *
 * The tests share one topology and run in order: the last one promotes the replica.
 */
import type { Connection } from 'mysql2/promise';
import {
  HEARTBEAT_DATABASE,
  HEARTBEAT_TABLE,
  heartbeatUpsertSql,
  parseHeartbeatRow,
  sqlString,
} from '../src/drivers/mysql/heartbeat';
import {
  describeHeartbeatConformance,
  type HeartbeatHarness,
  type HeartbeatNode,
} from './support/heartbeat-conformance';
import { startTestExporter, type TestExporter } from './support/exporter';
import {
  EXPORTER_USER,
  startMariadbReplication,
  type MariadbNode,
  type MariadbReplication,
} from './support/mariadb';
import { find, value, type Sample } from './support/metrics-text';
import { sleep, waitFor } from './support/processes';

const DELAY_S = 3;
const SHARD = { shard_id: 'default' };
const LAST_OP = 'datastore_shard_last_operation_timestamp_seconds';
const WRITES = 'datastore_writes_total';
const EXPORTER = `'${EXPORTER_USER}'@'127.0.0.1'`;

function nodeIdOf(s: Sample[]): string {
  return find(s, 'datastore_node_info')[0]!.labels.node_id!;
}

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

describe('MySQL heartbeat SQL and row parsing (pure)', () => {
  test('the upsert: UTC time from a literal, the writer quoted, seq counted up on every write', () => {
    const sql = heartbeatUpsertSql(undefined, {
      timestampSeconds: 1700000000.5,
      writerNodeId: "2@db'2:3306",
    });
    expect(sql).toContain('FROM_UNIXTIME(1700000000.500000)');
    expect(sql).toContain("'2@db''2:3306'");
    expect(sql).toMatch(/ON DUPLICATE KEY UPDATE .*seq = seq \+ 1$/);
    expect(sqlString('a\\b')).toBe("'a\\\\b'");
  });

  test('rows: decimal text and numbers read; none or malformed is undefined', () => {
    expect(parseHeartbeatRow([{ ts: '1700000000.500000', writer: 'w', seq: 7 }])).toEqual({
      record: { timestampSeconds: 1700000000.5, writerNodeId: 'w' },
      seq: 7,
    });
    expect(parseHeartbeatRow([{ ts: '1700000000', writer: Buffer.from('w'), seq: '8' }])?.seq).toBe(8);
    expect(parseHeartbeatRow([])).toBeUndefined();
    expect(parseHeartbeatRow([{ ts: null, writer: 'w', seq: 1 }])).toBeUndefined();
  });
});

describe('heartbeat mode, MariaDB primary + GTID replica + MASTER_DELAY replica', () => {
  let topo: MariadbReplication;
  let primary: MariadbNode;
  let replica: MariadbNode;
  let delayed: MariadbNode;
  const exporters = new Map<MariadbNode, TestExporter>();
  const exp = (n: MariadbNode): TestExporter => exporters.get(n)!;
  const nodes = (): MariadbNode[] => [primary, replica, delayed];
  /** The heartbeat row as the CLI sees it on a node; undefined while there is none. */
  const rowOn = (n: MariadbNode): { ts: number; writer: string; seq: number } | undefined => {
    const exists = n.value(
      `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${HEARTBEAT_DATABASE}' AND TABLE_NAME = 'heartbeat'`,
    );
    if (exists !== '1') return undefined;
    const row = n.sql(
      `SET time_zone = '+00:00'; SELECT UNIX_TIMESTAMP(ts) AS ts, writer, seq FROM ${HEARTBEAT_TABLE} WHERE shard = ''`,
    )[0];
    return row ? { ts: Number(row['ts']), writer: row['writer']!, seq: Number(row['seq']) } : undefined;
  };

  beforeAll(async () => {
    topo = await startMariadbReplication(DELAY_S);
    ({ primary, replica, delayed } = topo);
    // The heartbeat grants of docs/mysql.md, CREATE included so that the exporter creates the table.
    // Given on the primary, they replicate (a promoted replica can write the heartbeat too).
    primary.sql(`GRANT CREATE, INSERT, UPDATE, SELECT ON ${HEARTBEAT_DATABASE}.* TO ${EXPORTER}`);
    for (const n of nodes()) {
      exporters.set(
        n,
        await startTestExporter(['--target', n.url, '--target.password-file', n.passwordFile, '--heartbeat']),
      );
    }
    await Promise.all([...exporters.values()].map((e) => e.waitUp()));
  }, 90000);

  afterAll(async () => {
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await topo?.stop();
  });

  const hbNodes = new Map<string, HeartbeatNode>();
  /** A node and its exporter; the record is the row as the mariadb CLI selects it there. */
  const hb = (name: 'primary' | 'replica' | 'delayed'): HeartbeatNode => {
    const node = (): MariadbNode => ({ primary, replica, delayed })[name];
    if (!hbNodes.has(name))
      hbNodes.set(name, {
        name,
        get exporter() {
          return exp(node());
        },
        record: () => {
          const row = rowOn(node());
          return Promise.resolve(row && { t: row.ts, w: row.writer });
        },
        writerId: async () => nodeIdOf(await exp(node()).scrape()),
      });
    return hbNodes.get(name)!;
  };
  const harness: HeartbeatHarness = {
    datastore: 'mariadb',
    delayS: DELAY_S,
    shard: () => SHARD,
    primary: () => hb('primary'),
    inSync: () => [hb('replica')],
    delayed: () => hb('delayed'),
    nodes: () => [hb('primary'), hb('replica'), hb('delayed')],
    startLoad: () => steadyLoad(primary, 50),
    whileDelayed: () => {
      console.log(
        `mariadb, MASTER_DELAY ${DELAY_S} s: Seconds_Behind_Master now: ${delayed.replicaStatus()!['Seconds_Behind_Master']}`,
      );
      return Promise.resolve();
    },
    pause: () => {
      replica.sql('STOP SLAVE SQL_THREAD');
      return Promise.resolve({
        node: hb('replica'),
        resume: () => {
          replica.sql('START SLAVE SQL_THREAD');
          return Promise.resolve({ node: hb('replica'), below: 1 });
        },
      });
    },
    failover: () => {
      replica.sql('STOP SLAVE; RESET SLAVE ALL');
      return Promise.resolve({ promoted: hb('replica'), writesWithinMs: 10000 });
    },
  };

  test('the exporter creates the table on its first write; afterwards INSERT, UPDATE, SELECT suffice', async () => {
    await waitFor('created-table log line', () =>
      exp(primary).logs.some((l) => /created the heartbeat table/.test(l)),
    );
    const primaryId = nodeIdOf(await exp(primary).scrape());
    await waitFor('the primary’s row', () => rowOn(primary)?.writer === primaryId);
    primary.sql(`REVOKE CREATE ON ${HEARTBEAT_DATABASE}.* FROM ${EXPORTER}`);
    const seq = rowOn(primary)!.seq;
    await waitFor('more heartbeats without CREATE', () => rowOn(primary)!.seq >= seq + 3, 5000);
    expect(Math.abs(rowOn(primary)!.ts - Date.now() / 1000)).toBeLessThan(2);
    expect(exp(primary).logs.join('\n')).not.toMatch(/heartbeat write failed/);
  });

  test('the exporter never writes on a replica: the replicas’ binlogs hold only the primary’s GTIDs', async () => {
    await waitFor('the row on the delayed replica', () => rowOn(delayed), (DELAY_S + 5) * 1000);
    await exp(primary).nextCollections(3);
    for (const n of [replica, delayed]) {
      // With log_slave_updates a local write would add a GTID with the replica's own server_id.
      expect(n.value('SELECT @@gtid_binlog_pos')).toMatch(new RegExp(`^0-${primary.serverId}-\\d+$`));
    }
  });

  test('heartbeats are not client writes: writes_total and last-op stay put while idle, on every node', async () => {
    const w0 = new Map<MariadbNode, number>();
    for (const n of nodes()) w0.set(n, value(await exp(n).scrape(), WRITES));
    primary.sql('INSERT INTO app.events () VALUES ()');
    const written = Date.now() / 1000;
    // Past the delayed replica's MASTER_DELAY, so every node has applied the write.
    await sleep((DELAY_S + 2) * 1000);
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(1)));
    const before = new Map<MariadbNode, Sample[]>();
    for (const n of nodes()) before.set(n, await exp(n).scrape());
    await sleep(3000); // about six heartbeats
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(1)));
    for (const n of nodes()) {
      const s0 = before.get(n)!;
      const s1 = await exp(n).scrape();
      console.log(
        `mariadb ${n === primary ? 'primary' : n === replica ? 'replica' : 'delayed'}: client write at ${written.toFixed(3)}, last-op ${value(s1, LAST_OP, SHARD).toFixed(3)}, writes_total ${w0.get(n)} -> ${value(s0, WRITES)} -> ${value(s1, WRITES)}`,
      );
      // The one client write counts once (a MariaDB replica counts replicated writes too)...
      expect(value(s0, WRITES)).toBe(w0.get(n)! + 1);
      // ...and the heartbeats written and replicated meanwhile not at all.
      expect(value(s1, WRITES)).toBe(value(s0, WRITES));
      expect(value(s1, LAST_OP, SHARD)).toBe(value(s0, LAST_OP, SHARD));
      // Last-op is when the exporter saw the position move: within an interval of the apply, or two
      // when a heartbeat committed between its reads of the position and of the row (the exclusion
      // then carries that heartbeat, and the write shows at the next reading: seen once at 2.8 s).
      const appliedBy = n === delayed ? written + DELAY_S : written;
      expect(value(s1, LAST_OP, SHARD)).toBeGreaterThanOrEqual(appliedBy - 1.5);
      expect(value(s1, LAST_OP, SHARD)).toBeLessThan(appliedBy + 3.5);
    }
  });

  describeHeartbeatConformance(harness);
});
