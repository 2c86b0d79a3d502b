/**
 * Heartbeat mode on real PostgreSQL streaming replication: a primary (with track_commit_timestamp),
 * a streaming standby and a standby with recovery_min_apply_delay = 3 s, each watched by an exporter
 * with --heartbeat that logs in as a pg_monitor role. The heartbeat table is created by an operator
 * with the documented SQL and GRANTs (the role may not create it); auto-creation is proven on a
 * database where the role has CREATE.
 *
 * The tests share one topology and run in order: the last one stops the primary and promotes.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { CounterWithoutHeartbeats } from '../src/drivers/shared/heartbeat-exclusion';
import {
  CREATE_HEARTBEAT_TABLE,
  HEARTBEAT_SCHEMA,
  HEARTBEAT_TABLE,
  heartbeatWriteSql,
  standbyLastOperation,
} from '../src/drivers/postgresql/heartbeat';
import {
  describeHeartbeatConformance,
  type HeartbeatHarness,
  type HeartbeatNode,
} from './support/heartbeat-conformance';
import { startTestExporter, type TestExporter } from './support/exporter';
import { find, value, type Sample } from './support/metrics-text';
import { startPgCluster, steadyWrites, waitReplayed, type PgCluster, type PgNode } from './support/postgres';
import { freePorts, sleep, tempDir, waitFor } from './support/processes';

const DELAY_S = 3;
const ROLE = 'dsx_heartbeat';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const LAG = 'datastore_shard_replication_lag_seconds';
const LAST_OP = 'datastore_shard_last_operation_timestamp_seconds';
const WRITES = 'datastore_writes_total';

/** The operator's one-time set-up of docs/postgresql.md, for a role that may not create schemas. */
const OPERATOR_SQL = `${CREATE_HEARTBEAT_TABLE};
GRANT USAGE ON SCHEMA ${HEARTBEAT_SCHEMA} TO ${ROLE};
GRANT SELECT, INSERT, UPDATE ON ${HEARTBEAT_TABLE} TO ${ROLE};`;

function nodeIdOf(s: Sample[]): string {
  return find(s, 'datastore_node_info')[0]!.labels.node_id!;
}

describe('heartbeat exclusion rules (pure)', () => {
  test('writes without heartbeats: monotonic, exact whenever both counters agree, never above the truth', () => {
    // Each step: client writes and heartbeats happen; the reading may see some of the next step's
    // heartbeats in the heartbeat counter before the total has them (two counters read apart).
    const step = fc.record({ client: fc.nat(5), heartbeats: fc.nat(3), early: fc.nat(3) });
    fc.assert(
      fc.property(fc.nat(1000), fc.array(step, { maxLength: 40 }), (start, steps) => {
        const counter = new CounterWithoutHeartbeats();
        let total = start;
        let heartbeats = 0;
        let client = 0;
        let reported = counter.observe(total, heartbeats);
        expect(reported).toBe(start);
        steps.forEach((st, i) => {
          total += st.client + st.heartbeats;
          heartbeats += st.heartbeats;
          client += st.client;
          const early = i + 1 < steps.length ? Math.min(st.early, steps[i + 1]!.heartbeats) : 0;
          const next = counter.observe(total, heartbeats + early);
          expect(next).toBeGreaterThanOrEqual(reported);
          expect(next).toBeLessThanOrEqual(start + client);
          if (early === 0) expect(next).toBe(start + client);
          reported = next;
        });
      }),
    );
  });

  test('a counter reset is a new baseline; an unknown heartbeat count subtracts nothing', () => {
    const counter = new CounterWithoutHeartbeats();
    expect(counter.observe(100, 10)).toBe(100);
    expect(counter.observe(105, 14)).toBe(101);
    expect(counter.observe(3, 0)).toBe(3); // statistics reset
    expect(counter.observe(6, undefined)).toBe(6); // table gone: nothing known to subtract
    expect(counter.observe(8, 1)).toBe(8); // known again: a new baseline for the heartbeats
    expect(counter.observe(10, 3)).toBe(8);
  });

  test('unexplained: what a reading would add beyond the heartbeats, asked without observing', () => {
    const counter = new CounterWithoutHeartbeats();
    expect(counter.unexplained(100, 10)).toBe(0); // no baseline yet: nothing to add
    expect(counter.observe(100, 10)).toBe(100);
    // A heartbeat counted by the total but not committed in the row yet looks like a client write...
    expect(counter.unexplained(101, 10)).toBe(1);
    expect(counter.unexplained(101, 10)).toBe(1); // ...and asking twice changes nothing
    // ...until the row is read again after its commit.
    expect(counter.unexplained(101, 11)).toBe(0);
    expect(counter.observe(101, 11)).toBe(100);
    expect(counter.unexplained(103, 12)).toBe(1); // one client write beside one heartbeat
    expect(counter.unexplained(50, 12)).toBe(0); // a reset is a new baseline, not an addition
    // A heartbeat seen in the row first is carried: the total's catching up adds nothing.
    expect(counter.observe(101, 12)).toBe(100);
    expect(counter.unexplained(102, 12)).toBe(0);
    expect(counter.unexplained(103, 12)).toBe(1);
  });

  test('standby last-op: a commit after the heartbeat is a client write; otherwise the primary’s last write', () => {
    const hb = { record: { timestampSeconds: 1000, writerNodeId: 'p' }, serverTimeSeconds: 1000, xid: '7' };
    expect(standbyLastOperation(1000.001, { ...hb, lastWriteSeconds: 990 })).toBe(990);
    expect(standbyLastOperation(1000.001, hb)).toBeUndefined();
    expect(standbyLastOperation(1003, { ...hb, lastWriteSeconds: 990 })).toBe(1003);
    expect(standbyLastOperation(undefined, { ...hb, lastWriteSeconds: 990 })).toBe(990);
  });

  test('the write is one read-write implicit transaction, with the writer quoted', () => {
    const sql = heartbeatWriteSql(
      undefined,
      { timestampSeconds: 1700000000.25, writerNodeId: "db'1" },
      undefined,
    );
    expect(sql.startsWith('SET TRANSACTION READ WRITE;')).toBe(true);
    expect(sql).toContain("'db''1'");
    expect(sql).toContain('to_timestamp(1700000000.250000)');
    expect(sql).not.toMatch(/\bBEGIN\b|\bCOMMIT\b/);
  });
});

describe('heartbeat mode, PostgreSQL primary + streaming standby + delayed standby', () => {
  let cluster: PgCluster;
  let primary: PgNode;
  let standby: PgNode;
  let delayed: PgNode;
  let systemId: string;
  let secrets: ReturnType<typeof tempDir>;
  let passwordFile: string;
  const exporters = new Map<PgNode, TestExporter>();
  const exp = (n: PgNode): TestExporter => exporters.get(n)!;
  const shard = (): { shard_id: string } => ({ shard_id: systemId });
  const url = (n: PgNode, db = 'postgres'): string => `postgresql://${ROLE}@127.0.0.1:${n.port}/${db}`;
  const startExporter = (n: PgNode, db?: string): Promise<TestExporter> =>
    startTestExporter(['--target', url(n, db), '--target.password-file', passwordFile, '--heartbeat']);
  /** The replicated row as psql sees it on a node; undefined while the node has no table or row. */
  const rowOn = (n: PgNode): { ts: number; writer: string } | undefined => {
    if (n.psql(`SELECT to_regclass('${HEARTBEAT_TABLE}') IS NULL`) === 't') return undefined;
    const out = n.psql(
      `SELECT extract(epoch FROM ts) || '|' || writer FROM ${HEARTBEAT_TABLE} WHERE shard = ''`,
    );
    if (out === '') return undefined;
    const [ts, writer] = out.split('|');
    return { ts: Number(ts), writer: writer! };
  };

  beforeAll(async () => {
    const [p, s, d] = await freePorts(3);
    cluster = await startPgCluster({
      primaryPort: p!,
      // Commit timestamps on the primary: its last-op must still ignore the heartbeat's commits.
      primarySettings: { track_commit_timestamp: 'on' },
      standbys: [
        { name: 'standby', port: s! },
        { name: 'delayed', port: d!, settings: { recovery_min_apply_delay: `${DELAY_S}s` } },
      ],
      setup: `
        CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}';
        GRANT pg_monitor TO ${ROLE};
        CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);
        CREATE DATABASE autocreate;
        GRANT CREATE ON DATABASE autocreate TO ${ROLE};`,
    });
    ({ primary } = cluster);
    [standby, delayed] = cluster.standbys as [PgNode, PgNode];
    systemId = primary.psql('SELECT system_identifier FROM pg_control_system()');
    secrets = tempDir('pg-hb-secrets');
    passwordFile = join(secrets.path, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    for (const n of [primary, standby, delayed]) exporters.set(n, await startExporter(n));
    await Promise.all([...exporters.values()].map((e) => e.waitUp()));
  }, 60000);

  afterAll(async () => {
    await Promise.all([...exporters.values()].map((e) => e.stop()));
    await cluster?.stop();
    secrets?.remove();
  });

  const hbNodes = new Map<string, HeartbeatNode>();
  /** A node and its exporter; the record is the row as psql selects it there. */
  const hb = (name: 'primary' | 'standby' | 'delayed'): HeartbeatNode => {
    const node = (): PgNode => ({ primary, standby, delayed })[name];
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
    datastore: 'postgresql',
    delayS: DELAY_S,
    shard,
    primary: () => hb('primary'),
    inSync: () => [hb('standby')],
    delayed: () => hb('delayed'),
    nodes: () => [hb('primary'), hb('standby'), hb('delayed')],
    startLoad: async () => {
      const writer = await primary.connect();
      const load = steadyWrites(writer, `INSERT INTO events (note) VALUES ('load')`, 50);
      return {
        async stop() {
          await load.stop();
          await writer.end();
        },
      };
    },
    pause: () => {
      standby.psql('SELECT pg_wal_replay_pause()');
      return Promise.resolve({
        node: hb('standby'),
        resume: () => {
          standby.psql('SELECT pg_wal_replay_resume()');
          return Promise.resolve({ node: hb('standby'), below: 1 });
        },
      });
    },
    failover: async () => {
      await primary.stop();
      expect(standby.psql('SELECT pg_promote()')).toBe('t');
      return { promoted: hb('standby'), writesWithinMs: 10000 };
    },
  };

  test('a role that may not create the table: the exporter says what to do; the operator’s SQL starts the heartbeat', async () => {
    await waitFor('the write failure logged', () =>
      exp(primary).logs.some((l) =>
        /heartbeat write failed.*may not create it.*docs\/postgresql\.md/.test(l),
      ),
    );
    // Nothing written, and the standbys keep their native lag meanwhile (0: streaming and replayed).
    expect(primary.psql(`SELECT to_regclass('${HEARTBEAT_TABLE}') IS NULL`)).toBe('t');
    expect(value(await exp(standby).scrape(), LAG, shard())).toBe(0);

    primary.psql(OPERATOR_SQL);
    const primaryId = nodeIdOf(await exp(primary).scrape());
    await waitFor('the primary’s heartbeat row', () => rowOn(primary)?.writer === primaryId, 10000);
    await waitReplayed(primary, standby);
    await waitFor('the heartbeat on the standby', async () => {
      const s = await exp(standby).scrape();
      return find(s, 'datastore_shard_heartbeat_timestamp_seconds', shard()).length === 1;
    });
    const row = rowOn(primary)!;
    expect(Math.abs(row.ts - Date.now() / 1000)).toBeLessThan(2);
  });

  test('with CREATE on the database, the exporter creates the schema and table itself on its first write', async () => {
    const e = await startExporter(primary, 'autocreate');
    try {
      await waitFor('created-table log line', () =>
        e.logs.some((l) => /created the heartbeat table/.test(l)),
      );
      const psqlIn = (sql: string): string =>
        primary.psql(`\\connect autocreate\n${sql}`).split('\n').pop()!.trim();
      expect(psqlIn(`SELECT tableowner FROM pg_tables WHERE schemaname = '${HEARTBEAT_SCHEMA}'`)).toBe(ROLE);
      await waitFor('a row written', () => psqlIn(`SELECT count(*) FROM ${HEARTBEAT_TABLE}`) === '1');
    } finally {
      await e.stop();
    }
  });

  test('the exporter never writes on a standby: no refused write in the standbys’ server logs', async () => {
    await waitFor('the row on the delayed standby', () => rowOn(delayed), (DELAY_S + 5) * 1000);
    await exp(primary).nextCollections(3);
    for (const n of [standby, delayed]) {
      // A refused write would be in the server log ("read-write mode during recovery", "read-only").
      expect(n.process.output()).not.toMatch(/read-write|read-only transaction|heartbeat/);
    }
  });

  test('heartbeats are not client writes: writes_total and last-op stay put while idle, on every node', async () => {
    primary.psql(`INSERT INTO events (note) VALUES ('one client write')`);
    const committed = Number(
      primary.psql(
        `SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM events WHERE note = 'one client write'`,
      ),
    );
    await waitReplayed(primary, standby);
    // Past the statistics flush (about 1 s) and the delayed standby's apply delay.
    await sleep((DELAY_S + 1) * 1000);
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(2)));
    const before = new Map<PgNode, Sample[]>();
    for (const n of [primary, standby, delayed]) before.set(n, await exp(n).scrape());
    // Several heartbeats later (2 a second):
    await sleep(3000);
    await Promise.all([...exporters.values()].map((e) => e.nextCollections(1)));
    for (const n of [primary, standby, delayed]) {
      const s0 = before.get(n)!;
      const s1 = await exp(n).scrape();
      console.log(
        `postgresql ${n.name}: client commit ${committed.toFixed(3)}, last-op ${value(s1, LAST_OP, shard()).toFixed(3)}, writes_total ${value(s0, WRITES)} -> ${value(s1, WRITES)}`,
      );
      expect(value(s1, WRITES)).toBe(value(s0, WRITES));
      expect(value(s1, LAST_OP, shard())).toBe(value(s0, LAST_OP, shard()));
      // The client write's commit time: exact where the commit is seen, else within about a second.
      expect(value(s1, LAST_OP, shard())).toBeGreaterThanOrEqual(committed - 0.001);
      expect(value(s1, LAST_OP, shard())).toBeLessThan(committed + 2.5);
    }
    // ...while a client write still counts, once.
    const w0 = value(await exp(primary).scrape(), WRITES);
    primary.psql(`INSERT INTO events (note) VALUES ('another')`);
    await sleep(1500);
    await exp(primary).nextCollections(2);
    expect(value(await exp(primary).scrape(), WRITES)).toBe(w0 + 1);
  });

  describeHeartbeatConformance(harness);
});
