// The databases the store suite runs on, each giving every test a leaf of its own (SQLite: a
// temporary file; PostgreSQL: a random table prefix, its connections named for the test;
// MySQL: a database of its own), so test files and tests run in parallel without seeing each
// other's data. BACKENDS=sqlite,postgres,mysql picks some (default: all); the servers are
// ETCD_TREE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) and
// ETCD_TREE_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Dialect } from '../../../src/store/dialect.ts';
import { MysqlDialect } from '../../../src/store/dialects/mysql/mysql-dialect.ts';
import { PostgresDialect } from '../../../src/store/dialects/postgres/postgres-dialect.ts';
import { SqliteDialect } from '../../../src/store/dialects/sqlite/sqlite-dialect.ts';
import { connect, createServer, type Socket } from 'node:net';

export const POSTGRES_URL = process.env.ETCD_TREE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.ETCD_TREE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface TestLeaf {
  dialect: Dialect;
  tablePrefix: string;
  /** Kills every server connection of this leaf from another connection; how many it killed. */
  killConnections?(): Promise<number>;
  /** Server connections of this leaf still alive. */
  connectionCount?(): Promise<number>;
  /** Another dialect on the same leaf (as a second etcd-tree node would open it). */
  secondWriter?(statementTimeoutMs?: number): Dialect;
  /** Another dialect on the same leaf, reaching the server through 127.0.0.1:port (a proxy). */
  throughPort?(port: number, statementTimeoutMs: number): Dialect;
  /** The server's port. */
  serverPort?: number;
  cleanup(): Promise<void>;
}

export interface StoreBackend {
  name: 'sqlite' | 'postgres' | 'mysql';
  create(): Promise<TestLeaf>;
  /** A dialect for a server on 127.0.0.1:port (one that is not there); the URL carries a password. */
  unreachable?(port: number): Dialect;
  /** The longest key it stores, when it has a limit. */
  maxKeyBytes?: number;
}

const tag = () => randomBytes(5).toString('hex');

function withPort(url: string, port: number, password: string): string {
  const u = new URL(url);
  u.port = String(port);
  u.password = password;
  return u.toString();
}

const sqlite: StoreBackend = {
  name: 'sqlite',
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'mvcc-store-'));
    return {
      dialect: new SqliteDialect({ path: join(dir, 'db.sqlite') }),
      tablePrefix: '',
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const postgres: StoreBackend = {
  name: 'postgres',
  maxKeyBytes: 2000,
  async create() {
    const id = tag();
    const app = `etcd_tree_test_${id}`;
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', app);
    const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      c.on('error', () => undefined);
      await c.connect();
      try {
        return await fn(c);
      } finally {
        await c.end();
      }
    };
    const tablePrefix = `t${id}_`;
    return {
      dialect: new PostgresDialect({ url: url.toString(), poolMax: 4 }),
      tablePrefix,
      secondWriter: (statementTimeoutMs) => new PostgresDialect({ url: url.toString(), poolMax: 2, statementTimeoutMs }),
      throughPort: (port, statementTimeoutMs) => new PostgresDialect({ url: withPort(url.toString(), port, url.password), poolMax: 2, statementTimeoutMs, connectTimeoutMs: 1_000 }),
      serverPort: Number(url.port || 5432),
      killConnections: () =>
        admin(async (c) => (await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app])).rowCount ?? 0),
      connectionCount: () =>
        admin(async (c) => Number((await c.query('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0].n)),
      cleanup: () =>
        admin(async (c) => {
          await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
          await c.query(['meta', 'log', 'kv', 'lease'].map((t) => `DROP TABLE IF EXISTS ${tablePrefix}${t}`).join('; '));
        }),
    };
  },
  unreachable(port) {
    return new PostgresDialect({ url: withPort(POSTGRES_URL, port, 's3cret-pw'), connectTimeoutMs: 1_000 });
  },
};

const mysqlBackend: StoreBackend = {
  name: 'mysql',
  maxKeyBytes: 3064,
  async create() {
    const database = `etcd_tree_test_${tag()}`;
    const admin = async <T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> => {
      const c = await mysql.createConnection({ uri: MYSQL_URL });
      c.on('error', () => undefined);
      try {
        return await fn(c);
      } finally {
        await c.end();
      }
    };
    await admin((c) => c.query(`CREATE DATABASE ${database}`));
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    const ids = (c: mysql.Connection) =>
      c.query<mysql.RowDataPacket[]>('SELECT id FROM information_schema.PROCESSLIST WHERE db = ? AND id <> CONNECTION_ID()', [database]).then(([rows]) => rows.map((r) => Number(r.id)));
    const kill = (c: mysql.Connection) =>
      ids(c).then(async (list) => {
        for (const id of list) await c.query(`KILL ${id}`).catch(() => undefined);
        return list.length;
      });
    return {
      dialect: new MysqlDialect({ url: url.toString(), poolMax: 4 }),
      tablePrefix: 't_',
      secondWriter: (statementTimeoutMs) => new MysqlDialect({ url: url.toString(), poolMax: 2, statementTimeoutMs }),
      throughPort: (port, statementTimeoutMs) => new MysqlDialect({ url: withPort(url.toString(), port, url.password), poolMax: 2, statementTimeoutMs, connectTimeoutMs: 1_000 }),
      serverPort: Number(url.port || 3306),
      killConnections: () => admin(kill),
      connectionCount: () => admin(async (c) => (await ids(c)).length),
      cleanup: () =>
        admin(async (c) => {
          await kill(c);
          await c.query(`DROP DATABASE IF EXISTS ${database}`);
        }),
    };
  },
  unreachable(port) {
    return new MysqlDialect({ url: withPort(MYSQL_URL, port, 's3cret-pw'), connectTimeoutMs: 1_000 });
  },
};

/** A TCP server that accepts connections and never says a word (a hung database). */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP proxy to 127.0.0.1:target that can stop forwarding (a network that goes silent). */
export async function pausableProxy(target: number): Promise<{ port: number; pause(): void; resume(): void; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  let paused = false;
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (paused) for (const s of pair) s.pause();
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.on('error', drop);
      s.on('close', drop);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    pause() {
      paused = true;
      for (const pair of pairs) for (const s of pair) s.pause();
    },
    resume() {
      paused = false;
      for (const pair of pairs) for (const s of pair) s.resume();
    },
    close() {
      for (const pair of pairs) for (const s of pair) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ALL: StoreBackend[] = [sqlite, postgres, mysqlBackend];

function selected(): StoreBackend[] {
  const wanted = process.env.BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!wanted) return ALL;
  const unknown = wanted.filter((w) => !ALL.some((b) => b.name === w));
  if (unknown.length) throw new Error(`BACKENDS names unknown backends: ${unknown.join(', ')} (known: ${ALL.map((b) => b.name).join(', ')})`);
  return ALL.filter((b) => wanted.includes(b.name));
}

export const DIALECTS: StoreBackend[] = selected();
