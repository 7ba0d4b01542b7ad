// The Redis revision allocator (DESIGN.md 4) against a real Redis: watermark arithmetic, one
// sequence shared by several nodes, batching, read index woken by pub/sub, deadlines, the
// counter generation after Redis lost its data, and Redis being unreachable.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisAllocator } from '../../../src/revision/redis-allocator.ts';
import { RevisionsUnavailable } from '../../../src/revision/revisions-unavailable.ts';
import { freePort } from '../../support/ports.ts';
import { startTcpProxy } from '../../support/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { established, isSettled, REDIS_URL, redisFixture, sleep, type RedisFixture } from './redis-fixture.ts';

let fx: RedisFixture;
beforeEach(() => {
  fx = redisFixture();
});
afterEach(async () => {
  await fx.cleanup();
});

/** Asserts `p` rejects with RevisionsUnavailable of `kind`, and returns the error. */
async function unavailable(p: Promise<unknown>, kind: RevisionsUnavailable['kind']): Promise<RevisionsUnavailable> {
  const err = await p.then(
    () => {
      throw new Error(`expected RevisionsUnavailable(${kind}), it resolved`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RevisionsUnavailable);
  expect((err as RevisionsUnavailable).kind).toBe(kind);
  return err as RevisionsUnavailable;
}

describe('allocate / resolve / watermark', () => {
  it('keeps the watermark of each leaf below its own lowest pending revision only', async () => {
    const a = fx.allocator();
    await established(a, 100);
    const base = await a.current();
    const a1 = await a.allocate('a');
    const b1 = await a.allocate('b');
    const a2 = await a.allocate('a');
    expect([a1.rev, b1.rev, a2.rev]).toEqual([base + 1, base + 2, base + 3]);
    expect(a1.generation).toBe(1);
    expect(await a.current()).toBe(base + 3);
    expect(await a.watermark(['a'])).toBe(base);
    expect(await a.watermark(['b'])).toBe(base + 1);
    expect(await a.watermark(['a', 'b'])).toBe(base);
    expect(await a.watermark(['idle'])).toBe(base + 3);
    expect(await a.pendingCount('a')).toBe(2);

    // b resolves: pending revisions on a do not hold b back.
    a.resolve('b', b1.rev);
    await waitFor(async () => (await a.watermark(['b'])) === base + 3, 'W(b) = counter');
    expect(await a.watermark(['a'])).toBe(base);
    // Resolving a's higher revision first does not move W(a)...
    a.resolve('a', a2.rev);
    await waitFor(async () => (await a.pendingCount('a')) === 1, 'a2 resolved');
    expect(await a.watermark(['a'])).toBe(base);
    expect(await a.watermark(['a', 'b'])).toBe(base);
    // ...its lowest does.
    a.resolve('a', a1.rev);
    await waitFor(async () => (await a.watermark(['a', 'b'])) === base + 3, 'W(a, b) = counter');
    expect(await a.pendingCount('a')).toBe(0);
    expect(await fx.redis.zcard(`${fx.prefix}deadlines`)).toBe(0);
  });

  it('seed raises the counter and never lowers it', async () => {
    const a = fx.allocator();
    await a.seed(50);
    expect(await a.current()).toBe(50);
    await a.seed(20);
    expect(await a.current()).toBe(50);
    await a.seed(70);
    expect(await a.current()).toBe(70);
  });

  it('answers concurrent watermark questions with one snapshot call', async () => {
    const a = fx.allocator({ pollMs: 60_000 });
    await established(a);
    const before = a.stats().snapshotCalls;
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => a.watermark([`leaf${i % 7}`])));
    expect(new Set(answers).size).toBe(1);
    expect(a.stats().snapshotCalls - before).toBe(1);
  });
});

describe('two nodes on one counter', () => {
  it('hand out one sequence without duplicates under 2 x 500 concurrent allocations, batched', async () => {
    const n1 = fx.allocator();
    const n2 = fx.allocator();
    await established(n1, 1000);
    const start = await n1.current();
    const [r1, r2] = await Promise.all([
      Promise.all(Array.from({ length: 500 }, (_, i) => n1.allocate(`leaf${i % 2}`))),
      Promise.all(Array.from({ length: 500 }, (_, i) => n2.allocate(`leaf${i % 2}`))),
    ]);
    const revs = [...r1, ...r2].map((x) => x.rev);
    expect(new Set(revs).size).toBe(1000);
    expect(Math.min(...revs)).toBe(start + 1);
    expect(Math.max(...revs)).toBe(start + 1000);
    expect(await n2.current()).toBe(start + 1000);
    // Handed out in order within each leaf and node.
    for (const rs of [r1, r2]) {
      const leaf0 = rs.filter((_, i) => i % 2 === 0).map((x) => x.rev);
      expect(leaf0).toEqual([...leaf0].sort((x, y) => x - y));
    }
    // Batching batches: 500 allocations per node on 2 leaves took a handful of calls.
    for (const node of [n1, n2]) {
      expect(node.stats().allocatedRevisions).toBe(500);
      expect(node.stats().allocateCalls).toBeLessThanOrEqual(10);
    }
    expect(await n1.pendingCount('leaf0')).toBe(500);

    r1.forEach((x, i) => n1.resolve(`leaf${i % 2}`, x.rev));
    r2.forEach((x, i) => n2.resolve(`leaf${i % 2}`, x.rev));
    await waitFor(async () => (await n1.watermark(['leaf0', 'leaf1'])) === start + 1000, 'everything resolved');
    expect(n1.stats().resolveCalls).toBeLessThanOrEqual(5);
    expect(n1.stats().resolvesQueued).toBe(0);
  });
});

describe('wake-ups', () => {
  it("a resolve makes the new watermark known at once to its node, and to the others by its publish, without asking", async () => {
    const a = fx.allocator({ pollMs: 60_000 });
    const b = fx.allocator({ pollMs: 60_000 });
    await established(a);
    // Both receive wake-ups before anything is published.
    await Promise.all([a.receiveWakeUps(), b.receiveWakeUps()]);
    await waitFor(async () => (await fx.redis.pubsub('NUMSUB', a.keys.wakeChannel))[1] === 2, 'both nodes subscribed');
    const seenByA: Array<'all' | string[]> = [];
    const seenByB: Array<'all' | string[]> = [];
    a.onAdvance((known) => seenByA.push(known === 'all' ? 'all' : [...known]));
    b.onAdvance((known) => seenByB.push(known === 'all' ? 'all' : [...known]));
    expect(await a.watermark(['z'])).toBeGreaterThan(0); // a knows leaf z, which nothing is written to
    const x = await a.allocate('x');
    const y = await a.allocate('y'); // y stays pending: only x's watermark advances
    const snapshotsBefore = a.stats().snapshotCalls;
    const snapshotsOfB = b.stats().snapshotCalls;

    a.resolve('x', x.rev);
    await waitFor(async () => seenByA.length > 0, 'a woken by its resolve');
    // a woke when its resolve was answered, knowing x's new watermark without asking, and z's:
    // with nothing pending, z is at the counter.
    expect(seenByA).toEqual([['x', 'z']]);
    expect(a.knownWatermark(['x'])).toBe(x.rev + 1);
    expect(a.knownWatermark(['z'])).toBe(y.rev);
    expect(a.stats().snapshotCalls).toBe(snapshotsBefore);
    // A marker published after the resolve reaches a after the resolve's own publish did (one
    // channel, in order): nothing in between means that publish did not wake a again.
    await fx.redis.publish(a.keys.wakeChannel, 'marker');
    await waitFor(async () => seenByA.length > 1 && seenByB.length > 1, 'the marker woke both');
    expect(seenByA).toEqual([['x', 'z'], []]);
    // Another node learns the same from the published snapshot; a publish without one (the
    // marker) wakes it to ask.
    expect(seenByB).toEqual([['x', 'z'], []]);
    expect(b.knownWatermark(['x', 'z'])).toBe(x.rev + 1);
    expect(b.knownWatermark(['z'])).toBe(y.rev);
    expect(b.knownWatermark(['y'])).toBe(0); // not in the snapshot: y did not advance
    expect(b.stats().snapshotCalls).toBe(snapshotsOfB);
    expect(await b.watermark(['x'])).toBe(x.rev + 1);
  });
});

describe('wake-ups on first wait', () => {
  const subscribers = async (a: RedisAllocator) => (await fx.redis.pubsub('NUMSUB', a.keys.wakeChannel))[1] as number;

  it('a node that never waits receives no wake-ups; its first wait subscribes and is woken by the next resolve', async () => {
    const writer = fx.allocator({ pollMs: 60_000 });
    const router = fx.allocator({ pollMs: 60_000 });
    await established(writer);
    await writer.receiveWakeUps();
    await waitFor(async () => (await subscribers(writer)) === 1, 'the writer subscribed');
    // Reads at the counter and writes elsewhere: nothing here waits, so nothing subscribes.
    const first = await writer.allocate('x');
    writer.resolve('x', first.rev);
    expect(await router.readIndex([])).toBeGreaterThanOrEqual(first.rev);
    await new Promise((r) => setTimeout(r, 100));
    expect(await subscribers(router)).toBe(1);

    // A wait for a pending revision: woken by the resolve's publish (the poll is a minute).
    const pending = await writer.allocate('x');
    const waited = router.waitFor(['x'], pending.rev);
    await waitFor(async () => (await subscribers(router)) === 2, 'the waiting node subscribed');
    expect(await isSettled(waited)).toBe(false);
    writer.resolve('x', pending.rev);
    await waited;
  });

  it('a listener registered before the subscription is up is woken after a resolve made at once', async () => {
    const writer = fx.allocator({ pollMs: 60_000 });
    const feedNode = fx.allocator({ pollMs: 60_000 });
    await established(writer);
    const pending = await writer.allocate('x');
    // What the listener finds when woken (as a watch feed would look).
    const found: Array<Promise<number>> = [];
    feedNode.onAdvance(() => found.push(feedNode.watermark(['x'])));
    // Resolved at once, likely before the new subscription is acknowledged: its publish may be
    // lost to this node, and the wake-up after subscribing stands in for it.
    writer.resolve('x', pending.rev);
    await waitFor(async () => (await Promise.all(found)).some((w) => w >= pending.rev), 'a wake-up after the resolve');
  });

  it('asking for wake-ups settles once the node is closed, whether asked before or after', async () => {
    const before = fx.allocator({ pollMs: 60_000, url: 'redis://127.0.0.1:1/0' });
    const pending = before.receiveWakeUps(); // Redis unreachable: never acknowledged
    await before.close();
    await pending;
    const after = fx.allocator({ pollMs: 60_000 });
    await after.close();
    await after.receiveWakeUps();
    expect(await subscribers(after)).toBe(0);
  });
});

describe('read index', () => {
  it('waits until every revision <= C is resolved, woken by pub/sub (poll is 10 s)', async () => {
    const reader = fx.allocator({ pollMs: 10_000 });
    const writer = fx.allocator({ pollMs: 10_000 });
    await established(writer);
    const x = await writer.allocate('a');
    const y = await writer.allocate('b');
    let advances = 0;
    reader.onAdvance(() => advances++);

    const index = reader.readIndex(['a', 'b']);
    const other = reader.readIndex(['b']);
    await sleep(200);
    expect(await isSettled(index)).toBe(false);
    expect(await isSettled(other)).toBe(false);

    // y resolves: the read on b returns, the read on {a, b} still waits for x.
    let t = performance.now();
    writer.resolve('b', y.rev);
    expect(await other).toBe(y.rev);
    expect(performance.now() - t).toBeLessThan(500);
    await sleep(200);
    expect(await isSettled(index)).toBe(false);

    t = performance.now();
    writer.resolve('a', x.rev);
    expect(await index).toBe(y.rev);
    const latency = performance.now() - t;
    expect(latency).toBeLessThan(500);
    expect(advances).toBeGreaterThanOrEqual(2);
  });

  it('returns at once when nothing is pending, and C is the counter at the call', async () => {
    const a = fx.allocator();
    await established(a, 42);
    const c = await a.current();
    expect(await a.readIndex(['a'])).toBe(c);
    await a.allocate('other'); // pending elsewhere: not this read's business
    expect(await a.readIndex(['a'])).toBe(c + 1);
  });

  it('waitFor resolves once W >= rev, and at once for a revision already known resolved', async () => {
    const reader = fx.allocator({ pollMs: 10_000 });
    const writer = fx.allocator({ pollMs: 10_000 });
    await established(writer);
    const x = await writer.allocate('a');
    const y = await writer.allocate('a');
    const forX = reader.waitFor(['a'], x.rev);
    const forY = reader.waitFor(['a'], y.rev);
    await sleep(100);
    expect(await isSettled(forX)).toBe(false);
    writer.resolve('a', y.rev);
    await sleep(100);
    expect(await isSettled(forX)).toBe(false);
    writer.resolve('a', x.rev);
    await forX;
    await forY;
    const calls = reader.stats().snapshotCalls;
    await reader.waitFor(['a'], y.rev);
    expect(reader.stats().snapshotCalls).toBe(calls);
  });
});

describe('deadlines', () => {
  it('expired() lists a pending revision whose deadline passed, for the asked leaves only', async () => {
    const a = fx.allocator({ deadlineMs: 150 });
    const patient = fx.allocator({ deadlineMs: 60_000 });
    await established(a);
    const late = await a.allocate('ns:a'); // a leaf name with ':' in it
    const other = await a.allocate('b');
    const young = await patient.allocate('ns:a');
    expect(await a.expired(['ns:a'])).toEqual([]);
    await sleep(300);
    expect(await a.expired(['ns:a'])).toEqual([{ leaf: 'ns:a', rev: late.rev }]);
    expect(await patient.expired(['ns:a', 'b'])).toEqual(
      expect.arrayContaining([
        { leaf: 'ns:a', rev: late.rev },
        { leaf: 'b', rev: other.rev },
      ]),
    );
    expect(await a.expired([])).toEqual([]);
    // Fenced (by the node), then resolved: no longer expired, no longer pending.
    a.resolve('ns:a', late.rev);
    await waitFor(async () => (await a.expired(['ns:a'])).length === 0, 'resolved revision leaves the deadlines');
    expect(await a.watermark(['ns:a'])).toBe(young.rev - 1);
  });
});

describe('generation', () => {
  it('without a generation, allocate and readIndex are UNAVAILABLE; serializable reads need only the counter', async () => {
    const a = fx.allocator();
    await unavailable(a.allocate('a'), 'no-generation');
    await unavailable(a.watermark(['a']), 'no-counter');
    await unavailable(a.current(), 'no-counter');
    expect(await a.currentGeneration()).toBeNull();
    await a.seed(10);
    expect(await a.watermark(['a'])).toBe(10);
    const err = await unavailable(a.readIndex(['a']), 'no-generation');
    expect(err.code).toBe(14); // gRPC UNAVAILABLE, through toGrpcError as any EtcdError
    await unavailable(a.allocate('a'), 'no-generation');
  });

  it('establishGeneration writes the leaves first, then publishes; counter >= floor + 1e6', async () => {
    const a = fx.allocator();
    const b = fx.allocator();
    await a.seed(10);
    const seen: Array<{ g: number; redisGeneration: number | null; allocate: string }> = [];
    const g = await a.establishGeneration(5000, 3, async (gen) => {
      seen.push({ g: gen, redisGeneration: await b.currentGeneration(), allocate: await b.allocate('a').then(() => 'ok', (e: RevisionsUnavailable) => e.kind) });
    });
    expect(g).toBe(4);
    expect(seen).toEqual([{ g: 4, redisGeneration: null, allocate: 'no-generation' }]);
    expect(await b.currentGeneration()).toBe(4);
    expect(await b.current()).toBe(1_005_000);
    expect(await b.allocate('a')).toEqual({ rev: 1_005_001, generation: 4 });
  });

  it('never lowers the counter', async () => {
    const a = fx.allocator();
    await a.seed(7_000_000);
    await a.establishGeneration(10, 0, async () => undefined);
    expect(await a.current()).toBe(7_000_000);
  });

  it('one node establishes when several try; a failed leaf write leaves no generation and frees the lock', async () => {
    const nodes = [fx.allocator(), fx.allocator(), fx.allocator()];
    await nodes[0].seed(1);
    await expect(nodes[0].establishGeneration(1, 0, async () => { throw new Error('leaf x is down'); })).rejects.toThrow('leaf x is down');
    expect(await nodes[0].currentGeneration()).toBeNull();
    expect(await fx.redis.exists(`${fx.prefix}generation-lock`)).toBe(0);

    let writes = 0;
    const gens = await Promise.all(
      nodes.map((n) =>
        n.establishGeneration(100, 0, async () => {
          writes++;
          await sleep(200);
        }),
      ),
    );
    expect(gens).toEqual([1, 1, 1]);
    expect(writes).toBe(1);
    expect(await nodes[2].current()).toBe(1_000_100);
  });

  it('Redis restarted empty: UNAVAILABLE until re-established, then revisions continue above every earlier one', async () => {
    const a = fx.allocator({ pollMs: 100 });
    const b = fx.allocator({ pollMs: 100 });
    await established(a, 10);
    const before: number[] = [];
    for (let i = 0; i < 5; i++) before.push((await a.allocate('a')).rev);
    for (const r of before.slice(0, 4)) a.resolve('a', r);
    // A linearizable read waiting on the last pending revision when Redis loses everything.
    const waiting = b.readIndex(['a']);
    await sleep(50);
    expect(await isSettled(waiting)).toBe(false);

    expect(await fx.flush()).toBeGreaterThan(0);
    await expect(waiting).rejects.toBeInstanceOf(RevisionsUnavailable);
    await unavailable(a.allocate('a'), 'no-generation');
    await unavailable(b.readIndex(['a']), 'no-counter');
    await unavailable(b.watermark(['a']), 'no-counter');

    // Nodes re-open their leaves and seed the counter at the leaves' head, which may lie above
    // a revision still in flight (before[4], of the lost generation: it may yet commit).
    const head = before[4] + 5;
    await b.seed(head);
    await unavailable(a.allocate('a'), 'no-generation');
    await unavailable(b.readIndex(['a']), 'no-generation');
    // Serializable reads work, but W stays at what a generation vouched for, below before[4]:
    expect(await b.watermark(['a'])).toBe(before[4] - 1);
    expect(await b.watermark(['idle'])).toBe(head); // nothing known about this leaf: the counter
    const late = b.waitFor(['a'], before[4]);
    await sleep(250); // two polls
    expect(await isSettled(late)).toBe(false);
    // The root re-establishes from the leaves' floor and generation.
    const g = await b.establishGeneration(head, 1, async () => undefined);
    expect(g).toBe(2);
    await late;
    const after = await a.allocate('a');
    expect(after.generation).toBe(2);
    expect(after.rev).toBeGreaterThan(Math.max(...before));
    expect(after.rev).toBe(head + 1_000_001);
    a.resolve('a', after.rev);
    // The stale pending revision of the lost generation is gone with the data; resolving it is harmless.
    a.resolve('a', before[4]);
    await waitFor(async () => (await b.readIndex(['a'])) === after.rev, 'reads resume');
  });
});

describe('redis unreachable', () => {
  it('every method rejects UNAVAILABLE within 2 s and nothing crashes (closed port)', async () => {
    const port = await freePort();
    const a = new RedisAllocator({ url: `redis://127.0.0.1:${port}/0`, keyPrefix: fx.prefix, pollMs: 50 });
    let woken = 0;
    a.onAdvance(() => woken++);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['allocate', () => a.allocate('a')],
      ['current', () => a.current()],
      ['watermark', () => a.watermark(['a'])],
      ['readIndex', () => a.readIndex(['a'])],
      ['waitFor', () => a.waitFor(['a'], 5)],
      ['expired', () => a.expired(['a'])],
      ['pendingCount', () => a.pendingCount('a')],
      ['seed', () => a.seed(5)],
      ['currentGeneration', () => a.currentGeneration()],
      ['establishGeneration', () => a.establishGeneration(1, 0, async () => undefined)],
    ];
    for (const [name, call] of calls) {
      const t = performance.now();
      const err = await unavailable(call(), 'unreachable');
      expect(performance.now() - t, name).toBeLessThan(2000);
      expect(err.message).toMatch(/^etcd-tree: redis unreachable: /);
    }
    expect(() => a.resolve('a', 3)).not.toThrow();
    await sleep(300); // polls, retried resolves, reconnect attempts: all quiet failures
    expect(woken).toBe(0); // feeds are not told to look again while there is nothing to see
    const t = performance.now();
    await a.close();
    expect(performance.now() - t).toBeLessThan(1500);
    await unavailable(a.allocate('a'), 'closed');
  });

  it('resumes by itself when Redis comes back: queued resolves land, wake-ups arrive again', async () => {
    const proxy = await startTcpProxy(Number(new URL(REDIS_URL).port || 6379));
    try {
      const a = fx.allocator({ url: `redis://127.0.0.1:${proxy.port}/0`, pollMs: 10_000 });
      const writer = fx.allocator({ pollMs: 10_000 });
      await established(writer);
      await Promise.all([a.receiveWakeUps(), writer.receiveWakeUps()]);
      const x = await a.allocate('a');

      proxy.down();
      a.resolve('a', x.rev); // queued while Redis is away
      const t = performance.now();
      await unavailable(a.allocate('a'), 'unreachable');
      await unavailable(a.readIndex(['a']), 'unreachable');
      expect(performance.now() - t).toBeLessThan(2000);
      expect(await writer.pendingCount('a')).toBe(1);

      proxy.up();
      await waitFor(async () => (await writer.pendingCount('a')) === 0, 'the queued resolve lands after reconnecting');
      const y = await a.allocate('a');
      expect(y.rev).toBe(x.rev + 1);
      // The subscriber resubscribes: a resolve by another node wakes a read here (poll is 10 s).
      await waitFor(async () => (await fx.redis.pubsub('NUMSUB', a.keys.wakeChannel))[1] === 2, 'both nodes subscribed again');
      const z = await writer.allocate('a');
      const read = a.readIndex(['a']);
      a.resolve('a', y.rev);
      await sleep(100);
      expect(await isSettled(read)).toBe(false);
      const started = performance.now();
      writer.resolve('a', z.rev);
      expect(await read).toBe(z.rev);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await proxy.close();
    }
  });
});
