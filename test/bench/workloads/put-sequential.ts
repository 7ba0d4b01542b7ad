import type { Workload } from '../workload.ts';

/** Write latency with nothing else in flight: dominated by each server's commit (fsync) path. */
export const putSequential: Workload = {
  name: 'put-seq',
  description: 'Put of a new key, 1 KiB value, one request at a time',
  operation: 'put',
  concurrency: 1,
  async prepare({ client, runPrefix, value }) {
    const kv = client.kv(0);
    let n = 0;
    return { op: async () => { await kv.put(Buffer.from(`${runPrefix}${n++}`), value); } };
  },
};
