// The node's HTTP side (--listen-metrics-urls): /healthz, /readyz and /metrics.
// etcd-tree only (etcd 3.5 serves /health, not /healthz and /readyz).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';
import { httpGet, parseMetrics, scrape } from './helpers/metrics.ts';
import { startNode, type TestNode } from './helpers/node.ts';
import { waitFor } from './helpers/wait.ts';

let node: TestNode;
let client: EtcdClient;

beforeAll(async () => {
  node = await startNode();
  client = connectEtcd(node.endpoint);
});

afterAll(async () => {
  client?.close();
  await node?.destroy();
});

describe('health', () => {
  test('/healthz and /readyz answer 200 once the node serves gRPC', async () => {
    // The gRPC port accepts connections already (startNode waited for it); prove it serves.
    await client.kv.range({ key: Buffer.from('/health/probe') });
    const healthz = await httpGet(node.httpPort, '/healthz');
    expect(healthz.status).toBe(200);
    const readyz = await httpGet(node.httpPort, '/readyz');
    expect(readyz.status).toBe(200);
  });

  test('an unknown path is 404', async () => {
    expect((await httpGet(node.httpPort, '/no-such-path')).status).toBe(404);
  });
});

describe('metrics', () => {
  test('/metrics is Prometheus text with RPC latency histograms per method and code', async () => {
    await client.kv.put({ key: Buffer.from('/health/m/a'), value: Buffer.from('1') });
    await client.kv.put({ key: Buffer.from('/health/m/b'), value: Buffer.from('2') });
    await client.kv.range({ key: Buffer.from('/health/m/a') });
    await client.kv.range({ key: Buffer.from('/health/m/a'), revision: 1_000_000 }).catch(() => {});

    const res = await httpGet(node.httpPort, '/metrics');
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^# TYPE etcd_tree_grpc_server_handling_seconds histogram$/m);
    const samples = parseMetrics(res.body);
    const count = (method: string, code: string) =>
      samples.find((s) => s.name === 'etcd_tree_grpc_server_handling_seconds_count' && s.labels.grpc_method === method && s.labels.grpc_code === code)?.value;
    expect(count('Put', 'OK')).toBeGreaterThanOrEqual(2);
    expect(count('Range', 'OK')).toBeGreaterThanOrEqual(1);
    expect(count('Range', 'OutOfRange')).toBeGreaterThanOrEqual(1);
    const buckets = samples.filter((s) => s.name === 'etcd_tree_grpc_server_handling_seconds_bucket' && s.labels.grpc_method === 'Put' && s.labels.grpc_code === 'OK');
    expect(buckets.length).toBeGreaterThan(1);
    expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBe(count('Put', 'OK'));

    // Counts grow with further RPCs.
    const before = count('Put', 'OK')!;
    await client.kv.put({ key: Buffer.from('/health/m/c'), value: Buffer.from('3') });
    const after = (await scrape(node.httpPort)).find((s) => s.name === 'etcd_tree_grpc_server_handling_seconds_count' && s.labels.grpc_method === 'Put' && s.labels.grpc_code === 'OK');
    expect(after?.value).toBe(before + 1);
  });

  test('per-leaf gauges (head revision, watermark lag, pending revisions, db size) have samples for the leaf', async () => {
    const put = await client.kv.put({ key: Buffer.from('/health/leaf/k'), value: Buffer.from('v') });
    const rev = put.header.revision as number;
    const leaf = (samples: Awaited<ReturnType<typeof scrape>>, name: string) => samples.find((s) => s.name === name && s.labels.leaf === 'local');
    const samples = await waitFor(async () => {
      const s = await scrape(node.httpPort);
      return (leaf(s, 'etcd_tree_leaf_head_revision')?.value ?? 0) >= rev ? s : undefined;
    }, 'etcd_tree_leaf_head_revision{leaf="local"} reaching the last write', 5000);
    expect(leaf(samples, 'etcd_tree_leaf_head_revision')?.value).toBe(rev);
    expect(leaf(samples, 'etcd_tree_watermark_lag_revisions')?.value).toBeGreaterThanOrEqual(0);
    expect(leaf(samples, 'etcd_tree_pending_revisions')?.value).toBeGreaterThanOrEqual(0);
    expect(leaf(samples, 'etcd_tree_db_size_bytes')?.value).toBeGreaterThan(0);
  });
});
