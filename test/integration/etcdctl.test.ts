// The real etcdctl (3.4, API v3) against a node: its output must look exactly as against etcd.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ctlOk, etcdctl, spawnCtl, type CtlProcess } from './helpers/etcdctl.ts';
import { startNode, type TestNode } from './helpers/node.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString();

let node: TestNode;
let ep: string;
const spawned: CtlProcess[] = [];

beforeAll(async () => {
  node = await startNode({ name: 'ctl-node' });
  ep = node.url;
});

afterAll(async () => {
  for (const p of spawned) await p.stop();
  await node?.destroy();
});

/** `etcdctl put -w json`; returns the revision of the write. */
async function put(key: string, value: string, ...extra: string[]): Promise<number> {
  const out = await ctlOk(ep, ['put', key, value, '-w', 'json', ...extra]);
  const rev = JSON.parse(out).header.revision;
  expect(rev).toBeGreaterThan(0);
  return rev;
}

function lines(out: string): string[] {
  return out.split('\n').filter((l) => l !== '');
}

/** Complete lines only: a long-running etcdctl's stdout may end mid-line. */
function completeLines(out: string): string[] {
  return lines(out.slice(0, out.lastIndexOf('\n') + 1));
}

describe('put / get / del', () => {
  test('put answers OK; get prints key and value lines; --prefix lists keys in order', async () => {
    expect(await ctlOk(ep, ['put', '/ctl/pg/b', 'v2'])).toBe('OK\n');
    expect(await ctlOk(ep, ['put', '/ctl/pg/a', 'v1'])).toBe('OK\n');
    expect(await ctlOk(ep, ['put', '/ctl/pg/c', 'v3'])).toBe('OK\n');
    expect(await ctlOk(ep, ['put', '/ctl/pgx', 'outside'])).toBe('OK\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/a'])).toBe('/ctl/pg/a\nv1\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/', '--prefix'])).toBe('/ctl/pg/a\nv1\n/ctl/pg/b\nv2\n/ctl/pg/c\nv3\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/', '--prefix', '--keys-only'])).toBe('/ctl/pg/a\n\n/ctl/pg/b\n\n/ctl/pg/c\n\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/', '--prefix', '--print-value-only'])).toBe('v1\nv2\nv3\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/', '--prefix', '-w', 'fields'])).toContain('"Count" : 3');
    // A range [key, range_end): b <= k < c.
    expect(await ctlOk(ep, ['get', '/ctl/pg/b', '/ctl/pg/c'])).toBe('/ctl/pg/b\nv2\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/', '--prefix', '--sort-by=KEY', '--order=DESCEND', '--print-value-only'])).toBe('v3\nv2\nv1\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/b', '--from-key', '--limit=2', '--keys-only'])).toBe('/ctl/pg/b\n\n/ctl/pg/c\n\n');
    expect(await ctlOk(ep, ['get', '/ctl/pg/a', '--consistency=s'])).toBe('/ctl/pg/a\nv1\n');
    // A missing key prints nothing and still exits 0.
    expect(await ctlOk(ep, ['get', '/ctl/pg/missing'])).toBe('');
  });

  test('get -w json carries revisions, version, count and more', async () => {
    const r1 = await put('/ctl/js/k', 'one');
    const r2 = await put('/ctl/js/k', 'two');
    const r3 = await put('/ctl/js/l', 'three');
    expect(r2).toBeGreaterThan(r1);
    expect(r3).toBeGreaterThan(r2);

    const one = JSON.parse(await ctlOk(ep, ['get', '/ctl/js/k', '-w', 'json']));
    expect(one.header.revision).toBeGreaterThanOrEqual(r3);
    expect(one.count).toBe(1);
    expect(one.kvs).toEqual([{ key: b64('/ctl/js/k'), create_revision: r1, mod_revision: r2, version: 2, value: b64('two') }]);

    const all = JSON.parse(await ctlOk(ep, ['get', '/ctl/js/', '--prefix', '--limit=1', '-w', 'json']));
    expect(all.count).toBe(2);
    expect(all.more).toBe(true);
    expect(all.kvs.map((kv: any) => unb64(kv.key))).toEqual(['/ctl/js/k']);
  });

  test('get --rev reads history', async () => {
    const r1 = await put('/ctl/rev/k', 'first');
    const r2 = await put('/ctl/rev/k', 'second');
    await ctlOk(ep, ['del', '/ctl/rev/k']);
    expect(await ctlOk(ep, ['get', '/ctl/rev/k', `--rev=${r1}`])).toBe('/ctl/rev/k\nfirst\n');
    expect(await ctlOk(ep, ['get', '/ctl/rev/k', `--rev=${r2}`])).toBe('/ctl/rev/k\nsecond\n');
    expect(await ctlOk(ep, ['get', '/ctl/rev/k'])).toBe('');
    const before = JSON.parse(await ctlOk(ep, ['get', '/ctl/rev/k', `--rev=${r1 - 1}`, '-w', 'json']));
    expect(before.kvs ?? []).toEqual([]);
    expect(before.header.revision).toBeGreaterThan(r2);
    // A future revision is an error with etcd's message.
    const future = await etcdctl(ep, ['get', '/ctl/rev/k', `--rev=${r2 + 1_000_000}`]);
    expect(future.code).not.toBe(0);
    expect(future.stderr).toContain('etcdserver: mvcc: required revision is a future revision');
  });

  test('put --prev-kv prints the previous pair', async () => {
    await put('/ctl/prev/k', 'old');
    expect(await ctlOk(ep, ['put', '/ctl/prev/k', 'new', '--prev-kv'])).toBe('OK\n/ctl/prev/k\nold\n');
  });

  test('del --prefix prints the count and removes only the prefix', async () => {
    for (const k of ['a', 'b', 'c']) await put(`/ctl/del/${k}`, k);
    await put('/ctl/delx', 'keep');
    expect(await ctlOk(ep, ['del', '/ctl/del/', '--prefix'])).toBe('3\n');
    expect(await ctlOk(ep, ['get', '/ctl/del/', '--prefix'])).toBe('');
    expect(await ctlOk(ep, ['get', '/ctl/delx'])).toBe('/ctl/delx\nkeep\n');
    expect(await ctlOk(ep, ['del', '/ctl/del/', '--prefix'])).toBe('0\n');
    expect(await ctlOk(ep, ['del', '/ctl/delx', '--prev-kv'])).toBe('1\n/ctl/delx\nkeep\n');
  });
});

describe('txn -i', () => {
  test('compares true: success ops run, output says SUCCESS with each response', async () => {
    const r = await put('/ctl/txn/k1', 'a');
    const input = [
      'value("/ctl/txn/k1") = "a"',
      `mod("/ctl/txn/k1") = "${r}"`,
      'version("/ctl/txn/k1") = "1"',
      `create("/ctl/txn/k1") = "${r}"`,
      '',
      'put /ctl/txn/k2 yes',
      'get /ctl/txn/k1',
      '',
      'put /ctl/txn/k2 no',
      '',
      '',
    ].join('\n');
    const out = await ctlOk(ep, ['txn', '-i'], { input });
    const body = out.slice(out.indexOf('failure requests (get, put, del):\n') + 'failure requests (get, put, del):\n'.length);
    expect(body).toBe('SUCCESS\n\nOK\n\n/ctl/txn/k1\na\n');
    expect(await ctlOk(ep, ['get', '/ctl/txn/k2', '--print-value-only'])).toBe('yes\n');
  });

  test('compares false: failure ops run, output says FAILURE', async () => {
    await put('/ctl/txn/f1', 'a');
    const input = [
      'value("/ctl/txn/f1") = "zz"',
      'mod("/ctl/txn/f1") > "0"',
      '',
      'put /ctl/txn/f2 yes',
      '',
      'put /ctl/txn/f2 no',
      'del /ctl/txn/f1',
      '',
      '',
    ].join('\n');
    const out = await ctlOk(ep, ['txn', '-i'], { input });
    expect(out.endsWith('FAILURE\n\nOK\n\n1\n')).toBe(true);
    expect(await ctlOk(ep, ['get', '/ctl/txn/f2', '--print-value-only'])).toBe('no\n');
    expect(await ctlOk(ep, ['get', '/ctl/txn/f1'])).toBe('');
  });

  test('txn -w json: one revision for all writes, succeeded flag, responses', async () => {
    const before = await put('/ctl/txn/j0', 'x');
    const input = ['version("/ctl/txn/j0") > "0"', '', 'put /ctl/txn/j1 1', 'put /ctl/txn/j2 2', 'get /ctl/txn/j', '', '', ''].join('\n');
    const out = await ctlOk(ep, ['txn', '-i', '-w', 'json'], { input });
    const res = JSON.parse(out.slice(out.indexOf('{')));
    expect(res.succeeded).toBe(true);
    expect(res.header.revision).toBe(before + 1);
    expect(res.responses).toHaveLength(3);
    expect(res.responses[0].Response.ResponsePut).toBeDefined();
    expect(res.responses[1].Response.ResponsePut).toBeDefined();
    const range = res.responses[2].Response.ResponseRange;
    expect(range.kvs ?? []).toEqual([]); // exact key /ctl/txn/j does not exist
    expect(range.count ?? 0).toBe(0);
    const j1 = JSON.parse(await ctlOk(ep, ['get', '/ctl/txn/j1', '-w', 'json']));
    const j2 = JSON.parse(await ctlOk(ep, ['get', '/ctl/txn/j2', '-w', 'json']));
    expect(j1.kvs[0].mod_revision).toBe(before + 1);
    expect(j2.kvs[0].mod_revision).toBe(before + 1);
  });
});

describe('watch', () => {
  test('watch --prefix prints live events in order', async () => {
    const w = spawnCtl(ep, ['watch', '--prefix', '/ctl/w/']);
    spawned.push(w);
    // The watch is live once an event put after spawning shows up; keep probing until then.
    let probes = 0;
    const probeTimer = setInterval(() => { void etcdctl(ep, ['put', '/ctl/w/probe', String(++probes)]); }, 200);
    try {
      await w.waitForStdout((o) => o.includes('/ctl/w/probe\n'));
    } finally {
      clearInterval(probeTimer);
    }
    // Wait for stragglers of the probe loop to land, then start from a clean mark.
    await ctlOk(ep, ['put', '/ctl/w/mark', 'm']);
    await w.waitForStdout((o) => o.includes('PUT\n/ctl/w/mark\nm\n'));
    const start = w.stdout().length;
    await ctlOk(ep, ['put', '/ctl/w/a', '1']);
    await ctlOk(ep, ['put', '/ctl/w/b', '2']);
    await ctlOk(ep, ['put', '/ctl/wx', 'not-in-prefix']);
    await ctlOk(ep, ['del', '/ctl/w/a']);
    await ctlOk(ep, ['put', '/ctl/w/end', 'e']);
    const out = await w.waitForStdout((o) => o.includes('/ctl/w/end\ne\n'));
    // Probe puts may still be in flight; drop them.
    const events = out.slice(start).split(/(?=^(?:PUT|DELETE)$)/m).filter((e) => !e.includes('/ctl/w/probe'));
    expect(events.join('')).toBe('PUT\n/ctl/w/a\n1\nPUT\n/ctl/w/b\n2\nDELETE\n/ctl/w/a\n\nPUT\n/ctl/w/end\ne\n');
    await w.stop();
  });

  test('watch --rev replays history with --prev-kv; -w json has revisions', async () => {
    const r1 = await put('/ctl/wr/k', 'v1');
    const r2 = await put('/ctl/wr/k', 'v2');
    await ctlOk(ep, ['del', '/ctl/wr/k']);
    const w = spawnCtl(ep, ['watch', '/ctl/wr/k', `--rev=${r1}`, '--prev-kv']);
    spawned.push(w);
    await w.waitForStdout((o) => o.includes('DELETE\n/ctl/wr/k\nv2\n/ctl/wr/k\n\n'));
    expect(w.stdout()).toBe(
      'PUT\n/ctl/wr/k\nv1\n' +
      // With --prev-kv etcdctl prints the previous pair, then the new one.
      'PUT\n/ctl/wr/k\nv1\n/ctl/wr/k\nv2\n' +
      'DELETE\n/ctl/wr/k\nv2\n/ctl/wr/k\n\n',
    );
    await w.stop();

    const j = spawnCtl(ep, ['watch', '/ctl/wr/k', `--rev=${r1}`, '-w', 'json']);
    spawned.push(j);
    const events = (o: string) => completeLines(o).map((l) => JSON.parse(l)).flatMap((r: any) => r.Events ?? []);
    const jout = await j.waitForStdout((o) => events(o).length >= 3);
    const evs = events(jout);
    expect(evs.map((e: any) => [e.type ?? 0, unb64(e.kv.key), e.kv.mod_revision])).toEqual([
      [0, '/ctl/wr/k', r1],
      [0, '/ctl/wr/k', r2],
      [1, '/ctl/wr/k', r2 + 1],
    ]);
    expect(evs[1].kv).toMatchObject({ create_revision: r1, version: 2, value: b64('v2') });
    await j.stop();
  });
});

describe('lease', () => {
  test('grant, put --lease, keep-alive --once, timetolive --keys, list, revoke', async () => {
    const grant = await ctlOk(ep, ['lease', 'grant', '600']);
    const m = /^lease ([0-9a-f]+) granted with TTL\(600s\)\n$/.exec(grant);
    expect(m, grant).not.toBeNull();
    const id = m![1];

    expect(await ctlOk(ep, ['put', '/ctl/lease/a', 'x', `--lease=${id}`])).toBe('OK\n');
    expect(await ctlOk(ep, ['put', '/ctl/lease/b', 'y', `--lease=${id}`])).toBe('OK\n');
    // Exact lease id on the key, read from the text of -w json to avoid float rounding.
    const leaseField = /"lease":(\d+)/.exec(await ctlOk(ep, ['get', '/ctl/lease/a', '-w', 'json']));
    expect(leaseField).not.toBeNull();
    expect(BigInt(leaseField![1])).toBe(BigInt(`0x${id}`));

    expect(await ctlOk(ep, ['lease', 'keep-alive', '--once', id])).toBe(`lease ${id} keepalived with TTL(600)\n`);

    const ttl = await ctlOk(ep, ['lease', 'timetolive', '--keys', id]);
    const t = /^lease ([0-9a-f]+) granted with TTL\(600s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)\n$/.exec(ttl);
    expect(t, ttl).not.toBeNull();
    expect(t![1]).toBe(id);
    expect(Number(t![2])).toBeGreaterThan(590);
    expect(Number(t![2])).toBeLessThanOrEqual(600);
    expect(t![3].split(' ').sort()).toEqual(['/ctl/lease/a', '/ctl/lease/b']);

    const ttlJson = await ctlOk(ep, ['lease', 'timetolive', '--keys', id, '-w', 'json']);
    const tj = JSON.parse(ttlJson);
    expect(tj['granted-ttl']).toBe(600);
    expect(tj.ttl).toBeGreaterThan(590);
    expect(tj.keys.map(unb64).sort()).toEqual(['/ctl/lease/a', '/ctl/lease/b']);

    const list = await ctlOk(ep, ['lease', 'list']);
    expect(list).toMatch(/^found \d+ leases\n/);
    expect(lines(list).slice(1)).toContain(id);
    expect(Number(/^found (\d+) leases/.exec(list)![1])).toBe(lines(list).length - 1);

    expect(await ctlOk(ep, ['lease', 'revoke', id])).toBe(`lease ${id} revoked\n`);
    expect(await ctlOk(ep, ['get', '/ctl/lease/', '--prefix'])).toBe('');
    expect(await ctlOk(ep, ['lease', 'timetolive', id])).toBe(`lease ${id} already expired\n`);
    expect(lines(await ctlOk(ep, ['lease', 'list'])).slice(1)).not.toContain(id);

    const again = await etcdctl(ep, ['lease', 'revoke', id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('etcdserver: requested lease not found');
    const ka = await etcdctl(ep, ['lease', 'keep-alive', '--once', id]);
    expect(ka.code).not.toBe(0);
    expect(ka.stderr).toContain('etcdserver: requested lease not found');
  });

  test('put --ignore-value / --ignore-lease keep the current value / lease', async () => {
    const id = /^lease ([0-9a-f]+) granted/.exec(await ctlOk(ep, ['lease', 'grant', '600']))![1];
    await put('/ctl/ign/k', 'orig', `--lease=${id}`);
    // A plain put would drop the lease; --ignore-lease keeps it.
    expect(await ctlOk(ep, ['put', '/ctl/ign/k', 'new', '--ignore-lease'])).toBe('OK\n');
    expect(await ctlOk(ep, ['put', '/ctl/ign/k', '--ignore-value', `--lease=${id}`])).toBe('OK\n');
    const a = JSON.parse(await ctlOk(ep, ['get', '/ctl/ign/k', '-w', 'json']));
    expect(unb64(a.kvs[0].value)).toBe('new');
    expect(a.kvs[0].version).toBe(3);
    expect(await ctlOk(ep, ['lease', 'timetolive', '--keys', id])).toContain('attached keys([/ctl/ign/k])');
    // --ignore-value alone (lease 0) keeps the value and detaches the lease.
    expect(await ctlOk(ep, ['put', '/ctl/ign/k', '--ignore-value'])).toBe('OK\n');
    expect(await ctlOk(ep, ['get', '/ctl/ign/k', '--print-value-only'])).toBe('new\n');
    expect(await ctlOk(ep, ['lease', 'timetolive', '--keys', id])).toContain('attached keys([])');
    // Ignoring a value that does not exist is an error.
    const bad = await etcdctl(ep, ['put', '/ctl/ign/missing', '--ignore-value']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('etcdserver: key not found');
    await ctlOk(ep, ['lease', 'revoke', id]);
  });

  test('lease keep-alive (streaming) renews repeatedly', async () => {
    const id = /^lease ([0-9a-f]+) granted/.exec(await ctlOk(ep, ['lease', 'grant', '3']))![1];
    const ka = spawnCtl(ep, ['lease', 'keep-alive', id]);
    spawned.push(ka);
    // etcdctl sends a keep-alive every TTL/3 s; two answers prove the stream stays open.
    const out = await ka.waitForStdout((o) => (o.match(/keepalived with TTL\(3\)/g) ?? []).length >= 2, 10_000);
    for (const l of completeLines(out)) expect(l).toBe(`lease ${id} keepalived with TTL(3)`);
    await ka.stop();
    await ctlOk(ep, ['lease', 'revoke', id]);
  });

  test('an expiring lease deletes its keys with DELETE events', async () => {
    const grant = await ctlOk(ep, ['lease', 'grant', '2']);
    const id = /^lease ([0-9a-f]+) granted with TTL\(2s\)/.exec(grant)![1];
    const rev = await put('/ctl/expire/k', 'v', `--lease=${id}`);
    const w = spawnCtl(ep, ['watch', '/ctl/expire/k', `--rev=${rev}`]);
    spawned.push(w);
    const started = Date.now();
    const out = await w.waitForStdout((o) => o.includes('DELETE\n/ctl/expire/k\n\n'), 15_000);
    expect(out).toBe('PUT\n/ctl/expire/k\nv\nDELETE\n/ctl/expire/k\n\n');
    expect(Date.now() - started).toBeGreaterThan(500);
    expect(await ctlOk(ep, ['get', '/ctl/expire/k'])).toBe('');
    expect(await ctlOk(ep, ['lease', 'timetolive', id])).toBe(`lease ${id} already expired\n`);
    await w.stop();
  });
});

describe('cluster and maintenance', () => {
  test('endpoint status -w json reports a 3.5 version >= 3.5.13 and the current revision', async () => {
    const rev = await put('/ctl/status/k', 'v');
    // host:port form; the URL form is pinned by the next test.
    const out = JSON.parse(await ctlOk(node.endpoint, ['endpoint', 'status', '-w', 'json']));
    expect(out).toHaveLength(1);
    expect(out[0].Endpoint).toBe(node.endpoint);
    const st = out[0].Status;
    const v = /^3\.5\.(\d+)$/.exec(st.version);
    expect(v, st.version).not.toBeNull();
    expect(Number(v![1])).toBeGreaterThanOrEqual(13);
    expect(st.header.revision).toBeGreaterThanOrEqual(rev);
    expect(st.dbSize).toBeGreaterThan(0);
    expect(st.leader).toBeGreaterThan(0);
    expect(st.header.member_id).toBeGreaterThan(0);

    const table = await ctlOk(node.endpoint, ['endpoint', 'status', '-w', 'table']);
    expect(table).toContain(st.version);
    expect(table).toContain(node.endpoint);
  });

  // etcdctl 3.4 dials per-endpoint Maintenance calls (status, hashkv, defrag) with target
  // passthrough:///http://host:port, so the request's :authority is "http://host:port"; etcd
  // accepts it, and so must the node (src/etcd/authority-repair.ts).
  test('endpoint status with a scheme in --endpoints (:authority "http://host:port") is served', async () => {
    const r = await etcdctl(ep, ['endpoint', 'status', '-w', 'json']);
    expect(r.stderr).not.toContain('PROTOCOL_ERROR');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out[0].Endpoint).toBe(ep);
    expect(out[0].Status.version).toMatch(/^3\.5\.\d+$/);
  });

  test('endpoint health says healthy', async () => {
    const r = await etcdctl(ep, ['endpoint', 'health']);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`^${ep.replace(/[.:/]/g, '\\$&')} is healthy: successfully committed proposal: took = `, 'm'));
    const j = JSON.parse(await ctlOk(ep, ['endpoint', 'health', '-w', 'json']));
    expect(j).toEqual([expect.objectContaining({ endpoint: ep, health: true })]);
  });

  test('member list shows this node with its name and client URL', async () => {
    const text = await ctlOk(ep, ['member', 'list']);
    const rows = lines(text);
    expect(rows).toHaveLength(1);
    const cols = rows[0].split(', ');
    expect(cols[0]).toMatch(/^[0-9a-f]+$/);
    expect(cols[1]).toBe('started');
    expect(cols[2]).toBe('ctl-node');
    expect(cols[4]).toBe(ep);
    expect(cols[5]).toBe('false');

    const raw = await ctlOk(ep, ['member', 'list', '-w', 'json']);
    const j = JSON.parse(raw);
    expect(j.members).toHaveLength(1);
    expect(j.members[0].name).toBe('ctl-node');
    expect(j.members[0].clientURLs).toEqual([ep]);
    const idText = /"ID":(\d+)/.exec(raw)![1];
    // The answering member is the listed one, and (alone) it is the leader.
    expect(/"member_id":(\d+)/.exec(raw)![1]).toBe(idText);
    const status = await ctlOk(node.endpoint, ['endpoint', 'status', '-w', 'json']);
    expect(/"leader":(\d+)/.exec(status)![1]).toBe(idText);
    expect(BigInt(idText)).toBe(BigInt(`0x${cols[0]}`));
  });
});

describe('limits set by flags (--flag=value and --flag value forms)', () => {
  let lnode: TestNode;
  beforeAll(async () => { lnode = await startNode({ args: ['--max-txn-ops=4', '--max-request-bytes', '4096'] }); });
  afterAll(async () => { await lnode?.destroy(); });

  test('--max-txn-ops: a txn with more ops is refused with etcd\'s message', async () => {
    const ok = ['', 'put /ctl/lim/1 a', 'put /ctl/lim/2 b', 'put /ctl/lim/3 c', 'put /ctl/lim/4 d', '', '', ''].join('\n');
    expect(await ctlOk(lnode.url, ['txn', '-i'], { input: ok })).toContain('SUCCESS');
    const tooMany = ['', 'put /ctl/lim/1 a', 'put /ctl/lim/2 b', 'put /ctl/lim/3 c', 'put /ctl/lim/4 d', 'put /ctl/lim/5 e', '', '', ''].join('\n');
    const r = await etcdctl(lnode.url, ['txn', '-i'], { input: tooMany });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('etcdserver: too many operations in txn request');
    expect(await ctlOk(lnode.url, ['get', '/ctl/lim/5'])).toBe('');
  });

  test('--max-request-bytes: a larger put is refused with etcd\'s message', async () => {
    expect(await ctlOk(lnode.url, ['put', '/ctl/lim/small', 'x'.repeat(3000)])).toBe('OK\n');
    const r = await etcdctl(lnode.url, ['put', '/ctl/lim/big', 'x'.repeat(5000)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('etcdserver: request is too large');
    expect(await ctlOk(lnode.url, ['get', '/ctl/lim/big'])).toBe('');
  });
});

describe('compaction', () => {
  // Its own node: compaction is global and would break --rev reads of other tests.
  let cnode: TestNode;
  let cep: string;
  beforeAll(async () => { cnode = await startNode(); cep = cnode.url; });
  afterAll(async () => { await cnode?.destroy(); });

  test('compaction makes older revisions unreadable with etcd\'s error', async () => {
    const putRev = async (v: string) => JSON.parse(await ctlOk(cep, ['put', '/ctl/c/k', v, '-w', 'json'])).header.revision as number;
    const r1 = await putRev('1');
    const r2 = await putRev('2');
    const r3 = await putRev('3');
    expect(await ctlOk(cep, ['compaction', String(r2)])).toBe(`compacted revision ${r2}\n`);

    const old = await etcdctl(cep, ['get', '/ctl/c/k', `--rev=${r1}`]);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain('etcdserver: mvcc: required revision has been compacted');
    // The compaction revision itself stays readable.
    expect(await ctlOk(cep, ['get', '/ctl/c/k', `--rev=${r2}`])).toBe('/ctl/c/k\n2\n');
    expect(await ctlOk(cep, ['get', '/ctl/c/k', `--rev=${r3}`])).toBe('/ctl/c/k\n3\n');

    const again = await etcdctl(cep, ['compaction', String(r1)]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('etcdserver: mvcc: required revision has been compacted');

    const future = await etcdctl(cep, ['compaction', String(r3 + 1000)]);
    expect(future.code).not.toBe(0);
    expect(future.stderr).toContain('etcdserver: mvcc: required revision is a future revision');

    expect(await ctlOk(cep, ['compaction', '--physical', String(r3)])).toBe(`compacted revision ${r3}\n`);
    expect(await ctlOk(cep, ['get', '/ctl/c/k'])).toBe('/ctl/c/k\n3\n');

    // A watch from a compacted revision is cancelled with the compact revision.
    const w = await etcdctl(cep, ['watch', '/ctl/c/k', `--rev=${r1}`]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toContain('watch was canceled (etcdserver: mvcc: required revision has been compacted)');
    expect(w.stdout).toBe('');
  });
});
