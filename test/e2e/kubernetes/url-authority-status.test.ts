// Regression pin, at the etcd API level, for the one kube-apiserver 1.20 failure found by the
// Kubernetes suite (storage-metrics.ts, etcd_db_total_size_in_bytes = -1):
// etcd client 3.4 (kube-apiserver <= 1.21) makes per-endpoint calls such as
// Maintenance.Status(ctx, "http://127.0.0.1:<port>") by dialing
// "passthrough:///http://127.0.0.1:<port>", so every request on that connection carries the
// HTTP/2 :authority "http://127.0.0.1:<port>" (plaintext endpoints only: over TLS the same
// call works). etcd 3.5 serves them; the node must too.
// No Kubernetes server runs here: the request is reproduced with grpc's default_authority.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd } from '../../support/etcd-client.ts';
import { startEtcdTree, type EtcdTreeNode } from '../../support/etcd-tree-process.ts';
import { startRealEtcd, type RealEtcd } from '../../support/real-etcd.ts';

let tree: EtcdTreeNode;
let etcd: RealEtcd;

beforeAll(async () => {
  [tree, etcd] = await Promise.all([startEtcdTree(), startRealEtcd()]);
});

afterAll(async () => {
  await Promise.all([tree?.destroy(), etcd?.stop()]);
});

async function callsWithUrlAuthority(endpoint: string) {
  const client = connectEtcd(endpoint, { channelOptions: { 'grpc.default_authority': `http://${endpoint}` } });
  const outcome = (p: Promise<any>) => p.then((r) => ({ ok: true, version: r.version as string | undefined }), (e) => ({ ok: false, code: e.code, details: e.details }));
  try {
    return {
      status: await outcome(client.maintenance.status({})),
      range: await outcome(client.kv.range({ key: Buffer.from('/registry/health') })),
    };
  } finally {
    client.close();
  }
}

describe('etcd client 3.4 per-endpoint calls (:authority "http://host:port")', () => {
  it('etcd 3.5 answers Status and Range (reference)', async () => {
    const got = await callsWithUrlAuthority(etcd.endpoint);
    expect(got.status).toMatchObject({ ok: true });
    expect(got.range).toMatchObject({ ok: true });
  });

  it('etcd-tree answers Status and Range like etcd (regression: nghttp2 reset such streams with PROTOCOL_ERROR)', async () => {
    const got = await callsWithUrlAuthority(tree.endpoint);
    expect(got).toMatchObject({ status: { ok: true }, range: { ok: true } });
  });
});
