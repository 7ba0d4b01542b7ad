import type { PutArgs, PutUnreadStatements, SqlText } from './sql-text.ts';

// The dialect contract: what a database driver provides to the shared MVCC store. A dialect is
// SQL text (see sql-text.ts), a few hooks and capability flags; all MVCC logic is shared.

/** Parameters are numbers, Buffers, strings or null. SQL uses `?` placeholders everywhere. */
export type SqlParam = number | Buffer | string | null;

export interface SqlRunner {
  all<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T | undefined>;
  run(sql: string, params?: SqlParam[]): Promise<{ changes: number }>;
}

export interface ReadTx extends SqlRunner {}

export interface WriteTx extends SqlRunner {
  /**
   * May be deferred (server dialects): the statement is sent with the next statement whose
   * answer is needed, or when the enclosing savepoint or the transaction ends, where its failure
   * then surfaces (still inside that savepoint); a deferred run resolves with changes = -1.
   * Callers must not rely on `changes`, nor act outside the database on a run's success before
   * the savepoint or the transaction is over.
   */
  run(sql: string, params?: SqlParam[]): Promise<{ changes: number }>;
  /**
   * Runs fn inside a savepoint: if fn throws, only its changes are rolled back and the error
   * is rethrown; the surrounding transaction goes on (group commit relies on this).
   */
  savepoint<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Server dialects: queues a put of a key whose former state is not known, written with
   * `statements` (SqlText.putUnread) like a deferred run, so it costs no round trip of its own.
   * Consecutive puts of distinct keys go out as one set of statements. The key's former row
   * (undefined: it had none) is handed to `deliverPrev` inside the flush that sends the put,
   * before that flush (and so any savepoint end or the commit) returns. A failed flush may never
   * deliver it; the failure surfaces as a deferred run's does. Absent where reads are cheap
   * (SQLite): callers then read, and write with run().
   */
  putLater?(statements: PutUnreadStatements, put: PutArgs, deliverPrev: (row: any) => void): void;
}

export interface DialectCapabilities {
  /**
   * One writer connection, writes serialized in-process (SQLite): concurrent write txns are
   * grouped into one database transaction and one commit (group commit).
   */
  singleWriter: boolean;
  /**
   * The dialect creates the schema itself in open(prefix), outside any transaction, before its
   * first writeTx: its writeTx locks a meta row (so the table must exist first) or its DDL
   * commits implicitly (MySQL). Otherwise the store runs schemaStatements() in its first writeTx.
   */
  schemaOnOpen?: boolean;
  /**
   * Most writes grouped into one transaction. PostgreSQL slows other sessions' reads once a
   * transaction holds more than 64 subtransactions (savepoints), so it asks for 64.
   */
  maxGroupCommit?: number;
  /**
   * writeTx({ optimistic: true }) is worth it: grouped writes then have no savepoints and wait
   * for nothing before the commit, and a failure surfaces as WriteTxRedo (group-commit.ts runs
   * the group again, carefully, each write in its savepoint).
   */
  optimisticWrites?: boolean;
}

export interface WriteTxOptions {
  /** See DialectCapabilities.optimisticWrites. */
  optimistic?: boolean;
  /**
   * Only with `optimistic`: a server dialect sends BEGIN and the leaf's write lock with the
   * transaction's first statements instead of waiting a round trip for them. The caller vouches
   * that nothing needs the lock granted first (every write of the leaf comes from its one commit
   * queue, and no revision is taken before the statements run), and that the connection has
   * just answered (its previous transaction committed a moment ago): a connection closed under
   * us is found out only with the statements, when a retry could no longer be sure that none of
   * them ran.
   */
  beginWithStatements?: boolean;
}

/**
 * An optimistic write transaction hit a database error that may belong to any of its grouped
 * writes. It was rolled back before its COMMIT was sent: nothing of it committed.
 */
export class WriteTxRedo extends Error {
  constructor(cause: unknown) {
    super(`a grouped write failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export interface Dialect {
  readonly kind: 'sqlite' | 'postgres' | 'mysql';
  readonly capabilities: DialectCapabilities;
  /** Statements creating the schema (idempotent), given the table-name prefix. */
  schemaStatements(prefix: string): string[];
  /** The store's statements: sqlText(prefix) with this database's spellings where they differ. */
  statements(prefix: string): SqlText;
  /** Opens the dialect for one leaf; `prefix` is that leaf's table-name prefix (as given to statements()). */
  open(prefix: string): Promise<void>;
  close(): Promise<void>;
  /** A consistent snapshot for several reads. */
  readTx<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T>;
  /** One statement on its own (autocommit): its own consistent snapshot, no BEGIN/COMMIT. */
  readOnce?<T>(sql: string, params: SqlParam[]): Promise<T[]>;
  /** One database transaction holding the write lock for what it touches. */
  writeTx<T>(fn: (tx: WriteTx) => Promise<T>, options?: WriteTxOptions): Promise<T>;
  /** Bytes used by the database (Maintenance.Status dbSize). */
  sizeBytes(): Promise<number>;
  /**
   * The error says the database is down or unreachable (connection refused, reset or killed,
   * timeouts, too many connections...): the store answers UNAVAILABLE naming the leaf.
   * Optional only until every dialect has it (SQLite does not yet); absent: never.
   */
  isUnavailable?(err: unknown): boolean;
  /** The error is a unique-key violation (a revision's log slot is taken: it was fenced). */
  isDuplicate(err: unknown): boolean;
}
