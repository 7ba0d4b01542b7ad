// The writer's transaction on a server database (PostgreSQL, MySQL) as the store sees it:
// statements plus savepoints, one per grouped write (group-commit.ts). Nothing is waited for
// that need not be: SAVEPOINT, RELEASE and ROLLBACK TO, write statements (run) and reads whose
// answer is needed only once the write is done (a put's former row, putLater) are queued by the
// dialect's session and go out with the next statement whose answer is needed, or when the
// savepoint ends (so a failure still surfaces inside it); consecutive puts go out as one set of
// statements (put-batch.ts). A put (txn-executor.ts) then costs one round trip, at its
// savepoint's end. Optimistically (a group's first attempt) grouped writes have no savepoints
// and wait for nothing: a put costs no round trip of its own, and a failure has the group
// redone the careful way (WriteTxRedo).
import { WriteTxRedo, type SqlParam, type WriteTx, type WriteTxOptions } from './dialect.ts';
import { PutBatch, type DeliverRows } from './put-batch.ts';
import type { PutArgs, PutUnreadStatements } from './sql-text.ts';

/** What a dialect's writer session offers (postgres-session.ts, mysql-session.ts). */
export interface PipelinedSession<R> {
  /** Called when a queued control statement failed. */
  onControlFailure: ((error: unknown) => void) | null | undefined;
  defer(control: string): void;
  deferWrite(sql: string, params: SqlParam[]): void;
  /** A queued read: its rows go to `deliver` when the queue is sent (see WriteTx.putLater). */
  deferRead(sql: string, params: SqlParam[], deliver: DeliverRows): void;
  /** Sends what is queued; resolves with the last statement's result. */
  flush(): Promise<R | undefined>;
  all<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T | undefined>;
}

export class PipelinedWriteTx<R> implements WriteTx {
  /**
   * Set when a control statement failed: savepoints can no longer isolate the grouped writes
   * (or the lock was not taken), so every later statement and the commit fail with it. (On
   * InnoDB a deadlock rolls the whole transaction back and later statements would autocommit;
   * the next ROLLBACK TO SAVEPOINT then fails and stops them here.)
   */
  private failed: { error: unknown } | null = null;
  /**
   * Optimistically: the first statement that failed (its error may belong to an earlier grouped
   * write than the one that saw it), or a grouped write that failed after it wrote (there is no
   * savepoint to undo it alone). The whole transaction is done again (WriteTxRedo).
   */
  private redo: { error: unknown } | null = null;
  /** Statements queued so far (writes and puts). */
  private queued = 0;
  /** Puts not yet handed to the session: they go with the next thing queued or sent. */
  private readonly puts = new PutBatch();
  private depth = 0;
  /** open[d]: savepoint sp<d> exists and was not released. Guarded by the writer lock. */
  private readonly open: boolean[] = [];

  /**
   * @param checkCommit inspects the COMMIT's result (PostgreSQL answers COMMIT of a failed
   * transaction with ROLLBACK instead of an error)
   * @param optimistic savepoints do not wait for their writes (DialectCapabilities.optimisticWrites)
   */
  constructor(
    private readonly session: PipelinedSession<R>,
    private readonly checkCommit: (result: R | undefined) => void = () => undefined,
    private readonly optimistic = false,
  ) {
    session.onControlFailure = (error) => {
      this.failed ??= { error };
    };
  }

  private check(): void {
    if (this.failed) throw this.failed.error;
    if (this.redo) throw this.redo.error;
  }

  /** A statement's answer; optimistically, its failure dooms the transaction to be redone. */
  private async answer<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (err) {
      if (this.optimistic) this.redo ??= { error: err };
      throw err;
    }
  }

  async all<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T[]> {
    this.check();
    this.puts.send(this.session);
    return this.answer(this.session.all<T>(sql, params));
  }

  async get<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T | undefined> {
    this.check();
    this.puts.send(this.session);
    return this.answer(this.session.get<T>(sql, params));
  }

  /** Deferred (see WriteTx.run): changes is -1. */
  async run(sql: string, params: SqlParam[] = []): Promise<{ changes: number }> {
    this.check();
    this.puts.send(this.session);
    this.session.deferWrite(sql, params);
    this.queued++;
    return { changes: -1 };
  }

  /** Deferred, with the puts next to it (see WriteTx.putLater). */
  putLater(statements: PutUnreadStatements, put: PutArgs, deliverPrev: (row: any) => void): void {
    this.check();
    this.puts.add(this.session, statements, put, deliverPrev);
    this.queued++;
  }

  async savepoint<T>(fn: () => Promise<T>): Promise<T> {
    this.check();
    if (this.optimistic) return this.withoutSavepoint(fn);
    this.puts.send(this.session);
    const d = this.depth++;
    const name = `sp${d}`;
    // Releasing the previous sp<d> (and what nested in it) before re-using the name keeps
    // PostgreSQL from nesting every grouped write inside the previous one (MySQL would replace
    // it anyway).
    if (this.open[d]) this.session.defer(`RELEASE SAVEPOINT ${name}`);
    this.session.defer(`SAVEPOINT ${name}`);
    this.open.length = d;
    this.open[d] = true;
    try {
      const result = await fn();
      this.check();
      // Its queued writes go out now: their failure is this savepoint's.
      this.puts.send(this.session);
      await this.session.flush();
      return result;
    } catch (err) {
      // Puts not sent yet are this savepoint's (it sent the earlier ones when it began).
      this.puts.clear();
      if (!this.failed) this.session.defer(`ROLLBACK TO SAVEPOINT ${name}`);
      this.open.length = d + 1;
      throw err;
    } finally {
      this.depth--;
    }
  }

  /**
   * Optimistically a grouped write has no SAVEPOINT (a subtransaction and a round trip's worth
   * of server work each): its statements go with the next one that needs an answer, at the
   * latest before the commit. If it fails after it wrote, the transaction is redone the careful
   * way, where savepoints isolate it. Failing before it wrote (the usual refusals: a missing
   * lease or key, a compacted or future revision) it fails alone.
   */
  private async withoutSavepoint<T>(fn: () => Promise<T>): Promise<T> {
    const queuedBefore = this.queued;
    try {
      const result = await fn();
      this.check();
      return result;
    } catch (err) {
      if (this.queued !== queuedBefore) this.redo ??= { error: err };
      throw err;
    }
  }

  async commit(): Promise<void> {
    if (this.optimistic) {
      const earlier = this.failed ?? this.redo;
      if (earlier) throw new WriteTxRedo(earlier.error);
    }
    this.check();
    this.puts.send(this.session);
    // Optimistically the queued writes go out with the COMMIT. A failed write stops what follows
    // it (MySQL runs no statement of a text after a failed one; PostgreSQL answers COMMIT of a
    // failed transaction with ROLLBACK), so nothing committed and the group can be redone. Only
    // a failure of the control statements themselves (a lost connection) leaves the outcome
    // unknown.
    this.session.defer('COMMIT');
    let result: R | undefined;
    try {
      result = await this.session.flush();
    } catch (err) {
      if (this.optimistic && !this.failed) throw new WriteTxRedo(err);
      throw err;
    }
    this.checkCommit(result);
  }
}

/** A server dialect's writer connection, as the shared transaction lifecycle needs it. */
export interface PipelinedWriter<R> {
  session: PipelinedSession<R> & { reset(): void };
  /** False once the connection errored or ended: the next transaction connects again. */
  alive: boolean;
}

/** What differs between PostgreSQL and MySQL in running the writer's transaction. */
export interface WriterOps<W extends PipelinedWriter<R>, R> {
  /** The writer connection (the current one, or a new one when it died). */
  connect(): Promise<W>;
  /** Forgets the writer: the next transaction connects again. */
  drop(): void;
  /** BEGIN and the leaf's write lock: control statements, sent together. */
  begin(): readonly string[];
  rollback(writer: W): Promise<unknown>;
  isConnectionLost(err: unknown): boolean;
  /** The connection was closed under us (stale), not timed out: worth one more try. */
  isClosedUnderUs(err: unknown): boolean;
  checkCommit?: (result: R | undefined) => void;
}

/**
 * One writer transaction: begin with the lock, sent alone (a stale reused connection is replaced
 * once) or with the first statements (WriteTxOptions.beginWithStatements), run fn, commit; on
 * failure roll back, or drop the connection when even that is in doubt.
 */
export async function runWriterTx<W extends PipelinedWriter<R>, R, T>(
  ops: WriterOps<W, R>,
  fn: (tx: WriteTx) => Promise<T>,
  reused: () => boolean,
  options: WriteTxOptions = {},
): Promise<T> {
  let writer: W;
  for (let attempt = 0; ; attempt++) {
    const wasReused = reused();
    writer = await ops.connect();
    try {
      writer.session.reset();
      for (const statement of ops.begin()) writer.session.defer(statement);
      // Optimistically a failure of BEGIN or the lock among the statements has the group
      // redone the careful way, which waits for them here.
      if (!(options.optimistic && options.beginWithStatements)) await writer.session.flush();
      break;
    } catch (err) {
      if (ops.isConnectionLost(err)) ops.drop();
      else await ops.rollback(writer).catch(() => ops.drop());
      if (!(attempt === 0 && wasReused && ops.isClosedUnderUs(err))) throw err;
    }
  }
  const tx = new PipelinedWriteTx<R>(writer.session, ops.checkCommit, options.optimistic === true);
  try {
    const result = await fn(tx);
    await tx.commit();
    return result;
  } catch (err) {
    // The commit outcome is unknown if ROLLBACK cannot even be sent: start afresh.
    if (writer.alive && !ops.isConnectionLost(err)) await ops.rollback(writer).catch(() => ops.drop());
    else ops.drop();
    throw err;
  }
}
