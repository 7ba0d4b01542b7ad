// A loopback TCP proxy whose connections can be cut abruptly (both sides destroyed), to
// simulate a client whose network or process dies mid-stream, or a server that goes down
// (cut every connection and refuse new ones) and comes back.
import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxyOptions {
  /** Stop reading from the target after this many bytes per connection (the target's sends then stall). */
  stallAfterBytes?: number;
}

export interface TcpProxy {
  port: number;
  /** Number of client connections currently open through the proxy. */
  connections(): number;
  /** Number of connections that hit stallAfterBytes (the target still had more to send). */
  stalled(): number;
  /** Destroys every proxied connection (RST-like, no HTTP/2 GOAWAY). */
  cutAll(): void;
  /** down(): cut everything and reset new connections at once; up(): proxy again. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, opts: TcpProxyOptions = {}): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let stalled = 0;
  let isDown = false;
  const server = createServer((client) => {
    if (isDown) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    if (opts.stallAfterBytes === undefined) {
      upstream.pipe(client);
    } else {
      let sent = 0;
      const limit = opts.stallAfterBytes;
      upstream.on('data', (chunk: Buffer) => {
        if (sent >= limit) return;
        const part = chunk.subarray(0, limit - sent);
        sent += part.length;
        client.write(part);
        if (sent >= limit) {
          upstream.pause(); // nothing more is read: the target's writes back up
          stalled++;
        }
      });
    }
    const drop = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('proxy has no port');
  const cutAll = () => {
    for (const [a, b] of pairs) { a.resetAndDestroy(); b.resetAndDestroy(); }
    pairs.clear();
  };
  return {
    port: addr.port,
    connections: () => pairs.size,
    stalled: () => stalled,
    cutAll,
    down() {
      isDown = true;
      cutAll();
    },
    up() {
      isDown = false;
    },
    close() {
      cutAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
