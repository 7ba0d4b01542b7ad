// Leases through a 3-level tree (DESIGN.md 7): IDs are global (any node knows a lease granted
// through another), keep-alives through the root work, and a lease's keys are deleted wherever
// they live, on expiry and on revoke: one delete event per key in the root's watch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startTree, type Tree } from '../../support/tree.ts';
import { b, end, podsLeaf, TREE_NAMESPACES, until, watchAll, watchReaches } from './helpers.ts';

const DELETE = 1;
const POD_NS = TREE_NAMESPACES.find((ns) => podsLeaf(ns) === 'pods-my')!;

describe('leases through the tree', () => {
  let tree: Tree;
  let root: EtcdClient;
  let branchA: EtcdClient;
  let branchB: EtcdClient;

  beforeAll(async () => {
    tree = await startTree();
    root = connectEtcd(tree.root.endpoint);
    branchA = connectEtcd(tree.nodes['branch-a'].endpoint);
    branchB = connectEtcd(tree.nodes['branch-b'].endpoint);
  });

  afterAll(async () => {
    for (const c of [root, branchA, branchB]) c?.close();
    await tree?.destroy();
  });

  /** Keys under both branches: an event (branch-a, PostgreSQL), a pod (branch-b, MariaDB), a service (branch-b, SQLite). */
  const keysOf = (tag: string) => [`/registry/events/default/${tag}`, `/registry/pods/${POD_NS}/${tag}`, `/registry/services/default/${tag}`];

  async function attach(id: number, keys: string[]): Promise<number> {
    let rev = 0;
    for (const key of keys) rev = (await root.kv.put({ key: b(key), value: b('v'), lease: id })).header.revision;
    return rev;
  }

  const exists = async (c: EtcdClient, key: string) => (await c.kv.range({ key: b(key), count_only: true })).count === 1;

  it('granted through the root: every node knows it; TimeToLive through the root lists the keys under both branches', async () => {
    const { ID: id, TTL } = await root.lease.grant({ TTL: 60 });
    expect(TTL).toBe(60);
    const keys = keysOf('ttl');
    await attach(id, keys);
    const ttl = await root.lease.timeToLive({ ID: id, keys: true });
    expect(ttl.grantedTTL).toBe(60);
    expect(ttl.TTL).toBeGreaterThan(55);
    expect(ttl.keys.map((k: Buffer) => k.toString()).sort()).toEqual([...keys].sort());
    // A branch sees the lease too (each lists only the keys of its own subtree).
    const atA = await branchA.lease.timeToLive({ ID: id, keys: true });
    expect(atA.grantedTTL).toBe(60);
    expect(atA.keys.map((k: Buffer) => k.toString())).toEqual([keys[0]]);
    // Leases: the same IDs through the root and on the branches.
    const ids = async (c: EtcdClient) => (await c.lease.leases({})).leases.map((l: any) => l.ID).sort();
    const atRoot = await ids(root);
    expect(atRoot).toContain(id);
    expect(await ids(branchA)).toEqual(atRoot);
    expect(await ids(branchB)).toEqual(atRoot);
    // A keep-alive on a branch renews it too (served from Redis, like the root's).
    const ka = branchA.lease.keepAlive();
    const renewed = new Promise<any>((resolve, reject) => { ka.once('data', resolve); ka.once('error', reject); });
    ka.write({ ID: id });
    expect(await renewed).toMatchObject({ ID: id, TTL: 60 });
    ka.end();
    // A put with it directly on a branch is accepted (the ID is global).
    await branchB.kv.put({ key: b('/registry/services/default/ttl-direct'), value: b('v'), lease: id });
    expect((await root.lease.timeToLive({ ID: id, keys: true })).keys.map((k: Buffer) => k.toString())).toContain('/registry/services/default/ttl-direct');
    await root.lease.revoke({ ID: id });
  });

  it('LeaseRevoke through the root deletes the keys in both branches, one delete event each', async () => {
    const { ID: id } = await root.lease.grant({ TTL: 60 });
    const keys = keysOf('revoke');
    const watch = await watchAll(root, '/registry/');
    await attach(id, keys);
    await root.lease.revoke({ ID: id });
    for (const key of keys) expect(await exists(root, key), key).toBe(false);
    const { header } = await root.kv.range({ key: b('/registry/'), range_end: end('/registry/'), count_only: true });
    await watchReaches(watch, header.revision, 'the watch to see the revocation');
    watch.close();
    const deletes = watch.events.filter((e) => e.type === DELETE).map((e) => e.key).sort();
    expect(deletes).toEqual([...keys].sort());
    expect((await root.lease.timeToLive({ ID: id })).TTL).toBe(-1);
    expect((await root.lease.leases({})).leases.map((l: any) => l.ID)).not.toContain(id);
    expect((await branchB.lease.leases({})).leases.map((l: any) => l.ID)).not.toContain(id);
  });

  it('keep-alives through the root keep it; once they stop it expires and its keys under both branches are deleted once', async () => {
    const { ID: id, TTL } = await root.lease.grant({ TTL: 2 });
    expect(TTL).toBe(2);
    const keys = keysOf('expiry');
    const watch = await watchAll(root, '/registry/');
    const grantedAt = Date.now();
    await attach(id, keys);

    // Keep-alives through the root, past the first TTL: each answers the full TTL.
    const stream = root.lease.keepAlive();
    const answers: any[] = [];
    stream.on('data', (res: any) => answers.push(res));
    stream.on('error', () => undefined);
    for (let n = 1; n <= 6; n++) {
      stream.write({ ID: id });
      await until(() => answers.length >= n, `keep-alive answer ${n}`, 5000);
      expect(answers[n - 1].ID).toBe(id);
      expect(answers[n - 1].TTL).toBe(2);
      await new Promise((r) => setTimeout(r, 500)); // the lease's own clock: not an event to wait for
    }
    expect(Date.now() - grantedAt).toBeGreaterThan(3000);
    for (const key of keys) expect(await exists(root, key), `${key} kept alive`).toBe(true);
    expect((await root.lease.timeToLive({ ID: id })).TTL).toBeGreaterThan(0);
    stream.end();

    // Expiry: the root (the node that sees every branch) revokes it; every key goes, once.
    // (TimeToLive answers -1 as soon as the revocation starts, before the keys are deleted.)
    const deleted = () => watch.events.filter((e) => e.type === DELETE).length;
    await until(() => deleted() >= keys.length, 'the delete events of the expired lease', 15_000);
    for (const key of keys) expect(await exists(root, key), `${key} after expiry`).toBe(false);
    await until(async () => (await root.lease.timeToLive({ ID: id })).TTL === -1, 'the lease record to go', 15_000);
    const { header } = await root.kv.range({ key: b('/registry/'), range_end: end('/registry/'), count_only: true });
    await watchReaches(watch, header.revision, 'the watch to see the expiry');
    watch.close();
    const deletes = watch.events.filter((e) => e.type === DELETE).map((e) => e.key).sort();
    expect(deletes, 'one delete event per key').toEqual([...keys].sort());
    // Deletes of one leaf share a revision; they come after the puts.
    const lastPut = Math.max(...watch.events.filter((e) => e.type !== DELETE).map((e) => e.rev));
    for (const e of watch.events.filter((e) => e.type === DELETE)) expect(e.rev).toBeGreaterThan(lastPut);
    expect((await branchA.lease.leases({})).leases.map((l: any) => l.ID)).not.toContain(id);
    // A put with the expired lease fails, through the root and on a branch.
    await expect(root.kv.put({ key: b(keys[1]), value: b('v'), lease: id })).rejects.toMatchObject({ details: 'etcdserver: requested lease not found' });
    await expect(branchA.kv.put({ key: b(keys[0]), value: b('v'), lease: id })).rejects.toMatchObject({ details: 'etcdserver: requested lease not found' });
  });
});
