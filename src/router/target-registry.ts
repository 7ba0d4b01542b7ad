// The targets a node has open, by backend name: leaves (each with its watch feed) and child
// nodes; and the route table built from a topology over them.
import { ChildNode } from '../child/child-node.ts';
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
import type { Target } from './target.ts';

type OpenTarget =
  | { kind: 'leaf'; spec: string; store: LeafStore; feed: LeafFeed }
  | { kind: 'child'; spec: string; child: ChildNode };

export type OpenTargets = Map<string, OpenTarget>;

/** The definition a target was opened with (a changed definition opens a new target). */
function specOf(b: Backend): string {
  const { definedAt: _ignored, ...rest } = b;
  return JSON.stringify(rest);
}

function targetOf(o: OpenTarget): Target {
  return o.kind === 'leaf' ? o.store : o.child;
}

async function closeTarget(o: OpenTarget): Promise<void> {
  if (o.kind === 'child') return o.child.close();
  o.feed.stop();
  await o.store.close();
}

export class TargetRegistry {
  private readonly open: OpenTargets = new Map();

  constructor(private readonly allocator: RevisionAllocator) {}

  /** Opens every backend of the topology that is not open yet (or whose definition changed). */
  async openAll(topology: Topology): Promise<OpenTargets> {
    const result: OpenTargets = new Map();
    for (const backend of topology.backends.values()) {
      const current = this.open.get(backend.name);
      if (current && current.spec === specOf(backend)) {
        result.set(backend.name, current);
        continue;
      }
      if (backend.kind === 'node') {
        // Connections are made lazily: a child that is down answers UNAVAILABLE for its keys only.
        result.set(backend.name, { kind: 'child', spec: specOf(backend), child: new ChildNode(backend) });
        continue;
      }
      const store = await openLeaf(backend, this.allocator);
      // Revisions never go below what a leaf already holds (etcd's empty store is at 1).
      await this.allocator.seed(Math.max(1, await store.headRevision())).catch((err) =>
        log.warn({ leaf: backend.name, err: { message: (err as Error).message } }, 'could not seed the revision counter yet; the generation keeper will'),
      );
      const feed = new LeafFeed(store, this.allocator);
      void feed.start().catch(() => undefined);
      result.set(backend.name, { kind: 'leaf', spec: specOf(backend), store, feed });
    }
    return result;
  }

  /** Makes `targets` the open set; closes what is no longer used. */
  async adopt(targets: OpenTargets): Promise<void> {
    const kept = new Set(targets.values());
    const retired = [...this.open.values()].filter((o) => !kept.has(o));
    this.open.clear();
    for (const [name, o] of targets) this.open.set(name, o);
    for (const o of retired) await closeTarget(o);
  }

  /** Closes targets opened for a topology that was then refused. */
  async discard(targets: OpenTargets): Promise<void> {
    const inUse = new Set(this.open.values());
    for (const o of targets.values()) if (!inUse.has(o)) await closeTarget(o);
  }

  /** This node's own leaves. */
  stores(): LeafStore[] {
    return [...this.open.values()].flatMap((o) => (o.kind === 'leaf' ? [o.store] : []));
  }

  static routesOf(topology: Topology, targets: OpenTargets): RouteTable {
    return new RouteTable(
      topology.routes.map((r) => {
        const prefix = Buffer.from(r.prefix);
        const to = r.to.map((name) => targetOf(targets.get(name)!));
        return { prefix, target: r.shardSegment === null ? to[0] : new ShardSet(prefix, to, r.shardSegment) };
      }),
    );
  }

  static feedsOf(targets: OpenTargets): Map<LeafStore, Feed> {
    return new Map([...targets.values()].flatMap((o) => (o.kind === 'leaf' ? [[o.store, o.feed] as const] : [])));
  }

  async closeAll(): Promise<void> {
    await this.adopt(new Map());
  }
}
