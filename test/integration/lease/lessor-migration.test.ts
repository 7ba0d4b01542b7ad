// Switching a tree from single-node mode (LeafLessor: leases in the home leaf, deadlines in
// memory) to Redis leases keeps every lease: the Redis lessor loads the home leaf's records.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LeafLessor } from '../../../src/lease/leaf-lessor.ts';
import { leaseCluster, type LeaseCluster } from './lease-cluster.ts';

let cl: LeaseCluster;
beforeEach(async () => {
  cl = await leaseCluster();
});
afterEach(async () => {
  await cl.cleanup();
});

it('leases granted in single-node mode are there, with their keys, once the nodes use Redis', async () => {
  const single = new LeafLessor(cl.leafB, { revokeLeaseKeys: async () => undefined, keysOfLease: async () => [] });
  await single.start();
  const { id } = await single.grant(30, 0);
  const put = { key: Buffer.from('/a/old'), value: Buffer.from('v'), lease: id, prev_kv: false, ignore_value: false, ignore_lease: false };
  await cl.leafA.txn({ compare: [], success: [{ request: 'request_put', request_put: put }], failure: [] }, { leaseExists: (x) => single.exists(x) });
  await single.stop();

  const A = await cl.node('A');
  const B = await cl.node('B');
  expect(await B.lessor.list()).toEqual([id]);
  const t = await A.lessor.timeToLive(id, true);
  expect(t!.grantedTtl).toBe(30);
  expect(t!.keys.map(String)).toEqual(['/a/old']);
  expect(await B.put('/b/new', 'v', id)).toBeGreaterThan(0);
  await B.lessor.revoke(id);
  expect(await A.get('/a/old')).toBeNull();
  expect(await A.get('/b/new')).toBeNull();
  expect(await cl.leafB.listLeases()).toEqual([]);
});
