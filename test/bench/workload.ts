// What a benchmark workload is: a closed-loop operation with a concurrency, plus the data or
// streams it needs, prepared outside the measured time.
import type { BenchClient } from './bench-client.ts';
import type { Operation } from './closed-loop.ts';

export interface WorkloadContext {
  client: BenchClient;
  /** A key prefix (ending in '/') that no other run has used, so runs don't see each other. */
  runPrefix: string;
  /** 1 KiB of random bytes: the value every write uses. */
  value: Buffer;
}

export interface PreparedWorkload {
  op: Operation;
  /** A summary checked or reported after the run, e.g. "12 full list walks". */
  describe?(): string;
  close?(): Promise<void> | void;
}

export interface Workload {
  /** Short id, used by BENCH_WORKLOADS and in the table. */
  name: string;
  description: string;
  /** What one counted operation is ("put", "get", "page", "event"). */
  operation: string;
  concurrency: number;
  prepare(ctx: WorkloadContext): Promise<PreparedWorkload>;
}
