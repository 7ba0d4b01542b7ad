// The revision allocator contract (DESIGN.md section 4). One global revision sequence; every
// revision is allocated to one leaf and stays pending there until resolved (committed or rolled
// back). The watermark W(S) of a set of leaves is the highest revision r such that every
// revision <= r allocated to a leaf in S is resolved. Implementations: memory (single node),
// redis (shared by every node of a tree, a later issue).

/** A revision handed to a writer, with the generation of the counter it came from. */
export interface Allocation {
  rev: number;
  /**
   * The counter's generation (DESIGN.md 4): a write commits only if its leaf's meta row holds
   * the same generation, so a revision allocated before Redis lost its data can never commit
   * after. The memory allocator has no generations and answers 0, as leaves start with 0.
   */
  generation: number;
}

/** The leaves whose advance a wake-up already put into knownWatermark(): all of them, or these. */
export type KnownLeaves = 'all' | ReadonlySet<string>;

export interface RevisionAllocator {
  /** True when the allocator hands out generations that the leaves must check (Redis). */
  readonly checksGeneration: boolean;
  /**
   * True when every revision comes from this process (memory): then every write to this node's
   * leaves is made here, and a leaf may serve its latest events from memory (recent-events.ts).
   */
  readonly soleWriter: boolean;
  /** Seeds the counter so it is at least `floor` (the highest revision found in the leaves). */
  seed(floor: number): Promise<void>;
  /** Allocates the next revision for a write to `leaf`. It is pending until resolve(). */
  allocate(leaf: string): Promise<Allocation>;
  /** Marks `rev` of `leaf` resolved: its transaction committed or certainly rolled back. */
  resolve(leaf: string, rev: number): void;
  /** Highest revision allocated so far (etcd's "current revision"). */
  current(): Promise<number>;
  /** W(leaves). */
  watermark(leaves: readonly string[]): Promise<number>;
  /** Linearizable read index: C = current(); waits until W(leaves) >= C; returns C. */
  readIndex(leaves: readonly string[]): Promise<number>;
  /** Resolves once W(leaves) >= rev. */
  waitFor(leaves: readonly string[], rev: number): Promise<void>;
  /**
   * Pending revisions of these leaves whose deadline passed (their writer crashed or hangs):
   * the node fences each with a gap row, then resolves it. The memory allocator has none.
   */
  expired(leaves: readonly string[]): Promise<Array<{ leaf: string; rev: number }>>;
  /** How many revisions of `leaf` are pending (a metric). */
  pendingCount(leaf: string): Promise<number>;
  /**
   * A watermark of `leaves` this node has already seen, without asking anyone: never above
   * W(leaves), maybe below it.
   */
  knownWatermark(leaves: readonly string[]): number;
  /**
   * Calls cb whenever some watermark may have advanced; `known` says for which leaves the
   * advance is already in knownWatermark() (this node resolved it), so seeing it costs no round
   * trip. Returns an unsubscribe function.
   */
  onAdvance(cb: (known: KnownLeaves) => void): () => void;
  close(): Promise<void>;
}
