/**
 * The MySQL/MariaDB mapping on responses in their real, documented formats: MySQL 8 (SHOW REPLICA
 * STATUS with Source_* / Replica_* columns, performance_schema.replication_applier_status_by_worker),
 * MySQL 5.7 (SHOW SLAVE STATUS with Master_* columns and Channel_Name) and MariaDB 10.11 (SHOW ALL
 * SLAVES STATUS, recorded from the mariadbd the live test runs). MariaDB itself runs live in
 * test/mysql.test.ts; MySQL does not run here, so its whole path through the driver is exercised
 * below on a connection that answers with the recorded responses.
 */
import { EventEmitter } from 'node:events';
import { createConnection } from 'mysql2';
import { createDriver } from '../src/drivers/mysql/driver';
import type { DriverOptions } from '../src/core/model';
import {
  channelLagSeconds,
  isReadOnlySetting,
  linkSilent,
  nodeRole,
  ReceiveWatch,
  commitOffset,
  isGroupReplicationChannel,
  lastAppliedOriginalCommitSeconds,
  mariadbGtidSeqNoSum,
  mysqlGtidSetCount,
  nativeNodeId,
  nativeRoleWords,
  normalizeReplicaStatusRow,
  operationCounters,
  parseServerVersion,
  parseUtcDatetime,
  replicaStatusStatement,
  serverTimeoutSetting,
  worstLagSeconds,
  type ReplicaChannel,
} from '../src/drivers/mysql/parse';

// The driver's mysql2 connection is replaced by RecordedConnection (below); jest hoists this call.
jest.mock('mysql2', () => ({ createConnection: jest.fn() }));

const SOURCE_UUID = '73f86016-978b-11ee-ade5-8d2a2a562feb';

/**
 * MySQL 8.0 reference manual, SHOW REPLICA STATUS example (15.7.7.35), every column in its order, as
 * mysql2's text protocol returns it (integer columns as numbers, NULL as null).
 */
const MYSQL8_REPLICA_STATUS: Record<string, unknown> = {
  Replica_IO_State: 'Waiting for source to send event',
  Source_Host: '127.0.0.1',
  Source_User: 'root',
  Source_Port: 13000,
  Connect_Retry: 1,
  Source_Log_File: 'master-bin.000001',
  Read_Source_Log_Pos: 927,
  Relay_Log_File: 'slave-relay-bin.000002',
  Relay_Log_Pos: 1145,
  Relay_Source_Log_File: 'master-bin.000001',
  Replica_IO_Running: 'Yes',
  Replica_SQL_Running: 'Yes',
  Replicate_Do_DB: '',
  Replicate_Ignore_DB: '',
  Replicate_Do_Table: '',
  Replicate_Ignore_Table: '',
  Replicate_Wild_Do_Table: '',
  Replicate_Wild_Ignore_Table: '',
  Last_Errno: 0,
  Last_Error: '',
  Skip_Counter: 0,
  Exec_Source_Log_Pos: 927,
  Relay_Log_Space: 1355,
  Until_Condition: 'None',
  Until_Log_File: '',
  Until_Log_Pos: 0,
  Source_SSL_Allowed: 'No',
  Source_SSL_CA_File: '',
  Source_SSL_CA_Path: '',
  Source_SSL_Cert: '',
  Source_SSL_Cipher: '',
  Source_SSL_Key: '',
  Seconds_Behind_Source: 0,
  Source_SSL_Verify_Server_Cert: 'No',
  Last_IO_Errno: 0,
  Last_IO_Error: '',
  Last_SQL_Errno: 0,
  Last_SQL_Error: '',
  Replicate_Ignore_Server_Ids: '',
  Source_Server_Id: 1,
  Source_UUID: SOURCE_UUID,
  Source_Info_File: 'mysql.slave_master_info',
  SQL_Delay: 0,
  SQL_Remaining_Delay: null,
  Replica_SQL_Running_State: 'Replica has read all relay log; waiting for more updates',
  Source_Retry_Count: 10,
  Source_Bind: '',
  Last_IO_Error_Timestamp: '',
  Last_SQL_Error_Timestamp: '',
  Source_SSL_Crl: '',
  Source_SSL_Crlpath: '',
  Retrieved_Gtid_Set: `${SOURCE_UUID}:1-3`,
  Executed_Gtid_Set: `${SOURCE_UUID}:1-3`,
  Auto_Position: 1,
  Replicate_Rewrite_DB: '',
  Channel_Name: '',
  Source_TLS_Version: '',
  Source_public_key_path: '',
  Get_Source_public_key: 0,
  Network_Namespace: '',
};

/** MySQL 5.7 SHOW SLAVE STATUS (Master_* / Slave_* names), a named channel whose SQL thread stopped on an error. */
const MYSQL57_SLAVE_STATUS: Record<string, unknown> = {
  Slave_IO_State: 'Waiting for master to send event',
  Master_Host: 'db-a.example',
  Master_User: 'repl',
  Master_Port: 3306,
  Master_Log_File: 'mysql-bin.000012',
  Read_Master_Log_Pos: 4521,
  Relay_Master_Log_File: 'mysql-bin.000012',
  Slave_IO_Running: 'Yes',
  Slave_SQL_Running: 'No',
  Last_Errno: 1062,
  Last_Error: "Error 'Duplicate entry '1' for key 'PRIMARY'' on query.",
  Exec_Master_Log_Pos: 3310,
  Seconds_Behind_Master: null,
  Last_IO_Error: '',
  Last_SQL_Error: "Error 'Duplicate entry '1' for key 'PRIMARY'' on query.",
  Master_Server_Id: 11,
  Master_UUID: '4c1c3b0e-5f8a-11e8-9a1b-0242ac110002',
  SQL_Delay: 0,
  Channel_Name: 'source_a',
};

/** MariaDB 10.11.19 SHOW ALL SLAVES STATUS, recorded from the test's delayed replica (abridged to the columns of interest plus neighbours). */
const MARIADB_ALL_SLAVES_STATUS: Record<string, unknown> = {
  Connection_name: '',
  Slave_SQL_State: 'Waiting until MASTER_DELAY seconds after master executed event',
  Slave_IO_State: 'Waiting for master to send event',
  Master_Host: '127.0.0.1',
  Master_User: 'repl',
  Master_Port: 33061,
  Connect_Retry: 1,
  Master_Log_File: 'binlog.000001',
  Read_Master_Log_Pos: 1344,
  Relay_Log_File: 'relay-bin.000002',
  Relay_Log_Pos: 1640,
  Relay_Master_Log_File: 'binlog.000001',
  Slave_IO_Running: 'Yes',
  Slave_SQL_Running: 'Yes',
  Last_Errno: 0,
  Last_Error: '',
  Exec_Master_Log_Pos: 1344,
  Seconds_Behind_Master: 3,
  Last_IO_Errno: 0,
  Last_IO_Error: '',
  Last_SQL_Errno: 0,
  Last_SQL_Error: '',
  Master_Server_Id: 1,
  Using_Gtid: 'Slave_Pos',
  Gtid_IO_Pos: '0-1-6',
  Parallel_Mode: 'optimistic',
  SQL_Delay: 3,
  SQL_Remaining_Delay: 0,
  Slave_SQL_Running_State: 'Waiting until MASTER_DELAY seconds after master executed event',
  Slave_DDL_Groups: 6,
  Retried_transactions: 0,
  Slave_received_heartbeats: 0,
  Slave_heartbeat_period: '30.000',
  Gtid_Slave_Pos: '0-1-6',
};

/**
 * performance_schema.replication_applier_status_by_worker on a MySQL 8 multithreaded replica (four
 * workers, two idle since START REPLICA), with dateStrings and time_zone '+00:00' as the driver sets.
 */
const MYSQL8_APPLIER_ROWS: Record<string, unknown>[] = [
  {
    CHANNEL_NAME: '',
    WORKER_ID: 1,
    LAST_APPLIED_TRANSACTION: `${SOURCE_UUID}:41`,
    LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP: '2019-10-30 14:28:04.011849',
  },
  {
    CHANNEL_NAME: '',
    WORKER_ID: 2,
    LAST_APPLIED_TRANSACTION: `${SOURCE_UUID}:42`,
    LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP: '2019-10-30 14:28:05.250112',
  },
  {
    CHANNEL_NAME: '',
    WORKER_ID: 3,
    LAST_APPLIED_TRANSACTION: '',
    LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP: '0000-00-00 00:00:00.000000',
  },
  {
    CHANNEL_NAME: '',
    WORKER_ID: 4,
    LAST_APPLIED_TRANSACTION: '',
    LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP: '0000-00-00 00:00:00.000000',
  },
];

function channel(overrides: Partial<ReplicaChannel>): ReplicaChannel {
  return { name: '', ioRunning: 'Yes', sqlRunning: 'Yes', secondsBehind: 0, ...overrides };
}

describe('flavour and version', () => {
  test.each([
    ['8.0.36', 'MySQL Community Server - GPL', 'mysql', 'SHOW REPLICA STATUS', 'replica'],
    ['8.0.22', 'MySQL Community Server - GPL', 'mysql', 'SHOW REPLICA STATUS', 'replica'],
    ['8.0.21', 'MySQL Community Server - GPL', 'mysql', 'SHOW SLAVE STATUS', 'slave'],
    ['8.4.3', 'MySQL Community Server - GPL', 'mysql', 'SHOW REPLICA STATUS', 'replica'],
    ['5.7.44-log', 'MySQL Community Server (GPL)', 'mysql', 'SHOW SLAVE STATUS', 'slave'],
    [
      '8.0.36-28',
      'Percona Server (GPL), Release 28, Revision 47601f19',
      'mysql',
      'SHOW REPLICA STATUS',
      'replica',
    ],
    ['10.11.19-MariaDB-0+deb12u1-log', 'Debian 12', 'mariadb', 'SHOW ALL SLAVES STATUS', 'slave'],
    ['11.4.2-MariaDB', 'mariadb.org binary distribution', 'mariadb', 'SHOW ALL SLAVES STATUS', 'slave'],
  ])('%s (%s)', (version, comment, flavour, statement, secondaryWord) => {
    const info = parseServerVersion(version, comment);
    expect(info.flavour).toBe(flavour);
    expect(info.version).toBe(version);
    expect(replicaStatusStatement(info)).toBe(statement);
    expect(nativeRoleWords(info).secondary).toBe(secondaryWord);
  });
});

test('server-side statement timeout where the flavour has one', () => {
  expect(serverTimeoutSetting(parseServerVersion('10.11.19-MariaDB'), 800)).toBe('max_statement_time = 0.8');
  expect(serverTimeoutSetting(parseServerVersion('10.0.38-MariaDB'), 800)).toBeUndefined();
  expect(serverTimeoutSetting(parseServerVersion('8.0.36'), 800)).toBe('max_execution_time = 800');
  expect(serverTimeoutSetting(parseServerVersion('5.6.51-log'), 800)).toBeUndefined();
});

describe('replica status rows, both naming schemes', () => {
  test('MySQL 8 SHOW REPLICA STATUS (Source_* / Replica_*)', () => {
    expect(normalizeReplicaStatusRow(MYSQL8_REPLICA_STATUS)).toEqual({
      name: '',
      ioRunning: 'Yes',
      sqlRunning: 'Yes',
      secondsBehind: 0,
      sourceHost: '127.0.0.1',
      sourcePort: 13000,
      sourceServerId: 1,
      sqlDelay: 0,
      lastIoError: undefined,
      lastSqlError: undefined,
      receivedMark: 'master-bin.000001:927',
      receivedHeartbeats: undefined,
      heartbeatPeriodSeconds: undefined,
    });
  });

  test('a value that is not text (an object whose toString is not a function) maps to nothing, never throws', () => {
    const hostile = { toString: {} };
    const ch = normalizeReplicaStatusRow({
      ...MYSQL8_REPLICA_STATUS,
      Source_Host: hostile,
      Channel_Name: hostile,
    });
    expect(ch.sourceHost).toBeUndefined();
    expect(ch.name).toBe('');
  });

  test('MySQL 5.7 SHOW SLAVE STATUS (Master_* / Slave_*), named channel, SQL thread stopped', () => {
    const ch = normalizeReplicaStatusRow(MYSQL57_SLAVE_STATUS);
    expect(ch).toMatchObject({
      name: 'source_a',
      ioRunning: 'Yes',
      sqlRunning: 'No',
      secondsBehind: undefined,
      sourceHost: 'db-a.example',
      sourcePort: 3306,
      sourceServerId: 11,
    });
    expect(ch.lastSqlError).toMatch(/Duplicate entry/);
    expect(channelLagSeconds(ch, 1000, 1010)).toBeUndefined();
  });

  test('MariaDB SHOW ALL SLAVES STATUS (Connection_name, Master_*), delayed', () => {
    expect(normalizeReplicaStatusRow(MARIADB_ALL_SLAVES_STATUS)).toMatchObject({
      name: '',
      ioRunning: 'Yes',
      sqlRunning: 'Yes',
      secondsBehind: 3,
      sourcePort: 33061,
      sourceServerId: 1,
      sqlDelay: 3,
    });
  });

  test('text values (as a CLI or another client would give them) map the same', () => {
    const asText = Object.fromEntries(
      Object.entries(MYSQL8_REPLICA_STATUS).map(([k, v]) => [k, v === null ? null : String(v)]),
    );
    expect(normalizeReplicaStatusRow(asText)).toEqual(normalizeReplicaStatusRow(MYSQL8_REPLICA_STATUS));
  });

  test('an empty or foreign row maps to a stopped channel, never throws', () => {
    expect(normalizeReplicaStatusRow({})).toEqual({
      name: '',
      ioRunning: 'No',
      sqlRunning: 'No',
      secondsBehind: undefined,
      sourceHost: undefined,
      sourcePort: undefined,
      sourceServerId: undefined,
      sqlDelay: undefined,
      lastIoError: undefined,
      lastSqlError: undefined,
      receivedMark: undefined,
      receivedHeartbeats: undefined,
      heartbeatPeriodSeconds: undefined,
    });
  });

  test('Group Replication channels are recognised', () => {
    expect(isGroupReplicationChannel(channel({ name: 'group_replication_applier' }))).toBe(true);
    expect(isGroupReplicationChannel(channel({ name: 'source_a' }))).toBe(false);
  });
});

describe('lag, honest about Seconds_Behind_*', () => {
  const now = 10_000;
  test('IO and SQL running: the server value', () => {
    expect(channelLagSeconds(channel({ secondsBehind: 7 }), now, now)).toBe(7);
    expect(channelLagSeconds(channel({ secondsBehind: 0 }), now, now)).toBe(0);
  });
  test('SQL thread stopped: unknown, whatever else is known', () => {
    expect(
      channelLagSeconds(channel({ sqlRunning: 'No', secondsBehind: undefined }), now - 5, now),
    ).toBeUndefined();
    expect(channelLagSeconds(channel({ sqlRunning: 'No', ioRunning: 'No' }), now - 5, now)).toBeUndefined();
  });
  test('IO thread not connected: time since last seen connected (the server says NULL or 0)', () => {
    expect(
      channelLagSeconds(channel({ ioRunning: 'Connecting', secondsBehind: undefined }), now - 42, now),
    ).toBe(42);
    expect(channelLagSeconds(channel({ ioRunning: 'No', secondsBehind: 0 }), now - 42.4, now)).toBeCloseTo(
      42.4,
      6,
    );
    // MySQL still draining its relay log with the receiver down: the larger of the two.
    expect(channelLagSeconds(channel({ ioRunning: 'No', secondsBehind: 90 }), now - 42, now)).toBe(90);
    expect(channelLagSeconds(channel({ ioRunning: 'Preparing' }), now, now)).toBe(0);
  });
  test('IO thread never seen connected by this exporter: unknown', () => {
    expect(
      channelLagSeconds(channel({ ioRunning: 'Connecting', secondsBehind: undefined }), undefined, now),
    ).toBeUndefined();
  });
  test('multi-source: the worst channel; unknown if any channel is unknown', () => {
    expect(worstLagSeconds([])).toBeUndefined();
    expect(worstLagSeconds([0, 3, 1])).toBe(3);
    expect(worstLagSeconds([0, undefined])).toBeUndefined();
    // Every channel at 0 says only "applied all that was received": events on the way are invisible.
    expect(worstLagSeconds([0, 0])).toBeUndefined();
    expect(worstLagSeconds([0])).toBeUndefined();
  });
});

describe('role from channels and read_only (docs/mysql.md "Role")', () => {
  const stopped = channel({ ioRunning: 'No', sqlRunning: 'No' });
  test.each([
    ['no channel, writable', [], false, 'primary'],
    ['no channel, read_only', [], true, 'unknown'],
    ['replicating, writable', [channel({})], false, 'secondary'],
    ['IO connecting only', [channel({ ioRunning: 'Connecting', sqlRunning: 'No' })], false, 'secondary'],
    ['stopped, read_only', [stopped], true, 'secondary'],
    ['stopped, writable', [stopped], false, 'unknown'],
    ['group replication', [channel({ name: 'group_replication_applier' })], true, 'unknown'],
  ] as const)('%s -> %s', (_what, channels, readOnly, role) => {
    expect(nodeRole([...channels], readOnly).role).toBe(role);
  });
  test('read_only values', () => {
    expect(isReadOnlySetting('ON')).toBe(true);
    expect(isReadOnlySetting('NO_LOCK')).toBe(true);
    expect(isReadOnlySetting('1')).toBe(true);
    expect(isReadOnlySetting('OFF')).toBe(false);
    expect(isReadOnlySetting('0')).toBe(false);
    expect(isReadOnlySetting(undefined)).toBe(false);
  });
});

describe('a silent link (IO thread Yes, nothing received)', () => {
  test('silent after the heartbeat period + 1 s + 10 %; never without a period', () => {
    const ch = channel({ heartbeatPeriodSeconds: 30 });
    expect(linkSilent(ch, 1000, 1033.9)).toBe(false);
    expect(linkSilent(ch, 1000, 1034.1)).toBe(true);
    expect(linkSilent(channel({ heartbeatPeriodSeconds: 0 }), 1000, 5000)).toBe(false);
    expect(linkSilent(channel({}), 1000, 5000)).toBe(false);
    expect(linkSilent(channel({ ioRunning: 'Connecting', heartbeatPeriodSeconds: 1 }), 1000, 5000)).toBe(
      false,
    );
    // Silent: the time since the last receive, even though the server says 0.
    expect(channelLagSeconds(channel({ secondsBehind: 0 }), 1000, 1010, true)).toBe(10);
  });
  test("ReceiveWatch: the first time a channel's position or heartbeat count was seen to change", () => {
    const watch = new ReceiveWatch();
    const at = (mark: string, beats: number) => [channel({ receivedMark: mark, receivedHeartbeats: beats })];
    expect(watch.observe(at('b.1:10', 0), 100).get('')).toBe(100);
    expect(watch.observe(at('b.1:10', 0), 101).get('')).toBe(100);
    expect(watch.observe(at('b.1:10', 1), 102).get('')).toBe(102); // a heartbeat arrived
    expect(watch.observe(at('b.1:20', 1), 103).get('')).toBe(103); // an event arrived
    expect(watch.observe([], 104).size).toBe(0); // channels gone are forgotten
  });
});

describe('GTID positions as numbers', () => {
  test('MariaDB: sum of seq_no over domains', () => {
    expect(mariadbGtidSeqNoSum('0-1-42')).toBe(42);
    expect(mariadbGtidSeqNoSum('0-1-42,1-2-7')).toBe(49);
    expect(mariadbGtidSeqNoSum('')).toBe(0);
    expect(mariadbGtidSeqNoSum('0-1-42,garbage')).toBe(42);
  });
  test('MySQL: transactions in a GTID set, as the server prints it (multi-line, several UUIDs, gaps, tags)', () => {
    expect(mysqlGtidSetCount(`${SOURCE_UUID}:1-3`)).toBe(3);
    expect(mysqlGtidSetCount('')).toBe(0);
    expect(
      mysqlGtidSetCount(
        '2174B383-5441-11E8-B90A-C80AA9429562:1-3,\n3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11-18:20',
      ),
    ).toBe(3 + 5 + 8 + 1);
    // MySQL 8.3+ tagged GTIDs: uuid:tag:intervals.
    expect(mysqlGtidSetCount(`${SOURCE_UUID}:1-5:billing:1-3`)).toBe(8);
  });
});

describe('counters, identity, offsets and timestamps', () => {
  test('reads and writes from SHOW GLOBAL STATUS (MariaDB with query cache, MySQL 8 without)', () => {
    const mariadb = new Map([
      ['Com_select', '100'],
      ['Qcache_hits', '20'],
      ['Com_insert', '5'],
      ['Com_update', '3'],
      ['Com_delete_multi', '1'],
      ['Com_load', '1'],
      ['Com_show_status', '999'],
    ]);
    expect(operationCounters(mariadb)).toEqual({ reads: 120, writes: 10 });
    const mysql8 = new Map([
      ['Com_select', '100'],
      ['Com_insert', '5'],
      ['Com_replace_select', '2'],
    ]);
    expect(operationCounters(mysql8)).toEqual({ reads: 100, writes: 7 });
    expect(operationCounters(new Map())).toEqual({ reads: undefined, writes: undefined });
  });

  test('node id: server_uuid (MySQL), else server_id@hostname:port (MariaDB)', () => {
    expect(
      nativeNodeId(
        new Map([
          ['server_uuid', SOURCE_UUID],
          ['server_id', '1'],
        ]),
      ),
    ).toBe(SOURCE_UUID);
    expect(
      nativeNodeId(
        new Map([
          ['server_id', '2'],
          ['hostname', 'db2'],
          ['port', '3306'],
        ]),
      ),
    ).toBe('2@db2:3306');
    expect(nativeNodeId(new Map([['server_id', '2']]))).toBeUndefined();
  });

  test('commit offset: GTIDs where there are any, never a fake 0', () => {
    const mariadb = parseServerVersion('10.11.19-MariaDB');
    const mysql = parseServerVersion('8.0.36');
    expect(
      commitOffset(
        mariadb,
        new Map([
          ['log_bin', 'ON'],
          ['gtid_current_pos', '0-1-42'],
        ]),
        false,
      ),
    ).toEqual({
      value: 42,
      unit: 'gtid_seq_no',
    });
    // A primary without binlog records no GTIDs.
    expect(
      commitOffset(
        mariadb,
        new Map([
          ['log_bin', 'OFF'],
          ['gtid_current_pos', ''],
        ]),
        false,
      ),
    ).toBeUndefined();
    // A replica without binlog still records what it applied (gtid_slave_pos).
    expect(
      commitOffset(
        mariadb,
        new Map([
          ['log_bin', 'OFF'],
          ['gtid_current_pos', '0-1-9'],
        ]),
        true,
      ),
    ).toEqual({
      value: 9,
      unit: 'gtid_seq_no',
    });
    expect(
      commitOffset(
        mysql,
        new Map([
          ['gtid_mode', 'ON'],
          ['gtid_executed', `${SOURCE_UUID}:1-3`],
        ]),
        true,
      ),
    ).toEqual({ value: 3, unit: 'transactions' });
    expect(
      commitOffset(
        mysql,
        new Map([
          ['gtid_mode', 'OFF'],
          ['gtid_executed', ''],
        ]),
        false,
      ),
    ).toBeUndefined();
  });

  test('performance_schema timestamps: UTC, microseconds, zero date = none', () => {
    expect(parseUtcDatetime('2019-10-30 14:28:04.011849')).toBeCloseTo(
      Date.UTC(2019, 9, 30, 14, 28, 4) / 1000 + 0.011849,
      6,
    );
    expect(parseUtcDatetime('2019-10-30 14:28:04')).toBe(Date.UTC(2019, 9, 30, 14, 28, 4) / 1000);
    expect(parseUtcDatetime('0000-00-00 00:00:00.000000')).toBeUndefined();
    expect(parseUtcDatetime('')).toBeUndefined();
    expect(parseUtcDatetime('yesterday')).toBeUndefined();
  });

  test('last applied original commit time: the latest over workers; none when all are zero', () => {
    expect(lastAppliedOriginalCommitSeconds(MYSQL8_APPLIER_ROWS)).toBeCloseTo(
      Date.UTC(2019, 9, 30, 14, 28, 5) / 1000 + 0.250112,
      6,
    );
    expect(lastAppliedOriginalCommitSeconds(MYSQL8_APPLIER_ROWS.slice(2))).toBeUndefined();
    expect(lastAppliedOriginalCommitSeconds([])).toBeUndefined();
  });
});

/** A mysql2 connection stand-in that answers each statement with a recorded response. */
class RecordedConnection extends EventEmitter {
  readonly statements: string[] = [];
  destroyed = false;
  constructor(private readonly answer: (sql: string) => Record<string, unknown>[]) {
    super();
    setImmediate(() => this.emit('connect'));
  }
  promise(): { query(opts: { sql: string; timeout?: number }): Promise<[unknown, unknown[]]> } {
    return {
      query: async ({ sql }) => {
        this.statements.push(sql);
        return [this.answer(sql), []];
      },
    };
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function nameValueRows(values: Record<string, string>): Record<string, unknown>[] {
  return Object.entries(values).map(([Variable_name, Value]) => ({ Variable_name, Value }));
}

describe('MySQL 8 through the driver, on recorded responses', () => {
  const warnings: string[] = [];
  const options: DriverOptions = {
    target: {
      scheme: 'mysql',
      redactedUrl: 'mysql://exporter@db2:3306',
      url: new URL('mysql://exporter@db2:3306'),
      host: 'db2',
      port: 3306,
      username: 'exporter',
      password: 'pw',
    },
    timeoutMs: 800,
    logger: { debug: () => undefined, info: () => undefined, warn: (msg) => void warnings.push(msg) },
    extra: {},
    heartbeat: false,
  };

  function mysql8Replica(state: {
    comSelect: number;
    applier: 'ok' | 'denied';
    channels: Record<string, unknown>[];
  }) {
    return (sql: string): Record<string, unknown>[] => {
      if (/^SELECT\b/.test(sql)) state.comSelect++; // the server counts our SELECT, as MySQL does
      if (sql.startsWith('SHOW GLOBAL VARIABLES'))
        return nameValueRows({
          version: '8.0.36',
          version_comment: 'MySQL Community Server - GPL',
          server_id: '2',
          server_uuid: 'a9e2c6b4-97a0-11ee-b1f1-0242ac120003',
          hostname: 'db2',
          port: '3306',
          log_bin: 'ON',
          gtid_mode: 'ON',
          gtid_executed: `${SOURCE_UUID}:1-42,\na9e2c6b4-97a0-11ee-b1f1-0242ac120003:1-2`,
        });
      if (sql.startsWith('SHOW GLOBAL STATUS'))
        return nameValueRows({
          Threads_connected: '6',
          Com_select: String(state.comSelect),
          Com_insert: '40',
          Com_update: '2',
        });
      if (sql === 'SHOW REPLICA STATUS') return state.channels;
      if (sql.includes('replication_applier_status_by_worker')) {
        if (state.applier === 'denied') {
          throw Object.assign(
            new Error(
              "SELECT command denied to user 'exporter'@'db2' for table 'replication_applier_status_by_worker'",
            ),
            {
              code: 'ER_TABLEACCESS_DENIED_ERROR',
            },
          );
        }
        return MYSQL8_APPLIER_ROWS;
      }
      if (sql.startsWith('SET ')) return [];
      // No heartbeat table here (nobody runs --heartbeat): what MySQL answers to the HANDLER.
      if (sql.startsWith('HANDLER ')) {
        throw Object.assign(new Error("Table 'datastore_exporter.heartbeat' doesn't exist"), {
          code: 'ER_NO_SUCH_TABLE',
        });
      }
      throw new Error(`unexpected statement ${sql}`);
    };
  }

  function connectWith(answer: (sql: string) => Record<string, unknown>[]): RecordedConnection {
    const conn = new RecordedConnection(answer);
    (createConnection as jest.Mock).mockReturnValueOnce(conn);
    return conn;
  }

  test('a replica: SHOW REPLICA STATUS, applier commit time as last-op, read-only session, own SELECTs not reads', async () => {
    const state = { comSelect: 100, applier: 'ok' as const, channels: [MYSQL8_REPLICA_STATUS] };
    const conn = connectWith(mysql8Replica(state));
    const driver = createDriver(options);
    await driver.connect();
    expect(conn.statements).toContain('SET SESSION TRANSACTION READ ONLY');
    expect(conn.statements).toContain("SET SESSION time_zone = '+00:00', max_execution_time = 800");

    const first = await driver.observe();
    expect(first).toEqual({
      datastore: 'mysql',
      version: '8.0.36',
      nativeNodeId: 'a9e2c6b4-97a0-11ee-b1f1-0242ac120003',
      shards: [
        {
          role: 'secondary',
          nativeRole: 'replica',
          // Seconds_Behind_Source 0: "applied all received", not "in sync": no lag is published.
          lagSeconds: undefined,
          lastOperationTimestampSeconds: Date.UTC(2019, 9, 30, 14, 28, 5) / 1000 + 0.250112,
          commitOffset: { value: 44, unit: 'transactions' },
        },
      ],
      performance: { clientsConnected: 5, readsTotal: 100, writesTotal: 42 },
    });
    expect(conn.statements).toContain('SHOW REPLICA STATUS');
    expect(conn.statements.some((s) => s.includes('SHOW ALL SLAVES'))).toBe(false);

    // The server counted the driver's SELECT; reads stay what clients did.
    const second = await driver.observe();
    expect(state.comSelect).toBe(102);
    expect(second.performance.readsTotal).toBe(100);

    await driver.close();
    expect(conn.destroyed).toBe(true);
    await expect(driver.observe()).rejects.toThrow(/not open/);
  });

  test('multi-source replica: one shard, the worst channel lag; a stopped SQL thread makes it unknown', async () => {
    const behind = { ...MYSQL8_REPLICA_STATUS, Channel_Name: 'source_b', Seconds_Behind_Source: 12 };
    const state = { comSelect: 0, applier: 'ok' as const, channels: [MYSQL8_REPLICA_STATUS, behind] };
    connectWith(mysql8Replica(state));
    const driver = createDriver(options);
    await driver.connect();
    let obs = await driver.observe();
    expect(obs.shards).toHaveLength(1);
    expect(obs.shards[0]).toMatchObject({ role: 'secondary', lagSeconds: 12 });
    state.channels = [
      MYSQL8_REPLICA_STATUS,
      { ...behind, Replica_SQL_Running: 'No', Seconds_Behind_Source: null },
    ];
    obs = await driver.observe();
    expect(obs.shards[0]!.role).toBe('secondary');
    expect(obs.shards[0]!.lagSeconds).toBeUndefined();
    await driver.close();
  });

  test('performance_schema not granted: one warning, last-op falls back to the GTID position advancing', async () => {
    warnings.length = 0;
    const state = { comSelect: 0, applier: 'denied' as const, channels: [MYSQL8_REPLICA_STATUS] };
    const conn = connectWith(mysql8Replica(state));
    const driver = createDriver(options);
    await driver.connect();
    const obs = await driver.observe();
    expect(obs.shards[0]!.lastOperationTimestampSeconds).toBeUndefined(); // nothing seen to advance yet
    await driver.observe();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/performance_schema/);
    expect(conn.statements.filter((s) => s.includes('replication_applier_status_by_worker'))).toHaveLength(1);
    await driver.close();
  });

  test('a MySQL 8 source with no channel: primary, no lag; Group Replication member: unknown', async () => {
    const state = { comSelect: 0, applier: 'ok' as const, channels: [] as Record<string, unknown>[] };
    const conn = connectWith(mysql8Replica(state));
    const driver = createDriver(options);
    await driver.connect();
    let obs = await driver.observe();
    expect(obs.shards[0]).toMatchObject({ role: 'primary', nativeRole: 'source', lagSeconds: undefined });
    expect(conn.statements.some((s) => s.includes('performance_schema'))).toBe(false);
    state.channels = [{ ...MYSQL8_REPLICA_STATUS, Channel_Name: 'group_replication_applier' }];
    obs = await driver.observe();
    expect(obs.shards[0]).toMatchObject({
      role: 'unknown',
      nativeRole: 'group_replication',
      lagSeconds: undefined,
    });
    await driver.close();
  });
});
