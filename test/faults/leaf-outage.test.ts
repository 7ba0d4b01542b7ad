// A leaf database goes down mid-load on a mixed topology (SQLite + PostgreSQL + MariaDB): its
// keys answer UNAVAILABLE naming the leaf, the other leaves keep serving and their watches keep
// flowing, and once it is back nothing acknowledged is lost and no watch skipped or repeated
// an event. PostgreSQL is reached through a TCP proxy that plays the outage, so the shared
// server stays up for the other tests.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';
import { PG_URL, startSqlNode, type SqlNode } from '../support/sql-backends.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const b = (s: string) => Buffer.from(s);
const end = (p: string) => {
  const e = b(p);
  e[e.length - 1]++;
  return e;
};
const LEAF_PREFIX = { local: '/registry/pods/', pg: '/registry/events/', my: '/registry/crds/' } as const;
type Leaf = keyof typeof LEAF_PREFIX;

interface Event {
  key: string;
  rev: number;
  type: number;
}

/** Collects every event of one watch, checking the stream is strictly ordered as it goes. */
async function watchAll(client: EtcdClient, prefix: string): Promise<{ events: Event[]; stream: grpc.ClientDuplexStream<any, any>; lastRev: () => number }> {
  const events: Event[] = [];
  const stream = client.watch();
  // Resolves once the server confirmed the watch: every write after that is in its stream.
  const created = new Promise<void>((resolve) => {
    stream.on('data', (res: any) => {
      if (res.created) resolve();
      for (const e of res.events ?? []) events.push({ key: e.kv.key.toString(), rev: e.kv.mod_revision, type: e.type });
    });
  });
  stream.on('error', () => undefined);
  stream.write({ create_request: { key: b(prefix), range_end: end(prefix) } });
  await created;
  return { events, stream, lastRev: () => (events.length ? events[events.length - 1].rev : 0) };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a leaf database outage on a mixed topology', () => {
  let proxy: TcpProxy;
  let node: SqlNode;
  let client: EtcdClient;

  beforeAll(async () => {
    proxy = await startTcpProxy(Number(new URL(PG_URL).port || 5432));
    const pgUrl = PG_URL.replace(/:\d+\//, `:${proxy.port}/`);
    node = await startSqlNode({
      '00.yaml': [
        'backends:',
        '  local:',
        '    kind: sqlite',
        '    path: default.db',
        '  pg:',
        '    kind: postgres',
        `    url: ${pgUrl}`,
        `    table: tfault_${process.pid}`,
        '    statementTimeoutMs: 2000',
        '{{mysql:my}}',
        'routes:',
        '  - { prefix: "", to: local }',
        `  - { prefix: ${LEAF_PREFIX.pg}, to: pg }`,
        `  - { prefix: ${LEAF_PREFIX.my}, to: my }`,
        '',
      ].join('\n'),
    });
    client = connectEtcd(node.endpoint);
  });

  afterAll(async () => {
    client?.close();
    proxy?.up();
    await node?.destroyAll();
    await proxy?.close();
    // The pg leaf's tables were named outside startSqlNode's bookkeeping.
    const { dropTables } = await import('../support/sql-backends.ts');
    await dropTables('postgres', `tfault_${process.pid}`);
  });

  it('fails only the dead leaf, keeps the rest flowing, and loses nothing', async () => {
    const all = await watchAll(client, '/registry/');
    const crdsOnly = await watchAll(client, LEAF_PREFIX.my);
    const acked = new Map<string, number>(); // key -> revision
    const attempted = new Set<string>();
    const pgErrors: grpc.ServiceError[] = [];
    let phase: 'before' | 'outage' | 'after' = 'before';
    const okDuringOutage: Record<Leaf, number> = { local: 0, pg: 0, my: 0 };
    let stop = false;

    const writer = async (leaf: Leaf) => {
      for (let i = 0; !stop; i++) {
        const key = `${LEAF_PREFIX[leaf]}ns/${leaf}-${i}`;
        attempted.add(key);
        try {
          const res = await client.kv.put({ key: b(key), value: b(`v${i}`) });
          acked.set(key, res.header.revision);
          if (phase === 'outage') okDuringOutage[leaf]++;
        } catch (err) {
          if (leaf === 'pg') pgErrors.push(err as grpc.ServiceError);
          else throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const writers = (['local', 'pg', 'my'] as Leaf[]).map(writer);

    await until(() => acked.size > 150, 'some writes before the outage');
    const crdsBefore = crdsOnly.events.length;
    phase = 'outage';
    proxy.down();
    await until(() => okDuringOutage.my > 50 && okDuringOutage.local > 50 && pgErrors.length > 3, 'writes to the live leaves during the outage');
    // The watch of a live leaf kept delivering while PostgreSQL was down.
    await until(() => crdsOnly.events.length > crdsBefore + 50, 'crds watch events during the outage');
    phase = 'after';
    proxy.up();
    const pgAckedBefore = [...acked.keys()].filter((k) => k.startsWith(LEAF_PREFIX.pg)).length;
    await until(() => [...acked.keys()].filter((k) => k.startsWith(LEAF_PREFIX.pg)).length > pgAckedBefore + 20, 'pg writes to succeed again by themselves');
    stop = true;
    await Promise.all(writers);

    // Requests for the dead leaf failed as UNAVAILABLE, naming it.
    expect(pgErrors.length).toBeGreaterThan(0);
    for (const e of pgErrors) {
      expect(e.code).toBe(grpc.status.UNAVAILABLE);
      expect(e.details).toMatch(/leaf pg/);
    }

    // Nothing acknowledged is lost.
    const maxRev = Math.max(...acked.values());
    const stored = await client.kv.range({ key: b('/registry/'), range_end: end('/registry/') });
    const storedRev = new Map<string, number>(stored.kvs.map((kv: any) => [kv.key.toString(), kv.mod_revision]));
    for (const [key, rev] of acked) expect(storedRev.get(key), key).toBe(rev);

    // The merged watch over all three leaves: every acknowledged write once, in revision order,
    // nothing that was never attempted, no duplicates.
    await until(() => all.lastRev() >= maxRev, 'the merged watch to reach the last acknowledged write');
    const revs = all.events.map((e) => e.rev);
    for (let i = 1; i < revs.length; i++) expect(revs[i], `event ${i} after ${revs[i - 1]}`).toBeGreaterThan(revs[i - 1]);
    const seen = new Map(all.events.map((e) => [e.key, e.rev]));
    expect(seen.size).toBe(all.events.length);
    for (const [key, rev] of acked) expect(seen.get(key), `watch event for ${key}`).toBe(rev);
    for (const key of seen.keys()) expect(attempted.has(key), `${key} was written by the test`).toBe(true);
    all.stream.cancel();
    crdsOnly.stream.cancel();
  });
});
