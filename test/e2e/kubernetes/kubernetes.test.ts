// Kubernetes end-to-end: kube-apiserver v1.20.2 and the apiextensions-apiserver of Kubernetes
// 1.36 on one etcd target (default: an etcd-tree node on the embedded SQLite default; see
// harness/etcd-targets.ts and README.md). The servers start once per target; the scenarios
// run in order against them, compaction and the log check last.
import { describe } from 'vitest';
import { selectTargets } from './harness/etcd-targets.ts';
import { useKubeCluster } from './harness/fixture.ts';
import { chunkedListScenarios } from './scenarios/chunked-list.ts';
import { compactionScenarios, recordBeforeCompaction } from './scenarios/compaction.ts';
import { coreObjectScenarios } from './scenarios/core-objects.ts';
import { customResourceScenarios } from './scenarios/custom-resources.ts';
import { eventScenarios } from './scenarios/events.ts';
import { serverLogScenarios } from './scenarios/server-logs.ts';
import { storageMetricScenarios } from './scenarios/storage-metrics.ts';
import { watchScenarios } from './scenarios/watch.ts';

for (const target of selectTargets()) {
  describe(`Kubernetes on ${target.name}`, () => {
    const k = useKubeCluster(target);
    const beforeCompaction = recordBeforeCompaction(k);
    coreObjectScenarios(k);
    chunkedListScenarios(k);
    watchScenarios(k);
    eventScenarios(k);
    customResourceScenarios(k);
    storageMetricScenarios(k);
    compactionScenarios(k, beforeCompaction);
    serverLogScenarios(k);
  });
}
