// The leaves a node has open, by backend name, each with its watch feed; and the route table
// built from a topology over them.
import type { RevisionAllocator } from '../revision/allocator.ts';
import { log } from '../telemetry/logger.ts';
import type { LeafStore } from '../store/leaf-store.ts';
import { openLeaf } from '../store/open-leaf.ts';
import type { Backend } from '../topology/backend-spec.ts';
import type { Topology } from '../topology/load-topology.ts';
import type { Feed } from '../watch/feed.ts';
import { LeafFeed } from '../watch/leaf-feed.ts';
import { RouteTable } from './route-table.ts';
import { ShardSet } from './shard-set.ts';

interface OpenLeaf {
  /** The backend definition it was opened with (a changed definition opens a new leaf). */
  spec: string;
  store: LeafStore;
  feed: LeafFeed;
}

function specOf(b: Backend): string {
  const { definedAt: _ignored, ...rest } = b;
  return JSON.stringify(rest);
}

export class LeafRegistry {
  private readonly open = new Map<string, OpenLeaf>();

  constructor(private readonly allocator: RevisionAllocator) {}

  /** Opens every backend of the topology that is not open yet (or whose definition changed). */
  async openAll(topology: Topology): Promise<Map<string, OpenLeaf>> {
    const result = new Map<string, OpenLeaf>();
    for (const backend of topology.backends.values()) {
      const current = this.open.get(backend.name);
      if (current && current.spec === specOf(backend)) {
        result.set(backend.name, current);
        continue;
      }
      const store = await openLeaf(backend, this.allocator);
      // Revisions never go below what a leaf already holds (etcd's empty store is at 1).
      await this.allocator.seed(Math.max(1, await store.headRevision())).catch((err) =>
        log.warn({ leaf: backend.name, err: { message: (err as Error).message } }, 'could not seed the revision counter yet; the generation keeper will'),
      );
      const feed = new LeafFeed(store, this.allocator);
      void feed.start().catch(() => undefined);
      result.set(backend.name, { spec: specOf(backend), store, feed });
    }
    return result;
  }

  /** Makes `leaves` the open set; closes what is no longer used. */
  async adopt(leaves: Map<string, OpenLeaf>): Promise<void> {
    const retired = [...this.open.values()].filter((o) => ![...leaves.values()].includes(o));
    this.open.clear();
    for (const [name, o] of leaves) this.open.set(name, o);
    for (const o of retired) {
      o.feed.stop();
      await o.store.close();
    }
  }

  /** Closes leaves opened for a topology that was then refused. */
  async discard(leaves: Map<string, OpenLeaf>): Promise<void> {
    for (const o of leaves.values()) {
      if ([...this.open.values()].includes(o)) continue;
      o.feed.stop();
      await o.store.close();
    }
  }

  stores(): LeafStore[] {
    return [...this.open.values()].map((o) => o.store);
  }

  static routesOf(topology: Topology, leaves: Map<string, OpenLeaf>): RouteTable {
    return new RouteTable(
      topology.routes.map((r) => {
        const prefix = Buffer.from(r.prefix);
        const stores = r.to.map((name) => leaves.get(name)!.store);
        return { prefix, target: r.shardSegment === null ? stores[0] : new ShardSet(prefix, stores, r.shardSegment) };
      }),
    );
  }

  static feedsOf(leaves: Map<string, OpenLeaf>): Map<LeafStore, Feed> {
    return new Map([...leaves.values()].map((o) => [o.store, o.feed]));
  }

  async closeAll(): Promise<void> {
    await this.adopt(new Map());
  }
}
