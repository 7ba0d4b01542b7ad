// The leaf store contract: what the router needs from one leaf database.
import type { RangeRows } from './range-reader.ts';
import type { TxnOutcome } from './txn-executor.ts';
import type { KeyValue, MvccEvent, RangeRequest, TxnRequest } from './types.ts';

export interface RevisionEvents {
  rev: number;
  events: MvccEvent[];
}

export interface EventsPage {
  revisions: RevisionEvents[];
  complete: number;
}

export interface LeaseRecord {
  id: number;
  ttl: number;
}

export interface TxnContext {
  leaseExists(id: number): boolean;
}

export interface LeafStore {
  readonly name: string;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Highest revision written to this leaf (0 when empty). */
  headRevision(): Promise<number>;
  /** Revision below which history is gone. */
  compactedRevision(): number;
  /** The leaf's state at `rev` (every revision <= rev of this leaf must be resolved). */
  range(req: RangeRequest, rev: number): Promise<RangeRows>;
  txn(req: TxnRequest, ctx: TxnContext): Promise<TxnOutcome>;
  /**
   * Marks history below `rev` compacted (reads below it fail from now on), then removes it
   * physically in batches; with `physical` the promise waits for the removal.
   */
  compact(rev: number, physical: boolean): Promise<void>;
  /**
   * Events with after < rev <= upTo, whole revisions only, about `limit` events at most.
   * `complete` is the revision up to which the answer is complete (upTo unless truncated).
   */
  events(after: number, upTo: number, limit: number): Promise<EventsPage>;
  keysOfLease(id: number): Promise<Buffer[]>;
  /** Deletes every key attached to the lease in one write (one revision); returns it or 0. */
  revokeLeaseKeys(id: number): Promise<number>;
  listLeases(): Promise<LeaseRecord[]>;
  saveLease(lease: LeaseRecord): Promise<void>;
  deleteLease(id: number): Promise<void>;
  sizeBytes(): Promise<number>;
  /** The revision counter generation this leaf accepts writes under (DESIGN.md 4). */
  generation(): Promise<number>;
  setGeneration(generation: number): Promise<void>;
  /** Writes a gap row at a pending revision whose writer is presumed dead; false if it had committed. */
  fence(rev: number): Promise<boolean>;
}

export type { KeyValue };
