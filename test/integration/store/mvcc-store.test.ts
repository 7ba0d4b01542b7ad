// The shared MVCC store on SQLite, driven directly: history stays exact through physical
// compaction, group commit keeps every write, events carry prev_kv.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryAllocator } from '../../../src/revision/memory-allocator.ts';
import { SqliteDialect } from '../../../src/store/dialects/sqlite/sqlite-dialect.ts';
import { MvccStore } from '../../../src/store/mvcc-store.ts';
import type { RangeRequest, RequestOp, TxnRequest } from '../../../src/store/types.ts';

const b = (s: string) => Buffer.from(s);
const range = (key: string, end = '', extra: Partial<RangeRequest> = {}): RangeRequest => ({
  key: b(key), range_end: b(end), limit: 0, revision: 0, sort_order: 0, sort_target: 0, serializable: false,
  keys_only: false, count_only: false, min_mod_revision: 0, max_mod_revision: 0, min_create_revision: 0, max_create_revision: 0, ...extra,
});
const put = (key: string, value: string): RequestOp => ({ request: 'request_put', request_put: { key: b(key), value: b(value), lease: 0, prev_kv: false, ignore_value: false, ignore_lease: false } });
const del = (key: string): RequestOp => ({ request: 'request_delete_range', request_delete_range: { key: b(key), range_end: b(''), prev_kv: false } });
const txn = (...ops: RequestOp[]): TxnRequest => ({ compare: [], success: ops, failure: [] });
const ctx = { leaseExists: () => false };

describe('MvccStore on SQLite', () => {
  let dir: string;
  let allocator: MemoryAllocator;
  let store: MvccStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mvcc-store-'));
    allocator = new MemoryAllocator();
    store = new MvccStore('leaf', new SqliteDialect({ path: join(dir, 'db.sqlite') }), allocator, { compactionBatch: 7 });
    await store.open();
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

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
    const all = await store.range(range('k/', 'k0', { count_only: true }), await allocator.current());
    expect(all.count).toBe(200);
    expect(await allocator.watermark(['leaf'])).toBe(start + 200);
  });

  it('a failing txn in a commit group does not undo the others', async () => {
    const badLease: TxnRequest = txn({ request: 'request_put', request_put: { key: b('k/bad'), value: b('x'), lease: 42, prev_kv: false, ignore_value: false, ignore_lease: false } });
    const results = await Promise.allSettled([store.txn(txn(put('k/a', '1')), ctx), store.txn(badLease, ctx), store.txn(txn(put('k/b', '2')), ctx)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const r = await store.range(range('k/', 'k0'), await allocator.current());
    expect(r.kvs.map((kv) => kv.key.toString())).toEqual(['k/a', 'k/b']);
  });
});
