// resolve() is synchronous in the allocator contract: revisions to resolve are queued here and
// sent in the background, everything queued meanwhile in one script call, at most one call in
// flight. A failed call is retried with backoff: a lost resolve only delays the watermark until
// the deadline fencing resolves the revision, but there is no reason to wait for that. With span
// recording on, a call runs in the trace of the write that queued its first revision.
import type { Context } from '@opentelemetry/api';
import { captureContext, runInContext } from '../telemetry/tracing.ts';

export interface ResolveQueueOptions {
  /** Sends one batch (revisions grouped by leaf); rejects on failure. */
  send(groups: Map<string, number[]>): Promise<void>;
  /** Revisions per call. */
  maxBatch: number;
  onError?(err: unknown, attempt: number): void;
}

export class ResolveQueue {
  /** Revisions queued for the next call, grouped by leaf. */
  private queued = new Map<string, number[]>();
  private queuedCount = 0;
  /** The trace context of the write that queued the first of `queued` (only while spans are recorded). */
  private queuedContext: Context | undefined;
  /** Invariant: set while a send (or the wait before a retry) is in progress. */
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Calls made so far (a metric). */
  calls = 0;

  constructor(private readonly opts: ResolveQueueOptions) {}

  push(leaf: string, rev: number): void {
    if (this.stopped) return;
    if (this.queuedCount === 0) this.queuedContext = captureContext();
    let list = this.queued.get(leaf);
    if (!list) this.queued.set(leaf, (list = []));
    list.push(rev);
    this.queuedCount++;
    if (!this.running) {
      this.running = new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => this.drain());
    }
  }

  /** Revisions not yet confirmed resolved in Redis (queued or in flight). */
  get size(): number {
    return this.queuedCount + this.inFlight;
  }

  private inFlight = 0;

  /** Settles once everything queued so far was sent (or the queue was stopped). */
  async flushed(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops retrying; what is still queued is left to the deadline fencing. */
  stop(): void {
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    let attempt = 0;
    while (this.queuedCount > 0 && !this.stopped) {
      const traceContext = this.queuedContext;
      const batch = this.take();
      if (this.queuedCount === 0) this.queuedContext = undefined;
      this.inFlight = countOf(batch);
      this.calls++;
      try {
        await runInContext(traceContext, () => this.opts.send(batch));
        attempt = 0;
      } catch (err) {
        attempt++;
        this.opts.onError?.(err, attempt);
        this.requeue(batch);
        if (!this.stopped) await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 2000)).unref());
      } finally {
        this.inFlight = 0;
      }
    }
    this.running = null;
  }

  /** Takes up to maxBatch revisions, whole leaves first. */
  private take(): Map<string, number[]> {
    if (this.queuedCount <= this.opts.maxBatch) {
      const all = this.queued;
      this.queued = new Map();
      this.queuedCount = 0;
      return all;
    }
    const batch = new Map<string, number[]>();
    let room = this.opts.maxBatch;
    for (const [leaf, revs] of this.queued) {
      if (room === 0) break;
      const part = revs.splice(0, room);
      batch.set(leaf, part);
      room -= part.length;
      this.queuedCount -= part.length;
      if (revs.length === 0) this.queued.delete(leaf);
    }
    return batch;
  }

  private requeue(batch: Map<string, number[]>): void {
    for (const [leaf, revs] of batch) {
      const list = this.queued.get(leaf);
      if (list) list.unshift(...revs);
      else this.queued.set(leaf, revs);
      this.queuedCount += revs.length;
    }
  }
}

function countOf(batch: Map<string, number[]>): number {
  let n = 0;
  for (const revs of batch.values()) n += revs.length;
  return n;
}
