// The router turns etcd requests into work on leaves: it picks the leaf (or leaves) for the
// keys, takes the read index, checks revisions against compaction, and refuses transactions
// that span leaves. Services talk only to this class; leaves, allocator and feeds sit behind.
import { Errors } from '../etcd/errors.ts';
import type { RevisionAllocator } from '../revision/allocator.ts';
import type { LeafStore } from '../store/leaf-store.ts';
import type { TxnOutcome } from '../store/txn-executor.ts';
import {
  intervalOf,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from '../store/types.ts';
import type { Feed } from '../watch/feed.ts';
import type { RouteTable } from './route-table.ts';

export interface RouterDeps {
  routes: RouteTable;
  allocator: RevisionAllocator;
  feeds: Map<LeafStore, Feed>;
  leaseExists(id: number): boolean;
}

export class Router {
  constructor(private readonly deps: RouterDeps) {}

  get allocator(): RevisionAllocator {
    return this.deps.allocator;
  }

  leaves(): LeafStore[] {
    return this.deps.routes.leaves();
  }

  private single(leaves: LeafStore[], what: string): LeafStore {
    if (leaves.length === 1) return leaves[0];
    throw Errors.unimplemented(`${what} over several leaves (${leaves.map((l) => l.name).join(', ')})`);
  }

  async range(req: RangeRequest): Promise<RangeResponse> {
    const leaf = this.single(this.deps.routes.leavesFor(intervalOf(req.key, req.range_end)), 'a range');
    const names = [leaf.name];
    const { allocator } = this.deps;
    // Linearizable: read at the read index. Serializable: at the watermark, without waiting.
    const current = req.serializable ? await allocator.watermark(names) : await allocator.readIndex(names);
    let rev = current;
    if (req.revision > 0) {
      if (req.revision > (await allocator.current())) throw Errors.futureRev();
      if (req.revision < leaf.compactedRevision()) throw Errors.compacted();
      await allocator.waitFor(names, req.revision);
      rev = req.revision;
    }
    const rows = await leaf.range(req, rev);
    return { header: { revision: current }, ...rows };
  }

  async txn(req: TxnRequest): Promise<TxnOutcome> {
    const leaf = this.leafOfTxn(req);
    const outcome = await leaf.txn(req, { leaseExists: this.deps.leaseExists });
    return outcome;
  }

  async put(req: PutRequest): Promise<PutResponse> {
    const { response } = await this.txn({ compare: [], success: [{ request: 'request_put', request_put: req }], failure: [] });
    const put = response.responses[0].response_put!;
    return { header: response.header, prev_kv: put.prev_kv };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const { response } = await this.txn({ compare: [], success: [{ request: 'request_delete_range', request_delete_range: req }], failure: [] });
    const del = response.responses[0].response_delete_range!;
    return { header: response.header, deleted: del.deleted, prev_kvs: del.prev_kvs };
  }

  /** Deletes the lease's keys in every leaf, one write per leaf that holds some. */
  async revokeLeaseKeys(id: number): Promise<void> {
    await Promise.all(this.leaves().map((leaf) => leaf.revokeLeaseKeys(id)));
  }

  async keysOfLease(id: number): Promise<Buffer[]> {
    const all = await Promise.all(this.leaves().map((l) => l.keysOfLease(id)));
    return all.flat().sort(Buffer.compare);
  }

  async compact(rev: number, physical: boolean): Promise<number> {
    const current = await this.deps.allocator.current();
    const leaves = this.leaves();
    if (leaves.some((l) => rev <= l.compactedRevision())) throw Errors.compacted();
    if (rev > current) throw Errors.futureRev();
    await Promise.all(leaves.map((l) => l.compact(rev, physical)));
    return current;
  }

  /** The feed serving watches of the interval. */
  feedFor(key: Buffer, rangeEnd: Buffer): Feed {
    const leaf = this.single(this.deps.routes.leavesFor(intervalOf(key, rangeEnd)), 'a watch');
    return this.deps.feeds.get(leaf)!;
  }

  async currentRevision(): Promise<number> {
    return this.deps.allocator.current();
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const l of this.leaves()) total += await l.sizeBytes();
    return total;
  }

  /** The one leaf every key of the txn lives on; FailedPrecondition naming them otherwise. */
  private leafOfTxn(req: TxnRequest): LeafStore {
    const leaves = new Set<LeafStore>();
    const visit = (r: TxnRequest) => {
      for (const c of r.compare) for (const l of this.deps.routes.leavesFor(intervalOf(c.key, c.range_end))) leaves.add(l);
      for (const op of [...r.success, ...r.failure]) {
        const key = op.request_range?.key ?? op.request_put?.key ?? op.request_delete_range?.key;
        const end = op.request_range?.range_end ?? op.request_delete_range?.range_end ?? null;
        if (op.request === 'request_txn' && op.request_txn) visit(op.request_txn);
        else if (key) for (const l of this.deps.routes.leavesFor(intervalOf(key, end))) leaves.add(l);
      }
    };
    visit(req);
    if (leaves.size === 0) return this.deps.routes.leaves()[0];
    if (leaves.size > 1) throw Errors.crossLeafTxn([...leaves].map((l) => l.name));
    return [...leaves][0];
  }
}

export type { TxnResponse };
