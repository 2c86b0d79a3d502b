/**
 * Real PostgreSQL servers for tests: a primary made with initdb and physical streaming standbys made
 * with pg_basebackup -R, each a foreground `postgres` process run as the `postgres` user (PostgreSQL
 * refuses root), on free loopback ports, with data and sockets in one temp directory.
 *
 * The suite talks to the servers as the superuser over the Unix socket (trust) through psql; the
 * exporter under test connects over TCP, where the cluster demands a password (scram-sha-256).
 */
import { execFileSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { requireBinary, sleep, startProcess, tempDir, waitFor, type ServerProcess } from './processes';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const POSTGRES = join(PG_BIN, 'postgres');
const INITDB = join(PG_BIN, 'initdb');
const PG_BASEBACKUP = join(PG_BIN, 'pg_basebackup');
const PSQL = join(PG_BIN, 'psql');

const OS_USER = 'postgres';

export interface PgNode {
  name: string;
  port: number;
  dataDir: string;
  /** Directory of the server's Unix socket (the cluster's temp root). */
  socketDir: string;
  process: ServerProcess;
  /** One statement (or several separated by ';') via psql as the superuser; trimmed unaligned output. */
  psql(sql: string): string;
  /** A pg.Client connected as the superuser over the Unix socket (for load and held sessions). */
  connect(): Promise<Client>;
  /** Fast shutdown (SIGINT): disconnects sessions, then exits. */
  stop(): Promise<void>;
  /** SIGKILL the postmaster and every child at once: a crash, as the OOM killer would do it. */
  kill(): Promise<void>;
  /** Start the same node again (same port, data and settings), e.g. after kill(). */
  restart(): Promise<void>;
}

export interface PgCluster {
  primary: PgNode;
  standbys: PgNode[];
  root: string;
  stop(): Promise<void>;
}

function asPostgres(command: string, args: string[], cwd: string): string {
  return execFileSync(
    'setpriv',
    ['--reuid', OS_USER, '--regid', OS_USER, '--init-groups', '--', command, ...args],
    { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

function ownedByPostgres(path: string): void {
  const uid = Number(execFileSync('id', ['-u', OS_USER], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', OS_USER], { encoding: 'utf8' }));
  chownSync(path, uid, gid);
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Settings given on the command line: they win over postgresql.conf (copied to standbys). */
function serverArgs(dataDir: string, socketDir: string, port: number, settings: Record<string, string>) {
  const all: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    // Test speed: durability is not under test.
    fsync: 'off',
    shared_buffers: '16MB',
    max_connections: '40',
    // Autovacuum's ANALYZE writes pg_statistic rows, which pg_stat_database counts as writes: off, so
    // "reads do not move last-op" and exact write counts are deterministic.
    autovacuum: 'off',
    // A standby retries streaming after 1 s instead of 5 s (tests stop and redirect primaries).
    wal_retrieve_retry_interval: '1s',
    ...settings,
  };
  return ['-D', dataDir, ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
}

function makeNode(
  name: string,
  root: string,
  dataDir: string,
  port: number,
  settings: Record<string, string>,
): PgNode {
  const args = serverArgs(dataDir, root, port, settings);
  const node: PgNode = {
    name,
    port,
    dataDir,
    socketDir: root,
    process: startProcess(POSTGRES, args, { user: OS_USER, cwd: root }),
    psql(sql) {
      return execFileSync(
        PSQL,
        [
          '-XAtq',
          '-v',
          'ON_ERROR_STOP=1',
          '-h',
          root,
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          'postgres',
        ],
        { input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] },
      ).trim();
    },
    async connect() {
      const client = new Client({ host: root, port, user: 'postgres', database: 'postgres' });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    async stop() {
      if (node.process.exited()) return;
      node.process.resume();
      process.kill(node.process.pid, 'SIGINT');
      await node.process.stop(10000);
    },
    async kill() {
      const children = childPids(node.process.pid);
      await node.process.kill();
      for (const pid of children) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      // The old processes must be gone before a restart can attach the shared memory again.
      await waitFor(`${name}'s old processes to exit`, () => children.every((pid) => !alive(pid)), 10000, 50);
    },
    async restart() {
      node.process = startProcess(POSTGRES, args, { user: OS_USER, cwd: root });
      await waitReady(node);
    },
  };
  return node;
}

async function waitReady(node: PgNode): Promise<void> {
  await waitFor(
    `postgres ${node.name} on port ${node.port}`,
    () => {
      if (node.process.exited()) {
        throw new Error(`postgres ${node.name} exited: ${node.process.output().slice(-1500)}`);
      }
      return node.psql('SELECT 1') === '1';
    },
    30000,
    100,
  );
}

/** Waits until a standby's WAL receiver streams from its primary. */
export async function waitStreaming(node: PgNode, timeoutMs = 20000): Promise<void> {
  await waitFor(
    `${node.name} streaming`,
    () => node.psql('SELECT status FROM pg_stat_wal_receiver') === 'streaming',
    timeoutMs,
    100,
  );
}

/** Waits until a standby has replayed everything its primary has written so far. */
export async function waitReplayed(primary: PgNode, standby: PgNode, timeoutMs = 20000): Promise<void> {
  const target = primary.psql('SELECT pg_current_wal_lsn()');
  await waitFor(
    `${standby.name} to replay up to ${target}`,
    () => standby.psql(`SELECT pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`) === 't',
    timeoutMs,
    100,
  );
}

export interface StandbySpec {
  name: string;
  port: number;
  settings?: Record<string, string>;
}

/**
 * A primary (initdb) and standbys (pg_basebackup -R from it, streaming over the Unix socket), all
 * started and streaming before this resolves. `setup` runs on the primary before the base backups,
 * so its roles and tables exist on every node.
 */
export async function startPgCluster(options: {
  primaryPort: number;
  primarySettings?: Record<string, string>;
  standbys: StandbySpec[];
  setup?: string;
}): Promise<PgCluster> {
  for (const bin of [POSTGRES, INITDB, PG_BASEBACKUP, PSQL]) {
    requireBinary(bin, 'the Debian package postgresql (15)');
  }
  const dir = tempDir('pg');
  ownedByPostgres(dir.path);
  const started: PgNode[] = [];
  const stopAll = async (): Promise<void> => {
    // Standbys first: a primary's fast shutdown waits for its WAL senders to deliver.
    for (const node of [...started].reverse()) await node.stop();
    dir.remove();
  };
  try {
    const primaryDir = join(dir.path, 'primary');
    asPostgres(
      INITDB,
      ['-D', primaryDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-N'],
      dir.path,
    );
    const primary = makeNode(
      'primary',
      dir.path,
      primaryDir,
      options.primaryPort,
      options.primarySettings ?? {},
    );
    started.push(primary);
    await waitReady(primary);
    if (options.setup) primary.psql(options.setup);

    const standbys: PgNode[] = [];
    for (const spec of options.standbys) {
      const dataDir = join(dir.path, spec.name);
      asPostgres(
        PG_BASEBACKUP,
        [
          '-h',
          dir.path,
          '-p',
          String(primary.port),
          '-U',
          'postgres',
          '-D',
          dataDir,
          '-R',
          '-c',
          'fast',
          '-N',
        ],
        dir.path,
      );
      const standby = makeNode(spec.name, dir.path, dataDir, spec.port, spec.settings ?? {});
      started.push(standby);
      standbys.push(standby);
    }
    for (const standby of standbys) {
      await waitReady(standby);
      await waitStreaming(standby);
    }
    return { primary, standbys, root: dir.path, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Runs `INSERT`s on the primary every `everyMs` until stopped: a steady write load. */
export function steadyWrites(client: Client, sql: string, everyMs: number): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await client.query(sql);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}
