import type { RangeRequest } from '../bench-client.ts';
import type { Workload } from '../workload.ts';
import { populate, prefixEnd } from './keys.ts';

const KEYS = 10_000;
const PAGE = 500;
// Shared by every run on a server: populated once, then only read.
const PREFIX = '/bench/list/';

/**
 * kube-apiserver's paginated LIST: the first page at the head revision, the following pages at
 * that same revision, each continuing after the previous page's last key. One operation = one page.
 */
export const listPaginated: Workload = {
  name: 'list-10k',
  description: `Walk ${KEYS} keys (1 KiB values) in pages of ${PAGE}, continuing from the last key at the first page's revision`,
  operation: 'page',
  concurrency: 1,
  async prepare({ client, value }) {
    const kv = client.kv(0);
    const rangeEnd = prefixEnd(PREFIX);
    const existing = await kv.range({ key: Buffer.from(PREFIX), range_end: rangeEnd, count_only: true });
    if (existing.count !== KEYS) await populate(client.kv, PREFIX, KEYS, value);

    let walks = 0;
    let continueKey: Buffer | undefined; // undefined: the next page starts a new walk
    let revision = 0;
    let seen = 0;
    return {
      op: async () => {
        const request: RangeRequest = { key: continueKey ?? Buffer.from(PREFIX), range_end: rangeEnd, limit: PAGE };
        if (continueKey) request.revision = revision;
        const page = await kv.range(request);
        if (!continueKey) revision = page.header.revision;
        seen += page.kvs.length;
        if (page.more) {
          // The smallest key after the last one: the key itself plus a zero byte.
          continueKey = Buffer.concat([page.kvs[page.kvs.length - 1].key, Buffer.of(0)]);
          return;
        }
        if (seen !== KEYS) throw new Error(`a list walk returned ${seen} keys, expected ${KEYS}`);
        walks++;
        seen = 0;
        continueKey = undefined;
      },
      describe: () => `${walks} full walks`,
    };
  },
};
