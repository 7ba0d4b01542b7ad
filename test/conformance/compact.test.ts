// KV.Compact: future, current and already-compacted revisions, the physical flag, and what
// reads and watches below the compacted revision get. Each scenario compacts at its own
// revisions, which are above the previous scenario's compaction.
import { describeConformance, type ScenarioTarget } from './harness.ts';
import { b, prefixEnd } from './keys.ts';

const all = (t: ScenarioTarget) => ({ key: t.key(), range_end: prefixEnd(t.key()) });

async function writeThree(t: ScenarioTarget): Promise<void> {
  await t.step('put a=1 (B+1)', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
  await t.step('put a=2 (B+2)', () => t.client.kv.put({ key: t.key('a'), value: b('2') }));
  await t.step('put b=1 (B+3)', () => t.client.kv.put({ key: t.key('b'), value: b('1') }));
}

describeConformance('compact', {
  'compact a future revision': async (t) => {
    await writeThree(t);
    await t.step('compact B+4 (future)', () => t.client.kv.compact({ revision: t.rev(4) }));
    await t.step('compact B+100 (future)', () => t.client.kv.compact({ revision: t.rev(100) }));
    await t.step('range at B+1 still works', () => t.client.kv.range({ ...all(t), revision: t.rev(1) }));
  },

  'physical compaction, then reads and watches below it': async (t) => {
    await writeThree(t);
    await t.step('compact B+2, physical', () => t.client.kv.compact({ revision: t.rev(2), physical: true }));
    await t.step('range at B+1', () => t.client.kv.range({ ...all(t), revision: t.rev(1) }));
    await t.step('range a at B+1', () => t.client.kv.range({ key: t.key('a'), revision: t.rev(1) }));
    await t.step('count_only at B+1', () => t.client.kv.range({ ...all(t), revision: t.rev(1), count_only: true }));
    await t.step('range at B+2 (the compacted revision)', () => t.client.kv.range({ ...all(t), revision: t.rev(2) }));
    await t.step('range now', () => t.client.kv.range(all(t)));
    await t.step('txn with a range at B+1', () => t.client.kv.txn({ success: [{ request_range: { key: t.key('a'), revision: t.rev(1) } }] }));
    await t.step('txn with a put and a range at B+1', () => t.client.kv.txn({ success: [{ request_put: { key: t.key('c'), value: b('1') } }, { request_range: { key: t.key('a'), revision: t.rev(1) } }] }));
    const w = t.watch();
    const below = await w.open({ ...all(t), start_revision: t.rev(1) });
    t.record('watch from B+1: created', below);
    t.record('watch from B+1: then canceled', await w.next((r) => r.watch_id === below.watch_id && !r.created));
    const ancient = await w.open({ ...all(t), start_revision: 1 });
    t.record('watch from revision 1: then canceled', await w.next((r) => r.watch_id === ancient.watch_id && !r.created));
    const at = await w.open({ ...all(t), start_revision: t.rev(2) });
    t.record('watch from B+2 replays B+2 and B+3', await w.events(at.watch_id, 2));
  },

  'compact an already compacted revision': async (t) => {
    await writeThree(t);
    await t.step('compact B+2', () => t.client.kv.compact({ revision: t.rev(2) }));
    await t.step('compact B+2 again', () => t.client.kv.compact({ revision: t.rev(2) }));
    await t.step('compact B+1', () => t.client.kv.compact({ revision: t.rev(1) }));
    await t.step('compact 0', () => t.client.kv.compact({ revision: 0 }));
    await t.step('compact -1', () => t.client.kv.compact({ revision: -1 }));
    await t.step('compact B+3', () => t.client.kv.compact({ revision: t.rev(3) }));
  },

  'compact without the physical flag, at the current revision': async (t) => {
    await writeThree(t);
    await t.step('compact B+3 (current), not physical', () => t.client.kv.compact({ revision: t.rev(3), physical: false }));
    await t.step('range at B+2', () => t.client.kv.range({ ...all(t), revision: t.rev(2) }));
    await t.step('range at B+3', () => t.client.kv.range({ ...all(t), revision: t.rev(3) }));
    const w = t.watch();
    const at = await w.open({ ...all(t), start_revision: t.rev(3) });
    t.record('watch from B+3', await w.events(at.watch_id, 1));
    await t.step('put c (B+4)', () => t.client.kv.put({ key: t.key('c'), value: b('1') }));
    t.record('then the live event', await w.events(at.watch_id, 1));
  },
});
