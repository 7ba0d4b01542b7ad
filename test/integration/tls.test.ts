// TLS and mutual TLS on the client listener, with a throwaway PKI made by openssl.
import * as grpc from '@grpc/grpc-js';
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';
import { generatePki, type Pki } from './helpers/certs.ts';
import { etcdctl } from './helpers/etcdctl.ts';
import { startNode, type TestNode } from './helpers/node.ts';

let pki: Pki;
let node: TestNode;
let trusted: EtcdClient;
const clients: EtcdClient[] = [];

function client(creds: grpc.ChannelCredentials, channelOptions: grpc.ChannelOptions = {}, host = '127.0.0.1'): EtcdClient {
  const c = connectEtcd(`${host}:${node.port}`, { credentials: creds, channelOptions });
  clients.push(c);
  return c;
}

const read = (f: string) => readFileSync(f);

/** A put that must be refused; resolves with the gRPC error. */
async function refusedPut(c: EtcdClient, key: string): Promise<grpc.ServiceError> {
  const err = await new Promise<grpc.ServiceError | undefined>((resolve) => {
    const kv = c.kv.put({ key: Buffer.from(key), value: Buffer.from('must-not-land') });
    const timer = setTimeout(() => resolve(Object.assign(new Error('no answer within 8 s'), { code: -1 }) as any), 8000);
    kv.then(() => { clearTimeout(timer); resolve(undefined); }, (e) => { clearTimeout(timer); resolve(e); });
  });
  expect(err, `put ${key} was accepted`).toBeDefined();
  return err!;
}

beforeAll(async () => {
  pki = generatePki();
  node = await startNode({ tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey } });
  trusted = client(grpc.credentials.createSsl(read(pki.ca), read(pki.clientKey), read(pki.clientCert)));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await node?.destroy();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

describe('mTLS', () => {
  test('a client with the CA and a client cert works (IP SAN 127.0.0.1)', async () => {
    const put = await trusted.kv.put({ key: Buffer.from('/tls/ok'), value: Buffer.from('v') });
    expect(put.header.revision).toBeGreaterThan(0);
    const got = await trusted.kv.range({ key: Buffer.from('/tls/ok') });
    expect(got.kvs.map((kv: any) => kv.value.toString())).toEqual(['v']);
    // Streams work over TLS too.
    const w = trusted.watch();
    const created = new Promise<any>((resolve, reject) => { w.on('data', resolve); w.on('error', reject); });
    w.write({ create_request: { key: Buffer.from('/tls/ok') } });
    expect((await created).created).toBe(true);
    w.cancel();
  });

  test('the server cert also verifies for DNS:localhost', async () => {
    const c = client(grpc.credentials.createSsl(read(pki.ca), read(pki.clientKey), read(pki.clientCert)), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
    });
    const st = await c.maintenance.status({});
    expect(st.version).toMatch(/^3\.5\./);
  });

  test('a client without a client cert is refused', async () => {
    const c = client(grpc.credentials.createSsl(read(pki.ca)));
    const err = await refusedPut(c, '/tls/no-cert');
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });

  test('a client cert from an untrusted CA is refused', async () => {
    const c = client(grpc.credentials.createSsl(read(pki.ca), read(pki.rogueKey), read(pki.rogueCert)));
    const err = await refusedPut(c, '/tls/rogue');
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });

  test('a plaintext client is refused', async () => {
    const c = client(grpc.credentials.createInsecure());
    const err = await refusedPut(c, '/tls/plain');
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });

  test('nothing from the refused clients landed', async () => {
    const got = await trusted.kv.range({ key: Buffer.from('/tls/'), range_end: Buffer.from('/tls0') });
    expect(got.kvs.map((kv: any) => kv.key.toString())).toEqual(['/tls/ok']);
  });
});

describe('etcdctl over TLS', () => {
  const tlsFlags = () => [`--cacert=${pki.ca}`, `--cert=${pki.clientCert}`, `--key=${pki.clientKey}`];

  test('put/get with --cacert/--cert/--key works', async () => {
    const put = await etcdctl(node.url, ['put', '/tls/ctl', 'hello'], { globalArgs: tlsFlags() });
    expect(put.stderr).toBe('');
    expect(put.stdout).toBe('OK\n');
    const get = await etcdctl(node.url, ['get', '/tls/ctl'], { globalArgs: tlsFlags() });
    expect(get.stdout).toBe('/tls/ctl\nhello\n');
    const health = await etcdctl(node.url, ['endpoint', 'health'], { globalArgs: tlsFlags() });
    expect(health.code).toBe(0);
    expect(health.stderr).toContain(`${node.url} is healthy`);
  });

  // Both fail in the handshake: the connection never becomes ready (not a slow answer).
  test.concurrent('without a client cert etcdctl fails', async () => {
    const r = await etcdctl(node.url, ['get', '/tls/ctl'], { globalArgs: [`--cacert=${pki.ca}`, '--command-timeout=2s'] });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('all SubConns are in TransientFailure');
  });

  test.concurrent('without the CA etcdctl refuses the server cert', async () => {
    const r = await etcdctl(node.url, ['get', '/tls/ctl'], { globalArgs: [`--cert=${pki.clientCert}`, `--key=${pki.clientKey}`, '--command-timeout=2s'] });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('all SubConns are in TransientFailure');
  });
});
