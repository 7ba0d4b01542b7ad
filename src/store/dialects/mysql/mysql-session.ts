// One MySQL connection running the store's statements. Round trips are what a statement costs
// (a socket write and read on each side), so transaction control (START TRANSACTION,
// SAVEPOINT, ROLLBACK TO, COMMIT) is deferred and sent with the next statement in one
// multi-statement text query, the statement's parameters escaped inline when they are small.
// Other statements go through execute(): a server-side prepared statement per text, cached by
// mysql2 on each connection, integers bound as BIGINT (mysql2 would send DOUBLE, which MySQL
// refuses for LIMIT ?).
import mysql from 'mysql2';
import type { SqlParam, SqlRunner } from '../../dialect.ts';
import { isConnectionLost, translateMysqlError } from './mysql-errors.ts';

const { TypedParameter } = mysql;

type Result = mysql.RowDataPacket[] | mysql.ResultSetHeader;

/** Parameters up to this many bytes travel inline (escaped) with pending control statements. */
const INLINE_BYTES = 4096;
/** ER_SP_DOES_NOT_EXIST: ROLLBACK TO a savepoint the server no longer has (a deadlock rolled back everything). */
const SAVEPOINT_GONE = 1305;

/**
 * Ends a connection now. mysql2's destroy() only half-closes the socket and leaves commands
 * queued on the connection waiting forever; destroying the socket itself makes mysql2 fail
 * them as a lost connection (and a pool drop the connection).
 */
export function killConnection(conn: mysql.Connection): void {
  const stream = (conn as unknown as { stream?: { destroy(): void } }).stream;
  if (stream) stream.destroy();
  else conn.destroy();
}

function bind(params: SqlParam[]): mysql.ExecuteValues[] {
  return params.map((p) => (typeof p === 'number' && Number.isSafeInteger(p) ? TypedParameter.BIGINT(p) : p));
}

function inlineable(params: SqlParam[]): boolean {
  let bytes = 0;
  for (const p of params) if (Buffer.isBuffer(p) || typeof p === 'string') bytes += p.length;
  return bytes <= INLINE_BYTES;
}

/** A failure of the control statements in front of a statement, not of the statement itself. */
function isControlFailure(err: unknown): boolean {
  return (err as { errno?: unknown } | null)?.errno === SAVEPOINT_GONE || isConnectionLost(err);
}

export class MysqlSession implements SqlRunner {
  /** Control statements not sent yet. */
  private pending: string[] = [];
  /** Round trips answered on this session (none yet: a failure may be a stale pooled connection). */
  answered = 0;
  /** Called when deferred control statements fail (the writer's transaction is then lost). */
  onControlFailure: ((err: unknown) => void) | null = null;

  /**
   * @param timeoutMs client-side limit per round trip (a dead network); the connection must be
   *   dropped after it fires.
   */
  constructor(readonly conn: mysql.Connection, private readonly timeoutMs: number | undefined) {}

  defer(sql: string): void {
    this.pending.push(sql);
  }

  /** Forgets unsent control statements (the transaction they belonged to is over). */
  reset(): void {
    this.pending = [];
    this.onControlFailure = null;
  }

  /** Statements in one text-protocol round trip; the last one's result. */
  text(statements: string[]): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.conn.query<mysql.QueryResult>({ sql: statements.join('; '), timeout: this.timeoutMs }, (err, result) => {
        if (err) return reject(err);
        this.answered++;
        // Several statements answer with one result each.
        resolve(statements.length > 1 ? (result as unknown as Result[])[statements.length - 1] : (result as Result));
      });
    });
  }

  /** Sends the pending control statements alone. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const statements = this.pending;
    this.pending = [];
    try {
      await this.text(statements);
    } catch (err) {
      this.onControlFailure?.(err);
      throw err;
    }
  }

  private exec(sql: string, params: SqlParam[]): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.conn.execute<Result>({ sql, timeout: this.timeoutMs }, bind(params), (err, result) => {
        if (err) return reject(err);
        this.answered++;
        resolve(result);
      });
    });
  }

  private async query(sql: string, params: SqlParam[]): Promise<Result> {
    if (this.pending.length > 0) {
      if (inlineable(params)) {
        const statements = [...this.pending, mysql.format(sql, params)];
        this.pending = [];
        try {
          return await this.text(statements);
        } catch (err) {
          if (isControlFailure(err)) this.onControlFailure?.(err);
          throw translateMysqlError(err);
        }
      }
      await this.flush();
    }
    try {
      return await this.exec(sql, params);
    } catch (err) {
      throw translateMysqlError(err);
    }
  }

  async all<T = Record<string, unknown>>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    return (await this.query(sql, params)) as unknown as T[];
  }

  async get<T = Record<string, unknown>>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return ((await this.query(sql, params)) as unknown as T[])[0];
  }

  async run(sql: string, params: SqlParam[] = []): Promise<{ changes: number }> {
    return { changes: ((await this.query(sql, params)) as mysql.ResultSetHeader).affectedRows };
  }
}
