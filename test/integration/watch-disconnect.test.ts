// Watch streams that go away: a client vanishing mid-stream, and the node shutting down.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, test } from 'vitest';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';
import { metricSum } from './helpers/metrics.ts';
import { startNode, target, watchersMetric, type TestNode } from './helpers/node.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { within, waitFor } from './helpers/wait.ts';
import { openWatch, prefixEnd } from './helpers/watch-stream.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function nodeWithClient(): Promise<{ node: TestNode; client: EtcdClient }> {
  const node = await startNode();
  cleanup.push(() => node.destroy());
  const client = connectEtcd(node.endpoint);
  cleanup.push(() => client.close());
  return { node, client };
}

function connectVia(proxy: TcpProxy): EtcdClient {
  const c = connectEtcd(`127.0.0.1:${proxy.port}`);
  cleanup.push(() => c.close());
  return c;
}

const watchers = (node: TestNode) => metricSum(node.httpPort, watchersMetric);

/** Puts keys under `prefix` until stopped; every put must succeed. */
function writer(client: EtcdClient, prefix: string) {
  let stop = false;
  let n = 0;
  const done = (async () => {
    while (!stop) {
      await client.kv.put({ key: Buffer.from(`${prefix}${n % 50}`), value: Buffer.from(String(n)) });
      n++;
    }
  })();
  return { count: () => n, stop: async () => { stop = true; await done; } };
}

describe('a client vanishing mid-stream', () => {
  test('abrupt TCP loss: its watchers are released, other clients and writes keep working', async () => {
    const { node, client: other } = await nodeWithClient();
    const proxy = await startTcpProxy(node.port);
    cleanup.push(() => proxy.close());

    // A bystander watching the same prefix on its own connection.
    const bystander = openWatch(other);
    const [byId] = await bystander.create({ key: Buffer.from('/wd/tcp/'), range_end: prefixEnd('/wd/tcp/') });

    // The doomed client: five watches on one stream, plus a second stream, all through the proxy.
    const doomed = connectVia(proxy);
    const s1 = openWatch(doomed);
    await s1.create(
      ...Array.from({ length: 5 }, (_, i) => ({ key: Buffer.from(`/wd/tcp/`), range_end: prefixEnd('/wd/tcp/'), prev_kv: i % 2 === 0 })),
    );
    const s2 = openWatch(doomed);
    await s2.create({ key: Buffer.from('/wd/tcp/0') });
    expect(await waitFor(async () => (await watchers(node)) === 7, 'watchers == 7')).toBe(true);

    // Events are flowing to everyone when the connection dies.
    const w = writer(other, '/wd/tcp/');
    await s1.until(() => s1.events().length >= 50, 'events on the doomed stream');
    await bystander.until(() => bystander.events().length >= 10, 'events on the bystander');
    proxy.cutAll();

    const st = await within(s1.ended, 10_000, 'doomed stream ends on the client side');
    expect(st.code).toBe(grpc.status.UNAVAILABLE);
    await waitFor(async () => (await watchers(node)) === 1, `${watchersMetric} back to 1 (the bystander)`, 10_000);

    // The node still serves: writes keep succeeding, the bystander keeps receiving, new clients work.
    const before = w.count();
    await waitFor(() => w.count() >= before + 20, 'writes after the disconnect');
    await w.stop();
    const last = await other.kv.put({ key: Buffer.from('/wd/tcp/last'), value: Buffer.from('L') });
    await bystander.until(
      () => bystander.events().some((e) => e.kv.key.toString() === '/wd/tcp/last' && e.kv.mod_revision === last.header.revision),
      'bystander sees a put made after the disconnect',
    );
    // No gaps in what the bystander saw: revisions strictly increase by one per put.
    const revs = bystander.events().map((e) => e.kv.mod_revision);
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBe(revs[i - 1] + 1);

    const fresh = connectEtcd(node.endpoint);
    cleanup.push(() => fresh.close());
    const got = await fresh.kv.range({ key: Buffer.from('/wd/tcp/last') });
    expect(got.kvs[0].value.toString()).toBe('L');

    // Cancelling the bystander's watch brings the count to zero.
    bystander.call.write({ cancel_request: { watch_id: byId } });
    await bystander.until((rs) => rs.some((r) => r.canceled && r.watch_id === byId), 'cancel confirmed');
    await waitFor(async () => (await watchers(node)) === 0, `${watchersMetric} back to 0`, 10_000);
    bystander.call.end();
  });

  test('connection cut while the node is sending a large replay: released, node keeps serving', async () => {
    const { node, client } = await nodeWithClient();
    // The doomed client gets the first 256 KiB; then the node's sends to it stall, mid-replay.
    const proxy = await startTcpProxy(node.port, { stallAfterBytes: 256 * 1024 });
    cleanup.push(() => proxy.close());
    // ~4 MiB of history: 40 txns of 100 puts with 1 KiB values.
    const value = Buffer.alloc(1024, 'r');
    let firstRev = 0;
    for (let t = 0; t < 40; t++) {
      const success = Array.from({ length: 100 }, (_, i) => ({ request_put: { key: Buffer.from(`/wd/replay/${t}/${i}`), value } }));
      const r = await client.kv.txn({ compare: [], success, failure: [] });
      firstRev ||= r.header.revision;
    }
    const doomed = connectVia(proxy);
    const s = openWatch(doomed);
    s.call.write({ create_request: { key: Buffer.from('/wd/replay/'), range_end: prefixEnd('/wd/replay/'), start_revision: firstRev, prev_kv: true } });
    await s.until((rs) => rs.some((r) => r.created), 'watch created');
    // The node had more than 256 KiB of replay to send: its sends to this client now back up.
    await waitFor(() => proxy.stalled() === 1, 'the replay to stall at the proxy');
    expect(await watchers(node)).toBe(1);
    proxy.cutAll();
    expect(s.events().length).toBeLessThan(4000); // cut mid-replay
    await within(s.ended, 10_000, 'doomed stream ends');
    await waitFor(async () => (await watchers(node)) === 0, `${watchersMetric} back to 0`, 10_000);

    // The node still serves a full replay to a healthy client.
    const ok = openWatch(client);
    ok.call.write({ create_request: { key: Buffer.from('/wd/replay/'), range_end: prefixEnd('/wd/replay/'), start_revision: firstRev } });
    await ok.until(() => ok.events().length >= 4000, 'full replay to a healthy client', 20_000);
    expect(new Set(ok.events().map((e) => e.kv.key.toString())).size).toBe(4000);
    ok.call.cancel();
  });

  test('stream cancelled by the client (RST_STREAM) and channel closed: watchers released', async () => {
    const { node, client } = await nodeWithClient();
    const a = connectEtcd(node.endpoint);
    const sa = openWatch(a);
    await sa.create(...[1, 2, 3].map((i) => ({ key: Buffer.from(`/wd/rst/${i}`) })));
    const b = connectEtcd(node.endpoint);
    const sb = openWatch(b);
    await sb.create({ key: Buffer.from('/wd/rst/'), range_end: prefixEnd('/wd/rst/') }, { key: Buffer.from('/wd/rst/1') });
    expect(await waitFor(async () => (await watchers(node)) === 5, 'watchers == 5')).toBe(true);

    const w = writer(client, '/wd/rst/');
    await sa.until(() => sa.events().length >= 3, 'events on stream a');
    sa.call.cancel();
    expect((await within(sa.ended, 5000, 'cancelled stream ends')).code).toBe(grpc.status.CANCELLED);
    await waitFor(async () => (await watchers(node)) === 2, `${watchersMetric} == 2 after the cancel`, 10_000);

    await sb.until(() => sb.events().length >= 3, 'events on stream b');
    b.close(); // closing the channel with a stream still open
    sb.call.cancel();
    await waitFor(async () => (await watchers(node)) === 0, `${watchersMetric} back to 0`, 10_000);

    const before = w.count();
    await waitFor(() => w.count() >= before + 20, 'writes keep working');
    await w.stop();
    a.close();
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM with open watches: streams end with UNAVAILABLE from the server, exit code 0', async () => {
    const node = await startNode();
    cleanup.push(() => node.destroy());
    const client = connectEtcd(node.endpoint);
    cleanup.push(() => client.close());
    const s = openWatch(client);
    await s.create({ key: Buffer.from('/wd/term/'), range_end: prefixEnd('/wd/term/') }, { key: Buffer.from('/wd/term/x'), progress_notify: true });
    const put = await client.kv.put({ key: Buffer.from('/wd/term/a'), value: Buffer.from('1') });
    await s.until(() => s.events().some((e) => e.kv.mod_revision === put.header.revision), 'event before shutdown');
    // A watch with a pending lease keep-alive stream too.
    const ka = client.lease.keepAlive();
    ka.on('error', () => {});
    const kaEnded = new Promise<grpc.StatusObject>((r) => ka.on('status', r));
    const lease = await client.lease.grant({ TTL: 60 });
    ka.write({ ID: lease.ID });
    await new Promise<void>((r) => ka.once('data', () => r()));

    const code = await within(node.stop(), 15_000, 'node exits after SIGTERM with open streams');
    const st = await within(s.ended, 5000, 'watch stream ends');
    const kst = await within(kaEnded, 5000, 'keep-alive stream ends');
    if (target === 'etcd-tree') {
      expect(code, node.output()).toBe(0);
      // clientv3 retries a watch only on Unavailable (or Internal): an OK end of stream is
      // io.EOF on its side, a halting error that ends the user's watch instead of failing over.
      // The status must come from the server (trailers), not be a transport error.
      expect({ code: st.code, details: st.details }).toMatchObject({ code: grpc.status.UNAVAILABLE });
      expect(st.details).not.toBe('Connection dropped');
      expect(kst.code).toBe(grpc.status.UNAVAILABLE);
      expect(node.output()).not.toMatch(/"level":(?:50|60|"error"|"fatal")|Uncaught|unhandled/i);
    } else {
      expect(st.code).toBe(grpc.status.UNAVAILABLE);
    }
  });

  test('SIGTERM finishes in-flight writes: every acknowledged put is there after restart', async () => {
    const node = await startNode();
    cleanup.push(() => node.destroy());
    const client = connectEtcd(node.endpoint);
    cleanup.push(() => client.close());
    const acked: Array<[string, number]> = [];
    let stopping = false;
    let stopped: Promise<number | null> | undefined;
    const worker = async (w: number) => {
      for (let i = 0; ; i++) {
        const key = `/wd/inflight/${w}/${i}`;
        try {
          const r = await client.kv.put({ key: Buffer.from(key), value: Buffer.from(key) });
          acked.push([key, r.header.revision]);
        } catch (err: any) {
          // Refused or cut off by the shutdown: must be a clean gRPC status, not a hang.
          expect([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]).toContain(err.code);
          return;
        }
        if (acked.length >= 100 && !stopping) { stopping = true; stopped = node.stop(); }
      }
    };
    await within(Promise.all(Array.from({ length: 8 }, (_, w) => worker(w))), 20_000, 'writers stop after SIGTERM');
    const code = await within(stopped!, 15_000, 'exit');
    if (target === 'etcd-tree') expect(code, node.output()).toBe(0);
    client.close();

    const again = await node.restart();
    cleanup.push(() => again.destroy());
    const c2 = connectEtcd(again.endpoint);
    cleanup.push(() => c2.close());
    const all = await c2.kv.range({ key: Buffer.from('/wd/inflight/'), range_end: prefixEnd('/wd/inflight/') });
    const have = new Map(all.kvs.map((kv: any) => [kv.key.toString(), kv.mod_revision]));
    const lost = acked.filter(([k, rev]) => have.get(k) !== rev);
    expect(lost, `${lost.length} of ${acked.length} acknowledged puts lost or changed`).toEqual([]);
  });
});
