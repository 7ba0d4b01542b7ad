// A leaf's SQL as spans (DESIGN.md 9), written once for every dialect: MvccStore wraps its
// dialect in this. With span recording on and inside a traced request:
//   - each transaction is an INTERNAL span ("read transaction <leaf>", "write transaction <leaf>";
//     a group commit's transaction belongs to the request that opened the batch),
//   - each grouped write's savepoint an INTERNAL span "SAVEPOINT <leaf>" in its own request's trace,
//   - each statement the store runs a CLIENT span "<OPERATION> <leaf>" with db.system
//     (sqlite, postgresql, mysql), db.name (the leaf), db.operation and db.statement: the SQL text
//     with its `?` placeholders, never parameter values. A statement the server dialects pipeline
//     (WriteTx.run) is marked etcd_tree.sql.pipelined: its round trip is in the span of the
//     statement, savepoint or transaction it went out with.
// With recording off a call costs one check on top of the dialect's own.
import { SpanKind, trace } from '@opentelemetry/api';
import { inChildSpan, spansRecorded } from '../telemetry/tracing.ts';
import type { Dialect, DialectCapabilities, ReadTx, SqlParam, WriteTx, WriteTxOptions } from './dialect.ts';
import type { SqlText } from './sql-text.ts';

/** OpenTelemetry's db.system values. */
const DB_SYSTEM: Record<Dialect['kind'], string> = { sqlite: 'sqlite', postgres: 'postgresql', mysql: 'mysql' };

type Attributes = Record<string, string | number | boolean>;

/** The statement's first keyword ("SELECT", "INSERT", "WITH"): the span name's operation. */
export function sqlOperation(sql: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(sql);
  return m ? m[1].toUpperCase() : 'SQL';
}

export class TracedDialect implements Dialect {
  readonly kind: Dialect['kind'];
  readonly capabilities: DialectCapabilities;
  readonly readOnce?: <T>(sql: string, params: SqlParam[]) => Promise<T[]>;
  readonly isUnavailable?: (err: unknown) => boolean;
  private readonly attributes: Attributes;

  constructor(
    private readonly inner: Dialect,
    private readonly leaf: string,
  ) {
    this.kind = inner.kind;
    this.capabilities = inner.capabilities;
    this.attributes = { 'db.system': DB_SYSTEM[inner.kind], 'db.name': leaf, 'etcd_tree.leaf': leaf };
    // Optional members stay absent when the dialect lacks them (the store checks for them).
    if (inner.readOnce) {
      this.readOnce = <T>(sql: string, params: SqlParam[]) =>
        spansRecorded() ? this.statement(sql, () => inner.readOnce!<T>(sql, params)) : inner.readOnce!<T>(sql, params);
    }
    if (inner.isUnavailable) this.isUnavailable = (err) => inner.isUnavailable!(err);
  }

  schemaStatements(prefix: string): string[] {
    return this.inner.schemaStatements(prefix);
  }

  statements(prefix: string): SqlText {
    return this.inner.statements(prefix);
  }

  open(prefix: string): Promise<void> {
    return this.inner.open(prefix);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  sizeBytes(): Promise<number> {
    return this.inner.sizeBytes();
  }

  isDuplicate(err: unknown): boolean {
    return this.inner.isDuplicate(err);
  }

  readTx<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    if (!spansRecorded()) return this.inner.readTx(fn);
    return this.span(`read transaction ${this.leaf}`, SpanKind.INTERNAL, 'read transaction', () => this.inner.readTx((tx) => fn(this.tracedRead(tx))));
  }

  writeTx<T>(fn: (tx: WriteTx) => Promise<T>, options?: WriteTxOptions): Promise<T> {
    if (!spansRecorded()) return this.inner.writeTx(fn, options);
    // One wrapper per transaction: the store keys per-transaction state on the tx object.
    return this.span(`write transaction ${this.leaf}`, SpanKind.INTERNAL, 'write transaction', () => this.inner.writeTx((tx) => fn(this.tracedWrite(tx)), options));
  }

  private span<T>(name: string, kind: SpanKind, operation: string, fn: () => Promise<T>, extra?: Attributes): Promise<T> {
    return inChildSpan(name, kind, { ...this.attributes, 'db.operation': operation, ...extra }, fn);
  }

  private statement<T>(sql: string, fn: () => Promise<T>): Promise<T> {
    const operation = sqlOperation(sql);
    return this.span(`${operation} ${this.leaf}`, SpanKind.CLIENT, operation, fn, { 'db.statement': sql });
  }

  private tracedRead(tx: ReadTx): ReadTx {
    return {
      all: <R>(sql: string, params?: SqlParam[]) => this.statement(sql, () => tx.all<R>(sql, params)),
      get: <R>(sql: string, params?: SqlParam[]) => this.statement(sql, () => tx.get<R>(sql, params)),
      run: (sql, params) => this.statement(sql, () => tx.run(sql, params)),
    };
  }

  private tracedWrite(tx: WriteTx): WriteTx {
    const traced: WriteTx = {
      ...this.tracedRead(tx),
      run: (sql, params) =>
        this.statement(sql, async () => {
          const result = await tx.run(sql, params);
          // Deferred (see WriteTx.run): sent later, with what needs an answer.
          if (result.changes === -1) trace.getActiveSpan()?.setAttribute('etcd_tree.sql.pipelined', true);
          return result;
        }),
      savepoint: (fn) => this.span(`SAVEPOINT ${this.leaf}`, SpanKind.INTERNAL, 'SAVEPOINT', () => tx.savepoint(fn)),
    };
    // Deferred like run: spans marked pipelined (their round trip is in the span it went out
    // with), one per statement of a put (several puts may go out as one set of them).
    // Queued outside the span's promise so that a refusal throws to the caller, as untraced.
    if (tx.putLater) {
      traced.putLater = (statements, put, deliverPrev) => {
        tx.putLater!(statements, put, deliverPrev);
        for (const { sql } of statements(1)) void this.statement(sql, async () => void trace.getActiveSpan()?.setAttribute('etcd_tree.sql.pipelined', true));
      };
    }
    return traced;
  }
}
