// Events on kube-apiserver 1.20 are stored with an etcd lease of --event-ttl seconds (the
// harness uses 1s, the smallest value that still attaches a lease: the TTL is truncated to whole
// seconds and 0 means no lease). etcd raises a 1 s lease to its 2 s minimum; expiry deletes the
// key, which the apiserver's watchers see as DELETED.
import { describe, expect, it } from 'vitest';
import { createNamespace, rv, type ClusterRef } from '../harness/fixture.ts';

const NS = 'e2e-events';

function event(name: string, i: number) {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1', kind: 'Event',
    metadata: { name },
    involvedObject: { kind: 'ConfigMap', namespace: NS, name: `target-${i}`, apiVersion: 'v1' },
    reason: 'E2ETest', message: `event ${i}`, type: 'Normal', count: 1,
    firstTimestamp: now, lastTimestamp: now, source: { component: 'k8s-e2e' },
  };
}

export function eventScenarios(k: ClusterRef): void {
  describe('Events with leases (kube-apiserver 1.20, --event-ttl)', () => {
    it('Events are created with a lease, readable, then expire: gone from GET and list, DELETED on a watch', async () => {
      const { core, etcd, options } = k();
      expect(options.eventTtl).toBe('1s');
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/events`;
      const names = ['ev-0', 'ev-1', 'ev-2'];
      const t0 = Date.now();
      const created = [];
      for (const [i, name] of names.entries()) created.push(await core.expect(201, 'POST', base, { body: event(name, i) }));
      const from = Math.min(...created.map(rv)) - 1;
      const w = core.watch(base, { resourceVersion: String(from) });
      expect(await w.opened).toBe(200);

      // Readable right after creation (the lease is at least 2 s).
      const got = await core.expect(200, 'GET', `${base}/ev-0`);
      expect(got.message).toBe('event 0');
      expect(got.metadata.uid).toBe(created[0].metadata.uid);

      // In etcd: each key carries a live lease; a 1 s request is granted etcd's 2 s minimum.
      const client = etcd.connect();
      try {
        const kv = (await client.kv.range({ key: Buffer.from(`/registry/events/${NS}/ev-0`) })).kvs[0];
        expect(kv, 'event key in etcd').toBeTruthy();
        expect(String(kv.lease)).not.toBe('0');
        const ttl = await client.lease.timeToLive({ ID: kv.lease, keys: true });
        expect(Number(ttl.grantedTTL)).toBe(2);
        expect(Number(ttl.TTL)).toBeGreaterThan(0);
        expect(Number(ttl.TTL)).toBeLessThanOrEqual(2);
        expect(ttl.keys.map((b: Buffer) => b.toString())).toContain(`/registry/events/${NS}/ev-0`);
      } finally {
        client.close();
      }

      // Expiry: three ADDED then three DELETED (lease expiry is a delete in etcd).
      const events = await w.until((e) => e.filter((x) => x.type === 'DELETED').length >= names.length, 'DELETED for every event', 15_000);
      const expiredAfter = Date.now() - t0;
      w.close();
      expect(events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name)).toEqual(names);
      expect(events.filter((e) => e.type === 'DELETED').map((e) => e.object.metadata.name).sort()).toEqual(names);
      expect(events.map((e) => e.type)).toEqual(['ADDED', 'ADDED', 'ADDED', 'DELETED', 'DELETED', 'DELETED']);
      expect(expiredAfter, 'expired after the 2 s minimum lease, well before 15 s').toBeGreaterThanOrEqual(1500);
      for (const name of names) expect((await core.get(`${base}/${name}`)).status).toBe(404);
      expect((await core.expect(200, 'GET', base)).items).toEqual([]);
    });

    it('an Event updated (count bumped) gets a fresh lease and still expires', async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/events`;
      const created = await core.expect(201, 'POST', base, { body: event('ev-bump', 9) });
      const bumped = await core.expect(200, 'PATCH', `${base}/ev-bump`, { body: { count: 2 }, contentType: 'application/merge-patch+json' });
      expect(bumped.count).toBe(2);
      expect(rv(bumped)).toBeGreaterThan(rv(created));
      const deadline = Date.now() + 15_000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        status = (await core.get(`${base}/ev-bump`)).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 250));
      }
      expect(status).toBe(404);
    });
  });
}
