// MySQL and MariaDB (InnoDB) through mysql2. One dedicated writer connection per leaf
// (capabilities.singleWriter: the store's group commit puts concurrent writes in one
// transaction, each in a savepoint, with one commit) and a pool of readers: a readTx is a
// consistent REPEATABLE READ snapshot (WITH CONSISTENT SNAPSHOT, READ ONLY), a readOnce one
// autocommit statement. A writer transaction starts by locking the leaf's schema_version row
// FOR UPDATE, so writers of several etcd-tree nodes on the same leaf take turns; the writer
// runs READ COMMITTED under it (no gap locks). Sessions use strict sql_mode: a key longer than
// the key column fails instead of being truncated. Round trips are saved where nothing waits
// for them (mysql-session.ts, and a read-only COMMIT rides on the connection's next use). A
// dead connection is replaced by the next transaction; idle connections' errors are caught;
// every command has a watchdog (mysql-session.ts, watched()).
import mysql from 'mysql2';
import type { Dialect, ReadTx, SqlParam, WriteTx, WriteTxOptions } from '../../dialect.ts';
import { runWriterTx, type WriterOps } from '../../pipelined-write-tx.ts';
import { SerialLock } from '../../serial-lock.ts';
import type { SqlText } from '../../sql-text.ts';
import { isClosedUnderUs, isConnectionLost, isMysqlUnavailable, MysqlClosedError } from './mysql-errors.ts';
import { mysqlSchema, mysqlStatements, mysqlTables, mysqlWriteLock } from './mysql-schema.ts';
import { killConnection, MysqlSession, watched, type Result } from './mysql-session.ts';

export interface MysqlOptions {
  /** mysql://user:password@host:port/database: the database is the URL's. */
  url: string;
  /** Reader connections at most (default 10); the writer is one more. */
  poolMax?: number;
  /** Statement timeout (MariaDB max_statement_time, MySQL max_execution_time) and write-lock wait (default 10 000; 0: none). */
  statementTimeoutMs?: number;
  /** Connecting gives up after this long (default 5 000). */
  connectTimeoutMs?: number;
}

const START_READ = 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY';
/** Table-name prefixes go into SQL text: letters, digits and underscores only. */
const PREFIX = /^[A-Za-z0-9_]*$/;

/**
 * A read-only transaction's COMMIT waits (at most this long) to go out in front of the
 * connection's next START TRANSACTION: a read costs two round trips instead of three. The read
 * view it keeps open that long is young enough not to hold purge back.
 */
const COMMIT_DELAY_MS = 20;

/** close() waits this long for goodbyes; then it cuts the sockets (a silent network never answers). */
const CLOSE_GRACE_MS = 1_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** A pooled reader's session settings and deferred COMMIT. */
interface ReaderState {
  commitPending: boolean;
  timer: NodeJS.Timeout | null;
}

interface Writer {
  conn: mysql.Connection;
  session: MysqlSession;
  /** False once the connection errored or ended: the next transaction connects again. */
  alive: boolean;
}

export class MysqlDialect implements Dialect {
  readonly kind = 'mysql' as const;
  readonly capabilities = { singleWriter: true, schemaOnOpen: true, optimisticWrites: true };
  private pool: mysql.Pool | null = null;
  /** The writer connection; replaced when it dies. Guarded by writeLock. */
  private writer: Writer | null = null;
  private readonly writeLock = new SerialLock();
  /** Pool connections whose session settings are made (and that have an error listener). */
  private readonly readers = new WeakMap<mysql.Connection, ReaderState>();
  /** Every reader connection the pool made (close() may have to cut them). */
  private readonly readerConnections = new Set<mysql.PoolConnection>();
  /** MariaDB or MySQL: they spell the statement timeout differently. Known after the first connection. */
  private mariadb: boolean | undefined;
  private prefix = '';
  private closed = false;

  constructor(private readonly options: MysqlOptions) {}

  schemaStatements(prefix: string): string[] {
    return mysqlSchema(prefix);
  }

  statements(prefix: string): SqlText {
    return mysqlStatements(prefix);
  }

  isDuplicate(err: unknown): boolean {
    return (err as { errno?: unknown } | null)?.errno === 1062;
  }

  isUnavailable(err: unknown): boolean {
    return isMysqlUnavailable(err);
  }

  private get timeoutMs(): number {
    return this.options.statementTimeoutMs ?? 10_000;
  }

  /** A round trip with no answer at all (a dead network) fails a little after the server's own timeout. */
  private get clientTimeoutMs(): number | undefined {
    return this.timeoutMs > 0 ? this.timeoutMs + Math.min(this.timeoutMs, 5_000) : undefined;
  }

  private connectionConfig(): mysql.ConnectionOptions {
    return {
      uri: this.options.url,
      connectTimeout: this.options.connectTimeoutMs ?? 5_000,
      // BIGINT as JS numbers (strings only beyond 2^53); binary columns come back as Buffers.
      supportBigNumbers: true,
      bigNumberStrings: false,
      // Control statements travel together; SQL text here is never built from input.
      multipleStatements: true,
      enableKeepAlive: true,
      // Texts arrive with their parameters inline (mysql-session.ts): mysql2 would scan each
      // whole text, values included, for placeholders it has none to fill.
      queryFormat: (sql: string, values: unknown) => (Array.isArray(values) && values.length > 0 ? mysql.format(sql, values) : sql),
    };
  }

  /** Session settings, once per connection. */
  private async setUp(session: MysqlSession, isolation: 'READ COMMITTED' | 'REPEATABLE READ'): Promise<void> {
    if (this.mariadb === undefined) {
      const rows = (await session.text(['SELECT VERSION() AS v'])) as Array<{ v: string }>;
      this.mariadb = /mariadb/i.test(rows[0]?.v ?? '');
    }
    const vars = [`sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'`];
    const t = this.timeoutMs;
    if (t > 0) {
      vars.push(`innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(t / 1000))}`);
      vars.push(this.mariadb ? `max_statement_time = ${t / 1000}` : `max_execution_time = ${t}`);
    }
    await session.text([`SET ${vars.map((v) => `SESSION ${v}`).join(', ')}`, `SET SESSION TRANSACTION ISOLATION LEVEL ${isolation}`]);
  }

  async open(prefix = ''): Promise<void> {
    if (!PREFIX.test(prefix)) throw new Error(`table prefix ${JSON.stringify(prefix)} may hold only letters, digits and underscores`);
    this.prefix = prefix;
    this.closed = false;
    this.pool = mysql.createPool({
      ...this.connectionConfig(),
      connectionLimit: this.options.poolMax ?? 10,
      maxIdle: this.options.poolMax ?? 10,
      idleTimeout: 30_000,
      waitForConnections: true,
      queueLimit: 0,
    });
    // CREATE TABLE commits implicitly in MySQL: the schema is made outside any transaction,
    // statement by statement (IF NOT EXISTS makes concurrent opens harmless).
    await this.writeLock.run(async () => {
      const { session } = await this.connectWriter();
      for (const stmt of mysqlSchema(prefix)) await session.text([stmt]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writeLock.run(async () => {
      const w = this.writer;
      this.writer = null;
      if (!w) return;
      w.alive = false;
      const ended = new Promise<boolean>((resolve) => w.conn.end(() => resolve(true)));
      if (!(await Promise.race([ended, sleep(CLOSE_GRACE_MS).then(() => false)]))) killConnection(w.conn);
    });
    const pool = this.pool;
    this.pool = null;
    if (!pool) return;
    const ended = new Promise<boolean>((resolve) => pool.end(() => resolve(true)));
    if (await Promise.race([ended, sleep(CLOSE_GRACE_MS).then(() => false)])) return;
    for (const conn of this.readerConnections) killConnection(conn);
    await Promise.race([ended, sleep(CLOSE_GRACE_MS)]);
  }

  private async connectWriter(): Promise<Writer> {
    if (this.closed) throw new MysqlClosedError();
    if (this.writer?.alive) return this.writer;
    this.dropWriter();
    const conn = mysql.createConnection(this.connectionConfig());
    const writer: Writer = { conn, session: new MysqlSession(conn, this.clientTimeoutMs), alive: true };
    const dead = () => {
      writer.alive = false;
    };
    conn.on('error', dead);
    conn.on('end', dead);
    try {
      await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
      await this.setUp(writer.session, 'READ COMMITTED');
    } catch (err) {
      dead();
      killConnection(conn);
      throw err;
    }
    this.writer = writer;
    return writer;
  }

  private dropWriter(): void {
    const w = this.writer;
    this.writer = null;
    if (w) {
      w.alive = false;
      killConnection(w.conn);
    }
  }

  private getConnection(): Promise<mysql.PoolConnection> {
    const pool = this.pool;
    if (!pool) return Promise.reject(new MysqlClosedError());
    return new Promise((resolve, reject) => pool.getConnection((err, conn) => (err ? reject(err) : resolve(conn))));
  }

  readTx<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.onReader(true, fn, true);
  }

  /** One statement on its own: autocommit, its own consistent read, one round trip. */
  readOnce<T>(sql: string, params: SqlParam[]): Promise<T[]> {
    return this.onReader(false, (session) => session.all<T>(sql, params), true);
  }

  /** Runs fn on a pooled reader, in a consistent-snapshot transaction or (inTransaction false) not. */
  private async onReader<T>(inTransaction: boolean, fn: (tx: MysqlSession) => Promise<T>, mayRetry: boolean): Promise<T> {
    const conn = await this.getConnection();
    const session = new MysqlSession(conn, this.clientTimeoutMs);
    let state = this.readers.get(conn);
    let tookCommit = false;
    let result: T;
    try {
      if (!state) {
        // mysql2's own pool listener is a `once`: a second error event would be unhandled.
        conn.on('error', () => undefined);
        this.readerConnections.add(conn);
        const forget = () => this.readerConnections.delete(conn);
        conn.once('end', forget);
        conn.once('error', forget);
        await this.setUp(session, 'REPEATABLE READ');
        this.readers.set(conn, (state = { commitPending: false, timer: null }));
        session.answered = 0;
      }
      // The previous read's COMMIT goes first: nothing may run in its read view.
      tookCommit = state.commitPending;
      state.commitPending = false;
      if (tookCommit) session.defer('COMMIT');
      if (inTransaction) session.defer(START_READ);
      result = await fn(session);
    } catch (err) {
      if (isConnectionLost(err)) {
        killConnection(conn);
        // A pooled connection that died while idle fails on its first round trip: the read
        // had not begun, so it runs again on another connection.
        if (mayRetry && session.answered === 0 && isClosedUnderUs(err)) return this.onReader(inTransaction, fn, false);
      } else {
        session.text(['ROLLBACK']).then(
          () => conn.release(),
          () => killConnection(conn),
        );
      }
      throw err;
    }
    // The caller has its answer. A transaction's COMMIT goes out with the connection's next
    // use, or alone a little later if the connection stays idle.
    const s = state;
    s.commitPending = session.answered > 0 ? inTransaction : tookCommit;
    if (s.commitPending && !s.timer) s.timer = setTimeout(() => this.commitIdle(conn, s), COMMIT_DELAY_MS).unref();
    conn.release();
    return result;
  }

  private commitIdle(conn: mysql.PoolConnection, state: ReaderState): void {
    state.timer = null;
    if (!state.commitPending) return;
    state.commitPending = false;
    // A read taking the connection meanwhile queues behind this COMMIT (mysql2 runs commands
    // in order); if it gets no answer, the connection is dropped and that read fails over.
    watched(conn, this.clientTimeoutMs, (cb) => conn.query('COMMIT', cb)).catch(() => killConnection(conn));
  }

  writeTx<T>(fn: (tx: WriteTx) => Promise<T>, options?: WriteTxOptions): Promise<T> {
    return this.writeLock.run(() => runWriterTx(this.writerOps, fn, () => this.writer?.alive === true, options));
  }

  /** How this database begins, locks and rolls back the writer's transaction (pipelined-write-tx.ts). */
  private readonly writerOps: WriterOps<Writer, Result> = {
    connect: () => this.connectWriter(),
    drop: () => this.dropWriter(),
    begin: () => ['START TRANSACTION', mysqlWriteLock(this.prefix)],
    rollback: (writer) => writer.session.text(['ROLLBACK']),
    isConnectionLost,
    isClosedUnderUs,
  };

  async sizeBytes(): Promise<number> {
    return this.readTx(async (tx) => {
      const tables = mysqlTables(this.prefix);
      const row = await tx.get<{ n: number | string }>(
        `SELECT coalesce(sum(data_length + index_length), 0) AS n FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_name IN (${tables.map(() => '?').join(', ')})`,
        tables,
      );
      return Number(row?.n ?? 0);
    });
  }
}
