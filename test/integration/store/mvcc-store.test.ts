// The shared MVCC store on every database (store-backends.ts; BACKENDS=sqlite,postgres,mysql
// picks some), driven directly: history stays exact through physical compaction, group commit
// keeps every write and isolates a failing one, events carry prev_kv, binary keys sort the
// same everywhere, large values and leases round-trip. Faults: leaf-faults.test.ts.
import { randomBytes } from 'node:crypto';
import { status as Code } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryAllocator } from '../../../src/revision/memory-allocator.ts';
import type { Dialect, WriteTx, WriteTxOptions } from '../../../src/store/dialect.ts';
import { GroupCommitQueue } from '../../../src/store/group-commit.ts';
import { MvccStore } from '../../../src/store/mvcc-store.ts';
import { EventType, type TxnRequest } from '../../../src/store/types.ts';
import { closeStoreOnLeaf, logOnlyStore, notSoleWriter, openStoreOnLeaf } from './store-on-leaf.ts';
import { b, ctx, del, failure, put, range, txn } from './requests.ts';
import { DIALECTS, type TestLeaf } from './store-backends.ts';

for (const backend of DIALECTS) {
  describe(`MvccStore on ${backend.name}`, () => {
    let leaf: TestLeaf;
    let allocator: MemoryAllocator;
    let store: MvccStore;

    beforeEach(async () => {
      ({ leaf, allocator, store } = await openStoreOnLeaf(backend));
    });

    afterEach(() => closeStoreOnLeaf({ leaf, allocator, store }));

    async function snapshot(rev: number) {
      const r = await store.range(range('k', 'l'), rev);
      return r.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.create_revision}/${kv.mod_revision}/v${kv.version}`);
    }

    it('reads at every revision >= the compaction point are unchanged by physical compaction', async () => {
      // A deterministic mix of creates, updates, deletes and re-creates over a few keys.
      let seed = 7;
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < 120; i++) {
        const key = `k${Math.floor(rnd() * 6)}`;
        await store.txn(rnd() < 0.25 ? txn(del(key)) : txn(put(key, `v${i}`)), ctx);
      }
      const head = await allocator.current();
      const compactAt = Math.floor(head / 2);
      const before = new Map<number, string[]>();
      for (let rev = compactAt; rev <= head; rev++) before.set(rev, await snapshot(rev));
      await store.compact(compactAt, true);
      for (let rev = compactAt; rev <= head; rev++) expect(await snapshot(rev), `read at ${rev}`).toEqual(before.get(rev));
      // Events from the compaction point on are still complete, with their prev_kv.
      const page = await store.events(compactAt - 1, head, 10_000);
      expect(page.revisions[0]?.rev).toBeGreaterThanOrEqual(compactAt);
      for (const r of page.revisions) for (const e of r.events) if (e.type === 1) expect(e.prev_kv, `delete at ${r.rev}`).not.toBeNull();
    });

    it('group commit: concurrent writes all commit with distinct, gap-free revisions', async () => {
      const start = await allocator.current();
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => store.txn(txn(put(`k/${i}`, `v${i}`)), ctx)));
      const revs = outcomes.map((o) => o.rev).sort((x, y) => x - y);
      expect(revs).toEqual(Array.from({ length: 200 }, (_, i) => start + 1 + i));
      expect((store as unknown as { writes: { maxBatch: number } }).writes.maxBatch).toBeGreaterThan(1);
      const all = await store.range(range('k/', 'k0', { count_only: true }), await allocator.current());
      expect(all.count).toBe(200);
      expect(await allocator.watermark(['leaf'])).toBe(start + 200);
    });

    it('a failing txn in a commit group does not undo the others', async () => {
      const badLease: TxnRequest = txn(put('k/bad', 'x', { lease: 42 }));
      const results = await Promise.allSettled([store.txn(txn(put('k/a', '1')), ctx), store.txn(badLease, ctx), store.txn(txn(put('k/b', '2')), ctx)]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const r = await store.range(range('k/', 'k0'), await allocator.current());
      expect(r.kvs.map((kv) => kv.key.toString())).toEqual(['k/a', 'k/b']);
    });

    // Only server databases limit key length (SQLite has nothing to refuse here).
    if (backend.maxKeyBytes) it('a database error in a grouped write rolls back only that write (its savepoint)', async () => {
      // The key too long is refused by the database after the txn's first put was written.
      const tooLong = Buffer.concat([b('k/long/'), randomBytes(4000)]);
      const results = await Promise.allSettled([
        store.txn(txn(put('k/a', '1')), ctx),
        store.txn(txn(put('k/half', 'x'), put(tooLong, 'y')), ctx),
        store.txn(txn(put('k/b', '2')), ctx),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const writes = (store as unknown as { writes: { maxBatch: number; redone: number } }).writes;
      expect(writes.maxBatch).toBeGreaterThanOrEqual(3);
      // On server databases the group first went optimistically, failed as a whole, and was redone.
      if (leaf.dialect.capabilities.optimisticWrites) expect(writes.redone).toBeGreaterThanOrEqual(1);
      const r = await store.range(range('k/', 'k0'), await allocator.current());
      expect(r.kvs.map((kv) => kv.key.toString())).toEqual(['k/a', 'k/b']);
      // The log has no row of the failed txn either.
      const page = await store.events(0, await allocator.current(), 100);
      expect(page.revisions.flatMap((x) => x.events.map((e) => e.kv.key.toString()))).toEqual(['k/a', 'k/b']);
    });

    it('a grouped write that throws after it wrote is undone alone; the writes around it commit', async () => {
      // Optimistically (server databases) grouped writes have no savepoints: the group is redone.
      const queue = new GroupCommitQueue(leaf.dialect);
      const sql = leaf.dialect.statements(leaf.tablePrefix);
      const meta = (name: string) => (tx: WriteTx) => tx.run(sql.metaInsert, [name, 1]);
      const results = await Promise.allSettled([
        queue.submit(meta('before')),
        queue.submit(async (tx) => {
          await meta('undone')(tx);
          throw new Error('refused after writing');
        }),
        queue.submit(async (tx) => {
          // Refused before writing anything: no redo needed for this one.
          throw new Error('refused before writing');
        }),
        queue.submit(meta('after')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason.message).toBe('refused after writing');
      expect(queue.maxBatch).toBe(4);
      expect(queue.redone).toBe(leaf.dialect.capabilities.optimisticWrites ? 1 : 0);
      const names = await leaf.dialect.readTx((tx) => tx.all<{ name: string }>(`SELECT name FROM ${leaf.tablePrefix}meta WHERE name IN ('before', 'undone', 'after') ORDER BY name`));
      expect(names.map((r) => r.name)).toEqual(['after', 'before']);
    });

    it('a sole writer sends BEGIN with the statements only for a group that follows a commit at once', async () => {
      const asked: WriteTxOptions[] = [];
      const recording = new Proxy(leaf.dialect, {
        get(target, name) {
          if (name === 'writeTx') return (fn: (tx: WriteTx) => Promise<unknown>, options: WriteTxOptions) => (asked.push(options), target.writeTx(fn, options));
          const value = Reflect.get(target, name, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const sql = leaf.dialect.statements(leaf.tablePrefix);
      const meta = (name: string) => (tx: WriteTx) => tx.run(sql.metaInsert, [name, 1]);
      // Two groups: a job of the first queues more while its group runs; they follow its commit.
      const twoGroups = async (queue: GroupCommitQueue, prefix: string, prepare?: () => void) => {
        let followers!: Promise<unknown[]>;
        await queue.submit(async (tx) => {
          followers = Promise.all([queue.submit(meta(`${prefix}-b`), undefined, prepare), queue.submit(meta(`${prefix}-c`))]);
          await meta(`${prefix}-a`)(tx);
        });
        await followers;
      };
      // MySQL's writer session counts its round trips.
      const roundTrips = () => (backend.name === 'mysql' ? (leaf.dialect as unknown as { writer: { session: { answered: number } } }).writer.session.answered : 0);
      let trips = 0;
      const begins = async (queue: GroupCommitQueue, prefix: string, prepare?: () => void) => {
        asked.length = 0;
        const before = roundTrips();
        await twoGroups(queue, prefix, prepare);
        trips = roundTrips() - before;
        return asked.map((o) => o.beginWithStatements);
      };

      expect(await begins(new GroupCommitQueue(recording, undefined, undefined, true), 'sole')).toEqual([false, true]);
      // BEGIN and the lock, then the group's statements with the commit; the second group all at once.
      if (backend.name === 'mysql') expect(trips).toBe(3);
      // A group whose first job asks for its revision under the lock (prepare) waits for the lock.
      expect(await begins(new GroupCommitQueue(recording, undefined, undefined, true), 'prepared', () => undefined)).toEqual([false, false]);
      // A queue that is not the leaf's only writer always waits for the lock.
      expect(await begins(new GroupCommitQueue(recording), 'shared')).toEqual([false, false]);
      if (backend.name === 'mysql') expect(trips).toBe(4);
      const names = await leaf.dialect.readTx((tx) => tx.all<{ name: string }>(`SELECT name FROM ${leaf.tablePrefix}meta WHERE name LIKE '%-%' ORDER BY name`));
      expect(names.map((r) => r.name)).toEqual(['prepared-a', 'prepared-b', 'prepared-c', 'shared-a', 'shared-b', 'shared-c', 'sole-a', 'sole-b', 'sole-c']);
    });

    it('a group that sent BEGIN with its statements and failed after writing is redone and undone alone', async () => {
      const queue = new GroupCommitQueue(leaf.dialect, undefined, undefined, true);
      const sql = leaf.dialect.statements(leaf.tablePrefix);
      const meta = (name: string) => (tx: WriteTx) => tx.run(sql.metaInsert, [name, 1]);
      let followers!: Promise<PromiseSettledResult<unknown>[]>;
      await queue.submit(async (tx) => {
        followers = Promise.allSettled([
          queue.submit(meta('kept')),
          queue.submit(async (tx2) => {
            await meta('undone')(tx2);
            throw new Error('refused after writing');
          }),
          queue.submit(meta('also kept')),
        ]);
        await meta('first')(tx);
      });
      expect((await followers).map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(queue.redone).toBe(leaf.dialect.capabilities.optimisticWrites ? 1 : 0);
      const names = await leaf.dialect.readTx((tx) => tx.all<{ name: string }>(`SELECT name FROM ${leaf.tablePrefix}meta WHERE name IN ('first', 'kept', 'undone', 'also kept') ORDER BY name`));
      expect(names.map((r) => r.name)).toEqual(['also kept', 'first', 'kept']);
    });

    // Another node writing the same leaf needs a server database.
    if (backend.name !== 'sqlite') it('a read at an explicit revision stays exact after another node wrote the leaf', async () => {
      const at = (rev: number) => store.range(range('k/', 'k0', { revision: rev }), rev).then((r) => r.kvs.map((kv) => `${kv.key}=${kv.value}`));
      const first = (await store.txn(txn(put('k/a', '1')), ctx)).rev;
      // The next page of a list at this revision is at the head: one statement answers it.
      expect(await at(first)).toEqual(['k/a=1']);
      const other = new MvccStore('leaf', leaf.secondWriter!(), allocator, { tablePrefix: leaf.tablePrefix });
      await other.open();
      try {
        await other.txn(txn(put('k/b', '2')), ctx);
        const last = (await other.txn(txn(del('k/a')), ctx)).rev;
        // This store last saw `first` as the head: it tries the head, finds it moved, reads history.
        expect(await at(first)).toEqual(['k/a=1']);
        expect(await at(last)).toEqual(['k/b=2']);
      } finally {
        await other.close();
      }
    });

    it('binary keys (0x00, 0xff bytes) sort as bytes, at the head and in history', async () => {
      const keys = [
        Buffer.from([0x00]), Buffer.from([0x00, 0x00]), Buffer.from([0x00, 0xff]), Buffer.from([0x01]),
        Buffer.from('a'), Buffer.from([0x61, 0x00]), Buffer.from([0x61, 0x00, 0x00]), Buffer.from([0x61, 0x7f]),
        Buffer.from([0x61, 0x80]), Buffer.from([0x61, 0xff]), Buffer.from([0x61, 0xff, 0xff]), Buffer.from('ab'),
        Buffer.from([0x7f]), Buffer.from([0x80]), Buffer.from([0xc3, 0xa9]), Buffer.from([0xfe, 0xff]), Buffer.from([0xff]),
        Buffer.from([0xff, 0x00]), Buffer.from([0xff, 0xff, 0xff]),
      ];
      const shuffled = [...keys].sort(() => Math.random() - 0.5);
      for (const [i, k] of shuffled.entries()) await store.txn(txn(put(k, Buffer.from([i, 0x00, 0xff]))), ctx);
      const mid = await allocator.current();
      const sorted = [...keys].sort(Buffer.compare);
      const hex = (bs: Buffer[]) => bs.map((x) => x.toString('hex'));
      // Everything: from the key 0x00 with range_end 0x00 (etcd: every key >= key).
      const all = await store.range(range(Buffer.from([0x00]), Buffer.from([0x00])), mid);
      expect(hex(all.kvs.map((kv) => kv.key))).toEqual(hex(sorted));
      // The prefix 'a' ([a, b)): a, a\0, a\0\0, a\x7f, a\x80, a\xff, a\xff\xff, ab.
      const prefixA = await store.range(range('a', 'b'), mid);
      expect(hex(prefixA.kvs.map((kv) => kv.key))).toEqual(hex(sorted.filter((k) => Buffer.compare(k, b('a')) >= 0 && Buffer.compare(k, b('b')) < 0)));
      // A single key is exact: 'a' does not match a\0.
      const one = await store.range(range('a'), mid);
      expect(hex(one.kvs.map((kv) => kv.key))).toEqual([b('a').toString('hex')]);
      // Limits cut in byte order, and the count covers the whole range.
      const limited = await store.range(range(Buffer.from([0xff]), Buffer.from([0x00]), { limit: 2 }), mid);
      expect(hex(limited.kvs.map((kv) => kv.key))).toEqual(['ff', 'ff00']);
      expect([limited.more, limited.count]).toEqual([true, 3]);
      // History: change everything, then read at `mid` (the log table, not the current one).
      for (const k of keys) await store.txn({ compare: [], success: [{ request: 'request_delete_range', request_delete_range: { key: k, range_end: b(''), prev_kv: false } }], failure: [] }, ctx);
      const past = await store.range(range(Buffer.from([0x00]), Buffer.from([0x00])), mid);
      expect(hex(past.kvs.map((kv) => kv.key))).toEqual(hex(sorted));
      expect(past.kvs.map((kv) => [...kv.value.subarray(1)])).toEqual(sorted.map(() => [0x00, 0xff]));
      expect((await store.range(range(Buffer.from([0x00]), Buffer.from([0x00])), await allocator.current())).kvs).toEqual([]);
    });

    it('stores 1 MiB values byte for byte, in reads, history and events', async () => {
      const big1 = randomBytes(1024 * 1024);
      const big2 = randomBytes(1024 * 1024);
      const r1 = await store.txn(txn(put('big', big1)), ctx);
      const r2 = await store.txn(txn(put('big', big2, { prev_kv: true })), ctx);
      const prev = r2.response.responses[0].response_put?.prev_kv;
      expect(prev?.value.equals(big1)).toBe(true);
      expect((await store.range(range('big'), r2.rev)).kvs[0].value.equals(big2)).toBe(true);
      expect((await store.range(range('big'), r1.rev)).kvs[0].value.equals(big1)).toBe(true);
      const page = await store.events(r1.rev - 1, r2.rev, 100);
      expect(page.revisions.map((r) => r.rev)).toEqual([r1.rev, r2.rev]);
      const second = page.revisions[1].events[0];
      expect(second.kv.value.equals(big2)).toBe(true);
      expect(second.prev_kv?.value.equals(big1)).toBe(true);
    });

    it('pages big enough for a bulk read (binary COPY on PostgreSQL, packed on SQLite) answer every byte, count and more exactly, at the head and in history', async () => {
      const statements: string[] = [];
      const readOnce = leaf.dialect.readOnce?.bind(leaf.dialect);
      if (readOnce) {
        leaf.dialect.readOnce = <T>(sql: string, params: Parameters<typeof readOnce>[1]) => {
          statements.push(sql);
          return readOnce<T>(sql, params);
        };
      }
      // Keys with 0x00 and 0xff bytes, values of every byte and the empty value, versions above 1.
      const keys = Array.from({ length: 90 }, (_, i) => Buffer.concat([b('p/'), Buffer.from([i % 3 === 0 ? 0x00 : 0xff, i])]));
      const valueOf = (i: number) => (i % 10 === 0 ? Buffer.alloc(0) : Buffer.from(Array.from({ length: 300 + i }, (_, j) => (i * 7 + j) % 256)));
      for (let i = 0; i < keys.length; i += 30) {
        await store.txn(txn(...keys.slice(i, i + 30).map((k) => put(k, b('old')))), ctx);
        await store.txn(txn(...keys.slice(i, i + 30).map((k, j) => put(k, valueOf(i + j)))), ctx);
      }
      const head = await allocator.current();
      const expected = (await store.range(range('p/', 'p0'), head)).kvs; // no limit: not a bulk read
      expect(expected.map((kv) => kv.key.toString('hex'))).toEqual([...keys].sort(Buffer.compare).map((k) => k.toString('hex')));
      expect(expected.every((kv) => kv.version === 2 && kv.mod_revision > kv.create_revision)).toBe(true);

      // Walk in pages of 40, bounded and (from 'p/' on, range_end 0x00) unbounded, at the first
      // page's revision: at the head, then in history once every other key changed again.
      const walk = async (end: Buffer) => {
        const walked: typeof expected = [];
        let from = b('p/');
        for (;;) {
          const page = await store.range(range(from, end, { limit: 40, revision: head }), head);
          expect(page.count).toBe(expected.length - walked.length);
          walked.push(...page.kvs);
          expect(page.more).toBe(walked.length < expected.length);
          if (!page.more) break;
          from = Buffer.concat([page.kvs[page.kvs.length - 1].key, Buffer.of(0)]);
        }
        expect(walked).toEqual(expected);
      };
      for (const end of [b('p0'), Buffer.from([0])]) await walk(end);
      // An empty range with a bulk limit answers nothing, exactly.
      expect(await store.range(range('q/', 'q0', { limit: 40 }), head)).toMatchObject({ kvs: [], more: false, count: 0 });
      await store.txn(txn(...keys.filter((_, i) => i % 2 === 0).map((k) => put(k, b('new')))), ctx);
      for (const end of [b('p0'), Buffer.from([0])]) await walk(end);
      // The head pages (3 + 3 + the empty one) went the bulk way.
      if (backend.name === 'postgres') expect(statements.filter((sql) => sql.startsWith('COPY ')).length).toBeGreaterThanOrEqual(7);
      if (backend.name === 'sqlite') expect(statements.filter((sql) => sql.includes('group_concat')).length).toBeGreaterThanOrEqual(7);
    });

    it('events carry the row they replaced (prev_kv), deletes included', async () => {
      const a1 = (await store.txn(txn(put('e/a', '1')), ctx)).rev;
      const a2 = (await store.txn(txn(put('e/a', '2'), put('e/b', 'x')), ctx)).rev;
      const a3 = (await store.txn(txn(del('e/a')), ctx)).rev;
      const page = await store.events(a1 - 1, a3, 100);
      expect(page.complete).toBe(a3);
      const flat = page.revisions.flatMap((r) =>
        r.events.map((e) => ({
          rev: r.rev, type: e.type, key: e.kv.key.toString(), value: e.kv.value.toString(), create: e.kv.create_revision, mod: e.kv.mod_revision, version: e.kv.version,
          prev: e.prev_kv && { value: e.prev_kv.value.toString(), create: e.prev_kv.create_revision, mod: e.prev_kv.mod_revision, version: e.prev_kv.version },
        })),
      );
      expect(flat).toEqual([
        { rev: a1, type: EventType.PUT, key: 'e/a', value: '1', create: a1, mod: a1, version: 1, prev: null },
        { rev: a2, type: EventType.PUT, key: 'e/a', value: '2', create: a1, mod: a2, version: 2, prev: { value: '1', create: a1, mod: a1, version: 1 } },
        { rev: a2, type: EventType.PUT, key: 'e/b', value: 'x', create: a2, mod: a2, version: 1, prev: null },
        { rev: a3, type: EventType.DELETE, key: 'e/a', value: '', create: 0, mod: a3, version: 0, prev: { value: '2', create: a1, mod: a2, version: 2 } },
      ]);
      // A limit never splits a revision: a2's two events come together or not at all.
      const first = await store.events(a1 - 1, a3, 2);
      expect(first.revisions.map((r) => r.rev)).toEqual([a1]);
      expect(first.complete).toBe(a2 - 1);
    });

    it('a sole writer answers events from memory exactly as the log does, at every limit', async () => {
      const leased = { leaseExists: (l: number) => l === 9 };
      const from = await allocator.current();
      await store.txn(txn(put('m/a', '1', { lease: 9 }), put('m/b', '1'), put('m/c', '1', { lease: 9 })), leased);
      await store.txn(txn(put('m/a', '2')), leased);
      await store.txn({ compare: [], success: [{ request: 'request_put', request_put: { key: b('m/a'), value: b(''), lease: 0, prev_kv: false, ignore_value: true, ignore_lease: true } }], failure: [] }, leased);
      await store.txn({ compare: [], success: [{ request: 'request_delete_range', request_delete_range: { key: b('m/'), range_end: b('m/c'), prev_kv: true } }], failure: [] }, leased);
      await store.txn(txn(put('m/a', '3'), { request: 'request_txn', request_txn: txn(put('m/d', '1')) }), leased);
      await store.txn(txn(del('m/none')), leased); // changes nothing: no revision, no event
      await store.revokeLeaseKeys(9);
      const head = await allocator.current();
      // The same leaf read through a store that cannot vouch for every write (as with Redis).
      const logOnly = logOnlyStore(leaf, allocator);
      for (const limit of [1, 2, 3, 4, 100]) {
        for (let after = from; after < head; after++) {
          expect(await store.events(after, head, limit), `after ${after}, limit ${limit}`).toEqual(await logOnly.events(after, head, limit));
        }
      }
    });

    it('a sole writer answers gets from its head cache exactly as the database does', async () => {
      const leased = { leaseExists: (l: number) => l === 9 };
      const logOnly = logOnlyStore(leaf, allocator);
      let seed = 11;
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const keys = ['h/a', 'h/b', 'h/c', 'h/d'];
      const revs: number[] = [await allocator.current()];
      const gets = [range('h/a'), range('h/b', '', { keys_only: true }), range('h/c', '', { count_only: true }), range('h/d', '', { limit: 1 })];
      for (let i = 0; i < 150; i++) {
        const key = keys[Math.floor(rnd() * keys.length)];
        const roll = rnd();
        if (roll < 0.3) await store.txn(txn(put(key, `v${i}`, { lease: rnd() < 0.3 ? 9 : 0 })), leased);
        else if (roll < 0.4) await store.txn(txn(del(key)), leased);
        else if (roll < 0.45) await store.revokeLeaseKeys(9);
        else if (roll < 0.5) await store.txn({ compare: [], success: [{ request: 'request_delete_range', request_delete_range: { key: b('h/'), range_end: b('h0'), prev_kv: false } }], failure: [] }, leased);
        revs.push(await allocator.current());
        // Gets at the head and at older read indexes (a request that took its index earlier).
        for (const at of [revs[revs.length - 1], revs[Math.floor(rnd() * revs.length)]]) {
          for (const req of gets) expect(await store.range(req, at), `${req.key} at ${at}, step ${i}`).toEqual(await logOnly.range(req, at));
        }
      }
    });

    it('writes of one key grouped in one commit each see the one before (never a stale cached state)', async () => {
      const cas = (mod: number, value: string): TxnRequest => ({
        compare: [{ key: b('w/k'), range_end: b(''), target: 2, result: 0, target_union: 'mod_revision', mod_revision: mod }],
        success: [put('w/k', value, { prev_kv: true })],
        failure: [],
      });
      const first = await store.txn(txn(put('w/k', 'v0')), ctx);
      // Concurrent puts land in one or a few commit groups: versions form one chain.
      const puts = await Promise.all(Array.from({ length: 40 }, (_, i) => store.txn(txn(put('w/k', `p${i}`, { prev_kv: true })), ctx)));
      const chain = puts.map((o) => o.response.responses[0].response_put!.prev_kv!).sort((x, y) => x.version - y.version);
      expect(chain.map((kv) => kv.version)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      for (const kv of chain) expect(kv.create_revision).toBe(first.rev);
      // Compare-and-swap from the same state, concurrently: exactly one wins.
      const head = (await store.range(range('w/k'), await allocator.current())).kvs[0];
      expect(head.version).toBe(41);
      const swaps = await Promise.all(Array.from({ length: 10 }, (_, i) => store.txn(cas(head.mod_revision, `c${i}`), ctx)));
      expect(swaps.filter((o) => o.response.succeeded)).toHaveLength(1);
      // A delete then a put in one group: the put creates the key anew.
      const [, recreated] = await Promise.all([store.txn(txn(del('w/k')), ctx), store.txn(txn(put('w/k', 'again')), ctx)]);
      const kv = (await store.range(range('w/k'), await allocator.current())).kvs[0];
      expect(kv).toMatchObject({ version: 1, create_revision: recreated.rev, mod_revision: recreated.rev });
    });

    // Puts of keys whose former state nobody cached go out together (put-batch.ts): server databases.
    if (backend.maxKeyBytes) it('puts of new and existing keys grouped without a head cache (as with Redis) each derive from the key row before them', async () => {
      const existing = Array.from({ length: 8 }, (_, i) => `g/${i}`);
      for (const key of existing) await store.txn(txn(put(key, 'old', { lease: 0 })), ctx);
      // A second node's store (no sole-writer caches): every put's former row comes from the database.
      // (Its allocator counts on from the shared one's revision in a counter of its own.)
      const noCaches = notSoleWriter(allocator);
      const other = new MvccStore('leaf', leaf.secondWriter!(), noCaches, { tablePrefix: leaf.tablePrefix });
      await other.open();
      try {
        const tooLong = Buffer.concat([b('g/long/'), randomBytes(4000)]);
        const requests: TxnRequest[] = [];
        for (let i = 0; i < 30; i++) requests.push(txn(put(`g/${i % 12}`, `v${i}`, { prev_kv: true })));
        requests.splice(10, 0, txn(put('g/x', 'a', { prev_kv: true }), put('g/1', 'b', { prev_kv: true }), put('g/y', 'c', { prev_kv: true })));
        const submitted = (round: number) => requests.map((r) => other.txn(r, ctx).then((o) => ({ ...o, round })));
        // The first round goes optimistically; the second holds a write that fails after it
        // wrote (a key too long for the database), so its group is redone in savepoints.
        const first = await Promise.all(submitted(1));
        const second = await Promise.allSettled([...submitted(2), other.txn(txn(put('g/z', 'z'), put(tooLong, 'x')), ctx)]);
        expect(second.pop()!.status).toBe('rejected');
        const outcomes = [...first, ...second.map((s) => (s as PromiseFulfilledResult<(typeof first)[number]>).value)];
        expect((other as unknown as { writes: { redone: number } }).writes.redone).toBeGreaterThanOrEqual(1);

        // Replay every acknowledged put in revision order: each response's prev_kv and each
        // event must be the state the replay says the key had.
        const state = new Map<string, { value: string; create_revision: number; mod_revision: number; version: number }>();
        for (const key of existing) {
          const kv = (await store.range(range(key), await allocator.current())).kvs[0];
          state.set(key, { value: kv.value.toString(), create_revision: kv.create_revision, mod_revision: kv.mod_revision, version: kv.version });
        }
        const from = Math.min(...outcomes.map((o) => o.rev)) - 1;
        const expected: unknown[] = [];
        const ordered = [...outcomes].sort((x, y) => x.rev - y.rev);
        for (const o of ordered) {
          const ops = [...requests[outcomes.indexOf(o) % requests.length].success];
          o.response.responses.forEach((r, i) => {
            const key = ops[i].request_put!.key.toString();
            const prev = state.get(key) ?? null;
            expect(r.response_put!.prev_kv && { ...r.response_put!.prev_kv, key: undefined, value: r.response_put!.prev_kv.value.toString(), lease: undefined }, `prev of ${key} at ${o.rev}`).toEqual(prev && { ...prev, key: undefined, lease: undefined });
            const now = { value: ops[i].request_put!.value.toString(), create_revision: prev?.create_revision ?? o.rev, mod_revision: o.rev, version: (prev?.version ?? 0) + 1 };
            expected.push({ key, ...now, prev });
            state.set(key, now);
          });
        }
        const page = await other.events(from, Math.max(...outcomes.map((o) => o.rev)), 10_000);
        const seen = page.revisions.flatMap((r) =>
          r.events.map((e) => ({
            key: e.kv.key.toString(), value: e.kv.value.toString(), create_revision: e.kv.create_revision, mod_revision: e.kv.mod_revision, version: e.kv.version,
            prev: e.prev_kv && { value: e.prev_kv.value.toString(), create_revision: e.prev_kv.create_revision, mod_revision: e.prev_kv.mod_revision, version: e.prev_kv.version },
          })),
        );
        expect(seen).toEqual(expected);
        // The current rows agree with the replay.
        const head = await other.range(range('g/', 'g0'), await noCaches.current());
        expect(new Map(head.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), create_revision: kv.create_revision, mod_revision: kv.mod_revision, version: kv.version }]))).toEqual(state);
      } finally {
        await other.close();
      }
    });

    it('a commit that fails drops the sole writer caches; they come back by themselves and agree with the database', async () => {
      // The same leaf through a dialect whose next transaction fails right before its COMMIT,
      // as a connection lost at that moment would (rolled back, but the store cannot know).
      let failNext = false;
      const faulty: Dialect = Object.create(leaf.dialect);
      faulty.writeTx = (fn, options) =>
        leaf.dialect.writeTx(async (tx) => {
          const result = await fn(tx);
          if (failNext) {
            failNext = false;
            throw Object.assign(new Error('injected: connection reset before COMMIT'), { code: 'ECONNRESET' });
          }
          return result;
        }, options);
      const faultyStore = new MvccStore('leaf', faulty, allocator, { tablePrefix: leaf.tablePrefix });
      await faultyStore.open();
      try {
        const caches = faultyStore as unknown as { heads: object | null; recent: object | null };
        await faultyStore.txn(txn(put('x/a', '1')), ctx);
        failNext = true;
        await expect(faultyStore.txn(txn(put('x/a', 'lost')), ctx)).rejects.toThrow();
        expect(caches.heads).toBeNull();
        for (let i = 0; i < 200 && (caches.heads === null || caches.recent === null); i++) await new Promise((r) => setTimeout(r, 25));
        expect(caches.heads).not.toBeNull();
        expect(caches.recent).not.toBeNull();
        const from = await allocator.current();
        await faultyStore.txn(txn(put('x/a', '2'), put('x/b', '1')), ctx);
        await faultyStore.txn(txn(del('x/b')), ctx);
        const head = await allocator.current();
        const logOnly = logOnlyStore(leaf, allocator);
        for (const key of ['x/a', 'x/b']) expect(await faultyStore.range(range(key), head), key).toEqual(await logOnly.range(range(key), head));
        expect((await faultyStore.range(range('x/a'), head)).kvs[0].value.toString()).toBe('2');
        expect(await faultyStore.events(from, head, 100)).toEqual(await logOnly.events(from, head, 100));
      } finally {
        await faultyStore.close();
      }
    });

    it('leases: saved, listed, keys attached, revoked in one revision, deleted', async () => {
      const id = 2 ** 52 + 7; // beyond 32 bits: bigint columns come back as exact numbers
      await store.saveLease({ id, ttl: 30 });
      await store.saveLease({ id: 5, ttl: 600 });
      expect((await store.listLeases()).sort((x, y) => x.id - y.id)).toEqual([{ id: 5, ttl: 600 }, { id, ttl: 30 }]);
      const leased = { leaseExists: (l: number) => l === id };
      await store.txn(txn(put('l/a', '1', { lease: id }), put('l/b', '2', { lease: id }), put('l/c', '3')), leased);
      expect((await store.range(range('l/a'), await allocator.current())).kvs[0].lease).toBe(id);
      expect((await store.keysOfLease(id)).map(String)).toEqual(['l/a', 'l/b']);
      const rev = await store.revokeLeaseKeys(id);
      expect(rev).toBe(await allocator.current());
      expect((await store.range(range('l/', 'l0'), rev)).kvs.map((kv) => kv.key.toString())).toEqual(['l/c']);
      const page = await store.events(rev - 1, rev, 100);
      expect(page.revisions[0].events.map((e) => [e.type, e.kv.key.toString()])).toEqual([[EventType.DELETE, 'l/a'], [EventType.DELETE, 'l/b']]);
      await store.deleteLease(id);
      expect(await store.listLeases()).toEqual([{ id: 5, ttl: 600 }]);
      expect(await store.keysOfLease(id)).toEqual([]);
    });

    it('reports its size', async () => {
      await store.txn(txn(put('s', 'x'.repeat(10_000))), ctx);
      expect(await store.sizeBytes()).toBeGreaterThan(0);
    });

    it(`keys up to the database's limit are stored whole; a longer one fails clearly, never truncated`, async () => {
      const max = backend.maxKeyBytes ?? 4096;
      const longest = Buffer.concat([b('key/'), randomBytes(max - 4)]);
      await store.txn(txn(put(longest, 'v')), ctx);
      expect((await store.range(range(longest), await allocator.current())).kvs[0]?.key.equals(longest)).toBe(true);
      if (!backend.maxKeyBytes) return;
      const tooLong = Buffer.concat([b('long/'), randomBytes(backend.name === 'postgres' ? 4000 : max - 4)]);
      const err = await failure(store.txn(txn(put(tooLong, 'v')), ctx));
      expect(err.code).toBe(Code.INVALID_ARGUMENT);
      expect(err.message).toMatch(/key is too long for this leaf/);
      expect((await store.range(range('long/', 'long0', { count_only: true }), await allocator.current())).count).toBe(0);
    });
  });
}
