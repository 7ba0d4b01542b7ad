// Before a tree starts: the PostgreSQL and MySQL/MariaDB databases its leaves name must exist
// (a node creates its tables, but not the database they live in).
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Backend } from '../topology/backend-spec.ts';

type SqlServerBackend = Extract<Backend, { kind: 'postgres' | 'mysql' }>;

export type DatabaseOutcome = 'exists' | 'created';

export interface DatabaseReport {
  /** The leaf's URL as written (never the expanded secret), without the database. */
  server: string;
  database: string;
  kind: SqlServerBackend['kind'];
  outcome: DatabaseOutcome;
}

const CONNECT_TIMEOUT_MS = 5000;

/** Creates every missing database once, however many leaves share it. */
export async function ensureLeafDatabases(backends: Backend[]): Promise<DatabaseReport[]> {
  const reports: DatabaseReport[] = [];
  const done = new Set<string>();
  for (const b of backends) {
    if (b.kind !== 'postgres' && b.kind !== 'mysql') continue;
    const url = new URL(b.url);
    const database = decodeURIComponent(url.pathname.slice(1));
    const key = `${b.kind} ${url.host} ${database}`;
    if (done.has(key)) continue;
    done.add(key);
    const server = serverOf(b.displayUrl);
    try {
      const outcome = b.kind === 'postgres' ? await ensurePostgres(b.url, database) : await ensureMysql(b.url, database);
      reports.push({ server, database, kind: b.kind, outcome });
    } catch (err) {
      throw new Error(`cannot make sure database ${database} exists on ${server} (leaf "${b.name}", ${b.definedAt}): ${(err as Error).message}`);
    }
  }
  return reports;
}

/** The URL up to the database name, for messages. */
function serverOf(displayUrl: string): string {
  return displayUrl.replace(/\/[^/?]*(\?.*)?$/, '');
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function ensurePostgres(url: string, database: string): Promise<DatabaseOutcome> {
  // Connecting to the database itself needs no rights beyond the leaf's own.
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  try {
    await probe.connect();
    return 'exists';
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err; // 3D000: database does not exist
  } finally {
    await probe.end().catch(() => {});
  }
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres'), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
    return 'created';
  } catch (err) {
    // 42P04: created meanwhile by someone else.
    if ((err as { code?: string }).code === '42P04') return 'exists';
    throw err;
  } finally {
    await admin.end();
  }
}

async function ensureMysql(url: string, database: string): Promise<DatabaseOutcome> {
  const conn = await mysql.createConnection({ uri: withDatabase(url, ''), connectTimeout: CONNECT_TIMEOUT_MS });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    if (rows.length > 0) return 'exists';
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database.replace(/`/g, '``')}\``);
    return 'created';
  } finally {
    await conn.end();
  }
}
