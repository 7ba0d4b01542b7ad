// The router turns etcd requests into work on leaves: it picks the leaf (or leaves) for the
// keys, takes the read index, checks revisions against compaction, and refuses transactions
// that span leaves. Services talk only to this class; leaves, allocator and feeds sit behind.
import { Errors, EtcdError } from '../etcd/errors.ts';
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
} from '../store/types.ts';
import type { Feed } from '../watch/feed.ts';
import { MergedFeed } from '../watch/merged-feed.ts';
import { mergeRanges } from './range-merge.ts';
import type { RouteTable } from './route-table.ts';

const LEASE_NOT_FOUND = Errors.leaseNotFound().message;

export interface RouterDeps {
  routes: RouteTable;
  allocator: RevisionAllocator;
  feeds: Map<LeafStore, Feed>;
  leaseExists(id: number): boolean;
  /**
   * Awaited before a write txn with the lease IDs its puts use, so that leaseExists() (called
   * synchronously inside the leaf transaction) can answer for them: LeaseRegistry.ensureKnown.
   */
  ensureLeases?(ids: readonly number[]): Promise<void>;
}

export class Router {
  /** Merged feeds by leaf set, shared by every watch over the same leaves. */
  private readonly merged = new Map<string, Promise<MergedFeed>>();
  private routes: RouteTable;

  constructor(private readonly deps: RouterDeps) {
    this.routes = deps.routes;
  }

  /** Swaps in a new route table (hot reload); requests already running finish on the old one. */
  setRoutes(routes: RouteTable, feeds: Map<LeafStore, Feed>): void {
    this.routes = routes;
    this.deps.feeds = feeds;
    this.merged.clear();
  }

  get routeTable(): RouteTable {
    return this.routes;
  }

  get allocator(): RevisionAllocator {
    return this.deps.allocator;
  }

  leaves(): LeafStore[] {
    return this.routes.leaves();
  }

  async range(req: RangeRequest): Promise<RangeResponse> {
    const leaves = this.routes.leavesFor(intervalOf(req.key, req.range_end));
    const names = leaves.map((l) => l.name);
    const { allocator } = this.deps;
    // Linearizable: one read index for every leaf. Serializable: their watermark, no waiting.
    const current = req.serializable ? await allocator.watermark(names) : await allocator.readIndex(names);
    let rev = current;
    if (req.revision > 0) {
      if (req.revision > (await allocator.current())) throw Errors.futureRev();
      if (leaves.some((l) => req.revision < l.compactedRevision())) throw Errors.compacted();
      await allocator.waitFor(names, req.revision);
      rev = req.revision;
    }
    if (leaves.length === 1) return { header: { revision: current }, ...(await leaves[0].range(req, rev)) };
    const parts = await Promise.all(leaves.map((l) => l.range(req, rev)));
    return { header: { revision: current }, ...mergeRanges(req, parts) };
  }

  async txn(req: TxnRequest): Promise<TxnOutcome> {
    const leaf = this.leafOfTxn(req);
    const leases = leasesOfTxn(req);
    if (leases.length === 0 || !this.deps.ensureLeases) return leaf.txn(req, { leaseExists: this.deps.leaseExists });
    const ensure = () => this.deps.ensureLeases!(leases);
    await ensure();
    try {
      return await leaf.txn(req, { leaseExists: this.deps.leaseExists });
    } catch (err) {
      // The answer ensureLeases got may have aged out while the txn waited for the leaf's write
      // lock; the refused txn changed nothing, so ask again and retry once.
      if (!(err instanceof EtcdError && err.message === LEASE_NOT_FOUND)) throw err;
      await ensure();
      return leaf.txn(req, { leaseExists: this.deps.leaseExists });
    }
  }

  async put(req: PutRequest): Promise<PutResponse> {
    const { response } = await this.txn({ compare: [], success: [{ request: 'request_put', request_put: req }], failure: [] });
    const put = response.responses[0].response_put!;
    return { header: response.header, prev_kv: put.prev_kv };
  }

  /**
   * A delete over several leaves deletes in each (one revision per leaf that had keys); the
   * answer adds them up, as one etcd delete would count them.
   */
  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const asTxn = (r: DeleteRangeRequest): TxnRequest => ({ compare: [], success: [{ request: 'request_delete_range', request_delete_range: r }], failure: [] });
    const leaves = this.routes.leavesFor(intervalOf(req.key, req.range_end));
    const outcomes = await Promise.all(leaves.map((leaf) => leaf.txn(asTxn(req), { leaseExists: this.deps.leaseExists })));
    let deleted = 0;
    let revision = 0;
    const prevKvs = [];
    for (const { response } of outcomes) {
      const del = response.responses[0].response_delete_range!;
      deleted += del.deleted;
      prevKvs.push(...del.prev_kvs);
      revision = Math.max(revision, response.header.revision);
    }
    prevKvs.sort((a, b) => Buffer.compare(a.key, b.key));
    return { header: { revision }, deleted, prev_kvs: prevKvs };
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

  /** The feed serving watches of the interval: the leaf's own, or a merge of several. */
  async feedFor(key: Buffer, rangeEnd: Buffer): Promise<Feed> {
    const leaves = this.routes.leavesFor(intervalOf(key, rangeEnd));
    if (leaves.length === 1) {
      const feed = this.deps.feeds.get(leaves[0])!;
      await feed.ready();
      return feed;
    }
    const id = leaves.map((l) => l.name).sort().join('\0');
    let merged = this.merged.get(id);
    if (!merged) {
      const feed = new MergedFeed(leaves.map((l) => this.deps.feeds.get(l)!));
      merged = feed.start().then(() => feed);
      this.merged.set(id, merged);
      merged.catch(() => this.merged.delete(id));
    }
    return merged;
  }

  /** W of the interval's leaves: every revision up to it is resolved there. */
  async watermarkFor(key: Buffer, rangeEnd: Buffer): Promise<number> {
    return this.deps.allocator.watermark(this.routes.leavesFor(intervalOf(key, rangeEnd)).map((l) => l.name));
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
      for (const c of r.compare) for (const l of this.routes.leavesFor(intervalOf(c.key, c.range_end))) leaves.add(l);
      for (const op of [...r.success, ...r.failure]) {
        const key = op.request_range?.key ?? op.request_put?.key ?? op.request_delete_range?.key;
        const end = op.request_range?.range_end ?? op.request_delete_range?.range_end ?? null;
        if (op.request === 'request_txn' && op.request_txn) visit(op.request_txn);
        else if (key) for (const l of this.routes.leavesFor(intervalOf(key, end))) leaves.add(l);
      }
    };
    visit(req);
    if (leaves.size === 0) return this.routes.leaves()[0];
    if (leaves.size > 1) throw Errors.crossLeafTxn([...leaves].map((l) => l.name));
    return [...leaves][0];
  }
}

/** Lease IDs the puts of a txn use, on both branches at every level (which run is not known yet). */
export function leasesOfTxn(req: TxnRequest): number[] {
  const ids = new Set<number>();
  const visit = (r: TxnRequest) => {
    for (const op of [...r.success, ...r.failure]) {
      if (op.request === 'request_put' && op.request_put && op.request_put.lease !== 0) ids.add(op.request_put.lease);
      else if (op.request === 'request_txn' && op.request_txn) visit(op.request_txn);
    }
  };
  visit(req);
  return [...ids];
}
