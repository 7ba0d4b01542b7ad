// The leaf store when its database fails, on every server database (store-backends.ts;
// BACKENDS picks some): a server that is not there or never answers is UNAVAILABLE naming the
// leaf and the process goes on; killed connections and a network that goes silent are
// replaced; writes in flight fail UNAVAILABLE or commit, nothing in between; two nodes'
// writers on one leaf take turns.
import { status as Code } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EtcdError } from '../../../src/etcd/errors.ts';
import { MemoryAllocator } from '../../../src/revision/memory-allocator.ts';
import { MvccStore } from '../../../src/store/mvcc-store.ts';
import { freePort } from '../../support/ports.ts';
import { closeStoreOnLeaf, logOnlyStore, openStoreOnLeaf } from './store-on-leaf.ts';
import { ctx, failure, put, range, txn } from './requests.ts';
import { DIALECTS, pausableProxy, silentServer, type TestLeaf } from './store-backends.ts';

const SERVERS = DIALECTS.filter((d) => d.name !== 'sqlite');

// BACKENDS may leave no server database; that must be the filter's doing, never a lost dialect.
if (SERVERS.length === 0) {
  describe('leaf faults', () => {
    it('run on server databases only, and BACKENDS selected none', () => {
      expect(process.env.BACKENDS, 'no server dialect although BACKENDS is unset').toBeDefined();
    });
  });
}

for (const backend of SERVERS) {
  describe(`leaf on ${backend.name} when the database fails`, () => {
    let leaf: TestLeaf;
    let allocator: MemoryAllocator;
    let store: MvccStore;

    beforeEach(async () => {
      ({ leaf, allocator, store } = await openStoreOnLeaf(backend));
    });

    afterEach(() => closeStoreOnLeaf({ leaf, allocator, store }));

    for (const server of ['a closed port', 'a server that never answers'] as const) {
      it(`a leaf on ${server} answers UNAVAILABLE naming the leaf; the process goes on`, async () => {
        const unhandled: unknown[] = [];
        const onUnhandled = (e: unknown) => unhandled.push(e);
        process.on('unhandledRejection', onUnhandled);
        process.on('uncaughtException', onUnhandled);
        const silent = server === 'a closed port' ? null : await silentServer();
        try {
          const port = silent?.port ?? (await freePort());
          const down = new MvccStore('leaf-down', backend.unreachable!(port), new MemoryAllocator(), { tablePrefix: 'x_' });
          // A big page too (PostgreSQL reads it by binary COPY, on connections of its own).
          const bigPage = () => down.range(range('a', 'b', { limit: 100 }), 1);
          for (const call of [() => down.open(), () => down.range(range('a'), 1), bigPage, () => down.txn(txn(put('a', '1')), ctx), () => down.headRevision(), () => down.sizeBytes()]) {
            const started = Date.now();
            const err = await failure(call());
            expect(err.code).toBe(Code.UNAVAILABLE);
            expect(err.message).toMatch(/^etcd-tree: leaf leaf-down is unavailable: /);
            expect(err.message).not.toContain('s3cret-pw');
            expect(Date.now() - started).toBeLessThan(5_000); // the connect timeout (1 s), not forever
          }
          await down.close();
          await new Promise((r) => setTimeout(r, 200));
          expect(unhandled).toEqual([]);
        } finally {
          await silent?.close();
          process.off('unhandledRejection', onUnhandled);
          process.off('uncaughtException', onUnhandled);
        }
      });
    }

    it('recovers after its connections are killed: the next write and read succeed', async () => {
      await store.txn(txn(put('r/a', '1')), ctx);
      expect((await store.range(range('r/a'), await allocator.current())).kvs).toHaveLength(1);
      // A big page (PostgreSQL: binary COPY, on a reader pool of its own) leaves a connection to kill too.
      const bigPage = async (rev: number) => (await store.range(range('r/', 'r0', { limit: 100 }), rev)).kvs.map((kv) => kv.value.toString());
      expect(await bigPage(await allocator.current())).toEqual(['1']);
      expect(await leaf.connectionCount!()).toBeGreaterThanOrEqual(2); // the writer and a reader
      expect(await leaf.killConnections!()).toBeGreaterThanOrEqual(2);
      // Right away: the dead writer is replaced by this very write.
      const w = await store.txn(txn(put('r/b', '2')), ctx);
      const r = await store.range(range('r/', 'r0'), w.rev);
      expect(r.kvs.map((kv) => kv.value.toString())).toEqual(['1', '2']);
      expect(await bigPage(w.rev)).toEqual(['1', '2']);
      // And again after the kill has fully landed, with several reads at once on the pool.
      await leaf.killConnections!();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const outs = await Promise.all([store.txn(txn(put('r/c', '3')), ctx), store.txn(txn(put('r/d', '4')), ctx)]);
      const reads = await Promise.all(Array.from({ length: 6 }, () => store.range(range('r/', 'r0', { count_only: true }), outs[1].rev)));
      expect(reads.map((x) => x.count)).toEqual(Array(6).fill(4));
    });

    it('writes in flight when the connections die fail UNAVAILABLE or commit, nothing in between', async () => {
      // Waves of writes (several commit groups) with the kill landing among them.
      const pending: Promise<{ rev: number }>[] = [];
      const waves = (async () => {
        for (let i = 0; i < 300; i++) {
          const write = store.txn(txn(put(`f/${String(i).padStart(3, '0')}`, `v${i}`)), ctx);
          write.catch(() => undefined); // looked at below, once all are settled
          pending.push(write);
          if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const kill = new Promise((resolve) => setTimeout(resolve, 15)).then(() => leaf.killConnections!());
      await Promise.all([waves, kill]);
      const settled = await Promise.allSettled(pending);
      const failed = settled.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
      for (const err of failed) {
        expect(err).toBeInstanceOf(EtcdError);
        expect((err as EtcdError).code).toBe(Code.UNAVAILABLE);
        expect((err as EtcdError).message).toMatch(/^etcd-tree: leaf leaf is unavailable: /);
      }
      // Every acknowledged write is there, at its revision.
      const after = await store.txn(txn(put('f/after', 'x')), ctx);
      const kvs = (await store.range(range('f/', 'f0'), after.rev)).kvs;
      const present = new Map(kvs.map((kv) => [kv.key.toString(), kv.mod_revision]));
      settled.forEach((r, i) => {
        if (r.status === 'fulfilled') expect(present.get(`f/${String(i).padStart(3, '0')}`), `write ${i}`).toBe(r.value.rev);
      });
      expect(present.get('f/after')).toBe(after.rev);
      // The sole writer's caches (dropped if a commit failed under the kill) are there again, and
      // what they answer is what the database holds.
      const caches = store as unknown as { heads: object | null; recent: object | null };
      for (let i = 0; i < 200 && (caches.heads === null || caches.recent === null); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(caches.heads).not.toBeNull();
      const again = await store.txn(txn(put('f/again', 'y')), ctx);
      const logOnly = logOnlyStore(leaf, allocator);
      for (const key of [...present.keys(), 'f/again']) expect(await store.range(range(key), again.rev), key).toEqual(await logOnly.range(range(key), again.rev));
      expect(await store.events(again.rev - 1, again.rev, 100)).toEqual(await logOnly.events(again.rev - 1, again.rev, 100));
    });

    it('writers of two nodes on one leaf take turns (the meta row lock); a lock held too long is UNAVAILABLE', async () => {
      const other = new MvccStore('leaf', leaf.secondWriter!(1_000), allocator, { tablePrefix: leaf.tablePrefix });
      await other.open();
      try {
        // Both nodes write at once (one allocator stands for the tree's shared one).
        const outs = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? store : other).txn(txn(put(`n/${i}`, `v${i}`)), ctx)));
        expect(new Set(outs.map((o) => o.rev)).size).toBe(60);
        expect((await other.range(range('n/', 'n0', { count_only: true }), await allocator.current())).count).toBe(60);
        // While this node's transaction holds the lock, the other waits, then gives up.
        let release!: () => void;
        const held = leaf.dialect.writeTx(async (tx) => {
          await tx.get('SELECT 1 AS one');
          await new Promise<void>((resolve) => (release = resolve));
        });
        await new Promise((resolve) => setTimeout(resolve, 50));
        const started = Date.now();
        const err = await failure(other.txn(txn(put('n/late', 'x')), ctx));
        expect(err.code).toBe(Code.UNAVAILABLE);
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        release();
        await held;
        // Once free, the other node writes again.
        expect((await other.txn(txn(put('n/late', 'y')), ctx)).rev).toBeGreaterThan(0);
      } finally {
        await other.close();
      }
    });

    it('a network that goes silent mid-use: UNAVAILABLE after the timeout, then it reconnects', async () => {
      const proxy = await pausableProxy(leaf.serverPort!);
      const remote = new MvccStore('leaf', leaf.throughPort!(proxy.port, 500), allocator, { tablePrefix: leaf.tablePrefix });
      try {
        await remote.open();
        await remote.txn(txn(put('q/a', '1')), ctx);
        expect((await remote.range(range('q/a'), await allocator.current())).kvs).toHaveLength(1);
        proxy.pause();
        for (const call of [() => remote.txn(txn(put('q/b', '2')), ctx), () => remote.range(range('q/a'), 1)]) {
          const started = Date.now();
          const err = await failure(call());
          expect(err.code).toBe(Code.UNAVAILABLE);
          expect(Date.now() - started).toBeLessThan(5_000);
        }
        proxy.resume();
        const w = await remote.txn(txn(put('q/c', '3')), ctx);
        expect((await remote.range(range('q/', 'q0'), w.rev)).kvs.map((kv) => kv.key.toString())).toEqual(['q/a', 'q/c']);
        // Closing while the network is silent again does not wait for goodbyes forever.
        proxy.pause();
        const closing = Date.now();
        await remote.close();
        expect(Date.now() - closing).toBeLessThan(5_000);
      } finally {
        await remote.close();
        await proxy.close();
      }
    });
  });
}
