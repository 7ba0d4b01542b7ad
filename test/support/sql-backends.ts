// Topologies on the machine's PostgreSQL and MariaDB for tests: every node gets its own
// table-name prefix in the shared `test` databases (so tests run in parallel without seeing
// each other's data), and its tables are dropped when it stops.
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { startEtcdTree, type EtcdTreeNode, type StartOptions } from './etcd-tree-process.ts';

export const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export type SqlKind = 'postgres' | 'mysql';

export function uniqueTablePrefix(tag: string): string {
  return `t${tag}_${randomBytes(4).toString('hex')}`;
}

export function sqlBackendYaml(name: string, kind: SqlKind, table: string, url = kind === 'postgres' ? PG_URL : MYSQL_URL): string {
  return `  ${name}:\n    kind: ${kind}\n    url: ${url}\n    table: ${table}\n`;
}

/** Drops every table whose name starts with `${prefix}_`. */
export async function dropTables(kind: SqlKind, prefix: string): Promise<void> {
  const like = `${prefix}\\_%`;
  if (kind === 'postgres') {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1", [like]);
      for (const r of rows) await client.query(`DROP TABLE IF EXISTS "${r.tablename}" CASCADE`);
    } finally {
      await client.end();
    }
  } else {
    const conn = await mysql.createConnection(MYSQL_URL);
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?', [like]);
      for (const r of rows) await conn.query(`DROP TABLE IF EXISTS \`${r.t}\``);
    } finally {
      await conn.end();
    }
  }
}

export interface SqlNode extends EtcdTreeNode {
  /** Stops the node and drops its tables. */
  destroyAll(): Promise<void>;
}

/**
 * A node whose topology is given as YAML with placeholders: {{pg:NAME}} and {{mysql:NAME}} in
 * the backends section expand to a backend definition with a fresh table prefix.
 */
export async function startSqlNode(topologyYaml: Record<string, string>, opts: StartOptions = {}): Promise<SqlNode> {
  const created: Array<{ kind: SqlKind; prefix: string }> = [];
  const files: Record<string, string> = {};
  for (const [file, text] of Object.entries(topologyYaml)) {
    files[file] = text.replace(/^\s*\{\{(pg|mysql):([A-Za-z0-9_-]+)\}\}\s*$/gm, (_, k: string, name: string) => {
      const kind: SqlKind = k === 'pg' ? 'postgres' : 'mysql';
      const prefix = uniqueTablePrefix(k);
      created.push({ kind, prefix });
      return sqlBackendYaml(name, kind, prefix).trimEnd();
    });
  }
  const node = await startEtcdTree({ ...opts, topology: files });
  return Object.assign(node, {
    async destroyAll() {
      await node.destroy();
      for (const c of created) await dropTables(c.kind, c.prefix);
    },
  });
}

export function sqliteBackendYaml(name: string, dataDirFile: string): string {
  return `  ${name}:\n    kind: sqlite\n    path: ${dataDirFile}\n`;
}
