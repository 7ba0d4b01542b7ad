import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The ports the OS hands out to outgoing connections (and to listen(0)). A port picked there
 * can be taken by any client connection (to PostgreSQL, Redis, another node) between the pick
 * and the server's bind: servers of the tests listen below it.
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

const [EPHEMERAL_LOW] = ephemeralRange();
/** Below the ephemeral range, above the well-known and most registered services. */
const PICK_LOW = Math.min(20_000, EPHEMERAL_LOW - 2_000);

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1, outside the ephemeral range, that was free a moment ago. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PICK_LOW + Math.floor(Math.random() * (EPHEMERAL_LOW - PICK_LOW));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${PICK_LOW} and ${EPHEMERAL_LOW}`);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, or rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
