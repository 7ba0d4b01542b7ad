// One MySQL connection running the store's statements. Statements go through execute(): a
// server-side prepared statement per text, cached by mysql2 on each connection. Integers are
// bound as BIGINT (mysql2 would send DOUBLE, which MySQL refuses for LIMIT ?). Transaction-
// control statements are deferred and sent together, in one round trip (multipleStatements),
// before the next statement.
import mysql from 'mysql2';
import type { SqlParam, SqlRunner } from '../../dialect.ts';
import { translateMysqlError } from './mysql-errors.ts';

const { TypedParameter } = mysql;

type Result = mysql.RowDataPacket[] | mysql.ResultSetHeader;

function bind(params: SqlParam[]): mysql.ExecuteValues[] {
  return params.map((p) => (typeof p === 'number' && Number.isSafeInteger(p) ? TypedParameter.BIGINT(p) : p));
}

export class MysqlSession implements SqlRunner {
  /** Control statements not sent yet. */
  private pending: string[] = [];
  /** Round trips answered on this session (none yet: a failure may be a stale pooled connection). */
  answered = 0;

  /**
   * @param combine a parameterless statement may travel with the pending control statements in
   *   one text query (readers: START TRANSACTION and the head revision in one round trip).
   * @param timeoutMs client-side limit per round trip (a dead network); the connection must be
   *   dropped after it fires.
   */
  constructor(readonly conn: mysql.Connection, private readonly combine: boolean, private readonly timeoutMs: number | undefined) {}

  defer(sql: string): void {
    this.pending.push(sql);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
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

  /** Sends the pending control statements. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const statements = this.pending;
    this.pending = [];
    await this.text(statements);
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
    try {
      if (this.pending.length > 0) {
        if (this.combine && params.length === 0) {
          const statements = [...this.pending, sql];
          this.pending = [];
          return await this.text(statements);
        }
        await this.flush();
      }
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
