import type { Workload } from '../workload.ts';
import { populate } from './keys.ts';

const KEYS = 1000;

/** Linearizable single-key reads (kube-apiserver's Get), 32 in flight, over 1000 existing keys. */
export const getConcurrent: Workload = {
  name: 'get-32',
  description: `Range of one existing key (of ${KEYS}), linearizable, 32 requests in flight`,
  operation: 'get',
  concurrency: 32,
  async prepare({ client, runPrefix, value }) {
    const keys = await populate(client.kv, runPrefix, KEYS, value);
    return {
      op: async (worker) => {
        const res = await client.kv(worker).range({ key: keys[Math.floor(Math.random() * KEYS)] });
        if (res.kvs.length !== 1) throw new Error(`get returned ${res.kvs.length} keys, expected 1`);
      },
    };
  },
};
