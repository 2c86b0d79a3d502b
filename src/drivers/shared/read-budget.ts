/**
 * A cap on what a driver reads from its datastore, so that a server (or anything listening on an
 * allowed /probe address) that streams a never-ending reply costs a few MiB, not the process: client
 * libraries buffer a reply until it is complete, and before this cap a never-ending one grew RSS to
 * 1.1-1.6 GB within 3 s (and glibc kept most of it after the connection was gone), far beyond the
 * Helm chart's 256 Mi limit.
 *
 * Each driver owns one ReadBudget sized far above any real reply of its datastore (its own constant,
 * with the sizes it was measured against), watches every socket its client library opens
 * (`watch`: every chunk received is counted, whoever reads it) and runs each connect and collection
 * through `run`, which starts a fresh count. Past the budget the socket is destroyed at once, and the
 * collection fails with the budget's error rather than the library's "socket closed". Bytes that
 * arrive between collections (a server streaming after its answer) count too, until the next run.
 *
 * All budgets also draw on one process-wide budget (PROCESS_BYTES): with --probe.max-concurrent
 * collections at once, per-collection caps alone would still add up to more than a pod's memory.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

/** What all collections of the process may hold at once (the --target one and every /probe). */
export const PROCESS_BYTES = 32 * 1024 * 1024;

let processBytes = 0;

/** Bytes counted by every budget right now (for tests and benchmarks). */
export function processBytesInUse(): number {
  return processBytes;
}

export class ReplyTooLargeError extends Error {
  override name = 'ReplyTooLargeError';
}

/** A stream whose data can be counted and which can be destroyed (net.Socket, tls.TLSSocket...). */
export type CountableStream = EventEmitter & { destroy(error?: Error): unknown };

function mib(bytes: number): string {
  return `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;
}

export class ReadBudget {
  private used = 0;
  private exceeded?: ReplyTooLargeError;
  private readonly streams = new Set<CountableStream>();

  /** `what` names the datastore in the error: 'redis', 'postgresql'... */
  constructor(
    readonly limitBytes: number,
    private readonly what: string,
  ) {}

  /** Counts every chunk the stream emits; destroys it (and every other watched stream) past a budget. */
  watch(stream: CountableStream): void {
    this.streams.add(stream);
    stream.on('data', (chunk: Buffer | string) => {
      if (!this.take(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length)) {
        stream.destroy(this.exceeded);
      }
    });
    stream.once('close', () => this.streams.delete(stream));
  }

  /**
   * Runs `start` and watches every TCP client socket created synchronously while it runs, for client
   * libraries that do not hand out their socket (node-redis creates it inside connect(), before its
   * first await). Node announces each one on the `net.client.socket` diagnostics channel.
   */
  watchSocketsCreatedBy<T>(start: () => T): T {
    const created: Socket[] = [];
    const onSocket = (message: unknown): void => {
      created.push((message as { socket: Socket }).socket);
    };
    subscribe('net.client.socket', onSocket);
    try {
      return start();
    } finally {
      unsubscribe('net.client.socket', onSocket);
      for (const socket of created) this.watch(socket);
    }
  }

  /** Destroys every watched stream (a driver's close()). */
  destroyAll(): void {
    for (const stream of this.streams) stream.destroy();
    this.streams.clear();
  }

  /**
   * Counts `bytes` just received (for readers that are not a watched stream); false once over the
   * driver's budget or the process-wide one, with every watched stream destroyed.
   */
  take(bytes: number): boolean {
    if (this.exceeded) return false;
    this.used += bytes;
    processBytes += bytes;
    if (this.used <= this.limitBytes && processBytes <= PROCESS_BYTES) return true;
    this.exceeded = new ReplyTooLargeError(
      this.used > this.limitBytes
        ? `${this.what} sent more than ${mib(this.limitBytes)} for one collection (no real reply is this large): connection closed`
        : `${this.what} reply dropped: the exporter's collections hold more than ${mib(PROCESS_BYTES)} at once`,
    );
    for (const stream of this.streams) stream.destroy(this.exceeded);
    return false;
  }

  /** The budget's error once it was exceeded in the current run, else undefined. */
  get error(): ReplyTooLargeError | undefined {
    return this.exceeded;
  }

  /**
   * One connect or collection within a fresh budget. A failure after the budget was exceeded is
   * reported as the budget's error (the library only saw its socket close). The bytes are given
   * back to the process-wide budget when it ends: what they were parsed into is garbage by then.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    // Exceeded between runs (a server streaming after its answer): its connection is gone, and that
    // is why this run will fail.
    const before = this.exceeded;
    this.reset();
    try {
      return await work();
    } catch (err) {
      throw this.exceeded ?? before ?? err;
    } finally {
      this.reset();
    }
  }

  private reset(): void {
    processBytes -= this.used;
    this.used = 0;
    this.exceeded = undefined;
  }
}
