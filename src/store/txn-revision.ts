// One write txn's revision as the store holds it: asked for early (with its commit group, when
// the txn will surely write) or when the txn first changes something; the same one if its group
// is redone; given back at once if it was asked for early and never used.
import type { Allocation, RevisionAllocator } from '../revision/allocator.ts';

export class TxnRevision {
  private asked: Promise<Allocation> | null = null;
  private allocation: Allocation | null = null;

  constructor(
    private readonly allocator: RevisionAllocator,
    private readonly leaf: string,
  ) {}

  /** The revision taken so far (0: none). */
  get rev(): number {
    return this.allocation?.rev ?? 0;
  }

  /** Asks now, before the txn runs; a failure reaches the txn through take(). */
  askEarly(): void {
    if (this.asked) return;
    this.asked = this.allocator.allocate(this.leaf);
    this.asked.catch(() => undefined);
  }

  /** The txn's revision, allocated once however often it is taken. */
  async take(): Promise<Allocation> {
    this.allocation ??= await (this.asked ?? this.allocator.allocate(this.leaf));
    return this.allocation;
  }

  /** etcd's current revision for the txn's reads: the one before its own once that is counted. */
  async view(): Promise<number> {
    return this.asked ? (await this.asked).rev - 1 : this.allocator.current();
  }

  /** A revision asked for early and never taken (the txn failed first) is not pending either. */
  releaseUnused(): void {
    if (this.asked && !this.allocation) {
      this.asked.then(
        (a) => this.allocator.resolve(this.leaf, a.rev),
        () => undefined,
      );
    }
  }
}
