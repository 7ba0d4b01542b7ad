// Chunked lists (limit/continue) on kube-apiserver 1.20: every page is an etcd Range over
// [continue key, prefix end) at the first page's revision, with `limit` and `count`
// (remainingItemCount). Every object comes back exactly once, in key order, from one snapshot.
import { describe, expect, it } from 'vitest';
import { createNamespace, mapLimit, rv, type ClusterRef } from '../harness/fixture.ts';

const NS = 'e2e-list';
const N = 120;
const LIMIT = 25;
const names = Array.from({ length: N }, (_, i) => `cm-${String(i).padStart(3, '0')}`);

export function chunkedListScenarios(k: ClusterRef): void {
  describe('chunked lists (kube-apiserver 1.20)', () => {
    it(`${N} ConfigMaps listed with limit=${LIMIT}: every object exactly once, remainingItemCount exact, one snapshot across pages`, async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const created = await mapLimit(names, 8, (name, i) => core.expect(201, 'POST', base, { body: { metadata: { name }, data: { i: String(i) } } }));
      const rvByName = new Map(created.map((c) => [c.metadata.name, c.metadata.resourceVersion]));
      expect(new Set(rvByName.values()).size).toBe(N); // one revision per write

      const seen: string[] = [];
      const pageSizes: number[] = [];
      const remaining: (number | undefined)[] = [];
      let listRv: string | undefined;
      let token: string | undefined;
      let page = 0;
      do {
        const res = await core.expect(200, 'GET', base, { query: { limit: LIMIT, continue: token } });
        if (page === 0) listRv = res.metadata.resourceVersion;
        else expect(res.metadata.resourceVersion, 'every page is served at the first page\'s revision').toBe(listRv);
        for (const item of res.items) {
          seen.push(item.metadata.name);
          expect(item.metadata.resourceVersion).toBe(rvByName.get(item.metadata.name));
          expect(item.data).toEqual({ i: String(Number(item.metadata.name.slice(3))) });
        }
        pageSizes.push(res.items.length);
        remaining.push(res.metadata.remainingItemCount);
        token = res.metadata.continue || undefined;
        if (page === 0) {
          // Writes after the first page must not show in later pages: they read the first page's revision.
          await core.expect(201, 'POST', base, { body: { metadata: { name: 'cm-999-late' }, data: {} } });
          await core.expect(200, 'DELETE', `${base}/cm-110`);
          await core.expect(200, 'PATCH', `${base}/cm-111`, { body: { data: { i: 'changed' } }, contentType: 'application/merge-patch+json' });
        }
        page++;
      } while (token);

      expect(pageSizes).toEqual([25, 25, 25, 25, 20]);
      expect(remaining).toEqual([95, 70, 45, 20, undefined]);
      expect(seen).toEqual(names); // exactly once each, in key order, cm-110 still there, cm-999-late absent
      expect(Number(listRv)).toBeGreaterThanOrEqual(Math.max(...created.map(rv)));

      // A fresh list sees the writes made in between.
      const now = await core.expect(200, 'GET', base);
      const nowNames = now.items.map((c: any) => c.metadata.name);
      expect(nowNames).toHaveLength(N);
      expect(nowNames).not.toContain('cm-110');
      expect(nowNames).toContain('cm-999-late');
      expect(now.items.find((c: any) => c.metadata.name === 'cm-111').data).toEqual({ i: 'changed' });
      expect(rv(now)).toBeGreaterThan(Number(listRv));
    });

    it('a list at an exact older resourceVersion returns that snapshot; limit=1 pages a label-selected subset', async () => {
      const { core } = k();
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const a = await core.expect(201, 'POST', base, { body: { metadata: { name: 'snap-a', labels: { snap: 'y' } }, data: {} } });
      const b = await core.expect(201, 'POST', base, { body: { metadata: { name: 'snap-b', labels: { snap: 'y' } }, data: {} } });
      await core.expect(200, 'DELETE', `${base}/snap-a`);
      const exact = await core.expect(200, 'GET', base, { query: { labelSelector: 'snap=y', resourceVersion: b.metadata.resourceVersion, resourceVersionMatch: 'Exact' } });
      expect(exact.metadata.resourceVersion).toBe(b.metadata.resourceVersion);
      expect(exact.items.map((c: any) => c.metadata.name)).toEqual(['snap-a', 'snap-b']);
      const before = await core.expect(200, 'GET', base, { query: { labelSelector: 'snap=y', resourceVersion: a.metadata.resourceVersion, resourceVersionMatch: 'Exact' } });
      expect(before.items.map((c: any) => c.metadata.name)).toEqual(['snap-a']);

      // Selector filtering happens in the apiserver: limit=1 pages may come back empty but
      // together they hold exactly the matching objects.
      const found: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const res = await core.expect(200, 'GET', base, { query: { labelSelector: 'snap=y', limit: 1, continue: token } });
        found.push(...res.items.map((c: any) => c.metadata.name));
        token = res.metadata.continue || undefined;
        pages++;
      } while (token && pages < 200);
      expect(found).toEqual(['snap-b']);
    });
  });
}
