// Watches from a resourceVersion on kube-apiserver 1.20 deliver exactly the events made, in
// order. ConfigMaps run with the watch cache off (--watch-cache-sizes=configmaps#0), so each
// HTTP watch is an etcd Watch from start_revision = RV+1 with prev_kv (DELETED events carry
// the last state). Secrets go through the watch cache, fed by the cacher's own etcd watch.
import { describe, expect, it } from 'vitest';
import { createNamespace, rv, sleep, type ClusterRef } from '../harness/fixture.ts';
import { summarize, type KubeClient, type WatchEvent } from '../harness/kube-client.ts';

const NS = 'e2e-watch';

interface Made { type: WatchEvent['type']; name: string; rv?: string; data?: Record<string, string> }

/** Creates/updates/deletes a, b in `base`; returns the events they must produce. */
async function churn(core: KubeClient, base: string, prefix: string, dataKey: 'data' | 'stringData'): Promise<Made[]> {
  const a = `${prefix}-a`;
  const b = `${prefix}-b`;
  const made: Made[] = [];
  const note = (type: Made['type'], obj: any) => { made.push({ type, name: obj.metadata.name, rv: obj.metadata.resourceVersion }); };
  note('ADDED', await core.expect(201, 'POST', base, { body: { metadata: { name: a }, [dataKey]: { v: '1' } } }));
  note('MODIFIED', await core.expect(200, 'PATCH', `${base}/${a}`, { body: { [dataKey]: { v: '2' } }, contentType: 'application/merge-patch+json' }));
  note('ADDED', await core.expect(201, 'POST', base, { body: { metadata: { name: b }, [dataKey]: { v: '1' } } }));
  const aNow = await core.expect(200, 'GET', `${base}/${a}`);
  note('MODIFIED', await core.expect(200, 'PUT', `${base}/${a}`, { body: { ...aNow, [dataKey]: { v: '3' } } }));
  // Deletes answer the object as it was; the DELETED event carries the delete's revision.
  await core.expect(200, 'DELETE', `${base}/${a}`);
  made.push({ type: 'DELETED', name: a });
  note('MODIFIED', await core.expect(200, 'PATCH', `${base}/${b}`, { body: { [dataKey]: { v: '2' } }, contentType: 'application/merge-patch+json' }));
  await core.expect(200, 'DELETE', `${base}/${b}`);
  made.push({ type: 'DELETED', name: b });
  return made;
}

function expectExactly(events: WatchEvent[], made: Made[], after: number): void {
  const got = events.map((e) => ({ type: e.type, name: e.object.metadata.name }));
  expect(got, summarize(events)).toEqual(made.map((m) => ({ type: m.type, name: m.name })));
  let last = after;
  events.forEach((e, i) => {
    const r = rv(e.object);
    expect(r, `event ${i} revision increases`).toBeGreaterThan(last);
    last = r;
    if (made[i].rv) expect(e.object.metadata.resourceVersion, `event ${i} is the write's revision`).toBe(made[i].rv);
  });
}

async function watchScenario(core: KubeClient, resource: 'configmaps' | 'secrets', dataKey: 'data' | 'stringData') {
  await createNamespace(core, NS);
  const base = `/api/v1/namespaces/${NS}/${resource}`;
  const prefix = `${resource}-${Date.now() % 100000}`;
  const fence = await core.expect(201, 'POST', base, { body: { metadata: { name: `${prefix}-fence` } } });
  const from = rv(fence);

  // Live: the watch is open before the writes.
  const live = core.watch(base, { resourceVersion: String(from) });
  expect(await live.opened).toBe(200);
  const made = await churn(core, base, prefix, dataKey);
  await live.count(made.length);
  await sleep(300); // nothing more may arrive
  live.close();
  expectExactly(live.events, made, from);
  const deletedA = live.events[4].object;
  expect(deletedA.metadata.name).toBe(`${prefix}-a`);
  if (resource === 'configmaps') expect(deletedA.data).toEqual({ v: '3' }); // the last state (prev_kv)

  // Replay: a watch opened afterwards from the same resourceVersion gets the same history.
  const replay = core.watch(base, { resourceVersion: String(from) });
  expect(await replay.opened).toBe(200);
  await replay.count(made.length);
  await sleep(300);
  replay.close();
  expect(replay.events).toEqual(live.events);

  // From the middle: a watch from the revision of event i starts with event i+1.
  const mid = rv(live.events[2].object);
  const tail = core.watch(base, { resourceVersion: String(mid) });
  await tail.count(made.length - 3);
  await sleep(300);
  tail.close();
  expect(tail.events).toEqual(live.events.slice(3));
  await core.expect(200, 'DELETE', `${base}/${prefix}-fence`);
}

export function watchScenarios(k: ClusterRef): void {
  describe('watches from a resourceVersion (kube-apiserver 1.20)', () => {
    it('ConfigMaps (etcd watch, no watch cache): exactly ADDED/MODIFIED/DELETED as made, in order, live and replayed', async () => {
      await watchScenario(k().core, 'configmaps', 'data');
    });

    it('Secrets (through the watch cache): exactly the events made, in order, live and replayed', async () => {
      await watchScenario(k().core, 'secrets', 'stringData');
    });

    it('a watch on one object (fieldSelector metadata.name) sees only that object', async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const x = await core.expect(201, 'POST', base, { body: { metadata: { name: 'single-x' }, data: { v: '0' } } });
      const w = core.watch(base, { resourceVersion: x.metadata.resourceVersion, fieldSelector: 'metadata.name=single-x' });
      expect(await w.opened).toBe(200);
      await core.expect(201, 'POST', base, { body: { metadata: { name: 'single-y' }, data: {} } });
      const x1 = await core.expect(200, 'PATCH', `${base}/single-x`, { body: { data: { v: '1' } }, contentType: 'application/merge-patch+json' });
      await core.expect(200, 'DELETE', `${base}/single-y`);
      await core.expect(200, 'DELETE', `${base}/single-x`);
      await w.count(2);
      await sleep(300);
      w.close();
      expect(w.events.map((e) => [e.type, e.object.metadata.name, e.object.data])).toEqual([
        ['MODIFIED', 'single-x', { v: '1' }],
        ['DELETED', 'single-x', { v: '1' }],
      ]);
      expect(w.events[0].object.metadata.resourceVersion).toBe(x1.metadata.resourceVersion);
    });
  });
}
