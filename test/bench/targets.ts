// The servers a benchmark compares. The first selected target is the baseline the others are
// divided by. To add one (a PostgreSQL or MySQL leaf, a multi-node tree), add an entry to
// TARGETS whose start() brings it up and reports the pids whose process trees do the work
// (for a multi-node tree: every node's pid, plus Redis or a database server if it should count).
import { startEtcdTree, type StartOptions } from '../support/etcd-tree-process.ts';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, waitForPort } from '../support/ports.ts';
import { startRealEtcd } from '../support/real-etcd.ts';
import { startCluster } from '../support/cluster.ts';
import { startSqlNode } from '../support/sql-backends.ts';
import type { ChainPlace } from './report.ts';

export interface RunningTarget {
  /** host:port of the etcd v3 gRPC endpoint the load goes to. */
  endpoint: string;
  /** Roots of the process trees whose CPU time is charged to this target. */
  pids: number[];
  stop(): Promise<void>;
}

export interface BenchTarget {
  name: string;
  description: string;
  /** For a chain of servers: the report shows what each level in front adds (report.ts renderHops). */
  chain?: ChainPlace;
  start(): Promise<RunningTarget>;
}

export function realEtcdTarget(name = 'etcd'): BenchTarget {
  return {
    name,
    description: 'etcd 3.5, single member, default settings',
    async start() {
      const etcd = await startRealEtcd();
      return { endpoint: etcd.endpoint, pids: [etcd.process.pid!], stop: () => etcd.stop() };
    },
  };
}

export function etcdTreeTarget(name: string, description: string, options: StartOptions = {}): BenchTarget {
  return {
    name,
    description,
    async start() {
      const node = await startEtcdTree({ ...options, env: { LOG_LEVEL: 'warn', ...options.env } });
      return { endpoint: node.endpoint, pids: [node.process.pid!], stop: () => node.destroy() };
    },
  };
}

/** The pid of a database server's main process (its workers are its children, so they count too). */
function serverPid(kind: 'postgres' | 'mysql'): number {
  const out = execFileSync('pgrep', ['-o', '-x', kind === 'postgres' ? 'postgres' : 'mariadbd'], { encoding: 'utf8' }).trim();
  if (!out) throw new Error(`no running ${kind} server found (pgrep)`);
  return Number(out);
}

/**
 * An etcd-tree node on SQL leaves; the CPU of the database server is charged to it too (the
 * whole server: keep the machine otherwise idle while benchmarking).
 */
function sqlTreeTarget(name: string, description: string, topology: Record<string, string>, servers: Array<'postgres' | 'mysql'>): BenchTarget {
  return {
    name,
    description,
    async start() {
      const node = await startSqlNode(topology, { env: { LOG_LEVEL: 'warn' } });
      return { endpoint: node.endpoint, pids: [node.process.pid!, ...servers.map(serverPid)], stop: () => node.destroyAll() };
    },
  };
}

const catchAll = (to: string) => `routes:\n  - prefix: ""\n    to: ${to}\n`;

/**
 * n nodes over two PostgreSQL leaves (bench keys sharded over them) and one Redis counter; the
 * load is spread over the nodes. Charged: every node, PostgreSQL and Redis.
 */
function multiNodeTarget(n: number): BenchTarget {
  return {
    name: `etcd-tree-${n}-node${n > 1 ? 's' : ''}`,
    description: `etcd-tree, ${n} node(s), two PostgreSQL leaves, Redis revisions (nodes + PostgreSQL + Redis CPU)`,
    async start() {
      const cluster = await startCluster({ nodes: n, leaves: { pg1: 'postgres', pg2: 'postgres' }, routes: ['  - { prefix: /bench/, shards: [pg1, pg2], shardSegment: 2 }'] });
      const redisPid = Number(execFileSync('pgrep', ['-o', '-x', 'redis-server'], { encoding: 'utf8' }).trim());
      return {
        endpoint: cluster.nodes.map((node) => node.endpoint).join(','),
        pids: [...cluster.nodes.map((node) => node.process.pid!), serverPid('postgres'), redisPid],
        stop: () => cluster.destroy(),
      };
    },
  };
}

/**
 * A chain of `levels` nodes: the top one routes everything to the next, the last one holds an
 * embedded SQLite leaf; every node uses one Redis for revisions (a tree needs it). The load goes
 * to the top, so level n minus level n-1 is what one hop adds. Charged: every node and Redis.
 */
function treeLevelsTarget(levels: number): BenchTarget {
  return {
    name: `etcd-tree-${levels}-level${levels > 1 ? 's' : ''}`,
    description: `etcd-tree, ${levels}-level chain of nodes down to one SQLite leaf, Redis revisions (nodes + Redis CPU)`,
    chain: { family: 'etcd-tree', level: levels },
    async start() {
      const redisPrefix = `etcd-tree-bench:${process.pid}:${levels}:`;
      const args = ['--revision-store', 'redis://127.0.0.1:6379/0', '--revision-prefix', redisPrefix];
      const nodes: Awaited<ReturnType<typeof startEtcdTree>>[] = [];
      try {
        // Bottom first (it holds the leaf), the root (depth 1) last.
        let below: string | null = null;
        for (let depth = levels; depth >= 1; depth--) {
          const topology = below
            ? { '00.yaml': `backends:\n  child:\n    kind: node\n    endpoints: [http://${below}]\n${catchAll('child')}` }
            : undefined; // the default: one SQLite catch-all
          const role = depth === 1 ? 'root' : 'branch';
          const node = await startEtcdTree({ topology, args: [...args, '--tree-role', role, '--name', `depth-${depth}`], env: { LOG_LEVEL: 'warn' } });
          nodes.push(node);
          below = node.endpoint;
        }
      } catch (err) {
        for (const n of nodes) await n.destroy();
        throw err;
      }
      const redisPid = Number(execFileSync('pgrep', ['-o', '-x', 'redis-server'], { encoding: 'utf8' }).trim());
      return {
        endpoint: nodes[nodes.length - 1].endpoint,
        pids: [...nodes.map((n) => n.process.pid!), redisPid],
        async stop() {
          for (const n of nodes.reverse()) await n.destroy();
        },
      };
    },
  };
}

/** grpc-floor-server.ts on a free port (a bare proxy when given an upstream). */
async function startFloorServer(upstream?: string): Promise<{ endpoint: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'grpc-floor-server.ts'), String(port), ...(upstream ? [upstream] : [])], { stdio: 'inherit' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPort(port);
  return {
    endpoint: `127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * grpc-floor-server.ts: grpc-js alone, answering from a map. Not a store: what the transport
 * costs per call here, the floor under any etcd-tree figure (puts, gets; not lists or watch).
 * With `hop`, a bare grpc-js proxy in front of it, one unary call per request: what the plain
 * way to add a hop costs (etcd-tree's parents multiplex calls on a stream instead,
 * child/forward-stream.ts). The report compares the two as a chain, like the tree's levels.
 */
function grpcFloorTarget(hop: boolean): BenchTarget {
  return {
    name: hop ? 'grpc-floor-proxy' : 'grpc-floor',
    chain: { family: 'grpc-floor', level: hop ? 2 : 1 },
    description: hop
      ? 'bare @grpc/grpc-js proxy (a unary call per request) in front of grpc-floor (a plain hop; not a store)'
      : 'bare @grpc/grpc-js server answering Range/Put from a map (the transport alone; not a store)',
    async start() {
      const below = await startFloorServer();
      const front = hop ? await startFloorServer(below.endpoint).catch(async (err) => { await below.stop(); throw err; }) : null;
      const servers = front ? [front, below] : [below];
      return {
        endpoint: servers[0].endpoint,
        pids: servers.map((s) => s.pid),
        async stop() {
          for (const s of servers) await s.stop();
        },
      };
    },
  };
}

/** Every target BENCH_TARGETS can name. */
export const TARGETS: readonly BenchTarget[] = [
  realEtcdTarget('etcd'),
  etcdTreeTarget('etcd-tree', 'etcd-tree, one node, embedded SQLite leaf, in-memory revisions'),
  sqlTreeTarget('etcd-tree-pg', 'etcd-tree, one node, PostgreSQL leaf (node + PostgreSQL CPU)', { '00.yaml': `backends:\n{{pg:pg}}\n${catchAll('pg')}` }, ['postgres']),
  sqlTreeTarget('etcd-tree-mysql', 'etcd-tree, one node, MariaDB leaf (node + MariaDB CPU)', { '00.yaml': `backends:\n{{mysql:my}}\n${catchAll('my')}` }, ['mysql']),
  sqlTreeTarget(
    'etcd-tree-mixed',
    'etcd-tree, one node, keys sharded over SQLite + PostgreSQL + MariaDB leaves (node + both servers CPU)',
    // Bench keys are /bench/<workload>/r<round>/<n>: segment 2 (the key number) spreads every
    // workload's keys over the three leaves, so its lists scatter and its watch merges.
    { '00.yaml': `backends:\n  local:\n    kind: sqlite\n    path: default.db\n{{pg:pg}}\n{{mysql:my}}\n${catchAll('local')}  - { prefix: /bench/, shards: [local, pg, my], shardSegment: 2 }\n` },
    ['postgres', 'mysql'],
  ),
  multiNodeTarget(1),
  multiNodeTarget(2),
  multiNodeTarget(3),
  treeLevelsTarget(1),
  treeLevelsTarget(2),
  treeLevelsTarget(3),
  grpcFloorTarget(false),
  grpcFloorTarget(true),
];

/** BENCH_SELF_CHECK: real etcd against itself, to validate the harness (ratios should be ~1.0x). */
export const SELF_CHECK_TARGETS: readonly BenchTarget[] = [realEtcdTarget('etcd'), realEtcdTarget('etcd-again')];
