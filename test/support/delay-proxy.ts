/**
 * A TCP proxy on loopback that delays the bytes flowing from the upstream (e.g. a primary) to the
 * client (e.g. its replica) by a fixed number of milliseconds, keeping their order. It injects a real
 * replication delay for datastores that have no built-in one (Redis), and can be paused to stop
 * replication altogether while both servers keep running.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  port: number;
  /** Delay of upstream -> client bytes, changeable at any time (applies to bytes arriving from now). */
  delayMs: number;
  /** While paused, upstream -> client bytes are held back (delivered, in order, on resume). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export function startDelayProxy(upstreamPort: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  let paused = false;
  const held: (() => void)[] = [];
  const proxy: DelayProxy = {
    port: 0,
    delayMs,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      for (const deliver of held.splice(0)) deliver();
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    let upstream: Socket | undefined;
    // Bytes from the client before the upstream answered; sent in order once it does.
    const early: Buffer[] = [];
    let done = false;
    const closeBoth = (): void => {
      done = true;
      client.destroy();
      upstream?.destroy();
      sockets.delete(client);
      if (upstream) sockets.delete(upstream);
    };
    // Each chunk is delivered at arrival + delay; a chain keeps the order even if the delay changes.
    let chain = Promise.resolve();
    const forward = (chunk: Buffer): void => {
      const due = Date.now() + proxy.delayMs;
      chain = chain.then(
        () =>
          new Promise<void>((resolve) => {
            const deliver = (): void => {
              if (paused) {
                held.push(deliver);
                return;
              }
              if (!client.destroyed) client.write(chunk);
              resolve();
            };
            setTimeout(deliver, Math.max(0, due - Date.now()));
          }),
      );
    };
    // A refused upstream (e.g. a new leader not listening yet) is retried for a few seconds while the
    // client waits, as a real network path would: closing the client instead would look like a
    // server that accepted and hung up, which clients treat differently from "not there yet".
    const retryUntil = Date.now() + 5000;
    const attach = (): void => {
      const socket = connect({ port: upstreamPort, host: '127.0.0.1' });
      socket.once('connect', () => {
        upstream = socket;
        sockets.add(socket);
        for (const chunk of early.splice(0)) socket.write(chunk);
        socket.on('data', forward);
        socket.on('close', closeBoth);
        socket.on('error', closeBoth);
      });
      socket.once('error', () => {
        if (upstream === socket || done) return;
        if (Date.now() < retryUntil) setTimeout(attach, 100);
        else closeBoth();
      });
    };
    attach();
    client.on('data', (chunk: Buffer) => (upstream ? upstream.write(chunk) : early.push(chunk)));
    client.on('close', closeBoth);
    client.on('error', closeBoth);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      proxy.port = (server.address() as { port: number }).port;
      resolve(proxy);
    }),
  );
}
