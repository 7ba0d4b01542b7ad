// Every workload, in the order the benchmark runs them.
import type { Workload } from '../workload.ts';
import { getConcurrent } from './get-concurrent.ts';
import { listPaginated } from './list-paginated.ts';
import { putConcurrent } from './put-concurrent.ts';
import { putSequential } from './put-sequential.ts';
import { watchLatency } from './watch-latency.ts';

export const WORKLOADS: readonly Workload[] = [putSequential, putConcurrent, getConcurrent, listPaginated, watchLatency];
