// The etcd endpoint the Kubernetes servers run against: a parameter of the harness, so later
// topologies (SQL leaves, several nodes, trees) run the same scenarios by adding a target here.
//
// K8S_E2E_TARGETS=etcd-tree,etcd35 selects targets (default: etcd-tree). `etcd35` runs the
// scenarios against a real etcd 3.5 (shared/tools/etcd35) to check the tests themselves:
// whatever passes there and fails on etcd-tree is an etcd-tree bug.
import { startEtcdTree, type StartOptions } from '../../../support/etcd-tree-process.ts';
import { startRealEtcd } from '../../../support/real-etcd.ts';
import { killWithWorker } from './server-process.ts';

/** A running etcd (or etcd-tree topology) as kube-apiserver sees it. */
export interface EtcdUnderTest {
  /** host:port of every client endpoint; kube-apiserver gets them as --etcd-servers=http://... */
  endpoints: string[];
  /** Recent server output, shown when a scenario fails. */
  output(): string;
  /** Stops every process and removes every temp dir. */
  stop(): Promise<void>;
}

export interface EtcdTarget {
  name: string;
  start(): Promise<EtcdUnderTest>;
}

/** One etcd-tree node (test/support startEtcdTree) on the embedded default topology (one SQLite catch-all). */
export function etcdTreeTarget(opts: StartOptions = {}, name = 'etcd-tree'): EtcdTarget {
  return {
    name,
    async start() {
      const node = await startEtcdTree(opts);
      killWithWorker(node.process);
      return { endpoints: [node.endpoint], output: () => node.output(), stop: () => node.destroy() };
    },
  };
}

/** A real etcd 3.5, the reference. */
export function realEtcdTarget(): EtcdTarget {
  return {
    name: 'etcd35',
    async start() {
      const etcd = await startRealEtcd({ progressNotifyInterval: PROGRESS_NOTIFY_INTERVAL });
      killWithWorker(etcd.process);
      return { endpoints: [etcd.endpoint], output: () => '', stop: () => etcd.stop() };
    },
  };
}

/**
 * Both targets run with etcd's default periodic progress-notify interval (10 m), not the 1 s the
 * other suites use: a watch cache that catches up within a second can then only have learned
 * the revision from an answer to RequestProgress, which is what the consistent-read and
 * WatchList scenarios must prove.
 */
export const PROGRESS_NOTIFY_INTERVAL = '10m';

const known: Record<string, () => EtcdTarget> = {
  'etcd-tree': () => etcdTreeTarget({ args: ['--experimental-watch-progress-notify-interval', PROGRESS_NOTIFY_INTERVAL] }),
  etcd35: realEtcdTarget,
};

export function selectTargets(env = process.env.K8S_E2E_TARGETS): EtcdTarget[] {
  const names = (env ?? 'etcd-tree').split(',').map((s) => s.trim()).filter(Boolean);
  return names.map((n) => {
    const make = known[n];
    if (!make) throw new Error(`K8S_E2E_TARGETS: unknown target ${n} (known: ${Object.keys(known).join(', ')})`);
    return make();
  });
}
