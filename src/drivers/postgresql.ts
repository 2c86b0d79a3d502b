/**
 * PostgreSQL driver (primary and physical streaming standbys), over ONE pg.Client session that is
 * read-only, has a statement_timeout equal to the collection timeout, and names itself
 * 'datastore-exporter' (postgresql-connection.ts). One collection = one SELECT (one round trip).
 *
 * Mapping (docs/postgresql.md):
 *  - version: server_version as the server reports it ('15.18 (Debian 15.18-0+deb12u1)').
 *  - cluster id: pg_control_system().system_identifier, shared by a primary and all its physical
 *    standbys (a logical replica is another cluster). One shard, the whole dataset, named after it.
 *  - node id: PostgreSQL has no stable per-node id (the system identifier is the cluster's), so the
 *    core's rules apply (--node-id, else host:port).
 *  - Role: pg_is_in_recovery() -> secondary (cascading standbys too), else primary.
 *  - Lag (standby only): postgresql-replication.ts StandbyLag -- 0 while streaming with everything
 *    received replayed, else seconds since the standby was last known current. Never a fake 0.
 *  - Last operation: standby: pg_last_xact_replay_timestamp(). Primary: pg_last_committed_xact() when
 *    track_commit_timestamp is on, else the time writes_total was first seen to advance. Not the WAL
 *    position: checkpoints, standby snapshots, autovacuum and even reads (page pruning, hint-bit
 *    full-page images) write WAL without any client writing data.
 *  - Commit offset: WAL position in bytes ('lsn'): pg_current_wal_lsn() on a primary,
 *    pg_last_wal_replay_lsn() on a standby.
 *  - Clients: client backends in pg_stat_activity minus the exporter's own.
 *  - Reads: sum of pg_stat_database.tup_returned; writes: sum of tup_inserted + tup_updated +
 *    tup_deleted (rows, over all databases). A standby counts only what its own clients do, so its
 *    writes_total stays flat: replayed WAL is not executed as row operations there.
 */
import { Client } from 'pg';
import { AdvanceTracker } from '../advance-tracker';
import type { Driver, DriverOptions, Observation } from '../model';
import { clientConfig } from './postgresql-connection';
import { StandbyLag, parseLsn } from './postgresql-replication';

/** The row of STATUS_QUERY; pg returns bool/int4/float8 as JS values, text (and NULL) as is. */
interface StatusRow {
  version: string;
  system_identifier: string;
  in_recovery: boolean;
  lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  last_replayed_commit: number | null;
  wal_receiver_status: string | null;
  last_commit: number | null;
  server_now: number;
  clients: number;
  reads: string | null;
  writes: string | null;
}

/**
 * Everything in one statement, so one collection is one round trip and every value comes from the
 * same moment. Times are Unix seconds on the SERVER's clock (clock_timestamp()), so lag does not
 * depend on the exporter's clock. Counters are summed as numeric and sent as text: bigint sums can
 * exceed what pg would parse safely. Uncorrelated subqueries run as InitPlans only when their CASE
 * branch is taken, so pg_current_wal_lsn() (an error during recovery) and pg_last_committed_xact()
 * (an error while track_commit_timestamp is off) are never called where they would fail.
 * Privileges: all of it is readable by a role with pg_monitor (docs/postgresql.md).
 */
export const STATUS_QUERY = `
SELECT
  current_setting('server_version') AS version,
  (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
  pg_is_in_recovery() AS in_recovery,
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replayed_commit,
  (SELECT status FROM pg_stat_wal_receiver) AS wal_receiver_status,
  CASE WHEN NOT pg_is_in_recovery() AND current_setting('track_commit_timestamp')::bool
    THEN extract(epoch FROM (SELECT "timestamp" FROM pg_last_committed_xact()))::float8
  END AS last_commit,
  extract(epoch FROM clock_timestamp())::float8 AS server_now,
  (SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS clients,
  totals.reads::text AS reads,
  totals.writes::text AS writes
FROM (
  SELECT sum(tup_returned) AS reads, sum(tup_inserted + tup_updated + tup_deleted) AS writes
  FROM pg_stat_database
) AS totals`;

/** A numeric sent as text, as a number; undefined for NULL or anything unparseable. */
function numeric(text: string | null): number | undefined {
  if (text === null) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

export class PostgresDriver implements Driver {
  private client?: Client;
  /** Survive reconnects: what was seen before a dropped connection is still true. */
  private readonly standbyLag = new StandbyLag();
  private readonly writes = new AdvanceTracker();
  private systemIdentifier?: string;

  constructor(private readonly opts: DriverOptions) {
    // Build once up front so a bad sslmode / sslrootcert fails at start-up, not on every reconnect.
    clientConfig(opts.target, opts.timeoutMs);
  }

  async connect(): Promise<void> {
    const client = new Client(clientConfig(this.opts.target, this.opts.timeoutMs));
    // Without a listener an 'error' event (server gone while idle) would crash the process; the
    // failure surfaces on the next query instead.
    client.on('error', (err: Error) =>
      this.opts.logger.debug('postgresql connection error', { err: err.message }),
    );
    this.client = client;
    await client.connect();
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // end() marks the disconnect as ours (no 'unexpected termination' error) and sends Terminate if
    // the session is idle; destroying the socket right away means a stopped or hung server cannot
    // keep anything queued or waiting on us. Queries in flight are rejected at once.
    client.end().catch(() => undefined);
    client.connection.stream.destroy();
  }

  async observe(): Promise<Observation> {
    const client = this.client;
    if (!client) throw new Error('postgresql connection is not open');
    const row = (await client.query<StatusRow>(STATUS_QUERY)).rows[0];
    if (!row) throw new Error('postgresql status query returned no row');

    if (row.system_identifier !== this.systemIdentifier) {
      // Another cluster behind the same address (rebuilt, restored): what we saw is not about it.
      this.systemIdentifier = row.system_identifier;
      this.standbyLag.reset();
    }
    const now = row.server_now;
    const writesTotal = numeric(row.writes);
    const writesAdvancedAt = writesTotal === undefined ? undefined : this.writes.observe(writesTotal, now);
    const lsn = parseLsn(row.lsn);

    let lagSeconds: number | undefined;
    let lastOperation: number | undefined;
    if (row.in_recovery) {
      lagSeconds = this.standbyLag.observe({
        nowSeconds: now,
        receiveLsn: parseLsn(row.receive_lsn),
        replayLsn: parseLsn(row.replay_lsn),
        lastReplayedCommitSeconds: row.last_replayed_commit ?? undefined,
        streaming: row.wal_receiver_status === 'streaming',
      });
      lastOperation = row.last_replayed_commit ?? undefined;
    } else {
      this.standbyLag.reset();
      lastOperation = row.last_commit ?? writesAdvancedAt;
    }

    return {
      datastore: 'postgresql',
      version: row.version,
      nativeClusterId: row.system_identifier,
      shards: [
        {
          role: row.in_recovery ? 'secondary' : 'primary',
          nativeRole: row.in_recovery ? 'standby' : 'primary',
          lagSeconds,
          lastOperationTimestampSeconds: lastOperation,
          commitOffset: lsn === undefined ? undefined : { value: lsn, unit: 'lsn' },
        },
      ],
      performance: {
        clientsConnected: row.clients,
        readsTotal: numeric(row.reads),
        writesTotal,
      },
    };
  }
}

export function createDriver(opts: DriverOptions): Driver {
  return new PostgresDriver(opts);
}
