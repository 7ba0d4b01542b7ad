// The hop limit (DESIGN.md 7, `etcd-tree-hops`): two nodes that route a prefix to each other
// must answer a clear FAILED_PRECONDITION naming the routing loop and the key, fast, instead of
// hanging; their other prefixes keep working. A node whose topology names itself as a child is
// refused outright.
//
// Node A starts alone (it establishes the revision counter), node B routes /loop/ to A, then a
// topology file dropped into A routes /loop/ to B: the loop appears by hot reload.
import * as grpc from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueRedisPrefix } from '../../support/redis-prefix.ts';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startEtcdTree, type EtcdTreeNode } from '../../support/etcd-tree-process.ts';
import { freePort } from '../../support/ports.ts';
import { b, end, failure, until } from './helpers.ts';

const LOOP = '/loop/';
/** A loop fails after at most 16 local hops over loopback: far below this. */
const FAST_MS = 5000;
const redisPrefix = uniqueRedisPrefix();
const redisArgs = ['--revision-store', REDIS_URL, '--revision-prefix', redisPrefix];

let nodeA: EtcdTreeNode;
let nodeB: EtcdTreeNode;
let client: EtcdClient;
let lastErr = '';

beforeAll(async () => {
  nodeA = await startEtcdTree({ args: [...redisArgs, '--name', 'loop-a'] });
  client = connectEtcd(nodeA.endpoint);
  await until(async () => (await client.kv.put({ key: b('/ready'), value: b('1') }).then(() => true, () => false)), 'node A takes writes');
  nodeB = await startEtcdTree({
    topology: {
      '00.yaml':
        'backends:\n  local:\n    kind: sqlite\n    path: local.db\n' +
        `  a:\n    kind: node\n    endpoints: [http://${nodeA.endpoint}]\n` +
        `routes:\n  - { prefix: "", to: local }\n  - { prefix: ${LOOP}, to: a }\n`,
    },
    args: [...redisArgs, '--name', 'loop-b', '--tree-role', 'branch'],
  });
  writeFileSync(join(nodeA.dataDir, 'topology.d', '50-loop.yaml'), `backends:\n  b:\n    kind: node\n    endpoints: [http://${nodeB.endpoint}]\nroutes:\n  - { prefix: ${LOOP}, to: b }\n`);
  await until(async () => {
    const err = await client.kv.range({ key: b(`${LOOP}probe`) }).then(() => null, (e: grpc.ServiceError) => e);
    if (err) lastErr = `${err.code} ${err.details}`;
    return err !== null && err.code === grpc.status.FAILED_PRECONDITION;
  }, 'node A routes /loop/ to node B (hot reload)').catch((e) => { throw new Error(`${e.message}: ${lastErr}\n${nodeA.output()}`); });
});

afterAll(async () => {
  client?.close();
  await nodeA?.destroy();
  await nodeB?.destroy();
  await deleteRedisKeys(redisPrefix);
});

/**
 * The error of a request into the loop. The node's connection to itself was first tried before
 * it listened (a child that is down at start): until it reconnects (backoff up to 2 s) the
 * answer is UNAVAILABLE; each answer must come fast either way.
 */
async function loopFailure(call: () => Promise<unknown>): Promise<grpc.ServiceError> {
  const deadline = Date.now() + FAST_MS;
  for (;;) {
    const err = await failure(call(), FAST_MS);
    if (err.code !== grpc.status.UNAVAILABLE || Date.now() > deadline) return err;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The error a request into the loop must get: FAILED_PRECONDITION, saying it is a routing loop. */
function expectLoopError(err: grpc.ServiceError): void {
  expect(grpc.status[err.code], err.details).toBe('FAILED_PRECONDITION');
  expect(err.details).toMatch(/loop/i);
}

describe('two nodes routing a prefix to each other', () => {
  it('a put and a get of a key under the looping prefix fail fast with FAILED_PRECONDITION (routing loop)', async () => {
    expectLoopError(await loopFailure(() => client.kv.put({ key: b(`${LOOP}a`), value: b('v') })));
    expectLoopError(await loopFailure(() => client.kv.range({ key: b(`${LOOP}a`) })));
    expectLoopError(await loopFailure(() => client.kv.range({ key: b(LOOP), range_end: end(LOOP) })));
    expectLoopError(await loopFailure(() => client.kv.deleteRange({ key: b(LOOP), range_end: end(LOOP) })));
  });

  it('the error names the prefix (or key) whose route loops', async () => {
    const err = await loopFailure(() => client.kv.put({ key: b(`${LOOP}a`), value: b('v') }));
    expectLoopError(err);
    expect(err.details).toContain(LOOP);
  });

  it('a watch of the looping prefix is refused (canceled, or the stream fails) instead of hanging', async () => {
    const stream = client.watch();
    const answer = new Promise<{ canceled?: string; error?: grpc.ServiceError }>((resolve) => {
      stream.on('data', (res: any) => {
        if (res.canceled) resolve({ canceled: res.cancel_reason });
      });
      stream.on('error', (error: grpc.ServiceError) => resolve({ error }));
    });
    stream.write({ create_request: { key: b(LOOP), range_end: end(LOOP) } });
    let timer: NodeJS.Timeout | undefined;
    const got = await Promise.race([answer, new Promise<null>((r) => (timer = setTimeout(() => r(null), FAST_MS)))]);
    clearTimeout(timer);
    stream.cancel();
    expect(got, `no answer to the watch create within ${FAST_MS} ms`).not.toBeNull();
    if (got!.error) expectLoopError(got!.error);
    else expect(got!.canceled).toMatch(/loop/i);
  });

  it('the nodes\' other prefixes keep working', async () => {
    const put = await client.kv.put({ key: b('/elsewhere/a'), value: b('v') });
    expect(put.header.revision).toBeGreaterThan(0);
    const got = await client.kv.range({ key: b('/elsewhere/a') });
    expect(got.kvs.map((kv: any) => kv.value.toString())).toEqual(['v']);
  });
});

describe('a topology naming the node itself as a child', () => {
  it('is refused at start with an error naming the backend', async () => {
    const port = await freePort();
    const started = startEtcdTree({
      port,
      topology: { '00.yaml': `backends:\n  myself:\n    kind: node\n    endpoints: [http://127.0.0.1:${port}]\nroutes:\n  - { prefix: "", to: myself }\n` },
      args: [...redisArgs, '--name', 'self'],
    });
    await expect(started).rejects.toThrow(/backend \\"myself\\".*is this node itself/);
  });
});
