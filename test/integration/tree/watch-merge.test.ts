// The root's watch over keys under both branches is one stream, ordered by the tree's single
// revision sequence (DESIGN.md 5, 7): with concurrent writers into leaves under different
// branches (through the root and directly through the branches) it equals the acknowledged
// writes in revision order; a branch SIGKILLed and restarted mid-stream costs no event and no
// duplicate; a paginated list through the root (limit + continue across shards) at revision R
// followed by a watch from R + 1 misses and repeats nothing.
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startTree, type Tree } from '../../support/tree.ts';
import { REDIS_URL } from '../../support/redis-prefix.ts';
import { b, configmapsBranch, end, expectExactStream, FAST_RECONNECT, podsLeaf, TREE_NAMESPACES, newWriteLog, stopWriters, until, watchAll, watchReaches, writer } from './helpers.ts';

// Where the keys live (test/support/tree.ts):
//   /registry/events/      root -> branch-a -> events (PostgreSQL)
//   /registry/configmaps/  root -> shards [branch-a, branch-b] by namespace -> events | local (SQLite)
//   /registry/pods/        root -> branch-b -> shards [pods-my (MariaDB), pods-pg (PostgreSQL)] by namespace
//   /registry/services/    root -> branch-b -> local (SQLite)
const ns = (i: number) => TREE_NAMESPACES[i % TREE_NAMESPACES.length];

describe('watch merge across branches', () => {
  let tree: Tree;
  let root: EtcdClient;
  let branchA: EtcdClient;
  let branchB: EtcdClient;

  beforeAll(async () => {
    // The namespaces put configmaps under both branches and pods into both of branch-b's leaves.
    expect(new Set(TREE_NAMESPACES.map(configmapsBranch))).toEqual(new Set(['branch-a', 'branch-b']));
    expect(new Set(TREE_NAMESPACES.map(podsLeaf))).toEqual(new Set(['pods-my', 'pods-pg']));
    // A revision left pending by the killed branch is fenced after 1 s instead of 5 s.
    tree = await startTree({ args: ['--revision-deadline', '1s'] });
    root = connectEtcd(tree.root.endpoint);
    branchA = connectEtcd(tree.nodes['branch-a'].endpoint);
    branchB = connectEtcd(tree.nodes['branch-b'].endpoint, { channelOptions: FAST_RECONNECT });
  });

  afterAll(async () => {
    await stopWriters();
    for (const c of [root, branchA, branchB]) c?.close();
    await tree?.destroy();
  });

  it('concurrent writers under both branches: the root stream is the acknowledged writes in revision order', async () => {
    const watch = await watchAll(root, '/registry/');
    const log = newWriteLog();
    const put = async (c: EtcdClient, key: string) => {
      log.attempted.add(key);
      log.acked.set(key, Number((await c.kv.put({ key: b(key), value: b('v') })).header.revision));
    };
    const loops: Array<[EtcdClient, (i: number) => string]> = [
      [root, (i) => `/registry/events/${ns(i)}/root-${i}`],
      [root, (i) => `/registry/configmaps/${ns(i)}/root-${i}`],
      [root, (i) => `/registry/pods/${ns(i)}/root-${i}`],
      [root, (i) => `/registry/services/${ns(i)}/root-${i}`],
      [branchA, (i) => `/registry/events/${ns(i)}/direct-${i}`],
      [branchB, (i) => `/registry/pods/${ns(i)}/direct-${i}`],
    ];
    await Promise.all(loops.map(async ([c, keyOf]) => {
      for (let i = 0; i < 40; i++) await put(c, keyOf(i));
    }));
    const revs = [...log.acked.values()];
    expect(new Set(revs).size, 'every acknowledged write has its own revision').toBe(revs.length);
    await watchReaches(watch, Math.max(...revs), 'the root watch to reach the last write');
    watch.close();
    expect(watch.events.length).toBe(log.acked.size);
    expectExactStream(watch.events, log);
  });

  it("only the branches, which hold leaves, receive the tree's wake-ups: the root, serving through its children, never subscribes", async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const subscribers = async () => (await redis.pubsub('NUMSUB', `${tree.redisPrefix}wake`))[1] as number;
      await until(async () => (await subscribers()) === 2, 'both branches subscribed');
      // Writes, reads at the head and at a revision, and a watch, all through the root.
      const put = await root.kv.put({ key: b('/registry/pods/default/subscribers'), value: b('1') });
      await root.kv.range({ key: b('/registry/'), range_end: end('/registry/'), limit: 5 });
      await root.kv.range({ key: b('/registry/pods/default/subscribers'), revision: put.header.revision });
      const watch = await watchAll(root, '/registry/pods/', put.header.revision);
      await watchReaches(watch, put.header.revision, 'the put');
      watch.close();
      expect(await subscribers()).toBe(2);
    } finally {
      redis.disconnect();
    }
  });

  it('list through the root in pages across shards at R, then watch from R + 1: nothing missed or repeated', async () => {
    const log = newWriteLog();
    const writers = [
      writer(root, (i) => `/registry/events/${ns(i)}/lw-${i}`, log),
      writer(root, (i) => `/registry/configmaps/${ns(i)}/lw-${i}`, log),
      writer(root, (i) => `/registry/pods/${ns(i)}/lw-${i}`, log),
      writer(branchB, (i) => `/registry/services/${ns(i)}/lw-${i}`, log),
    ];
    await until(() => log.acked.size > 60, 'writes before the list');

    // Pages of 7 keys: the first at the head (its header revision is R), the next ones at R,
    // each starting after the last key of the previous page, as kube-apiserver's continue does.
    const pages: any[] = [await root.kv.range({ key: b('/registry/'), range_end: end('/registry/'), limit: 7 })];
    const R = Number(pages[0].header.revision);
    while (pages[pages.length - 1].more) {
      const last: Buffer = pages[pages.length - 1].kvs.at(-1).key;
      pages.push(await root.kv.range({ key: Buffer.concat([last, Buffer.from([0])]), range_end: end('/registry/'), limit: 7, revision: R }));
      expect(pages.length, 'pagination ends').toBeLessThan(1000);
    }
    const watch = await watchAll(root, '/registry/', R + 1);
    await until(() => log.acked.size > 160, 'writes after the list');
    for (const w of writers) await w.stop();
    for (const w of writers) expect(w.errors.map((e) => e.details)).toEqual([]);

    const listed = pages.flatMap((p) => p.kvs.map((kv: any) => ({ key: kv.key.toString(), rev: Number(kv.mod_revision) })));
    // The pages are the list at R, in key order, each key once, `count` exact on the first page.
    const whole = await root.kv.range({ key: b('/registry/'), range_end: end('/registry/'), revision: R });
    expect(listed).toEqual(whole.kvs.map((kv: any) => ({ key: kv.key.toString(), rev: Number(kv.mod_revision) })));
    expect(Number(pages[0].count)).toBe(listed.length);
    for (const p of pages.slice(0, -1)) expect(p.kvs.length).toBe(7);
    // (The later pages' header is the current revision, as in etcd: not R.)
    for (const p of pages.slice(1)) expect(Number(p.header.revision)).toBeGreaterThanOrEqual(R);

    await watchReaches(watch, Math.max(...log.acked.values()), 'the watch to reach the last write');
    watch.close();
    const listedKeys = new Set(listed.map((l) => l.key));
    const watchedKeys = watch.events.map((e) => e.key);
    expect(new Set(watchedKeys).size, 'no event repeated').toBe(watchedKeys.length);
    for (const e of watch.events) expect(e.rev, e.key).toBeGreaterThan(R);
    for (const [key, rev] of log.acked) {
      expect(listedKeys.has(key), `${key} (rev ${rev}): listed iff written at or before R = ${R}`).toBe(rev <= R);
      expect(watchedKeys.includes(key), `${key} (rev ${rev}): watched iff written after R = ${R}`).toBe(rev > R);
    }
  });

  it('branch-b SIGKILLed and restarted mid-stream: the root stream still has every acknowledged write once, in order', async () => {
    const watch = await watchAll(root, '/registry/');
    const log = newWriteLog();
    // Keys on branch-a only, through the root and directly: never affected by branch-b.
    const onA = [
      writer(root, (i) => `/registry/events/${ns(i)}/k-${i}`, log),
      writer(branchA, (i) => `/registry/events/${ns(i)}/kd-${i}`, log),
    ];
    // Keys on branch-b (and on both, by namespace): they fail while it is down and are retried.
    const onB = [
      writer(root, (i) => `/registry/pods/${ns(i)}/k-${i}`, log),
      writer(root, (i) => `/registry/services/${ns(i)}/k-${i}`, log),
      writer(root, (i) => `/registry/configmaps/${ns(i)}/k-${i}`, log),
      writer(branchB, (i) => `/registry/pods/${ns(i)}/kd-${i}`, log),
    ];
    const okOnB = () => onB.reduce((n, w) => n + w.ok(), 0);
    const okOnA = () => onA.reduce((n, w) => n + w.ok(), 0);
    await until(() => okOnB() > 150 && okOnA() > 50, 'writes to both branches before the kill');
    const eventsBefore = watch.events.length;

    await tree.nodes['branch-b'].kill();
    const aAtKill = okOnA();
    await until(() => onB.every((w) => w.errors.length > 0), 'writes to branch-b keys to fail while it is down');
    await until(() => okOnA() > aAtKill + 50, 'branch-a writes to go on while branch-b is down');

    await tree.restart('branch-b');
    const bAtRestart = okOnB();
    await until(() => okOnB() > bAtRestart + 150, 'writes to branch-b keys to succeed again', 60_000);
    for (const w of [...onA, ...onB]) await w.stop();

    expect(onA.flatMap((w) => w.errors.map((e) => e.details)), 'branch-a keys never failed').toEqual([]);
    const codes = onB.flatMap((w) => w.errors.map((e) => `${grpc.status[e.code]}: ${e.details}`));
    expect(codes.filter((c) => !c.startsWith('UNAVAILABLE:')), 'branch-b keys failed only with UNAVAILABLE').toEqual([]);

    await watchReaches(watch, Math.max(...log.acked.values()), 'the root watch to reach the last acknowledged write', 60_000);
    watch.close();
    expect(watch.events.length).toBeGreaterThan(eventsBefore);
    expectExactStream(watch.events, log);
    // Nothing acknowledged is lost in the leaves either.
    const stored = await root.kv.range({ key: b('/registry/'), range_end: end('/registry/') });
    const byKey = new Map(stored.kvs.map((kv: any) => [kv.key.toString(), Number(kv.mod_revision)]));
    const lost = [...log.acked].filter(([key, rev]) => byKey.get(key) !== rev).map(([key]) => key);
    expect(lost).toEqual([]);
  });
});
