// One MySQL connection running the store's statements. Round trips are what a statement costs
// (a socket write and read on each side, and the single writer runs them one after another),
// so what need not be waited for is queued and sent with the next statement that must be:
// transaction control (START TRANSACTION, SAVEPOINT, ROLLBACK TO, COMMIT) and, in the writer,
// write statements (see WriteTx.run), all in one multi-statement text query, parameters
// escaped inline when they are small. Statements sent alone go through execute(): a
// server-side prepared statement per text, cached by mysql2 on each connection, integers bound
// as BIGINT (mysql2 would send DOUBLE, which MySQL refuses for LIMIT ?).
import mysql from 'mysql2';
import type { SqlParam, SqlRunner } from '../../dialect.ts';
import type { DeliverRows } from '../../put-batch.ts';
import { isConnectionLost, translateMysqlError } from './mysql-errors.ts';

const { TypedParameter } = mysql;

export type Result = mysql.RowDataPacket[] | mysql.ResultSetHeader;

/** Statements whose parameters hold up to this many bytes travel inline (escaped) in a batch. */
const INLINE_BYTES = 64 * 1024;
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

type Callback<T> = (err: unknown, result: T) => void;

/**
 * Runs one mysql2 command with a watchdog: no answer within timeoutMs fails it (ETIMEDOUT) and
 * kills the connection. mysql2's own per-query timeout does not cover the PREPARE in front of a
 * first execute() and leaves the connection stuck with the command; this covers both.
 */
export function watched<T>(conn: mysql.Connection, timeoutMs: number | undefined, start: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer =
      timeoutMs === undefined
        ? null
        : setTimeout(() => {
            settled = true;
            reject(Object.assign(new Error(`MySQL did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
            killConnection(conn);
          }, timeoutMs);
    start((err, result) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (err) reject(err);
      else resolve(result);
    });
  });
}

function bind(params: SqlParam[]): mysql.ExecuteValues[] {
  return params.map((p) => (typeof p === 'number' && Number.isSafeInteger(p) ? TypedParameter.BIGINT(p) : p));
}

function inlineable(params: SqlParam[]): boolean {
  let bytes = 0;
  for (const p of params) if (Buffer.isBuffer(p) || typeof p === 'string') bytes += p.length;
  return bytes <= INLINE_BYTES;
}

/**
 * A parameter as a literal, as mysql2's escape writes it. Bytes and numbers, nearly all of a
 * put's parameters, directly: a hex literal needs no escaping, and mysql2's general path
 * (type checks, then a scan of the hex for characters to escape) cost a put's 1 KiB value more
 * than writing it.
 */
function literal(param: SqlParam): string {
  if (Buffer.isBuffer(param)) return `X'${param.toString('hex')}'`;
  if (typeof param === 'number') return String(param);
  return mysql.escape(param);
}

/** Statement text -> the text around its placeholders. Store SQL is a few dozen texts. */
const templates = new Map<string, string[]>();
const MARK = '\u0000';

/**
 * The statement with its parameters escaped inline: mysql2's format, with the placeholders
 * found once per text (by format itself, which knows quoting) rather than by scanning the text
 * again for every statement (that scan was a sixth of a put's CPU).
 */
export function inlineStatement(sql: string, params: SqlParam[]): string {
  let parts = templates.get(sql);
  if (!parts) {
    parts = mysql.format(sql, params.map(() => mysql.raw(MARK))).split(MARK);
    if (templates.size < 1000) templates.set(sql, parts);
  }
  if (parts.length !== params.length + 1) return mysql.format(sql, params);
  let out = parts[0];
  for (let i = 0; i < params.length; i++) out += literal(params[i]) + parts[i + 1];
  return out;
}

/** A failure of the control statements in a batch, not of a statement. */
function isControlFailure(err: unknown): boolean {
  return (err as { errno?: unknown } | null)?.errno === SAVEPOINT_GONE || isConnectionLost(err);
}

interface Statement {
  sql: string;
  params: SqlParam[];
}

/** The statements of a text (split at `;`; store SQL has none in literals), each with its parameters. */
function splitStatements(statement: Statement): Statement[] {
  if (!statement.sql.includes(';')) return [statement];
  let next = 0;
  return statement.sql.split(';').map((sql) => {
    const n = sql.split('?').length - 1;
    const params = statement.params.slice(next, next + n);
    next += n;
    return { sql, params };
  });
}

/** Queued work, in order: control statements, write statements, or reads whose rows are delivered. */
type Queued = { control: string } | { write: Statement; deliver?: DeliverRows };

export class MysqlSession implements SqlRunner {
  /** Not sent yet, in order. */
  private queue: Queued[] = [];
  /** Round trips answered on this session (none yet: a failure may be a stale pooled connection). */
  answered = 0;
  /** Called when queued control statements fail (the writer's transaction is then lost). */
  onControlFailure: ((err: unknown) => void) | null = null;

  /** @param timeoutMs client-side limit per round trip (a dead network): see watched(). */
  constructor(readonly conn: mysql.Connection, private readonly timeoutMs: number | undefined) {}

  defer(control: string): void {
    this.queue.push({ control });
  }

  deferWrite(sql: string, params: SqlParam[]): void {
    this.queue.push({ write: { sql, params } });
  }

  deferRead(sql: string, params: SqlParam[], deliver: DeliverRows): void {
    this.queue.push({ write: { sql, params }, deliver });
  }

  /** Forgets what was not sent (the transaction it belonged to is over). */
  reset(): void {
    this.queue = [];
    this.onControlFailure = null;
  }

  /** Statements in one text-protocol round trip; one result per statement. */
  private async textAll(statements: string[]): Promise<Result[]> {
    const result = await watched<mysql.QueryResult>(this.conn, this.timeoutMs, (cb) => this.conn.query<mysql.QueryResult>(statements.join('; '), cb));
    this.answered++;
    return statements.length > 1 ? (result as unknown as Result[]) : [result as Result];
  }

  /** Statements in one text-protocol round trip; the last one's result. */
  async text(statements: string[]): Promise<Result> {
    const results = await this.textAll(statements);
    return results[results.length - 1];
  }

  private async exec(sql: string, params: SqlParam[]): Promise<Result> {
    const result = await watched<Result>(this.conn, this.timeoutMs, (cb) => this.conn.execute<Result>(sql, bind(params), cb));
    this.answered++;
    return result;
  }

  /**
   * Sends the queue and then `final` (if any): runs of control and small statements as one
   * text query each, a statement with large parameters alone. A failed control statement is
   * reported to onControlFailure. Returns the answer to `final` (or the last result).
   *
   * A `final` text of several statements (mysql-schema.ts: a statement with a fallback) is
   * sent as they are, parameters inline, and answered with the first non-empty result.
   */
  async flush(final?: Statement): Promise<Result | undefined> {
    const items = this.queue;
    this.queue = [];
    const parts = final ? splitStatements(final) : [];
    let result: Result | undefined;
    let batch: string[] = [];
    let readers: Array<DeliverRows | undefined> = [];
    const sendBatch = async (): Promise<Result[]> => {
      if (batch.length === 0) return [];
      const statements = batch;
      const delivers = readers;
      batch = [];
      readers = [];
      try {
        const results = await this.textAll(statements);
        result = results[results.length - 1];
        for (const [i, deliver] of delivers.entries()) deliver?.(results[i] as mysql.RowDataPacket[]);
        return results;
      } catch (err) {
        if (isControlFailure(err)) this.onControlFailure?.(err);
        throw translateMysqlError(err);
      }
    };
    const sendAlone = async (item: Statement, deliver?: DeliverRows) => {
      await sendBatch();
      try {
        result = await this.exec(item.sql, item.params);
      } catch (err) {
        throw translateMysqlError(err);
      }
      deliver?.(result as mysql.RowDataPacket[]);
    };
    for (const item of items) {
      if ('control' in item) {
        batch.push(item.control);
        readers.push(undefined);
      } else if (inlineable(item.write.params)) {
        batch.push(inlineStatement(item.write.sql, item.write.params));
        readers.push(item.deliver);
      } else {
        await sendAlone(item.write, item.deliver);
      }
    }
    if (parts.length === 1 && !inlineable(parts[0].params)) {
      await sendAlone(parts[0]);
      return result;
    }
    for (const part of parts) batch.push(inlineStatement(part.sql, part.params));
    const results = await sendBatch();
    if (parts.length > 1) {
      const answers = results.slice(results.length - parts.length);
      return answers.find((r) => Array.isArray(r) && r.length > 0) ?? answers[answers.length - 1];
    }
    return result;
  }

  private async query(sql: string, params: SqlParam[]): Promise<Result> {
    if (this.queue.length > 0) return (await this.flush({ sql, params }))!;
    try {
      // A text of several statements: each prepared, in turn, until one answers with rows
      // (the common case costs one round trip and no parsing).
      let result!: Result;
      for (const part of splitStatements({ sql, params })) {
        result = await this.exec(part.sql, part.params);
        if (Array.isArray(result) && result.length > 0) break;
      }
      return result;
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
