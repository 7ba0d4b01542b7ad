// KV.Range: key forms, limit/more/count, historical reads, sorting, serializable, keys_only,
// count_only and the min/max revision filters.
import { describeConformance, type ScenarioTarget } from './harness.ts';
import { b, FROM_KEY, prefixEnd } from './keys.ts';
import { SortOrder, SortTarget } from './enums.ts';

/** What a list shows: keys in order, plus more and count. */
const listed = (r: any) => ({ keys: r.kvs.map((kv: any) => kv.key), more: r.more, count: r.count });

async function putAll(t: ScenarioTarget, entries: [string, string][]): Promise<void> {
  for (const [k, v] of entries) await t.step(`put ${k}=${v}`, () => t.client.kv.put({ key: t.key(k), value: b(v) }));
}

describeConformance('kv-range', {
  'single key': async (t) => {
    await putAll(t, [['a', '1'], ['b', '2']]);
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
    await t.step('range missing key', () => t.client.kv.range({ key: t.key('aa') }));
    await t.step('range a, limit 1', () => t.client.kv.range({ key: t.key('a'), limit: 1 }));
    await t.step('range a at the revision of its put', () => t.client.kv.range({ key: t.key('a'), revision: t.rev(1) }));
    await t.step('range b at a revision before it existed', () => t.client.kv.range({ key: t.key('b'), revision: t.rev(1) }));
  },

  'prefix (range_end = prefix + 1)': async (t) => {
    await putAll(t, [['p/1', 'a'], ['p/2', 'b'], ['p/3', 'c'], ['pp', 'd'], ['p', 'e'], ['q', 'f']]);
    await t.step('range prefix p/', () => t.client.kv.range({ key: t.key('p/'), range_end: prefixEnd(t.key('p/')) }));
    await t.step('range prefix p', () => t.client.kv.range({ key: t.key('p'), range_end: prefixEnd(t.key('p')) }), listed);
    await t.step('range [p/2, p/3)', () => t.client.kv.range({ key: t.key('p/2'), range_end: t.key('p/3') }), listed);
    await t.step('range whole scenario prefix', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }), listed);
    await t.step('range empty prefix', () => t.client.kv.range({ key: t.key('x/'), range_end: prefixEnd(t.key('x/')) }));
  },

  'from-key (range_end "\\0")': async (t) => {
    // Later scenarios' keys sort after ours but are not written yet; earlier ones sort before.
    await putAll(t, [['a', '1'], ['b', '2'], ['c', '3']]);
    await t.step('range from b', () => t.client.kv.range({ key: t.key('b'), range_end: FROM_KEY }));
    await t.step('range from bb', () => t.client.kv.range({ key: t.key('bb'), range_end: FROM_KEY }), listed);
    await t.step('range from the prefix, limit 2', () => t.client.kv.range({ key: t.key(), range_end: FROM_KEY, limit: 2 }), listed);
    await t.step('range from after the last key', () => t.client.kv.range({ key: t.key('d'), range_end: FROM_KEY }));
  },

  'all keys ("\\0", "\\0"), restricted to this scenario by min_create_revision': async (t) => {
    const all = { key: FROM_KEY, range_end: FROM_KEY };
    const before = await t.client.kv.range({ ...all, count_only: true });
    await putAll(t, [['x', '1'], ['y', '2'], ['z', '3']]);
    const own = { ...all, min_create_revision: t.rev(1) };
    await t.step('range all keys created here', () => t.client.kv.range(own), (r) => ({ ...r, count: r.count - before.count }));
    await t.step('range all keys created here, keys_only, limit 2', () => t.client.kv.range({ ...own, keys_only: true, limit: 2 }), (r) => ({ ...r, count: r.count - before.count }));
    await t.step('count all keys', () => t.client.kv.range({ ...all, count_only: true }), (r) => ({ ...r, count: r.count - before.count }));
  },

  'limit, more and count': async (t) => {
    await putAll(t, [['k1', 'a'], ['k2', 'b'], ['k3', 'c'], ['k4', 'd'], ['k5', 'e']]);
    const range = { key: t.key('k'), range_end: prefixEnd(t.key('k')) };
    for (const limit of [0, 1, 4, 5, 6, -1]) await t.step(`range limit ${limit}`, () => t.client.kv.range({ ...range, limit }), listed);
    await t.step('delete k2', () => t.client.kv.deleteRange({ key: t.key('k2') }));
    await t.step('range limit 2 now', () => t.client.kv.range({ ...range, limit: 2 }), listed);
    await t.step('range limit 2 before the delete', () => t.client.kv.range({ ...range, limit: 2, revision: t.rev(5) }), listed);
    await t.step('range limit 4 before the delete', () => t.client.kv.range({ ...range, limit: 4, revision: t.rev(5) }), listed);
    await t.step('range limit 1 from k4', () => t.client.kv.range({ key: t.key('k4'), range_end: FROM_KEY, limit: 1 }), listed);
  },

  'historical revisions': async (t) => {
    await t.step('put a=1', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('put a=2', () => t.client.kv.put({ key: t.key('a'), value: b('2') }));
    await t.step('put b=1', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
    await t.step('delete a', () => t.client.kv.deleteRange({ key: t.key('a') }));
    await t.step('put a=3', () => t.client.kv.put({ key: t.key('a'), value: b('3') }));
    for (let rel = 0; rel <= 5; rel++) {
      await t.step(`range prefix at B+${rel}`, () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()), revision: t.rev(rel) }));
      await t.step(`range a at B+${rel}`, () => t.client.kv.range({ key: t.key('a'), revision: t.rev(rel) }));
    }
    await t.step('range prefix at revision 0 (= now)', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()), revision: 0 }));
  },

  'sort by every target in every order': async (t) => {
    // Distinct key, version, create and mod revisions and values, each giving another order.
    await putAll(t, [['k3', 'e'], ['k1', 'x'], ['k5', 'c'], ['k2', 'b'], ['k4', 'a']]);
    await putAll(t, [['k1', 'y'], ['k5', 'c'], ['k1', 'd'], ['k5', 'c'], ['k3', 'e'], ['k5', 'c'], ['k1', 'd'], ['k5', 'c']]);
    const range = { key: t.key('k'), range_end: prefixEnd(t.key('k')) };
    for (const [target, sort_target] of Object.entries(SortTarget)) {
      for (const [order, sort_order] of Object.entries(SortOrder)) {
        await t.step(`sort ${target} ${order}`, () => t.client.kv.range({ ...range, sort_target, sort_order }), listed);
      }
    }
    await t.step('sort MOD DESCEND, limit 2', () => t.client.kv.range({ ...range, sort_target: SortTarget.MOD, sort_order: SortOrder.DESCEND, limit: 2 }), listed);
    await t.step('sort VALUE ASCEND, limit 3', () => t.client.kv.range({ ...range, sort_target: SortTarget.VALUE, sort_order: SortOrder.ASCEND, limit: 3 }), listed);
    await t.step('sort CREATE DESCEND at an older revision', () => t.client.kv.range({ ...range, sort_target: SortTarget.CREATE, sort_order: SortOrder.DESCEND, revision: t.rev(4) }), listed);
  },

  'sort with ties (etcd sorts fewer than 13 elements stably)': async (t) => {
    await putAll(t, [['t2', 'same'], ['t4', 'same'], ['t1', 'same'], ['t3', 'other'], ['t3', 'same']]);
    const range = { key: t.key('t'), range_end: prefixEnd(t.key('t')) };
    for (const [target, sort_target] of Object.entries(SortTarget)) {
      for (const order of ['ASCEND', 'DESCEND'] as const) {
        await t.step(`sort ${target} ${order}`, () => t.client.kv.range({ ...range, sort_target, sort_order: SortOrder[order] }), listed);
      }
    }
  },

  'binary keys and values compare bytewise': async (t) => {
    // Keys are byte strings: no collation, no case folding, no UTF-8 validation.
    const raw = (...bytes: number[]) => Buffer.concat([t.key('bin/'), Buffer.from(bytes)]);
    const keys = [raw(0x00), raw(0x41), raw(0x61), raw(0x7f), raw(0x80), raw(0xc3, 0xa9), raw(0xff), raw(0xff, 0x00), raw(0xff, 0xff)];
    for (const [i, key] of keys.entries()) {
      await t.step(`put key #${i}`, () => t.client.kv.put({ key, value: Buffer.from([0xff, 0x00, i]) }));
    }
    const bin = { key: t.key('bin/'), range_end: prefixEnd(t.key('bin/')) };
    await t.step('range bin/ prefix', () => t.client.kv.range(bin));
    await t.step('range [bin/0x7f, bin/0xff)', () => t.client.kv.range({ key: raw(0x7f), range_end: raw(0xff) }), listed);
    await t.step('range prefix bin/0xff (its range_end drops the 0xff)', () => t.client.kv.range({ key: raw(0xff), range_end: prefixEnd(raw(0xff)) }), listed);
    await t.step('range from bin/0x80', () => t.client.kv.range({ key: raw(0x80), range_end: FROM_KEY }), listed);
    await t.step('range bin/A (not bin/a)', () => t.client.kv.range({ key: raw(0x41) }), listed);
    await t.step('sort VALUE DESCEND', () => t.client.kv.range({ ...bin, sort_target: SortTarget.VALUE, sort_order: SortOrder.DESCEND }), listed);
    await t.step('delete [bin/0x80, bin/0xff)', () => t.client.kv.deleteRange({ key: raw(0x80), range_end: raw(0xff), prev_kv: true }));
    await t.step('range bin/ prefix, keys_only', () => t.client.kv.range({ ...bin, keys_only: true }), listed);
  },

  serializable: async (t) => {
    await putAll(t, [['a', '1'], ['b', '2'], ['a', '3']]);
    await t.step('serializable range a', () => t.client.kv.range({ key: t.key('a'), serializable: true }));
    await t.step('serializable range prefix', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()), serializable: true }));
    await t.step('serializable range at an older revision', () => t.client.kv.range({ key: t.key('a'), serializable: true, revision: t.rev(1) }));
  },

  'keys_only and count_only': async (t) => {
    await putAll(t, [['a', '1'], ['b', '2'], ['c', '3']]);
    const range = { key: t.key(), range_end: prefixEnd(t.key()) };
    await t.step('keys_only prefix', () => t.client.kv.range({ ...range, keys_only: true }));
    await t.step('keys_only single key', () => t.client.kv.range({ key: t.key('b'), keys_only: true }));
    await t.step('keys_only limit 1', () => t.client.kv.range({ ...range, keys_only: true, limit: 1 }));
    await t.step('count_only prefix', () => t.client.kv.range({ ...range, count_only: true }));
    await t.step('count_only limit 1', () => t.client.kv.range({ ...range, count_only: true, limit: 1 }));
    await t.step('count_only single key', () => t.client.kv.range({ key: t.key('a'), count_only: true }));
    await t.step('count_only missing key', () => t.client.kv.range({ key: t.key('zz'), count_only: true }));
    await t.step('count_only at an older revision', () => t.client.kv.range({ ...range, count_only: true, revision: t.rev(2) }));
    await t.step('count_only and keys_only', () => t.client.kv.range({ ...range, count_only: true, keys_only: true }));
  },

  'min/max mod and create revision filters': async (t) => {
    await t.step('put a (B+1)', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('put b (B+2)', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
    await t.step('update a (B+3)', () => t.client.kv.put({ key: t.key('a'), value: b('2') }));
    await t.step('put c (B+4)', () => t.client.kv.put({ key: t.key('c'), value: b('1') }));
    await t.step('update b (B+5)', () => t.client.kv.put({ key: t.key('b'), value: b('2') }));
    const range = { key: t.key(), range_end: prefixEnd(t.key()) };
    const filters: Record<string, object> = {
      'min_mod B+3': { min_mod_revision: t.rev(3) },
      'max_mod B+3': { max_mod_revision: t.rev(3) },
      'min_mod B+4 max_mod B+4': { min_mod_revision: t.rev(4), max_mod_revision: t.rev(4) },
      'min_create B+2': { min_create_revision: t.rev(2) },
      'max_create B+2': { max_create_revision: t.rev(2) },
      'min_create B+2 max_mod B+4': { min_create_revision: t.rev(2), max_mod_revision: t.rev(4) },
      'min_mod beyond everything': { min_mod_revision: t.rev(100) },
      'min_mod B+3, limit 1': { min_mod_revision: t.rev(3), limit: 1 },
      'max_create B+2, limit 1': { max_create_revision: t.rev(2), limit: 1 },
      'min_mod B+3, sort MOD DESCEND': { min_mod_revision: t.rev(3), sort_target: SortTarget.MOD, sort_order: SortOrder.DESCEND },
      'max_mod B+3 at revision B+4': { max_mod_revision: t.rev(3), revision: t.rev(4) },
      'min_mod B+3, count_only': { min_mod_revision: t.rev(3), count_only: true },
    };
    for (const [name, f] of Object.entries(filters)) await t.step(`range ${name}`, () => t.client.kv.range({ ...range, ...f }));
    await t.step('single key, min_mod B+4 (a is B+3)', () => t.client.kv.range({ key: t.key('a'), min_mod_revision: t.rev(4) }));
  },
});
