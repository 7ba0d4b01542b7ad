// Keeps the shared revision counter trustworthy (DESIGN.md 4, "Redis losing its data"): while
// Redis has no generation, writes and linearizable reads fail UNAVAILABLE; a node that sees
// the whole keyspace (a root: its targets are every leaf of the tree, directly or through
// children) re-establishes it from the targets (counter above every revision they hold, new
// generation recorded in every leaf of the tree first). A branch only waits for its root.
// Leaves that joined later get the generation in force.
import type { Target } from '../router/target.ts';
import { log } from '../telemetry/logger.ts';
import type { RedisAllocator } from './redis-allocator.ts';

export class GenerationKeeper {
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly allocator: RedisAllocator,
    private readonly leaves: () => Target[],
    /** False on a branch: it cannot see the whole tree, so it must not pick the floor. */
    private readonly mayEstablish = true,
    private readonly intervalMs = 1000,
  ) {}

  /** Makes sure a generation is in force and every leaf records it. */
  ensure(): Promise<void> {
    this.checking ??= this.check().finally(() => (this.checking = null));
    return this.checking;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.ensure().catch((err) => log.warn({ err: { message: (err as Error).message } }, 'revision generation check failed; retrying'));
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    const leaves = this.leaves();
    let generation = await this.allocator.currentGeneration();
    if (generation === null) {
      if (!this.mayEstablish) throw new Error('the revision counter has no generation; waiting for a root node to re-establish it');
      let floor = 0;
      let leafGeneration = 0;
      for (const leaf of leaves) {
        floor = Math.max(floor, await leaf.headRevision());
        leafGeneration = Math.max(leafGeneration, await leaf.generation());
      }
      log.warn({ floor, leafGeneration }, 'the revision counter has no generation: re-establishing it from the leaves');
      generation = await this.allocator.establishGeneration(floor, leafGeneration, async (g) => {
        for (const leaf of leaves) await leaf.setGeneration(g);
      });
    }
    for (const leaf of leaves) {
      const mine = await leaf.generation();
      if (mine === generation) continue;
      if (mine > generation) {
        log.error({ leaf: leaf.name, leafGeneration: mine, generation }, 'a leaf records a newer revision generation than Redis: is this node on the right Redis?');
        continue;
      }
      // A leaf new to this counter: its revisions must stay below the counter before it takes writes.
      await this.allocator.seed(await leaf.headRevision());
      await leaf.setGeneration(generation);
    }
  }
}
