// The Redis allocator under real leaf stores (SQLite), driven the way a node drives them:
// first start (seed, establish the generation into the leaves' meta rows), writes from two
// nodes on one sequence, fencing an expired revision, and a leaf that missed a generation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RedisAllocator } from '../../../src/revision/redis-allocator.ts';
import { SqliteDialect } from '../../../src/store/dialects/sqlite/sqlite-dialect.ts';
import { MvccStore } from '../../../src/store/mvcc-store.ts';
import { LeafFeed } from '../../../src/watch/leaf-feed.ts';
import { waitFor } from '../helpers/wait.ts';
import { b, ctx, failure, put, range, txn } from '../store/requests.ts';
import { isSettled, redisFixture, sleep, type RedisFixture } from './redis-fixture.ts';

let fx: RedisFixture;
let dir: string;
const stores: MvccStore[] = [];

beforeEach(() => {
  fx = redisFixture();
  dir = mkdtempSync(join(tmpdir(), 'redis-allocator-store-'));
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await fx.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function openLeaf(name: string, allocator: RedisAllocator): Promise<MvccStore> {
  const store = new MvccStore(name, new SqliteDialect({ path: join(dir, `${name}.sqlite`) }), allocator);
  await store.open();
  stores.push(store);
  return store;
}

/** What a node that sees every leaf does when the generation is missing. */
async function establish(allocator: RedisAllocator, leaves: MvccStore[]): Promise<number> {
  const floor = Math.max(1, ...(await Promise.all(leaves.map((l) => l.headRevision()))));
  const leafGeneration = Math.max(0, ...(await Promise.all(leaves.map((l) => l.generation()))));
  return allocator.establishGeneration(floor, leafGeneration, async (g) => {
    await Promise.all(leaves.map((l) => l.setGeneration(g)));
  });
}

describe('RedisAllocator with SQLite leaves', () => {
  it('two nodes write to their leaves on one sequence; reads see every write', async () => {
    const node1 = fx.allocator();
    const node2 = fx.allocator();
    const l1 = await openLeaf('l1', node1);
    const l2 = await openLeaf('l2', node2);
    await node1.seed(await l1.headRevision());
    await node2.seed(await l2.headRevision());
    // Before a generation exists, writes are refused UNAVAILABLE.
    expect((await failure(l1.txn(txn(put('k', 'v')), ctx))).code).toBe(Code.UNAVAILABLE);
    // The node that sees both leaves establishes it, into both meta rows first.
    expect(await establish(node1, [l1, l2])).toBe(1);
    expect([await l1.generation(), await l2.generation()]).toEqual([1, 1]);

    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? l1 : l2).txn(txn(put(`k${i}`, `v${i}`)), ctx)),
    );
    const revs = outcomes.map((o) => o.rev);
    expect(new Set(revs).size).toBe(40);
    const last = Math.max(...revs);
    expect(await node2.readIndex(['l1', 'l2'])).toBe(last);
    const r = await l1.range(range('k', 'l'), last);
    expect(r.kvs).toHaveLength(20);
    expect(await node1.pendingCount('l1')).toBe(0);
  });

  it('an expired revision (its writer died) is fenced by the owner and stops holding reads back', async () => {
    const node = fx.allocator({ deadlineMs: 200, pollMs: 10_000 });
    const leaf = await openLeaf('l1', node);
    await node.seed(1);
    await establish(node, [leaf]);
    const crashed = await node.allocate('l1'); // a writer that will never resolve it
    const ok = await leaf.txn(txn(put('a', '1')), ctx);
    const read = node.readIndex(['l1']);
    await sleep(100);
    expect(await isSettled(read)).toBe(false);

    // The node's fencing loop.
    await waitFor(async () => (await node.expired(['l1'])).length > 0, 'the revision expires');
    for (const { leaf: name, rev } of await node.expired(['l1'])) {
      expect(name).toBe('l1');
      expect(rev).toBe(crashed.rev);
      expect(await leaf.fence(rev)).toBe(true);
      node.resolve(name, rev);
    }
    expect(await read).toBe(ok.rev);
  });

  it('a leaf that missed the current generation refuses writes until it is given it', async () => {
    const node = fx.allocator();
    const l1 = await openLeaf('l1', node);
    const l2 = await openLeaf('l2', node);
    await node.seed(1);
    await establish(node, [l1, l2]);
    await l1.txn(txn(put('a', '1')), ctx);
    // Redis loses its data; the root re-establishes, but only l1 was reachable (or l2 is new).
    await fx.flush();
    await node.seed(await l1.headRevision());
    const g = await establish(node, [l1]);
    expect(g).toBe(2);
    expect(await l2.generation()).toBe(1);
    const refused = await failure(l2.txn(txn(put(b('b'), b('1'))), ctx));
    expect(refused.code).toBe(Code.UNAVAILABLE);
    expect(refused.message).toMatch(/generation changed/);
    // Adopting the leaf: its head is below the counter (seeded), so it may take the generation.
    expect(await l2.headRevision()).toBeLessThanOrEqual(await node.current());
    await l2.setGeneration((await node.currentGeneration())!);
    const ok = await l2.txn(txn(put('b', '1')), ctx);
    expect(ok.rev).toBeGreaterThan(1_000_000);
  });
  it("a commit group's plain puts get their revisions in one call, in group order; one unused is given back", async () => {
    const node = fx.allocator();
    const leaf = await openLeaf('l', node);
    await node.seed(1);
    await establish(node, [leaf]);
    const before = node.stats().allocateCalls;
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => leaf.txn(txn(put(`k/${i}`, `v${i}`)), ctx)));
    expect(node.stats().allocateCalls - before).toBe(1);
    const first = outcomes[0].rev;
    expect(outcomes.map((o) => o.rev)).toEqual(Array.from({ length: 20 }, (_, i) => first + i));
    const stored = await leaf.range(range('k/', 'k0'), first + 19);
    for (const kv of stored.kvs) expect(kv.mod_revision).toBe(first + Number(kv.key.toString().slice(2)));
    // A txn with compares asks for its revision after them (a failed compare uses none).
    const cas = await leaf.txn({ compare: [{ result: 0, target: 0, key: b('k/0'), range_end: b(''), target_union: 'version', version: 5 }], success: [put('k/0', 'x')], failure: [] }, ctx);
    expect(cas.rev).toBe(0);
    // A put whose lease is there when it is queued but gone when it runs: its revision, asked
    // for early and never written, is resolved at once (reads and watches do not wait for it).
    let asked = 0;
    const leaseGoes = { leaseExists: () => ++asked === 1 };
    const refused = await failure(leaf.txn(txn(put('k/leased', 'v', { lease: 7 })), leaseGoes));
    expect(refused.message).toMatch(/lease not found/);
    const head = await node.current();
    expect(head).toBe(first + 20);
    await waitFor(async () => (await node.watermark(['l'])) === head, 'the unused revision resolved', 2_000);
  });

  /**
   * Five writes through `writer`: a feed of `reader` (no poll, only wake-ups move it) delivers
   * each, and `readerNode` asks Redis for no watermark meanwhile.
   */
  async function feedSeesWritesWithoutAsking(writer: MvccStore, reader: MvccStore, readerNode: RedisAllocator): Promise<void> {
    // Subscribed first: the wake-up that follows a first subscription makes feeds ask once.
    await readerNode.receiveWakeUps();
    const feed = new LeafFeed(reader, readerNode, 60_000);
    await feed.ready();
    const seen: number[] = [];
    feed.subscribe({ onRevisions: (revs) => seen.push(...revs.map((r) => r.rev)), onProgress: () => undefined });
    try {
      const snapshotsBefore = readerNode.stats().snapshotCalls;
      const written = [];
      for (let i = 0; i < 5; i++) written.push((await writer.txn(txn(put(`w/${i}`, 'v')), ctx)).rev);
      await waitFor(async () => seen.length === 5, 'every write reached the feed', 2_000);
      expect(seen).toEqual(written);
      expect(readerNode.stats().snapshotCalls).toBe(snapshotsBefore);
    } finally {
      feed.stop();
    }
  }

  it("a watch feed sees its own node's writes without asking Redis for the watermark", async () => {
    const node = fx.allocator({ pollMs: 60_000 });
    const leaf = await openLeaf('l', node);
    await node.seed(1);
    await establish(node, [leaf]);
    await feedSeesWritesWithoutAsking(leaf, leaf, node);
  });

  it("a watch feed on another node sees a node's writes from its published wake-ups, without asking Redis", async () => {
    const writer = fx.allocator({ pollMs: 60_000 });
    const reader = fx.allocator({ pollMs: 60_000 });
    const written = await openLeaf('l', writer);
    // The same leaf as the second node opens it (one SQLite file, two connections).
    const read = new MvccStore('l', new SqliteDialect({ path: join(dir, 'l.sqlite') }), reader);
    await read.open();
    stores.push(read);
    await writer.seed(1);
    await establish(writer, [written]);
    await Promise.all([writer.receiveWakeUps(), reader.receiveWakeUps()]);
    await waitFor(async () => (await fx.redis.pubsub('NUMSUB', reader.keys.wakeChannel))[1] === 2, 'both nodes subscribed');
    await feedSeesWritesWithoutAsking(written, read, reader);
  });
});
