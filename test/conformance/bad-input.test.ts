// Requests etcd refuses (or quietly answers empty), each compared with etcd's gRPC code and
// message: request size and txn op limits (defaults: 1.5 MiB, 128 ops), duplicate keys in a
// txn, empty keys, unknown leases, future revisions, range_end before key, odd numbers.
// Compact with bad revisions is in compact.test.ts, watch with a bad range in watch.test.ts.
import { describeConformance, type ScenarioTarget } from './harness.ts';
import { b, prefixEnd } from './keys.ts';
import { CompareResult, CompareTarget } from './enums.ts';

const MiB = 1024 * 1024;
const NO_KEY = Buffer.alloc(0);
const UNKNOWN_LEASE = 0x7e57fffffff0;
const put = (key: Buffer, value: Buffer | string = 'v', more: object = {}) => ({ request_put: { key, value: typeof value === 'string' ? b(value) : value, ...more } });
const del = (key: Buffer, more: object = {}) => ({ request_delete_range: { key, ...more } });
const get = (key: Buffer, more: object = {}) => ({ request_range: { key, ...more } });
const all = (t: ScenarioTarget) => ({ key: t.key(), range_end: prefixEnd(t.key()) });

describeConformance('bad-input', {
  'request too large (default limit 1.5 MiB)': async (t) => {
    await t.step('put a 1.6 MiB value', () => t.client.kv.put({ key: t.key('big'), value: Buffer.alloc(1.6 * MiB, 'x') }));
    await t.step('txn with two 0.8 MiB puts', () => t.client.kv.txn({ success: [put(t.key('x'), Buffer.alloc(0.8 * MiB, 'x')), put(t.key('y'), Buffer.alloc(0.8 * MiB, 'y'))] }));
    await t.step('put a 1 MiB value (fits)', () => t.client.kv.put({ key: t.key('ok'), value: Buffer.alloc(MiB, 'z') }));
    await t.step('range: only the 1 MiB value was written', () => t.client.kv.range({ ...all(t), keys_only: true }));
  },

  'too many operations in a txn (default limit 128)': async (t) => {
    const puts = (n: number) => Array.from({ length: n }, (_, i) => put(t.key(`k${i}`)));
    const compares = (n: number) => Array.from({ length: n }, (_, i) => ({ key: t.key(`k${i}`), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 0 }));
    await t.step('129 puts in success', () => t.client.kv.txn({ success: puts(129) }));
    await t.step('129 ranges in failure', () => t.client.kv.txn({ failure: Array.from({ length: 129 }, (_, i) => get(t.key(`k${i}`))) }));
    await t.step('129 compares', () => t.client.kv.txn({ compare: compares(129) }));
    await t.step('128 puts', () => t.client.kv.txn({ success: puts(128) }), (r) => ({ succeeded: r.succeeded, header: r.header, responses: r.responses.length }));
    await t.step('128 compares and 128 ops in each branch', () => t.client.kv.txn({ compare: compares(128), success: puts(128), failure: puts(128) }), (r) => ({ succeeded: r.succeeded, header: r.header }));
    await t.step('count', () => t.client.kv.range({ ...all(t), count_only: true }));
  },

  'duplicate key in a txn': async (t) => {
    const cases: Record<string, object[]> = {
      'two puts of a': [put(t.key('a')), put(t.key('a'), 'w')],
      'put a and delete a': [put(t.key('a')), del(t.key('a'))],
      'delete a and put a': [del(t.key('a')), put(t.key('a'))],
      'put p/x and delete prefix p/': [put(t.key('p/x')), del(t.key('p/'), { range_end: prefixEnd(t.key('p/')) })],
      'put a and a nested txn putting a': [put(t.key('a')), { request_txn: { success: [put(t.key('a'))] } }],
      'nested txn putting a in both branches (allowed)': [{ request_txn: { success: [put(t.key('a'))], failure: [put(t.key('a'))] } }],
      'two deletes of a (allowed)': [del(t.key('a')), del(t.key('a'))],
      'put a and range a (allowed)': [put(t.key('a')), get(t.key('a'))],
    };
    for (const [name, success] of Object.entries(cases)) await t.step(name, () => t.client.kv.txn({ success }));
    await t.step('put a in success and in failure (allowed)', () => t.client.kv.txn({ success: [put(t.key('a'), 's')], failure: [put(t.key('a'), 'f')] }));
    await t.step('range', () => t.client.kv.range(all(t)));
  },

  'empty key': async (t) => {
    await t.step('range ""', () => t.client.kv.range({ key: NO_KEY }));
    await t.step('range "" with a range_end', () => t.client.kv.range({ key: NO_KEY, range_end: t.key('a') }));
    await t.step('put ""', () => t.client.kv.put({ key: NO_KEY, value: b('v') }));
    await t.step('delete ""', () => t.client.kv.deleteRange({ key: NO_KEY }));
    await t.step('txn put ""', () => t.client.kv.txn({ success: [put(NO_KEY)] }));
    await t.step('txn range ""', () => t.client.kv.txn({ success: [get(NO_KEY)] }));
    await t.step('txn delete "" in failure', () => t.client.kv.txn({ failure: [del(NO_KEY)] }));
    await t.step('txn put "" in a nested txn', () => t.client.kv.txn({ success: [{ request_txn: { success: [put(NO_KEY)] } }] }));
    await t.step('txn compare on ""', () => t.client.kv.txn({ compare: [{ key: NO_KEY, target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 0 }] }));
    await t.step('next put (no revision was created)', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
  },

  'unknown lease': async (t) => {
    await t.step('put with an unknown lease', () => t.client.kv.put({ key: t.key('a'), value: b('1'), lease: UNKNOWN_LEASE }));
    await t.step('txn put with an unknown lease', () => t.client.kv.txn({ success: [put(t.key('a'), 'v', { lease: UNKNOWN_LEASE })] }));
    await t.step('txn put with an unknown lease in the branch not taken', () => t.client.kv.txn({ success: [put(t.key('a'))], failure: [put(t.key('b'), 'v', { lease: UNKNOWN_LEASE })] }));
    await t.step('range', () => t.client.kv.range(all(t)));
  },

  'future revision': async (t) => {
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('range at B+2 (next revision)', () => t.client.kv.range({ key: t.key('a'), revision: t.rev(2) }));
    await t.step('range at B+100', () => t.client.kv.range({ ...all(t), revision: t.rev(100) }));
    await t.step('count_only at B+100', () => t.client.kv.range({ ...all(t), revision: t.rev(100), count_only: true }));
    await t.step('txn range at B+100', () => t.client.kv.txn({ success: [get(t.key('a'), { revision: t.rev(100) })] }));
    await t.step('txn range at B+100 in the branch not taken', () => t.client.kv.txn({ success: [get(t.key('a'))], failure: [get(t.key('a'), { revision: t.rev(100) })] }));
  },

  'range_end before the key': async (t) => {
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('put b', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
    await t.step('range [b, a)', () => t.client.kv.range({ key: t.key('b'), range_end: t.key('a') }));
    await t.step('range [b, b)', () => t.client.kv.range({ key: t.key('b'), range_end: t.key('b') }));
    await t.step('count_only [b, a)', () => t.client.kv.range({ key: t.key('b'), range_end: t.key('a'), count_only: true }));
    await t.step('delete [b, a)', () => t.client.kv.deleteRange({ key: t.key('b'), range_end: t.key('a'), prev_kv: true }));
    await t.step('txn delete [b, a) and put b', () => t.client.kv.txn({ success: [del(t.key('b'), { range_end: t.key('a') }), put(t.key('b'), 'v2')] }));
    await t.step('compare over [b, a)', () => t.client.kv.txn({ compare: [{ key: t.key('b'), range_end: t.key('a'), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 0 }] }));
    await t.step('range', () => t.client.kv.range(all(t)));
  },

  'negative revision and limit': async (t) => {
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('put b', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
    await t.step('range at revision -1', () => t.client.kv.range({ ...all(t), revision: -1 }));
    await t.step('range with limit -1', () => t.client.kv.range({ ...all(t), limit: -1 }));
    await t.step('range with min_mod_revision -1', () => t.client.kv.range({ ...all(t), min_mod_revision: -1 }));
  },
});
