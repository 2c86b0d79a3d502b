/**
 * A rendered exposition made ready to be written as it is, many times: the bytes, their ETag and the
 * HTTP headers, and (on the first scrape that asks for it) the gzip bytes with theirs. Built once per
 * render of the response cache (http/metrics.ts), so a scrape of an unchanged answer converts, hashes
 * and compresses nothing: under 50 concurrent scrapers, per-request string-to-Buffer copies, SHA-1
 * ETags and gzip were most of the CPU and of the garbage that lifted the resident size.
 *
 * The headers are the ones Express sends for the same body (Content-Type, Vary, Content-Length, weak
 * ETag, Content-Encoding), so an answer does not depend on which path served it.
 */
import { createHash } from 'node:crypto';
import { gzip } from 'node:zlib';
import type { ContentType } from './exposition';

/** Express's default weak ETag (the `etag` package): length in hex and the SHA-1 of the bytes. */
export function weakEtag(body: Buffer): string {
  const hash = createHash('sha1').update(body).digest('base64').substring(0, 27);
  return `W/"${body.length.toString(16)}-${hash}"`;
}

/** The bytes of one encoding of the answer, with the headers to send before them (name, value, ...). */
export interface PreparedBody {
  bytes: Buffer;
  etag: string;
  headers: string[];
}

function prepare(bytes: Buffer, contentType: ContentType, encoding?: 'gzip'): PreparedBody {
  const etag = weakEtag(bytes);
  const headers = ['Content-Type', contentType, 'Vary', 'Accept, Accept-Encoding'];
  if (encoding) headers.push('Content-Encoding', encoding);
  headers.push('Content-Length', String(bytes.length), 'ETag', etag);
  return { bytes, etag, headers };
}

/** Whether an Accept-Encoding header accepts gzip (the same test as before: the word `gzip`). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  return acceptEncoding !== undefined && /\bgzip\b/.test(acceptEncoding);
}

export class PreparedExposition {
  readonly identity: PreparedBody;
  private gzipped?: Promise<PreparedBody>;
  /** Set once the gzip bytes exist: a scrape then writes them without waiting a turn. */
  gzipReady?: PreparedBody;

  constructor(
    readonly text: string,
    readonly contentType: ContentType,
  ) {
    this.identity = prepare(Buffer.from(text, 'utf8'), contentType);
  }

  /** The gzip encoding, compressed off the event loop on first use and kept with this answer. */
  gzip(): Promise<PreparedBody> {
    this.gzipped ??= new Promise<PreparedBody>((resolve, reject) => {
      gzip(this.identity.bytes, (err, bytes) => {
        if (err) {
          this.gzipped = undefined;
          reject(err);
          return;
        }
        this.gzipReady = prepare(bytes, this.contentType, 'gzip');
        resolve(this.gzipReady);
      });
    });
    return this.gzipped;
  }
}
