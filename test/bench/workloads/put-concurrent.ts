import type { Workload } from '../workload.ts';

/** Write throughput: enough requests in flight for group commit / batching to matter. */
export const putConcurrent: Workload = {
  name: 'put-32',
  description: 'Put of a new key, 1 KiB value, 32 requests in flight',
  operation: 'put',
  concurrency: 32,
  async prepare({ client, runPrefix, value }) {
    let n = 0;
    return { op: async (worker) => { await client.kv(worker).put(Buffer.from(`${runPrefix}${n++}`), value); } };
  },
};
