// Runs last: both servers' whole logs (stderr, klog) hold no etcd failure (see harness/log-scan.ts
// for exactly what is matched), the compaction cycle ran, and the etcd target logged no errors.
import { describe, expect, it } from 'vitest';
import { errorLines, etcdFailures } from '../harness/log-scan.ts';
import type { ClusterRef } from '../harness/fixture.ts';

export function serverLogScenarios(k: ClusterRef): void {
  describe('server logs', () => {
    it('kube-apiserver and apiextensions-apiserver logged no etcd, storage or compaction failure; the compaction cycle ran', () => {
      const { kas, aes } = k();
      const findings = [...etcdFailures(kas.name, kas.lines()), ...etcdFailures(aes.name, aes.lines())];
      const errors = [...errorLines(kas.lines()).map((l) => `${kas.name}: ${l}`), ...errorLines(aes.lines()).map((l) => `${aes.name}: ${l}`)];
      if (errors.length) console.log(`[k8s-e2e] error lines (not etcd failures unless listed as findings):\n${errors.join('\n')}`);
      expect(findings.map((f) => `${f.server} (${f.why}): ${f.line}`)).toEqual([]);
      const compactions = [...kas.lines(), ...aes.lines()].filter((l) => /etcd: compacted rev \(\d+\)/.test(l));
      expect(compactions.length, 'at least one compaction logged').toBeGreaterThan(0);
    });

    it('both servers are still ready', async () => {
      const { core, ext } = k();
      for (const c of [core, ext]) {
        const r = await c.request('GET', '/readyz');
        expect(r.status, `${c.name} /readyz: ${r.text}`).toBe(200);
      }
    });

    it('the etcd target logged no error', () => {
      const { etcd } = k();
      // etcd-tree logs pino JSON; level 50 = error, 60 = fatal (an UNKNOWN answer is logged once at error).
      const bad = etcd.output().split('\n').filter((l) => /"level":(50|60)\b/.test(l));
      expect(bad).toEqual([]);
    });
  });
}
