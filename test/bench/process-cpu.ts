// CPU time of a server process tree, read from /proc: the process itself plus every descendant
// (etcd-tree may run helpers as child processes; threads are already inside a process's counters).
// Sampled before and after a measured run; the difference divided by the ops is CPU per op.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;
function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // what Linux uses on every common architecture
    }
  }
  return ticksPerSecond;
}

interface ProcStat { pid: number; ppid: number; cpuTicks: number; program: string }

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  // The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15, and cutime 16, cstime 17:
  // children that exited and were reaped (a database server's backends come and go), so that
  // the sum over a live process tree never shrinks (proc(5)).
  const cpuTicks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return { pid, ppid: Number(fields[1]), cpuTicks, program: text.slice(text.indexOf('(') + 1, close) };
}

/** Pids of `root` and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const siblings = childrenOf.get(stat.ppid) ?? [];
    siblings.push(stat.pid);
    childrenOf.set(stat.ppid, siblings);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue.push(...(childrenOf.get(pid) ?? []));
  }
  return tree;
}

/**
 * User+system CPU seconds consumed so far by the `roots` and their live descendants, by the
 * program each process runs (node, postgres, mariadbd, redis-server): which part of a target's
 * cost is etcd-tree and which its servers. Resolution is one clock tick (10 ms), so measured
 * runs should burn at least a few hundred ms of server CPU.
 */
export function processTreeCpuByProgram(roots: number[]): Record<string, number> {
  const pids = new Set(roots.flatMap(processTree)); // a root may also descend from another root
  const byProgram: Record<string, number> = {};
  for (const pid of pids) {
    const stat = readStat(pid);
    if (stat) byProgram[stat.program] = (byProgram[stat.program] ?? 0) + stat.cpuTicks / clockTicksPerSecond();
  }
  return byProgram;
}

/** after - before, per program (a program absent before started during the run). */
export function cpuDifference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([program, s]) => [program, s - (before[program] ?? 0)]));
}

/**
 * CPU seconds all processes on the machine have used since boot (busy time over all cores).
 * What a run's window shows beyond server and load generator is other load: noise.
 */
export function machineBusyCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / clockTicksPerSecond();
}
