/**
 * Fuzzing every parser of untrusted text (datastore replies, config files, flags, environment, /probe
 * queries, HTTP headers) with fast-check: generated input AND mutations of real samples (the recorded
 * replies of the parser tests, read from those test files, and the JSON fixtures), mutated by
 * character flips, truncation, line duplication/deletion/swaps, inserted unicode (lone surrogates,
 * NUL, BOM, CR), and numbers far out of range.
 *
 * The property is the same everywhere: a parser returns, or throws ITS documented error type
 * (ConfigError, ProbeRequestError, KafkaBrokerNotFoundError, etcd's "status reply" Error); never a
 * TypeError, RangeError, URIError or SyntaxError escaping from inside. Counterexamples that found real
 * bugs are kept as regular tests at the end.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { Timestamp } from 'mongodb';
import { AdvanceTrackers } from '../src/drivers/shared/advance-tracker';
import {
  loadConfig,
  loadServerConfig,
  parseArgs,
  parseDuration,
  parseListenAddress,
} from '../src/config/flags';
import {
  highWatermarks,
  kafkaObservation,
  KafkaBrokerNotFoundError,
  latestOffsetsRequest,
  partitionRole,
  resolveLocalBrokerId,
  type KafkaMetadata,
  type KafkaPartitionMetadata,
  type ListOffsetsTopicResponse,
} from '../src/drivers/kafka/parse';
import {
  mapObservation,
  mapPerformance,
  opTimeOf,
  replicaSetShard,
  timestampParts,
  toNumber as mongoToNumber,
  type Doc,
  type MongoResponses,
} from '../src/drivers/mongodb/parse';
import * as mysql from '../src/drivers/mysql/parse';
import * as nats from '../src/drivers/nats/parse';
import * as rabbitmq from '../src/drivers/rabbitmq/parse';
import { parseLsn, StandbyLag } from '../src/drivers/postgresql/parse';
import * as zk from '../src/drivers/zookeeper/parse';
import { ConfigError } from '../src/core/errors';
import { allFlags } from '../src/config/flags';
import { TargetAllowlist } from '../src/probe/allowlist';
import { parseProbeConfig, type ProbeFileConfig } from '../src/probe/config';
import { ProbeRequestError, resolveProbeTarget } from '../src/probe/target';
import { parseTarget, redactText, redactUrl } from '../src/core/target';
import { parseGoDuration, parseWebConfig } from '../src/config/web-config';
import { parseBasicAuth } from '../src/http/listener';
import { fixtureNames, loadFixture, responsesOf } from './support/mongodb';
import {
  idToHex,
  mvccOperations,
  parseGatewayError,
  parseStatus,
  pickUnlabelledSamples,
  roleFromStatus,
} from '../src/drivers/etcd/parse';
import { replicaLagSeconds } from '../src/drivers/redis/driver';
import { parseHeartbeatJson } from '../src/drivers/shared/heartbeat-json';
import {
  commandKind,
  infoNumber,
  parseClusterNodes,
  parseCommandStats,
  parseInfo,
} from '../src/drivers/redis/parse';

/**
 * A fixed seed in CI (.ci/run sets FUZZ_SEED) so that a red run is reproducible and a green one
 * is not luck; a random one locally, printed, so that local runs keep exploring new inputs.
 */
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
fc.configureGlobal({ seed: SEED });
console.log(`fuzz seed ${SEED} (repeat a run with FUZZ_SEED=${SEED})`);

const RUNS = { numRuns: Number(process.env.FUZZ_RUNS ?? 500) };
const FEW = { numRuns: Math.round(Number(process.env.FUZZ_RUNS ?? 500) * 0.6) };

// --- the property ---------------------------------------------------------------------------------

type ErrorClass = abstract new (...args: never[]) => Error;

/** Runs `fn`; an exception must be one of `allowed` (exact class or subclass), else it is re-thrown. */
function typedOnly<T>(
  fn: () => T,
  allowed: ErrorClass[] = [],
  check?: (err: Error) => boolean,
): T | undefined {
  try {
    return fn();
  } catch (err) {
    const ok =
      err instanceof Error &&
      allowed.some((cls) => err instanceof cls) &&
      // A plain Error is allowed only where its message says it is the parser's own.
      (check ? check(err) : true);
    if (!ok) throw err;
    return undefined;
  }
}

/** A plain `Error` is typed only when the parser threw it on purpose (not TypeError & co). */
const plainError =
  (message: RegExp) =>
  (err: Error): boolean =>
    err.constructor === Error && message.test(err.message);

// --- seeds: the real samples of the parser tests ---------------------------------------------------

/** Template-literal and joined-array constants of a test file, as the parser tests feed them. */
function samplesFrom(testFile: string): string[] {
  const text = readFileSync(join(__dirname, testFile), 'utf8');
  const unescape = (s: string): string =>
    s.replace(/\\([tn$`\\])/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c));
  const literals = [...text.matchAll(/=\s*`((?:[^`\\]|\\.)*)`/g)].map((m) => unescape(m[1]!));
  const quoted = [...text.matchAll(/^\s+'((?:[^'\\]|\\.)*)',?$/gm)].map((m) => m[1]!);
  return [...literals, quoted.join('\n')].filter((s) => s.length > 0);
}

const ZK_SEEDS = samplesFrom('zookeeper-parse.test.ts');
const ETCD_SEEDS = samplesFrom('etcd.test.ts');
const NATS_SEEDS = samplesFrom('nats.test.ts');
const RABBITMQ_SEEDS = samplesFrom('rabbitmq.test.ts');

const REDIS_INFO = [
  '# Server',
  'redis_version:7.0.15',
  'redis_mode:standalone',
  'run_id:6e2a1e0f0b9e3d3c2a4d5e6f7a8b9c0d1e2f3a4b',
  'tcp_port:6379',
  '# Clients',
  'connected_clients:3',
  '# Replication',
  'role:slave',
  'master_host:127.0.0.1',
  'master_port:6380',
  'master_link_status:up',
  'master_last_io_seconds_ago:0',
  'master_link_down_since_seconds:-1',
  'master_repl_offset:1234',
  'master_replid:8f1b1c0a0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b',
  '# Commandstats',
  'cmdstat_get:calls=2,usec=15,usec_per_call=7.50,rejected_calls=0,failed_calls=0',
  'cmdstat_client|list:calls=1,usec=30,usec_per_call=30.00',
  'cmdstat_set:calls=10,usec=40',
  '# Keyspace',
  'db0:keys=1,expires=0,avg_ttl=0',
  '',
].join('\r\n');
const CLUSTER_NODES = [
  '07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected',
  '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5461-10922',
  '292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10923-16383 [10923->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]',
  'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5460',
  '',
].join('\n');

const PROBE_CONFIG = [
  'allowed_targets:',
  '  - redis://10.0.0.*:6379',
  '  - postgresql://db-*.example.net:5432',
  '  - mariadb://[::1]:*',
  'auth_modules:',
  '  pg:',
  '    user: monitor',
  '    password_file: /run/secrets/pg',
  '    tls: true',
  '    params: { sslrootcert: /etc/ca.pem, connect_retries: 2 }',
  '  anonymous:',
].join('\n');
const WEB_CONFIG = [
  'tls_server_config:',
  '  cert_file: server.crt',
  '  key_file: server.key',
  '  client_auth_type: RequireAndVerifyClientCert',
  '  client_ca_file: ca.crt',
  '  min_version: TLS13',
  '  curve_preferences: [X25519]',
  'http_server_config:',
  '  headers:',
  '    X-Frame-Options: deny',
  'basic_auth_users:',
  '  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze',
  'rate_limit:',
  '  interval: 1s',
  '  burst: 20',
].join('\n');
const TARGETS = [
  'redis://10.0.0.1:6379/2',
  'rediss://[::1]:6380',
  'postgresql://db-1.example.net:5432/postgres',
  'mariadb://127.0.0.1',
  'mysql://h:3306',
  'mongodb://m1.example.net:27017',
  'kafka://broker:9092',
  'etcd://127.0.0.1:2379',
  'zookeeper://zk:2181',
  'nats://127.0.0.1:8222',
  'rabbitmq://monitor@rabbit-0.rabbit:15672?prometheus_port=15692',
];

// --- mutations ------------------------------------------------------------------------------------

/** Odd characters real mutations should include: NUL, BOM, lone surrogates, CR, separators. */
const ODD = fc.constantFrom(
  '\0',
  '\uFEFF',
  '\uD800',
  '\uDFFF',
  '\r',
  '\r\n',
  '\t',
  ':',
  '=',
  ',',
  '-',
  ' ',
  '%',
  '%E0',
  '@',
  '/',
  '[',
  '{',
  '"',
  '\\',
  '0x',
  '-1',
  'NaN',
  '1e309',
  '9'.repeat(40),
  '18446744073709551616',
  '\u{1F600}',
);
const INSERT = fc.oneof(ODD, fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ maxLength: 8 }));

type Mutation =
  | { kind: 'flip' | 'insert' | 'truncate' | 'delete-range'; at: number; text: string; length: number }
  | { kind: 'dup-line' | 'drop-line' | 'swap-lines'; at: number; other: number };

const MUTATION: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('flip' as const, 'insert' as const, 'truncate' as const, 'delete-range' as const),
    at: fc.nat(),
    text: INSERT,
    length: fc.nat(20),
  }),
  fc.record({
    kind: fc.constantFrom('dup-line' as const, 'drop-line' as const, 'swap-lines' as const),
    at: fc.nat(),
    other: fc.nat(),
  }),
);

function applyMutation(text: string, m: Mutation): string {
  if (m.kind === 'dup-line' || m.kind === 'drop-line' || m.kind === 'swap-lines') {
    const lines = text.split('\n');
    const i = m.at % lines.length;
    const j = m.other % lines.length;
    if (m.kind === 'dup-line') lines.splice(i, 0, lines[i]!);
    else if (m.kind === 'drop-line') lines.splice(i, 1);
    else [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    return lines.join('\n');
  }
  const at = text.length === 0 ? 0 : m.at % (text.length + 1);
  switch (m.kind) {
    case 'flip':
      return text.slice(0, at) + m.text + text.slice(at + 1);
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'truncate':
      return text.slice(0, at);
    case 'delete-range':
      return text.slice(0, at) + text.slice(at + m.length);
  }
}

/** Real samples, each changed by 1-8 mutations. */
function mutated(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(MUTATION, { minLength: 1, maxLength: 8 }))
    .map(([seed, ms]) => ms.reduce(applyMutation, seed));
}

/** Generated text, mutated samples, and the samples themselves. */
function texts(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: mutated(seeds), weight: 3 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 300 }), weight: 1 },
    {
      arbitrary: fc.array(fc.oneof(INSERT, fc.string()), { maxLength: 30 }).map((a) => a.join('')),
      weight: 1,
    },
    { arbitrary: fc.constantFrom(...seeds), weight: 1 },
  );
}

/** Values as a client library could hand them over, and worse. */
const VALUE = fc.oneof(
  fc.anything(),
  fc.string({ unit: 'binary' }),
  INSERT,
  fc.double(),
  fc.bigInt(),
  fc.constantFrom(
    null,
    undefined,
    NaN,
    Infinity,
    -0,
    '',
    'NULL',
    Buffer.from('Yes'),
    Buffer.from([0xff, 0xfe]),
  ),
);

/** Plain objects and arrays are walked; BSON values, Buffers, Dates are leaves (kept by reference). */
function isPlainNode(node: unknown): node is Record<string, unknown> | unknown[] {
  if (Array.isArray(node)) return true;
  if (node === null || typeof node !== 'object') return false;
  const proto = Object.getPrototypeOf(node) as unknown;
  return proto === Object.prototype || proto === null;
}

function clonePlain(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(clonePlain);
  if (isPlainNode(node)) return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, clonePlain(v)]));
  return node;
}

/** A deep copy of `doc` with random leaves or subtrees replaced by `VALUE`s, or deleted. */
function mutateDoc(doc: unknown, picks: { at: number; value: unknown; drop: boolean }[]): unknown {
  const copy = clonePlain(doc);
  for (const pick of picks) {
    const slots: [Record<string, unknown> | unknown[], string | number][] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach((v, i) => (slots.push([node, i]), walk(v)));
      else if (isPlainNode(node)) {
        for (const [k, v] of Object.entries(node)) {
          slots.push([node, k]);
          walk(v);
        }
      }
    };
    walk(copy);
    if (slots.length === 0) continue;
    const [parent, key] = slots[pick.at % slots.length]!;
    if (pick.drop && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key];
    else (parent as Record<string | number, unknown>)[key] = pick.value;
  }
  return copy;
}
const DOC_MUTATIONS = fc.array(fc.record({ at: fc.nat(), value: VALUE, drop: fc.boolean() }), {
  minLength: 1,
  maxLength: 6,
});

// --- the parsers -----------------------------------------------------------------------------------

describe('Redis INFO, commandstats, CLUSTER NODES', () => {
  test('parseInfo / parseCommandStats / infoNumber / replica lag never throw', () => {
    fc.assert(
      fc.property(texts([REDIS_INFO]), fc.string(), (text, key) => {
        const info = parseInfo(text);
        parseCommandStats(info);
        infoNumber(info, key);
        infoNumber(info, 'master_repl_offset');
        replicaLagSeconds(info);
      }),
      RUNS,
    );
  });

  test('parseClusterNodes never throws; slots stay ranges of digits', () => {
    fc.assert(
      fc.property(texts([CLUSTER_NODES]), (text) => {
        for (const node of parseClusterNodes(text)) {
          for (const s of node.slots) expect(s).toMatch(/^\d+(-\d+)?$/);
        }
      }),
      RUNS,
    );
  });

  test('heartbeat records and command flags', () => {
    fc.assert(
      fc.property(
        fc.option(texts(['{"t":1700000000.5,"w":"node-1","s":3}', '1700000000.123'])),
        fc.array(fc.string()),
        (raw, flags) => {
          parseHeartbeatJson(raw);
          commandKind(flags);
        },
      ),
      RUNS,
    );
  });
});

describe('ZooKeeper srvr / mntr / conf', () => {
  test('the seeds were found in test/zookeeper-parse.test.ts', () => {
    expect(ZK_SEEDS.length).toBeGreaterThanOrEqual(10);
    expect(ZK_SEEDS.some((s) => s.includes('zk_version\t'))).toBe(true);
  });

  test('every parser never throws; a zxid splits into 32-bit halves', () => {
    fc.assert(
      fc.property(texts(ZK_SEEDS), fc.string(), (text, key) => {
        zk.replyProblem(text);
        const srvr = zk.parseSrvr(text);
        zk.parseVersion(srvr.rawVersion);
        zk.roleOfMode(srvr.mode);
        if (srvr.zxid !== undefined) {
          const { epoch, counter } = zk.splitZxid(srvr.zxid);
          expect(epoch >= 0n && counter >= 0n && counter <= 0xffffffffn).toBe(true);
        }
        const mntr = zk.parseMntr(text);
        zk.mntrNumber(mntr, key);
        zk.operationCounts(mntr);
        zk.confServerId(zk.parseConf(text));
        zk.parseZxid(text);
        zk.parseVersion(text);
      }),
      RUNS,
    );
  });
});

describe('etcd status, errors, metrics', () => {
  test('the seeds were found in test/etcd.test.ts', () => {
    expect(ETCD_SEEDS.some((s) => s.includes('etcd_mvcc_put_total'))).toBe(true);
  });

  const STATUS_SEEDS = [
    '{"header":{"cluster_id":"4691270838897183303","member_id":"287804130617070356","revision":"4","raft_term":"3"},"version":"3.4.23","dbSize":"20480","leader":"14590032085621120027","raftIndex":"27","raftTerm":"3","isLearner":true,"errors":["NOSPACE"]}',
    '{"error":"etcdserver: authentication failed","message":"etcdserver: authentication failed","code":3}',
  ];

  test('parseStatus returns or throws its own "etcd status reply" Error; the rest never throw', () => {
    fc.assert(
      fc.property(texts([...STATUS_SEEDS, ...ETCD_SEEDS]), VALUE, (text, id) => {
        const status = typedOnly(() => parseStatus(text), [Error], plainError(/^etcd status reply /));
        if (status) roleFromStatus(status);
        parseGatewayError(text);
        pickUnlabelledSamples(text, ['etcd_mvcc_put_total', 'etcd_server_quota_backend_bytes', '']);
        mvccOperations(text);
        idToHex(id);
      }),
      RUNS,
    );
  });
});

describe('NATS /varz and /jsz', () => {
  test('the seeds were found in test/nats.test.ts', () => {
    expect(NATS_SEEDS.some((s) => s.includes('stream_detail'))).toBe(true);
    expect(NATS_SEEDS.some((s) => s.includes('server_name'))).toBe(true);
  });

  test('parseVarz and parseJsz return or throw their own "nats ..." Error; the mapping never throws', () => {
    fc.assert(
      fc.property(texts(NATS_SEEDS), fc.string(), (text, name) => {
        typedOnly(() => nats.parseVarz(text), [Error], plainError(/^nats \/varz /));
        const jsz = typedOnly(() => nats.parseJsz(text), [Error], plainError(/^nats \/jsz/));
        if (jsz) nats.natsShards(jsz, name);
        nats.goTimeSeconds(text);
      }),
      RUNS,
    );
  });
});

describe('RabbitMQ Prometheus text and /api/queues', () => {
  test('the seeds were found in test/rabbitmq.test.ts', () => {
    expect(RABBITMQ_SEEDS.some((s) => s.includes('rabbitmq_identity_info'))).toBe(true);
    expect(RABBITMQ_SEEDS.some((s) => s.includes('raft_log_commit_index'))).toBe(true);
    expect(RABBITMQ_SEEDS.some((s) => s.includes('"members"'))).toBe(true);
  });

  test('parsers return or throw their own "rabbitmq ..." Error; the mapping never throws', () => {
    fc.assert(
      fc.property(texts(RABBITMQ_SEEDS), fc.string(), (text, node) => {
        typedOnly(() => rabbitmq.parseNodeMetrics(text), [Error], plainError(/^rabbitmq \/metrics lacks /));
        const members = rabbitmq.parseLocalMembers(text);
        const records = typedOnly(
          () => rabbitmq.parseQueueList(text),
          [Error],
          plainError(/^rabbitmq \/api\/queues /),
        );
        rabbitmq.rabbitShards(members, records, node);
        rabbitmq.pickSamples(text, new Set(['rabbitmq_connections', '']));
      }),
      RUNS,
    );
  });
});

describe('MySQL / MariaDB rows and status', () => {
  const ROWS: Record<string, unknown>[] = [
    {
      Channel_Name: '',
      Replica_IO_Running: 'Yes',
      Replica_SQL_Running: 'Yes',
      Seconds_Behind_Source: 0,
      Source_Host: '10.0.0.1',
      Source_Port: 3306,
      Source_Server_Id: 1,
      SQL_Delay: 0,
      Last_IO_Error: '',
      Last_SQL_Error: '',
    },
    {
      Connection_name: 'a',
      Slave_IO_Running: 'Connecting',
      Slave_SQL_Running: 'Yes',
      Seconds_Behind_Master: null,
      Master_Host: Buffer.from('db-1'),
      Master_Port: '3306',
      Last_IO_Error: 'error connecting to master',
    },
  ];

  test('version, statements and every row/status mapping never throw', () => {
    fc.assert(
      fc.property(
        texts(['10.11.19-MariaDB-0+deb12u1-log', '8.0.36', '5.7.44-log']),
        fc.string(),
        fc
          .tuple(fc.constantFrom(...ROWS), DOC_MUTATIONS)
          .map(([row, ms]) => mutateDoc(row, ms) as Record<string, unknown>),
        fc.option(fc.double()),
        fc.double(),
        (version, comment, row, lastConnected, now) => {
          const info = mysql.parseServerVersion(version, comment);
          mysql.replicaStatusStatement(info);
          mysql.serverTimeoutSetting(info, 800);
          mysql.nativeRoleWords(info);
          const channel = mysql.normalizeReplicaStatusRow(row);
          mysql.isGroupReplicationChannel(channel);
          mysql.worstLagSeconds([mysql.channelLagSeconds(channel, lastConnected ?? undefined, now)]);
          mysql.lastAppliedOriginalCommitSeconds([
            row,
            { LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP: version },
          ]);
        },
      ),
      RUNS,
    );
  });

  test('GTID positions and sets, status and variable maps never throw', () => {
    const GTIDS = [
      '0-1-42,1-2-7',
      '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11-18,\n2174B383-5441-11E8-B90A-C80AA9429562:1-3',
      '73f86016-978b-11ee-ade5-8d2a2a562feb:tag:1-5',
    ];
    fc.assert(
      fc.property(
        texts(GTIDS),
        fc.dictionary(
          fc.constantFrom(...mysql.STATUS_VARIABLES, ...mysql.GLOBAL_VARIABLES, 'x'),
          fc.oneof(fc.string(), texts(GTIDS), INSERT),
        ),
        fc.boolean(),
        (gtid, entries, isReplica) => {
          mysql.parseMariadbGtidPos(gtid);
          mysql.mariadbGtidSeqNoSum(gtid);
          mysql.mysqlGtidSetCount(gtid);
          mysql.parseUtcDatetime(gtid);
          const vars = new Map(Object.entries(entries));
          mysql.operationCounters(vars);
          mysql.nativeNodeId(vars);
          for (const version of ['10.11.5-MariaDB', '8.0.36']) {
            mysql.commitOffset(mysql.parseServerVersion(version), vars, isReplica);
          }
        },
      ),
      RUNS,
    );
  });

  test('toNumber takes anything', () => {
    fc.assert(
      fc.property(VALUE, (v) => {
        const n = mysql.toNumber(v);
        expect(n === undefined || typeof n === 'number').toBe(true);
      }),
      RUNS,
    );
  });
});

describe('PostgreSQL LSNs and standby lag', () => {
  test('parseLsn takes any text: a finite non-negative number or undefined', () => {
    fc.assert(
      fc.property(fc.option(texts(['16/B374D848', '0/0', 'FFFFFFFF/FFFFFFFF', '0/3000148'])), (text) => {
        const lsn = parseLsn(text);
        // Documented: exact up to 2^53 bytes, a (rounded) finite number beyond.
        if (lsn !== undefined) expect(Number.isFinite(lsn) && lsn >= 0).toBe(true);
      }),
      RUNS,
    );
  });

  test('StandbyLag never throws and never reports a negative lag', () => {
    const num = fc.option(fc.oneof(fc.double(), fc.nat()), { nil: undefined });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            nowSeconds: fc.double(),
            receiveLsn: num,
            replayLsn: num,
            lastReplayedCommitSeconds: num,
            streaming: fc.boolean(),
          }),
          {
            maxLength: 10,
          },
        ),
        (samples) => {
          const lag = new StandbyLag();
          for (const s of samples) {
            const l = lag.observe(s);
            expect(l === undefined || !(l < 0)).toBe(true);
          }
        },
      ),
      RUNS,
    );
  });
});

describe('MongoDB replies', () => {
  const fixtures = fixtureNames().map((name) => responsesOf(loadFixture(name, 'relaxed')));

  test('mapObservation on mutated documented replies (every fixture) never throws', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtures),
        DOC_MUTATIONS,
        fc.integer({ min: -2, max: 10 }),
        fc.option(fc.double(), { nil: undefined }),
        (responses, ms, own, advancedAt) => {
          const changed = mutateDoc(
            {
              hello: responses.hello,
              serverStatus: responses.serverStatus,
              buildInfo: responses.buildInfo,
              status: responses.replSetStatus.kind === 'status' ? responses.replSetStatus.doc : {},
            },
            ms,
          ) as Record<string, Doc>;
          const input: MongoResponses = {
            hello: changed.hello ?? {},
            serverStatus: changed.serverStatus ?? {},
            buildInfo: changed.buildInfo ?? {},
            replSetStatus:
              responses.replSetStatus.kind === 'status'
                ? { kind: 'status', doc: changed.status ?? {} }
                : responses.replSetStatus,
          };
          mapObservation(input, { ownConnections: own, writesAdvancedAtSeconds: advancedAt });
        },
      ),
      RUNS,
    );
  });

  test('the per-field helpers take anything', () => {
    const doc = fc.dictionary(fc.string(), VALUE);
    fc.assert(
      fc.property(VALUE, doc, doc, fc.boolean(), (v, a, b, mongos) => {
        mongoToNumber(v);
        timestampParts(v);
        opTimeOf(v);
        opTimeOf({ ts: v });
        mapPerformance(a, 2, mongos);
        replicaSetShard(a, b);
        replicaSetShard(
          { ...a, members: [a, b, { self: true, optime: { ts: new Timestamp({ t: 1, i: 1 }) } }] },
          b,
        );
      }),
      RUNS,
    );
  });
});

describe('Kafka metadata', () => {
  const fixture = JSON.parse(
    readFileSync(join(__dirname, 'fixtures', 'kafka', 'metadata-v6-three-brokers.json'), 'utf8'),
  ) as KafkaMetadata;
  const offsets = (
    JSON.parse(
      readFileSync(join(__dirname, 'fixtures', 'kafka', 'list-offsets-v3-broker-1.json'), 'utf8'),
    ) as {
      responses: ListOffsetsTopicResponse[];
    }
  ).responses;

  // The kafkajs decoder guarantees the shapes (arrays, numbers, strings); the values are anything.
  const int = fc.oneof(fc.integer({ min: -2, max: 5 }), fc.integer(), fc.constantFrom(-1, 2 ** 31 - 1));
  const partition: fc.Arbitrary<KafkaPartitionMetadata> = fc.record(
    {
      partitionErrorCode: fc.oneof(fc.constantFrom(0, 5, 72), int),
      partitionId: int,
      leader: int,
      replicas: fc.array(int, { maxLength: 5 }),
      isr: fc.array(int, { maxLength: 5 }),
      offlineReplicas: fc.array(int, { maxLength: 3 }),
    },
    { requiredKeys: ['partitionErrorCode', 'partitionId', 'leader', 'replicas', 'isr'] },
  );
  const metadata: fc.Arbitrary<KafkaMetadata> = fc.record({
    brokers: fc.array(
      fc.record({ nodeId: int, host: fc.oneof(fc.string(), fc.constant('127.0.0.1')), port: int }),
      { maxLength: 5 },
    ),
    clusterId: fc.option(fc.string()),
    topicMetadata: fc.array(
      fc.record({
        topicErrorCode: int,
        topic: fc.string(),
        partitionMetadata: fc.array(partition, { maxLength: 6 }),
      }),
      { maxLength: 4 },
    ),
  });
  const offsetText = fc.oneof(fc.constantFrom('-1', '0', '1500', '9'.repeat(30), 'NaN', ''), fc.string());
  const listOffsets: fc.Arbitrary<ListOffsetsTopicResponse[]> = fc.array(
    fc.record({
      topic: fc.string(),
      partitions: fc.array(
        fc.record(
          {
            partition: int,
            errorCode: fc.oneof(fc.constant(0), int),
            offset: offsetText,
            offsets: fc.array(offsetText, { maxLength: 2 }),
          },
          { requiredKeys: ['partition', 'errorCode'] },
        ),
        { maxLength: 4 },
      ),
    }),
    { maxLength: 4 },
  );

  test('the whole mapping on generated and on the fixture: only KafkaBrokerNotFoundError', () => {
    const trackers = new AdvanceTrackers();
    fc.assert(
      fc.property(
        fc.oneof(metadata, fc.constant(fixture)),
        fc.oneof(listOffsets, fc.constant(offsets)),
        fc.option(fc.oneof(fc.string(), fc.constantFrom('1', '2', '-1', '1e3', ' 3 ')), { nil: undefined }),
        fc.record({
          host: fc.oneof(fc.string(), fc.constant('kafka-1.kafka.svc')),
          port: fc.oneof(int, fc.constant(9092)),
        }),
        (meta, offs, flag, target) => {
          const id = typedOnly(
            () => resolveLocalBrokerId(meta.brokers, target, flag),
            [KafkaBrokerNotFoundError],
          );
          const local = id ?? 1;
          latestOffsetsRequest(meta, local);
          highWatermarks(offs);
          for (const t of meta.topicMetadata) for (const p of t.partitionMetadata) partitionRole(p, local);
          kafkaObservation({ metadata: meta, localBrokerId: local, offsets: offs, trackers });
        },
      ),
      RUNS,
    );
  });
});

describe('probe config, allowlist and targets', () => {
  const readSecret = (path: string): string => `secret-of-${path}`;

  test('parseProbeConfig: only ConfigError', () => {
    fc.assert(
      fc.property(
        texts([PROBE_CONFIG, 'allowed_targets: []', 'auth_modules: { m: { user: u } }']),
        (text) => {
          typedOnly(() => parseProbeConfig(text, '"probe.yml"', readSecret), [ConfigError]);
        },
      ),
      RUNS,
    );
  });

  test('allowlist patterns: only ConfigError; matching never throws', () => {
    const PATTERNS = [
      'redis://10.0.0.*:6379',
      'postgresql://db-*.example.net',
      'mariadb://[::1]:*',
      'redis://*:*',
      'etcd://[fe80::*]:2379',
    ];
    fc.assert(
      fc.property(
        fc.array(texts(PATTERNS), { maxLength: 4 }),
        fc.string(),
        fc.string(),
        fc.integer(),
        (patterns, scheme, host, port) => {
          const list = typedOnly(() => TargetAllowlist.compile(patterns, '"probe.yml"'), [ConfigError]);
          list?.allows({ scheme, host, port });
          list?.allows({ scheme: 'redis', host: '10.0.0.1', port: 6379 });
        },
      ),
      RUNS,
    );
  });

  const config: ProbeFileConfig = parseProbeConfig(
    [
      'allowed_targets: ["redis://*:*", "postgresql://*:*", "mariadb://*:*", "mongodb://*:*", "kafka://*:*", "etcd://*:*", "nats://*:*", "rabbitmq://*:*", "zookeeper://*:*", "rediss://*:*", "mysql://*:*"]',
      'auth_modules:',
      '  tls: { user: "m o", tls: true, params: { sslrootcert: /ca.pem } }',
      '  plain: { user: monitor }',
    ].join('\n'),
    '"probe.yml"',
    readSecret,
  );

  test('resolveProbeTarget: only ProbeRequestError (a 400/403), never a 500', () => {
    fc.assert(
      fc.property(
        fc.oneof(texts(TARGETS), VALUE, fc.array(fc.string(), { maxLength: 2 })),
        fc.oneof(fc.constantFrom(undefined, 'tls', 'plain', 'nope', ''), VALUE),
        (target, module) => {
          typedOnly(() => resolveProbeTarget({ target, auth_module: module }, config), [ProbeRequestError]);
        },
      ),
      RUNS,
    );
  });
});

describe('target URLs, web config, HTTP headers', () => {
  test('parseTarget: only ConfigError; the redacted URL never holds the password', () => {
    const withPassword = fc
      .tuple(fc.constantFrom(...TARGETS), fc.string({ minLength: 1 }), fc.string())
      .map(([url, pw, user]) =>
        url.replace('://', `://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@`),
      );
    fc.assert(
      fc.property(
        fc.oneof(texts(TARGETS), mutated(['redis://user:pa%25ss@h:1', 'mongodb://u:p@h/?password=x'])),
        withPassword,
        (raw, good) => {
          typedOnly(() => parseTarget(raw), [ConfigError]);
          let target: ReturnType<typeof parseTarget>;
          try {
            target = parseTarget(good);
          } catch (err) {
            // A driver may refuse credentials in its URL (nats://: its endpoint has no authentication);
            // its message shows the redacted URL, never the password.
            if (!(err instanceof ConfigError)) throw err;
            const password = decodeURIComponent(new URL(good).password);
            if (password.length > 3) expect(err.message).not.toContain(encodeURIComponent(password));
            return;
          }
          if (target.password && target.password.length > 3) {
            expect(target.redactedUrl).not.toContain(encodeURIComponent(target.password));
          }
          redactText(raw, [target.password]);
          redactUrl(target.url);
        },
      ),
      RUNS,
    );
  });

  test('parseWebConfig: only ConfigError', () => {
    fc.assert(
      fc.property(
        texts([WEB_CONFIG, 'basic_auth_users: {}', 'tls_server_config: { cert: x, key: y }']),
        (text) => {
          typedOnly(() => parseWebConfig(text, '"web.yml"', '/etc'), [ConfigError]);
        },
      ),
      RUNS,
    );
  });

  test('Authorization headers and Go durations take anything', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          mutated(['Basic YWxpY2U6c2VjcmV0', 'basic   YTpi', 'Bearer x']),
          fc.string({ unit: 'binary' }),
        ),
        texts(['1m30s', '500ms', '0', '1.5h', '2h45m']),
        (header, duration) => {
          parseBasicAuth(header);
          const ms = parseGoDuration(duration);
          expect(ms === undefined || ms >= 0).toBe(true);
        },
      ),
      RUNS,
    );
  });
});

describe('flags and environment', () => {
  const flagNames = allFlags().map((f) => f.name);
  const envNames = allFlags().flatMap((f) => f.env);
  const FLAG_VALUES = [
    'redis://127.0.0.1:6379',
    '5s',
    '500ms',
    '1m',
    '0',
    '-1',
    ':9860',
    '[::1]:0',
    'true',
    'false',
    'debug',
    'json',
    '/metrics',
    '/nonexistent/file',
    '/',
    '',
    '7',
  ];
  const value = fc.oneof(
    fc.constantFrom(...FLAG_VALUES),
    mutated(FLAG_VALUES),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  const arg = fc.oneof(
    fc.tuple(fc.constantFrom(...flagNames), value).map(([n, v]) => [`--${n}=${v}`]),
    fc.tuple(fc.constantFrom(...flagNames), value).map(([n, v]) => [`--${n}`, v]),
    fc.constantFrom(...flagNames).map((n) => [`-${n}`]),
    mutated(flagNames.map((n) => `--${n}`)).map((a) => [a]),
  );
  const argv = fc.array(arg, { maxLength: 6 }).map((a) => a.flat());
  const env = fc.dictionary(fc.constantFrom(...envNames), value, { maxKeys: 5 });

  test('loadConfig / loadServerConfig with random argv and env: only ConfigError (exit 2), never another exception', () => {
    fc.assert(
      fc.property(argv, env, (args, environment) => {
        typedOnly(() => loadServerConfig(args, environment), [ConfigError]);
        typedOnly(
          () => loadConfig(['--target', 'redis://127.0.0.1:6379', ...args], environment),
          [ConfigError],
        );
      }),
      FEW,
    );
  });

  test('argument splitting, durations and listen addresses: only ConfigError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 5 }),
        value,
        (args, v) => {
          typedOnly(() => parseArgs(args), [ConfigError]);
          typedOnly(() => parseDuration(v, 'x'), [ConfigError]);
          typedOnly(() => parseListenAddress(v), [ConfigError]);
        },
      ),
      RUNS,
    );
  });
});

describe('counterexamples found by fuzzing, kept as regular tests', () => {
  test('a malformed %-escape in the target user or password was an uncaught URIError (exit 1); now a ConfigError', () => {
    expect(() => parseTarget('redis://u:%E0@127.0.0.1:6379')).toThrow(ConfigError);
    expect(() => parseTarget('redis://%E0:pw@127.0.0.1:6379')).toThrow(ConfigError);
    expect(() => parseTarget('redis://u:s3cret%E0@127.0.0.1:6379')).not.toThrow(/s3cret/);
  });
});
