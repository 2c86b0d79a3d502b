/**
 * Pure mapping of MySQL / MariaDB replies (SHOW GLOBAL VARIABLES / STATUS, SHOW REPLICA|SLAVE STATUS,
 * performance_schema rows) onto the model's numbers. No I/O here, so that both flavours' real formats
 * can be tested without a server: MariaDB runs in the test suite, MySQL 8 is tested on its documented
 * output. Nothing here throws on an unexpected value: a missing or malformed field maps to undefined.
 */

export type Flavour = 'mariadb' | 'mysql';

export interface ServerInfo {
  flavour: Flavour;
  /** VERSION() as the server reports it, e.g. '10.11.19-MariaDB-0+deb12u1-log' or '8.0.36'. */
  version: string;
  major: number;
  minor: number;
  patch: number;
}

/** Flavour and numeric version from @@version and @@version_comment. */
export function parseServerVersion(version: string, versionComment = ''): ServerInfo {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return {
    flavour: /mariadb/i.test(version) || /mariadb/i.test(versionComment) ? 'mariadb' : 'mysql',
    version,
    major: m ? Number(m[1]) : 0,
    minor: m ? Number(m[2]) : 0,
    patch: m ? Number(m[3]) : 0,
  };
}

function atLeast(info: ServerInfo, major: number, minor: number, patch: number): boolean {
  if (info.major !== major) return info.major > major;
  if (info.minor !== minor) return info.minor > minor;
  return info.patch >= patch;
}

/**
 * The statement listing every replication channel of this node, one row each:
 *  - MariaDB: SHOW ALL SLAVES STATUS (plain SHOW SLAVE STATUS shows only the default connection of a
 *    multi-source replica);
 *  - MySQL >= 8.0.22: SHOW REPLICA STATUS (Source_* / Replica_* columns); older: SHOW SLAVE STATUS.
 *    MySQL lists all channels in both.
 */
export function replicaStatusStatement(info: ServerInfo): string {
  if (info.flavour === 'mariadb') return 'SHOW ALL SLAVES STATUS';
  return atLeast(info, 8, 0, 22) ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
}

/**
 * The session setting that makes the server itself abandon a statement after `timeoutMs`, where the
 * flavour has one: MariaDB >= 10.1.1 max_statement_time (seconds, every statement); MySQL >= 5.7.8
 * max_execution_time (milliseconds, read-only SELECTs only).
 */
export function serverTimeoutSetting(info: ServerInfo, timeoutMs: number): string | undefined {
  if (info.flavour === 'mariadb') {
    return atLeast(info, 10, 1, 1) ? `max_statement_time = ${timeoutMs / 1000}` : undefined;
  }
  return atLeast(info, 5, 7, 8) ? `max_execution_time = ${Math.ceil(timeoutMs)}` : undefined;
}

/** The word the flavour and version use for each role (for the JSON API's nativeRole). */
export function nativeRoleWords(info: ServerInfo): { primary: string; secondary: string } {
  return info.flavour === 'mysql' && atLeast(info, 8, 0, 22)
    ? { primary: 'source', secondary: 'replica' }
    : { primary: 'master', secondary: 'slave' };
}

/** A value from a result row as a finite number, or undefined (NULL, '', 'NULL', garbage). */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function toText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string') return value;
  // Only primitives become text: an object's String() runs its own toString, which may throw.
  return typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean'
    ? String(value)
    : undefined;
}

/** One replication channel (MySQL channel / MariaDB connection name), in flavour-neutral terms. */
export interface ReplicaChannel {
  /** Channel_Name (MySQL) or Connection_name (MariaDB); '' for the default channel. */
  name: string;
  /** Replica_IO_Running / Slave_IO_Running: 'Yes', 'No', 'Connecting' (MySQL also 'Preparing'). */
  ioRunning: string;
  /** Replica_SQL_Running / Slave_SQL_Running: 'Yes' or 'No'. */
  sqlRunning: string;
  /** Seconds_Behind_Source / Seconds_Behind_Master; undefined where the server says NULL. */
  secondsBehind?: number;
  sourceHost?: string;
  sourcePort?: number;
  sourceServerId?: number;
  /** SQL_Delay: the configured MASTER_DELAY / SOURCE_DELAY, in seconds. */
  sqlDelay?: number;
  lastIoError?: string;
  lastSqlError?: string;
  /**
   * What the IO (receiver) thread has received so far, as an opaque mark that changes with every
   * event received: `<Master_Log_File>:<Read_Master_Log_Pos>` (both flavours' classic columns).
   */
  receivedMark?: string;
  /** Slave_received_heartbeats (MariaDB): the source's heartbeats received on this channel. */
  receivedHeartbeats?: number;
  /**
   * Slave_heartbeat_period (MariaDB; MASTER_HEARTBEAT_PERIOD, slave_net_timeout/2 by default): the
   * source sends a heartbeat after this many idle seconds, so a healthy link is never silent longer.
   */
  heartbeatPeriodSeconds?: number;
}

/**
 * Reads a column by its MySQL >= 8.0.22 name or its older name (Source_* vs Master_*, Replica_* vs
 * Slave_*): the column order differs between flavours and versions, the names are what is stable.
 */
function column(row: Record<string, unknown>, ...names: string[]): unknown {
  for (const name of names) if (name in row) return row[name];
  return undefined;
}

/** Maps one row of SHOW REPLICA STATUS (MySQL 8) or SHOW [ALL] SLAVE[S] STATUS (MySQL, MariaDB). */
export function normalizeReplicaStatusRow(row: Record<string, unknown>): ReplicaChannel {
  const errorText = (v: unknown): string | undefined => toText(v) || undefined;
  return {
    name: toText(column(row, 'Channel_Name', 'Connection_name')) ?? '',
    ioRunning: toText(column(row, 'Replica_IO_Running', 'Slave_IO_Running')) ?? 'No',
    sqlRunning: toText(column(row, 'Replica_SQL_Running', 'Slave_SQL_Running')) ?? 'No',
    secondsBehind: toNumber(column(row, 'Seconds_Behind_Source', 'Seconds_Behind_Master')),
    sourceHost: toText(column(row, 'Source_Host', 'Master_Host')),
    sourcePort: toNumber(column(row, 'Source_Port', 'Master_Port')),
    sourceServerId: toNumber(column(row, 'Source_Server_Id', 'Master_Server_Id')),
    sqlDelay: toNumber(column(row, 'SQL_Delay')),
    lastIoError: errorText(column(row, 'Last_IO_Error')),
    lastSqlError: errorText(column(row, 'Last_SQL_Error')),
    receivedMark: receivedMark(row),
    receivedHeartbeats: toNumber(column(row, 'Slave_received_heartbeats')),
    heartbeatPeriodSeconds: toNumber(column(row, 'Slave_heartbeat_period')),
  };
}

function receivedMark(row: Record<string, unknown>): string | undefined {
  const file = toText(column(row, 'Source_Log_File', 'Master_Log_File'));
  const pos = toText(column(row, 'Read_Source_Log_Pos', 'Read_Master_Log_Pos'));
  return file === undefined && pos === undefined ? undefined : `${file ?? ''}:${pos ?? ''}`;
}

/** Group Replication's own channels appear in SHOW REPLICA STATUS but are not source/replica links. */
export function isGroupReplicationChannel(channel: ReplicaChannel): boolean {
  return channel.name.startsWith('group_replication_');
}

/**
 * The lag of one channel, honest about Seconds_Behind_*'s holes:
 *  - SQL (applier) thread not running: the server says NULL and nothing else is known: undefined.
 *  - IO (receiver) thread connected ('Yes') and the link not silent: the server's Seconds_Behind_*
 *    (how old the event being applied is; 0 when everything received is applied). It measures the
 *    applier only: time the events spent on the network is not in it (docs/mysql.md).
 *  - IO thread not connected ('No', 'Connecting'), or connected but SILENT (nothing received, not
 *    even a heartbeat, for longer than the source's heartbeat period allows: see linkSilent):
 *    Seconds_Behind_* is NULL (MariaDB, and MySQL once the relay log is drained) or 0, or measures
 *    only the relay log already received, which hides the outage. Reported instead: seconds since
 *    the link was last seen healthy (`lastHealthyAt`: connected, or last receiving), an upper bound
 *    on how stale the replica can be, like the Redis driver's link-down time; or the server's value
 *    if that is larger. Unknown (undefined) if the exporter never saw the link healthy. For a silent
 *    link, "last receiving" is when the exporter first saw the last thing received: up to one
 *    collection after it arrived, so the lag is then a lower bound, at most one interval short.
 */
export function channelLagSeconds(
  channel: ReplicaChannel,
  lastHealthyAt: number | undefined,
  nowSeconds: number,
  silent = false,
): number | undefined {
  if (channel.sqlRunning !== 'Yes') return undefined;
  if (channel.ioRunning === 'Yes' && !silent) return channel.secondsBehind;
  if (lastHealthyAt === undefined) return undefined;
  // Fractional: the exporter's own clock measures it, finer than the server's whole seconds.
  const outage = Math.max(0, nowSeconds - lastHealthyAt);
  return Math.max(outage, channel.secondsBehind ?? 0);
}

/**
 * Slack on top of the heartbeat period before a connected link is called silent: the source's
 * timer, the network and the exporter's sampling (one collection) all add a little.
 */
export function silenceMarginSeconds(heartbeatPeriodSeconds: number): number {
  return 1 + heartbeatPeriodSeconds / 10;
}

/**
 * A connected IO thread that has received nothing (no event, no heartbeat) for longer than the
 * source's heartbeat period plus a margin: a healthy link cannot be that quiet, the receiver or the
 * path to the source is stalled (the IO thread itself only notices after slave_net_timeout).
 * Unknown (false) without a heartbeat period (0: heartbeats off; MySQL does not show it here).
 */
export function linkSilent(
  channel: ReplicaChannel,
  lastReceivedAt: number | undefined,
  nowSeconds: number,
): boolean {
  const period = channel.heartbeatPeriodSeconds;
  if (channel.ioRunning !== 'Yes' || !period || period <= 0 || lastReceivedAt === undefined) return false;
  return nowSeconds - lastReceivedAt > period + silenceMarginSeconds(period);
}

/**
 * Per channel, when the exporter first saw its IO thread receive something new (the received
 * position or the heartbeat count moved). Channels not in the latest round are forgotten.
 */
export class ReceiveWatch {
  private seen = new Map<string, { mark: string; at: number }>();

  observe(channels: readonly ReplicaChannel[], nowSeconds: number): Map<string, number> {
    const next = new Map<string, { mark: string; at: number }>();
    for (const ch of channels) {
      const mark = `${ch.receivedMark ?? ''}|${ch.receivedHeartbeats ?? ''}`;
      const last = this.seen.get(ch.name);
      next.set(ch.name, last && last.mark === mark ? last : { mark, at: nowSeconds });
    }
    this.seen = next;
    return new Map([...next].map(([name, { at }]) => [name, at]));
  }
}

/** @@read_only / @@super_read_only as a boolean: anything but OFF / 0 (MariaDB 11 adds NO_LOCK...). */
export function isReadOnlySetting(value: string | undefined): boolean {
  return value !== undefined && !/^(OFF|0|)$/i.test(value.trim());
}

/** A channel that is replicating, or trying to: its applier runs or its receiver connects. */
export function channelReplicating(channel: ReplicaChannel): boolean {
  return channel.sqlRunning === 'Yes' || /^(Yes|Connecting|Preparing)$/.test(channel.ioRunning);
}

/**
 * The node's role from its replication channels and read_only (docs/mysql.md "Role"):
 *  - Group Replication channels: unknown (the roles live elsewhere);
 *  - a channel that replicates (or tries to): secondary, whatever read_only says;
 *  - channels, all stopped: secondary if read_only (a paused replica), else unknown (it accepts
 *    writes and replicates nothing: a manual failover in progress, or two primaries);
 *  - no channel: primary, or unknown with read_only (it accepts no writes and replicates nothing:
 *    a demoted or fenced node).
 */
export function nodeRole(
  channels: readonly ReplicaChannel[],
  readOnly: boolean,
): {
  role: 'primary' | 'secondary' | 'unknown';
  reason:
    'group_replication' | 'replicating' | 'stopped' | 'source' | 'read_only_source' | 'stopped_writable';
} {
  if (channels.some(isGroupReplicationChannel)) return { role: 'unknown', reason: 'group_replication' };
  if (channels.length > 0) {
    if (channels.some(channelReplicating)) return { role: 'secondary', reason: 'replicating' };
    return readOnly
      ? { role: 'secondary', reason: 'stopped' }
      : { role: 'unknown', reason: 'stopped_writable' };
  }
  return readOnly ? { role: 'unknown', reason: 'read_only_source' } : { role: 'primary', reason: 'source' };
}

/**
 * The shard's lag over all channels of a multi-source replica: the worst channel, and unknown if any
 * channel's lag is unknown (the maximum of an unknown is unknown, never a smaller known value).
 *
 * A worst of 0 is unknown too: every channel then says only "everything received is applied"
 * (Seconds_Behind_* = 0, or a link seen healthy at this very collection). Events still on the network
 * (a slow path, a link not yet known to be silent) are invisible to the server, so 0 would claim "in
 * sync" where the truth may be seconds behind: absent, never a made-up 0 (docs/mysql.md "Lag").
 */
export function worstLagSeconds(lags: (number | undefined)[]): number | undefined {
  if (lags.length === 0 || lags.some((l) => l === undefined)) return undefined;
  const worst = Math.max(...(lags as number[]));
  return worst > 0 ? worst : undefined;
}

/** One MariaDB GTID: domain-server_id-seq_no. */
export interface MariadbGtid {
  domainId: number;
  serverId: number;
  seqNo: number;
}

/** A MariaDB GTID position ('0-1-42,1-2-7'): one GTID per replication domain. Malformed parts skipped. */
export function parseMariadbGtidPos(text: string): MariadbGtid[] {
  const gtids: MariadbGtid[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part);
    if (m) gtids.push({ domainId: Number(m[1]), serverId: Number(m[2]), seqNo: Number(m[3]) });
  }
  return gtids;
}

/**
 * Transactions in a MariaDB GTID position: the sum of each domain's seq_no (seq_no counts the
 * domain's transactions and keeps counting across failovers). Empty position: 0.
 */
export function mariadbGtidSeqNoSum(text: string): number {
  return parseMariadbGtidPos(text).reduce((sum, g) => sum + g.seqNo, 0);
}

/**
 * Transactions in a MySQL GTID set, e.g. '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11-18,
 * 2174B383-5441-11E8-B90A-C80AA9429562:1-3' (MySQL 8.3+ may add tags: 'uuid:tag:1-5'). Counts every
 * interval's length; malformed parts skipped.
 */
export function mysqlGtidSetCount(text: string): number {
  let count = 0;
  for (const sid of text.replace(/\s+/g, '').split(',')) {
    for (const interval of sid.split(':').slice(1)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(interval);
      if (!m) continue; // the UUID's tag, or garbage
      const start = Number(m[1]);
      const end = m[2] === undefined ? start : Number(m[2]);
      if (end >= start) count += end - start + 1;
    }
  }
  return count;
}

/**
 * The data-changing statement counters summed as writes (DML only: DDL and admin statements are not
 * operations on the data). Com_load is LOAD DATA.
 */
export const WRITE_COUNTERS = [
  'Com_insert',
  'Com_insert_select',
  'Com_update',
  'Com_update_multi',
  'Com_delete',
  'Com_delete_multi',
  'Com_replace',
  'Com_replace_select',
  'Com_load',
] as const;

/** Reads: Com_select, plus Qcache_hits (a SELECT answered by the query cache does not count in Com_select). */
export const READ_COUNTERS = ['Com_select', 'Qcache_hits'] as const;

/**
 * Every SHOW GLOBAL STATUS variable the driver reads. Slaves_connected (MariaDB): replicas connected
 * to this node, whose binlog dump connections Threads_connected counts.
 */
export const STATUS_VARIABLES = [
  'Threads_connected',
  'Slaves_connected',
  ...READ_COUNTERS,
  ...WRITE_COUNTERS,
];

/**
 * Reads and writes from SHOW GLOBAL STATUS, as name -> value. Counters missing on a flavour (Qcache_hits
 * on MySQL 8) count as 0; writes are undefined only when no write counter exists at all.
 */
export function operationCounters(status: Map<string, string>): { reads?: number; writes?: number } {
  const sum = (names: readonly string[]): number | undefined => {
    const values = names.map((n) => toNumber(status.get(n))).filter((v) => v !== undefined);
    return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
  };
  const select = toNumber(status.get('Com_select'));
  return {
    reads: select === undefined ? undefined : select + (toNumber(status.get('Qcache_hits')) ?? 0),
    writes: sum(WRITE_COUNTERS),
  };
}

/**
 * A DATETIME/TIMESTAMP text 'YYYY-MM-DD HH:MM:SS[.ffffff]' read as UTC (the driver sets the session
 * time_zone to '+00:00'), in Unix seconds. The zero date ('0000-00-00 00:00:00.000000', what
 * performance_schema shows for "none yet") and anything unparseable: undefined.
 */
export function parseUtcDatetime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (!Number.isFinite(ms)) return undefined;
  const fraction = m[7] ? Number(`0.${m[7]}`) : 0;
  return ms / 1000 + fraction;
}

/** The columns the driver selects from performance_schema.replication_applier_status_by_worker. */
export const APPLIER_QUERY =
  'SELECT CHANNEL_NAME, WORKER_ID, LAST_APPLIED_TRANSACTION, LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP ' +
  'FROM performance_schema.replication_applier_status_by_worker';

/**
 * MySQL 8: the original commit time (on the source where the transaction was first committed) of the
 * latest transaction any applier worker of any channel applied. Undefined when no worker applied one
 * yet (zero timestamps, e.g. after a restart, or sources that record no commit timestamps).
 */
export function lastAppliedOriginalCommitSeconds(rows: Record<string, unknown>[]): number | undefined {
  let latest: number | undefined;
  for (const row of rows) {
    const t = parseUtcDatetime(toText(row['LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP']));
    if (t !== undefined && (latest === undefined || t > latest)) latest = t;
  }
  return latest;
}

/** Every SHOW GLOBAL VARIABLES variable the driver reads (a flavour lacking one simply omits it). */
export const GLOBAL_VARIABLES = [
  'version',
  'version_comment',
  'server_id',
  'server_uuid',
  'hostname',
  'port',
  'log_bin',
  // The role reads them: a node that takes no writes, or one that takes writes and replicates nothing.
  'read_only',
  'super_read_only',
  // MariaDB: the GTID of the last transaction per domain, replicated or written locally.
  'gtid_current_pos',
  // MySQL: GTIDs on, and the set of all transactions executed here.
  'gtid_mode',
  'gtid_executed',
];

/**
 * The node's own id: @@server_uuid where it exists (MySQL >= 5.6, kept in auto.cnf across restarts).
 * MariaDB has none: @@server_id (which replication requires to be unique among the servers that
 * replicate together) with the server's own @@hostname and @@port, as `<server_id>@<hostname>:<port>`,
 * so that two MariaDB topologies that both use server_id 1 still get distinct ids.
 */
export function nativeNodeId(vars: Map<string, string>): string | undefined {
  const uuid = vars.get('server_uuid');
  if (uuid) return uuid;
  const serverId = vars.get('server_id');
  const host = vars.get('hostname');
  const port = vars.get('port');
  if (!serverId || !host || !port) return undefined;
  return `${serverId}@${host}:${port}`;
}

/** The replication position as a number, with its unit (see docs/mysql.md). */
export function commitOffset(
  info: ServerInfo,
  vars: Map<string, string>,
  isReplica: boolean,
): { value: number; unit: string } | undefined {
  if (info.flavour === 'mariadb') {
    // Without a binlog a primary records no GTIDs: an empty position there would be a fake 0.
    if (vars.get('log_bin') !== 'ON' && !isReplica) return undefined;
    const pos = vars.get('gtid_current_pos');
    return pos === undefined ? undefined : { value: mariadbGtidSeqNoSum(pos), unit: 'gtid_seq_no' };
  }
  if (vars.get('gtid_mode') !== 'ON') return undefined;
  const executed = vars.get('gtid_executed');
  return executed === undefined ? undefined : { value: mysqlGtidSetCount(executed), unit: 'transactions' };
}
