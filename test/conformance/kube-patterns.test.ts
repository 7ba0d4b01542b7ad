// What kube-apiserver's etcd3 storage sends, in its shapes: optimistic create/update/delete
// txns, paginated and historical lists, count_only, watch from a resource version with prev_kv,
// Events with an expiring lease, and the compactor. Compaction comes last: it compacts the
// server (later scenarios of this file would only see their own, newer revisions anyway).
import * as grpc from '@grpc/grpc-js';
import { describeConformance, type ScenarioTarget } from './harness.ts';
import { b, keyAfter, prefixEnd } from './keys.ts';
import { CompareResult, CompareTarget } from './enums.ts';

/** kube-apiserver: Txn(mod_revision(key) == rev -> then, else Get(key)); rev 0 = create. */
function guarded(t: ScenarioTarget, key: Buffer, rev: number, then: object) {
  return t.client.kv.txn({
    compare: [{ key, target: CompareTarget.MOD, result: CompareResult.EQUAL, mod_revision: rev }],
    success: [then],
    failure: [{ request_range: { key } }],
  });
}
const putOp = (key: Buffer, value: string, lease: number | string = 0) => ({ request_put: { key, value: b(value), lease } });
const deleteOp = (key: Buffer) => ({ request_delete_range: { key } });
const pods = (t: ScenarioTarget) => ({ key: t.key('pods/'), range_end: prefixEnd(t.key('pods/')) });
const names = (r: any) => ({ keys: r.kvs.map((kv: any) => kv.key), more: r.more, count: r.count, header: r.header });

async function createPods(t: ScenarioTarget, ...names: string[]): Promise<void> {
  for (const n of names) await t.step(`create pod ${n}`, () => guarded(t, t.key(`pods/${n}`), 0, putOp(t.key(`pods/${n}`), `${n}-v1`)));
}

describeConformance('kube-patterns', {
  'create: Txn(mod_revision == 0 -> Put, else Get)': async (t) => {
    await createPods(t, 'a');
    await t.step('create pod a again (exists: Get)', () => guarded(t, t.key('pods/a'), 0, putOp(t.key('pods/a'), 'other')));
    await t.step('get pod a', () => t.client.kv.range({ key: t.key('pods/a'), limit: 1 }));
  },

  'update and delete: Txn(mod_revision == X -> Put/Delete, else Get)': async (t) => {
    await createPods(t, 'a', 'b');
    await t.step('update a at B+1', () => guarded(t, t.key('pods/a'), t.rev(1), putOp(t.key('pods/a'), 'a-v2')));
    await t.step('update a at stale B+1', () => guarded(t, t.key('pods/a'), t.rev(1), putOp(t.key('pods/a'), 'a-v3')));
    await t.step('delete a at stale B+1', () => guarded(t, t.key('pods/a'), t.rev(1), deleteOp(t.key('pods/a'))));
    await t.step('delete a at B+3', () => guarded(t, t.key('pods/a'), t.rev(3), deleteOp(t.key('pods/a'))));
    await t.step('update deleted a at B+3', () => guarded(t, t.key('pods/a'), t.rev(3), putOp(t.key('pods/a'), 'a-v4')));
    await t.step('delete b at B+2', () => guarded(t, t.key('pods/b'), t.rev(2), deleteOp(t.key('pods/b'))));
    await t.step('list', () => t.client.kv.range(pods(t)));
  },

  'get (Range limit 1) and the health key': async (t) => {
    await createPods(t, 'a');
    await t.step('get a', () => t.client.kv.range({ key: t.key('pods/a'), limit: 1 }));
    await t.step('get missing', () => t.client.kv.range({ key: t.key('pods/zz'), limit: 1 }));
    await t.step('get a at B+1', () => t.client.kv.range({ key: t.key('pods/a'), limit: 1, revision: t.rev(1) }));
    await t.step('health: get /registry/health', () => t.client.kv.range({ key: b('/registry/health') }), (r) => ({ count: r.count, kvs: r.kvs }));
  },

  'paginated list with limit and continue at a fixed revision': async (t) => {
    await createPods(t, 'a', 'b', 'c', 'd', 'e', 'f', 'g');
    const page1 = await t.step('page 1', () => t.client.kv.range({ ...pods(t), limit: 3 }), names);
    const rev = page1.header.revision;
    await createPods(t, 'bb', 'h');
    await t.step('delete pod e', () => guarded(t, t.key('pods/e'), t.rev(5), deleteOp(t.key('pods/e'))));
    const page2 = await t.step('page 2 (continue at page 1 revision)', () => t.client.kv.range({ ...pods(t), key: keyAfter(page1.kvs.at(-1).key), limit: 3, revision: rev }), names);
    await t.step('page 3', () => t.client.kv.range({ ...pods(t), key: keyAfter(page2.kvs.at(-1).key), limit: 3, revision: rev }), names);
    await t.step('fresh list', () => t.client.kv.range({ ...pods(t), limit: 3 }), names);
  },

  'paginated list of 256 objects, 100 per page': async (t) => {
    const create = (from: number) => Array.from({ length: 128 }, (_, i) => putOp(t.key(`pods/p${String(from + i).padStart(3, '0')}`), 'x'));
    await t.step('create 128 pods in one txn', () => t.client.kv.txn({ success: create(0) }), (r) => r.header);
    await t.step('create 128 more', () => t.client.kv.txn({ success: create(128) }), (r) => r.header);
    let page = await t.step('page 1', () => t.client.kv.range({ ...pods(t), limit: 100 }), names);
    const rev = page.header.revision;
    await t.step('delete p150', () => t.client.kv.deleteRange({ key: t.key('pods/p150') }));
    for (const n of [2, 3]) {
      const from = keyAfter(page.kvs.at(-1).key);
      page = await t.step(`page ${n}`, () => t.client.kv.range({ ...pods(t), key: from, limit: 100, revision: rev }), names);
    }
    await t.step('count_only', () => t.client.kv.range({ ...pods(t), count_only: true }));
  },

  'list at an older revision and count_only': async (t) => {
    await createPods(t, 'a', 'b', 'c');
    await t.step('update b', () => guarded(t, t.key('pods/b'), t.rev(2), putOp(t.key('pods/b'), 'b-v2')));
    await t.step('delete c', () => guarded(t, t.key('pods/c'), t.rev(3), deleteOp(t.key('pods/c'))));
    await t.step('list at B+3', () => t.client.kv.range({ ...pods(t), revision: t.rev(3) }));
    await t.step('list at B+4, limit 1', () => t.client.kv.range({ ...pods(t), revision: t.rev(4), limit: 1 }));
    await t.step('count_only now', () => t.client.kv.range({ ...pods(t), count_only: true }));
    await t.step('count_only at B+3', () => t.client.kv.range({ ...pods(t), count_only: true, revision: t.rev(3) }));
  },

  'watch from a resource version (start_revision = RV + 1) with prev_kv': async (t) => {
    await createPods(t, 'a', 'b');
    const list = await t.step('list', () => t.client.kv.range(pods(t)));
    const rv = list.header.revision;
    await t.step('update a', () => guarded(t, t.key('pods/a'), t.rev(1), putOp(t.key('pods/a'), 'a-v2')));
    await t.step('delete b', () => guarded(t, t.key('pods/b'), t.rev(2), deleteOp(t.key('pods/b'))));
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const w = t.watch(md);
    const created = await w.open({ ...pods(t), start_revision: rv + 1, prev_kv: true, progress_notify: true });
    t.record('created', created);
    t.record('events after RV', await w.events(created.watch_id, 2));
    await createPods(t, 'c');
    t.record('live event', await w.events(created.watch_id, 1));
  },

  'Events with a lease that expires': async (t) => {
    const lease = await t.grant('grant TTL 2', { TTL: 2 });
    const w = t.watch();
    const created = await w.open({ key: t.key('events/'), range_end: prefixEnd(t.key('events/')), prev_kv: true });
    for (const n of ['e1', 'e2']) await t.step(`create event ${n}`, () => guarded(t, t.key(`events/${n}`), 0, putOp(t.key(`events/${n}`), n, lease)));
    await t.step('create a pod without lease', () => t.client.kv.put({ key: t.key('pods/a'), value: b('a') }));
    t.record('put events', await w.events(created.watch_id, 2));
    t.record('delete events when the lease expires (one revision)', await w.events(created.watch_id, 2, 10_000));
    await t.step('range everything', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    await t.step('time to live of the expired lease', () => t.client.lease.timeToLive({ ID: lease, keys: true }));
  },

  'compaction: Txn(version(compact_rev_key) == n -> Put, else Get) then Compact': async (t) => {
    const compactKey = t.key('compact_rev_key');
    const compactTxn = (version: number, rev: number) => t.client.kv.txn({
      compare: [{ key: compactKey, target: CompareTarget.VERSION, result: CompareResult.EQUAL, version }],
      success: [{ request_put: { key: compactKey, value: b(String(rev - t.base)) } }],
      failure: [{ request_range: { key: compactKey } }],
    });
    await createPods(t, 'a', 'b');
    await t.step('update a', () => guarded(t, t.key('pods/a'), t.rev(1), putOp(t.key('pods/a'), 'a-v2')));
    await t.step('compactor round 1: version 0', () => compactTxn(0, t.rev(3)));
    await t.step('compact B+3', () => t.client.kv.compact({ revision: t.rev(3) }));
    await t.step('another compactor lost the race: version 0 again', () => compactTxn(0, t.rev(3)));
    await t.step('list at B+2 (compacted)', () => t.client.kv.range({ ...pods(t), revision: t.rev(2) }));
    await t.step('list at B+3 (the compacted revision itself)', () => t.client.kv.range({ ...pods(t), revision: t.rev(3) }));
    await t.step('get a at B+1 (compacted)', () => t.client.kv.range({ key: t.key('pods/a'), limit: 1, revision: t.rev(1) }));
    const w = t.watch();
    t.record('watch from B+2: canceled with compact_revision', await w.open({ ...pods(t), start_revision: t.rev(2), prev_kv: true }).then(async (created) => [created, await w.next((r) => r.canceled || r.events.length > 0)]));
    const ok = await w.open({ ...pods(t), start_revision: t.rev(3) });
    t.record('watch from B+3 (the compacted revision) replays it', await w.events(ok.watch_id, 1));
    await t.step('compactor round 2: version 1', () => compactTxn(1, t.rev(4)));
    await t.step('compact B+4', () => t.client.kv.compact({ revision: t.rev(4) }));
    await t.step('list at B+3 (now compacted)', () => t.client.kv.range({ ...pods(t), revision: t.rev(3) }));
  },
});
