// Leases across several nodes (DESIGN.md 7) with the real Redis: two RedisLessors over the same
// leaves act as two nodes. Any node answers for any lease; expiry and revocation delete every
// attached key exactly once (one delete event per key on a watch), whichever node does it; a
// revoked lease stops taking keys on every node; IDs are global.
import { status as Code } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EtcdError } from '../../../src/etcd/errors.ts';
import { MIN_LEASE_TTL, type LeaseKeys } from '../../../src/lease/lease-registry.ts';
import { MemoryAllocator } from '../../../src/revision/memory-allocator.ts';
import { RouteTable } from '../../../src/router/route-table.ts';
import { leasesOfTxn, Router } from '../../../src/router/router.ts';
import { EventType, type RequestOp, type TxnRequest } from '../../../src/store/types.ts';
import { waitFor } from '../helpers/wait.ts';
import { leaseCluster, type LeaseCluster, type TestNode } from './lease-cluster.ts';

let cl: LeaseCluster;
let A: TestNode;
let B: TestNode;
beforeEach(async () => {
  cl = await leaseCluster();
  A = await cl.node('A');
  B = await cl.node('B');
});
afterEach(async () => {
  await cl.cleanup();
});

async function failure(p: Promise<unknown>): Promise<EtcdError> {
  const err = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EtcdError);
  return err as EtcdError;
}

const leaseNotFound = { code: Code.NOT_FOUND, message: 'etcdserver: requested lease not found' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const putOp = (key: string, value: string, lease: number): RequestOp => ({
  request: 'request_put',
  request_put: { key: Buffer.from(key), value: Buffer.from(value), lease, prev_kv: false, ignore_value: false, ignore_lease: false },
});

describe('one lease, any node', () => {
  it('grant on A, keep alive on B, TimeToLive and Leases on both', async () => {
    const { id, ttl } = await A.lessor.grant(5, 0);
    expect(ttl).toBe(5);
    expect(id).toBeGreaterThan(0);
    expect(id).toBeLessThan(2 ** 53);
    expect(await A.lessor.list()).toEqual([id]);
    expect(await B.lessor.list()).toEqual([id]);

    await sleep(1200);
    const before = await B.lessor.timeToLive(id, false);
    expect(before).toEqual({ ttl: 3, grantedTtl: 5, keys: [] });
    expect(await B.lessor.keepAlive(id)).toBe(5);
    for (const n of [A, B]) {
      const t = await n.lessor.timeToLive(id, false);
      expect(t?.grantedTtl).toBe(5);
      expect([4, 5]).toContain(t?.ttl); // just renewed: 4.99 s left (5 within the same ms)
    }
    // The minimum TTL applies to every node's grants.
    expect((await B.lessor.grant(1, 0)).ttl).toBe(MIN_LEASE_TTL);
  });

  it('keys attached via A and B are listed by TimeToLive on both nodes', async () => {
    const { id } = await A.lessor.grant(30, 0);
    await A.put('/a/one', '1', id); // leaf a
    await B.put('/b/two', '2', id); // leaf b
    await B.put('/a/three', '3', id); // leaf a, via B
    for (const n of [A, B]) {
      const t = await n.lessor.timeToLive(id, true);
      expect(t!.keys.map(String)).toEqual(['/a/one', '/a/three', '/b/two']);
    }
    expect(await A.get('/b/two')).toEqual({ value: '2', lease: id });
  });

  it('unknown leases: keep-alive 0, TimeToLive null, revoke and put refused on both nodes', async () => {
    for (const n of [A, B]) {
      expect(await n.lessor.keepAlive(424242)).toBe(0);
      expect(await n.lessor.timeToLive(424242, true)).toBeNull();
      expect(await failure(n.lessor.revoke(424242))).toMatchObject(leaseNotFound);
      expect(await failure(n.put('/k', 'v', 424242))).toMatchObject(leaseNotFound);
    }
  });
});

describe('global IDs', () => {
  it('a client-chosen ID granted on A is refused on B (and on A) with etcd\'s "lease already exists"', async () => {
    expect(await A.lessor.grant(10, 777)).toEqual({ id: 777, ttl: 10 });
    for (const n of [B, A]) {
      const err = await failure(n.lessor.grant(10, 777));
      expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, message: 'etcdserver: lease already exists' });
    }
    expect((await B.lessor.timeToLive(777, false))?.grantedTtl).toBe(10);
  });

  it('random IDs from both nodes are distinct, positive and below 2^53', async () => {
    const ids = (await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? A : B).lessor.grant(60, 0)))).map((g) => g.id);
    expect(new Set(ids).size).toBe(100);
    for (const id of ids) expect(Number.isSafeInteger(id) && id > 0).toBe(true);
    expect((await A.lessor.list()).sort()).toEqual([...ids].sort());
  });

  it('an ID is free again once its lease was revoked', async () => {
    await A.lessor.grant(10, 99);
    await B.lessor.revoke(99);
    expect(await B.lessor.grant(20, 99)).toEqual({ id: 99, ttl: 20 });
  });
});

describe('expiry', () => {
  it('deletes every attached key exactly once, in every leaf, with both nodes checking', async () => {
    const { id } = await A.lessor.grant(2, 0);
    const keys = ['/a/x1', '/a/x2', '/b/y1', '/b/y2', '/c'];
    for (const [i, k] of keys.entries()) await (i % 2 ? A : B).put(k, 'v', id);
    await A.put('/b/stays', 'v'); // no lease

    await waitFor(async () => (await A.lessor.timeToLive(id, false)) === null, 'lease gone', 10_000);
    await waitFor(async () => (await A.lessor.list()).length === 0 && (await B.lessor.list()).length === 0, 'leases empty');
    // Revocation removes the record after deleting the keys: they are gone by now.
    for (const k of keys) expect(await B.get(k)).toBeNull();
    expect(await A.get('/b/stays')).toEqual({ value: 'v', lease: 0 });

    await cl.caughtUp();
    await sleep(1000); // both nodes keep checking: nothing is revoked twice
    await cl.caughtUp();
    for (const k of keys) expect(cl.deletesOf(k), k).toBe(1);
    expect(cl.deletesOf('/b/stays')).toBe(0);
    // One write per leaf: the keys of leaf a share one revision, those of leaf b another.
    const revs = (prefix: string) => new Set(cl.events.filter((e) => e.type === EventType.DELETE && e.kv.key.toString().startsWith(prefix)).map((e) => e.kv.mod_revision));
    expect(revs('/a/').size).toBe(1);
    expect(new Set([...revs('/b/'), ...revs('/c')]).size).toBe(1);
    expect(await cl.redis.hlen(`${cl.prefix}lease:records`)).toBe(0);
    expect(await cl.redis.zcard(`${cl.prefix}lease:deadlines`)).toBe(0);
  });

  it('a lease kept alive on B does not expire; keep-alive after expiry answers 0', async () => {
    const { id } = await A.lessor.grant(2, 0);
    await A.put('/k', 'v', id);
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      expect(await B.lessor.keepAlive(id)).toBe(2);
    }
    expect(await A.get('/k')).toEqual({ value: 'v', lease: id });
    await waitFor(async () => (await A.get('/k')) === null, 'key deleted on expiry', 10_000);
    expect(await B.lessor.keepAlive(id)).toBe(0);
    expect(await A.lessor.timeToLive(id, false)).toBeNull();
  });

  it('a lease whose revoker crashed mid-revocation is taken over by another node; keys deleted once', async () => {
    // Node C claims revocations but its leaves never answer; then it dies (stops heart-beating its claim).
    let hung!: () => void;
    const entered = new Promise<void>((r) => (hung = r));
    const C = await cl.node('C', {
      expiryCheckMs: 60_000, // C claims only through Revoke
      keys: (router): LeaseKeys => ({
        revokeLeaseKeys: () => {
          hung();
          return new Promise(() => undefined);
        },
        keysOfLease: (id) => router.keysOfLease(id),
      }),
    });
    const { id } = await A.lessor.grant(60, 0);
    await A.put('/a/k', 'v', id);
    await B.put('/b/k', 'v', id);
    const revoking = C.lessor.revoke(id);
    revoking.catch(() => undefined);
    await entered;
    // Claimed: gone for every node's API, keys still there.
    expect(await A.lessor.timeToLive(id, false)).toBeNull();
    expect(await B.lessor.keepAlive(id)).toBe(0);
    expect(await failure(A.put('/a/k2', 'v', id))).toMatchObject(leaseNotFound);
    expect(await A.get('/a/k')).not.toBeNull();
    await C.lessor.stop(); // crash: the claim lapses after claimMs

    await waitFor(async () => (await A.get('/a/k')) === null && (await A.get('/b/k')) === null, 'keys deleted by A or B', 15_000);
    await waitFor(async () => (await cl.redis.hlen(`${cl.prefix}lease:records`)) === 0, 'record removed');
    await cl.caughtUp();
    expect(cl.deletesOf('/a/k')).toBe(1);
    expect(cl.deletesOf('/b/k')).toBe(1);
  });
});

describe('revoke', () => {
  it('revoke on B of a lease granted on A deletes its keys in every leaf before answering', async () => {
    const { id } = await A.lessor.grant(60, 0);
    await A.put('/a/1', 'v', id);
    await A.put('/b/1', 'v', id);
    await B.lessor.revoke(id);
    expect(await A.get('/a/1')).toBeNull();
    expect(await B.get('/b/1')).toBeNull();
    for (const n of [A, B]) {
      expect(await n.lessor.timeToLive(id, false)).toBeNull();
      expect(await failure(n.lessor.revoke(id))).toMatchObject(leaseNotFound);
    }
    await cl.caughtUp();
    expect(cl.deletesOf('/a/1')).toBe(1);
    expect(cl.deletesOf('/b/1')).toBe(1);
  });

  it('a put with a revoked lease fails on both nodes, even where the lease was just used', async () => {
    const { id } = await A.lessor.grant(60, 0);
    await A.put('/a/1', 'v', id); // A has it cached now
    await B.put('/b/1', 'v', id); // and B
    await A.lessor.revoke(id);
    for (const n of [A, B]) {
      expect(await failure(n.put('/a/2', 'v', id))).toMatchObject(leaseNotFound);
      expect(await failure(n.put('/b/2', 'v', id))).toMatchObject(leaseNotFound);
    }
  });

  it('a put with an expired lease fails on both nodes', async () => {
    const { id } = await A.lessor.grant(2, 0);
    await A.put('/a/1', 'v', id);
    await B.put('/b/1', 'v', id);
    await waitFor(async () => (await A.lessor.timeToLive(id, false)) === null, 'expired', 10_000);
    for (const n of [A, B]) expect(await failure(n.put('/b/2', 'v', id))).toMatchObject(leaseNotFound);
  });

  it('the revocation waits until no node can still accept the lease from its cache', async () => {
    const { id } = await A.lessor.grant(60, 0);
    await B.put('/b/1', 'v', id); // B vouched for the lease in Redis just now
    const started = Date.now();
    await A.lessor.revoke(id);
    // FAST.cacheMaxAgeMs = 800: the delete waited (most of) it out.
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);

    // A lease never used for a put is revoked at once.
    const idle = await A.lessor.grant(60, 0);
    const t0 = Date.now();
    await B.lessor.revoke(idle.id);
    expect(Date.now() - t0).toBeLessThan(400);
  });

  it('no key outlives its lease while both nodes keep putting during the revocation', async () => {
    const { id } = await A.lessor.grant(60, 0);
    let stop = false;
    const written = new Set<string>();
    let refused = 0;
    const writer = async (n: TestNode, leafPrefix: string) => {
      for (let i = 0; !stop; i++) {
        const key = `${leafPrefix}${n.name}-${i}`;
        try {
          await n.put(key, 'v', id);
          written.add(key);
        } catch (err) {
          expect(err).toMatchObject(leaseNotFound);
          refused++;
          if (refused > 20) return;
        }
      }
    };
    const writers = [writer(A, '/a/'), writer(B, '/a/'), writer(A, '/b/'), writer(B, '/b/')];
    await sleep(300);
    const revoked = B.lessor.revoke(id);
    await revoked;
    await sleep(200);
    stop = true;
    await Promise.all(writers);
    expect(written.size).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(0);
    expect(await A.router.keysOfLease(id)).toEqual([]);
    await cl.caughtUp();
    for (const key of written) {
      expect(await A.get(key), key).toBeNull();
      expect(cl.deletesOf(key), key).toBe(1);
    }
  });

  it('a node that missed the invalidation accepts the lease only until its answer ages out, and the revoker deletes what it wrote', async () => {
    const { id } = await A.lessor.grant(60, 0);
    // B misses A's pub/sub invalidation (a lost message, a slow subscriber).
    (B.lessor as unknown as { cache: { invalidate(id: number): void } }).cache.invalidate = () => undefined;
    await B.lessor.ensureKnown([id]); // B asked Redis: live (and vouched for it there)
    let revokedAt = 0;
    const revoked = A.lessor.revoke(id).then(() => (revokedAt = Date.now()));
    // Writes that passed the router's look-up earlier and reach the leaf late: the leaf asks
    // B's cache only (no new look-up), as the txn check phase does.
    const written: string[] = [];
    let lastAccepted = 0;
    for (let i = 0; B.lessor.exists(id); i++) {
      const key = `/a/late-${i}`;
      try {
        await cl.leafA.txn({ compare: [], success: [putOp(key, 'v', id)], failure: [] }, { leaseExists: (x) => B.lessor.exists(x) });
      } catch (err) {
        expect(err).toMatchObject(leaseNotFound);
        break;
      }
      written.push(key);
      lastAccepted = Date.now();
      await sleep(20);
    }
    await revoked;
    expect(written.length).toBeGreaterThan(5); // B kept accepting for a while after the claim
    expect(revokedAt).toBeGreaterThanOrEqual(lastAccepted);
    expect(await A.router.keysOfLease(id)).toEqual([]);
    await cl.caughtUp();
    for (const key of written) expect(cl.deletesOf(key), key).toBe(1);
  });

  it('a Revoke on B while A revokes the same lease waits for A and succeeds', async () => {
    const { id } = await A.lessor.grant(60, 0);
    await A.put('/a/1', 'v', id); // makes A's revocation wait for the cache bound
    const first = A.lessor.revoke(id);
    await sleep(50);
    await B.lessor.revoke(id);
    await first;
    expect(await A.get('/a/1')).toBeNull();
    await cl.caughtUp();
    expect(cl.deletesOf('/a/1')).toBe(1);
  });
});

describe('router', () => {
  it('collects the lease IDs of every put, nested and on both branches', () => {
    const inner: TxnRequest = { compare: [], success: [putOp('/x', 'v', 3)], failure: [putOp('/y', 'v', 4), putOp('/z', 'v', 0)] };
    const req: TxnRequest = {
      compare: [],
      success: [putOp('/a', 'v', 1), { request: 'request_txn', request_txn: inner }],
      failure: [putOp('/b', 'v', 2), putOp('/c', 'v', 1)],
    };
    expect(leasesOfTxn(req).sort()).toEqual([1, 2, 3, 4]);
  });

  it('a txn refused because its lease answer aged out in the leaf queue is looked up again and retried once', async () => {
    const { id } = await A.lessor.grant(60, 0);
    let calls = 0;
    const real = cl.leafB;
    const slowFirst = Object.create(real) as typeof real;
    // The first attempt reaches the leaf after the answer aged out (as after a long lock wait).
    slowFirst.txn = (req, ctx) => (++calls === 1 ? real.txn(req, { leaseExists: () => false }) : real.txn(req, ctx));
    const ensured: number[][] = [];
    const router = new Router({
      routes: new RouteTable([{ prefix: Buffer.alloc(0), target: slowFirst }]),
      allocator: new MemoryAllocator(),
      feeds: new Map(),
      leaseExists: (x) => B.lessor.exists(x),
      ensureLeases: (ids) => {
        ensured.push([...ids]);
        return B.lessor.ensureKnown(ids);
      },
    });
    await router.put({ key: Buffer.from('/b/retried'), value: Buffer.from('v'), lease: id, prev_kv: false, ignore_value: false, ignore_lease: false });
    expect(calls).toBe(2);
    expect(ensured).toEqual([[id], [id]]);
    expect(await A.get('/b/retried')).toEqual({ value: 'v', lease: id });
    // A lease that is really gone is refused after the one retry.
    await A.lessor.revoke(id);
    calls = 10;
    expect(await failure(router.put({ key: Buffer.from('/b/x'), value: Buffer.from('v'), lease: id, prev_kv: false, ignore_value: false, ignore_lease: false }))).toMatchObject(leaseNotFound);
    expect(calls).toBe(12);
  });

  it('a nested txn on B uses a lease only granted on A, with no earlier look-up on B', async () => {
    const { id } = await A.lessor.grant(60, 0);
    const inner: TxnRequest = { compare: [], success: [putOp('/b/nested', 'v', id)], failure: [] };
    const out = await B.txn({ compare: [], success: [{ request: 'request_txn', request_txn: inner }], failure: [] });
    expect(out.rev).toBeGreaterThan(0);
    expect(await A.get('/b/nested')).toEqual({ value: 'v', lease: id });
  });
});

describe('records persisted in the home leaf', () => {
  it('every lease is saved in the home leaf and removed from it on revoke and on expiry', async () => {
    const long = await A.lessor.grant(60, 0);
    const short = await B.lessor.grant(2, 0);
    expect((await cl.leafB.listLeases()).map((l) => l.id).sort()).toEqual([long.id, short.id].sort());
    await B.lessor.revoke(long.id);
    await waitFor(async () => (await A.lessor.timeToLive(short.id, false)) === null, 'short expired', 10_000);
    // The revoker removes the record last, after the keys (it may first wait out cached "live" answers).
    await waitFor(async () => (await cl.leafB.listLeases()).length === 0, 'the expired lease gone from the home leaf', 10_000);
    expect(await cl.leafB.listLeases()).toEqual([]);
  });

  it('Redis losing its data loses no lease: calls answer UNAVAILABLE until a node reloads the records, keys stay attached', async () => {
    const D = await cl.node('D', { expiryCheckMs: 60_000 });
    const { id } = await A.lessor.grant(60, 0);
    await A.put('/a/kept', 'v', id);
    await A.lessor.stop(); // only D and B are left; B's checks reload soon, D's never run
    await B.lessor.stop();
    const lost = await cl.redis.keys(`${cl.prefix}lease:*`);
    await cl.redis.del(...lost);

    const err = await failure(D.lessor.keepAlive(id));
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.message).toMatch(/lost the lease records/);
    // That call started the reload from the home leaf: full TTL again, keys still attached.
    await waitFor(async () => (await D.lessor.keepAlive(id).catch(() => 0)) === 60, 'lease back', 10_000);
    const t = await D.lessor.timeToLive(id, true);
    expect(t!.grantedTtl).toBe(60);
    expect(t!.keys.map(String)).toEqual(['/a/kept']);
    expect(await D.put('/a/more', 'v', id)).toBeGreaterThan(0);
    await D.lessor.revoke(id);
    expect(await D.get('/a/kept')).toBeNull();
  });
});
