// The servers a conformance run compares: the reference (a real etcd 3.5) and the subjects
// (etcd-tree, one per backend). Environment switches, read here only:
//   BACKENDS=sqlite,...        run only these etcd-tree backends (default: all of them)
//   CONFORMANCE_SELF_CHECK=1   the subject is a second real etcd, to validate the harness
//                              and the scenarios while etcd-tree is not finished
//   CONFORMANCE_PRINT=1        print the reference's recording of every scenario (what etcd
//                              answers), e.g. when writing a scenario
import { startEtcdTree } from '../support/etcd-tree-process.ts';
import { startRealEtcd } from '../support/real-etcd.ts';

export interface RunningServer {
  endpoint: string;
  stop(): Promise<unknown>;
  /** Recent process output, printed when a scenario fails (etcd-tree logs). */
  output?(): string;
}

export interface Target {
  name: string;
  start(): Promise<RunningServer>;
}

/** Same watch progress interval as etcd-tree-process.ts passes to etcd-tree. */
const startReference = () => startRealEtcd({ progressNotifyInterval: '1s' });

export const reference: Target = { name: 'etcd', start: startReference };

/** Every etcd-tree backend the suite knows. Add postgres, mysql, ... here with their topology. */
export const etcdTreeTargets: Target[] = [
  {
    name: 'sqlite',
    async start() {
      const node = await startEtcdTree();
      return { endpoint: node.endpoint, stop: () => node.destroy(), output: () => node.output() };
    },
  },
];

const selfCheckTarget: Target = { name: 'etcd-self-check', start: startReference };

export const printRecordings = process.env.CONFORMANCE_PRINT === '1';

export function selectSubjects(all: Target[] = etcdTreeTargets, env = process.env): Target[] {
  if (env.CONFORMANCE_SELF_CHECK === '1') return [selfCheckTarget];
  const wanted = env.BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!wanted) return all;
  const unknown = wanted.filter((w) => !all.some((t) => t.name === w));
  if (unknown.length) throw new Error(`BACKENDS names unknown backends: ${unknown.join(', ')} (known: ${all.map((t) => t.name).join(', ')})`);
  return all.filter((t) => wanted.includes(t.name));
}
