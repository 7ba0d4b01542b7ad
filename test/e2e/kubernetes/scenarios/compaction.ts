// Compaction by kube-apiserver's own compactor (--etcd-compaction-interval, 20 s here): every
// interval it runs Txn(version(compact_rev_key) == t -> Put, else Get) and compacts the etcd
// revision it recorded one interval earlier, so the first compaction lands about two intervals
// after start. (Both servers run a compactor; they coordinate through compact_rev_key.)
//
// recordBeforeCompaction() runs right after the servers are ready: it records an old
// resourceVersion and a continue token. Once a "compacted rev (N)" line with N above them is
// logged, kube-apiserver must answer 410 Gone for them, as against etcd:
//  - an etcd watch (ConfigMaps: no watch cache) from the old RV -> ERROR event, Status 410 Expired;
//  - a list at that exact RV -> HTTP 410 Expired;
//  - the old continue token -> HTTP 410 Expired carrying a fresh continue token that works.
import { beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, rv, sleep, type ClusterRef } from '../harness/fixture.ts';

const NS = 'e2e-compact';
const COMPACTED = /etcd: compacted rev \((\d+)\), endpoints/;

export interface BeforeCompaction {
  /** A ConfigMap resourceVersion taken right after start. */
  oldRv: number;
  /** The continue token of a limit=2 list taken then (and that list's resourceVersion). */
  continueToken: string;
  listRv: number;
}

/** Registers a beforeAll (call it right after useKubeCluster) recording state older than the first compaction. */
export function recordBeforeCompaction(k: ClusterRef): () => BeforeCompaction {
  let state: BeforeCompaction | undefined;
  beforeAll(async () => {
    const { core } = k();
    await createNamespace(core, NS);
    const base = `/api/v1/namespaces/${NS}/configmaps`;
    const first = await core.expect(201, 'POST', base, { body: { metadata: { name: 'old-0' }, data: { v: '0' } } });
    for (let i = 1; i < 5; i++) await core.expect(201, 'POST', base, { body: { metadata: { name: `old-${i}` }, data: { v: String(i) } } });
    const page = await core.expect(200, 'GET', base, { query: { limit: 2 } });
    expect(page.metadata.continue).toBeTruthy();
    state = { oldRv: rv(first), continueToken: page.metadata.continue, listRv: rv(page) };
  });
  return () => {
    if (!state) throw new Error('recordBeforeCompaction did not run');
    return state;
  };
}

/** The highest revision compacted so far by either server's compactor, from their logs. */
function compactedRevisions(k: ClusterRef): number[] {
  const { kas, aes } = k();
  return [...kas.lines(), ...aes.lines()].map((l) => COMPACTED.exec(l)).filter((m) => m !== null).map((m) => Number(m![1]));
}

export function compactionScenarios(k: ClusterRef, before: () => BeforeCompaction): void {
  describe('compaction by kube-apiserver\'s compactor', () => {
    let compactedAt = 0;

    it('the compactor compacts past the recorded revisions (waits for the "etcd: compacted rev" log line)', async () => {
      const { kas, aes, etcd } = k();
      const { oldRv, listRv } = before();
      const need = Math.max(oldRv, listRv) + 2;
      const deadline = Date.now() + 100_000;
      while (Math.max(0, ...compactedRevisions(k)) < need) {
        if (Date.now() > deadline) throw new Error(`no compaction to >= ${need} within 100 s; compacted: ${compactedRevisions(k).join(', ') || 'none'}\n${kas.tail(20)}\n${aes.tail(20)}`);
        await sleep(1000);
      }
      compactedAt = Math.max(...compactedRevisions(k));
      // The node itself: reads below the compacted revision fail with etcd's error, at it they work.
      const client = etcd.connect();
      try {
        const err = await client.kv.range({ key: Buffer.from('/registry/'), range_end: Buffer.from('/registry0'), revision: compactedAt - 1, count_only: true }).then(() => null, (e) => e);
        expect(err?.details).toBe('etcdserver: mvcc: required revision has been compacted');
        expect(err?.code).toBe(11); // OUT_OF_RANGE
        const at = await client.kv.range({ key: Buffer.from('/registry/'), range_end: Buffer.from('/registry0'), revision: compactedAt, count_only: true });
        expect(Number(at.count)).toBeGreaterThan(0);
        // The compactors' shared bookkeeping key: bumped once per successful cycle, holding the
        // revision that cycle compacted (the other server's Txn took the Get branch and adopted it).
        const key = (await client.kv.range({ key: Buffer.from('compact_rev_key') })).kvs[0];
        expect(Number(key.version)).toBeGreaterThanOrEqual(2);
        expect(Number(key.value.toString())).toBeGreaterThanOrEqual(compactedAt);
      } finally {
        client.close();
      }
    }, 120_000);

    it('a watch from a compacted resourceVersion answers 410 Gone (Expired)', async () => {
      const { core } = k();
      expect(compactedAt, 'compaction happened').toBeGreaterThan(0);
      const w = core.watch(`/api/v1/namespaces/${NS}/configmaps`, { resourceVersion: String(before().oldRv) });
      expect(await w.opened).toBe(200);
      const events = await w.until((e) => e.length > 0, 'an event', 10_000);
      w.close();
      expect(events[0].type).toBe('ERROR');
      expect(events[0].object).toMatchObject({ kind: 'Status', status: 'Failure', code: 410, reason: 'Expired' });
      expect(events).toHaveLength(1);
    });

    it('a list at a compacted exact resourceVersion answers 410 Gone', async () => {
      const { core } = k();
      expect(compactedAt).toBeGreaterThan(0);
      const r = await core.get(`/api/v1/namespaces/${NS}/configmaps`, { resourceVersion: String(before().oldRv), resourceVersionMatch: 'Exact' });
      expect(r.status, r.text).toBe(410);
      expect(r.body).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    });

    it('a continue token from before the compaction answers 410 Gone with a fresh token that continues at the latest revision', async () => {
      const { core } = k();
      expect(compactedAt).toBeGreaterThan(0);
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const r = await core.get(base, { limit: 2, continue: before().continueToken });
      expect(r.status, r.text).toBe(410);
      expect(r.body).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
      expect(r.body.message).toContain('continue');
      const fresh = r.body.metadata?.continue;
      expect(fresh, 'an inconsistent-continue token').toBeTruthy();
      const rest = await core.expect(200, 'GET', base, { query: { limit: 10, continue: fresh } });
      expect(rest.items.map((c: any) => c.metadata.name)).toEqual(['old-2', 'old-3', 'old-4']);
      expect(rv(rest)).toBeGreaterThan(compactedAt);
    });

    it('after compaction current reads, writes and watches work', async () => {
      const { core } = k();
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const list = await core.expect(200, 'GET', base);
      expect(list.items.map((c: any) => c.metadata.name)).toEqual(['old-0', 'old-1', 'old-2', 'old-3', 'old-4']);
      const w = core.watch(base, { resourceVersion: list.metadata.resourceVersion });
      expect(await w.opened).toBe(200);
      const made = await core.expect(201, 'POST', base, { body: { metadata: { name: 'new-0' } } });
      const events = await w.count(1);
      w.close();
      expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion])).toEqual([['ADDED', 'new-0', made.metadata.resourceVersion]]);
    });
  });
}
