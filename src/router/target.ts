// What a route leads to: a leaf database of this node (LeafStore) or a child node (ChildNode).
// The router speaks to both through this contract; a child waits for its own watermark (the
// read index travels with the request), a leaf's watermark is waited for here.
import type { CallContext } from '../child/call-context.ts';
import type { LeaseRecord, TxnContext } from '../store/leaf-store.ts';
import type { RangeRows } from '../store/range-reader.ts';
import type { TxnOutcome } from '../store/txn-executor.ts';
import type { RangeRequest, TxnRequest } from '../store/types.ts';

export interface Target {
  readonly name: string;
  /** State at `rev` (the read index). */
  range(req: RangeRequest, rev: number, ctx: CallContext): Promise<RangeRows>;
  txn(req: TxnRequest, ctx: TxnContext, call: CallContext): Promise<TxnOutcome>;
  compact(rev: number, physical: boolean, ctx: CallContext): Promise<void>;
  compactedRevision(): number;
  keysOfLease(id: number, ctx: CallContext): Promise<Buffer[]>;
  revokeLeaseKeys(id: number, ctx: CallContext): Promise<number>;
  sizeBytes(ctx?: CallContext): Promise<number>;
  /** Highest revision stored (in the subtree, for a child). */
  headRevision(ctx?: CallContext): Promise<number>;
  generation(ctx?: CallContext): Promise<number>;
  setGeneration(generation: number, ctx?: CallContext): Promise<void>;
}

/** Where a node keeps lease records so that Redis losing them loses no lease: a leaf, or a child's home. */
export interface LeaseHome {
  listLeases(): Promise<LeaseRecord[]>;
  saveLease(lease: LeaseRecord): Promise<void>;
  deleteLease(id: number): Promise<void>;
}
