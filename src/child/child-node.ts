// A child node as a routing target (DESIGN.md 7): every request for its keys is forwarded over
// the etcd v3 API, reads at the parent's read index. The child's own subtree (leaves, further
// children, shards) stays its business; the tree service answers what only a parent asks
// (tree.proto): the subtree's highest revision and generation, lease keys, lease records.
import type { LeaseRecord, TxnContext } from '../store/leaf-store.ts';
import type { RangeRows } from '../store/range-reader.ts';
import type { TxnOutcome } from '../store/txn-executor.ts';
import type { DeleteRangeRequest, DeleteRangeResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse } from '../store/types.ts';
import type { LeaseHome, Target } from '../router/target.ts';
import type { NodeBackend } from '../topology/backend-spec.ts';
import { LOCAL_CALL, type CallContext } from './call-context.ts';
import { ChildConnection } from './child-connection.ts';
import { ChildFeed } from './child-feed.ts';

interface SubtreeReply {
  max_revision: number;
  generation: number;
  db_size: number;
}

export class ChildNode implements Target, LeaseHome {
  readonly isChild = true;
  readonly connection: ChildConnection;
  /** The highest compaction this node asked of the child (reads below it fail there anyway). */
  private compacted = 0;
  /** Upstream watches by watched interval, shared by every local watcher of that interval. */
  private readonly feeds = new Map<string, ChildFeed>();

  constructor(readonly spec: NodeBackend) {
    this.connection = new ChildConnection(spec);
  }

  get name(): string {
    return this.spec.name;
  }

  /** The child's state at `rev`: it waits until its watermark reaches rev, then reads there. */
  async range(req: RangeRequest, rev: number, ctx: CallContext = LOCAL_CALL): Promise<RangeRows> {
    const res = await this.connection.unary<RangeResponse>('KV', 'Range', req, ctx, rev, req.key);
    return { kvs: res.kvs, more: res.more, count: res.count };
  }

  async txn(req: TxnRequest, _leases: TxnContext, ctx: CallContext = LOCAL_CALL): Promise<TxnOutcome> {
    const response = await this.connection.unary<TxnResponse>('KV', 'Txn', req, ctx, 0, firstKeyOf(req));
    return { response, rev: response.header.revision };
  }

  deleteRange(req: DeleteRangeRequest, ctx: CallContext = LOCAL_CALL): Promise<DeleteRangeResponse> {
    return this.connection.unary<DeleteRangeResponse>('KV', 'DeleteRange', req, ctx, 0, req.key);
  }

  async compact(rev: number, physical: boolean, ctx: CallContext = LOCAL_CALL): Promise<void> {
    await this.connection.unary('KV', 'Compact', { revision: rev, physical }, ctx);
    this.compacted = Math.max(this.compacted, rev);
  }

  compactedRevision(): number {
    return this.compacted;
  }

  async keysOfLease(id: number, ctx: CallContext = LOCAL_CALL): Promise<Buffer[]> {
    const res = await this.connection.unary<{ keys: Buffer[] }>('Tree', 'LeaseKeys', { id }, ctx);
    return res.keys;
  }

  async revokeLeaseKeys(id: number, ctx: CallContext = LOCAL_CALL): Promise<number> {
    await this.connection.unary('Tree', 'RevokeLeaseKeys', { id }, ctx);
    return 0;
  }

  async sizeBytes(ctx: CallContext = LOCAL_CALL): Promise<number> {
    return (await this.subtree(0, ctx, true)).db_size;
  }

  async headRevision(ctx: CallContext = LOCAL_CALL): Promise<number> {
    return (await this.subtree(0, ctx)).max_revision;
  }

  async generation(ctx: CallContext = LOCAL_CALL): Promise<number> {
    return (await this.subtree(0, ctx)).generation;
  }

  /** Every leaf of the subtree records the generation (before the root publishes it in Redis). */
  async setGeneration(generation: number, ctx: CallContext = LOCAL_CALL): Promise<void> {
    await this.subtree(generation, ctx);
  }

  /** The subtree's highest revision and generation (and size, withSize) in one call. */
  subtreeReport(ctx: CallContext, withSize: boolean): Promise<{ maxRevision: number; generation: number; dbSize: number }> {
    return this.subtree(0, ctx, withSize).then((r) => ({ maxRevision: r.max_revision, generation: r.generation, dbSize: r.db_size }));
  }

  async listLeases(): Promise<LeaseRecord[]> {
    const res = await this.connection.unary<{ leases: LeaseRecord[] }>('Tree', 'ListLeases', {}, LOCAL_CALL);
    return res.leases;
  }

  async saveLease(lease: LeaseRecord): Promise<void> {
    await this.connection.unary('Tree', 'SaveLease', lease, LOCAL_CALL);
  }

  /** Lease records leave the home leaf with RevokeLeaseKeys (the revocation's last step there). */
  async deleteLease(): Promise<void> {}

  /** The shared upstream watch of an interval (created on first use). */
  /**
   * The shared upstream watch of an interval (created on first use). `hops`: how many nodes the
   * watches it serves crossed before this one (the upstream goes one further, so a routing loop
   * ends at the hop limit). A feed that could not start is forgotten, so the next watch retries.
   */
  feedFor(key: Buffer, rangeEnd: Buffer, hops: number): ChildFeed {
    const id = `${hops}:${key.toString('hex')}:${rangeEnd.toString('hex')}`;
    let feed = this.feeds.get(id);
    if (!feed) {
      const created = new ChildFeed(this.connection, key, rangeEnd, hops);
      this.feeds.set(id, created);
      created.ready().catch(() => {
        if (this.feeds.get(id) === created) this.feeds.delete(id);
      });
      feed = created;
    }
    return feed;
  }

  async close(): Promise<void> {
    for (const f of this.feeds.values()) f.stop();
    this.feeds.clear();
    this.connection.close();
  }

  private subtree(setGeneration: number, ctx: CallContext, withSize = false): Promise<SubtreeReply> {
    return this.connection.unary<SubtreeReply>('Tree', 'Subtree', { set_generation: setGeneration, with_size: withSize }, ctx);
  }
}

export function isChild(target: object): target is ChildNode {
  return (target as { isChild?: boolean }).isChild === true;
}

/** A key a txn touches, to name in errors. */
function firstKeyOf(req: TxnRequest): Buffer | undefined {
  const op = req.success[0] ?? req.failure[0];
  return req.compare[0]?.key ?? op?.request_put?.key ?? op?.request_range?.key ?? op?.request_delete_range?.key;
}
