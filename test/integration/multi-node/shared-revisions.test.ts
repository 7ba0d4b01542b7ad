// Two and three nodes over shared leaves (PostgreSQL + MariaDB) and one Redis counter: one
// revision sequence, the same ordered watch stream on every node, read-after-write across
// nodes, list-then-watch across nodes with nothing missed or repeated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../support/cluster.ts';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';

const b = (s: string) => Buffer.from(s);
const end = (p: string) => {
  const e = b(p);
  e[e.length - 1]++;
  return e;
};

interface Seen {
  events: Array<{ key: string; rev: number; type: number }>;
  close(): void;
}

/** A watch; resolves once the server confirmed it (every later write is in its stream). */
async function watch(client: EtcdClient, prefix: string, startRevision = 0): Promise<Seen> {
  const events: Seen['events'] = [];
  const stream = client.watch();
  const created = new Promise<void>((resolve) => {
    stream.on('data', (res: any) => {
      if (res.created) resolve();
      for (const e of res.events ?? []) events.push({ key: e.kv.key.toString(), rev: e.kv.mod_revision, type: e.type });
    });
  });
  stream.on('error', () => undefined);
  stream.write({ create_request: { key: b(prefix), range_end: end(prefix), start_revision: startRevision } });
  await created;
  return { events, close: () => stream.cancel() };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each([2, 3])('%i nodes sharing leaves and a Redis counter', (count) => {
  let cluster: Cluster;
  let clients: EtcdClient[];

  beforeAll(async () => {
    cluster = await startCluster({ nodes: count, leaves: { pg: 'postgres', my: 'mysql' }, routes: ['  - { prefix: /registry/crds/, to: my }'] });
    clients = cluster.nodes.map((n) => connectEtcd(n.endpoint));
  });
  afterAll(async () => {
    for (const c of clients ?? []) c.close();
    await cluster?.destroy();
  });

  it('concurrent writers through every node: one sequence, identical ordered watch streams everywhere', async () => {
    const watches = await Promise.all(clients.map((c) => watch(c, '/registry/')));
    const acked = new Map<string, number>();
    await Promise.all(
      clients.flatMap((c, n) =>
        Array.from({ length: 4 }, async (_, w) => {
          for (let i = 0; i < 40; i++) {
            const key = `/registry/${i % 2 ? 'crds' : 'pods'}/n${n}w${w}/k${i}`;
            const res = await c.kv.put({ key: b(key), value: b(`v${i}`) });
            acked.set(key, res.header.revision);
          }
        }),
      ),
    );
    const revs = [...acked.values()];
    expect(new Set(revs).size, 'every acknowledged write has its own revision').toBe(revs.length);
    const last = Math.max(...revs);
    for (const w of watches) await until(() => (w.events.at(-1)?.rev ?? 0) >= last, 'every watch to reach the last write');
    const reference = watches[0].events;
    for (const w of watches) {
      expect(w.events, 'the same stream on every node').toEqual(reference);
      w.close();
    }
    for (let i = 1; i < reference.length; i++) expect(reference[i].rev).toBeGreaterThan(reference[i - 1].rev);
    expect(new Map(reference.map((e) => [e.key, e.rev]))).toEqual(acked);
  });

  it('reads on every node see a write acknowledged by another node at once', async () => {
    for (let i = 0; i < 30; i++) {
      const writer = clients[i % count];
      const reader = clients[(i + 1) % count];
      const key = `/registry/raw/${i}`;
      const put = await writer.kv.put({ key: b(key), value: b(`x${i}`) });
      const got = await reader.kv.range({ key: b(key) });
      expect(got.kvs.map((kv: any) => kv.value.toString())).toEqual([`x${i}`]);
      expect(got.header.revision).toBeGreaterThanOrEqual(put.header.revision);
    }
  });

  it('list on one node, then watch from its revision + 1 while another node writes: nothing missed or repeated', async () => {
    const writer = clients[count - 1];
    const lister = clients[0];
    let stop = false;
    const written = new Map<string, number>();
    const writing = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `/registry/lw/${i % 2 ? 'crds' : 'pods'}-${i}`;
        const res = await writer.kv.put({ key: b(key.replace('/registry/lw/crds', '/registry/crds/lw')), value: b('v') });
        written.set(key.replace('/registry/lw/crds', '/registry/crds/lw'), res.header.revision);
      }
    })();
    await until(() => written.size > 30, 'writes before the list');
    const list = await lister.kv.range({ key: b('/registry/'), range_end: end('/registry/') });
    const listed = new Set(list.kvs.map((kv: any) => kv.key.toString()));
    const w = await watch(lister, '/registry/', list.header.revision + 1);
    await until(() => written.size > 80, 'writes after the list');
    stop = true;
    await writing;
    const last = Math.max(...written.values());
    await until(() => (w.events.at(-1)?.rev ?? 0) >= last, 'the watch to reach the last write');
    w.close();
    const watched = w.events.map((e) => e.key);
    expect(new Set(watched).size, 'no event repeated').toBe(watched.length);
    for (const [key, rev] of written) {
      const inList = listed.has(key);
      const inWatch = watched.includes(key);
      expect(inList !== inWatch, `${key} (rev ${rev}) is in exactly one of list and watch`).toBe(true);
      expect(inList, `${key}: listed iff written at or before the list`).toBe(rev <= list.header.revision);
    }
  });
});
