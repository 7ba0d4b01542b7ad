// PostgreSQL through node-postgres. One dedicated writer connection per leaf (capabilities
// .singleWriter: the store's group commit puts concurrent writes in one transaction, each in a
// savepoint, with one commit) and a pool of readers: a readTx is a REPEATABLE READ READ ONLY
// snapshot, a readOnce one autocommit statement. A writer transaction starts by locking the
// leaf's schema_version row FOR UPDATE, so writers of several etcd-tree nodes on the same leaf
// take turns; READ COMMITTED is enough under it. Round trips are saved where nothing waits for
// them (postgres-session.ts, and a read-only COMMIT rides on the connection's next use). A dead
// connection is replaced by the next transaction; idle connections' errors are caught; every
// query has a server-side and a client-side timeout. Big head pages come as binary COPY on a
// pool of their own (postgres-binary-copy.ts).
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Dialect, ReadTx, SqlParam, WriteTx, WriteTxOptions } from '../../dialect.ts';
import { runWriterTx, type WriterOps } from '../../pipelined-write-tx.ts';
import { SerialLock } from '../../serial-lock.ts';
import type { SqlText } from '../../sql-text.ts';
import { copyColumnsOf, decodeBinaryCopy, inlineParams, type CopyColumn } from './postgres-binary-copy.ts';
import { isClosedUnderUs, isConnectionLost, isPostgresUnavailable, PostgresClosedError } from './postgres-errors.ts';
import { postgresSchema, postgresStatements, postgresTables, postgresWriteLock } from './postgres-schema.ts';
import { PostgresSession } from './postgres-session.ts';

export interface PostgresOptions {
  /** postgres://user:password@host:port/database[?application_name=...]: the database is the URL's. */
  url: string;
  /** Reader connections at most (default 10); the writer is one more. */
  poolMax?: number;
  /** Server-side statement timeout, also bounding the wait for the write lock (default 10 000; 0: none). */
  statementTimeoutMs?: number;
  /** Connecting, and waiting for a free reader, gives up after this long (default 5 000). */
  connectTimeoutMs?: number;
}

const INT8 = 20;
const NUMERIC = 1700;
/**
 * bigint and numeric (count(*), max()) as JS numbers: revisions and counts stay below 2^53.
 * (Results stay in text format: node-postgres decodes every field as UTF-8 before a binary
 * parser sees it, which would corrupt bytea; text bytea is hex, decoded by pg-types.)
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const BEGIN_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
const BEGIN_WRITE = 'BEGIN ISOLATION LEVEL READ COMMITTED';
/** Table-name prefixes go into SQL text: letters, digits and underscores only. */
const PREFIX = /^[A-Za-z0-9_]*$/;

/**
 * A read-only transaction's COMMIT waits (at most this long) to go out in front of the
 * connection's next BEGIN: a read costs two round trips instead of three. The snapshot it
 * keeps open that long is young enough not to hold vacuum back.
 */
const COMMIT_DELAY_MS = 20;

/** close() waits this long for goodbyes; then it cuts the sockets (a silent network never answers). */
const CLOSE_GRACE_MS = 1_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Ends a client politely, or cuts its socket if that takes longer than CLOSE_GRACE_MS. */
async function endClient(client: pg.Client): Promise<void> {
  const ended = client.end().then(
    () => true,
    () => true,
  );
  if (!(await Promise.race([ended, sleep(CLOSE_GRACE_MS).then(() => false)]))) client.connection.stream.destroy();
}

/** A pooled reader's deferred COMMIT. */
interface ReaderState {
  commitPending: boolean;
  timer: NodeJS.Timeout | null;
}

interface Writer {
  client: pg.Client;
  session: PostgresSession;
  /** False once the connection errored or ended: the next transaction connects again. */
  alive: boolean;
}

export class PostgresDialect implements Dialect {
  readonly kind = 'postgres' as const;
  readonly capabilities = { singleWriter: true, schemaOnOpen: true, maxGroupCommit: 64, optimisticWrites: true };
  private pool: pg.Pool | null = null;
  /** Readers for binary COPY (postgres-binary-copy.ts), outside pipeline mode, which refuses COPY. */
  private copyPool: pg.Pool | null = null;
  /** The writer connection; replaced when it dies. Guarded by writeLock. */
  private writer: Writer | null = null;
  private readonly writeLock = new SerialLock();
  private readonly readers = new WeakMap<pg.Client, ReaderState>();
  /** Every reader connection the pool holds (close() may have to cut them). */
  private readonly readerClients = new Set<pg.Client>();
  private prefix = '';
  private closed = false;

  constructor(private readonly options: PostgresOptions) {}

  schemaStatements(prefix: string): string[] {
    return postgresSchema(prefix);
  }

  statements(prefix: string): SqlText {
    return postgresStatements(prefix);
  }

  isDuplicate(err: unknown): boolean {
    return (err as { code?: unknown } | null)?.code === '23505';
  }

  isUnavailable(err: unknown): boolean {
    return isPostgresUnavailable(err);
  }

  private clientConfig(role: string): pg.ClientConfig {
    const timeout = this.options.statementTimeoutMs ?? 10_000;
    return {
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5_000,
      keepAlive: true,
      // Queries are sent without waiting for the previous answer (postgres-session.ts).
      pipeline: true,
      fallback_application_name: `etcd-tree ${role}`,
      types,
      ...(timeout > 0 && {
        statement_timeout: timeout,
        // No answer at all (a dead network): give up a little after the server would have.
        query_timeout: timeout + Math.min(timeout, 5_000),
        // A stalled node must not hold the leaf's write lock forever.
        idle_in_transaction_session_timeout: Math.max(timeout * 6, 60_000),
      }),
    };
  }

  /** A pool of reader connections, in pipeline mode or not (COPY cannot run in it). */
  private newReaderPool(role: string, pipeline: boolean): pg.Pool {
    const pool = new pg.Pool({ ...this.clientConfig(role), pipeline, max: this.options.poolMax ?? 10, idleTimeoutMillis: 30_000 });
    // An idle client's error (server restart, network) is reported here: the pool drops the
    // client. Checked-out clients get a listener of their own (pg-pool removes its own then).
    pool.on('error', () => undefined);
    pool.on('connect', (client) => {
      client.on('error', () => undefined);
      this.readerClients.add(client);
    });
    pool.on('remove', (client) => this.readerClients.delete(client));
    return pool;
  }

  /** Readers connect when first used; the writer connects now, to create the schema (so an unreachable server fails open()). */
  async open(prefix = ''): Promise<void> {
    if (!PREFIX.test(prefix)) throw new Error(`table prefix ${JSON.stringify(prefix)} may hold only letters, digits and underscores`);
    this.prefix = prefix;
    this.closed = false;
    this.pool = this.newReaderPool('reader', true);
    this.copyPool = this.newReaderPool('bulk reader', false);
    await this.writeLock.run(async () => {
      const { client } = await this.connectWriter();
      // Nodes opening the same leaf at once would race on the catalog: one at a time.
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('etcd-tree:' || current_schema() || ':${prefix}'))`);
      try {
        for (const stmt of postgresSchema(prefix)) await client.query(stmt);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writeLock.run(async () => {
      const w = this.writer;
      this.writer = null;
      if (w) await endClient(w.client);
    });
    const pools = [this.pool, this.copyPool].filter((pool) => pool !== null);
    this.pool = null;
    this.copyPool = null;
    if (pools.length === 0) return;
    const ended = Promise.all(pools.map((pool) => pool.end().catch(() => undefined))).then(() => true);
    if (await Promise.race([ended, sleep(CLOSE_GRACE_MS).then(() => false)])) return;
    for (const client of this.readerClients) client.connection.stream.destroy();
    await Promise.race([ended, sleep(CLOSE_GRACE_MS)]);
  }

  private async connectWriter(): Promise<Writer> {
    if (this.closed) throw new PostgresClosedError();
    if (this.writer?.alive) return this.writer;
    this.dropWriter();
    const client = new pg.Client(this.clientConfig('writer'));
    const writer: Writer = { client, session: new PostgresSession(client), alive: true };
    const dead = () => {
      writer.alive = false;
    };
    client.on('error', dead);
    client.on('end', dead);
    try {
      await client.connect();
    } catch (err) {
      dead();
      void endClient(client);
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
      void endClient(w.client);
    }
  }

  readTx<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.onReader(true, fn, true);
  }

  /** One statement on its own: autocommit, its own snapshot, one round trip. */
  readOnce<T>(sql: string, params: SqlParam[]): Promise<T[]> {
    const columns = copyColumnsOf(sql);
    if (columns) return this.copyOnce<T>(inlineParams(sql, params), columns, true);
    return this.onReader(false, (session) => session.all<T>(sql, params), true);
  }

  /** Runs a binary COPY read (a statement of binaryCopyRead, parameters inlined) on a bulk reader. */
  private async copyOnce<T>(text: string, columns: readonly CopyColumn[], mayRetry: boolean): Promise<T[]> {
    if (!this.copyPool) throw new PostgresClosedError();
    const client = await this.copyPool.connect();
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of client.query(copyTo(text))) chunks.push(chunk as Buffer);
    } catch (err) {
      const lost = isConnectionLost(err);
      // A failed statement leaves the connection usable (not in a transaction); a lost one is dropped.
      client.release(lost || undefined);
      // A pooled connection that died while idle fails before any data: run it on another one.
      if (lost && mayRetry && chunks.length === 0 && isClosedUnderUs(err)) return this.copyOnce(text, columns, false);
      throw err;
    }
    client.release();
    return decodeBinaryCopy<T>(Buffer.concat(chunks), columns);
  }

  /** Runs fn on a pooled reader, in a REPEATABLE READ transaction or (inTransaction false) not. */
  private async onReader<T>(inTransaction: boolean, fn: (tx: PostgresSession) => Promise<T>, mayRetry: boolean): Promise<T> {
    if (!this.pool) throw new PostgresClosedError();
    const client = await this.pool.connect();
    let state = this.readers.get(client);
    if (!state) this.readers.set(client, (state = { commitPending: false, timer: null }));
    const session = new PostgresSession(client);
    // The previous read's COMMIT goes first: nothing may run in its snapshot.
    const tookCommit = state.commitPending;
    state.commitPending = false;
    if (tookCommit) session.defer('COMMIT');
    if (inTransaction) session.defer(BEGIN_READ);
    let result: T;
    try {
      result = await fn(session);
    } catch (err) {
      if (isConnectionLost(err)) {
        client.release(true);
        // A pooled connection that died while idle fails on its first round trip: the read
        // had not begun, so it runs again on another connection.
        if (mayRetry && session.answered === 0 && isClosedUnderUs(err)) return this.onReader(inTransaction, fn, false);
      } else {
        // Whatever was sent (a BEGIN may have gone out with a failed statement) is undone
        // before the connection is reused.
        client.query('ROLLBACK').then(() => client.release(), (e: Error) => client.release(e));
      }
      throw err;
    }
    // The caller has its answer. A transaction's COMMIT goes out with the connection's next
    // use, or alone a little later if the connection stays idle.
    state.commitPending = session.answered > 0 ? inTransaction : tookCommit;
    if (state.commitPending && !state.timer) state.timer = setTimeout(() => this.commitIdle(client, state), COMMIT_DELAY_MS).unref();
    client.release();
    return result;
  }

  private commitIdle(client: pg.Client, state: ReaderState): void {
    state.timer = null;
    if (!state.commitPending) return;
    state.commitPending = false;
    // A read taking the connection meanwhile queues behind this COMMIT (pipeline order).
    client.query('COMMIT').catch(() => undefined);
  }

  writeTx<T>(fn: (tx: WriteTx) => Promise<T>, options?: WriteTxOptions): Promise<T> {
    return this.writeLock.run(() => runWriterTx(this.writerOps, fn, () => this.writer?.alive === true, options));
  }

  /** How this database begins, locks and rolls back the writer's transaction (pipelined-write-tx.ts). */
  private readonly writerOps: WriterOps<Writer, pg.QueryResult> = {
    connect: () => this.connectWriter(),
    drop: () => this.dropWriter(),
    begin: () => [BEGIN_WRITE, postgresWriteLock(this.prefix)],
    rollback: (writer) => writer.client.query('ROLLBACK'),
    isConnectionLost,
    isClosedUnderUs,
    // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not with an error.
    checkCommit: (result) => {
      if (result?.command === 'ROLLBACK') throw new Error('PostgreSQL rolled the transaction back at commit: a statement in it had failed');
    },
  };

  async sizeBytes(): Promise<number> {
    return this.readTx(async (tx) => {
      const tables = postgresTables(this.prefix);
      const row = await tx.get<{ n: number }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS n FROM pg_class c
         WHERE c.oid IN (${tables.map(() => 'to_regclass(?)').join(', ')})`,
        tables,
      );
      return Number(row?.n ?? 0);
    });
  }
}
