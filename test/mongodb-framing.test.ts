/** The MongoDB framing check (src/drivers/mongodb/framing.ts), chunk by chunk. */
import { EventEmitter } from 'node:events';
import { guardFraming, MongoFraming } from '../src/drivers/mongodb/framing';

function message(length: number): Buffer {
  const b = Buffer.alloc(Math.max(length, 16));
  b.writeInt32LE(length, 0);
  return b.subarray(0, Math.max(length, 16));
}

describe('MongoFraming', () => {
  test('whole messages, several per chunk and split anywhere, are accepted', () => {
    const stream = Buffer.concat([message(16), message(300), message(17)]);
    for (let cut = 1; cut < stream.length; cut++) {
      const framing = new MongoFraming();
      expect(framing.feed(stream.subarray(0, cut))).toBeUndefined();
      expect(framing.feed(stream.subarray(cut))).toBeUndefined();
    }
  });

  test.each([0, 1, 15, -1, 48_000_001])('a message of %d bytes is refused', (length) => {
    const head = Buffer.alloc(4);
    head.writeInt32LE(length, 0);
    const framing = new MongoFraming();
    expect(framing.feed(Buffer.concat([message(20), head]))).toMatch(
      new RegExp(`^not a MongoDB reply \\(a message of ${length} bytes`),
    );
  });

  test('a bad length split across chunks is found when its last byte arrives', () => {
    const framing = new MongoFraming();
    expect(framing.feed(Buffer.from([0, 0]))).toBeUndefined();
    expect(framing.feed(Buffer.from([0, 0, 1, 2]))).toMatch(/a message of 0 bytes/);
  });
});

describe('guardFraming', () => {
  test('no listener sees the chunk that breaks the framing, nor anything after it', () => {
    const destroyed: Error[] = [];
    const stream = Object.assign(new EventEmitter(), {
      destroy: (err?: Error) => void destroyed.push(err!),
    });
    guardFraming(stream);
    const seen: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => seen.push(chunk));
    const good = message(16);
    stream.emit('data', good);
    stream.emit('data', Buffer.alloc(16));
    stream.emit('data', good);
    expect(seen).toEqual([good]);
    expect(destroyed.map((e) => e.message)).toEqual([expect.stringMatching(/a message of 0 bytes/)]);
  });
});
