// Namespaces, ConfigMaps, Secrets and Services on kube-apiserver 1.20: create, read, patch,
// replace (a stale resourceVersion answers 409 Conflict), delete. Each write is an etcd Txn
// comparing mod_revision; a Service's ClusterIP comes from the allocator's bitmap, itself an
// object updated by compare-and-swap in etcd.
import { describe, expect, it } from 'vitest';
import { createNamespace, rv, type ClusterRef } from '../harness/fixture.ts';

const NS = 'e2e-core';

function expectConflict(r: { status: number; body: any }) {
  expect(r.status, JSON.stringify(r.body)).toBe(409);
  expect(r.body.kind).toBe('Status');
  expect(r.body.reason).toBe('Conflict');
  expect(r.body.message).toContain('the object has been modified; please apply your changes to the latest version and try again');
}

/** 10.96.0.0/24 -> a predicate for addresses inside it (first and broadcast excluded). */
function inRange(cidr: string): (ip: string) => boolean {
  const [base, bits] = cidr.split('/');
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const start = toInt(base);
  const size = 2 ** (32 - Number(bits));
  return (ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip) && toInt(ip) > start && toInt(ip) < start + size - 1;
}

export function coreObjectScenarios(k: ClusterRef): void {
  describe('core objects (kube-apiserver 1.20)', () => {
    it('namespaces: create, get, list, patch, stale replace 409, delete and finalize', async () => {
      const { core } = k();
      const name = 'e2e-ns-lifecycle';
      const created = await core.expect(201, 'POST', '/api/v1/namespaces', { body: { metadata: { name, labels: { a: '1' } } } });
      expect(created.status.phase).toBe('Active');
      expect(created.spec.finalizers).toEqual(['kubernetes']);
      const dup = await core.post('/api/v1/namespaces', { metadata: { name } });
      expect(dup.status).toBe(409);
      expect(dup.body.reason).toBe('AlreadyExists');

      const got = await core.expect(200, 'GET', `/api/v1/namespaces/${name}`);
      expect(got.metadata.uid).toBe(created.metadata.uid);
      expect(got.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
      const list = await core.expect(200, 'GET', '/api/v1/namespaces');
      expect(list.items.map((n: any) => n.metadata.name)).toEqual(expect.arrayContaining(['default', 'kube-system', 'kube-public', 'kube-node-lease', name]));
      expect(rv(list)).toBeGreaterThanOrEqual(rv(created));

      const patched = await core.expect(200, 'PATCH', `/api/v1/namespaces/${name}`, { body: { metadata: { labels: { b: '2' } } }, contentType: 'application/merge-patch+json' });
      expect(patched.metadata.labels).toMatchObject({ a: '1', b: '2' });
      expect(rv(patched)).toBeGreaterThan(rv(created));

      // Replace carrying the creation-time resourceVersion: stale.
      expectConflict(await core.put(`/api/v1/namespaces/${name}`, { ...created, metadata: { ...created.metadata, labels: { c: '3' } } }));
      const replaced = await core.expect(200, 'PUT', `/api/v1/namespaces/${name}`, { body: { ...patched, metadata: { ...patched.metadata, labels: { c: '3' } } } });
      expect(replaced.metadata.labels).toEqual({ c: '3' });
      expect(rv(replaced)).toBeGreaterThan(rv(patched));

      // Delete: without a namespace controller the namespace stays Terminating until finalized.
      const deleting = await core.expect(200, 'DELETE', `/api/v1/namespaces/${name}`);
      expect(deleting.status.phase).toBe('Terminating');
      expect(deleting.metadata.deletionTimestamp).toBeTruthy();
      const terminating = await core.expect(200, 'GET', `/api/v1/namespaces/${name}`);
      expect(terminating.status.phase).toBe('Terminating');
      await core.expect(200, 'PUT', `/api/v1/namespaces/${name}/finalize`, { body: { ...terminating, spec: { finalizers: [] } } });
      const gone = await core.get(`/api/v1/namespaces/${name}`);
      expect(gone.status).toBe(404);
      expect(gone.body.reason).toBe('NotFound');
    });

    it('ConfigMaps: create, duplicate 409, get, merge and strategic patch, replace, stale replace 409, preconditioned delete, delete', async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const created = await core.expect(201, 'POST', base, { body: { metadata: { name: 'cm1', labels: { app: 'e2e' } }, data: { a: '1', b: '2' } } });
      expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.metadata.creationTimestamp).toBeTruthy();
      const dup = await core.post(base, { metadata: { name: 'cm1' }, data: {} });
      expect(dup.status).toBe(409);
      expect(dup.body.reason).toBe('AlreadyExists');

      const got = await core.expect(200, 'GET', `${base}/cm1`);
      expect(got.data).toEqual({ a: '1', b: '2' });
      expect(got.metadata.resourceVersion).toBe(created.metadata.resourceVersion);

      const merged = await core.expect(200, 'PATCH', `${base}/cm1`, { body: { data: { b: null, c: '3' } }, contentType: 'application/merge-patch+json' });
      expect(merged.data).toEqual({ a: '1', c: '3' });
      expect(rv(merged)).toBeGreaterThan(rv(created));
      const strategic = await core.expect(200, 'PATCH', `${base}/cm1`, { body: { metadata: { labels: { tier: 'x' } } }, contentType: 'application/strategic-merge-patch+json' });
      expect(strategic.metadata.labels).toEqual({ app: 'e2e', tier: 'x' });
      expect(rv(strategic)).toBeGreaterThan(rv(merged));

      // A patch that changes nothing writes nothing: same resourceVersion.
      const noop = await core.expect(200, 'PATCH', `${base}/cm1`, { body: { data: { a: '1' } }, contentType: 'application/merge-patch+json' });
      expect(noop.metadata.resourceVersion).toBe(strategic.metadata.resourceVersion);

      expectConflict(await core.put(`${base}/cm1`, { ...merged, data: { stale: 'yes' } }));
      const replaced = await core.expect(200, 'PUT', `${base}/cm1`, { body: { ...strategic, data: { fresh: 'yes' } } });
      expect(replaced.data).toEqual({ fresh: 'yes' });
      expect(rv(replaced)).toBeGreaterThan(rv(strategic));
      // ConfigMaps allow unconditional updates: no resourceVersion, no conflict.
      const { resourceVersion: _drop, ...metaNoRv } = replaced.metadata;
      const unconditional = await core.expect(200, 'PUT', `${base}/cm1`, { body: { ...replaced, metadata: metaNoRv, data: { last: 'write' } } });
      expect(unconditional.data).toEqual({ last: 'write' });
      expect(rv(unconditional)).toBeGreaterThan(rv(replaced));
      expect((await core.expect(200, 'GET', `${base}/cm1`)).data).toEqual({ last: 'write' });

      // Delete with a stale resourceVersion precondition: 409, the object stays.
      const stale = await core.delete(`${base}/cm1`, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: replaced.metadata.resourceVersion } });
      expect(stale.status).toBe(409);
      expect(stale.body.reason).toBe('Conflict');
      await core.expect(200, 'GET', `${base}/cm1`);
      await core.expect(200, 'DELETE', `${base}/cm1`, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: unconditional.metadata.resourceVersion } } });
      const gone = await core.get(`${base}/cm1`);
      expect(gone.status).toBe(404);
      expect((await core.delete(`${base}/cm1`)).status).toBe(404);
      // The name is free again, with a new uid.
      const again = await core.expect(201, 'POST', base, { body: { metadata: { name: 'cm1' }, data: { new: 'life' } } });
      expect(again.metadata.uid).not.toBe(created.metadata.uid);
      await core.expect(200, 'DELETE', `${base}/cm1`);
    });

    it('concurrent writers: 20 parallel patches of one ConfigMap all land (Txn compare failures retried), 8 parallel creates of one name give one 201', async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const start = await core.expect(201, 'POST', base, { body: { metadata: { name: 'contended' }, data: {} } });
      const patches = await Promise.all(Array.from({ length: 20 }, (_, i) => core.mergePatch(`${base}/contended`, { data: { [`k${i}`]: String(i) } })));
      expect(patches.map((p) => p.status)).toEqual(Array(20).fill(200));
      const rvs = patches.map((p) => rv(p.body));
      expect(new Set(rvs).size, 'each patch is its own revision').toBe(20);
      const final = await core.expect(200, 'GET', `${base}/contended`);
      expect(Object.keys(final.data).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
      expect(rv(final)).toBe(Math.max(...rvs));
      expect(rv(final)).toBeGreaterThan(rv(start));

      const creates = await Promise.all(Array.from({ length: 8 }, (_, i) => core.post(base, { metadata: { name: 'raced' }, data: { by: String(i) } })));
      expect(creates.map((c) => c.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
      const winner = creates.find((c) => c.status === 201)!.body;
      expect((await core.expect(200, 'GET', `${base}/raced`)).data).toEqual(winner.data);
      for (const c of creates.filter((c) => c.status === 409)) expect(c.body.reason).toBe('AlreadyExists');
      await core.expect(200, 'DELETE', `${base}/raced`);
      await core.expect(200, 'DELETE', `${base}/contended`);
    });

    it('a ConfigMap of almost 1 MiB (the API limit) round-trips; one over it is refused by the apiserver', async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/configmaps`;
      const big = 'x'.repeat(1024 * 1024 - 1024);
      const created = await core.expect(201, 'POST', base, { body: { metadata: { name: 'big' }, data: { big } } });
      const got = await core.expect(200, 'GET', `${base}/big`);
      expect(got.data.big.length).toBe(big.length);
      expect(got.data.big === big).toBe(true);
      const w = core.watch(base, { resourceVersion: String(rv(created) - 1), fieldSelector: 'metadata.name=big' });
      const [ev] = await w.count(1);
      w.close();
      expect(ev.type).toBe('ADDED');
      expect(ev.object.data.big === big).toBe(true);
      const tooBig = await core.post(base, { metadata: { name: 'too-big' }, data: { big: 'y'.repeat(1024 * 1024 + 1) } });
      expect(tooBig.status).toBe(422);
      await core.expect(200, 'DELETE', `${base}/big`);
    });

    it('Secrets: create, get (bytes intact), patch stringData, stale replace 409, delete', async () => {
      const { core } = k();
      await createNamespace(core, NS);
      const base = `/api/v1/namespaces/${NS}/secrets`;
      const binary = Buffer.from([0, 1, 2, 253, 254, 255, 10, 13]).toString('base64');
      const created = await core.expect(201, 'POST', base, { body: { metadata: { name: 's1' }, type: 'Opaque', data: { bin: binary }, stringData: { user: 'admin' } } });
      expect(created.data).toEqual({ bin: binary, user: Buffer.from('admin').toString('base64') });
      const got = await core.expect(200, 'GET', `${base}/s1`);
      expect(got.data).toEqual(created.data);
      expect(got.type).toBe('Opaque');

      const patched = await core.expect(200, 'PATCH', `${base}/s1`, { body: { stringData: { user: 'root' } }, contentType: 'application/merge-patch+json' });
      expect(Buffer.from(patched.data.user, 'base64').toString()).toBe('root');
      expect(patched.data.bin).toBe(binary);
      expect(rv(patched)).toBeGreaterThan(rv(created));

      expectConflict(await core.put(`${base}/s1`, { ...created, data: { x: 'eA==' } }));
      const replaced = await core.expect(200, 'PUT', `${base}/s1`, { body: { ...patched, data: { x: 'eA==' } } });
      expect(replaced.data).toEqual({ x: 'eA==' });
      await core.expect(200, 'DELETE', `${base}/s1`);
      expect((await core.get(`${base}/s1`)).status).toBe(404);
    });

    it('Services: ClusterIPs allocated from --service-cluster-ip-range, unique; taken IP refused; patch keeps the IP; stale replace 409; delete frees the IP', async () => {
      const { core, options } = k();
      await createNamespace(core, NS);
      const ok = inRange(options.serviceCidr);
      const kubernetes = await core.expect(200, 'GET', '/api/v1/namespaces/default/services/kubernetes');
      expect(kubernetes.spec.clusterIP).toBe(options.serviceCidr.replace(/\.0\/\d+$/, '.1'));

      const base = `/api/v1/namespaces/${NS}/services`;
      const svc = (name: string, clusterIP?: string) => ({
        metadata: { name },
        spec: { type: 'ClusterIP', selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], ...(clusterIP ? { clusterIP } : {}) },
      });
      const created = [];
      for (const name of ['svc-a', 'svc-b', 'svc-c']) created.push(await core.expect(201, 'POST', base, { body: svc(name) }));
      const ips = created.map((s) => s.spec.clusterIP as string);
      for (const ip of ips) expect(ok(ip), `${ip} in ${options.serviceCidr}`).toBe(true);
      expect(new Set([...ips, kubernetes.spec.clusterIP]).size).toBe(4);
      // In parallel: the allocator's bitmap is updated by compare-and-swap; no IP is handed out twice.
      const parallel = await Promise.all(Array.from({ length: 10 }, (_, i) => core.expect(201, 'POST', base, { body: svc(`svc-p${i}`) })));
      const pIps = parallel.map((s) => s.spec.clusterIP as string);
      for (const ip of pIps) expect(ok(ip), `${ip} in ${options.serviceCidr}`).toBe(true);
      expect(new Set([...ips, ...pIps, kubernetes.spec.clusterIP]).size).toBe(14);
      for (let i = 0; i < 10; i++) await core.expect(200, 'DELETE', `${base}/svc-p${i}`);

      const taken = await core.post(base, svc('svc-taken', ips[0]));
      expect(taken.status).toBe(422);
      expect(taken.body.reason).toBe('Invalid');
      expect(taken.body.message).toContain('provided IP is already allocated');

      const got = await core.expect(200, 'GET', `${base}/svc-a`);
      expect(got.spec.clusterIP).toBe(ips[0]);
      // A JSON merge patch replaces the ports list.
      const patched = await core.expect(200, 'PATCH', `${base}/svc-a`, { body: { spec: { ports: [{ name: 'http', port: 81, targetPort: 8080, protocol: 'TCP' }] } }, contentType: 'application/merge-patch+json' });
      expect(patched.spec.ports.map((p: any) => p.port)).toEqual([81]);
      expect(patched.spec.clusterIP).toBe(ips[0]);
      expectConflict(await core.put(`${base}/svc-a`, { ...created[0], metadata: { ...created[0].metadata, labels: { stale: 'yes' } } }));
      const replaced = await core.expect(200, 'PUT', `${base}/svc-a`, { body: { ...patched, metadata: { ...patched.metadata, labels: { fresh: 'yes' } } } });
      expect(replaced.metadata.labels).toEqual({ fresh: 'yes' });
      expect(replaced.spec.clusterIP).toBe(ips[0]);

      const listed = await core.expect(200, 'GET', base);
      expect(listed.items.map((s: any) => [s.metadata.name, s.spec.clusterIP])).toEqual([['svc-a', ips[0]], ['svc-b', ips[1]], ['svc-c', ips[2]]]);

      // Deleting releases the IP in the allocator: a new Service may ask for exactly it.
      await core.expect(200, 'DELETE', `${base}/svc-a`);
      expect((await core.get(`${base}/svc-a`)).status).toBe(404);
      const reuse = await core.expect(201, 'POST', base, { body: svc('svc-reuse', ips[0]) });
      expect(reuse.spec.clusterIP).toBe(ips[0]);
      for (const name of ['svc-b', 'svc-c', 'svc-reuse']) await core.expect(200, 'DELETE', `${base}/${name}`);
      expect((await core.expect(200, 'GET', base)).items).toEqual([]);
    });
  });
}
