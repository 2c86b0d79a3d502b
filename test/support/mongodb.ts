/**
 * MongoDB test support. No MongoDB server can be installed on the test machines, so the driver is
 * tested on responses in MongoDB's documented formats (test/fixtures/mongodb/*.json, Extended JSON
 * v2, one file per topology case) served by a fake command runner placed behind the REAL driver
 * logic (MongoDriver), in place of the official MongoClient.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BSON, MongoServerError, type Document } from 'mongodb';
import type { MongoConnection, MongoConnectionFactory } from '../../src/drivers/mongodb/driver';
import { toNumber, type MongoResponses } from '../../src/drivers/mongodb/parse';

const FIXTURES = join(__dirname, '..', 'fixtures', 'mongodb');

/** One recorded topology case: each command's reply, or `{"$error": {...}}` for a server error. */
export interface MongoFixture {
  _source: string;
  hello: Document;
  replSetGetStatus: Document;
  serverStatus: Document;
  buildInfo: Document;
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''));
}

/**
 * Loads a fixture. `canonical` keeps $numberLong as bson Long objects; `relaxed` turns them into
 * numbers, as the driver does by default (promoteLongs). Timestamps are bson Timestamps either way,
 * exactly what the official driver hands over.
 */
export function loadFixture(name: string, mode: 'canonical' | 'relaxed' = 'canonical'): MongoFixture {
  const text = readFileSync(join(FIXTURES, `${name}.json`), 'utf8');
  return BSON.EJSON.parse(text, { relaxed: mode === 'relaxed' }) as MongoFixture;
}

/** The server error a fixture's `$error` reply stands for, as the official driver raises it. */
export function serverError(reply: Document): MongoServerError {
  const err = reply.$error as Document;
  // The driver promotes BSON int32s to numbers; canonical Extended JSON keeps them as Int32 objects.
  return new MongoServerError({ ...err, code: toNumber(err.code) });
}

/** The mapper's input for a fixture, as MongoDriver would build it. */
export function responsesOf(fixture: MongoFixture): MongoResponses {
  const status = fixture.replSetGetStatus;
  const err = status.$error as Document | undefined;
  return {
    hello: fixture.hello,
    replSetStatus: err
      ? {
          kind: 'error',
          code: toNumber(err.code)!,
          codeName: err.codeName as string,
          message: err.errmsg as string,
        }
      : { kind: 'status', doc: status },
    serverStatus: fixture.serverStatus,
    buildInfo: fixture.buildInfo,
  };
}

export interface FakeMongo {
  factory: MongoConnectionFactory;
  /** Every command sent, with its database, in order. */
  commands: { db: string; command: Document }[];
  opens: number;
  closes: number;
  /** Replace how a command is answered (default: from the current fixture). */
  answer: (command: Document) => Promise<Document>;
  /** Serve another fixture from now on. */
  use(fixture: MongoFixture): void;
}

/** The first key of a command document is the command's name. */
export function commandName(command: Document): string {
  return Object.keys(command)[0]!;
}

/**
 * A fake connection factory serving a fixture: each command is answered with the fixture's reply,
 * `$error` replies are thrown as MongoServerError, and `isMaster` gets the hello reply.
 */
export function fakeMongo(initial: MongoFixture, ownConnections = 2): FakeMongo {
  let fixture = initial;
  const fake: FakeMongo = {
    commands: [],
    opens: 0,
    closes: 0,
    use(next) {
      fixture = next;
    },
    answer: async (command) => {
      const name = commandName(command);
      const key = name === 'isMaster' ? 'hello' : name;
      const reply = (fixture as unknown as Record<string, Document | undefined>)[key];
      if (!reply)
        throw new MongoServerError({
          ok: 0,
          errmsg: `no such cmd: ${name}`,
          code: 59,
          codeName: 'CommandNotFound',
        });
      if (reply.$error) throw serverError(reply);
      return reply;
    },
    factory: () => {
      let open = false;
      const connection: MongoConnection = {
        ownConnections,
        async open() {
          fake.opens++;
          open = true;
        },
        async runCommand(db, command) {
          if (!open) throw new Error('fake connection is closed');
          fake.commands.push({ db, command });
          return fake.answer(command);
        },
        async close() {
          fake.closes++;
          open = false;
        },
      };
      return connection;
    },
  };
  return fake;
}
