// A parent's upstream watches (src/child/child-feed.ts) in three edge cases:
// - writes of other keys in the child's leaf: the parent's watch must still see its progress
//   (its merges and WatchProgressRequests depend on it);
// - replay from an old revision whose last event is older than where the child already is
//   (the child's catch-up answer ends past its last event): the watch must go live;
// - an upstream watch that cannot resume exactly: the parent lost its connection to the child,
//   and meanwhile the child's history after the parent's position was compacted. The parent's
//   watches must end the way etcd ends a watch whose history is compacted (canceled with
//   compact_revision), not stall forever or skip events silently; new watches work again.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueRedisPrefix } from '../../support/redis-prefix.ts';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startEtcdTree, type EtcdTreeNode } from '../../support/etcd-tree-process.ts';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.ts';
import { b, end, until, watchAll, watchReaches } from './helpers.ts';

const redisPrefix = uniqueRedisPrefix();
const common = ['--revision-store', REDIS_URL, '--revision-prefix', redisPrefix];
let child: EtcdTreeNode;
let parent: EtcdTreeNode;
let proxy: TcpProxy;
let viaParent: EtcdClient;
let direct: EtcdClient;

beforeAll(async () => {
  // etcd's default progress interval: a parent must not depend on the child's periodic ticks.
  child = await startEtcdTree({ args: [...common, '--name', 'child', '--tree-role', 'branch', '--experimental-watch-progress-notify-interval', '10m'] });
  proxy = await startTcpProxy(child.port);
  parent = await startEtcdTree({
    topology: { '00.yaml': `backends:\n  child:\n    kind: node\n    endpoints: [http://127.0.0.1:${proxy.port}]\nroutes:\n  - { prefix: "", to: child }\n` },
    args: [...common, '--name', 'parent'],
  });
  viaParent = connectEtcd(parent.endpoint);
  direct = connectEtcd(child.endpoint);
  await until(async () => viaParent.kv.put({ key: b('/w/ready'), value: b('1') }).then(() => true, () => false), 'the tree takes writes');
});

afterAll(async () => {
  viaParent?.close();
  direct?.close();
  await parent?.destroy();
  await proxy?.close();
  await child?.destroy();
  await deleteRedisKeys(redisPrefix);
});

it('replay from an old revision goes live even when the child is already past the last replayed event', async () => {
  const first = Number((await viaParent.kv.put({ key: b('/r/a'), value: b('1') })).header.revision);
  // The child moves on with writes outside the watched prefix.
  let elsewhere = 0;
  for (let i = 0; i < 3; i++) elsewhere = Number((await viaParent.kv.put({ key: b(`/elsewhere/${i}`), value: b('v') })).header.revision);
  const w = await watchAll(viaParent, '/r/', first);
  // Live: its progress notifications (every second here) pass the replayed event, with no
  // further write under the prefix to carry it along.
  await watchReaches(w, elsewhere, 'the replayed watch goes live', 5_000);
  const later = Number((await viaParent.kv.put({ key: b('/r/b'), value: b('2') })).header.revision);
  await watchReaches(w, later, 'the replayed watch delivers a write made after it', 10_000);
  expect(w.events.map((e) => [e.key, e.rev])).toEqual([['/r/a', first], ['/r/b', later]]);
  w.close();
});

it('writes of other keys on the child move a parent watch on (progress), with no event', async () => {
  const w = await watchAll(viaParent, '/p/');
  let last = 0;
  for (let i = 0; i < 3; i++) last = Number((await viaParent.kv.put({ key: b(`/q/${i}`), value: b('v') })).header.revision);
  await watchReaches(w, last, 'the watch of /p/ reaches the revisions written under /q/', 5_000);
  expect(w.events).toEqual([]);
  w.close();
});

it('history compacted while the parent was cut off: the watch ends with compact_revision, a new one works', async () => {
  const w = await watchAll(viaParent, '/w/');
  const first = await viaParent.kv.put({ key: b('/w/a'), value: b('1') });
  await watchReaches(w, Number(first.header.revision), 'the watch through the parent sees the first put');

  proxy.down();
  // Writes and a compaction on the child while the parent cannot see it.
  let last = 0;
  for (let i = 0; i < 3; i++) last = Number((await direct.kv.put({ key: b(`/w/k${i}`), value: b('v') })).header.revision);
  await direct.kv.compact({ revision: last, physical: true });
  proxy.up();

  await until(() => w.failure() !== null, 'the parent ends the watch');
  expect(w.failure()).toMatch(/canceled/);
  expect(w.events.map((e) => e.key)).toEqual(['/w/a']);

  const again = await watchAll(viaParent, '/w/');
  const next = await viaParent.kv.put({ key: b('/w/after'), value: b('1') });
  await watchReaches(again, Number(next.header.revision), 'a new watch through the parent').catch((e) => { throw new Error(`${e.message}\n${parent.output()}`); });
  expect(again.events.map((e) => e.key)).toEqual(['/w/after']);
  again.close();
});
