// A 3-level etcd-tree for tests: a root with no leaves of its own, two branch nodes under it,
// leaves on SQLite, PostgreSQL and MariaDB under the branches, one Redis prefix for all.
//
//   root ── /registry/events/      -> branch-a
//        ── /registry/configmaps/  -> shards [branch-a, branch-b] by namespace
//        ── ""                     -> branch-b
//   branch-a ── "" -> events (PostgreSQL)
//   branch-b ── /registry/pods/ -> shards [pods-my (MariaDB), pods-pg (PostgreSQL)] by namespace
//            ── "" -> local (SQLite)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteRedisKeys, REDIS_URL, uniqueRedisPrefix } from './redis-prefix.ts';
import { startEtcdTree, type EtcdTreeNode } from './etcd-tree-process.ts';
import { freePort } from './ports.ts';
import { dropTables, sqlBackendYaml, uniqueTablePrefix, type SqlKind } from './sql-backends.ts';

export type TreeNodeName = 'root' | 'branch-a' | 'branch-b';

export interface Tree {
  root: EtcdTreeNode;
  nodes: Record<TreeNodeName, EtcdTreeNode>;
  redisPrefix: string;
  /** Starts a node again (after kill/stop) on its old ports and data dir. */
  restart(name: TreeNodeName): Promise<EtcdTreeNode>;
  destroy(): Promise<void>;
}

export interface TreeOptions {
  /** Extra flags for every node. */
  args?: string[];
  env?: Record<string, string>;
  /** Extra flags per node. */
  nodeArgs?: Partial<Record<TreeNodeName, string[]>>;
  /** Override a branch's leaf URLs (e.g. through a TCP proxy): leaf name -> URL. */
  urls?: Record<string, string>;
  /** Extra root routes, YAML flow lines (e.g. '  - { prefix: /x/, to: branch-a }'). */
  rootRoutes?: string[];
}

export async function startTree(opts: TreeOptions = {}): Promise<Tree> {
  const tables: Array<{ kind: SqlKind; prefix: string }> = [];
  const sql = (name: string, kind: SqlKind) => {
    const prefix = uniqueTablePrefix(name.replace(/-/g, '_'));
    tables.push({ kind, prefix });
    return `${sqlBackendYaml(name, kind, prefix, opts.urls?.[name])}    pool: { max: 4 }\n`;
  };
  const ports = { a: await freePort(), b: await freePort() };
  const topologies: Record<TreeNodeName, Record<string, string>> = {
    'branch-a': { '00.yaml': `backends:\n${sql('events', 'postgres')}routes:\n  - { prefix: "", to: events }\n` },
    'branch-b': {
      '00.yaml':
        `backends:\n  local:\n    kind: sqlite\n    path: local.db\n${sql('pods-my', 'mysql')}${sql('pods-pg', 'postgres')}` +
        `routes:\n  - { prefix: "", to: local }\n  - { prefix: /registry/pods/, shards: [pods-my, pods-pg], shardSegment: 0 }\n`,
    },
    root: {
      '00.yaml':
        `backends:\n  branch-a:\n    kind: node\n    endpoints: [http://127.0.0.1:${ports.a}]\n  branch-b:\n    kind: node\n    endpoints: [http://127.0.0.1:${ports.b}]\n` +
        `routes:\n  - { prefix: "", to: branch-b }\n  - { prefix: /registry/events/, to: branch-a }\n  - { prefix: /registry/configmaps/, shards: [branch-a, branch-b] }\n` +
        (opts.rootRoutes ?? []).map((r) => `${r}\n`).join(''),
    },
  };
  const redisPrefix = uniqueRedisPrefix();
  const common = ['--revision-store', REDIS_URL, '--revision-prefix', redisPrefix, ...(opts.args ?? [])];
  const settings: Record<TreeNodeName, { port?: number; dataDir: string; args: string[] }> = {
    'branch-a': { port: ports.a, dataDir: mkdtempSync(join(tmpdir(), 'etcd-tree-a-')), args: ['--name', 'branch-a', '--tree-role', 'branch'] },
    'branch-b': { port: ports.b, dataDir: mkdtempSync(join(tmpdir(), 'etcd-tree-b-')), args: ['--name', 'branch-b', '--tree-role', 'branch'] },
    root: { dataDir: mkdtempSync(join(tmpdir(), 'etcd-tree-root-')), args: ['--name', 'root'] },
  };
  const nodes = {} as Record<TreeNodeName, EtcdTreeNode>;
  const start = async (name: TreeNodeName) => {
    const s = settings[name];
    const prior = nodes[name] as EtcdTreeNode | undefined;
    nodes[name] = await startEtcdTree({
      topology: topologies[name],
      dataDir: s.dataDir,
      port: prior?.port ?? s.port,
      httpPort: prior?.httpPort,
      args: [...common, ...s.args, ...(opts.nodeArgs?.[name] ?? [])],
      env: { LOG_LEVEL: 'warn', ...opts.env },
    });
    return nodes[name];
  };
  const destroy = async () => {
    for (const n of Object.values(nodes)) await n.destroy();
    for (const s of Object.values(settings)) rmSync(s.dataDir, { recursive: true, force: true });
    for (const t of tables) await dropTables(t.kind, t.prefix);
    await deleteRedisKeys(redisPrefix);
  };
  try {
    await Promise.all([start('branch-a'), start('branch-b')]);
    await start('root');
  } catch (err) {
    await destroy();
    throw err;
  }
  return { root: nodes.root, nodes, redisPrefix, restart: start, destroy };
}
