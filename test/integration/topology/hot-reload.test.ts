// Topology changes while a node runs: a new leaf is added without a restart, a change that
// would hide existing keys is refused (naming the prefix and the count), and a shard set spreads
// keys by namespace while a paginated list over it stays exact.
import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startEtcdTree, type EtcdTreeNode } from '../../support/etcd-tree-process.ts';

const b = (s: string) => Buffer.from(s);
const prefixEnd = (p: string) => {
  const e = b(p);
  e[e.length - 1]++;
  return e;
};

const DEFAULT = 'backends:\n  local:\n    kind: sqlite\n    path: default.db\nroutes:\n  - prefix: ""\n    to: local\n';

function logLines(node: EtcdTreeNode): Array<{ msg?: string; reason?: string }> {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return {};
      }
    });
}

/** Polls `check` until it passes (the node reloads after a short debounce). */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('topology hot reload', () => {
  let node: EtcdTreeNode;
  let client: EtcdClient;
  let dir: string;

  beforeAll(async () => {
    node = await startEtcdTree({ topology: { '00-default.yaml': DEFAULT } });
    client = connectEtcd(node.endpoint);
    dir = join(node.dataDir, 'topology.d');
  });
  afterAll(async () => {
    client?.close();
    await node?.destroy();
  });

  async function status(): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`);
    const text = await res.text();
    return (text.match(/etcd_tree_leaf_head_revision\{leaf="[^"]+"\}/g) ?? []).length;
  }

  it('adds a leaf dropped into topology.d without a restart; its keys go there', async () => {
    expect(await status()).toBe(1);
    writeFileSync(join(dir, '10-events.yaml'), 'backends:\n  events:\n    kind: sqlite\n    path: events.db\nroutes:\n  - prefix: /registry/events/\n    to: events\n');
    await eventually(async () => (await status()) === 2, 'a second leaf in /metrics');
    const put = await client.kv.put({ key: b('/registry/events/default/e1'), value: b('x') });
    const got = await client.kv.range({ key: b('/registry/'), range_end: prefixEnd('/registry/') });
    expect(got.kvs.map((kv: any) => kv.key.toString())).toEqual(['/registry/events/default/e1']);
    expect(got.header.revision).toBe(put.header.revision);
    const metrics = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`etcd_tree_leaf_head_revision\\{leaf="events"\\} ${put.header.revision}\\b`));
  });

  it('refuses a route that would hide existing keys and keeps the old topology', async () => {
    for (let i = 0; i < 3; i++) await client.kv.put({ key: b(`/registry/configmaps/ns/c${i}`), value: b('v') });
    writeFileSync(join(dir, '20-configmaps.yaml'), 'backends:\n  cms:\n    kind: sqlite\n    path: cms.db\nroutes:\n  - prefix: /registry/configmaps/\n    to: cms\n');
    const refusal = () => logLines(node).find((l) => l.msg?.startsWith('topology change refused'));
    await eventually(async () => refusal() !== undefined, 'the refusal in the log');
    expect(refusal()!.reason).toMatch(/would hide existing keys \(prefix "\/registry\/configmaps\/": 3 key\(s\) in leaf local\)/);
    // Still served from the old leaf.
    const got = await client.kv.range({ key: b('/registry/configmaps/'), range_end: prefixEnd('/registry/configmaps/'), count_only: true });
    expect(got.count).toBe(3);
    unlinkSync(join(dir, '20-configmaps.yaml'));
  });

  it('a shard set spreads keys by namespace and a paginated list over it is exact', async () => {
    writeFileSync(
      join(dir, '30-pods.yaml'),
      'backends:\n  pods-a:\n    kind: sqlite\n    path: pods-a.db\n  pods-b:\n    kind: sqlite\n    path: pods-b.db\nroutes:\n  - prefix: /registry/pods/\n    shards: [pods-a, pods-b]\n    shardSegment: 0\n',
    );
    await eventually(async () => (await status()) === 4, 'two shard leaves in /metrics');
    const names: string[] = [];
    for (let ns = 0; ns < 8; ns++) for (let p = 0; p < 5; p++) {
      const key = `/registry/pods/ns${ns}/pod${p}`;
      names.push(key);
      await client.kv.put({ key: b(key), value: b(`v${ns}${p}`) });
    }
    names.sort();
    const metrics = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    const heads = ['pods-a', 'pods-b'].map((l) => Number(metrics.match(new RegExp(`etcd_tree_leaf_head_revision\\{leaf="${l}"\\} (\\d+)`))?.[1] ?? 0));
    expect(heads.every((h) => h > 0), 'both shards got keys').toBe(true);

    const all = await client.kv.range({ key: b('/registry/pods/'), range_end: prefixEnd('/registry/pods/') });
    const listed: string[] = [];
    let start = b('/registry/pods/');
    for (let page = 0; page < 20; page++) {
      const res = await client.kv.range({ key: start, range_end: prefixEnd('/registry/pods/'), limit: 7, revision: all.header.revision });
      expect(res.count).toBe(40 - listed.length);
      listed.push(...res.kvs.map((kv: any) => kv.key.toString()));
      if (!res.more) break;
      start = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    expect(listed).toEqual(names);
    // One namespace reads from one shard only, and sees all its pods.
    const ns3 = await client.kv.range({ key: b('/registry/pods/ns3/'), range_end: prefixEnd('/registry/pods/ns3/') });
    expect(ns3.kvs.map((kv: any) => kv.key.toString())).toEqual(names.filter((n) => n.startsWith('/registry/pods/ns3/')));
  });
});
