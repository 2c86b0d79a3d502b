/**
 * Plain HTTP GETs to one monitoring endpoint of the local node (NATS monitoring, RabbitMQ's management
 * and Prometheus plugins), for drivers that need no client library: one kept-alive socket
 * (maxSockets 1, so a dead node costs one socket, not a growing pile), a deadline per request, the
 * driver's read budget on every reply body (drivers/shared/read-budget.ts), and close() abandoning
 * whatever is in flight (a hung node must not keep a request queued).
 */
import http from 'node:http';
import type { ReadBudget } from './read-budget';

/** Abort reasons, so a failed request says whether the deadline or close() ended it. */
const TIMED_OUT = Symbol('timed out');
const CLOSED = Symbol('closed');

export interface HttpReply {
  status: number;
  body: string;
}

export interface HttpGetterOptions {
  host: string;
  port: number;
  /** Names the endpoint in error messages, e.g. 'nats monitoring'. */
  label: string;
  /** Counts every reply body; past it the request is destroyed, not buffered. */
  budget: ReadBudget;
  /** Sent as HTTP basic auth when set. Never logged. */
  auth?: { username: string; password: string };
}

export class HttpGetter {
  private agent?: http.Agent;
  private readonly inFlight = new Set<AbortController>();

  constructor(private readonly opts: HttpGetterOptions) {}

  /** A fresh socket pool; any previous one is dropped with what it had in flight. */
  open(): void {
    this.close();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  }

  close(): void {
    for (const controller of this.inFlight) controller.abort(CLOSED);
    this.inFlight.clear();
    this.agent?.destroy();
    this.agent = undefined;
  }

  /**
   * GET `path` within `timeoutMs`. A kept-alive socket that the server closed while idle fails on
   * reuse with ECONNRESET: that request never reached the server, so it is sent once more.
   */
  async get(path: string, timeoutMs: number): Promise<HttpReply> {
    try {
      return await this.getOnce(path, timeoutMs);
    } catch (err) {
      if (!(err as { reusedSocket?: boolean }).reusedSocket) throw err;
      return this.getOnce(path, timeoutMs);
    }
  }

  private getOnce(path: string, timeoutMs: number): Promise<HttpReply> {
    const agent = this.agent;
    const { host, port, label, budget, auth } = this.opts;
    if (!agent) return Promise.reject(new Error(`${label} connection is not open`));
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(TIMED_OUT), timeoutMs);
    timer.unref();
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json, text/plain' };
    if (auth) {
      headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    }
    return new Promise<HttpReply>((resolve, reject) => {
      const req = http.request({
        agent,
        host,
        port,
        method: 'GET',
        path,
        headers,
        signal: controller.signal,
      });
      const fail = (err: Error): void => {
        const reason: unknown = controller.signal.reason;
        if (reason === TIMED_OUT) reject(new Error(`${label} ${path} timed out after ${timeoutMs} ms`));
        else if (reason === CLOSED) reject(new Error(`${label} ${path} abandoned: connection closed`));
        else if (req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET')
          reject(Object.assign(err, { reusedSocket: true }));
        else reject(new Error(`${label} ${path}: ${err.message}`));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          if (budget.take(chunk.length)) chunks.push(chunk);
          else req.destroy(budget.error);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', fail);
      });
      req.end();
    }).finally(() => {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    });
  }
}
