// mTLS between nodes, configured per child (DESIGN.md 6, 9): a root with two children, one
// plain (http://) and one serving https with --client-cert-auth, whose topology backend carries
// `tls: { ca, cert, key }` as paths relative to the topology file's directory. Requests, watches
// and lease calls through the root reach the secure child; a parent without the client
// certificate gets UNAVAILABLE for that child's keys only.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueRedisPrefix } from '../../support/redis-prefix.ts';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startEtcdTree, type EtcdTreeNode } from '../../support/etcd-tree-process.ts';
import { freePort } from '../../support/ports.ts';
import { generatePki, type Pki } from '../helpers/certs.ts';
import { b, end, failure, watchAll, watchReaches } from './helpers.ts';

const SECURE = '/registry/secrets/';
const redisPrefix = uniqueRedisPrefix();
const common = ['--revision-store', REDIS_URL, '--revision-prefix', redisPrefix];
const sqliteCatchAll = 'backends:\n  local:\n    kind: sqlite\n    path: local.db\nroutes:\n  - { prefix: "", to: local }\n';

let pki: Pki;
const nodes: EtcdTreeNode[] = [];
const clients: EtcdClient[] = [];
const dirs: string[] = [];
let root: EtcdClient;
/** Straight to the children, to see where keys landed. */
let secureDirect: EtcdClient;
let plainDirect: EtcdClient;
let securePort: number;
let plainPort: number;

function client(endpoint: string, credentials?: grpc.ChannelCredentials): EtcdClient {
  const c = connectEtcd(endpoint, { credentials });
  clients.push(c);
  return c;
}

/** A parent routing SECURE to the secure child with the given tls block, everything else to the plain child. */
async function startParent(role: 'root' | 'branch', tlsYaml: (rel: (file: string) => string) => string): Promise<EtcdTreeNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'etcd-tree-mtls-parent-'));
  dirs.push(dataDir);
  // startEtcdTree writes the topology into <dataDir>/topology.d: tls paths relative to it.
  const rel = (file: string) => relative(join(dataDir, 'topology.d'), file);
  const node = await startEtcdTree({
    dataDir,
    topology: {
      '00.yaml':
        'backends:\n' +
        `  plain:\n    kind: node\n    endpoints: [http://127.0.0.1:${plainPort}]\n` +
        `  secure:\n    kind: node\n    endpoints: [https://127.0.0.1:${securePort}]\n${tlsYaml(rel)}` +
        `routes:\n  - { prefix: "", to: plain }\n  - { prefix: ${SECURE}, to: secure }\n`,
    },
    args: [...common, '--name', `parent-${role}`, '--tree-role', role],
  });
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  pki = generatePki();
  [securePort, plainPort] = [await freePort(), await freePort()];
  const [secure, plain] = await Promise.all([
    startEtcdTree({
      topology: { '00.yaml': sqliteCatchAll },
      port: securePort,
      args: [
        ...common, '--name', 'secure', '--tree-role', 'branch',
        '--listen-client-urls', `https://127.0.0.1:${securePort}`,
        '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--trusted-ca-file', pki.ca, '--client-cert-auth',
      ],
    }),
    startEtcdTree({ topology: { '00.yaml': sqliteCatchAll }, port: plainPort, args: [...common, '--name', 'plain', '--tree-role', 'branch'] }),
  ]);
  nodes.push(secure, plain);
  const parent = await startParent('root', (rel) => `    tls: { ca: ${rel(pki.ca)}, cert: ${rel(pki.clientCert)}, key: ${rel(pki.clientKey)} }\n`);
  root = client(parent.endpoint);
  secureDirect = client(secure.endpoint, grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.clientKey), readFileSync(pki.clientCert)));
  plainDirect = client(plain.endpoint);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const n of nodes.reverse()) await n.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
  await deleteRedisKeys(redisPrefix);
});

const keysAt = async (c: EtcdClient, prefix: string) =>
  (await c.kv.range({ key: b(prefix), range_end: end(prefix) })).kvs.map((kv: any) => `${kv.key}=${kv.value}`);

describe('mTLS between nodes, per child', () => {
  it('the root reaches the secure child over mTLS (relative cert paths) and the plain child over http', async () => {
    const watch = await watchAll(root, '/registry/');
    const s = await root.kv.put({ key: b(`${SECURE}default/a`), value: b('secret') });
    const p = await root.kv.put({ key: b('/registry/pods/default/a'), value: b('pod') });
    expect(await keysAt(root, SECURE)).toEqual([`${SECURE}default/a=secret`]);
    // Answers passed on from a child carry the root's identity, not the child's.
    const rootMember = (await root.cluster.memberList({})).header.member_id;
    const childMember = (await plainDirect.cluster.memberList({})).header.member_id;
    expect(rootMember).not.toEqual(childMember);
    expect(s.header.member_id).toEqual(rootMember);
    expect((await root.kv.range({ key: b('/registry/pods/default/a') })).header.member_id).toEqual(rootMember);
    // Each key is in its own child.
    expect(await keysAt(secureDirect, '/registry/')).toEqual([`${SECURE}default/a=secret`]);
    expect(await keysAt(plainDirect, '/registry/')).toEqual(['/registry/pods/default/a=pod']);
    // A watch through the root merges both children (the secure one's stream runs over TLS).
    await watchReaches(watch, Math.max(s.header.revision, p.header.revision), 'the root watch to see both puts');
    watch.close();
    expect(watch.events.map((e) => [e.key, e.rev])).toEqual([
      [`${SECURE}default/a`, s.header.revision],
      ['/registry/pods/default/a', p.header.revision],
    ]);
    // Leases: keys under both children, listed and revoked through the root.
    const { ID: id } = await root.lease.grant({ TTL: 60 });
    await root.kv.put({ key: b(`${SECURE}default/leased`), value: b('v'), lease: id });
    await root.kv.put({ key: b('/registry/pods/default/leased'), value: b('v'), lease: id });
    const ttl = await root.lease.timeToLive({ ID: id, keys: true });
    expect(ttl.keys.map((k: Buffer) => k.toString()).sort()).toEqual(['/registry/pods/default/leased', `${SECURE}default/leased`]);
    await root.lease.revoke({ ID: id });
    expect(await keysAt(secureDirect, `${SECURE}default/leased`)).toEqual([]);
  });

  it('a parent without the client certificate: UNAVAILABLE for the secure child\'s keys only', async () => {
    // Trusts the child's CA, offers no client certificate: the child refuses the handshake.
    const parent = await startParent('branch', (rel) => `    tls: { ca: ${rel(pki.ca)} }\n`);
    const noCert = client(parent.endpoint);
    // The plain child's keys work through it.
    await noCert.kv.put({ key: b('/registry/pods/default/b'), value: b('pod-b') });
    expect(await keysAt(noCert, '/registry/pods/')).toContain('/registry/pods/default/b=pod-b');
    for (const call of [
      noCert.kv.put({ key: b(`${SECURE}default/b`), value: b('must-not-land') }),
      noCert.kv.range({ key: b(`${SECURE}default/a`) }),
      noCert.kv.range({ key: b('/registry/'), range_end: end('/registry/') }),
    ]) {
      const err = await failure(call);
      expect(grpc.status[err.code], err.details).toBe('UNAVAILABLE');
      expect(err.details).toMatch(/secure/);
      expect(err.details, "refused for the missing client certificate").toMatch(/certificate/);
    }
    expect(await keysAt(secureDirect, SECURE)).toEqual([`${SECURE}default/a=secret`]);
    // The parent with the certificate still works.
    expect(await keysAt(root, SECURE)).toEqual([`${SECURE}default/a=secret`]);
  });
});
