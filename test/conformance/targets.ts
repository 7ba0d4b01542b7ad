// The servers a conformance run compares: the reference (a real etcd 3.5) and the subjects
// (etcd-tree, one per backend). Environment switches, read here only:
//   BACKENDS=sqlite,...        run only these etcd-tree backends (default: all of them)
//   CONFORMANCE_SELF_CHECK=1   the subject is a second real etcd, to validate the harness
//                              and the scenarios while etcd-tree is not finished
//   CONFORMANCE_PRINT=1        print the reference's recording of every scenario (what etcd
//                              answers), e.g. when writing a scenario
import { startEtcdTree } from '../support/etcd-tree-process.ts';
import { startRealEtcd } from '../support/real-etcd.ts';
import { startCluster } from '../support/cluster.ts';
import { startSqlNode } from '../support/sql-backends.ts';
import { startTree } from '../support/tree.ts';

export interface RunningServer {
  endpoint: string;
  stop(): Promise<unknown>;
  /** Recent process output, printed when a scenario fails (etcd-tree logs). */
  output?(): string;
}

export interface Target {
  name: string;
  start(): Promise<RunningServer>;
  /**
   * Intended differences from etcd (DESIGN.md), by "file/scenario" then step label: the answer
   * this target must give instead of etcd's.
   */
  deviations?: Record<string, Record<string, unknown>>;
}

/** Same watch progress interval as etcd-tree-process.ts passes to etcd-tree. */
const startReference = () => startRealEtcd({ progressNotifyInterval: '1s' });

export const reference: Target = { name: 'etcd', start: startReference };

const catchAll = (to: string) => `routes:\n  - prefix: ""\n    to: ${to}\n`;

/**
 * The mixed topology: three leaves (SQLite, PostgreSQL, MariaDB). Range scenarios are sharded
 * over the leaves by the first key segment after the scenario's prefix, so their ranges
 * scatter and merge. Watch scenarios are spread over the leaves one scenario per leaf (their
 * multi-key txns must stay on one leaf); their from-key watches span every leaf, so those
 * streams are merges. Scenarios whose multi-key txns, prefix deletes or lease revocations
 * must be one revision (as in etcd) stay within one leaf each.
 */
const MIXED = {
  '00-default.yaml': `backends:\n  local:\n    kind: sqlite\n    path: default.db\n{{pg:pg}}\n{{mysql:my}}\n${catchAll('local')}`,
  '10-routes.yaml': [
    'routes:',
    '  - { prefix: /conformance/kv-range/, shards: [local, pg, my], shardSegment: 1 }',
    '  - { prefix: /conformance/watch/, shards: [local, pg, my], shardSegment: 0 }',
    '  - { prefix: /conformance/txn/, to: my }',
    '  - { prefix: /conformance/kube-patterns/, to: pg }',
    '  - { prefix: /conformance/lease/, to: pg }',
    '  - { prefix: /conformance/kv-write/, to: my }',
    '',
  ].join('\n'),
};

/** DESIGN.md section 2: a txn whose keys live on several leaves is refused, changing nothing. */
const crossLeafTxn = (leaves: string) => ({
  code: 'FAILED_PRECONDITION',
  details: `etcd-tree: transaction spans several leaves (${leaves}); a transaction must stay within one leaf`,
});

const MIXED_DEVIATIONS = {
  // A compare over every key from here on reaches past the txn scenario's leaf into all of them.
  'txn/compares over a range (range_end)': { 'from-key: all versions > 0': crossLeafTxn('local, my, pg') },
};

function sqlTarget(name: string, topology: Record<string, string>, deviations?: Target['deviations']): Target {
  return {
    name,
    deviations,
    async start() {
      const node = await startSqlNode(topology);
      return { endpoint: node.endpoint, stop: () => node.destroyAll(), output: () => node.output() };
    },
  };
}

/** Every etcd-tree backend the suite knows. */
export const etcdTreeTargets: Target[] = [
  {
    name: 'sqlite',
    async start() {
      const node = await startEtcdTree();
      return { endpoint: node.endpoint, stop: () => node.destroy(), output: () => node.output() };
    },
  },
  sqlTarget('postgres', { '00.yaml': `backends:\n{{pg:pg}}\n${catchAll('pg')}` }),
  sqlTarget('mysql', { '00.yaml': `backends:\n{{mysql:my}}\n${catchAll('my')}` }),
  sqlTarget('mixed', MIXED, MIXED_DEVIATIONS),
  {
    // One node of a two-node deployment (shared PostgreSQL leaf, Redis revisions): the other
    // node is idle, but every revision, watermark and read index goes through Redis.
    name: 'multi-node',
    async start() {
      const cluster = await startCluster({ nodes: 2, leaves: { pg: 'postgres' } });
      const node = cluster.nodes[0];
      return { endpoint: node.endpoint, stop: () => cluster.destroy(), output: () => node.output() };
    },
  },
];

/**
 * The root of the 3-level test tree (test/support/tree.ts). Range and watch scenarios are
 * sharded over the two branches (scatter-gather and watch merge across children); txn,
 * kube-patterns, lease and kv-write scenarios stay on one branch each, like MIXED.
 */
const TREE_ROUTES = [
  '  - { prefix: /conformance/kv-range/, shards: [branch-a, branch-b], shardSegment: 1 }',
  '  - { prefix: /conformance/watch/, shards: [branch-a, branch-b], shardSegment: 0 }',
  '  - { prefix: /conformance/txn/, to: branch-a }',
  '  - { prefix: /conformance/kube-patterns/, to: branch-a }',
  '  - { prefix: /conformance/lease/, to: branch-b }',
  '  - { prefix: /conformance/kv-write/, to: branch-a }',
];

const TREE_DEVIATIONS = {
  'txn/compares over a range (range_end)': { 'from-key: all versions > 0': crossLeafTxn('branch-a, branch-b') },
};

etcdTreeTargets.push({
  name: 'tree',
  deviations: TREE_DEVIATIONS,
  async start() {
    const tree = await startTree({ rootRoutes: TREE_ROUTES });
    const output = () => Object.entries(tree.nodes).map(([n, node]) => `--- ${n}\n${node.output()}`).join('\n');
    return { endpoint: tree.root.endpoint, stop: () => tree.destroy(), output };
  },
});

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
