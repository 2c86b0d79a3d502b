/**
 * bcrypt comparisons on a worker thread, so that they never hold the event loop.
 *
 * bcryptjs (pure JavaScript) computes ~80 ms per check at cost 10 and ~300 ms at cost 12, yielding
 * only every 100 ms. On the main thread that time is taken from everything else: the collector's
 * replies wait, and so does accepting connections (Node accepts one new connection per event-loop
 * turn), so a flood of wrong passwords kept even a Prometheus with the right ones waiting in the
 * kernel's accept queue. On one worker thread the cost of a flood is at most one core, and the main
 * thread keeps answering, refusing and accepting at full speed.
 *
 * One thread, started on the first check and unref'd (it never keeps the process alive); the
 * callers (BasicAuthChecker) run one comparison at a time. A thread that dies is replaced on the
 * next check; its checks in flight fail (denied).
 */
import { Worker } from 'node:worker_threads';

/** The worker's code: compareSync per message (blocking only this thread). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const bcrypt = require(${JSON.stringify(require.resolve('bcryptjs'))});
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage({ id, ok });
});
`;

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, (ok: boolean) => void>();

function failAll(): void {
  for (const resolve of pending.values()) resolve(false);
  pending.clear();
}

function thread(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.on('message', ({ id, ok }: { id: number; ok: boolean }) => {
    const resolve = pending.get(id);
    pending.delete(id);
    resolve?.(ok);
  });
  const gone = (): void => {
    if (worker === w) worker = undefined;
    failAll();
  };
  w.on('error', gone);
  w.on('exit', gone);
  // After the listeners: adding a 'message' listener refs the worker again, and the thread then
  // kept the process alive (seen: a script that made one check never exited).
  w.unref();
  worker = w;
  return w;
}

/** bcrypt.compare on the worker thread; false for a wrong password or a hash bcrypt cannot read. */
export function compareInThread(password: string, hash: string): Promise<boolean> {
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    thread().postMessage({ id, password, hash });
  });
}

/**
 * Stops the thread (its checks in flight fail: denied); the next check starts a new one. The thread
 * never keeps the process alive; this is for an embedder that outlives its listeners (a test runner,
 * whose environment holds on to the worker's message port).
 */
export async function stopBcryptThread(): Promise<void> {
  const w = worker;
  if (!w) return;
  worker = undefined;
  failAll();
  await w.terminate();
}
