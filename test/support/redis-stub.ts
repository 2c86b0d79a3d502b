/**
 * A RESP2 STUB for tests of server versions that cannot be installed here (Debian ships Redis 7.0
 * only: no Redis 7.2+, no Valkey): a TCP server on loopback that answers the real node-redis client
 * with canned replies in the documented formats. It is not a database: it parses RESP arrays of bulk
 * strings, answers each command from `replies` (keyed by the upper-cased command and subcommand, e.g.
 * 'CLUSTER MYSHARDID', or by the command alone, e.g. 'INFO'), 'OK' to CLIENT ... (the connection
 * handshake) and READONLY, an empty string to SUBSTR (the heartbeat key every exporter reads, missing
 * here), and an unknown-command error to anything else.
 */
import { createServer, type Server, type Socket } from 'node:net';

/** A reply: a bulk string, an error (Error's message is sent as is, e.g. 'ERR ...'), or nil. */
export type StubReply = string | Error | null;

export interface RedisStub {
  port: number;
  url: string;
  /** Commands received, upper-cased command (and subcommand), in order. */
  commands: string[];
  replies: Map<string, StubReply>;
  close(): Promise<void>;
}

function encode(reply: StubReply): string {
  if (reply === null) return '$-1\r\n';
  if (reply instanceof Error) return `-${reply.message}\r\n`;
  return `$${Buffer.byteLength(reply)}\r\n${reply}\r\n`;
}

/** Parses complete RESP arrays of bulk strings from `buf`; returns them and the unparsed rest. */
function parseRequests(buf: Buffer): { requests: string[][]; rest: Buffer } {
  const requests: string[][] = [];
  let pos = 0;
  const line = (): string | undefined => {
    const end = buf.indexOf('\r\n', pos);
    if (end < 0) return undefined;
    const text = buf.subarray(pos, end).toString();
    pos = end + 2;
    return text;
  };
  for (;;) {
    const start = pos;
    const header = line();
    if (header === undefined) break;
    if (!header.startsWith('*')) throw new Error(`stub: not a RESP array: ${header}`);
    const args: string[] = [];
    let complete = true;
    for (let i = 0; i < Number(header.slice(1)); i++) {
      const len = line();
      if (len === undefined || pos + Number(len.slice(1)) + 2 > buf.length) {
        complete = false;
        break;
      }
      args.push(buf.subarray(pos, pos + Number(len.slice(1))).toString());
      pos += Number(len.slice(1)) + 2;
    }
    if (!complete) {
      pos = start;
      break;
    }
    requests.push(args);
  }
  return { requests, rest: buf.subarray(pos) };
}

export async function startRedisStub(replies: Record<string, StubReply>): Promise<RedisStub> {
  const sockets = new Set<Socket>();
  const stub: Omit<RedisStub, 'port' | 'url' | 'close'> = {
    commands: [],
    replies: new Map(Object.entries(replies)),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      const { requests, rest } = parseRequests(Buffer.concat([pending, data]));
      pending = rest;
      for (const args of requests) {
        const command = args[0]!.toUpperCase();
        const withSub = args.length > 1 ? `${command} ${args[1]!.toUpperCase()}` : command;
        stub.commands.push(withSub);
        const reply = stub.replies.has(withSub)
          ? stub.replies.get(withSub)!
          : stub.replies.has(command)
            ? stub.replies.get(command)!
            : command === 'CLIENT' || command === 'READONLY'
              ? 'OK'
              : command === 'SUBSTR'
                ? '' // a missing key, as Redis answers it: every exporter reads the heartbeat key
                : new Error(`ERR unknown command '${args[0]}'`);
        socket.write(encode(reply));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    ...stub,
    port,
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
