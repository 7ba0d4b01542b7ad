// The servers' storage metrics, polled from etcd every 5 s by the harness's flags
// (--etcd-count-metric-poll-period, --etcd-db-metric-poll-interval):
//  - object counts: 1.20 etcd_object_counts (a count_only Range over the resource prefix) and
//    1.36 apiserver_storage_objects must equal the number of objects the API lists;
//  - database size: Maintenance.Status to each endpoint. 1.20 (etcd client 3.4) dials the
//    endpoint as passthrough:///http://host:port, so over plaintext its HTTP/2 :authority is the
//    whole URL "http://host:port" (over TLS the call works); 1.36 (etcd client 3.6)
//    sends host:port. On failure 1.20 sets its gauge
//    to -1 (and logs "Failed to get storage db size" at V(4) only).
import { describe, expect, it } from 'vitest';
import { parseMetrics, type Sample } from '../../../integration/helpers/metrics.ts';
import { waitFor } from '../../../integration/helpers/wait.ts';
import { createNamespace, type ClusterRef } from '../harness/fixture.ts';
import type { KubeClient } from '../harness/kube-client.ts';
import { base as widgets, ensureCrd, GROUP, PLURAL, widget } from './custom-resources.ts';

async function metrics(c: KubeClient, name: string): Promise<Sample[]> {
  const r = await c.request('GET', '/metrics');
  expect(r.status).toBe(200);
  return parseMetrics(r.text).filter((s) => s.name === name);
}

export function storageMetricScenarios(k: ClusterRef): void {
  describe('storage metrics (count_only ranges, Maintenance.Status)', () => {
    it('object counts equal what the API lists: 1.20 etcd_object_counts{resource="configmaps"}, 1.36 apiserver_storage_objects for Widgets', async () => {
      const { core, ext } = k();
      await createNamespace(core, 'e2e-metrics');
      for (let i = 0; i < 3; i++) await core.expect(201, 'POST', '/api/v1/namespaces/e2e-metrics/configmaps', { body: { metadata: { name: `m-${i}` } } });
      await ensureCrd(ext, core);
      for (let i = 0; i < 2; i++) await ext.expect(201, 'POST', widgets, { body: widget(`metric-${i}`, i) });

      const configMaps = (await core.expect(200, 'GET', '/api/v1/configmaps')).items.length;
      expect(configMaps).toBeGreaterThanOrEqual(3);
      let lastCm: number | undefined;
      await waitFor(async () => {
        lastCm = (await metrics(core, 'etcd_object_counts')).find((s) => s.labels.resource === 'configmaps')?.value;
        return lastCm === configMaps;
      }, `etcd_object_counts{resource="configmaps"} == ${configMaps} (last ${lastCm})`, 15_000, 500);

      const widgetCount = (await ext.expect(200, 'GET', `/apis/${GROUP}/v1/${PLURAL}`)).items.length;
      expect(widgetCount).toBeGreaterThanOrEqual(2);
      let lastW: number | undefined;
      let series = '';
      await waitFor(async () => {
        const samples = await metrics(ext, 'apiserver_storage_objects');
        series = samples.map((s) => `${s.labels.resource}=${s.value}`).join(', ');
        lastW = samples.find((s) => s.labels.resource === `${PLURAL}.${GROUP}`)?.value;
        return lastW === widgetCount;
      }, `apiserver_storage_objects{resource="${PLURAL}.${GROUP}"} == ${widgetCount}`, 15_000, 500).catch((err: Error) => {
        throw new Error(`${err.message} (last ${lastW}; every series: ${series || 'none'})`);
      });
      for (let i = 0; i < 2; i++) await ext.expect(200, 'DELETE', `${widgets}/metric-${i}`);
    });

    it('apiextensions-apiserver 1.36 reads the database size (apiserver_storage_size_bytes > 0)', async () => {
      const { ext } = k();
      const sizes = await waitFor(async () => {
        const s = await metrics(ext, 'apiserver_storage_size_bytes');
        return s.length > 0 && s.every((x) => x.value > 0) ? s : undefined;
      }, 'apiserver_storage_size_bytes > 0', 15_000, 500);
      expect(sizes.length).toBe(1);
    });

    // Regression pin: per-endpoint Maintenance.Status from etcd client 3.4 (kube-apiserver <= 1.21)
    // to a plaintext endpoint sends :authority "http://127.0.0.1:<port>"; etcd answers it. Node's
    // HTTP/2 layer reset such streams (PROTOCOL_ERROR) until src/etcd/authority-repair.ts, and
    // etcd_db_total_size_in_bytes stayed -1.
    it('kube-apiserver 1.20 per-endpoint Maintenance.Status (:authority "http(s)://host:port") gets the database size: etcd_db_total_size_in_bytes > 0', async () => {
      const { core, etcd } = k();
      let last: Sample[] = [];
      await waitFor(async () => {
        last = await metrics(core, 'etcd_db_total_size_in_bytes');
        return last.length === etcd.endpoints.length && last.every((s) => s.value > 0);
      }, 'etcd_db_total_size_in_bytes > 0 for every endpoint', 12_000, 500).catch(() => {});
      const scheme = etcd.tls ? 'https' : 'http';
      const byEndpoint = (rows: Array<[string, unknown]>) => rows.sort((x, y) => x[0].localeCompare(y[0]));
      expect(byEndpoint(last.map((s) => [s.labels.endpoint, s.value > 0 ? 'positive' : s.value]))).toEqual(byEndpoint(etcd.endpoints.map((e) => [`${scheme}://${e}`, 'positive'])));
    });
  });
}
