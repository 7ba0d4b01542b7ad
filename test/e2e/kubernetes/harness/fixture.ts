// Vitest glue: one control plane per target describe block (beforeAll/afterAll), and small
// helpers the scenarios share.
import { afterAll, beforeAll } from 'vitest';
import { defaultClusterOptions, startKubeCluster, type ClusterOptions, type KubeCluster } from './cluster.ts';
import type { EtcdTarget } from './etcd-targets.ts';
import type { KubeClient } from './kube-client.ts';

/** Returns the running cluster; throws if beforeAll did not start it. */
export type ClusterRef = () => KubeCluster;

/** Starts the control plane on `target` before the block's tests and stops everything after. */
export function useKubeCluster(target: EtcdTarget, options: ClusterOptions = defaultClusterOptions): ClusterRef {
  let cluster: KubeCluster | undefined;
  beforeAll(async () => {
    const t0 = Date.now();
    cluster = await startKubeCluster(target, options);
    console.log(`[k8s-e2e] ${target.name}: etcd ${cluster.etcd.endpoints.join(',')}, kube-apiserver :${cluster.kas.port} and apiextensions-apiserver :${cluster.aes.port} ready in ${Date.now() - t0} ms (logs in ${cluster.dir})`);
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  return () => {
    if (!cluster) throw new Error(`the control plane on ${target.name} did not start (see beforeAll)`);
    return cluster;
  };
}

/** Creates a namespace on the core server (idempotent within a run). */
export async function createNamespace(core: KubeClient, name: string): Promise<void> {
  const r = await core.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  if (r.status !== 201 && r.status !== 409) throw new Error(`create namespace ${name}: ${r.status} ${r.text}`);
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** resourceVersion as a number (etcd revision). */
export function rv(obj: any): number {
  const v = obj?.metadata?.resourceVersion;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error(`no numeric resourceVersion in ${JSON.stringify(obj)?.slice(0, 300)}`);
  return Number(v);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
