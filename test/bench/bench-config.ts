// Benchmark settings, from the environment:
//   BENCH_SECONDS=4          measured seconds per run (one workload on one target, one round)
//   BENCH_WARMUP_SECONDS=1   unmeasured load before each run (JIT, caches, connections)
//   BENCH_TARGET_WARMUP_SECONDS=3   once per target before its first run: unmeasured puts, then
//                            gets, with 32 in flight, this long each (see warmUp in run.ts)
//   BENCH_ROUNDS=2           runs per workload and target, alternating targets (A B A B)
//   BENCH_WORKLOADS=put-seq,get-32   only these workloads (default: all)
//   BENCH_TARGETS=etcd,etcd-tree     these targets, the first is the baseline (default: etcd and
//                            etcd-tree; sql = etcd + the PostgreSQL, MariaDB and mixed nodes;
//                            nodes = etcd + 1, 2 and 3 nodes over PostgreSQL and Redis;
//                            tree = etcd + a 1-, 2- and 3-level chain of nodes, to a SQLite leaf;
//                            floor = etcd + grpc-js alone, and a bare grpc-js proxy in front of it,
//                            for puts and gets: see targets.ts)
//   BENCH_SELF_CHECK=1       real etcd against a second real etcd (validates the harness)
//   BENCH_CONNECTIONS=4      gRPC connections the KV load is spread over
//   BENCH_OUTPUT=bench-results/latest.json
//   ETCD_TREE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof"   Node.js flags for every etcd-tree node
import { SELF_CHECK_TARGETS, TARGETS, type BenchTarget } from './targets.ts';
import type { Workload } from './workload.ts';
import { WORKLOADS } from './workloads/index.ts';

export interface BenchConfig {
  measureMs: number;
  warmupMs: number;
  targetWarmupMs: number;
  rounds: number;
  connections: number;
  workloads: Workload[];
  targets: BenchTarget[];
  selfCheck: boolean;
  outputPath: string;
}

function numberSetting(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}=${raw}: expected a number >= ${min}`);
  return value;
}

function pick<T extends { name: string }>(setting: string, all: readonly T[], fallback: readonly T[], env: NodeJS.ProcessEnv = process.env): T[] {
  const raw = env[setting];
  if (!raw) return [...fallback];
  return raw.split(',').map((s) => s.trim()).filter(Boolean).map((name) => {
    const found = all.find((item) => item.name === name);
    if (!found) throw new Error(`${setting}: unknown '${name}' (known: ${all.map((i) => i.name).join(', ')})`);
    return found;
  });
}

export function loadBenchConfig(): BenchConfig {
  const selfCheck = process.env.BENCH_SELF_CHECK === '1' || process.env.BENCH_SELF_CHECK === 'true';
  const groups: Record<string, string> = {
    sql: 'etcd,etcd-tree-pg,etcd-tree-mysql,etcd-tree-mixed',
    nodes: 'etcd,etcd-tree-1-node,etcd-tree-2-nodes,etcd-tree-3-nodes',
    tree: 'etcd,etcd-tree-1-level,etcd-tree-2-levels,etcd-tree-3-levels',
    floor: 'etcd,etcd-tree,grpc-floor,grpc-floor-proxy',
  };
  const wanted = process.env.BENCH_TARGETS ?? 'etcd,etcd-tree';
  const env = { ...process.env, BENCH_TARGETS: groups[wanted] ?? wanted };
  const targets = selfCheck ? [...SELF_CHECK_TARGETS] : pick('BENCH_TARGETS', TARGETS, TARGETS, env);
  if (targets.length === 0) throw new Error('no targets selected');
  const workloads = pick('BENCH_WORKLOADS', WORKLOADS, WORKLOADS);
  if (workloads.length === 0) throw new Error('no workloads selected');
  return {
    measureMs: numberSetting('BENCH_SECONDS', 4, 0.1) * 1000,
    warmupMs: numberSetting('BENCH_WARMUP_SECONDS', 1, 0) * 1000,
    targetWarmupMs: numberSetting('BENCH_TARGET_WARMUP_SECONDS', 3, 0) * 1000,
    rounds: Math.round(numberSetting('BENCH_ROUNDS', 2, 1)),
    connections: Math.round(numberSetting('BENCH_CONNECTIONS', 4, 1)),
    workloads,
    targets,
    selfCheck,
    outputPath: process.env.BENCH_OUTPUT || 'bench-results/latest.json',
  };
}
