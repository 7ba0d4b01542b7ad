// Fencing (DESIGN.md 4): a revision still pending past its deadline belongs to a writer that
// crashed or lost its connection mid-commit. Any node that owns the leaf writes a gap row at
// that revision (exactly one of {gap row, late writer} can take the slot), then resolves it, so
// no watermark stalls for longer than the deadline.
import type { LeafStore } from '../store/leaf-store.ts';
import { log } from '../telemetry/logger.ts';
import type { RevisionAllocator } from './allocator.ts';

export class Fencer {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly allocator: RevisionAllocator,
    private readonly leaves: () => LeafStore[],
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round: fence and resolve every expired revision of this node's leaves. */
  async tick(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let fenced = 0;
    try {
      const byName = new Map(this.leaves().map((l) => [l.name, l]));
      if (byName.size === 0) return 0;
      for (const { leaf, rev } of await this.allocator.expired([...byName.keys()])) {
        const store = byName.get(leaf);
        if (!store) continue;
        const gap = await store.fence(rev);
        this.allocator.resolve(leaf, rev);
        if (gap) fenced++;
        log.warn({ leaf, rev, gap }, gap ? 'fenced a revision whose writer never resolved it' : 'expired revision had committed; resolved it');
      }
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'fencing round failed; retrying');
    } finally {
      this.running = false;
    }
    return fenced;
  }
}
