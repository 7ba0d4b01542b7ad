// A closed-loop load: `concurrency` workers, each issuing its next operation as soon as the
// previous one completes, until the time is up. Latency is timed around each operation.
// Operations in flight at the deadline finish and count, so the server CPU sampled right after
// covers exactly the operations counted.

export type Operation = (worker: number) => Promise<void>;

export interface LoopResult {
  ops: number;
  elapsedNs: number;
  /** One entry per operation, in completion order. */
  latenciesNs: number[];
}

export async function runClosedLoop(op: Operation, concurrency: number, durationMs: number): Promise<LoopResult> {
  const latenciesNs: number[] = [];
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(durationMs * 1e6));
  let failure: unknown;

  async function worker(index: number): Promise<void> {
    // The first error stops every worker: a benchmark of failing requests measures nothing.
    while (failure === undefined) {
      const t0 = process.hrtime.bigint();
      if (t0 >= deadline) return;
      try {
        await op(index);
      } catch (err) {
        failure ??= err;
        return;
      }
      latenciesNs.push(Number(process.hrtime.bigint() - t0));
    }
  }

  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  if (failure !== undefined) throw failure;
  return { ops: latenciesNs.length, elapsedNs: Number(process.hrtime.bigint() - start), latenciesNs };
}
