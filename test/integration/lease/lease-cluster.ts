// Several "nodes" in one process over the same leaves: each node is a Router + RedisLessor, as
// node.ts would wire them, all sharing two SQLite leaves (prefix /a/ and the catch-all), one
// revision allocator and one Redis key prefix of their own (deleted afterwards). A recorder
// watches every key through the merged feed of both leaves, so tests can count delete events.
// Lease records are persisted in the catch-all leaf (b), the home leaf.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { LeaseKeys } from '../../../src/lease/lease-registry.ts';
import { RedisLessor, type RedisLessorOptions } from '../../../src/lease/redis-lessor.ts';
import { MemoryAllocator } from '../../../src/revision/memory-allocator.ts';
import { RouteTable } from '../../../src/router/route-table.ts';
import { Router } from '../../../src/router/router.ts';
import { SqliteDialect } from '../../../src/store/dialects/sqlite/sqlite-dialect.ts';
import { MvccStore } from '../../../src/store/mvcc-store.ts';
import { EventType, type MvccEvent, type TxnRequest } from '../../../src/store/types.ts';
import type { Feed } from '../../../src/watch/feed.ts';
import { LeafFeed } from '../../../src/watch/leaf-feed.ts';

export const REDIS_URL = process.env.ETCD_TREE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/** Fast settings so expiry tests take a few seconds; the bounds are the same arithmetic. */
export const FAST: Partial<RedisLessorOptions> = { expiryCheckMs: 100, cacheMaxAgeMs: 800, cacheRefreshMs: 200, claimMs: 1500 };

export interface TestNode {
  name: string;
  router: Router;
  lessor: RedisLessor;
  put(key: string, value: string, lease?: number): Promise<number>;
  txn(req: TxnRequest): ReturnType<Router['txn']>;
  get(key: string): Promise<{ value: string; lease: number } | null>;
}

export interface LeaseCluster {
  prefix: string;
  redis: Redis;
  leafA: MvccStore;
  leafB: MvccStore;
  /** A new node (RedisLessor started); `keys` replaces the router as the lessor's LeaseKeys. */
  node(name: string, opts?: Partial<RedisLessorOptions> & { keys?: (router: Router) => LeaseKeys }): Promise<TestNode>;
  /** Every event seen by the watch on all keys, in revision order. */
  events: MvccEvent[];
  deletesOf(key: string): number;
  /** Waits until the watch has delivered everything up to the allocator's current revision. */
  caughtUp(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function leaseCluster(): Promise<LeaseCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-tree-lease-'));
  const prefix = `etcd-tree-test:${randomBytes(6).toString('hex')}:`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const allocator = new MemoryAllocator();
  const leafA = new MvccStore('a', new SqliteDialect({ path: join(dir, 'a.db') }), allocator);
  const leafB = new MvccStore('b', new SqliteDialect({ path: join(dir, 'b.db') }), allocator);
  await leafA.open();
  await leafB.open();
  const feeds = new Map<MvccStore, LeafFeed>([
    [leafA, new LeafFeed(leafA, allocator, 50)],
    [leafB, new LeafFeed(leafB, allocator, 50)],
  ]);
  const routes = () => new RouteTable([{ prefix: Buffer.from('/a/'), target: leafA }, { prefix: Buffer.alloc(0), target: leafB }]);
  const nodes: TestNode[] = [];

  const makeNode = async (name: string, opts: Partial<RedisLessorOptions> & { keys?: (router: Router) => LeaseKeys } = {}): Promise<TestNode> => {
    const { keys, ...lessorOpts } = opts;
    let lessor: RedisLessor | undefined;
    // As node.ts must wire it: leaseExists and ensureLeases both go to the lessor.
    const router = new Router({
      routes: routes(),
      allocator,
      feeds: feeds as Map<MvccStore, Feed>,
      leaseExists: (id) => lessor!.exists(id),
      ensureLeases: (ids) => lessor!.ensureKnown(ids),
    });
    lessor = new RedisLessor(leafB, keys ? keys(router) : router, { url: REDIS_URL, keyPrefix: prefix, nodeName: name, ...FAST, ...lessorOpts });
    await lessor.start();
    const node: TestNode = {
      name,
      router,
      lessor,
      txn: (req) => router.txn(req),
      async put(key, value, lease = 0) {
        const r = await router.put({ key: Buffer.from(key), value: Buffer.from(value), lease, prev_kv: false, ignore_value: false, ignore_lease: false });
        return r.header.revision;
      },
      async get(key) {
        const r = await router.range({ key: Buffer.from(key), range_end: Buffer.alloc(0), limit: 0, revision: 0, sort_order: 0, sort_target: 0, serializable: false, keys_only: false, count_only: false, min_mod_revision: 0, max_mod_revision: 0, min_create_revision: 0, max_create_revision: 0 });
        const kv = r.kvs[0];
        return kv ? { value: kv.value.toString(), lease: kv.lease } : null;
      },
    };
    nodes.push(node);
    return node;
  };

  // The recorder: one watch over every key, through a router of its own.
  const watcher = new Router({ routes: routes(), allocator, feeds: feeds as Map<MvccStore, Feed>, leaseExists: () => false });
  const events: MvccEvent[] = [];
  let seen = 0;
  const feed = await watcher.feedFor(Buffer.from([0]), Buffer.from([0]));
  feed.subscribe({
    onRevisions: (batch) => {
      for (const r of batch) {
        events.push(...r.events);
        seen = Math.max(seen, r.rev);
      }
    },
    onProgress: (rev) => (seen = Math.max(seen, rev)),
  });

  return {
    prefix,
    redis,
    leafA,
    leafB,
    node: makeNode,
    events,
    deletesOf: (key) => events.filter((e) => e.type === EventType.DELETE && e.kv.key.toString() === key).length,
    async caughtUp() {
      const target = await allocator.current();
      const deadline = Date.now() + 10_000;
      while (seen < target) {
        if (Date.now() > deadline) throw new Error(`watch stuck at ${seen}, current ${target}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async cleanup() {
      await Promise.all(nodes.map((n) => n.lessor.stop()));
      for (const f of feeds.values()) f.stop();
      await leafA.close();
      await leafB.close();
      rmSync(dir, { recursive: true, force: true });
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (found.length > 0) await redis.del(...found);
      } while (cursor !== '0');
      await redis.quit();
    },
  };
}
