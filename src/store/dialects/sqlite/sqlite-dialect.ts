// SQLite through better-sqlite3 (synchronous). Two connections: one writer (all writes,
// serialized and grouped by the store's write queue) and one reader; WAL mode lets the reader
// see a stable committed snapshot while the writer works. synchronous=FULL: an acknowledged
// commit survives a crash of the process or the machine.
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Dialect, ReadTx, SqlParam, WriteTx } from '../../dialect.ts';
import { SerialLock } from '../../serial-lock.ts';
import { sqlText, type SqlText } from '../../sql-text.ts';
import { isPackedPage, sqliteStatements, unpackedText, unpackPage } from './sqlite-packed-page.ts';

export interface SqliteOptions {
  path: string;
  /** PRAGMA synchronous; FULL (default) makes every commit durable. */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
}

class Connection {
  private readonly statements = new Map<string, Database.Statement>();
  constructor(readonly db: Database.Database) {}

  prepare(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** Runs a statement without parameters (BEGIN, COMMIT, SAVEPOINT ...): prepared once, unlike exec(). */
  exec(sql: string): void {
    this.prepare(sql).run();
  }

  /** All rows of a statement; a packed page (sqlite-packed-page.ts) comes unpacked. */
  all<T>(sql: string, params: SqlParam[]): T[] {
    const statement = this.prepare(sql);
    if (!isPackedPage(sql)) return statement.all(...params) as T[];
    try {
      return unpackPage(statement.get(...params) as Parameters<typeof unpackPage>[0]) as T[];
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_TOOBIG') throw err;
      return this.prepare(unpackedText(sql)!).all(...params) as T[];
    }
  }

  runner(): ReadTx {
    return {
      all: async <T>(sql: string, params: SqlParam[] = []) => this.all<T>(sql, params),
      get: async <T>(sql: string, params: SqlParam[] = []) => this.prepare(sql).get(...params) as T | undefined,
      run: async (sql: string, params: SqlParam[] = []) => ({ changes: this.prepare(sql).run(...params).changes }),
    };
  }
}

export class SqliteDialect implements Dialect {
  readonly kind = 'sqlite' as const;
  readonly capabilities = { singleWriter: true };
  private writer!: Connection;
  private reader!: Connection;
  private readonly readLock = new SerialLock();
  private readonly writeLock = new SerialLock();
  private savepointDepth = 0;
  private readRunner!: ReadTx;
  private writeRunner!: WriteTx;

  constructor(private readonly options: SqliteOptions) {}

  schemaStatements(p: string): string[] {
    return [
      `CREATE TABLE IF NOT EXISTS ${p}meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${p}log (rev INTEGER NOT NULL, seq INTEGER NOT NULL, k BLOB NOT NULL,
        create_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL, value BLOB NOT NULL,
        kind INTEGER NOT NULL, prev_rev INTEGER NOT NULL)`,
      `CREATE UNIQUE INDEX IF NOT EXISTS ${p}log_rev ON ${p}log (rev, seq)`,
      `CREATE INDEX IF NOT EXISTS ${p}log_key_rev ON ${p}log (k, rev)`,
      `CREATE TABLE IF NOT EXISTS ${p}kv (k BLOB NOT NULL PRIMARY KEY, create_rev INTEGER NOT NULL,
        mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL, value BLOB NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS ${p}kv_lease ON ${p}kv (lease) WHERE lease <> 0`,
      `CREATE TABLE IF NOT EXISTS ${p}lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL)`,
    ];
  }

  statements(p: string): SqlText {
    return sqliteStatements(sqlText(p), p);
  }

  async open(): Promise<void> {
    mkdirSync(dirname(this.options.path), { recursive: true });
    const w = new Database(this.options.path);
    w.pragma('journal_mode = WAL');
    w.pragma(`synchronous = ${this.options.synchronous ?? 'FULL'}`);
    w.pragma('busy_timeout = 5000');
    this.writer = new Connection(w);
    this.writeRunner = { ...this.writer.runner(), savepoint: (f) => this.savepoint(f) };
    const r = new Database(this.options.path);
    r.pragma('busy_timeout = 5000');
    this.reader = new Connection(r);
    this.readRunner = this.reader.runner();
  }

  async close(): Promise<void> {
    await this.writeLock.run(async () => this.writer?.db.close());
    await this.readLock.run(async () => this.reader?.db.close());
  }

  readTx<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.readLock.run(async () => {
      const reader = this.reader;
      reader.exec('BEGIN');
      try {
        return await fn(this.readRunner);
      } finally {
        reader.exec('COMMIT');
      }
    });
  }

  readOnce<T>(sql: string, params: SqlParam[]): Promise<T[]> {
    return this.readLock.run(async () => this.reader.all<T>(sql, params));
  }

  writeTx<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    return this.writeLock.run(async () => {
      const writer = this.writer;
      writer.exec('BEGIN IMMEDIATE');
      try {
        // A fresh object per transaction: callers may key per-transaction state on it.
        const result = await fn(Object.create(this.writeRunner) as WriteTx);
        writer.exec('COMMIT');
        return result;
      } catch (err) {
        if (writer.db.inTransaction) writer.exec('ROLLBACK');
        throw err;
      }
    });
  }

  private async savepoint<T>(fn: () => Promise<T>): Promise<T> {
    const name = `sp${this.savepointDepth++}`;
    const writer = this.writer;
    writer.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn();
      writer.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      writer.exec(`ROLLBACK TO ${name}`);
      writer.exec(`RELEASE ${name}`);
      throw err;
    } finally {
      this.savepointDepth--;
    }
  }

  isDuplicate(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const suffix of ['', '-wal']) {
      try {
        total += statSync(this.options.path + suffix).size;
      } catch {
        /* the WAL file may not exist */
      }
    }
    return total;
  }
}
