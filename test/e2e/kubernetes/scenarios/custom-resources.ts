// CRDs and custom resources on the apiextensions-apiserver built from Kubernetes 1.36 (same
// storage code as kube-apiserver 1.36: etcd3 store, watch cache, RequestProgress):
//  - a CRD established; custom resources created, read, listed (also in chunks), patched,
//    deleted and watched from a resourceVersion;
//  - WatchList (sendInitialEvents=true, resourceVersionMatch=NotOlderThan,
//    allowWatchBookmarks=true) ending its initial events with the bookmark annotated
//    k8s.io/initial-events-end: "true";
//  - a list without resourceVersion served consistently from the watch cache: the cache waits
//    for the etcd revision of the list through a progress notification (RequestProgress), which
//    1.36 only uses when Status reports etcd >= 3.5.13; apiserver_watch_cache_consistent_read_total
//    {fallback="false",success="true"} must grow and the fallback counter must not.
import { describe, expect, it } from 'vitest';
import { parseMetrics } from '../../../integration/helpers/metrics.ts';
import { waitFor } from '../../../integration/helpers/wait.ts';
import { createNamespace, mapLimit, rv, sleep, type ClusterRef } from '../harness/fixture.ts';
import { summarize, type KubeClient } from '../harness/kube-client.ts';

export const NS = 'e2e-crd';
export const GROUP = 'e2e.example.com';
export const PLURAL = 'widgets';
const CRD_NAME = `${PLURAL}.${GROUP}`;
export const base = `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}`;

const crd = {
  apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
  metadata: { name: CRD_NAME },
  spec: {
    group: GROUP, scope: 'Namespaced',
    names: { plural: PLURAL, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [{
      name: 'v1', served: true, storage: true,
      schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer' }, color: { type: 'string' } } } } } },
    }],
  },
};

export const widget = (name: string, size: number) => ({ apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name }, spec: { size, color: 'blue' } });

/** Creates the CRD once (the scenarios below may run alone) and waits for Established and for the resource to be served. */
export async function ensureCrd(ext: KubeClient, core: KubeClient): Promise<void> {
  await createNamespace(core, NS);
  const r = await ext.post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (r.status !== 201 && r.status !== 409) throw new Error(`create CRD: ${r.status} ${r.text}`);
  await waitFor(async () => {
    const got = await ext.expect(200, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
    const cond = (t: string) => got.status?.conditions?.find((c: any) => c.type === t)?.status === 'True';
    return cond('Established') && cond('NamesAccepted');
  }, 'CRD Established and NamesAccepted', 30_000, 200);
  await waitFor(async () => (await ext.get(base)).status === 200, `${base} served`, 30_000, 200);
}

interface ConsistentReads { ok: number; fallback: number; failed: number }

async function consistentReads(ext: KubeClient): Promise<ConsistentReads> {
  const r = await ext.request('GET', '/metrics');
  expect(r.status).toBe(200);
  const samples = parseMetrics(r.text).filter((s) => s.name === 'apiserver_watch_cache_consistent_read_total' && s.labels.resource === PLURAL && (s.labels.group === undefined || s.labels.group === GROUP));
  const sum = (pred: (l: Record<string, string>) => boolean) => samples.filter((s) => pred(s.labels)).reduce((a, s) => a + s.value, 0);
  return {
    ok: sum((l) => l.fallback === 'false' && l.success === 'true'),
    fallback: sum((l) => l.fallback === 'true'),
    failed: sum((l) => l.success === 'false'),
  };
}

export function customResourceScenarios(k: ClusterRef): void {
  describe('custom resources (apiextensions-apiserver 1.36)', () => {
    it('a CRD is established; Widgets created, read, listed in chunks, patched, stale replace 409, deleted', async () => {
      const { ext, core } = k();
      await ensureCrd(ext, core);
      const created = await mapLimit(Array.from({ length: 12 }, (_, i) => `w-${String(i).padStart(2, '0')}`), 4, (name, i) => ext.expect(201, 'POST', base, { body: widget(name, i) }));
      expect(new Set(created.map((c) => c.metadata.resourceVersion)).size).toBe(12);
      const got = await ext.expect(200, 'GET', `${base}/w-03`);
      expect(got.spec).toEqual({ size: 3, color: 'blue' });
      expect(got.metadata.resourceVersion).toBe(created[3].metadata.resourceVersion);

      const list = await ext.expect(200, 'GET', base);
      expect(list.kind).toBe('WidgetList');
      expect(list.items.map((w: any) => w.metadata.name)).toEqual(created.map((c) => c.metadata.name));
      expect(rv(list)).toBeGreaterThanOrEqual(Math.max(...created.map(rv)));

      const seen: string[] = [];
      let token: string | undefined;
      do {
        const page = await ext.expect(200, 'GET', base, { query: { limit: 5, continue: token } });
        expect(page.items.length).toBeLessThanOrEqual(5);
        seen.push(...page.items.map((w: any) => w.metadata.name));
        token = page.metadata.continue || undefined;
      } while (token);
      expect(seen).toEqual(created.map((c) => c.metadata.name));

      const patched = await ext.expect(200, 'PATCH', `${base}/w-03`, { body: { spec: { color: 'red' } }, contentType: 'application/merge-patch+json' });
      expect(patched.spec).toEqual({ size: 3, color: 'red' });
      expect(rv(patched)).toBeGreaterThan(rv(created[3]));
      const stale = await ext.put(`${base}/w-03`, { ...created[3], spec: { size: 99 } });
      expect(stale.status).toBe(409);
      expect(stale.body.reason).toBe('Conflict');

      for (const c of created) await ext.expect(200, 'DELETE', `${base}/${c.metadata.name}`);
      await waitFor(async () => (await ext.expect(200, 'GET', base)).items.length === 0, 'widgets all deleted', 10_000);
    });

    it('a watch from a resourceVersion delivers exactly the Widget events made, in order', async () => {
      const { ext, core } = k();
      await ensureCrd(ext, core);
      const fence = await ext.expect(201, 'POST', base, { body: widget('watch-fence', 0) });
      const w = ext.watch(base, { resourceVersion: fence.metadata.resourceVersion });
      expect(await w.opened).toBe(200);
      const a = await ext.expect(201, 'POST', base, { body: widget('watch-a', 1) });
      const a2 = await ext.expect(200, 'PATCH', `${base}/watch-a`, { body: { spec: { size: 2 } }, contentType: 'application/merge-patch+json' });
      const b = await ext.expect(201, 'POST', base, { body: widget('watch-b', 1) });
      await ext.expect(200, 'DELETE', `${base}/watch-a`);
      await ext.expect(200, 'DELETE', `${base}/watch-fence`);
      await w.count(5);
      await sleep(300);
      w.close();
      expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`), summarize(w.events)).toEqual([
        'ADDED watch-a', 'MODIFIED watch-a', 'ADDED watch-b', 'DELETED watch-a', 'DELETED watch-fence',
      ]);
      expect(w.events.slice(0, 3).map((e) => e.object.metadata.resourceVersion)).toEqual([a, a2, b].map((o) => o.metadata.resourceVersion));
      expect(w.events[3].object.spec.size).toBe(2);
      const rvs = w.events.map((e) => rv(e.object));
      expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
      expect(new Set(rvs).size).toBe(rvs.length);
      await ext.expect(200, 'DELETE', `${base}/watch-b`);
    });

    it('WatchList: initial ADDED events for every Widget, then the k8s.io/initial-events-end bookmark, then live events', async () => {
      const { ext, core } = k();
      await ensureCrd(ext, core);
      const names = ['wl-a', 'wl-b', 'wl-c', 'wl-d'];
      const created = [];
      for (const [i, n] of names.entries()) created.push(await ext.expect(201, 'POST', base, { body: widget(n, i) }));
      // Move etcd's revision past the last Widget write with a write elsewhere.
      await createNamespace(core, NS);
      const other = await core.expect(201, 'POST', `/api/v1/namespaces/${NS}/configmaps`, { body: { metadata: { generateName: 'wl-elsewhere-' } } });

      const w = ext.watch(base, { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: true });
      expect(await w.opened).toBe(200);
      const isEnd = (e: any) => e.type === 'BOOKMARK' && e.object?.metadata?.annotations?.['k8s.io/initial-events-end'] === 'true';
      const events = await w.until((ev) => ev.some(isEnd), 'the initial-events-end bookmark', 15_000);
      const endAt = events.findIndex(isEnd);
      const initial = events.slice(0, endAt).filter((e) => e.type !== 'BOOKMARK');
      expect(initial.map((e) => e.type)).toEqual(names.map(() => 'ADDED'));
      expect(initial.map((e) => e.object.metadata.name).sort()).toEqual(names);
      for (const e of initial) expect(e.object.metadata.resourceVersion).toBe(created[names.indexOf(e.object.metadata.name)].metadata.resourceVersion);
      const bookmark = events[endAt].object;
      // NotOlderThan with no resourceVersion: the state at least as new as etcd's current revision.
      expect(rv(bookmark)).toBeGreaterThanOrEqual(rv(other));

      const live = await ext.expect(201, 'POST', base, { body: widget('wl-live', 9) });
      await w.until((ev) => ev.slice(endAt + 1).some((e) => e.type === 'ADDED'), 'the live ADDED after the bookmark');
      w.close();
      const after = w.events.slice(endAt + 1).filter((e) => e.type !== 'BOOKMARK');
      expect(after.map((e) => `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`)).toEqual([`ADDED wl-live@${live.metadata.resourceVersion}`]);
      for (const n of [...names, 'wl-live']) await ext.expect(200, 'DELETE', `${base}/${n}`);
    });

    it('a list without resourceVersion is a consistent read from the watch cache (apiserver_watch_cache_consistent_read_total grows, no fallback)', async () => {
      const { ext, core } = k();
      await ensureCrd(ext, core);
      await createNamespace(core, NS);
      const before = await consistentReads(ext);
      let last = 0;
      for (let i = 0; i < 3; i++) {
        const w = await ext.expect(201, 'POST', base, { body: widget(`cr-${i}`, i) });
        // A write on another prefix: the Widget cache can only learn this revision from a progress notification.
        const cm = await core.expect(201, 'POST', `/api/v1/namespaces/${NS}/configmaps`, { body: { metadata: { generateName: 'cr-elsewhere-' } } });
        const list = await ext.expect(200, 'GET', base);
        expect(list.items.map((x: any) => x.metadata.name)).toContain(`cr-${i}`);
        expect(rv(list), 'list is at least as new as the latest write anywhere').toBeGreaterThanOrEqual(rv(cm));
        expect(rv(list)).toBeGreaterThan(rv(w));
        last = rv(list);
      }
      const after = await consistentReads(ext);
      expect(after.ok - before.ok, `consistent reads from cache (before ${JSON.stringify(before)}, after ${JSON.stringify(after)})`).toBeGreaterThanOrEqual(3);
      // Without an answer to RequestProgress within 3 s the cache falls back to etcd (fallback="true").
      expect(after.fallback - before.fallback).toBe(0);
      expect(after.failed - before.failed).toBe(0);
      expect(last).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) await ext.expect(200, 'DELETE', `${base}/cr-${i}`);
    });
  });
}
