// One node under test, started the same way in every integration file.
//
// The target is etcd-tree (the real CLI, via test/support/etcd-tree-process.ts). For checking
// the tests themselves, INTEGRATION_TARGET=etcd35 runs the same files against a real etcd 3.5
// (shared/tools/etcd35): whatever passes there and fails on etcd-tree is an etcd-tree bug.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcdTree } from '../../support/etcd-tree-process.ts';
import { spawnListening } from '../../support/listening-child.ts';
import { freePort } from '../../support/ports.ts';
import { etcd35Binary } from '../../support/real-etcd.ts';

export type Target = 'etcd-tree' | 'etcd35';
export const target: Target = process.env.INTEGRATION_TARGET === 'etcd35' ? 'etcd35' : 'etcd-tree';

/** Name of the gauge counting open watchers on /metrics. */
export const watchersMetric = target === 'etcd35' ? 'etcd_debugging_mvcc_watcher_total' : 'etcd_tree_watchers';

export interface TlsFiles { ca: string; cert: string; key: string }

export interface NodeOptions {
  /** Reuse a data dir (restart); a fresh temp dir otherwise. */
  dataDir?: string;
  port?: number;
  httpPort?: number;
  /** Node name (--name). */
  name?: string;
  /** Serve gRPC over https with these server files and require client certs signed by `ca`. */
  tls?: TlsFiles;
  args?: string[];
}

export interface TestNode {
  target: Target;
  /** host:port of the gRPC listener. */
  endpoint: string;
  /** http(s)://127.0.0.1:port, as etcdctl wants it. */
  url: string;
  port: number;
  httpPort: number;
  dataDir: string;
  process: ChildProcess;
  output(): string;
  /** SIGTERM, wait for exit; resolves to the exit code. Keeps the data dir. */
  stop(): Promise<number | null>;
  /** SIGKILL. Keeps the data dir. */
  kill(): Promise<void>;
  /** Stop and remove the data dir (unless it was given by the caller). */
  destroy(): Promise<void>;
  /** Start a new process on the same data dir and ports (the old one must have exited). */
  restart(): Promise<TestNode>;
}

export async function startNode(opts: NodeOptions = {}): Promise<TestNode> {
  return target === 'etcd35' ? startEtcd35(opts) : startTree(opts);
}

function tlsArgs(tls: TlsFiles | undefined): string[] {
  if (!tls) return [];
  return ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth'];
}

async function startTree(opts: NodeOptions): Promise<TestNode> {
  const port = opts.port ?? (await freePort());
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const n = await startEtcdTree({
    dataDir: opts.dataDir,
    port,
    httpPort: opts.httpPort,
    args: [
      // The helper passes --listen-client-urls http://...; a later flag wins, as in etcd.
      ...(opts.tls ? ['--listen-client-urls', url] : []),
      ...(opts.name ? ['--name', opts.name] : []),
      '--advertise-client-urls', url,
      ...tlsArgs(opts.tls),
      ...(opts.args ?? []),
    ],
  });
  const ownsDir = opts.dataDir === undefined;
  const node: TestNode = {
    target: 'etcd-tree',
    endpoint: n.endpoint,
    url,
    port: n.port,
    httpPort: n.httpPort,
    dataDir: n.dataDir,
    process: n.process,
    output: n.output,
    stop: n.stop,
    kill: n.kill,
    async destroy() {
      await n.stop();
      if (ownsDir) rmSync(n.dataDir, { recursive: true, force: true });
    },
    async restart() {
      const next = await startTree({ ...opts, dataDir: n.dataDir, port: n.port, httpPort: n.httpPort });
      // The restarted node owns the temp dir if the first one did.
      if (ownsDir) {
        const d = next.destroy;
        next.destroy = async () => { await d(); rmSync(n.dataDir, { recursive: true, force: true }); };
      }
      return next;
    },
  };
  return node;
}

async function startEtcd35(opts: NodeOptions): Promise<TestNode> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'etcd35-it-'));
  const port = opts.port ?? (await freePort());
  const httpPort = opts.httpPort ?? (await freePort());
  const peerPort = await freePort();
  const name = opts.name ?? 'default';
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const args = [
    '--name', name,
    '--data-dir', join(dataDir, 'etcd'),
    '--listen-client-urls', url,
    '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `${name}=http://127.0.0.1:${peerPort}`,
    '--listen-metrics-urls', `http://127.0.0.1:${httpPort}`,
    '--experimental-watch-progress-notify-interval', '1s',
    '--log-level', 'error',
    ...tlsArgs(opts.tls),
    ...(opts.args ?? []),
  ];
  const { child, output, exited } = await spawnListening('etcd', etcd35Binary(), args, {}, port);
  const ownsDir = opts.dataDir === undefined;
  const done = () => child.exitCode !== null || child.signalCode !== null;
  const node: TestNode = {
    target: 'etcd35',
    endpoint: `127.0.0.1:${port}`,
    url,
    port,
    httpPort,
    dataDir,
    process: child,
    output,
    async stop() {
      if (done()) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (done()) return;
      child.kill('SIGKILL');
      await exited;
    },
    async destroy() {
      await node.stop();
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async restart() {
      const next = await startEtcd35({ ...opts, dataDir, port, httpPort });
      if (ownsDir) {
        const d = next.destroy;
        next.destroy = async () => { await d(); rmSync(dataDir, { recursive: true, force: true }); };
      }
      return next;
    },
  };
  return node;
}
