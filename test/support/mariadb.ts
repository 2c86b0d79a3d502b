/**
 * Real MariaDB servers for tests: a binlog primary, a GTID replica and a delayed GTID replica, each a
 * mariadbd in the foreground (we hold its PID) in its own temporary datadir, on a free loopback port.
 * Grant tables are real (no --skip-grant-tables): the exporter logs in as a least-privilege user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { freePorts, requireBinary, startProcess, tempDir, waitFor, type ServerProcess } from './processes';

export const MARIADBD = '/usr/sbin/mariadbd';
export const MARIADB_INSTALL_DB = '/usr/bin/mariadb-install-db';
export const MARIADB_CLI = '/usr/bin/mariadb';

/** The least-privilege monitoring user of docs/mysql.md, and the password the exporter reads from a file. */
export const EXPORTER_USER = 'exporter';
export const EXPORTER_PASSWORD = 'Xp0rt-s3cret-Pw_7341';
export const EXPORTER_GRANT = 'SLAVE MONITOR';
/** A user for the tests' own write load over TCP (root logs in by unix_socket only). */
export const TESTER_USER = 'tester';
export const TESTER_PASSWORD = 'tester-pw';
const REPL_USER = 'repl';
const REPL_PASSWORD = 'repl-pw';

export interface MariadbNode {
  port: number;
  serverId: number;
  dir: string;
  socket: string;
  process: ServerProcess;
  /** A mariadb:// URL for the exporter user, without password (it comes from passwordFile). */
  url: string;
  /** A file holding EXPORTER_PASSWORD, for --target.password-file. */
  passwordFile: string;
  /** Runs statements as root over the socket with the mariadb CLI; rows as column -> text ('NULL' for NULL). */
  sql(statements: string): Record<string, string>[];
  /** One value of the first row of a query (e.g. 'SELECT @@server_id'). */
  value(query: string): string;
  globalStatus(name: string): number;
  /** SHOW SLAVE STATUS's single row, or undefined when no replication is configured. */
  replicaStatus(): Record<string, string> | undefined;
  /** A mysql2 connection as TESTER_USER over TCP (for steady write loads). */
  connectTester(): Promise<Connection>;
  kill(): Promise<void>;
  /** Start again on the same port and datadir, e.g. after kill(). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Parses the CLI's --batch output: a tab-separated header, then rows with \t \n \\ escaped. */
function parseBatch(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.length === 0) return [];
  const unescape = (s: string): string =>
    s.replace(/\\(.)/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === '0' ? '\0' : c));
  const header = lines[0]!.split('\t');
  return lines.slice(1).map((line) => {
    const cells = line.split('\t');
    return Object.fromEntries(header.map((h, i) => [h, unescape(cells[i] ?? '')]));
  });
}

export async function startMariadb(
  port: number,
  serverId: number,
  extraArgs: string[] = [],
): Promise<MariadbNode> {
  requireBinary(MARIADBD, 'the Debian package mariadb-server');
  requireBinary(MARIADB_INSTALL_DB, 'the Debian package mariadb-server');
  requireBinary(MARIADB_CLI, 'the Debian package mariadb-client');
  const dir = tempDir(`mariadb-${port}`);
  const datadir = join(dir.path, 'data');
  const socket = join(dir.path, 'mariadbd.sock');
  // Small InnoDB files keep the datadir (and its set-up) small and fast. Each server its own tmpdir:
  // datadirs created in parallel in a shared /tmp collide on their temporary table names.
  const common = [`--tmpdir=${dir.path}`, '--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M'];
  // Asynchronous, so that several servers' datadirs are created in parallel.
  await promisify(execFile)(MARIADB_INSTALL_DB, [
    '--no-defaults',
    `--datadir=${datadir}`,
    '--user=root',
    '--auth-root-authentication-method=socket',
    '--skip-test-db',
    ...common,
  ]).catch((err: unknown) => {
    dir.remove();
    throw err;
  });
  const args = [
    '--no-defaults',
    `--datadir=${datadir}`,
    '--user=root',
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${socket}`,
    `--pid-file=${join(dir.path, 'mariadbd.pid')}`,
    '--skip-name-resolve',
    `--server-id=${serverId}`,
    '--log-bin=binlog',
    '--relay-log=relay-bin',
    '--log-slave-updates',
    '--gtid-strict-mode=1',
    '--binlog-format=MIXED',
    // Tests need speed, not durability.
    '--innodb-flush-log-at-trx-commit=2',
    '--sync-binlog=0',
    '--max-connections=40',
    ...common,
    ...extraArgs,
  ];
  const passwordFile = join(dir.path, 'exporter-password');
  writeFileSync(passwordFile, `${EXPORTER_PASSWORD}\n`, { mode: 0o600 });

  const cli = (statements: string): string =>
    execFileSync(
      MARIADB_CLI,
      ['--no-defaults', `--socket=${socket}`, '-uroot', '--batch', '-e', statements],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );

  const node: MariadbNode = {
    port,
    serverId,
    dir: dir.path,
    socket,
    process: startProcess(MARIADBD, args),
    url: `mariadb://${EXPORTER_USER}@127.0.0.1:${port}`,
    passwordFile,
    sql: (statements) => parseBatch(cli(statements)),
    value(query) {
      const row = node.sql(query)[0];
      if (!row) throw new Error(`no row for ${query}`);
      return Object.values(row)[0]!;
    },
    globalStatus: (name) => Number(node.sql(`SHOW GLOBAL STATUS LIKE '${name}'`)[0]?.['Value'] ?? NaN),
    replicaStatus: () => node.sql('SHOW SLAVE STATUS')[0],
    connectTester: () =>
      createConnection({ host: '127.0.0.1', port, user: TESTER_USER, password: TESTER_PASSWORD }),
    async kill() {
      await node.process.kill();
    },
    async restart() {
      node.process = startProcess(MARIADBD, args);
      await waitReady();
    },
    async stop() {
      await node.process.stop();
      dir.remove();
    },
  };
  const waitReady = (): Promise<unknown> =>
    waitFor(`mariadbd on port ${port}`, () => {
      if (node.process.exited()) throw new Error(`mariadbd exited: ${node.process.output().slice(-1500)}`);
      cli('SELECT 1');
      return true;
    });
  try {
    await waitReady();
  } catch (err) {
    await node.stop();
    throw err;
  }
  return node;
}

export interface MariadbReplication {
  primary: MariadbNode;
  replica: MariadbNode;
  delayed: MariadbNode;
  delaySeconds: number;
  stop(): Promise<void>;
}

/** CHANGE MASTER TO the primary with GTID (slave_pos) and START SLAVE. */
export function replicate(replica: MariadbNode, primary: MariadbNode, delaySeconds = 0): void {
  replica.sql(
    `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='${REPL_USER}', ` +
      `MASTER_PASSWORD='${REPL_PASSWORD}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, ` +
      `MASTER_DELAY=${delaySeconds}; START SLAVE`,
  );
}

/** Until the replica has applied everything the primary has in its binlog. */
export async function waitCaughtUp(
  replica: MariadbNode,
  primary: MariadbNode,
  timeoutMs = 20000,
): Promise<void> {
  const target = primary.value('SELECT @@gtid_binlog_pos');
  await waitFor(
    `replica ${replica.port} at ${target}`,
    () => replica.value('SELECT @@gtid_slave_pos') === target,
    timeoutMs,
    100,
  );
}

/**
 * A primary, a GTID replica and a replica with MASTER_DELAY = delaySeconds. The users (replication,
 * exporter, tester) and a test table are created on the primary and replicate to both replicas.
 */
export async function startMariadbReplication(delaySeconds: number): Promise<MariadbReplication> {
  const [p, r, d] = await freePorts(3);
  const started = await Promise.allSettled([startMariadb(p!, 1), startMariadb(r!, 2), startMariadb(d!, 3)]);
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = async (): Promise<void> => void (await Promise.all(nodes.map((n) => n.stop())));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    // Never leave a started server behind when the topology cannot be built.
    await stopAll();
    throw failed.reason;
  }
  const [primary, replica, delayed] = nodes as [MariadbNode, MariadbNode, MariadbNode];
  try {
    await setUpReplication(primary, replica, delayed, delaySeconds);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { primary, replica, delayed, delaySeconds, stop: stopAll };
}

async function setUpReplication(
  primary: MariadbNode,
  replica: MariadbNode,
  delayed: MariadbNode,
  delaySeconds: number,
): Promise<void> {
  primary.sql(
    [
      `CREATE USER '${REPL_USER}'@'127.0.0.1' IDENTIFIED BY '${REPL_PASSWORD}'`,
      `GRANT REPLICATION SLAVE ON *.* TO '${REPL_USER}'@'127.0.0.1'`,
      `CREATE USER '${EXPORTER_USER}'@'127.0.0.1' IDENTIFIED BY '${EXPORTER_PASSWORD}'`,
      `GRANT ${EXPORTER_GRANT} ON *.* TO '${EXPORTER_USER}'@'127.0.0.1'`,
      `CREATE USER '${TESTER_USER}'@'127.0.0.1' IDENTIFIED BY '${TESTER_PASSWORD}'`,
      `GRANT ALL ON *.* TO '${TESTER_USER}'@'127.0.0.1'`,
      'CREATE DATABASE app',
      'CREATE TABLE app.events (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))',
    ].join('; '),
  );
  replicate(replica, primary);
  // Caught up without delay first (set-up need not wait), then delayed from here on.
  replicate(delayed, primary);
  await Promise.all([waitCaughtUp(replica, primary), waitCaughtUp(delayed, primary)]);
  delayed.sql(`STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=${delaySeconds}; START SLAVE`);
}
