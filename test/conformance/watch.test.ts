// Watch: key and range forms, replay from start_revision, prev_kv, filters, progress
// notifications and progress requests, several watches per stream, cancel, client-chosen and
// duplicate watch IDs, fragmentation and invalid ranges. Events are compared flattened (see
// WatchStream.events); created/canceled responses are compared whole.
import { describeConformance, type ScenarioTarget } from './harness.ts';
import { b, FROM_KEY, prefixEnd } from './keys.ts';
import { WatchFilter } from './enums.ts';
import { isCanceled, isProgress } from './watch-stream.ts';

const put = (t: ScenarioTarget, k: string, v: string) => t.step(`put ${k}=${v}`, () => t.client.kv.put({ key: t.key(k), value: b(v) }));
const del = (t: ScenarioTarget, k: string) => t.step(`delete ${k}`, () => t.client.kv.deleteRange({ key: t.key(k) }));
const prefix = (t: ScenarioTarget, p: string) => ({ key: t.key(p), range_end: prefixEnd(t.key(p)) });

describeConformance('watch', {
  'a key, a prefix and a from-key watch': async (t) => {
    const w = t.watch();
    const key = await w.open({ key: t.key('a') });
    t.record('created key watch', key);
    const pre = await w.open(prefix(t, 'p/'));
    t.record('created prefix watch', pre);
    const from = await w.open({ key: t.key('p/2'), range_end: FROM_KEY });
    t.record('created from-key watch', from);
    await put(t, 'a', '1');
    await put(t, 'b', '1');
    await put(t, 'p/1', '1');
    await put(t, 'pp', '1');
    await del(t, 'a');
    await del(t, 'p/1');
    await t.step('txn: put a, p/2, p/3', () => t.client.kv.txn({ success: ['a', 'p/2', 'p/3'].map((k) => ({ request_put: { key: t.key(k), value: b('2') } })) }));
    t.record('key watch events', await w.events(key.watch_id, 3));
    t.record('prefix watch events', await w.events(pre.watch_id, 4));
    t.record('from-key watch events', await w.events(from.watch_id, 3));
    t.record('nothing else queued', w.leftovers((r) => r.events.length > 0));
  },

  'replay from start_revision': async (t) => {
    await put(t, 'a', '1');
    await put(t, 'b', '1');
    await put(t, 'a', '2');
    await del(t, 'b');
    await t.step('txn: put a, c', () => t.client.kv.txn({ success: ['a', 'c'].map((k) => ({ request_put: { key: t.key(k), value: b('3') } })) }));
    const w = t.watch();
    const all = await w.open({ ...prefix(t, ''), start_revision: t.rev(1) });
    t.record('created replay from B+1', all);
    const mid = await w.open({ ...prefix(t, ''), start_revision: t.rev(3) });
    t.record('created replay from B+3', mid);
    const keyA = await w.open({ key: t.key('a'), start_revision: t.rev(2) });
    t.record('created key replay from B+2', keyA);
    const next = await w.open({ ...prefix(t, ''), start_revision: t.rev(6) });
    t.record('created from the next revision', next);
    t.record('replay from B+1', await w.events(all.watch_id, 6));
    t.record('replay from B+3', await w.events(mid.watch_id, 4));
    t.record('key a from B+2', await w.events(keyA.watch_id, 2));
    await put(t, 'd', '1');
    t.record('live event after replay (B+1 watch)', await w.events(all.watch_id, 1));
    t.record('watch from B+6 gets B+6', await w.events(next.watch_id, 1));
  },

  'watch all keys ("\\0", "\\0")': async (t) => {
    // Scenarios of this file run one at a time, so only this scenario writes meanwhile.
    const w = t.watch();
    const all = await w.open({ key: FROM_KEY, range_end: FROM_KEY });
    t.record('created', all);
    await put(t, 'a', '1');
    await t.step('txn: put b, delete a', () => t.client.kv.txn({ success: [{ request_put: { key: t.key('b'), value: b('1') } }, { request_delete_range: { key: t.key('a') } }] }));
    t.record('events', await w.events(all.watch_id, 3));
    const replay = await w.open({ key: FROM_KEY, range_end: FROM_KEY, start_revision: t.rev(1) });
    t.record('replay', await w.events(replay.watch_id, 3));
  },

  'replay while writes continue (no gap, no duplicate at the handoff to live events)': async (t) => {
    for (let i = 1; i <= 20; i++) await put(t, `k${i % 4}`, String(i));
    const w = t.watch();
    const created = await w.open({ ...prefix(t, ''), start_revision: t.rev(1), prev_kv: true });
    t.record('created', created);
    for (let i = 21; i <= 40; i++) await put(t, `k${i % 4}`, String(i));
    t.record('all 40 events in order', await w.events(created.watch_id, 40));
    t.record('nothing else queued', w.leftovers((r) => r.events.length > 0));
  },

  prev_kv: async (t) => {
    const w = t.watch();
    const live = await w.open({ ...prefix(t, ''), prev_kv: true });
    await put(t, 'a', '1');
    await put(t, 'a', '2');
    await put(t, 'b', '1');
    await del(t, 'a');
    await t.step('delete prefix', () => t.client.kv.deleteRange(prefix(t, '')));
    t.record('live events with prev_kv', await w.events(live.watch_id, 5));
    const replay = await w.open({ ...prefix(t, ''), prev_kv: true, start_revision: t.rev(1) });
    t.record('replayed events with prev_kv', await w.events(replay.watch_id, 5));
  },

  'filters NOPUT and NODELETE': async (t) => {
    const w = t.watch();
    const noPut = await w.open({ ...prefix(t, ''), filters: [WatchFilter.NOPUT] });
    const noDelete = await w.open({ ...prefix(t, ''), filters: [WatchFilter.NODELETE] });
    const neither = await w.open({ ...prefix(t, ''), filters: [WatchFilter.NOPUT, WatchFilter.NODELETE] });
    t.record('created with both filters', neither);
    await put(t, 'a', '1');
    await del(t, 'a');
    await put(t, 'b', '1');
    await t.step('txn: delete b, put c', () => t.client.kv.txn({ success: [{ request_delete_range: { key: t.key('b') } }, { request_put: { key: t.key('c'), value: b('1') } }] }));
    t.record('NOPUT events', await w.events(noPut.watch_id, 2));
    t.record('NODELETE events', await w.events(noDelete.watch_id, 3));
    const replay = await w.open({ ...prefix(t, ''), filters: [WatchFilter.NOPUT], start_revision: t.rev(1) });
    t.record('NOPUT replay', await w.events(replay.watch_id, 2));
    t.record('nothing for the watch with both filters (bounded wait)', await w.collectFor(300, (r) => r.watch_id === neither.watch_id));
  },

  progress_notify: async (t) => {
    await put(t, 'before', '1');
    const w = t.watch();
    const notified = await w.open({ ...prefix(t, 'quiet/'), progress_notify: true });
    const silent = await w.open({ ...prefix(t, 'quiet/') });
    t.record('progress notification (interval 1s)', await w.next(isProgress(notified.watch_id), 5_000));
    t.record('none for the watch without progress_notify', w.leftovers(isProgress(silent.watch_id)));
    await put(t, 'quiet/x', '1');
    t.record('then the event', await w.events(notified.watch_id, 1));
  },

  'progress request (WatchProgressRequest)': async (t) => {
    await put(t, 'a', '1');
    const w = t.watch();
    const first = await w.open(prefix(t, ''));
    await w.open({ key: t.key('other') });
    w.requestProgress();
    t.record('progress response', await w.next(isProgress()));
    await put(t, 'b', '1');
    t.record('event', await w.events(first.watch_id, 1));
    w.requestProgress();
    t.record('progress response after a write', await w.next(isProgress()));
    const empty = t.watch();
    empty.requestProgress();
    t.record('stream without watches: no response (bounded wait)', await empty.collectFor(500));
  },

  'several watches on one stream and on two streams': async (t) => {
    const w1 = t.watch();
    const w2 = t.watch();
    const a = await w1.open({ key: t.key('a') });
    const bb = await w1.open({ key: t.key('b') });
    const all = await w1.open(prefix(t, ''));
    const other = await w2.open(prefix(t, ''));
    t.record('watch ids on stream 1', [a.watch_id, bb.watch_id, all.watch_id]);
    t.record('watch id on stream 2', other.watch_id);
    await put(t, 'a', '1');
    await put(t, 'b', '1');
    await t.step('txn: put a and b', () => t.client.kv.txn({ success: ['a', 'b'].map((k) => ({ request_put: { key: t.key(k), value: b('2') } })) }));
    t.record('watch a', await w1.events(a.watch_id, 2));
    t.record('watch b', await w1.events(bb.watch_id, 2));
    t.record('watch prefix', await w1.events(all.watch_id, 4));
    t.record('stream 2', await w2.events(other.watch_id, 4));
  },

  cancel: async (t) => {
    const w = t.watch();
    const gone = await w.open({ key: t.key('a') });
    const kept = await w.open(prefix(t, ''));
    w.cancel(gone.watch_id);
    t.record('cancel response', await w.next(isCanceled(gone.watch_id)));
    await put(t, 'a', '1');
    t.record('the other watch still sees a', await w.events(kept.watch_id, 1));
    t.record('no events for the canceled watch', w.leftovers((r) => r.watch_id === gone.watch_id));
    w.cancel(12345);
    const after = await w.open({ key: t.key('b') });
    t.record('canceling an unknown id: next control response is the created one', after);
  },

  'client-chosen and duplicate watch ids': async (t) => {
    const w = t.watch();
    t.record('create with watch_id 7', await w.open({ key: t.key('a'), watch_id: 7 }));
    t.record('create with watch_id 7 again', await w.open({ key: t.key('b'), watch_id: 7 }));
    t.record('create without watch_id', await w.open({ key: t.key('c') }));
    t.record('create with watch_id 0 (0 means: let the server choose)', await w.open({ key: t.key('d'), watch_id: 0 }));
    t.record('create with watch_id 1', await w.open({ key: t.key('e'), watch_id: 1 }));
    t.record('create without watch_id again', await w.open({ key: t.key('f') }));
    await put(t, 'a', '1');
    t.record('events for watch 7', await w.events(7, 1));
  },

  'range_end before the key, and an empty range': async (t) => {
    const w = t.watch();
    t.record('range_end < key', await w.open({ key: t.key('b'), range_end: t.key('a') }));
    t.record('range_end == key', await w.open({ key: t.key('b'), range_end: t.key('b') }));
    const ok = await w.open({ key: t.key('a') });
    await put(t, 'a', '1');
    t.record('the stream still works', await w.events(ok.watch_id, 1));
  },

  'start_revision in the future': async (t) => {
    const w = t.watch();
    const future = await w.open({ ...prefix(t, ''), start_revision: t.rev(3) });
    t.record('created', future);
    for (let i = 1; i <= 4; i++) await put(t, 'k', String(i));
    t.record('events from B+3 on', await w.events(future.watch_id, 2));
  },

  'fragment: one revision larger than the request limit': async (t) => {
    const MiB = 1024 * 1024;
    await t.step('put big/1 (1 MiB)', () => t.client.kv.put({ key: t.key('big/1'), value: Buffer.alloc(MiB, 'x') }));
    await t.step('put big/2 (1 MiB)', () => t.client.kv.put({ key: t.key('big/2'), value: Buffer.alloc(MiB, 'y') }));
    const w = t.watch();
    const fragmented = await w.open({ ...prefix(t, 'big/'), prev_kv: true, fragment: true });
    const whole = await w.open({ ...prefix(t, 'big/'), prev_kv: true });
    await t.step('delete big/ (2 events with 1 MiB prev_kvs in one revision)', () => t.client.kv.deleteRange(prefix(t, 'big/')));
    const shape = (r: any): any => (typeof r === 'string' ? r : { fragment: r.fragment, events: r.events.length });
    const withEvents = (id: number) => (r: any) => r.watch_id === id && r.events.length > 0;
    const pieces = [];
    do pieces.push(shape(await w.next(withEvents(fragmented.watch_id))));
    while (pieces.at(-1).fragment === true);
    t.record('responses of the fragment watch', pieces);
    const one = await w.next(withEvents(whole.watch_id));
    t.record('response of the watch without fragment', shape(one));
    t.record('its events', one.events);
  },
});
