// Faults in a 3-level tree (test/support/tree.ts): a branch node killed, a leaf database under
// a branch gone. Only the prefixes that live there fail, with UNAVAILABLE naming what is down;
// every other prefix keeps answering through the root, its watches keep flowing; when the node
// or database is back the failed prefixes recover by themselves (nothing is done to the root).
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';
import { PG_URL } from '../support/sql-backends.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startTree, type Tree } from '../support/tree.ts';
import { b, configmapsBranch, end, failure, podsLeaf, TREE_NAMESPACES, until, watchAll } from '../integration/tree/helpers.ts';

const nsWhere = (pick: (ns: string) => string, where: string) => {
  const found = TREE_NAMESPACES.find((ns) => pick(ns) === where);
  if (!found) throw new Error(`no test namespace lands on ${where}`);
  return found;
};
// Namespaces whose configmaps live under branch-a / branch-b, and whose pods live in pods-my / pods-pg.
const CM_ON_A = nsWhere(configmapsBranch, 'branch-a');
const CM_ON_B = nsWhere(configmapsBranch, 'branch-b');
const PODS_MY = nsWhere(podsLeaf, 'pods-my');
const PODS_PG = nsWhere(podsLeaf, 'pods-pg');

let seq = 0;
const put = (c: EtcdClient, key: string) => c.kv.put({ key: b(key), value: b(`v${++seq}`) });
const get = async (c: EtcdClient, key: string) => (await c.kv.range({ key: b(key) })).kvs.map((kv: any) => kv.value.toString());

/** A put or get that must fail UNAVAILABLE (not hang), naming what is down. */
async function expectUnavailable(call: Promise<unknown>, names: RegExp): Promise<void> {
  const err = await failure(call);
  expect(grpc.status[err.code], err.details).toBe('UNAVAILABLE');
  expect(err.details).toMatch(names);
}

/** Retries a call until it succeeds (the tree recovering by itself). */
async function eventually<T>(call: () => Promise<T>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: still failing after ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('faults in a tree', () => {
  let tree: Tree | undefined;
  let proxy: TcpProxy | undefined;
  let clients: EtcdClient[] = [];
  afterEach(async () => {
    for (const c of clients) c.close();
    clients = [];
    proxy?.up();
    await tree?.destroy();
    await proxy?.close();
    tree = undefined;
    proxy = undefined;
  });

  it('branch-a killed: only /registry/events/ and its configmap shard fail UNAVAILABLE; they recover when it is back', async () => {
    tree = await startTree();
    const root = connectEtcd(tree.root.endpoint);
    clients.push(root);
    const working = [`/registry/pods/${PODS_MY}/p`, `/registry/pods/${PODS_PG}/p`, `/registry/services/default/s`, `/registry/configmaps/${CM_ON_B}/c`];
    const failing = ['/registry/events/default/e', `/registry/configmaps/${CM_ON_A}/c`];
    for (const key of [...working, ...failing]) await put(root, key);
    // A watch of keys on branch-b only.
    const pods = await watchAll(root, '/registry/pods/');

    await tree.nodes['branch-a'].kill();
    for (const key of failing) {
      await expectUnavailable(put(root, key), /branch-a/);
      await expectUnavailable(root.kv.range({ key: b(key) }), /branch-a/);
    }
    // A range over both branches needs both.
    await expectUnavailable(root.kv.range({ key: b('/registry/configmaps/'), range_end: end('/registry/configmaps/') }), /branch-a/);
    for (const key of working) {
      const { header } = await put(root, key);
      expect(await get(root, key)).toEqual([`v${seq}`]);
      await until(() => pods.reached() >= header.revision || !key.startsWith('/registry/pods/'), 'the pods watch to flow while branch-a is down');
    }
    const listed = await root.kv.range({ key: b('/registry/pods/'), range_end: end('/registry/pods/'), count_only: true });
    expect(listed.count).toBe(2);
    expect(pods.failure()).toBeNull();

    await tree.restart('branch-a');
    // The root finds it again by itself.
    await eventually(() => put(root, '/registry/events/default/e2'), 'a put of an event after branch-a restarted');
    expect(await get(root, '/registry/events/default/e')).toEqual([expect.stringMatching(/^v\d+$/)]);
    await put(root, `/registry/configmaps/${CM_ON_A}/c`);
    const cms = await root.kv.range({ key: b('/registry/configmaps/'), range_end: end('/registry/configmaps/') });
    expect(cms.kvs.map((kv: any) => kv.key.toString()).sort()).toEqual([`/registry/configmaps/${CM_ON_A}/c`, `/registry/configmaps/${CM_ON_B}/c`].sort());
    pods.close();
  });

  it('a leaf database under branch-b down: only its pods fail UNAVAILABLE naming it; they recover when it is back', async () => {
    proxy = await startTcpProxy(Number(new URL(PG_URL).port || 5432));
    tree = await startTree({ urls: { 'pods-pg': PG_URL.replace(/:\d+\//, `:${proxy.port}/`) } });
    const root = connectEtcd(tree.root.endpoint);
    clients.push(root);
    const working = [`/registry/pods/${PODS_MY}/p`, '/registry/events/default/e', `/registry/configmaps/${CM_ON_A}/c`, `/registry/configmaps/${CM_ON_B}/c`, '/registry/services/default/s'];
    const failing = `/registry/pods/${PODS_PG}/p`;
    for (const key of [...working, failing]) await put(root, key);
    const events = await watchAll(root, '/registry/events/');

    proxy.down();
    await expectUnavailable(put(root, failing), /pods-pg/);
    await expectUnavailable(root.kv.range({ key: b(failing) }), /pods-pg/);
    // A list that includes the leaf needs it.
    await expectUnavailable(root.kv.range({ key: b('/registry/pods/'), range_end: end('/registry/pods/') }), /pods-pg/);
    for (const key of working) {
      const { header } = await put(root, key);
      expect(await get(root, key)).toEqual([`v${seq}`]);
      if (key.startsWith('/registry/events/')) await until(() => events.reached() >= header.revision, 'the events watch to flow while pods-pg is down');
    }
    // Pods of the namespace on the live leaf are listed (the range stays inside its shard).
    const live = await root.kv.range({ key: b(`/registry/pods/${PODS_MY}/`), range_end: end(`/registry/pods/${PODS_MY}/`) });
    expect(live.kvs.map((kv: any) => kv.key.toString())).toEqual([`/registry/pods/${PODS_MY}/p`]);
    // The failures did not wear anything out: still UNAVAILABLE, still fast.
    await expectUnavailable(put(root, failing), /pods-pg/);

    proxy.up();
    await eventually(() => put(root, failing), 'a put of a pod on pods-pg after it came back');
    expect(await get(root, failing)).toEqual([`v${seq}`]);
    const all = await root.kv.range({ key: b('/registry/pods/'), range_end: end('/registry/pods/') });
    expect(all.kvs.map((kv: any) => kv.key.toString()).sort()).toEqual([`/registry/pods/${PODS_MY}/p`, failing].sort());
    expect(events.failure()).toBeNull();
    events.close();
  });
});
