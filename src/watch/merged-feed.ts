// A revision-ordered merge of several feeds (one per leaf of a watch's key range). Each child
// has delivered everything up to its position, so everything up to the lowest child position
// can go out, in revision order: that is the watermark merge of DESIGN.md section 5. A leaf
// that stalls holds back only the merges that include it.
import type { EventsPage, RevisionEvents } from '../store/leaf-store.ts';
import type { Feed, FeedListener } from './feed.ts';

interface Child {
  feed: Feed;
  /** Revisions received from this child and not yet emitted (all > this.position). */
  pending: RevisionEvents[];
  /** Everything of this child up to here is in `pending` or already emitted. */
  reached: number;
  ready: boolean;
}

export class MergedFeed implements Feed {
  /** Invariant: every event of every child with revision <= position has been emitted. */
  position = 0;
  private readonly listeners = new Set<FeedListener>();
  private readonly children: Child[];
  private readonly unsubscribes: Array<() => void> = [];

  constructor(feeds: Feed[]) {
    this.children = feeds.map((feed) => ({ feed, pending: [], reached: feed.position, ready: false }));
  }

  /**
   * Subscribes to every child, then fills in from history what the children had already
   * emitted above the lowest child position, so nothing between is lost.
   */
  async ready(): Promise<void> {
    await this.started;
  }

  private started: Promise<void> = Promise.resolve();

  async start(): Promise<void> {
    await Promise.all(this.children.map((c) => c.feed.ready()));
    // Synchronously: subscribe to every child and note where each one stands. From here on a
    // child emits only revisions above its noted position, straight into `pending`.
    const noted = this.children.map((child) => {
      this.unsubscribes.push(
        child.feed.subscribe({
          onRevisions: (batch) => child.pending.push(...batch),
          onProgress: (rev) => {
            if (rev > child.reached) child.reached = rev;
            this.flush();
          },
          onCompacted: (compactRevision) => this.compacted(compactRevision),
        }),
      );
      child.reached = child.feed.position;
      return child.feed.position;
    });
    this.position = Math.min(...noted);
    // Then fill (position, noted] of every child from history, ahead of what arrives live.
    await Promise.all(
      this.children.map(async (child, i) => {
        const filled: RevisionEvents[] = [];
        for (let after = this.position; after < noted[i]; ) {
          const page = await child.feed.history(after, noted[i], 1000);
          filled.push(...page.revisions);
          after = page.complete;
        }
        child.pending = [...filled, ...child.pending];
        child.ready = true;
      }),
    );
    this.flush();
  }

  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async history(after: number, upTo: number, limit: number): Promise<EventsPage> {
    const pages = await Promise.all(this.children.map((c) => c.feed.history(after, upTo, limit)));
    const complete = Math.min(...pages.map((p) => p.complete));
    const revisions = pages.flatMap((p) => p.revisions.filter((r) => r.rev <= complete)).sort((a, b) => a.rev - b.rev);
    return { revisions, complete };
  }

  compactedRevision(): number {
    return Math.max(...this.children.map((c) => c.feed.compactedRevision()));
  }

  stop(): void {
    for (const u of this.unsubscribes) u();
  }

  /** Set once a child could not continue: this merge is finished; watches need a new one. */
  broken = false;

  private compacted(compactRevision: number): void {
    this.broken = true;
    this.stop();
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const l of listeners) l.onCompacted?.(compactRevision);
  }

  private flush(): void {
    if (!this.children.every((c) => c.ready)) return;
    const upTo = Math.min(...this.children.map((c) => c.reached));
    if (upTo <= this.position) return;
    const out: RevisionEvents[] = [];
    for (const child of this.children) {
      let n = 0;
      while (n < child.pending.length && child.pending[n].rev <= upTo) n++;
      if (n > 0) out.push(...child.pending.splice(0, n));
    }
    out.sort((a, b) => a.rev - b.rev);
    this.position = upTo;
    if (out.length > 0) for (const l of this.listeners) l.onRevisions(out);
    for (const l of this.listeners) l.onProgress(upTo);
  }
}
