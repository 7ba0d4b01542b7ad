// Leases when Redis is not there or goes away: every lease call answers UNAVAILABLE (never a
// crash, never a hang), puts without a lease go on, puts with a lease answered recently go on
// within the cache bound, and everything works again once Redis is back.
import { status as Code } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EtcdError, toGrpcError } from '../../../src/etcd/errors.ts';
import { freePort } from '../../support/ports.ts';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { leaseCluster, REDIS_URL, type LeaseCluster } from './lease-cluster.ts';

let cl: LeaseCluster;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
beforeEach(async () => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  cl = await leaseCluster();
});
afterEach(async () => {
  await cl.cleanup();
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
});

async function unavailable(p: Promise<unknown>): Promise<EtcdError> {
  const started = Date.now();
  const err = await p.then(
    () => {
      throw new Error('expected UNAVAILABLE, it resolved');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EtcdError);
  expect((err as EtcdError).code).toBe(Code.UNAVAILABLE);
  expect(toGrpcError(err).code).toBe(Code.UNAVAILABLE);
  expect(Date.now() - started).toBeLessThan(5_000);
  return err as EtcdError;
}

describe('Redis unavailable', () => {
  it('a node whose Redis is not there answers UNAVAILABLE for every lease call and keeps serving puts without leases', async () => {
    const port = await freePort();
    const N = await cl.node('N', { url: `redis://127.0.0.1:${port}/0`, connectWaitMs: 300 });
    const err = await unavailable(N.lessor.grant(10, 0));
    expect(err.message).toMatch(/^etcd-tree: leases unavailable: redis unreachable/);
    await unavailable(N.lessor.grant(10, 5));
    await unavailable(N.lessor.keepAlive(5));
    await unavailable(N.lessor.revoke(5));
    await unavailable(N.lessor.timeToLive(5, true));
    await unavailable(N.lessor.list());
    await unavailable(N.lessor.ensureKnown([5]));
    await unavailable(N.put('/a/k', 'v', 5));
    expect(N.lessor.exists(5)).toBe(false);
    expect(await N.put('/a/k', 'v')).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 600)); // a few failing expiry checks
    expect(unhandled).toEqual([]);
  });

  describe('through a proxy that goes down and comes back', () => {
    let proxy: TcpProxy;
    beforeEach(async () => {
      proxy = await startTcpProxy(Number(new URL(REDIS_URL).port || 6379));
    });
    afterEach(async () => {
      await proxy.close();
    });

    it('calls fail UNAVAILABLE while it is down, cached leases keep taking keys within the bound, all works again after', async () => {
      const db = new URL(REDIS_URL).pathname || '/0';
      const N = await cl.node('N', { url: `redis://127.0.0.1:${proxy.port}${db}`, connectWaitMs: 200, cacheMaxAgeMs: 3000, cacheRefreshMs: 300 });
      const M = await cl.node('M'); // a node whose Redis stays up
      const { id } = await N.lessor.grant(60, 0);
      const short = await N.lessor.grant(2, 0);
      await N.put('/a/cached', 'v', id);
      const answeredAt = Date.now();

      proxy.down();
      for (const call of [() => N.lessor.grant(10, 0), () => N.lessor.keepAlive(id), () => N.lessor.timeToLive(id, false), () => N.lessor.list(), () => N.lessor.revoke(id)]) await unavailable(call());
      // Answered by Redis less than cacheMaxAgeMs ago: still accepted (the bound the revokers wait for).
      expect(await N.put('/a/cached2', 'v', id)).toBeGreaterThan(0);
      expect(Date.now() - answeredAt).toBeLessThan(2500);
      await new Promise((r) => setTimeout(r, answeredAt + 3100 - Date.now()));
      // Older than the bound and Redis cannot confirm: UNAVAILABLE, not "lease not found".
      await unavailable(N.put('/a/cached3', 'v', id));
      // Meanwhile the other node expired the short lease on its own.
      await waitFor(async () => (await M.lessor.timeToLive(short.id, false)) === null, 'short lease expired by M', 10_000);

      proxy.up();
      await waitFor(async () => (await N.lessor.keepAlive(id).catch(() => -1)) === 60, 'keep-alive works again', 10_000);
      expect(await N.put('/a/cached3', 'v', id)).toBeGreaterThan(0);
      expect((await N.lessor.timeToLive(id, true))!.keys.map(String)).toEqual(['/a/cached', '/a/cached2', '/a/cached3']);
      expect(await N.lessor.timeToLive(short.id, false)).toBeNull();
      await M.lessor.revoke(id);
      expect(await N.router.keysOfLease(id)).toEqual([]);
      expect(unhandled).toEqual([]);
    });
  });

  it('a stopped lessor answers UNAVAILABLE', async () => {
    const N = await cl.node('N');
    await N.lessor.stop();
    await unavailable(N.lessor.grant(10, 0));
    await unavailable(N.lessor.ensureKnown([1]));
  });
});
