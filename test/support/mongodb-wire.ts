/**
 * A MongoDB wire-protocol STUB for tests: a TCP server on loopback that answers the official driver
 * with a fixture's replies (test/fixtures/mongodb), so the real MongoClient (handshake, server
 * monitoring, connection pool, error decoding) runs end to end without a MongoDB server, which
 * cannot be installed on the test machines. It is not a database: it knows the handshake (OP_QUERY
 * `isMaster`, answered with OP_REPLY), and answers every OP_MSG command from the fixture, `{ok: 1}`
 * for commands the fixture lacks (ping, endSessions), and `$error` replies as `{ok: 0, code...}`.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BSON, type Document } from 'mongodb';
import type { MongoFixture } from './mongodb';
import { toNumber } from '../../src/drivers/mongodb/parse';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;

export interface MongoStub {
  port: number;
  /** Commands received over OP_MSG, in order (handshakes excluded). */
  commands: string[];
  /** Connections currently open to the stub. */
  openConnections(): number;
  /** Serve another fixture from now on. */
  use(fixture: MongoFixture): void;
  /** Commands received but never answered (a node hung mid-collection), until removed again. */
  hang: Set<string>;
  close(): Promise<void>;
}

function replyFor(fixture: MongoFixture, command: Document): Document {
  const name = Object.keys(command)[0]!;
  const key = name === 'isMaster' || name === 'ismaster' ? 'hello' : name;
  const reply = (fixture as unknown as Record<string, Document | undefined>)[key];
  if (!reply) return { ok: 1 };
  const err = reply.$error as Document | undefined;
  if (err) return { ...err, code: toNumber(err.code), ok: 0 };
  if (key === 'hello') {
    // What every server answers to a handshake that offers helloOk (4.4.2+); the legacy field name too.
    return { ...reply, helloOk: true, ismaster: reply.isWritablePrimary ?? reply.ismaster ?? false };
  }
  return reply;
}

function header(length: number, requestId: number, responseTo: number, opCode: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(length, 0);
  b.writeInt32LE(requestId, 4);
  b.writeInt32LE(responseTo, 8);
  b.writeInt32LE(opCode, 12);
  return b;
}

function opMsgReply(requestId: number, responseTo: number, doc: Document): Buffer {
  const body = Buffer.from(BSON.serialize(doc));
  const flagsAndKind = Buffer.from([0, 0, 0, 0, 0]);
  return Buffer.concat([header(16 + 5 + body.length, requestId, responseTo, OP_MSG), flagsAndKind, body]);
}

function opReply(requestId: number, responseTo: number, doc: Document): Buffer {
  const body = Buffer.from(BSON.serialize(doc));
  const fields = Buffer.alloc(20); // responseFlags, cursorID (8), startingFrom, numberReturned
  fields.writeInt32LE(1, 16);
  return Buffer.concat([header(16 + 20 + body.length, requestId, responseTo, OP_REPLY), fields, body]);
}

/** The body document of an OP_MSG (section kind 0); document sequences (kind 1) are skipped. */
function opMsgBody(message: Buffer): { flags: number; body: Document } {
  const flags = message.readUInt32LE(16);
  let at = 20;
  let body: Document = {};
  while (at < message.length) {
    const kind = message[at]!;
    at += 1;
    const size = message.readInt32LE(at);
    if (kind === 0) body = BSON.deserialize(message.subarray(at, at + size));
    at += size;
  }
  return { flags, body };
}

/** The query document of an OP_QUERY: after flags and the NUL-terminated collection name, two int32s. */
function opQueryBody(message: Buffer): Document {
  const nameEnd = message.indexOf(0, 20);
  const at = nameEnd + 1 + 8;
  const size = message.readInt32LE(at);
  return BSON.deserialize(message.subarray(at, at + size));
}

export async function startMongoStub(initial: MongoFixture): Promise<MongoStub> {
  let fixture = initial;
  let nextId = 1;
  const commands: string[] = [];
  const hang = new Set<string>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= pending.readInt32LE(0)) {
        const message = pending.subarray(0, pending.readInt32LE(0));
        pending = pending.subarray(message.length);
        const requestId = message.readInt32LE(4);
        const opCode = message.readInt32LE(12);
        if (opCode === OP_QUERY) {
          socket.write(opReply(nextId++, requestId, replyFor(fixture, opQueryBody(message))));
        } else if (opCode === OP_MSG) {
          const { flags, body } = opMsgBody(message);
          const name = Object.keys(body)[0]!;
          commands.push(name);
          if (!(flags & MORE_TO_COME) && !hang.has(name))
            socket.write(opMsgReply(nextId++, requestId, replyFor(fixture, body)));
        } else {
          socket.destroy();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    commands,
    hang,
    openConnections: () => sockets.size,
    use(next) {
      fixture = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
