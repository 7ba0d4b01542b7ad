// One watch: its key interval, filters and options, and the revision arithmetic that makes it
// exact. It first catches up from history, then attaches to the live feed; `nextRev` dedupes
// the seam between the two (events below it were already sent).
import type { RevisionEvents } from '../store/leaf-store.ts';
import { EventType, intervalContains, type KeyInterval, type MvccEvent } from '../store/types.ts';
import type { Feed, FeedListener } from './feed.ts';

export const FILTER_NOPUT = 0;
export const FILTER_NODELETE = 1;
const HISTORY_BATCH = 1000;

export interface WatchOptions {
  id: number;
  interval: KeyInterval;
  /** First revision to deliver. */
  startRev: number;
  prevKv: boolean;
  progressNotify: boolean;
  fragment: boolean;
  filters: number[];
}

/** What a watcher emits; the stream turns these into WatchResponses. */
export interface WatcherSink {
  events(w: Watcher, headerRev: number, events: MvccEvent[]): void;
  progress(w: Watcher, rev: number): void;
  compacted(w: Watcher, compactRev: number): void;
  /** The watcher finished catching up (used to answer deferred progress requests). */
  synced(w: Watcher): void;
  /** The watcher's synced revision advanced without events for it (progress since). */
  advanced?(w: Watcher): void;
}

export class Watcher implements FeedListener {
  /** Invariant: every matching event with revision < nextRev has been handed to the sink. */
  private nextRev: number;
  /** Live = attached to the feed; before that it is catching up from history. */
  live = false;
  closed = false;
  /** Revision of the last thing sent (events or progress), for progress notifications. */
  lastSentRev = 0;
  /** Events were sent since the last progress tick. */
  sentSinceTick = false;
  private detach: (() => void) | null = null;

  constructor(readonly options: WatchOptions, private readonly feed: Feed, private readonly sink: WatcherSink) {
    this.nextRev = options.startRev;
  }

  get id(): number {
    return this.options.id;
  }

  /** Catches up from history, then attaches to the feed. */
  async start(): Promise<void> {
    try {
      await this.catchUp();
    } catch (err) {
      // Compacted meanwhile (possibly by another node): etcd's compact_revision answer.
      const compactRevision = (err as { compactRevision?: unknown }).compactRevision;
      if (typeof compactRevision !== 'number') throw err;
      this.sink.compacted(this, compactRevision);
      this.close();
    }
  }

  private async catchUp(): Promise<void> {
    const compacted = this.feed.compactedRevision();
    if (this.nextRev < compacted) {
      this.sink.compacted(this, compacted);
      this.close();
      return;
    }
    while (!this.closed && this.nextRev <= this.feed.position) {
      const page = await this.feed.history(this.nextRev - 1, this.feed.position, HISTORY_BATCH);
      if (this.closed) return;
      if (this.feed.compactedRevision() > this.nextRev) {
        this.sink.compacted(this, this.feed.compactedRevision());
        this.close();
        return;
      }
      this.deliver(page.revisions, page.complete);
      this.nextRev = Math.max(this.nextRev, page.complete + 1);
    }
    if (this.closed) return;
    // No await between the check above and here: nothing can be emitted in between.
    this.detach = this.feed.subscribe(this);
    this.live = true;
    this.sink.synced(this);
  }

  onRevisions(batch: RevisionEvents[]): void {
    const before = this.nextRev;
    for (const r of batch) {
      if (r.rev < this.nextRev) continue;
      this.deliver([r], r.rev);
      this.nextRev = r.rev + 1;
    }
    // Revisions of other keys move this watch on too, with nothing sent for them: progress.
    if (this.nextRev > before) this.sink.advanced?.(this);
  }

  onCompacted(compactRevision: number): void {
    if (this.closed) return;
    this.sink.compacted(this, compactRevision);
    this.close();
  }

  onProgress(rev: number): void {
    if (rev + 1 > this.nextRev) {
      this.nextRev = rev + 1;
      this.sink.advanced?.(this);
    }
  }

  /** The revision up to which this watcher is complete. */
  get syncedRev(): number {
    return this.nextRev - 1;
  }

  close(): void {
    this.closed = true;
    this.live = false;
    this.detach?.();
    this.detach = null;
  }

  private deliver(revisions: RevisionEvents[], headerRev: number): void {
    const { interval, filters, prevKv } = this.options;
    const out: MvccEvent[] = [];
    for (const r of revisions) {
      for (const ev of r.events) {
        if (!intervalContains(interval, ev.kv.key)) continue;
        if (ev.type === EventType.PUT && filters.includes(FILTER_NOPUT)) continue;
        if (ev.type === EventType.DELETE && filters.includes(FILTER_NODELETE)) continue;
        out.push(prevKv || ev.prev_kv === null ? ev : { type: ev.type, kv: ev.kv, prev_kv: null });
      }
    }
    if (out.length > 0) {
      this.lastSentRev = headerRev;
      this.sentSinceTick = true;
      this.sink.events(this, headerRev, out);
    }
  }
}
