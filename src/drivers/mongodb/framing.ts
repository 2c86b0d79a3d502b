/**
 * A check on the framing of what a MongoDB server sends, run on each chunk before the official
 * driver sees it.
 *
 * Every wire-protocol message starts with its total length as an int32 (little-endian), header
 * included, so it is at least 16 bytes; a server never sends more than maxMessageSizeBytes (48 MB).
 * The official driver (6.x, SizedMessageTransform) loops while bytes are buffered and reads one
 * message of the announced length per turn: an announced length of 0 reads nothing, so it loops
 * forever, synchronously, pushing empty messages until the process runs out of memory. Anything that
 * is not a MongoDB server can send such bytes (another datastore's port given by mistake, or an
 * address reached through /probe), so a length outside the protocol's bounds ends the connection.
 */

/** A message header is 16 bytes: length, requestID, responseTo, opCode. */
const HEADER_BYTES = 16;
/** The server's maxMessageSizeBytes (the same on every MongoDB version since 2.4). */
const MAX_MESSAGE_BYTES = 48_000_000;

export class MongoFraming {
  /** Bytes of the current message still to come after its length field. */
  private remaining = 0;
  /** The first bytes of a length field split across chunks. */
  private partialLength: Buffer = Buffer.alloc(0);

  /** Follows the messages in `chunk`; says what is wrong when a length is outside the protocol. */
  feed(chunk: Buffer): string | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const skipped = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= skipped;
        offset += skipped;
        continue;
      }
      const wanted = 4 - this.partialLength.length;
      const piece = chunk.subarray(offset, offset + wanted);
      offset += piece.length;
      this.partialLength = Buffer.concat([this.partialLength, piece]);
      if (this.partialLength.length < 4) break;
      const length = this.partialLength.readInt32LE(0);
      this.partialLength = Buffer.alloc(0);
      if (length < HEADER_BYTES || length > MAX_MESSAGE_BYTES) {
        return `not a MongoDB reply (a message of ${length} bytes; the protocol allows ${HEADER_BYTES} to ${MAX_MESSAGE_BYTES})`;
      }
      this.remaining = length - 4;
    }
    return undefined;
  }
}

/** What guardFraming needs of a socket. */
export interface FramedStream {
  emit(event: string | symbol, ...args: unknown[]): boolean;
  destroy(error?: Error): unknown;
}

/**
 * Checks every chunk `stream` emits before any listener sees it, and destroys the stream instead of
 * emitting a chunk that breaks the framing. It must wrap `emit` itself: the driver pipes the socket
 * into its parser, and a listener of ours would run in the same emit as the pipe, too late to stop it.
 */
export function guardFraming(stream: FramedStream): void {
  const framing = new MongoFraming();
  const emit = stream.emit.bind(stream);
  let broken = false;
  stream.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'data' && !broken) {
      const chunk = args[0];
      const problem = Buffer.isBuffer(chunk) ? framing.feed(chunk) : undefined;
      if (problem) {
        broken = true;
        stream.destroy(new Error(problem));
        return false;
      }
    } else if (event === 'data') {
      return false;
    }
    return emit(event, ...args);
  };
}
