// Merges the answers of several leaves to one Range exactly as one etcd would answer it.
// Each leaf got the same request, so each returned its own first `limit` keys in the asked
// order (after filters); the global first `limit` are among them. Count is the sum of counts.
import { effectiveSortOrder, sortKvs, type RangeRows } from '../store/range-reader.ts';
import { SortOrder, type RangeRequest } from '../store/types.ts';

export function mergeRanges(req: RangeRequest, parts: RangeRows[]): RangeRows {
  let count = 0;
  let more = false;
  for (const p of parts) {
    count += p.count;
    more ||= p.more;
  }
  if (req.count_only) return { kvs: [], more: false, count };
  let kvs = parts.flatMap((p) => p.kvs);
  // Key order first, then a stable sort by the target: ties keep key order, as in etcd.
  kvs.sort((a, b) => Buffer.compare(a.key, b.key));
  const order = effectiveSortOrder(req);
  if (order !== SortOrder.NONE) sortKvs(kvs, req.sort_target, order === SortOrder.DESCEND);
  if (req.limit > 0 && kvs.length > req.limit) {
    kvs = kvs.slice(0, req.limit);
    more = true;
  }
  return { kvs, more, count };
}
