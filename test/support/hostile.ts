/**
 * A hostile server for tests: on the datastore's port, it answers with a never-ending reply in the
 * datastore's own framing (a header that announces more than will ever come, then filler, as fast
 * as the client reads), so that a client library that buffers until a reply is complete would buffer
 * forever. Plain TCP, or TLS with a given key and certificate.
 *
 * It runs in a child process, so that the stream it writes does not compete with the exporter under
 * test for this process's event loop, and so that it can write at full speed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** How each protocol's never-ending reply starts (the rest is filler). */
export type HostileProtocol =
  | 'redis' // `+` then a simple string that never reaches \r\n
  | 'postgresql' // a NoticeResponse announcing 2 GiB
  | 'mysql' // the server speaks first: a 16 MiB packet, continued forever
  | 'mongodb' // an OP_MSG header announcing 40 MB
  | 'mongodb-empty' // a header announcing a message of 0 bytes (as non-MongoDB bytes can read)
  | 'kafka' // a response of 2 GiB
  | 'http' // 200, chunked, chunks forever (etcd's JSON gateway and /metrics)
  | 'text'; // raw text forever (ZooKeeper's four-letter words)

export interface HostileServer {
  port: number;
  /** Connections accepted so far. */
  connections(): Promise<number>;
  stop(): Promise<void>;
}

const SERVER_SOURCE = `
const net = require('node:net'), tls = require('node:tls'), fs = require('node:fs');
const [protocol, keyFile, certFile] = process.argv.slice(1);
const filler = Buffer.alloc(64 * 1024, 'a');
const int32le = (n) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };
const int32be = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const HTTP_CHUNK = Buffer.concat([Buffer.from(filler.length.toString(16) + '\\r\\n'), filler, Buffer.from('\\r\\n')]);
const start = {
  redis: () => Buffer.from('+'),
  postgresql: () => Buffer.concat([Buffer.from('N'), int32be(0x7fffffff)]),
  mysql: () => Buffer.from([0xff, 0xff, 0xff, 0x00]),
  // 40 MB: within the protocol's 48 MB bound (a larger length is refused before any read), far over the budget.
  mongodb: () => Buffer.concat([int32le(40000000), int32le(1), int32le(1), int32le(2013)]),
  'mongodb-empty': () => Buffer.concat([int32le(0), int32le(1), int32le(1), int32le(2013)]),
  kafka: () => Buffer.concat([int32be(0x7fffffff), int32be(0)]),
  http: () => Buffer.from('HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n'),
  text: () => Buffer.alloc(0),
}[protocol];
const chunk = protocol === 'http' ? HTTP_CHUNK : filler;
// MySQL servers speak first; the others answer the client's first bytes.
const speaksFirst = protocol === 'mysql';
let connections = 0;
function stream(sock) {
  connections++;
  sock.on('error', () => {});
  let started = false;
  const pump = () => { while (!sock.destroyed && sock.write(chunk)); };
  const go = () => {
    if (started) return;
    started = true;
    sock.write(start());
    pump();
    sock.on('drain', pump);
  };
  if (speaksFirst) go(); else sock.on('data', go);
}
const server = keyFile
  ? tls.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, stream)
  : net.createServer(stream);
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
process.stdin.on('data', () => process.stdout.write(JSON.stringify({ connections }) + '\\n'));
process.stdin.on('end', () => process.exit(0));
`;

export async function startHostileServer(
  protocol: HostileProtocol,
  tlsFiles?: { key: string; cert: string },
): Promise<HostileServer> {
  const args = ['-e', SERVER_SOURCE, protocol, ...(tlsFiles ? [tlsFiles.key, tlsFiles.cert] : [])];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const replies: ((value: Record<string, number>) => void)[] = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      replies.shift()?.(JSON.parse(line) as Record<string, number>);
    }
  });
  const next = (): Promise<Record<string, number>> => new Promise((resolve) => replies.push(resolve));
  const { port } = await next();
  return {
    port: port!,
    async connections() {
      const reply = next();
      child.stdin!.write('?');
      return (await reply).connections!;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin!.end();
      child.kill('SIGKILL');
      await exited;
    },
  };
}
