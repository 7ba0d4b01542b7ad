// The servers a benchmark compares. The first selected target is the baseline the others are
// divided by. To add one (a PostgreSQL or MySQL leaf, a multi-node tree), add an entry to
// TARGETS whose start() brings it up and reports the pids whose process trees do the work
// (for a multi-node tree: every node's pid, plus Redis or a database server if it should count).
import { startEtcdTree, type StartOptions } from '../support/etcd-tree-process.ts';
import { startRealEtcd } from '../support/real-etcd.ts';

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

/** Every target BENCH_TARGETS can name. */
export const TARGETS: readonly BenchTarget[] = [
  realEtcdTarget('etcd'),
  etcdTreeTarget('etcd-tree', 'etcd-tree, one node, embedded SQLite leaf, in-memory revisions'),
];

/** BENCH_SELF_CHECK: real etcd against itself, to validate the harness (ratios should be ~1.0x). */
export const SELF_CHECK_TARGETS: readonly BenchTarget[] = [realEtcdTarget('etcd'), realEtcdTarget('etcd-again')];
