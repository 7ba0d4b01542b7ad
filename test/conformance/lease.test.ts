// Lease: Grant (TTL and chosen-ID forms, minimum and maximum TTL, duplicate ID), Revoke (keys
// deleted with delete events), the KeepAlive stream, TimeToLive (with keys, unknown lease) and
// Leases. Expiry is covered by kube-patterns.test.ts (Events with a lease).
import * as grpc from '@grpc/grpc-js';
import { describeConformance, type ScenarioTarget } from './harness.ts';
import { b, prefixEnd } from './keys.ts';
import { WAIT_MS } from './watch-stream.ts';

/** Chosen lease IDs: unique in this file, below 2^53, far from small sequential IDs. */
const CHOSEN = { grant: 0x7e5700000001, leases: 0x7e5700000002 };

/** Lease keys come from a map on etcd: order is not part of the contract. */
const sortKeys = (r: any) => ({ ...r, keys: [...r.keys].sort(Buffer.compare) });

/** This scenario's leases in a Leases() answer, as sorted placeholders. */
const ownLeases = (t: ScenarioTarget) => (r: any) => ({
  ...r,
  leases: r.leases.filter((l: any) => t.granted.has(String(l.ID))).map((l: any) => t.lease(l.ID)).sort(),
});

/** A KeepAlive stream: keepAlive(id) sends one request and resolves with the next response. */
function keepAliveStream(t: ScenarioTarget): (id: number | string) => Promise<unknown> {
  const call = t.client.lease.keepAlive();
  const responses: unknown[] = [];
  let wake = () => {};
  let closed: string | undefined;
  call.on('data', (r: unknown) => { responses.push(r); wake(); });
  call.on('error', (err: grpc.ServiceError) => { closed ??= `stream error ${grpc.status[err.code]}: ${err.details}`; wake(); });
  t.defer(() => call.cancel());
  return async (id) => {
    call.write({ ID: id });
    const deadline = Date.now() + WAIT_MS;
    while (responses.length === 0 && !closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, deadline - Date.now()); });
    }
    return responses.shift() ?? closed ?? `timeout: no keepalive response within ${WAIT_MS} ms`;
  };
}

describeConformance('lease', {
  'grant with a TTL': async (t) => {
    const id = await t.grant('grant TTL 60', { TTL: 60 });
    await t.step('time to live', () => t.client.lease.timeToLive({ ID: id }));
    const short = await t.grant('grant TTL 1 (below the minimum)', { TTL: 1 });
    await t.step('time to live of the TTL 1 lease', () => t.client.lease.timeToLive({ ID: short }));
    await t.grant('grant TTL 0', { TTL: 0 });
    await t.grant('grant TTL -5', { TTL: -5 });
    await t.grant('grant TTL 9000000001 (too large)', { TTL: 9_000_000_001 });
  },

  'grant with a chosen ID, and a duplicate': async (t) => {
    await t.grant('grant with ID', { ID: CHOSEN.grant, TTL: 30 });
    await t.step('time to live', () => t.client.lease.timeToLive({ ID: CHOSEN.grant }));
    await t.grant('grant the same ID again', { ID: CHOSEN.grant, TTL: 60 });
    await t.step('time to live: unchanged', () => t.client.lease.timeToLive({ ID: CHOSEN.grant }));
  },

  'revoke deletes the attached keys with delete events': async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    await t.step('put a with lease', () => t.client.kv.put({ key: t.key('a'), value: b('1'), lease }));
    await t.step('put b with lease', () => t.client.kv.put({ key: t.key('b'), value: b('1'), lease }));
    await t.step('put c without lease', () => t.client.kv.put({ key: t.key('c'), value: b('1') }));
    const w = t.watch();
    const watch = await w.open({ key: t.key(), range_end: prefixEnd(t.key()), prev_kv: true });
    await t.step('revoke', () => t.client.lease.revoke({ ID: lease }));
    t.record('delete events (one revision)', await w.events(watch.watch_id, 2));
    await t.step('range prefix', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    await t.step('time to live of the revoked lease', () => t.client.lease.timeToLive({ ID: lease, keys: true }));
    await t.step('revoke again', () => t.client.lease.revoke({ ID: lease }));
    await t.step('put with the revoked lease', () => t.client.kv.put({ key: t.key('d'), value: b('1'), lease }));
    await t.step('revoke an unknown lease', () => t.client.lease.revoke({ ID: 0x7e57ffffffff }));
  },

  'a key moved to another lease, or detached, is not deleted by the old one': async (t) => {
    const first = await t.grant('grant lease 1', { TTL: 60 });
    const second = await t.grant('grant lease 2', { TTL: 60 });
    for (const k of ['moved', 'detached', 'kept', 'deleted']) await t.step(`put ${k} with lease 1`, () => t.client.kv.put({ key: t.key(k), value: b('1'), lease: first }));
    await t.step('put moved with lease 2', () => t.client.kv.put({ key: t.key('moved'), value: b('2'), lease: second }));
    await t.step('put detached without lease', () => t.client.kv.put({ key: t.key('detached'), value: b('2') }));
    await t.step('put kept with ignore_lease', () => t.client.kv.put({ key: t.key('kept'), value: b('2'), ignore_lease: true }));
    await t.step('delete deleted', () => t.client.kv.deleteRange({ key: t.key('deleted') }));
    await t.step('time to live of lease 1', () => t.client.lease.timeToLive({ ID: first, keys: true }), sortKeys);
    await t.step('time to live of lease 2', () => t.client.lease.timeToLive({ ID: second, keys: true }), sortKeys);
    await t.step('revoke lease 1', () => t.client.lease.revoke({ ID: first }));
    await t.step('range after revoking lease 1', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    await t.step('revoke lease 2', () => t.client.lease.revoke({ ID: second }));
    await t.step('range after revoking lease 2', () => t.client.kv.range({ key: t.key(), range_end: prefixEnd(t.key()) }));
    const empty = await t.grant('grant lease 3', { TTL: 60 });
    await t.step('put x with lease 3', () => t.client.kv.put({ key: t.key('x'), value: b('1'), lease: empty }));
    await t.step('delete x', () => t.client.kv.deleteRange({ key: t.key('x') }));
    await t.step('revoke lease 3, whose only key is gone (no new revision)', () => t.client.lease.revoke({ ID: empty }));
    await t.step('next put', () => t.client.kv.put({ key: t.key('y'), value: b('1') }));
  },

  'keepalive stream': async (t) => {
    const lease = await t.grant('grant TTL 10', { TTL: 10 });
    const keepAlive = keepAliveStream(t);
    t.record('keepalive', await keepAlive(lease!));
    t.record('keepalive an unknown lease', await keepAlive(0x7e57fffffffe));
    t.record('keepalive again', await keepAlive(lease!));
    await t.step('time to live after keepalive', () => t.client.lease.timeToLive({ ID: lease }));
    await t.step('revoke', () => t.client.lease.revoke({ ID: lease }));
    t.record('keepalive a revoked lease', await keepAlive(lease!));
  },

  'time to live with keys': async (t) => {
    const lease = await t.grant('grant', { TTL: 60 });
    for (const k of ['c', 'a', 'b']) await t.step(`put ${k} with lease`, () => t.client.kv.put({ key: t.key(k), value: b('1'), lease }));
    await t.step('time to live with keys', () => t.client.lease.timeToLive({ ID: lease, keys: true }), sortKeys);
    await t.step('time to live without keys', () => t.client.lease.timeToLive({ ID: lease, keys: false }));
    await t.step('delete b', () => t.client.kv.deleteRange({ key: t.key('b') }));
    await t.step('time to live after deleting b', () => t.client.lease.timeToLive({ ID: lease, keys: true }), sortKeys);
    await t.step('time to live of an unknown lease', () => t.client.lease.timeToLive({ ID: 0x7e57fffffffd, keys: true }));
  },

  'leases list': async (t) => {
    const first = await t.grant('grant 1', { TTL: 60 });
    await t.grant('grant 2', { TTL: 60 });
    await t.grant('grant with a chosen ID', { ID: CHOSEN.leases, TTL: 60 });
    await t.step('leases', () => t.client.lease.leases({}), ownLeases(t));
    await t.step('revoke lease 1', () => t.client.lease.revoke({ ID: first }));
    await t.step('leases after revoking one', () => t.client.lease.leases({}), ownLeases(t));
  },
});
