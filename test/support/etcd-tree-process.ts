// Starts an etcd-tree node as a child process (the real CLI), on free loopback ports.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PortTakenError, spawnListening, type ListeningChild } from './listening-child.ts';
import { freePort } from './ports.ts';

export const projectRoot = resolve(import.meta.dirname, '../..');

export interface EtcdTreeNode {
  endpoint: string; // host:port of the gRPC listener
  port: number;
  httpPort: number;
  dataDir: string;
  process: ChildProcess;
  /** Last few KiB of the node's stdout+stderr (pino JSON lines), for failure messages. */
  output(): string;
  /** SIGTERM and wait for exit. Keeps the data dir. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. Keeps the data dir. */
  kill(): Promise<void>;
  /** stop() and remove the temp dir. */
  destroy(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a data dir (restart); a fresh temp dir otherwise. */
  dataDir?: string;
  /** Reuse ports (restart on the same address). */
  port?: number;
  httpPort?: number;
  /** Extra CLI flags, e.g. ['--max-txn-ops', '4']. */
  args?: string[];
  /** Topology YAML files: name -> content. Default: one SQLite catch-all in the data dir. */
  topology?: Record<string, string>;
  env?: Record<string, string>;
}

export async function startEtcdTree(opts: StartOptions = {}): Promise<EtcdTreeNode> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'etcd-tree-'));
  const topologyDir = join(dataDir, 'topology.d');
  mkdirSync(topologyDir, { recursive: true });
  const topology = opts.topology ?? {
    '00-default.yaml': `backends:\n  local:\n    kind: sqlite\n    path: ${join(dataDir, 'default.db')}\nroutes:\n  - prefix: ""\n    to: local\n`,
  };
  for (const [name, content] of Object.entries(topology)) writeFileSync(join(topologyDir, name), content);
  // Ports we picked were free a moment ago; another test's process may take one first.
  const picked = opts.port === undefined && opts.httpPort === undefined;
  let started: ListeningChild;
  let port: number;
  let httpPort: number;
  for (let attempt = 1; ; attempt++) {
    port = opts.port ?? (await freePort());
    httpPort = opts.httpPort ?? (await freePort());
    const args = [
      // Extra Node.js flags for every node started, e.g. ETCD_TREE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
      ...(process.env.ETCD_TREE_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      '--import', 'tsx', join(projectRoot, 'src/cli.ts'),
      '--listen-client-urls', `http://127.0.0.1:${port}`,
      '--listen-metrics-urls', `http://127.0.0.1:${httpPort}`,
      '--data-dir', dataDir,
      '--topology-dir', topologyDir,
      '--experimental-watch-progress-notify-interval', '1s',
      ...(opts.args ?? []),
    ];
    try {
      started = await spawnListening('etcd-tree', process.execPath, args, {
        cwd: projectRoot,
        env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...opts.env },
      }, port);
      break;
    } catch (err) {
      if (!(picked && err instanceof PortTakenError && attempt < 3)) throw err;
    }
  }
  const { child, output, exited } = started;
  const node: EtcdTreeNode = {
    endpoint: `127.0.0.1:${port}`,
    port,
    httpPort,
    dataDir,
    process: child,
    output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async destroy() {
      await node.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return node;
}
