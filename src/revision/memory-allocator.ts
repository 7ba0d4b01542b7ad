// In-process allocator for a single node (the embedded default): no Redis, same contract.
import { untraced } from '../telemetry/tracing.ts';
import type { Allocation, KnownLeaves, RevisionAllocator } from './allocator.ts';

interface Waiter {
  leaves: readonly string[];
  rev: number;
  resolve: () => void;
}

export class MemoryAllocator implements RevisionAllocator {
  readonly checksGeneration = false;
  readonly soleWriter = true;
  /** Highest revision handed out. Invariant: every revision <= counter is allocated or a seed. */
  private counter = 1;
  /** Pending revisions per leaf, in allocation (= ascending) order. */
  private readonly pending = new Map<string, number[]>();
  private readonly listeners = new Set<(known: KnownLeaves) => void>();
  private waiters: Waiter[] = [];

  async seed(floor: number): Promise<void> {
    if (floor > this.counter) this.counter = floor;
  }

  async allocate(leaf: string): Promise<Allocation> {
    return { rev: this.allocateNow(leaf), generation: 0 };
  }

  /** In one process a writer cannot outlive the allocator: nothing ever expires. */
  async expired(): Promise<Array<{ leaf: string; rev: number }>> {
    return [];
  }

  /** Synchronous form for callers in the same process. */
  allocateNow(leaf: string): number {
    const rev = ++this.counter;
    let list = this.pending.get(leaf);
    if (!list) this.pending.set(leaf, (list = []));
    list.push(rev);
    return rev;
  }

  resolve(leaf: string, rev: number): void {
    const list = this.pending.get(leaf);
    if (!list) return;
    const i = list.indexOf(rev);
    if (i < 0) return;
    list.splice(i, 1);
    if (i === 0) this.advanced();
  }

  async pendingCount(leaf: string): Promise<number> {
    return this.pending.get(leaf)?.length ?? 0;
  }

  async current(): Promise<number> {
    return this.counter;
  }

  async watermark(leaves: readonly string[]): Promise<number> {
    return this.knownWatermark(leaves);
  }

  /** In one process every watermark is known: this is W(leaves). */
  knownWatermark(leaves: readonly string[]): number {
    let w = this.counter;
    for (const leaf of leaves) {
      const list = this.pending.get(leaf);
      if (list && list.length > 0 && list[0] - 1 < w) w = list[0] - 1;
    }
    return w;
  }

  async readIndex(leaves: readonly string[]): Promise<number> {
    const c = this.counter;
    await this.waitFor(leaves, c);
    return c;
  }

  waitFor(leaves: readonly string[], rev: number): Promise<void> {
    if (this.knownWatermark(leaves) >= rev) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ leaves, rev, resolve }));
  }

  onAdvance(cb: (known: KnownLeaves) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private advanced(): void {
    if (this.waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (this.knownWatermark(w.leaves) >= w.rev) w.resolve();
        else still.push(w);
      }
      this.waiters = still;
    }
    // Watch feeds are shared machinery, not part of the request whose commit woke them.
    untraced(() => {
      for (const cb of this.listeners) cb('all');
    });
  }
}
