// One node's cache of leases known to be live, so exists() can answer synchronously inside leaf
// write transactions (store/txn-executor.ts check phase) while the truth lives in Redis.
//
// Why a key written under a cached "live" can never outlive its lease: an entry is trusted only
// while (local now - sentAt) < maxAgeMs, where sentAt is when the request that found the lease
// live was sent. That request also recorded in Redis ("vouched") that some node may accept puts
// with the lease until Redis' now + maxAgeMs (+ a margin). A revoker first claims the lease
// (from then on no fetch finds it live), then waits until every vouch lapsed, then deletes the
// keys in one write per leaf. A leaf's writers take turns (each holds the leaf's write lock from
// its checks to its commit), so every put that passed exists() with the lease either committed
// before the revoker's delete (which deletes its key) or checked after the vouch lapsed (and was
// refused). Pub/sub invalidation on claim only makes refusal prompt; the bound does not need it.
export class LiveLeaseCache {
  /** id -> local time (ms) the request that found it live was sent. */
  private readonly entries = new Map<number, number>();
  /** id -> local time it was invalidated: answers of requests sent before that are ignored. */
  private readonly dropped = new Map<number, number>();

  constructor(
    /** How long an entry may be trusted after its request was sent. */
    readonly maxAgeMs: number,
    /** Entries older than this are refreshed by ensureKnown (must be below maxAgeMs). */
    readonly refreshAfterMs: number,
    readonly now: () => number = () => performance.now(),
  ) {
    if (!(refreshAfterMs < maxAgeMs)) throw new Error(`lease cache: refresh age ${refreshAfterMs} ms must be below max age ${maxAgeMs} ms`);
  }

  isLive(id: number): boolean {
    const sentAt = this.entries.get(id);
    return sentAt !== undefined && this.now() - sentAt < this.maxAgeMs;
  }

  needsRefresh(id: number): boolean {
    const sentAt = this.entries.get(id);
    return sentAt === undefined || this.now() - sentAt >= this.refreshAfterMs;
  }

  /** Records the answer of a request sent at `sentAt`. */
  record(id: number, live: boolean, sentAt: number): void {
    if (!live) {
      this.entries.delete(id);
      return;
    }
    if (sentAt <= (this.dropped.get(id) ?? -Infinity)) return;
    const known = this.entries.get(id);
    if (known === undefined || known < sentAt) this.entries.set(id, sentAt);
  }

  /** The lease was claimed for revocation (or is gone): refuse it from now on. */
  invalidate(id: number): void {
    this.entries.delete(id);
    this.dropped.set(id, this.now());
  }

  /**
   * Forgets every entry (invalidations may have been missed while disconnected). Answers still
   * in flight may add theirs back: that is safe, the age bound holds for them as for any entry.
   */
  clear(): void {
    this.entries.clear();
  }

  /** Drops entries and invalidation marks too old to matter. */
  prune(): void {
    const now = this.now();
    for (const [id, sentAt] of this.entries) if (now - sentAt >= this.maxAgeMs) this.entries.delete(id);
    // An answer to a request sent before `at` would be trusted for less than maxAgeMs - (now - at).
    for (const [id, at] of this.dropped) if (now - at >= this.maxAgeMs) this.dropped.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}
