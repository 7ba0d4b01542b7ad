// Turns run measurements into per-target summaries, ratios against the baseline target, a
// printed table and a JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { percentile, sortedLatencies } from './latency-stats.ts';

/** One workload on one target in one round. */
export interface RunMeasurement {
  workload: string;
  target: string;
  round: number;
  ops: number;
  elapsedNs: number;
  serverCpuSeconds: number;
  /** serverCpuSeconds by the program of each process (node, postgres, mariadbd, redis-server). */
  serverCpuByProgram: Record<string, number>;
  clientCpuSeconds: number;
  /** Busy CPU of everything else on the machine during the run: noise. */
  otherCpuSeconds: number;
  latenciesNs: number[];
  note?: string;
}

export interface RoundSummary {
  round: number;
  ops: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerOp: number;
  /** Average cores other processes used during the round. */
  otherLoadCores: number;
  note?: string;
}

/** All rounds of one workload on one target, pooled. */
export interface Summary {
  workload: string;
  operation: string;
  target: string;
  ops: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerOp: number;
  clientCpuUsPerOp: number;
  rounds: RoundSummary[];
}

/** target / baseline for one workload: > 1 means more (ops/s) or slower/costlier (the rest). */
export interface Ratio {
  workload: string;
  target: string;
  baseline: string;
  opsPerSecond: number;
  p50: number;
  p99: number;
  serverCpuPerOp: number;
}

const ms = (ns: number) => ns / 1e6;

function roundSummary(run: RunMeasurement): RoundSummary {
  const sorted = sortedLatencies(run.latenciesNs);
  return {
    round: run.round,
    ops: run.ops,
    opsPerSecond: run.ops / (run.elapsedNs / 1e9),
    p50Ms: ms(percentile(sorted, 50)),
    p99Ms: ms(percentile(sorted, 99)),
    serverCpuUsPerOp: (run.serverCpuSeconds * 1e6) / run.ops,
    otherLoadCores: run.otherCpuSeconds / (run.elapsedNs / 1e9),
    ...(run.note ? { note: run.note } : {}),
  };
}

export function summarize(workload: string, operation: string, target: string, runs: RunMeasurement[]): Summary {
  const ops = runs.reduce((n, r) => n + r.ops, 0);
  const elapsedNs = runs.reduce((n, r) => n + r.elapsedNs, 0);
  const sorted = sortedLatencies(...runs.map((r) => r.latenciesNs));
  return {
    workload,
    operation,
    target,
    ops,
    opsPerSecond: ops / (elapsedNs / 1e9),
    p50Ms: ms(percentile(sorted, 50)),
    p99Ms: ms(percentile(sorted, 99)),
    serverCpuUsPerOp: (runs.reduce((s, r) => s + r.serverCpuSeconds, 0) * 1e6) / ops,
    clientCpuUsPerOp: (runs.reduce((s, r) => s + r.clientCpuSeconds, 0) * 1e6) / ops,
    rounds: runs.map(roundSummary),
  };
}

export function ratio(summary: Summary, baseline: Summary): Ratio {
  return {
    workload: summary.workload,
    target: summary.target,
    baseline: baseline.target,
    opsPerSecond: summary.opsPerSecond / baseline.opsPerSecond,
    p50: summary.p50Ms / baseline.p50Ms,
    p99: summary.p99Ms / baseline.p99Ms,
    serverCpuPerOp: summary.serverCpuUsPerOp / baseline.serverCpuUsPerOp,
  };
}

/** "412.3 (398.1-430.2)": the pooled value and the range over rounds, when there are several. */
function withSpread(value: number, perRound: number[], digits: number): string {
  if (perRound.length < 2) return value.toFixed(digits);
  return `${value.toFixed(digits)} (${Math.min(...perRound).toFixed(digits)}-${Math.max(...perRound).toFixed(digits)})`;
}

function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return rows
    .map((row) => row.map((cell, col) => (col < 2 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ').trimEnd())
    .join('\n');
}

export function renderTable(summaries: Summary[], ratios: Ratio[]): string {
  const rows: string[][] = [['workload', 'target', 'ops/s', 'p50 ms', 'p99 ms', 'server CPU µs/op (rounds)', 'client CPU µs/op']];
  const workloads = [...new Set(summaries.map((s) => s.workload))];
  for (const workload of workloads) {
    for (const s of summaries.filter((x) => x.workload === workload)) {
      rows.push([
        `${workload} (${s.operation})`,
        s.target,
        s.opsPerSecond.toFixed(0),
        s.p50Ms.toFixed(3),
        s.p99Ms.toFixed(3),
        withSpread(s.serverCpuUsPerOp, s.rounds.map((r) => r.serverCpuUsPerOp), 1),
        s.clientCpuUsPerOp.toFixed(1),
      ]);
    }
    for (const r of ratios.filter((x) => x.workload === workload)) {
      rows.push(['', `${r.target}/${r.baseline}`, `${r.opsPerSecond.toFixed(2)}x`, `${r.p50.toFixed(2)}x`, `${r.p99.toFixed(2)}x`, `${r.serverCpuPerOp.toFixed(2)}x`, '']);
    }
  }
  return formatTable(rows);
}

export function writeJson(path: string, report: object): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

/** A target's place in a chain of servers (targets.ts): its family and level (1: no hop in front). */
export interface ChainPlace {
  family: string;
  level: number;
}

/**
 * For chains of servers (the tree's levels; the bare grpc-js server and its proxy): what each
 * hop adds to p50 latency, and throughput through the root against one level less. Empty when
 * no chain ran two levels.
 */
export function renderHops(summaries: Summary[], chainPlace: (target: string) => ChainPlace | undefined): string {
  const lines: string[] = [];
  const families = [...new Set(summaries.map((s) => chainPlace(s.target)?.family).filter((f) => f !== undefined))];
  for (const workload of [...new Set(summaries.map((s) => s.workload))]) for (const family of families) {
    const levelOf = (target: string) => chainPlace(target)!.level;
    const chain = summaries.filter((s) => s.workload === workload && chainPlace(s.target)?.family === family).sort((a, b) => levelOf(a.target) - levelOf(b.target));
    for (let i = 1; i < chain.length; i++) {
      const [lower, upper] = [chain[i - 1], chain[i]];
      const hops = levelOf(upper.target) - levelOf(lower.target);
      const addedUs = ((upper.p50Ms - lower.p50Ms) * 1000) / hops;
      lines.push(`${workload.padEnd(11)} ${lower.target} -> ${upper.target}: +${addedUs.toFixed(0)} µs p50 per hop, throughput ${(upper.opsPerSecond / lower.opsPerSecond).toFixed(2)}x`);
    }
  }
  return lines.length ? `Per hop (one more level of nodes in front):\n${lines.join('\n')}` : '';
}
