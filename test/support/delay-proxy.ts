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
    const upstream = connect({ port: upstreamPort, host: '127.0.0.1' });
    sockets.add(client);
    sockets.add(upstream);
    // Each chunk is delivered at arrival + delay; a chain keeps the order even if the delay changes.
    let chain = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
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
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      proxy.port = (server.address() as { port: number }).port;
      resolve(proxy);
    }),
  );
}
