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
  /** pg_stat_wal_receiver.last_msg_send_time: the PRIMARY's clock when it sent the last message received. */
  lastMsgSendSeconds?: number;
  /** pg_stat_wal_receiver.last_msg_receipt_time: this standby's clock when that message arrived. */
  lastMsgReceiptSeconds?: number;
  /**
   * wal_receiver_timeout in seconds (0: off). A WAL receiver that hears nothing for half of it asks
   * the primary for a reply, so a healthy link is never silent much longer than that.
   */
  walReceiverTimeoutSeconds?: number;
}

/** A message transit below this is reported as 0: within what clock synchronisation can tell. */
export const TRANSIT_FLOOR_SECONDS = 0.1;

/** Slack on top of wal_receiver_timeout / 2 (+ transit) before a streaming link is called silent. */
export const SILENCE_MARGIN_SECONDS = 1;

/**
 * A standby's replication lag, in seconds, read as "how old is the newest moment at which this
 * standby is KNOWN to hold all of the primary's data":
 *
 *  - Streaming and every received byte replayed: the standby has everything the primary had sent
 *    when it sent its last message, which took (receipt - send) to arrive: that transit time is the
 *    lag (e.g. a slow or delaying network path), 0 below TRANSIT_FLOOR_SECONDS. On an idle, healthy
 *    link it is 0 however long ago the last commit was: this is what keeps an idle standby at 0
 *    instead of the ever-growing `now() - pg_last_xact_replay_timestamp()` that postgres_exporter
 *    reports there. It assumes synchronised clocks, like heartbeat mode. Without the message times
 *    (a role without pg_monitor sees them NULL): 0, as before.
 *  - ... unless the link is SILENT: nothing received for longer than a healthy link allows (the
 *    receiver pings the primary after wal_receiver_timeout / 2 of silence and gets an answer at once).
 *    A stopped or hung WAL receiver keeps reporting 'streaming', so this is the only sign of it:
 *    then the link counts as down (below), from the send time of the last message received. Until
 *    the silence is long enough to tell, a stall cannot be told from an idle primary: the lag stays
 *    the last transit time, a lower bound (docs/postgresql.md).
 *  - Otherwise (replay behind what was received, the WAL receiver not streaming, or a silent link):
 *    now minus the later of (a) the primary commit time of the last replayed transaction and (b) the
 *    last moment this driver knew the standby current (the primary's time of the last message of a
 *    healthy, caught-up link). (a) alone is the classic formula; (b) only tightens it where the
 *    exporter has seen better, e.g. after hours of idle, a new write arriving at a delayed standby
 *    must not show hours of lag.
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
      const { lastMsgSendSeconds: sent, lastMsgReceiptSeconds: received } = sample;
      if (sent === undefined || received === undefined) {
        this.lastSeenCurrentSeconds = nowSeconds;
        return 0;
      }
      const transit = Math.max(0, received - sent);
      if (!linkSilent(sample, transit)) {
        // Current as of `transit` ago: what the primary had when its last message left.
        this.lastSeenCurrentSeconds = nowSeconds - transit;
        return transit < TRANSIT_FLOOR_SECONDS ? 0 : transit;
      }
      // Silent: everything up to the last message is here, nothing since. Earlier collections of
      // this silence took the link for healthy (it could not be told yet): their "current" is undone.
      this.lastSeenCurrentSeconds = sent;
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

/** Nothing received for longer than a healthy link allows (see StandbyLag); false where unknowable. */
function linkSilent(sample: StandbySample, transit: number): boolean {
  const timeout = sample.walReceiverTimeoutSeconds;
  if (!timeout || timeout <= 0 || sample.lastMsgReceiptSeconds === undefined) return false;
  return sample.nowSeconds - sample.lastMsgReceiptSeconds > timeout / 2 + transit + SILENCE_MARGIN_SECONDS;
}

function latest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** A primary's transaction ids as one collection read them (pg_current_snapshot(), same statement). */
export interface XidSample {
  /** The next xid to be assigned (pg_snapshot_xmax), 64-bit. */
  nextXid: bigint;
  /** The xids in progress (pg_snapshot_xip). */
  inProgress: bigint[];
  /**
   * Heartbeats committed so far: the heartbeat row's seq, read in the same snapshot (any exporter's
   * heartbeats); undefined where the row cannot be read.
   */
  heartbeats?: number;
  /** Heartbeats this exporter wrote so far: what is known without the row. */
  ownHeartbeats: number;
}

/**
 * Sees, within one collection, that a transaction that WROTE something ended on a primary.
 *
 * Only a transaction that writes gets a transaction id, and the id counter lives in shared memory:
 * it moves the moment a write happens, unlike pg_stat_database, which a session publishes when it
 * goes idle (an INSERT followed by a long statement in the same session shows up only after that
 * statement). The xids that ended since the last look are (xmax - in progress) minus the same the
 * last time. Heartbeats are transactions too: the heartbeat row's seq, read in the same snapshot,
 * says exactly how many of them ended (any exporter's); without the row, this exporter's own.
 *
 * Other writers of xids count as writes, like in writes_total: DDL, SELECT ... FOR UPDATE (row
 * locks take an xid), ANALYZE (autovacuum's too). A subtransaction that writes takes an xid of its own.
 */
export class WriteTransactionWatch {
  private last?: { ended: bigint; heartbeats?: number; ownHeartbeats: number };

  /** True when a write transaction (not a heartbeat) ended since the last look. */
  observe(sample: XidSample): boolean {
    const ended = sample.nextXid - BigInt(sample.inProgress.length);
    const last = this.last;
    this.last = { ended, heartbeats: sample.heartbeats, ownHeartbeats: sample.ownHeartbeats };
    if (!last || ended < last.ended) return false;
    // The row became readable or stopped being so: this one step cannot be told.
    if ((sample.heartbeats === undefined) !== (last.heartbeats === undefined)) return false;
    const heartbeats =
      sample.heartbeats !== undefined && last.heartbeats !== undefined
        ? sample.heartbeats - last.heartbeats
        : sample.ownHeartbeats - last.ownHeartbeats;
    // A seq that went down: the row was created again, its heartbeats are not known for this step.
    if (heartbeats < 0) return false;
    return ended - last.ended > BigInt(heartbeats);
  }

  reset(): void {
    this.last = undefined;
  }
}

/** A pg_snapshot as [xmax, ...xip] text (the status statement's `snapshot` column), or undefined. */
export function parseSnapshot(
  texts: readonly (string | null)[] | null | undefined,
): { nextXid: bigint; inProgress: bigint[] } | undefined {
  if (!texts || texts.length === 0) return undefined;
  const ids: bigint[] = [];
  for (const t of texts) {
    if (t === null || !/^\d{1,20}$/.test(t)) return undefined;
    ids.push(BigInt(t));
  }
  return { nextXid: ids[0]!, inProgress: ids.slice(1) };
}
