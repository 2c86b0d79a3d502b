/**
 * The ZooKeeper 4lw parsers on real replies from 3.4 to 3.9 (sources noted per sample: published
 * outputs of released servers, and the Debian 3.8.0 server this suite runs), plus garbage: unknown
 * or malformed lines are skipped, never thrown.
 */
import fc from 'fast-check';
import { ContinuingCounter } from '../src/drivers/shared/continuing-counter';
import { ZxidTracker } from '../src/drivers/zookeeper/driver';
import {
  confServerId,
  ensembleDigest,
  mntrNumber,
  operationCounts,
  parseConf,
  parseMntr,
  parseSrvr,
  parseVersion,
  parseZxid,
  replyProblem,
  roleOfMode,
  splitZxid,
  zxidOffset,
} from '../src/drivers/zookeeper/parse';

// --- srvr / stat -------------------------------------------------------------------------------

/** 3.4.14 `stat` on a leader (published output): client list, integer latency, proposal sizes. */
const STAT_3_4_LEADER = `Zookeeper version: 3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019 16:18 GMT
Clients:
 /172.18.0.14:43250[1](queued=0,recved=727,sent=732)
 /172.18.0.1:63738[0](queued=0,recved=1,sent=0)
 /172.18.0.10:51482[1](queued=0,recved=540,sent=598)

Latency min/avg/max: 0/5/71
Received: 1328
Sent: 1330
Connections: 3
Outstanding: 0
Zxid: 0x1000000b9
Mode: leader
Node count: 141
Proposal sizes last/min/max: 36/36/1013
`;

/** 3.5.5 `srvr`, standalone (Elastic metricbeat's test fixture of a real reply). */
const SRVR_3_5_STANDALONE = `Zookeeper version: 3.5.5-390fe37ea45dee01bf87dc1c042b5e3dcce88653, built on 05/03/2019 12:07 GMT
Latency min/avg/max: 1/2/3
Received: 46
Sent: 45
Connections: 1
Outstanding: 0
Zxid: 0x700601132
Mode: standalone
Node count: 4
Proposal sizes last/min/max: -3/-999/-1
`;

/** 3.6.1 `srvr`, standalone (published output): the version has a double dash. */
const SRVR_3_6_STANDALONE = `Zookeeper version: 3.6.1--104dcb3e3fb464b30c5186d229e00af9f332524b, built on 04/21/2020 15:01 GMT
Latency min/avg/max: 0/0.0/0
Received: 1
Sent: 1
Connections: 1
Outstanding: 0
Zxid: 0x5c
Mode: standalone
Node count: 8
`;

/** 3.7.0 `srvr` on a leader (published output). */
const SRVR_3_7_LEADER = `Zookeeper version: 3.7.0-e3704b390a6697bfdf4b0bef79e3da7a4f6bac4b, built on 2021-03-17 09:46 UTC
Latency min/avg/max: 0/0.0/0
Received: 2
Sent: 1
Connections: 1
Outstanding: 0
Zxid: 0x100000000
Mode: leader
Node count: 5
Proposal sizes last/min/max: -1/-1/-1
`;

/** 3.8.0 `srvr` on a follower: the Debian server of this suite (unexpanded commit id in the version). */
const SRVR_3_8_FOLLOWER = `Zookeeper version: 3.8.0-\${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
Latency min/avg/max: 1/7.25/14
Received: 13
Sent: 18
Connections: 2
Outstanding: 0
Zxid: 0x100000002
Mode: follower
Node count: 6
`;

/** 3.9.3 `srvr` on a follower that has seen no transaction yet (published output). */
const SRVR_3_9_FOLLOWER = `Zookeeper version: 3.9.3-c26634f34490bb0ea7a09cc51e05ede3b4e320ee, built on 2024-10-17 23:21 UTC
Latency min/avg/max: 0/0.0/0
Received: 6
Sent: 5
Connections: 1
Outstanding: 0
Zxid: 0x0
Mode: follower
Node count: 5
`;

/** 3.9.3 `srvr` on a leader (published output). */
const SRVR_3_9_LEADER = `Zookeeper version: 3.9.3-c26634f34490bb0ea7a09cc51e05ede3b4e320ee, built on 2024-10-17 23:21 UTC
Latency min/avg/max: 0/0.0/0
Received: 2
Sent: 1
Connections: 1
Outstanding: 0
Zxid: 0x200000002
Mode: leader
Node count: 5
Proposal sizes last/min/max: 48/48/48
`;

describe('srvr', () => {
  test.each([
    ['3.4 stat leader', STAT_3_4_LEADER, '3.4.14', 'leader', 0x1000000b9n, 3],
    ['3.5 standalone', SRVR_3_5_STANDALONE, '3.5.5', 'standalone', 0x700601132n, 1],
    ['3.6 standalone', SRVR_3_6_STANDALONE, '3.6.1', 'standalone', 0x5cn, 1],
    ['3.7 leader', SRVR_3_7_LEADER, '3.7.0', 'leader', 0x100000000n, 1],
    ['3.8 follower (Debian)', SRVR_3_8_FOLLOWER, '3.8.0', 'follower', 0x100000002n, 2],
    ['3.9 follower', SRVR_3_9_FOLLOWER, '3.9.3', 'follower', 0n, 1],
    ['3.9 leader', SRVR_3_9_LEADER, '3.9.3', 'leader', 0x200000002n, 1],
  ])('%s', (_name, text, version, mode, zxid, connections) => {
    const r = parseSrvr(text);
    expect(parseVersion(r.rawVersion)).toBe(version);
    expect(r.mode).toBe(mode);
    expect(r.zxid).toBe(zxid);
    expect(r.connections).toBe(connections);
    expect(replyProblem(text)).toBeUndefined();
  });

  test('CRLF line ends, garbage and half lines are ignored', () => {
    const text = `garbage\r\n: no key\r\nZxid: not-hex\r\nMode: follower\r\nConnections: -4\r\n\u0000\u00ff:\r\nZookeeper version: 3.8.4-abc, built on x\r\nZxid: 0x2a\r\n`;
    const r = parseSrvr(text);
    expect(r).toEqual({
      rawVersion: '3.8.4-abc, built on x',
      mode: 'follower',
      zxid: 42n,
      connections: undefined,
    });
  });

  test('a reply without the fields yields undefined fields, not an error', () => {
    expect(parseSrvr('imok')).toEqual({});
    expect(parseSrvr('')).toEqual({});
  });
});

describe('zxid', () => {
  test('hex zxids, any case, up to 64 bits; garbage is undefined', () => {
    expect(parseZxid('0x0')).toBe(0n);
    expect(parseZxid('0x1000000B9')).toBe(0x1000000b9n);
    expect(parseZxid(' 0xffffffffffffffff ')).toBe(0xffffffffffffffffn);
    for (const bad of ['', '0x', '12', '0x1g', '-0x1', '0x10000000000000000', 'Zxid']) {
      expect(parseZxid(bad)).toBeUndefined();
    }
  });

  test('epoch and counter', () => {
    expect(splitZxid(0x300000042n)).toEqual({ epoch: 3n, counter: 0x42n });
    expect(splitZxid(0x200000000n)).toEqual({ epoch: 2n, counter: 0n });
    expect(splitZxid(0x5cn)).toEqual({ epoch: 0n, counter: 0x5cn });
  });

  test('the commit offset is the counter within its epoch, so that an election invents no distance', () => {
    expect(zxidOffset(0x300000042n)).toEqual({ value: 0x42, unit: 'zxid_counter', epoch: 3 });
    // A new leader (epoch 2, nothing written yet) and a follower still at epoch 1's last zxid: as
    // plain numbers 0x200000000 - 0x100000019 = 4294967271 "behind"; as (epoch, counter) the
    // follower is in an older epoch, i.e. has none of epoch 2's (zero) transactions: 0 behind.
    const leader = zxidOffset(0x200000000n);
    const follower = zxidOffset(0x100000019n);
    expect([leader.epoch, leader.value, follower.epoch, follower.value]).toEqual([2, 0, 1, 0x19]);
  });
});

describe('version', () => {
  test.each([
    ['3.4.8--1, built on 02/06/2016 03:18 GMT', '3.4.8'],
    ['3.4.8-1--1, built on Fri, 26 Feb 2016 14:51:43 +0100', '3.4.8'],
    ['3.5.4-beta-7f51e5b68cf2f80176ff944a9ebd2abbc65e7327, built on 05/11/2018 16:27 GMT', '3.5.4-beta'],
    ['3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT', '3.6.3'],
    ['3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC', '3.8.0'],
    ['3.9.2', '3.9.2'],
    // ClickHouse Keeper speaks the same 4lw.
    ['v22.7.2.15-stable-f843089624e8dd3ff7927b8a125cf3a7a769c069', '22.7.2.15'],
    ['custom-build, built on today', 'custom-build'],
  ])('%s -> %s', (raw, version) => {
    expect(parseVersion(raw)).toBe(version);
  });

  test('absent or empty -> undefined', () => {
    expect(parseVersion(undefined)).toBeUndefined();
    expect(parseVersion('  ')).toBeUndefined();
    expect(parseVersion(', built on x')).toBeUndefined();
  });
});

// --- mntr --------------------------------------------------------------------------------------

/** 3.5.9 `mntr` on a leader (published output): no ServerMetrics yet. */
const MNTR_3_5_LEADER = `zk_version\t3.5.9-83df9301aa5c2a5d284a9940177808c01bc35cef, built on 01/06/2021 20:03 GMT
zk_avg_latency\t0
zk_max_latency\t0
zk_min_latency\t0
zk_packets_received\t2
zk_packets_sent\t1
zk_num_alive_connections\t1
zk_outstanding_requests\t0
zk_server_state\tleader
zk_znode_count\t5
zk_watch_count\t0
zk_ephemerals_count\t0
zk_approximate_data_size\t191
zk_open_file_descriptor_count\t130
zk_max_file_descriptor_count\t100000
zk_followers\t2
zk_synced_followers\t2
zk_pending_syncs\t0
zk_last_proposal_size\t-1
zk_max_proposal_size\t-1
zk_min_proposal_size\t-1
`;

/**
 * 3.6.1 `mntr`, standalone (published output, excerpt): ServerMetrics summaries, including the
 * per-namespace ones for namespaces that exist ("abc", "zookeeper", "services"), all still at zero.
 */
const MNTR_3_6_STANDALONE = `zk_version\t3.6.1--104dcb3e3fb464b30c5186d229e00af9f332524b, built on 04/21/2020 15:01 GMT
zk_server_state\tstandalone
zk_ephemerals_count\t0
zk_min_latency\t0
zk_avg_latency\t0.0
zk_num_alive_connections\t1
zk_max_file_descriptor_count\t-1
zk_outstanding_requests\t0
zk_znode_count\t8
zk_uptime\t65612622
zk_packets_sent\t6
zk_packets_received\t6
zk_avg_updatelatency\t0.0
zk_min_updatelatency\t0
zk_max_updatelatency\t0
zk_cnt_updatelatency\t0
zk_sum_updatelatency\t0
zk_p50_updatelatency\t0
zk_avg_readlatency\t0.0
zk_cnt_readlatency\t0
zk_avg_abc_read_per_namespace\t0.0
zk_min_abc_read_per_namespace\t0
zk_max_abc_read_per_namespace\t0
zk_cnt_abc_read_per_namespace\t0
zk_sum_abc_read_per_namespace\t0
zk_cnt_zookeeper_read_per_namespace\t0
zk_cnt_services_read_per_namespace\t0
zk_avg_abc_write_per_namespace\t0.0
zk_cnt_abc_write_per_namespace\t0
zk_sum_abc_write_per_namespace\t0
zk_cnt_services_write_per_namespace\t0
`;

/** 3.6.3 `mntr` on a leader (published output, excerpt): zk_peer_state appears in 3.6. */
const MNTR_3_6_LEADER = `zk_version\t3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT
zk_server_state\tleader
zk_peer_state\tleading - broadcast
zk_ephemerals_count\t1
zk_avg_latency\t0.1736
zk_num_alive_connections\t1
zk_min_proposal_size\t36
zk_outstanding_requests\t0
zk_znode_count\t11
zk_global_sessions\t1
zk_packets_sent\t10432
zk_packets_received\t10431
zk_synced_followers\t2
`;

/**
 * 3.8.0 `mntr` of the Debian server this suite runs, standalone, after one session that created
 * /abc and /abc/d, set /abc, read three times and pinged once (excerpt: the reply has 495 lines).
 */
const MNTR_3_8_STANDALONE = `zk_version\t3.8.0-\${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
zk_server_state\tstandalone
zk_ephemerals_count\t0
zk_num_alive_connections\t1
zk_avg_latency\t5.0
zk_outstanding_requests\t0
zk_znode_count\t7
zk_global_sessions\t0
zk_packets_sent\t11
zk_packets_received\t12
zk_uptime\t715
zk_avg_updatelatency\t8.8
zk_cnt_updatelatency\t5
zk_cnt_readlatency\t4
zk_p999_readlatency\t1
zk_avg_sync_processor_queue_time_ms\t0.0
zk_p999_write_commitproc_time_ms\t0
zk_avg_abc_read_per_namespace\t74.3333
zk_min_abc_read_per_namespace\t74
zk_max_abc_read_per_namespace\t75
zk_cnt_abc_read_per_namespace\t3
zk_sum_abc_read_per_namespace\t223
zk_avg_abc_write_per_namespace\t6.0
zk_min_abc_write_per_namespace\t5
zk_max_abc_write_per_namespace\t7
zk_cnt_abc_write_per_namespace\t3
zk_sum_abc_write_per_namespace\t18
`;

/**
 * `mntr` with the Prometheus metrics provider (3.6+, not packaged by Debian): keys are the
 * Prometheus samples' names with their labels, built by PrometheusMetricsProvider.dump() (format
 * from its source, not a recorded reply).
 */
const MNTR_PROMETHEUS_PROVIDER = `zk_version\t3.8.4-4f0b4b1f7fd9f6204db4f6c304b1d52c2f5f56b9, built on 2024-02-12 22:16 UTC
zk_server_state\tfollower
zk_num_alive_connections\t4
zk_updatelatency{quantile="0.5"}\t1.0
zk_updatelatency_count\t12.0
zk_updatelatency_sum\t30.0
zk_read_per_namespace{key="app",quantile="0.5"}\t80.0
zk_read_per_namespace_count{key="app"}\t7.0
zk_read_per_namespace_count{key="locks"}\t3.0
zk_read_per_namespace_sum{key="app"}\t560.0
zk_write_per_namespace_count{key="app"}\t2.0
zk_write_per_namespace_sum{key="app"}\t20.0
`;

describe('mntr', () => {
  test('3.5 leader: fields, and no read/write counts (no ServerMetrics before 3.6)', () => {
    const m = parseMntr(MNTR_3_5_LEADER);
    expect(m.get('zk_server_state')).toBe('leader');
    expect(parseVersion(m.get('zk_version'))).toBe('3.5.9');
    expect(mntrNumber(m, 'zk_num_alive_connections')).toBe(1);
    expect(mntrNumber(m, 'zk_last_proposal_size')).toBe(-1);
    expect(operationCounts(m)).toEqual({});
  });

  test('3.6 standalone: namespaces known but unused -> zero reads and writes', () => {
    const m = parseMntr(MNTR_3_6_STANDALONE);
    expect(m.get('zk_server_state')).toBe('standalone');
    expect(operationCounts(m)).toEqual({ readsTotal: 0, writesTotal: 0 });
  });

  test('3.6 leader excerpt: zk_peer_state with spaces is kept whole', () => {
    const m = parseMntr(MNTR_3_6_LEADER);
    expect(m.get('zk_peer_state')).toBe('leading - broadcast');
    expect(mntrNumber(m, 'zk_avg_latency')).toBeCloseTo(0.1736);
    // No ServerMetrics summary in this excerpt: counts are unknown, not zero.
    expect(operationCounts(m)).toEqual({});
  });

  test('3.8 (Debian, recorded here): per-namespace counts sum; readlatency (pings included) is not used', () => {
    const m = parseMntr(MNTR_3_8_STANDALONE);
    expect(operationCounts(m)).toEqual({ readsTotal: 3, writesTotal: 3 });
    // 3 getData + 1 ping; and 5 updates = session open, 2 creates, 1 setData, session close.
    expect(mntrNumber(m, 'zk_cnt_readlatency')).toBe(4);
    expect(mntrNumber(m, 'zk_cnt_updatelatency')).toBe(5);
  });

  test('Prometheus metrics provider keys', () => {
    const m = parseMntr(MNTR_PROMETHEUS_PROVIDER);
    expect(operationCounts(m)).toEqual({ readsTotal: 10, writesTotal: 2 });
  });

  test('namespaces whose names look like metric suffixes are still summed once', () => {
    const m = parseMntr(
      'zk_cnt_updatelatency\t0\nzk_cnt_x_write_per_namespace_read_per_namespace\t4\nzk_cnt_a_b_write_per_namespace\t2\n',
    );
    expect(operationCounts(m)).toEqual({ readsTotal: 4, writesTotal: 2 });
  });

  test('space-separated copies, garbage, negative and non-numeric counts are skipped', () => {
    const m = parseMntr(
      [
        'zk_version  3.9.2',
        'zk_num_alive_connections 3',
        'zk_cnt_updatelatency\t1',
        'zk_cnt_a_read_per_namespace\tNaN',
        'zk_cnt_b_read_per_namespace\t-5',
        'zk_cnt_c_read_per_namespace\t2',
        'not a metric line',
        '\tzk_orphan_value',
        'zk_empty_value\t',
        '',
      ].join('\n'),
    );
    expect(m.get('zk_version')).toBe('3.9.2');
    expect(mntrNumber(m, 'zk_num_alive_connections')).toBe(3);
    expect(mntrNumber(m, 'zk_empty_value')).toBeUndefined();
    expect(mntrNumber(m, 'zk_missing')).toBeUndefined();
    expect(operationCounts(m)).toEqual({ readsTotal: 2, writesTotal: 0 });
    expect(m.has('not')).toBe(false);
  });
});

// --- conf --------------------------------------------------------------------------------------

/** 3.8.0 `conf` of an ensemble member: the Debian server of this suite (3.5+ format: membership). */
const CONF_3_8_QUORUM = `clientPort=35233
secureClientPort=-1
dataDir=/tmp/dsx-zk-ensemble-TO5Gx7/zk3/data/version-2
dataDirSize=597
dataLogDir=/tmp/dsx-zk-ensemble-TO5Gx7/zk3/data/version-2
dataLogSize=597
tickTime=500
maxClientCnxns=60
minSessionTimeout=1000
maxSessionTimeout=10000
clientPortListenBacklog=-1
serverId=3
initLimit=20
syncLimit=10
electionAlg=3
electionPort=35977
quorumPort=42309
peerType=0
membership: 
server.1=127.0.0.1:34937:33737:participant
server.2=127.0.0.1:36643:43783:participant
server.3=127.0.0.1:42309:35977:participant
version=0
`;

/** 3.8.0 `conf`, standalone: serverId is always 0. */
const CONF_3_8_STANDALONE = `clientPort=22181
secureClientPort=-1
dataDir=/tmp/zkt1/data/version-2
dataDirSize=457
dataLogDir=/tmp/zkt1/data/version-2
dataLogSize=457
tickTime=500
maxClientCnxns=60
minSessionTimeout=1000
maxSessionTimeout=10000
clientPortListenBacklog=-1
serverId=0
`;

/** 3.4-format `conf` of an ensemble member: the published 3.4 field list (no membership section), values illustrative. */
const CONF_3_4_QUORUM = `clientPort=2181
dataDir=/var/lib/zookeeper/version-2
dataLogDir=/var/lib/zookeeper/version-2
tickTime=2000
maxClientCnxns=60
minSessionTimeout=4000
maxSessionTimeout=40000
serverId=2
initLimit=10
syncLimit=5
electionAlg=3
electionPort=3888
quorumPort=2888
peerType=0
`;

describe('conf', () => {
  test('serverId of ensemble members and of a standalone server', () => {
    expect(confServerId(parseConf(CONF_3_8_QUORUM))).toBe(3);
    expect(confServerId(parseConf(CONF_3_4_QUORUM))).toBe(2);
    expect(confServerId(parseConf(CONF_3_8_STANDALONE))).toBe(0);
    expect(parseConf(CONF_3_8_QUORUM).get('server.2')).toBe('127.0.0.1:36643:43783:participant');
  });

  test('the ensemble digest: the same for every member, another for other members, none standalone', () => {
    const quorum = parseConf(CONF_3_8_QUORUM);
    const digest = ensembleDigest(quorum);
    expect(digest).toMatch(/^[0-9a-f]{16}$/);
    // Another member of the same ensemble: its own serverId and ports, the same server.N lines.
    const otherMember = new Map(quorum);
    otherMember.set('serverId', '1');
    otherMember.set('clientPort', '2182');
    expect(ensembleDigest(otherMember)).toBe(digest);
    const otherEnsemble = new Map(quorum);
    otherEnsemble.set('server.2', '10.0.0.2:2888:3888:participant');
    expect(ensembleDigest(otherEnsemble)).not.toBe(digest);
    expect(ensembleDigest(parseConf(CONF_3_8_STANDALONE))).toBeUndefined();
  });

  test('missing or malformed serverId -> undefined', () => {
    expect(confServerId(parseConf('clientPort=2181\n'))).toBeUndefined();
    expect(confServerId(parseConf('serverId=abc\n'))).toBeUndefined();
    expect(confServerId(parseConf('serverId=-1\n'))).toBeUndefined();
    expect(confServerId(parseConf('serverId=99999999999999999999\n'))).toBeUndefined();
    expect(confServerId(parseConf('=3\nserverId\n'))).toBeUndefined();
  });
});

// --- replies without data, roles ---------------------------------------------------------------

describe('replies without data', () => {
  test('whitelist refusal (3.5+), not serving, empty', () => {
    expect(replyProblem('conf is not executed because it is not in the whitelist.\n')).toBe(
      'not-whitelisted',
    );
    expect(replyProblem('This ZooKeeper instance is not currently serving requests\n')).toBe('not-serving');
    expect(replyProblem('')).toBe('empty');
    expect(replyProblem(' \n')).toBe('empty');
    expect(replyProblem(SRVR_3_7_LEADER)).toBeUndefined();
  });
});

describe('roles', () => {
  test.each([
    ['leader', 'primary'],
    ['standalone', 'primary'],
    ['follower', 'secondary'],
    ['observer', 'unknown'],
    ['read-only', 'unknown'],
    ['LEADER', 'primary'],
    ['', 'unknown'],
    [undefined, 'unknown'],
  ])('%s -> %s', (mode, role) => {
    expect(roleOfMode(mode)).toBe(role);
  });
});

// --- last operation from the zxid --------------------------------------------------------------

describe('ZxidTracker', () => {
  test('unknown until an advance is seen; moves within an epoch; an election alone is not a write', () => {
    const t = new ZxidTracker();
    expect(t.observe(0x100000003n, 100)).toBeUndefined();
    expect(t.observe(0x100000003n, 101)).toBeUndefined();
    expect(t.observe(0x100000005n, 102)).toBe(102);
    // New leader, nothing written yet: the zxid jumps, the last operation does not.
    expect(t.observe(0x200000000n, 103)).toBe(102);
    expect(t.observe(0x200000000n, 104)).toBe(102);
    // A write in the new epoch.
    expect(t.observe(0x200000001n, 105)).toBe(105);
    // Election and writes between two looks: the new epoch's counter shows the writes.
    expect(t.observe(0x300000002n, 106)).toBe(106);
    expect(t.lastAdvanceSeconds).toBe(106);
  });

  test('a follower that has seen nothing (0x0) then the first transaction of epoch 1', () => {
    const t = new ZxidTracker();
    expect(t.observe(0x0n, 10)).toBeUndefined();
    expect(t.observe(0x100000001n, 11)).toBe(11);
  });

  test('a zxid going down (data wiped, another server) sets a new baseline without claiming a write', () => {
    const t = new ZxidTracker();
    t.observe(0x500000010n, 1);
    expect(t.observe(0x10n, 2)).toBeUndefined();
    expect(t.observe(0x11n, 3)).toBe(3);
  });
});

describe('parsers never throw', () => {
  test('arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        parseSrvr(text);
        operationCounts(parseMntr(text));
        confServerId(parseConf(text));
        parseVersion(text);
        parseZxid(text);
        replyProblem(text);
        roleOfMode(text);
      }),
      { numRuns: 500 },
    );
  });

  test('lines assembled from real keys with arbitrary values', () => {
    const key = fc.constantFrom(
      'Zookeeper version: ',
      'Zxid: ',
      'Mode: ',
      'Connections: ',
      'zk_cnt_updatelatency\t',
      'zk_cnt_a_read_per_namespace\t',
      'zk_write_per_namespace_count{key="x"}\t',
      'serverId=',
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.string({ maxLength: 30 })), { maxLength: 20 }), (lines) => {
        const text = lines.map(([k, v]) => k + v).join('\n');
        const srvr = parseSrvr(text);
        if (srvr.zxid !== undefined) expect(srvr.zxid).toBeGreaterThanOrEqual(0n);
        const counts = operationCounts(parseMntr(text));
        for (const n of [counts.readsTotal, counts.writesTotal]) {
          if (n !== undefined) expect(Number.isFinite(n) && n >= 0).toBe(true);
        }
        confServerId(parseConf(text));
      }),
      { numRuns: 300 },
    );
  });
});

describe('counters carried across a server restart (ContinuingCounter)', () => {
  test("the server's count until it restarts; then on from the last value, replayed writes not counted", () => {
    const c = new ContinuingCounter();
    expect(c.observe(10, false)).toBe(10);
    expect(c.observe(16, false)).toBe(16);
    // Restarted: 15 replayed from the log (fewer than before) -> no reset, no phantom.
    expect(c.observe(15, true)).toBe(16);
    expect(c.observe(17, false)).toBe(18);
    // Restarted with more replayed and synced than before: still nothing added for them.
    expect(c.observe(40, true)).toBe(18);
    expect(c.observe(41, false)).toBe(19);
    // A counter that went down without a restart seen (srst): a new baseline too.
    expect(c.observe(0, false)).toBe(19);
    expect(c.observe(2, false)).toBe(21);
  });

  test('property: never goes down, and grows by exactly the increments between restarts', () => {
    fc.assert(
      fc.property(
        fc.nat(1000),
        fc.array(fc.record({ step: fc.nat(20), restart: fc.boolean(), replayed: fc.nat(50) })),
        (start, steps) => {
          const c = new ContinuingCounter();
          let raw = start;
          let published = c.observe(raw, false);
          let expected = start;
          for (const { step, restart, replayed } of steps) {
            if (restart) {
              raw = replayed;
              const next = c.observe(raw, true);
              expect(next).toBe(expected);
            } else {
              raw += step;
              expected += step;
              expect(c.observe(raw, false)).toBe(expected);
            }
            expect(expected).toBeGreaterThanOrEqual(published);
            published = expected;
          }
        },
      ),
    );
  });
});
