/**
 * In-process stubs that replay recorded replies (test/fixtures/<driver>/replies.json), for the
 * golden exposition files: an HTTP server answering `METHOD /path?query` with what the real server
 * answered, and a ZooKeeper four-letter-word server. Anything not recorded is a 404 / a closed
 * connection, so a driver that starts asking something new fails loudly.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';

export interface RecordedHttpReply {
  status: number;
  contentType: string;
  body: string;
}

export interface Replay {
  port: number;
  /** Requests answered so far, as `METHOD /path?query` (or the four-letter word). */
  requests: string[];
  close(): Promise<void>;
}

async function listen(server: Server, sockets: Set<Socket>, requests: string[]): Promise<Replay> {
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Serves `replies` keyed by `METHOD /path?query` (request bodies are read and ignored). */
export function startHttpReplay(replies: Record<string, RecordedHttpReply>): Promise<Replay> {
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = `${req.method} ${req.url}`;
      requests.push(key);
      const reply = replies[key];
      if (reply === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end(`not recorded: ${key}\n`);
        return;
      }
      res.writeHead(reply.status, { 'content-type': reply.contentType });
      res.end(reply.body);
    });
  });
  return listen(server, new Set(), requests);
}

/** Answers each recorded four-letter word, then closes the connection as ZooKeeper does. */
export function startFourLetterReplay(replies: Record<string, string>): Promise<Replay> {
  const requests: string[] = [];
  const server = createTcpServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (d: Buffer) => {
      const word = d.toString('utf8', 0, 4);
      requests.push(word);
      socket.end(replies[word] ?? '');
    });
  });
  return listen(server, new Set(), requests);
}
