// The router turns etcd requests into work on targets (leaves of this node, child nodes): it
// picks the target (or targets) for the keys, takes the read index (one for all of them; a
// child gets it with the request and waits for it itself), checks revisions against
// compaction, and refuses transactions that span targets. Services talk only to this class;
// targets, allocator and feeds sit behind.
import { LOCAL_CALL, type CallContext } from '../child/call-context.ts';
import { isChild } from '../child/child-node.ts';
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
import type { Target } from './target.ts';

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

  /** This node's own leaves (not the children's). */
  leaves(): LeafStore[] {
    return this.routes.targets().filter(isLeaf);
  }

  /** Every target: own leaves and child nodes. */
  targets(): Target[] {
    return this.routes.targets();
  }

  async range(req: RangeRequest, ctx: CallContext = LOCAL_CALL): Promise<RangeResponse> {
    const targets = this.routes.targetsFor(intervalOf(req.key, req.range_end));
    const leaves = targets.filter(isLeaf);
    const names = leaves.map((l) => l.name);
    const { allocator } = this.deps;
    let current: number;
    if (ctx.readIndex > 0) {
      // A parent's read: exactly at its read index, once this subtree has resolved it.
      current = ctx.readIndex;
      if (req.revision === 0) await allocator.waitFor(names, current);
    } else if (req.serializable && leaves.length === targets.length) {
      current = await allocator.watermark(names); // serializable: no waiting
    } else {
      // Linearizable (or through children): one read index for every target.
      current = await allocator.readIndex(names);
    }
    let rev = current;
    if (req.revision > 0) {
      if (req.revision > (await allocator.current())) throw Errors.futureRev();
      if (leaves.some((l) => req.revision < l.compactedRevision())) throw Errors.compacted();
      await allocator.waitFor(names, req.revision);
      rev = req.revision;
    }
    if (targets.length === 1) return { header: { revision: current }, ...(await targets[0].range(req, rev, ctx)) };
    const parts = await Promise.all(targets.map((t) => t.range(req, rev, ctx)));
    return { header: { revision: current }, ...mergeRanges(req, parts) };
  }

  /**
   * A KV request whose keys all route to one child goes there whole, and its answer comes back
   * still encoded, for the service to pass on (pass-through-reply.ts); null when the request
   * touches this node's leaves or several targets. A Range without a parent's read index lets
   * the child take the read index itself: no later than this request's arrival, so still
   * linearizable, and one Redis round trip fewer.
   */
  async forwardWhole(method: 'Range' | 'Put' | 'DeleteRange' | 'Txn', req: RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest, ctx: CallContext): Promise<Buffer | null> {
    if (!this.routes.hasChildren) return null; // the common case pays nothing for it
    let target: Target;
    let key: Buffer | undefined;
    if (method === 'Txn') {
      target = this.targetOfTxn(req as TxnRequest);
    } else {
      const r = req as RangeRequest;
      key = r.key;
      const targets = this.routes.targetsFor(intervalOf(r.key, method === 'Put' ? null : r.range_end));
      if (targets.length !== 1) return null;
      target = targets[0];
    }
    if (!isChild(target)) return null;
    return target.connection.unaryEncoded('KV', method, req, ctx, method === 'Range' ? ctx.readIndex : 0, key);
  }

  async txn(req: TxnRequest, ctx: CallContext = LOCAL_CALL): Promise<TxnOutcome> {
    const target = this.targetOfTxn(req);
    const leases = leasesOfTxn(req);
    const leaseCtx = { leaseExists: this.deps.leaseExists };
    // A child checks its leases itself.
    if (isChild(target) || leases.length === 0 || !this.deps.ensureLeases) return target.txn(req, leaseCtx, ctx);
    const ensure = () => this.deps.ensureLeases!(leases);
    await ensure();
    try {
      return await target.txn(req, leaseCtx, ctx);
    } catch (err) {
      // The answer ensureLeases got may have aged out while the txn waited for the leaf's write
      // lock; the refused txn changed nothing, so ask again and retry once.
      if (!(err instanceof EtcdError && err.message === LEASE_NOT_FOUND)) throw err;
      await ensure();
      return target.txn(req, leaseCtx, ctx);
    }
  }

  async put(req: PutRequest, ctx: CallContext = LOCAL_CALL): Promise<PutResponse> {
    const { response } = await this.txn({ compare: [], success: [{ request: 'request_put', request_put: req }], failure: [] }, ctx);
    const put = response.responses[0].response_put!;
    return { header: response.header, prev_kv: put.prev_kv };
  }

  /**
   * A delete over several targets deletes in each (one revision per leaf that had keys); the
   * answer adds them up, as one etcd delete would count them.
   */
  async deleteRange(req: DeleteRangeRequest, ctx: CallContext = LOCAL_CALL): Promise<DeleteRangeResponse> {
    const asTxn = (r: DeleteRangeRequest): TxnRequest => ({ compare: [], success: [{ request: 'request_delete_range', request_delete_range: r }], failure: [] });
    const targets = this.routes.targetsFor(intervalOf(req.key, req.range_end));
    // A child deletes over its own targets (a txn there could span its leaves).
    const answers = await Promise.all(
      targets.map(async (t) =>
        isChild(t) ? t.deleteRange(req, ctx) : (await t.txn(asTxn(req), { leaseExists: this.deps.leaseExists }, ctx)).response,
      ),
    );
    let deleted = 0;
    let revision = 0;
    const prevKvs = [];
    for (const response of answers) {
      const del = 'responses' in response ? response.responses[0].response_delete_range! : response;
      deleted += del.deleted;
      prevKvs.push(...del.prev_kvs);
      revision = Math.max(revision, response.header.revision);
    }
    prevKvs.sort((a, b) => Buffer.compare(a.key, b.key));
    return { header: { revision }, deleted, prev_kvs: prevKvs };
  }

  /** Deletes the lease's keys in every target, one write per leaf that holds some. */
  async revokeLeaseKeys(id: number, ctx: CallContext = LOCAL_CALL): Promise<void> {
    await Promise.all(this.targets().map((t) => t.revokeLeaseKeys(id, ctx)));
  }

  async keysOfLease(id: number, ctx: CallContext = LOCAL_CALL): Promise<Buffer[]> {
    const all = await Promise.all(this.targets().map((t) => t.keysOfLease(id, ctx)));
    return all.flat().sort(Buffer.compare);
  }

  /** Compacts every target: this node's leaves and, through them, every leaf of the subtree. */
  async compact(rev: number, physical: boolean, ctx: CallContext = LOCAL_CALL): Promise<number> {
    const current = await this.deps.allocator.current();
    if (this.leaves().some((l) => rev <= l.compactedRevision())) throw Errors.compacted();
    if (rev > current) throw Errors.futureRev();
    await Promise.all(this.targets().map((t) => t.compact(rev, physical, ctx)));
    return current;
  }

  /** The feed serving watches of the interval: a leaf's own, a child's upstream watch, or a merge. */
  async feedFor(key: Buffer, rangeEnd: Buffer, hops = 0): Promise<Feed> {
    const targets = this.routes.targetsFor(intervalOf(key, rangeEnd));
    const feedOf = (t: Target): Feed => (isChild(t) ? t.feedFor(key, rangeEnd, hops) : this.deps.feeds.get(t as LeafStore)!);
    if (targets.length === 1) {
      const feed = feedOf(targets[0]);
      await feed.ready();
      return feed;
    }
    // Leaf feeds carry every key of their leaf; a child's feed carries only the interval.
    const names = targets.map((t) => t.name).sort().join('\0');
    const id = targets.some(isChild) ? `${names}\0${hops}:${key.toString('hex')}:${rangeEnd.toString('hex')}` : names;
    let merged = this.merged.get(id);
    if (merged && (await merged.catch(() => null))?.broken) merged = undefined;
    if (!merged) {
      const feed = new MergedFeed(targets.map(feedOf));
      merged = feed.start().then(() => feed);
      this.merged.set(id, merged);
      merged.catch(() => this.merged.delete(id));
    }
    return merged;
  }

  /**
   * Where a new watch of the interval starts (etcd's "current revision"): every revision up to
   * it is resolved in these leaves. Through children: the counter, as the read index would be.
   */
  async watermarkFor(key: Buffer, rangeEnd: Buffer): Promise<number> {
    const targets = this.routes.targetsFor(intervalOf(key, rangeEnd));
    if (targets.some(isChild)) return this.deps.allocator.current();
    return this.deps.allocator.watermark(targets.map((l) => l.name));
  }

  async currentRevision(): Promise<number> {
    return this.deps.allocator.current();
  }

  async sizeBytes(ctx: CallContext = LOCAL_CALL): Promise<number> {
    const sizes = await Promise.all(this.targets().map((t) => t.sizeBytes(ctx)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** The highest revision stored anywhere below this node, the highest generation recorded, and (withSize) the size. */
  async subtreeState(ctx: CallContext = LOCAL_CALL, withSize = false): Promise<{ maxRevision: number; generation: number; dbSize: number }> {
    const all = await Promise.all(
      this.targets().map(async (t) =>
        isChild(t)
          ? t.subtreeReport(ctx, withSize)
          : { maxRevision: await t.headRevision(), generation: await t.generation(), dbSize: withSize ? await t.sizeBytes() : 0 },
      ),
    );
    return {
      maxRevision: Math.max(0, ...all.map((a) => a.maxRevision)),
      generation: Math.max(0, ...all.map((a) => a.generation)),
      dbSize: all.reduce((sum, a) => sum + a.dbSize, 0),
    };
  }

  /** The one target every key of the txn lives on; FailedPrecondition naming them otherwise. */
  private targetOfTxn(req: TxnRequest): Target {
    const leaves = new Set<Target>();
    const visit = (r: TxnRequest) => {
      for (const c of r.compare) for (const l of this.routes.targetsFor(intervalOf(c.key, c.range_end))) leaves.add(l);
      for (const op of [...r.success, ...r.failure]) {
        const key = op.request_range?.key ?? op.request_put?.key ?? op.request_delete_range?.key;
        const end = op.request_range?.range_end ?? op.request_delete_range?.range_end ?? null;
        if (op.request === 'request_txn' && op.request_txn) visit(op.request_txn);
        else if (key) for (const l of this.routes.targetsFor(intervalOf(key, end))) leaves.add(l);
      }
    };
    visit(req);
    if (leaves.size === 0) return this.routes.targets()[0];
    if (leaves.size > 1) throw Errors.crossLeafTxn([...leaves].map((l) => l.name));
    return [...leaves][0];
  }
}

/** Lease IDs the puts of a txn use, on both branches at every level (which run is not known yet). */
function isLeaf(t: Target): t is LeafStore {
  return !isChild(t);
}

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
