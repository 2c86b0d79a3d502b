/**
 * Pure PostgreSQL replication arithmetic: WAL positions (LSNs) as numbers, and a standby's lag.
 * No I/O here, so every rule can be unit- and property-tested without a server.
 */

const TWO_POW_32 = 2 ** 32;

/**
 * An LSN as PostgreSQL prints it ('16/B374D848': two hex halves of a 64-bit byte position) as a
 * number of bytes: high * 2^32 + low. Exact up to 2^53 bytes (8 PiB of WAL) -- far beyond any real
 * server -- and undefined for anything that is not an LSN (NULL included), never a guess.
 */
export function parseLsn(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined) return undefined;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) return undefined;
  return parseInt(m[1]!, 16) * TWO_POW_32 + parseInt(m[2]!, 16);
}

/** What one collection read from a standby, all times on the SERVER's clock (Unix seconds). */
export interface StandbySample {
  /** clock_timestamp() of the server, read in the same statement. */
  nowSeconds: number;
  /** pg_last_wal_receive_lsn(): WAL received and flushed by streaming; undefined if streaming never ran. */
  receiveLsn?: number;
  /** pg_last_wal_replay_lsn(): WAL replayed so far. */
  replayLsn?: number;
  /** pg_last_xact_replay_timestamp(): primary commit time of the last replayed transaction. */
  lastReplayedCommitSeconds?: number;
  /** pg_stat_wal_receiver.status = 'streaming' (the row is absent while no WAL receiver runs). */
  streaming: boolean;
}

/**
 * A standby's replication lag, in seconds, read as "how old is the newest moment at which this
 * standby is KNOWN to hold all of the primary's data":
 *
 *  - Streaming and every received byte replayed: 0. The standby has everything the primary sent.
 *    This is what keeps an idle, caught-up standby at 0 instead of the ever-growing
 *    `now() - pg_last_xact_replay_timestamp()` that postgres_exporter reports there.
 *  - Otherwise (replay behind what was received, or the WAL receiver not streaming): now minus the
 *    later of (a) the primary commit time of the last replayed transaction and (b) the last time this
 *    driver saw the standby streaming and fully replayed. (a) alone is the classic formula; (b) only
 *    tightens it where the exporter has seen better, e.g. after hours of idle, a new write arriving at
 *    a delayed standby must not show hours of lag.
 *  - Not streaming (primary down, network cut, archive-only recovery): the same formula, so the lag
 *    grows from the moment the standby was last seen current, like a replica whose link is down.
 *    Receive == replay proves nothing then (the primary may have moved on), so it is never 0.
 *  - Nothing known (no transaction replayed since the standby started and never seen caught up):
 *    undefined -- absent, never a fake 0.
 *
 * One instance per target: it remembers (b) across collections and reconnects.
 */
export class StandbyLag {
  private lastSeenCurrentSeconds?: number;

  observe(sample: StandbySample): number | undefined {
    const { nowSeconds, receiveLsn, replayLsn, lastReplayedCommitSeconds, streaming } = sample;
    // >= rather than ==: a WAL receiver that restarts re-requests WAL from the start of a segment,
    // so for a moment the received position can be behind what was already replayed.
    if (streaming && receiveLsn !== undefined && replayLsn !== undefined && replayLsn >= receiveLsn) {
      this.lastSeenCurrentSeconds = nowSeconds;
      return 0;
    }
    const knownCurrentAt = latest(lastReplayedCommitSeconds, this.lastSeenCurrentSeconds);
    if (knownCurrentAt === undefined) return undefined;
    // Never negative: commit times come from the primary's clock, which may run slightly ahead.
    return Math.max(0, nowSeconds - knownCurrentAt);
  }

  /** Forget what was seen (the target became a primary, or is another cluster now). */
  reset(): void {
    this.lastSeenCurrentSeconds = undefined;
  }
}

function latest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}
