// Faults with several nodes over shared leaves and Redis: a node SIGKILLed mid-write (its
// pending revision is fenced within the deadline; nothing acknowledged is lost; the others go
// on), and Redis restarted empty mid-load (revisions never go backwards; writes resume by
// themselves). Watches must never skip or repeat an event.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';
import { PG_URL } from '../support/sql-backends.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const b = (s: string) => Buffer.from(s);
const end = (p: string) => {
  const e = b(p);
  e[e.length - 1]++;
  return e;
};

/** A watch over the prefix; resolves once the server confirmed it (writes after that are seen). */
async function watchAll(client: EtcdClient, prefix: string) {
  const events: Array<{ key: string; rev: number }> = [];
  const stream = client.watch();
  const created = new Promise<void>((resolve) => {
    stream.on('data', (res: any) => {
      if (res.created) resolve();
      for (const e of res.events ?? []) events.push({ key: e.kv.key.toString(), rev: e.kv.mod_revision });
    });
  });
  stream.on('error', () => undefined);
  stream.write({ create_request: { key: b(prefix), range_end: end(prefix) } });
  await created;
  return { events, close: () => stream.cancel() };
}

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A writer loop recording acknowledged puts (key -> revision) and every key it tried. */
function writer(client: EtcdClient, prefix: string, acked: Map<string, number>, attempted: Set<string>, errors: grpc.ServiceError[]) {
  let stop = false;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const key = `${prefix}${i}`;
      attempted.add(key);
      try {
        acked.set(key, (await client.kv.put({ key: b(key), value: b(`v${i}`) })).header.revision);
      } catch (err) {
        errors.push(err as grpc.ServiceError);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return { stop: async () => { stop = true; await done; } };
}

function expectExactStream(events: Array<{ key: string; rev: number }>, acked: Map<string, number>, attempted: Set<string>): void {
  for (let i = 1; i < events.length; i++) expect(events[i].rev, `event ${i}`).toBeGreaterThan(events[i - 1].rev);
  const seen = new Map(events.map((e) => [e.key, e.rev]));
  expect(seen.size, 'no event repeated').toBe(events.length);
  for (const [key, rev] of acked) expect(seen.get(key), `event of acknowledged ${key}`).toBe(rev);
  for (const key of seen.keys()) expect(attempted.has(key), `${key} was written by the test`).toBe(true);
}

describe('multi-node faults', () => {
  let cluster: Cluster | undefined;
  let clients: EtcdClient[] = [];
  afterEach(async () => {
    for (const c of clients) c.close();
    clients = [];
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a node SIGKILLed mid-write: its revision is fenced within the deadline, nothing acknowledged is lost', async () => {
    cluster = await startCluster({ nodes: 2, leaves: { pg: 'postgres' }, args: ['--revision-deadline', '1s'] });
    clients = cluster.nodes.map((n) => connectEtcd(n.endpoint));
    const [a, survivor] = clients;
    const watch = await watchAll(survivor, '/f/');
    const acked = new Map<string, number>();
    const attempted = new Set<string>();
    const errorsA: grpc.ServiceError[] = [];
    const errorsB: grpc.ServiceError[] = [];
    const writersA = Array.from({ length: 8 }, (_, w) => writer(a, `/f/a${w}/`, acked, attempted, errorsA));
    const writersB = Array.from({ length: 4 }, (_, w) => writer(survivor, `/f/b${w}/`, acked, attempted, errorsB));
    await until(() => acked.size > 300, 'load before the kill');
    await cluster.nodes[0].kill();
    const ackedAtKill = acked.size;
    await until(() => acked.size > ackedAtKill + 200, 'the surviving node to keep acknowledging writes');
    for (const w of [...writersA, ...writersB]) await w.stop();
    expect(errorsB, 'the surviving node never failed a write').toEqual([]);

    const last = Math.max(...acked.values());
    await until(() => (watch.events.at(-1)?.rev ?? 0) >= last, 'the watch to reach the last acknowledged write');
    watch.close();
    expectExactStream(watch.events, acked, attempted);
    const stored = await survivor.kv.range({ key: b('/f/'), range_end: end('/f/') });
    const byKey = new Map(stored.kvs.map((kv: any) => [kv.key.toString(), kv.mod_revision]));
    for (const [key, rev] of acked) expect(byKey.get(key), key).toBe(rev);

    // The killed node comes back and sees the same world.
    const back = connectEtcd((await cluster.restart(0)).endpoint);
    clients.push(back);
    // (grpc-js shares the subchannel with the old client, which may still be backing off.)
    let again: any;
    for (let i = 0; i < 100 && again === undefined; i++) {
      again = await back.kv.range({ key: b('/f/'), range_end: end('/f/'), count_only: true }).catch(() => undefined);
      if (again === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    expect(again?.count).toBe(stored.count);
  });

  it('one leaf database down: its keys fail UNAVAILABLE on every node, the other leaf and its watches flow, nothing lost after it returns', async () => {
    const proxy: TcpProxy = await startTcpProxy(Number(new URL(PG_URL).port || 5432));
    try {
      cluster = await startCluster({
        nodes: 2,
        leaves: { my: 'mysql', pg: 'postgres' },
        routes: ['  - { prefix: /o/pg/, to: pg }'],
        urls: { pg: PG_URL.replace(/:\d+\//, `:${proxy.port}/`) },
      });
      clients = cluster.nodes.map((n) => connectEtcd(n.endpoint));
      const all = await Promise.all(clients.map((c) => watchAll(c, '/o/')));
      const liveOnly = await watchAll(clients[1], '/o/my/');
      const acked = new Map<string, number>();
      const attempted = new Set<string>();
      const pgErrors: grpc.ServiceError[] = [];
      const myErrors: grpc.ServiceError[] = [];
      const writers = clients.flatMap((c, n) => [writer(c, `/o/pg/n${n}/`, acked, attempted, pgErrors), writer(c, `/o/my/n${n}/`, acked, attempted, myErrors)]);
      await until(() => acked.size > 200, 'load before the outage');
      proxy.down();
      const liveBefore = liveOnly.events.length;
      const myBefore = [...acked.keys()].filter((k) => k.startsWith('/o/my/')).length;
      await until(() => pgErrors.length > 5 && [...acked.keys()].filter((k) => k.startsWith('/o/my/')).length > myBefore + 100, 'the live leaf to keep taking writes');
      await until(() => liveOnly.events.length > liveBefore + 100, 'the live leaf watch to keep flowing');
      proxy.up();
      const pgBefore = [...acked.keys()].filter((k) => k.startsWith('/o/pg/')).length;
      await until(() => [...acked.keys()].filter((k) => k.startsWith('/o/pg/')).length > pgBefore + 50, 'pg writes to resume by themselves');
      for (const w of writers) await w.stop();
      expect(myErrors, 'the live leaf never failed a write').toEqual([]);
      for (const e of pgErrors) {
        expect(e.code, e.details).toBe(grpc.status.UNAVAILABLE);
      }
      // The watches over both leaves stalled while PostgreSQL was down; now they catch up exactly.
      const last = Math.max(...acked.values());
      for (const w of all) {
        await until(() => (w.events.at(-1)?.rev ?? 0) >= last, 'every watch to reach the last write');
        w.close();
        expectExactStream(w.events, acked, attempted);
      }
      liveOnly.close();
    } finally {
      proxy.up();
      await proxy.close();
    }
  });

  it('Redis restarted empty mid-load: revisions never go backwards and writes resume by themselves', async () => {
    cluster = await startCluster({ nodes: 2, leaves: { pg: 'postgres', my: 'mysql' }, routes: ['  - { prefix: /r/my/, to: my }'] });
    clients = cluster.nodes.map((n) => connectEtcd(n.endpoint));
    const watches = await Promise.all(clients.map((c) => watchAll(c, '/r/')));
    const acked = new Map<string, number>();
    const attempted = new Set<string>();
    const errors: grpc.ServiceError[] = [];
    const writers = clients.flatMap((c, n) => [writer(c, `/r/pg/n${n}/`, acked, attempted, errors), writer(c, `/r/my/n${n}/`, acked, attempted, errors)]);
    await until(() => acked.size > 200, 'load before the wipe');
    const before = Math.max(...acked.values());
    const wiped = await cluster.wipeRedis();
    expect(wiped).toBeGreaterThan(0);
    const ackedAtWipe = acked.size;
    await until(() => acked.size > ackedAtWipe + 200, 'writes to resume by themselves');
    for (const w of writers) await w.stop();
    for (const e of errors) expect(e.code, e.details).toBe(grpc.status.UNAVAILABLE);
    const after = [...acked.entries()].filter(([, rev]) => rev > before);
    expect(after.length).toBeGreaterThan(150);
    // Nothing acknowledged after the wipe got a revision at or below one acknowledged before it.
    const lateKeys = [...acked.keys()].slice(ackedAtWipe);
    for (const key of lateKeys) expect(acked.get(key)!, key).toBeGreaterThan(before);

    const last = Math.max(...acked.values());
    for (const w of watches) {
      await until(() => (w.events.at(-1)?.rev ?? 0) >= last, 'every watch to reach the last write');
      w.close();
      expectExactStream(w.events, acked, attempted);
    }
  });
});
