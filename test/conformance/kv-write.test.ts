// KV.Put (prev_kv, lease, ignore_value, ignore_lease) and KV.DeleteRange (single, prefix,
// from-key, prev_kv, deleted count, deleting nothing).
import { describeConformance } from './harness.ts';
import { b, FROM_KEY, prefixEnd } from './keys.ts';

describeConformance('kv-write', {
  'put with prev_kv': async (t) => {
    await t.step('put a=1, prev_kv (new key)', () => t.client.kv.put({ key: t.key('a'), value: b('1'), prev_kv: true }));
    await t.step('put a=2, prev_kv', () => t.client.kv.put({ key: t.key('a'), value: b('2'), prev_kv: true }));
    await t.step('put a=3 without prev_kv', () => t.client.kv.put({ key: t.key('a'), value: b('3') }));
    await t.step('put a="" (empty value), prev_kv', () => t.client.kv.put({ key: t.key('a'), value: b(''), prev_kv: true }));
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
  },

  'put with a lease, then without': async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    await t.step('put a with lease', () => t.client.kv.put({ key: t.key('a'), value: b('1'), lease }));
    await t.step('put b with lease, prev_kv', () => t.client.kv.put({ key: t.key('b'), value: b('1'), lease, prev_kv: true }));
    await t.step('range prefix', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    await t.step('time to live with keys', () => t.client.lease.timeToLive({ ID: lease, keys: true }), sortKeys);
    await t.step('put a without lease (detaches it), prev_kv', () => t.client.kv.put({ key: t.key('a'), value: b('2'), prev_kv: true }));
    await t.step('time to live after detaching a', () => t.client.lease.timeToLive({ ID: lease, keys: true }), sortKeys);
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
  },

  ignore_value: async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    await t.step('put a=1 with lease', () => t.client.kv.put({ key: t.key('a'), value: b('1'), lease }));
    await t.step('put a ignore_value (no lease given), prev_kv', () => t.client.kv.put({ key: t.key('a'), ignore_value: true, prev_kv: true }));
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
    await t.step('put a ignore_value with lease', () => t.client.kv.put({ key: t.key('a'), ignore_value: true, lease }));
    await t.step('range a again', () => t.client.kv.range({ key: t.key('a') }));
    await t.step('put a ignore_value with a value', () => t.client.kv.put({ key: t.key('a'), value: b('x'), ignore_value: true }));
    await t.step('put missing key ignore_value', () => t.client.kv.put({ key: t.key('missing'), ignore_value: true }));
    await t.step('range prefix after the errors', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
  },

  ignore_lease: async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    await t.step('put a=1 with lease', () => t.client.kv.put({ key: t.key('a'), value: b('1'), lease }));
    await t.step('put a=2 ignore_lease, prev_kv', () => t.client.kv.put({ key: t.key('a'), value: b('2'), ignore_lease: true, prev_kv: true }));
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
    await t.step('put a ignore_value and ignore_lease', () => t.client.kv.put({ key: t.key('a'), ignore_value: true, ignore_lease: true, prev_kv: true }));
    await t.step('range a again', () => t.client.kv.range({ key: t.key('a') }));
    await t.step('put a ignore_lease with a lease', () => t.client.kv.put({ key: t.key('a'), value: b('3'), ignore_lease: true, lease }));
    await t.step('put missing key ignore_lease', () => t.client.kv.put({ key: t.key('missing'), value: b('1'), ignore_lease: true }));
    await t.step('time to live with keys', () => t.client.lease.timeToLive({ ID: lease, keys: true }), sortKeys);
  },

  'delete a single key': async (t) => {
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('put b', () => t.client.kv.put({ key: t.key('b'), value: b('2') }));
    await t.step('delete a, prev_kv', () => t.client.kv.deleteRange({ key: t.key('a'), prev_kv: true }));
    await t.step('delete b without prev_kv', () => t.client.kv.deleteRange({ key: t.key('b') }));
    await t.step('delete a again (nothing to delete)', () => t.client.kv.deleteRange({ key: t.key('a'), prev_kv: true }));
    await t.step('put a after delete (new create_revision, version 1)', () => t.client.kv.put({ key: t.key('a'), value: b('3'), prev_kv: true }));
    await t.step('range a', () => t.client.kv.range({ key: t.key('a') }));
  },

  'delete a prefix': async (t) => {
    for (const k of ['p/1', 'p/2', 'p/3', 'pp', 'q']) await t.step(`put ${k}`, () => t.client.kv.put({ key: t.key(k), value: b(k) }));
    await t.step('delete prefix p/, prev_kv', () => t.client.kv.deleteRange({ key: t.key('p/'), range_end: prefixEnd(t.key('p/')), prev_kv: true }));
    await t.step('range what is left', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    await t.step('delete [pp, q) without prev_kv', () => t.client.kv.deleteRange({ key: t.key('pp'), range_end: t.key('q') }));
    await t.step('range p/ at the revision before the delete', () => t.client.kv.range({ key: t.key('p/'), range_end: prefixEnd(t.key('p/')), revision: t.rev(5) }));
  },

  'delete from-key (range_end "\\0")': async (t) => {
    // Later scenarios' keys sort after ours but are not written yet; earlier ones sort before.
    for (const k of ['a', 'b', 'c']) await t.step(`put ${k}`, () => t.client.kv.put({ key: t.key(k), value: b(k) }));
    await t.step('delete from b, prev_kv', () => t.client.kv.deleteRange({ key: t.key('b'), range_end: FROM_KEY, prev_kv: true }));
    await t.step('range from the prefix', () => t.client.kv.range({ key: t.key(), range_end: FROM_KEY }));
  },

  'deleting nothing does not create a revision': async (t) => {
    await t.step('delete a missing key', () => t.client.kv.deleteRange({ key: t.key('missing'), prev_kv: true }));
    await t.step('delete an empty prefix', () => t.client.kv.deleteRange({ key: t.key('none/'), range_end: prefixEnd(t.key('none/')) }));
    await t.step('put a (the next revision is B+1)', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('delete [b, c) that holds nothing', () => t.client.kv.deleteRange({ key: t.key('b'), range_end: t.key('c') }));
    await t.step('put a again (B+2)', () => t.client.kv.put({ key: t.key('a'), value: b('2') }));
  },
});

/** Lease keys come from a map on etcd: order is not part of the contract. */
function sortKeys(r: any): any {
  return { ...r, keys: [...r.keys].sort(Buffer.compare) };
}
