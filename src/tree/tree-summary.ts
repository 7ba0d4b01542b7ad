// What the runner prints once a tree is up: every node's route table, then where to point
// clients and a few etcdctl commands that exercise the routes.
import { describeTopology } from '../topology/load-topology.ts';
import type { TreeNode } from './tree-nodes.ts';

/** Roots first, then branches: the order a reader follows a key down the tree. */
export function describeTree(nodes: TreeNode[]): string {
  const ordered = [...nodes.filter((n) => n.config.treeRole === 'root'), ...nodes.filter((n) => n.config.treeRole === 'branch')];
  return ordered
    .map((n) => {
      const head = `${n.name} (${n.config.treeRole}, ${n.configFile}): clients ${n.config.listenClientUrls.join(', ')}, metrics ${n.config.listenMetricsUrls.join(', ')}`;
      const table = describeTopology(n.topology).split('\n').map((line) => `  ${line}`);
      return [head, ...table].join('\n');
    })
    .join('\n\n');
}

/** Where clients go, and commands that put a key down each route of the tree. */
export function howToUse(nodes: TreeNode[], logDir: string): string {
  const roots = nodes.filter((n) => n.config.treeRole === 'root');
  const endpoint = roots[0].config.advertiseClientUrls[0];
  const etcdctl = `etcdctl --endpoints=${endpoint}`;
  const examples: string[] = [];
  const prefixes = new Map<string, boolean>();
  for (const n of nodes) for (const r of n.topology.routes) if (r.prefix !== '') prefixes.set(r.prefix, (prefixes.get(r.prefix) ?? false) || r.to.length > 1);
  for (const [prefix, sharded] of [...prefixes].sort(([a], [b]) => a.localeCompare(b))) {
    // Keys shaped like kube-apiserver's (<prefix><namespace>/<name>); a sharded prefix gets two namespaces.
    for (const ns of sharded ? ['default', 'kube-system'] : ['default']) examples.push(`${etcdctl} put ${prefix}${ns}/example hello`);
  }
  examples.push(`${etcdctl} put /registry/configmaps/default/example hello`);
  examples.push(`${etcdctl} get /registry/ --prefix --keys-only`);
  examples.push(`${etcdctl} watch /registry/ --prefix     # in another terminal, then put again`);
  const tls = endpoint.startsWith('https://') ? '\n(https: add --cacert, --cert and --key to the etcdctl commands)' : '';
  return [
    `The tree is up. Its root: ${roots.map((r) => r.config.advertiseClientUrls.join(', ')).join('; ')}`,
    `(kube-apiserver: --etcd-servers=${endpoint})${tls}`,
    '',
    'Try:',
    ...examples.map((e) => `  ${e}`),
    '',
    `Logs: ${logDir}/<node>.log (warnings and errors also appear here). Ctrl-C stops the tree, root first.`,
  ].join('\n');
}
