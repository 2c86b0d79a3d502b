/**
 * Starting and stopping real server processes for tests. A missing binary is an error (the test
 * FAILS, never skips): a skipped test would hide a missing install step in .ci/run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (the OS picks it; closed again before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Several distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a truthy value (returned) or the deadline passes (throws). */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 20000,
  intervalMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `dsx-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Throws a clear error if a required server binary is not installed. */
export function requireBinary(path: string, installHint: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: install ${installHint} (see .ci/run)`);
}

export interface ServerProcess {
  pid: number;
  child: ChildProcess;
  /** Output so far (stdout + stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once. */
  kill(): Promise<void>;
  pause(): void;
  resume(): void;
  exited(): boolean;
}

/**
 * Starts a server in the foreground (never daemonized), so the test holds its PID and can stop,
 * kill, pause and resume it. `user` runs it as another user (PostgreSQL refuses root) via setpriv,
 * which execs in place, so the PID stays the server's own.
 */
export function startProcess(
  command: string,
  args: string[],
  options: { user?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ServerProcess {
  const [cmd, argv] = options.user
    ? ['setpriv', ['--reuid', options.user, '--regid', options.user, '--init-groups', '--', command, ...args]]
    : [command, args];
  const child = spawn(cmd, argv, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (err) => {
      out += `\nspawn error: ${err.message}`;
      exited = true;
      resolve();
    });
  });
  const signal = (sig: NodeJS.Signals): void => {
    if (!exited && child.pid) {
      try {
        process.kill(child.pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  return {
    pid: child.pid ?? -1,
    child,
    output: () => out,
    exited: () => exited,
    async stop(graceMs = 10000) {
      if (exited) return;
      signal('SIGCONT');
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
    async kill() {
      signal('SIGKILL');
      await exit;
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}
