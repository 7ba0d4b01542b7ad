// One feed per leaf per node, however many watchers: it tails the leaf's log in revision order
// up to the leaf's watermark, woken when the allocator says a watermark advanced, with a slow
// poll as a safety net.
import type { RevisionAllocator } from '../revision/allocator.ts';
import type { EventsPage, LeafStore } from '../store/leaf-store.ts';
import { log } from '../telemetry/logger.ts';
import type { Feed, FeedListener } from './feed.ts';

const READ_BATCH = 1000;

export class LeafFeed implements Feed {
  /** Invariant: every event of this leaf with revision <= position went to every listener. */
  position = 0;
  private readonly listeners = new Set<FeedListener>();
  private pumping = false;
  /** Wake-ups that came while pumping: none, only ones the known watermark covers, or one that must ask. */
  private again: 'known' | 'ask' | null = null;
  private readonly unsubscribe: () => void;
  private readonly poll: NodeJS.Timeout;
  private readonly leaves: string[];
  private stopped = false;
  private started = false;

  constructor(private readonly store: LeafStore, private readonly allocator: RevisionAllocator, pollMs = 1000) {
    this.leaves = [store.name];
    this.unsubscribe = allocator.onAdvance((known) => this.wake(known === 'all' || known.has(store.name)));
    this.poll = setInterval(() => this.wake(), pollMs);
    this.poll.unref();
  }

  /** Resolves once the feed has a starting position (it may wait for the allocator). */
  private startedAt: Promise<void> | null = null;

  /**
   * Starts at the leaf's current watermark: nothing before it is "new". If the allocator cannot
   * answer yet (Redis unreachable), it retries until it can; until then the feed emits nothing
   * and ready() waits.
   */
  start(): Promise<void> {
    this.startedAt ??= (async () => {
      for (;;) {
        try {
          this.position = await this.allocator.watermark(this.leaves);
          this.started = true;
          return;
        } catch (err) {
          if (this.stopped) throw err;
          log.warn({ leaf: this.store.name, err: { message: (err as Error).message } }, 'watch feed waits for the revision allocator');
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();
    return this.startedAt;
  }

  ready(): Promise<void> {
    return this.start();
  }

  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  history(after: number, upTo: number, limit: number): Promise<EventsPage> {
    return this.store.events(after, upTo, limit);
  }

  compactedRevision(): number {
    return this.store.compactedRevision();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    clearInterval(this.poll);
  }

  /**
   * Catches up with the leaf's watermark. `known`: the allocator already knows this leaf's new
   * watermark (this node resolved the revision), so it is taken without a round trip.
   */
  wake(known = false): void {
    if (this.stopped || !this.started) return;
    if (this.pumping) {
      this.again = this.again === 'ask' || !known ? 'ask' : 'known';
      return;
    }
    this.pumping = true;
    void this.pump(known)
      .catch((err) => log.warn({ err, leaf: this.store.name }, 'watch feed could not read the log; retrying on the next wake-up'))
      .finally(() => {
        this.pumping = false;
        const again = this.again;
        this.again = null;
        if (again) this.wake(again === 'known');
      });
  }

  private async pump(known: boolean): Promise<void> {
    const w = known ? this.allocator.knownWatermark(this.leaves) : await this.allocator.watermark(this.leaves);
    while (w > this.position) {
      // Nobody to tell: move on without reading the log (a watcher that comes later catches
      // up from history anyway).
      if (this.listeners.size === 0) {
        this.position = w;
        return;
      }
      const page = await this.store.events(this.position, w, READ_BATCH);
      if (page.revisions.length > 0) for (const l of this.listeners) l.onRevisions(page.revisions);
      this.position = page.complete;
      for (const l of this.listeners) l.onProgress(page.complete);
    }
  }
}
