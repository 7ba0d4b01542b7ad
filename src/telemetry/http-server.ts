// The node's HTTP port (default 127.0.0.1:2381): liveness, readiness and Prometheus metrics.
//   GET /healthz  200 "ok" while the process runs (liveness: restart me only if this fails)
//   GET /readyz   200 "ok" when isReady(), else 503 with the reason (readiness: route traffic)
//   GET /metrics  Prometheus text format
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { log } from './logger.ts';
import { contentType as metricsContentType, renderMetrics } from './metrics.ts';

export interface HttpServerOptions {
  /** Where to listen, e.g. "http://127.0.0.1:2381"; port 0 picks a free port. */
  url: string;
  isReady: () => boolean | Promise<boolean>;
}

export interface RunningHttpServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

async function readiness(isReady: HttpServerOptions['isReady']): Promise<{ ready: boolean; reason: string }> {
  try {
    return (await isReady()) ? { ready: true, reason: 'ok' } : { ready: false, reason: 'not ready' };
  } catch (err) {
    return { ready: false, reason: `not ready: ${err instanceof Error ? err.message : String(err)}` };
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, isReady: HttpServerOptions['isReady']): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return reply(res, 405, 'method not allowed\n');
  }
  // Probes may add query strings (?verbose); the path alone decides.
  const path = (req.url ?? '/').split('?', 1)[0];
  switch (path) {
    case '/healthz':
      return reply(res, 200, 'ok\n');
    case '/readyz': {
      const { ready, reason } = await readiness(isReady);
      return reply(res, ready ? 200 : 503, `${reason}\n`);
    }
    case '/metrics':
      return reply(res, 200, await renderMetrics(), metricsContentType);
    default:
      return reply(res, 404, 'not found\n');
  }
}

function listenAddress(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:') throw new Error(`metrics URL ${url}: only http:// is supported`);
  // URL keeps IPv6 hosts bracketed ("[::1]"); listen() wants them bare.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: parsed.port === '' ? 80 : Number(parsed.port) };
}

/** Starts the HTTP server on the host and port of `opts.url` only. */
export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, port } = listenAddress(opts.url);
  const server = createServer((req, res) => {
    handle(req, res, opts.isReady).catch((err: unknown) => {
      log.error({ err, path: req.url }, 'http handler failed');
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections (Prometheus scrapers) would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
