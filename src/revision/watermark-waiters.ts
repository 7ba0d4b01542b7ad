// Reads and linearizable reads waiting for W(S) >= rev. One snapshot (counter, generation,
// lowest pending revision per leaf, read atomically by one script) answers every waiter whose
// leaves it covers, whatever their leaf sets.
//
// A snapshot that shows W(S) >= rev stays true evidence later: a resolved revision stays
// resolved and revisions are never allocated at or below the counter. So an old snapshot can
// settle a waiter; only a failing one needs a fresh snapshot. A snapshot without a generation
// (Redis lost its data) settles nobody: its counter may have been re-seeded below revisions
// still in flight.
import type { RedisSnapshot } from './redis-scripts.ts';
import { RevisionsUnavailable } from './revisions-unavailable.ts';

/** W(leaves) according to `snap`; null when the snapshot does not cover every leaf or has no counter. */
export function watermarkOf(snap: RedisSnapshot, leaves: readonly string[]): number | null {
  if (snap.counter === null) return null;
  let w = snap.counter;
  for (const leaf of leaves) {
    const lowest = snap.lowest.get(leaf);
    if (lowest === undefined) return null;
    if (lowest > 0 && lowest - 1 < w) w = lowest - 1;
  }
  return w;
}

interface Waiter {
  leaves: readonly string[];
  rev: number;
  /** For read indexes: the generation C was read under; settled UNAVAILABLE if it changes. */
  generation: number | null;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

export class WatermarkWaiters {
  private waiters = new Set<Waiter>();

  constructor(private readonly maxWaitMs: number) {}

  get size(): number {
    return this.waiters.size;
  }

  /** Every leaf some waiter waits on (what the next snapshot must cover). */
  leaves(): string[] {
    const all = new Set<string>();
    for (const w of this.waiters) for (const leaf of w.leaves) all.add(leaf);
    return [...all];
  }

  /** Waits until a checked snapshot shows W(leaves) >= rev. */
  add(leaves: readonly string[], rev: number, generation: number | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        leaves,
        rev,
        generation,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new RevisionsUnavailable('timeout', `revisions unavailable: revision ${rev} of leaves ${leaves.join(', ')} not resolved within ${this.maxWaitMs} ms; retry`));
        }, this.maxWaitMs),
      };
      waiter.timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** Settles every waiter the snapshot answers. */
  check(snap: RedisSnapshot): void {
    for (const w of this.waiters) {
      if (snap.counter === null) {
        this.settle(w, RevisionsUnavailable.noCounter());
        continue;
      }
      if (w.generation !== null && snap.generation !== w.generation) {
        this.settle(w, new RevisionsUnavailable('no-generation', 'revisions unavailable: the revision counter generation changed while waiting (Redis lost its data?); retry'));
        continue;
      }
      // Without a generation nothing is vouched for: wait for it to be re-established.
      if (snap.generation === null) continue;
      const wm = watermarkOf(snap, w.leaves);
      if (wm !== null && wm >= w.rev) this.settle(w);
    }
  }

  rejectAll(err: unknown): void {
    for (const w of this.waiters) this.settle(w, err);
  }

  private settle(w: Waiter, err?: unknown): void {
    this.waiters.delete(w);
    clearTimeout(w.timer);
    if (err === undefined) w.resolve();
    else w.reject(err);
  }
}
