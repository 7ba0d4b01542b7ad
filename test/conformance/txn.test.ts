// KV.Txn: every compare target with every result operator, compares over a range, success and
// failure branches, nested txns, reads inside a txn, and how many revisions a txn creates.
import { describeConformance } from './harness.ts';
import { b, FROM_KEY, prefixEnd } from './keys.ts';
import { CompareResult, CompareTarget, SortOrder, SortTarget } from './enums.ts';

const put = (key: Buffer, value: string, more: object = {}) => ({ request_put: { key, value: b(value), ...more } });
const get = (key: Buffer, more: object = {}) => ({ request_range: { key, ...more } });
const del = (key: Buffer, more: object = {}) => ({ request_delete_range: { key, ...more } });
const succeeded = (r: any) => r.succeeded;

/** An int64 operand one below or above `v` (lease IDs from real etcd are decimal strings above 2^53). */
function shift(v: number | string, by: -1 | 1): number | string {
  return typeof v === 'number' ? v + by : String(BigInt(v) + BigInt(by));
}

describeConformance('txn', {
  'every compare target with every result': async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    await t.step('put k=m', () => t.client.kv.put({ key: t.key('k'), value: b('m') }));
    await t.step('put k=m again', () => t.client.kv.put({ key: t.key('k'), value: b('m') }));
    const kv = (await t.step('put k=m with lease', () => t.client.kv.put({ key: t.key('k'), value: b('m'), lease, prev_kv: true })))?.prev_kv;
    const current = { ...kv, version: kv.version + 1, mod_revision: kv.mod_revision + 1, lease };
    const operands: Record<keyof typeof CompareTarget, [string, unknown, unknown, unknown]> = {
      VERSION: ['version', current.version - 1, current.version, current.version + 1],
      CREATE: ['create_revision', current.create_revision - 1, current.create_revision, current.create_revision + 1],
      MOD: ['mod_revision', current.mod_revision - 1, current.mod_revision, current.mod_revision + 1],
      VALUE: ['value', b('l'), b('m'), b('n')],
      LEASE: ['lease', shift(lease!, -1), lease, shift(lease!, 1)],
    };
    for (const [target, [field, lower, equal, higher]] of Object.entries(operands)) {
      for (const [result, code] of Object.entries(CompareResult)) {
        for (const [name, operand] of Object.entries({ lower, equal, higher })) {
          const compare = [{ key: t.key('k'), target: CompareTarget[target as keyof typeof CompareTarget], result: code, [field]: operand }];
          await t.step(`k ${target} ${result} ${name}`, () => t.client.kv.txn({ compare }), succeeded);
        }
      }
    }
  },

  'compares on a missing key': async (t) => {
    const zero: Record<keyof typeof CompareTarget, [string, unknown]> = {
      VERSION: ['version', 0], CREATE: ['create_revision', 0], MOD: ['mod_revision', 0], VALUE: ['value', b('')], LEASE: ['lease', 0],
    };
    for (const [target, [field, operand]] of Object.entries(zero)) {
      for (const [result, code] of Object.entries(CompareResult)) {
        const compare = [{ key: t.key('missing'), target: CompareTarget[target as keyof typeof CompareTarget], result: code, [field]: operand }];
        await t.step(`missing ${target} ${result} zero`, () => t.client.kv.txn({ compare }), succeeded);
      }
    }
    const compare = [{ key: t.key('missing'), target: CompareTarget.VERSION, result: CompareResult.GREATER, version: -1 }];
    await t.step('missing VERSION GREATER -1', () => t.client.kv.txn({ compare }), succeeded);
  },

  'compares over a range (range_end)': async (t) => {
    await t.step('put p/a', () => t.client.kv.put({ key: t.key('p/a'), value: b('x') }));
    await t.step('put p/b', () => t.client.kv.put({ key: t.key('p/b'), value: b('x') }));
    await t.step('put p/b again', () => t.client.kv.put({ key: t.key('p/b'), value: b('x') }));
    const p = { key: t.key('p/'), range_end: prefixEnd(t.key('p/')) };
    const empty = { key: t.key('none/'), range_end: prefixEnd(t.key('none/')) };
    const cases: Record<string, object> = {
      'all versions > 0': { ...p, target: CompareTarget.VERSION, result: CompareResult.GREATER, version: 0 },
      'all versions == 1 (p/b has 2)': { ...p, target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 1 },
      'all versions < 3': { ...p, target: CompareTarget.VERSION, result: CompareResult.LESS, version: 3 },
      'all values == x': { ...p, target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: b('x') },
      'all values != x': { ...p, target: CompareTarget.VALUE, result: CompareResult.NOT_EQUAL, value: b('x') },
      'all mod revisions < B+3': { ...p, target: CompareTarget.MOD, result: CompareResult.LESS, mod_revision: t.rev(3) },
      'all create revisions < B+3': { ...p, target: CompareTarget.CREATE, result: CompareResult.LESS, create_revision: t.rev(3) },
      'from-key: all versions > 0': { key: t.key('p/'), range_end: FROM_KEY, target: CompareTarget.VERSION, result: CompareResult.GREATER, version: 0 },
      'empty range: version == 0': { ...empty, target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 0 },
      'empty range: version > 0': { ...empty, target: CompareTarget.VERSION, result: CompareResult.GREATER, version: 0 },
      'empty range: value == ""': { ...empty, target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: b('') },
      'empty range: value != x': { ...empty, target: CompareTarget.VALUE, result: CompareResult.NOT_EQUAL, value: b('x') },
    };
    for (const [name, compare] of Object.entries(cases)) await t.step(name, () => t.client.kv.txn({ compare: [compare] }), succeeded);
  },

  'success and failure branches': async (t) => {
    await t.step('put a=1', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('put b=2', () => t.client.kv.put({ key: t.key('b'), value: b('2') }));
    const aIs1 = { key: t.key('a'), target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: b('1') };
    const aIs9 = { ...aIs1, value: b('9') };
    await t.step('true compare: success ops run', () => t.client.kv.txn({
      compare: [aIs1],
      success: [put(t.key('c'), '3', { prev_kv: true }), get(t.key('a')), del(t.key('b'), { prev_kv: true })],
      failure: [put(t.key('x'), 'failure')],
    }));
    await t.step('false compare: failure ops run', () => t.client.kv.txn({
      compare: [aIs9],
      success: [put(t.key('x'), 'success')],
      failure: [get(t.key(), { range_end: prefixEnd(t.key()) }), put(t.key('d'), '4', { prev_kv: true })],
    }));
    await t.step('two compares, one false', () => t.client.kv.txn({ compare: [aIs1, aIs9], success: [put(t.key('x'), 's')], failure: [get(t.key('x'))] }));
    await t.step('no compares: success', () => t.client.kv.txn({ success: [put(t.key('e'), '5')] }));
    await t.step('no compares and no ops', () => t.client.kv.txn({}));
    await t.step('false compare, empty failure branch', () => t.client.kv.txn({ compare: [aIs9], success: [put(t.key('x'), 's')] }));
    await t.step('range everything', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
  },

  'reads inside a txn see its earlier writes': async (t) => {
    await t.step('put c', () => t.client.kv.put({ key: t.key('c'), value: b('old') }));
    await t.step('txn', () => t.client.kv.txn({
      success: [
        get(t.key('a')),
        put(t.key('a'), '1'),
        get(t.key('a')),
        put(t.key('b'), '1', { prev_kv: true }),
        get(t.key(), { range_end: prefixEnd(t.key()) }),
        del(t.key('c'), { prev_kv: true }),
        get(t.key('c')),
        get(t.key(), { range_end: prefixEnd(t.key()), count_only: true }),
        get(t.key('c'), { revision: t.rev(1) }),
      ],
    }));
    await t.step('range after the txn', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
  },

  'ranges inside a txn honour all range options': async (t) => {
    for (const [k, v] of [['c', '1'], ['a', '3'], ['b', '2'], ['a', '4']]) await t.step(`put ${k}=${v}`, () => t.client.kv.put({ key: t.key(k), value: b(v) }));
    const range = { key: t.key(), range_end: prefixEnd(t.key()) };
    await t.step('txn with ranges', () => t.client.kv.txn({
      success: [
        get(t.key(), { range_end: range.range_end, limit: 2 }),
        get(t.key(), { range_end: range.range_end, sort_target: SortTarget.MOD, sort_order: SortOrder.DESCEND }),
        get(t.key(), { range_end: range.range_end, keys_only: true }),
        get(t.key(), { range_end: range.range_end, count_only: true }),
        get(t.key(), { range_end: range.range_end, revision: t.rev(2) }),
        get(t.key(), { range_end: range.range_end, min_mod_revision: t.rev(3) }),
        get(t.key('a'), { serializable: true }),
      ],
    }));
  },

  'nested txn (all compares are evaluated before any op runs)': async (t) => {
    await t.step('put a=1', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    const bMissing = { key: t.key('b'), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 0 };
    const aIs1 = { key: t.key('a'), target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: b('1') };
    await t.step('txn with nested txns', () => t.client.kv.txn({
      compare: [aIs1],
      success: [
        put(t.key('b'), '1'),
        { request_txn: { compare: [bMissing], success: [put(t.key('c'), 'b was missing'), get(t.key('b'))], failure: [put(t.key('c'), 'b existed')] } },
        { request_txn: { compare: [{ ...aIs1, value: b('2') }], success: [put(t.key('d'), 'x')], failure: [{ request_txn: { success: [put(t.key('e'), 'deep')] } }] } },
        get(t.key(), { range_end: prefixEnd(t.key()) }),
      ],
    }));
    await t.step('range after', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
  },

  'one revision per write txn': async (t) => {
    await t.step('put d', () => t.client.kv.put({ key: t.key('d'), value: b('0') }));
    await t.step('txn: 3 puts and a delete', () => t.client.kv.txn({
      success: [put(t.key('a'), '1'), put(t.key('b'), '1'), put(t.key('c'), '1'), del(t.key('d'), { prev_kv: true })],
    }));
    await t.step('range: all at B+2', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    await t.step('txn: update two, one with prev_kv', () => t.client.kv.txn({ success: [put(t.key('a'), '2', { prev_kv: true }), put(t.key('b'), '2')] }));
    await t.step('next put is B+4', () => t.client.kv.put({ key: t.key('e'), value: b('1') }));
  },

  'read-only txn does not create a revision': async (t) => {
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('txn: ranges only', () => t.client.kv.txn({ compare: [{ key: t.key('a'), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 1 }], success: [get(t.key('a')), get(t.key('zz'))] }));
    await t.step('txn: failure branch with a range', () => t.client.kv.txn({ compare: [{ key: t.key('a'), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 5 }], success: [put(t.key('x'), '1')], failure: [get(t.key('a'))] }));
    await t.step('next put is B+2', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
  },

  'txn whose writes are all no-op deletes': async (t) => {
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('txn: delete missing keys', () => t.client.kv.txn({
      success: [del(t.key('missing'), { prev_kv: true }), del(t.key('none/'), { range_end: prefixEnd(t.key('none/')) }), get(t.key('a'))],
    }));
    await t.step('next put is B+2', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
  },

  'txn put with a lease and prev_kv': async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    await t.step('put a=1', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('txn: put a with lease, prev_kv', () => t.client.kv.txn({ success: [put(t.key('a'), '2', { lease, prev_kv: true }), get(t.key('a'))] }));
    const compare = [{ key: t.key('a'), target: CompareTarget.LEASE, result: CompareResult.EQUAL, lease }];
    await t.step('compare lease == granted lease', () => t.client.kv.txn({ compare, success: [put(t.key('a'), '3', { ignore_lease: true })] }));
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
  },
});
