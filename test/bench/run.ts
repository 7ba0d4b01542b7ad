// `npm run bench`: the same workloads against real etcd 3.5 and etcd-tree in one run, targets
// alternating (A B A B) so drift in the machine's load hits both alike. Reports throughput,
// client-seen latency and the server process tree's CPU time per operation, plus the ratios
// to the baseline (the first target). Settings: see bench-config.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { connectEtcd } from '../support/etcd-client.ts';
import { connectBenchClient, type BenchClient } from './bench-client.ts';
import { loadBenchConfig } from './bench-config.ts';
import { runClosedLoop } from './closed-loop.ts';
import { cpuDifference, machineBusyCpuSeconds, processTreeCpuByProgram } from './process-cpu.ts';
import { ratio, renderHops, renderTable, summarize, writeJson, type RunMeasurement } from './report.ts';
import type { BenchTarget, RunningTarget } from './targets.ts';
import type { Workload } from './workload.ts';
import { getConcurrent } from './workloads/get-concurrent.ts';
import { putConcurrent } from './workloads/put-concurrent.ts';

interface LiveTarget {
  target: BenchTarget;
  running: RunningTarget;
  client: BenchClient;
  version: string;
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Waits until the server answers a Range (a listening port is not yet a working server). */
async function serverVersion(endpoint: string, timeoutMs = 60_000): Promise<string> {
  const client = connectEtcd(endpoint);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.kv.range({ key: Buffer.from('/bench/ready') });
        return (await client.maintenance.status({})).version || 'unknown';
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${endpoint} did not serve within ${timeoutMs} ms: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    client.close();
  }
}

/**
 * Warms a freshly started target once, before its first measured run: puts and gets with 32 in
 * flight, each for `ms`. A Node.js server runs its code interpreted until V8 has seen it often
 * enough to compile it; a workload of one request at a time (sequential puts, a watch event)
 * does not get there within its own short warm-up, so the first round of a fresh node measured
 * its compiler and interpreter (a sequential put cost a fresh node 1.7 times the CPU it cost in
 * the second round). Real etcd gets the same load, unmeasured.
 */
async function warmUp(live: LiveTarget, value: Buffer, ms: number): Promise<void> {
  for (const workload of [putConcurrent, getConcurrent]) {
    const prepared = await workload.prepare({ client: live.client, runPrefix: `/bench/warm-up/${workload.name}/`, value });
    try {
      await runClosedLoop(prepared.op, workload.concurrency, ms);
    } finally {
      await prepared.close?.();
    }
  }
}

async function measure(workload: Workload, live: LiveTarget, round: number, value: Buffer, warmupMs: number, measureMs: number): Promise<RunMeasurement> {
  // Same keys on every target, so key and request sizes are identical.
  const prepared = await workload.prepare({ client: live.client, runPrefix: `/bench/${workload.name}/r${round}/`, value });
  try {
    if (warmupMs > 0) await runClosedLoop(prepared.op, workload.concurrency, warmupMs);
    const machineCpuBefore = machineBusyCpuSeconds();
    const serverCpuBefore = processTreeCpuByProgram(live.running.pids);
    const clientCpuBefore = process.cpuUsage();
    const loop = await runClosedLoop(prepared.op, workload.concurrency, measureMs);
    // Client first: scanning /proc for the server's process tree is not load-generator work.
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const serverCpuByProgram = cpuDifference(processTreeCpuByProgram(live.running.pids), serverCpuBefore);
    const serverCpuSeconds = Object.values(serverCpuByProgram).reduce((a, b) => a + b, 0);
    const clientCpuSeconds = (clientCpu.user + clientCpu.system) / 1e6;
    const otherCpuSeconds = Math.max(0, machineBusyCpuSeconds() - machineCpuBefore - serverCpuSeconds - clientCpuSeconds);
    return {
      workload: workload.name,
      target: live.target.name,
      round,
      ops: loop.ops,
      elapsedNs: loop.elapsedNs,
      serverCpuSeconds,
      serverCpuByProgram,
      clientCpuSeconds,
      otherCpuSeconds,
      latenciesNs: loop.latenciesNs,
      note: prepared.describe?.(),
    };
  } finally {
    await prepared.close?.();
  }
}

// Other processes taking this much CPU (in cores, averaged over the run) make a run suspect.
const NOISY_CORES = 0.15;

function noiseWarning(m: RunMeasurement): string {
  const cores = m.otherCpuSeconds / (m.elapsedNs / 1e9);
  return cores > NOISY_CORES ? `  [noisy: other processes used ${cores.toFixed(2)} cores]` : '';
}

/** " = node 310 + postgres 120": the server CPU per op by program, when there is more than one. */
function programSplit(m: RunMeasurement): string {
  const parts = Object.entries(m.serverCpuByProgram).filter(([, s]) => (s * 1e6) / m.ops >= 0.5);
  if (parts.length < 2) return '';
  return ` = ${parts.map(([program, s]) => `${program} ${((s * 1e6) / m.ops).toFixed(0)}`).join(' + ')}`;
}

function gitRevision(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit}+dirty` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const config = loadBenchConfig();
  const startedAt = new Date();
  const live: LiveTarget[] = [];
  const stopAll = async () => {
    for (const t of live.splice(0)) {
      t.client.close();
      await t.running.stop().catch((err) => progress(`stopping ${t.target.name} failed: ${String(err)}`));
    }
  };
  process.once('SIGINT', () => { progress('interrupted, stopping servers'); void stopAll().finally(() => process.exit(130)); });

  const totalRuns = config.workloads.length * config.rounds * config.targets.length;
  progress(`bench: ${config.workloads.map((w) => w.name).join(', ')} on ${config.targets.map((t) => t.name).join(' vs ')}; ` +
    `${config.rounds} rounds x ${config.measureMs / 1000}s (+${config.warmupMs / 1000}s warmup), ${totalRuns} runs` +
    (config.selfCheck ? ' [SELF-CHECK: real etcd on both sides]' : ''));
  try {
    for (const target of config.targets) {
      progress(`starting ${target.name} ...`);
      const running = await target.start();
      const client = connectBenchClient(running.endpoint, config.connections);
      live.push({ target, running, client, version: '' });
      live[live.length - 1].version = await serverVersion(running.endpoint.split(',')[0]);
      progress(`  ${target.name} serving on ${running.endpoint} (pid ${running.pids.join(',')}, version ${live[live.length - 1].version})`);
    }

    const value = randomBytes(1024);
    for (const target of live) {
      if (config.targetWarmupMs <= 0) break;
      progress(`warming ${target.target.name} up: puts and gets, ${config.targetWarmupMs / 1000}s each ...`);
      await warmUp(target, value, config.targetWarmupMs);
    }
    const measurements: RunMeasurement[] = [];
    let done = 0;
    for (const workload of config.workloads) {
      for (let round = 1; round <= config.rounds; round++) {
        for (const target of live) {
          const m = await measure(workload, target, round, value, config.warmupMs, config.measureMs);
          measurements.push(m);
          const s = summarize(workload.name, workload.operation, target.target.name, [m]);
          progress(`[${String(++done).padStart(2)}/${totalRuns}] ${workload.name.padEnd(11)} ${target.target.name.padEnd(10)} round ${round}: ` +
            `${s.opsPerSecond.toFixed(0).padStart(6)} ${workload.operation}/s  p50 ${s.p50Ms.toFixed(3)} ms  p99 ${s.p99Ms.toFixed(3)} ms  ` +
            `server ${s.serverCpuUsPerOp.toFixed(1)} µs/op${programSplit(m)}${m.note ? `  (${m.note})` : ''}${noiseWarning(m)}`);
        }
      }
    }

    const summaries = config.workloads.flatMap((w) =>
      live.map((t) => summarize(w.name, w.operation, t.target.name, measurements.filter((m) => m.workload === w.name && m.target === t.target.name))));
    const baseline = live[0].target.name;
    const ratios = summaries
      .filter((s) => s.target !== baseline)
      .map((s) => ratio(s, summaries.find((b) => b.workload === s.workload && b.target === baseline)!));

    process.stdout.write(`\n${renderTable(summaries, ratios)}\n\n`);
    const hops = renderHops(summaries, (name) => live.find((t) => t.target.name === name)?.target.chain);
    if (hops) process.stdout.write(`${hops}\n\n`);
    process.stdout.write('p50/p99: client-seen latency per operation. Server CPU: user+sys of the server process tree during the measured runs,\n' +
      `per operation; (min-max over rounds). Ratios are target/${baseline}: ops/s above 1 is faster, the others above 1 are slower or costlier.\n`);

    const noisy = measurements.filter((m) => noiseWarning(m) !== '').length;
    if (noisy > 0) {
      process.stdout.write(`WARNING: ${noisy} of ${measurements.length} runs shared the machine with other busy processes ` +
        `(> ${NOISY_CORES} cores); latency and throughput of those runs are suspect, CPU per op less so.\n`);
    }

    writeJson(config.outputPath, {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      git: gitRevision(),
      host: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, platform: process.platform },
      settings: {
        measureSeconds: config.measureMs / 1000,
        warmupSeconds: config.warmupMs / 1000,
        targetWarmupSeconds: config.targetWarmupMs / 1000,
        rounds: config.rounds,
        connections: config.connections,
        selfCheck: config.selfCheck,
      },
      targets: live.map((t) => ({ name: t.target.name, description: t.target.description, version: t.version })),
      workloads: config.workloads.map((w) => ({ name: w.name, description: w.description, operation: w.operation, concurrency: w.concurrency })),
      summaries,
      ratios,
    });
    progress(`results written to ${config.outputPath}`);
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0), // grpc-js channels and stray timers must not keep the run alive
  (err) => {
    progress(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
