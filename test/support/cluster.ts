// Several etcd-tree nodes over the same leaves and the same Redis revision counter: what a
// multi-node deployment is. Leaves are PostgreSQL/MariaDB tables with a fresh prefix; Redis
// keys get a fresh prefix; both are removed when the cluster is destroyed.
import { startEtcdTree, type EtcdTreeNode } from './etcd-tree-process.ts';
import { dropTables, sqlBackendYaml, uniqueTablePrefix, type SqlKind } from './sql-backends.ts';

import { deleteRedisKeys, REDIS_URL, uniqueRedisPrefix } from './redis-prefix.ts';

export { REDIS_URL };

export interface Cluster {
  nodes: EtcdTreeNode[];
  redisPrefix: string;
  /** Starts node i again (after kill/stop) on its old port, same topology. */
  restart(i: number): Promise<EtcdTreeNode>;
  /** Deletes every Redis key of this cluster (Redis "restarted empty"). */
  wipeRedis(): Promise<number>;
  destroy(): Promise<void>;
}

export interface ClusterOptions {
  nodes: number;
  /** Leaves: name -> kind. The first one is the catch-all; the others get /<name>/ prefixes. */
  leaves: Record<string, SqlKind>;
  /** Extra routes YAML lines (e.g. '  - { prefix: /b/, to: b }'). */
  routes?: string[];
  /** Connection URLs for some leaves (e.g. through a TCP proxy); default the local servers. */
  urls?: Record<string, string>;
  args?: string[];
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const tables: Array<{ kind: SqlKind; prefix: string }> = [];
  const backends = Object.entries(opts.leaves).map(([name, kind]) => {
    const prefix = uniqueTablePrefix(name);
    tables.push({ kind, prefix });
    // A few connections per node and leaf: several nodes share the database server's limit.
    return `${sqlBackendYaml(name, kind, prefix, opts.urls?.[name])}    pool: { max: 4 }\n`;
  });
  const [first] = Object.keys(opts.leaves);
  const topology = {
    '00.yaml': `backends:\n${backends.join('')}routes:\n  - { prefix: "", to: ${first} }\n${(opts.routes ?? []).map((r) => `${r}\n`).join('')}`,
  };
  const redisPrefix = uniqueRedisPrefix();
  const args = ['--revision-store', REDIS_URL, '--revision-prefix', redisPrefix, ...(opts.args ?? [])];
  const nodes: EtcdTreeNode[] = [];
  const startOne = (i: number, reuse?: EtcdTreeNode) =>
    startEtcdTree({ topology, args, port: reuse?.port, httpPort: reuse?.httpPort, dataDir: reuse?.dataDir, env: { LOG_LEVEL: 'warn' } }).then((n) => (nodes[i] = n));
  try {
    for (let i = 0; i < opts.nodes; i++) await startOne(i);
  } catch (err) {
    for (const n of nodes) await n.destroy();
    throw err;
  }
  const wipeRedis = () => deleteRedisKeys(redisPrefix);
  return {
    nodes,
    redisPrefix,
    restart: (i) => startOne(i, nodes[i]),
    wipeRedis,
    async destroy() {
      for (const n of nodes) await n.destroy();
      for (const t of tables) await dropTables(t.kind, t.prefix);
      await wipeRedis();
    },
  };
}
