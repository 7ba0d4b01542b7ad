// One PostgreSQL connection running the store's statements. Every statement text becomes a
// named prepared statement (parsed once per connection, `?` turned into $1..$n once per text).
// Round trips are what a statement costs (a socket write and read on each side), so transaction
// control (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO, COMMIT) is deferred and pipelined in front
// of the next statement: one simple query and the statement go out in a single write (the
// client runs in pipeline mode; the socket is corked around the two).
import type pg from 'pg';
import type { SqlParam, SqlRunner } from '../../dialect.ts';
import { translatePostgresError } from './postgres-errors.ts';

interface Prepared {
  name: string;
  text: string;
}

/** Statement text -> prepared statement. Process-wide: a name always means the same text. */
const prepared = new Map<string, Prepared>();

/** `?` placeholders -> $1..$n, leaving quoted literals and identifiers alone. */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '?') {
      out += `$${++n}`;
      continue;
    }
    out += ch;
  }
  return out;
}

function preparedOf(sql: string): Prepared {
  let p = prepared.get(sql);
  if (!p) {
    p = { name: `etcd_tree_${prepared.size}`, text: numberPlaceholders(sql) };
    prepared.set(sql, p);
  }
  return p;
}

const last = (r: pg.QueryResult | pg.QueryResult[]): pg.QueryResult => (Array.isArray(r) ? r[r.length - 1] : r);

export class PostgresSession implements SqlRunner {
  /** Control statements not sent yet. */
  private pending: string[] = [];
  /** Round trips answered on this session (none yet: a failure may be a stale pooled connection). */
  answered = 0;
  /** Called when deferred control statements fail (the writer's transaction is then lost). */
  onControlFailure: ((err: unknown) => void) | null = null;

  /** `client` must run in pipeline mode. */
  constructor(readonly client: pg.Client) {}

  defer(sql: string): void {
    this.pending.push(sql);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Forgets unsent control statements (the transaction they belonged to is over). */
  reset(): void {
    this.pending = [];
    this.onControlFailure = null;
  }

  private takePending(): string {
    const text = this.pending.join('; ');
    this.pending = [];
    return text;
  }

  /** Sends the pending control statements alone; the last one's result. */
  async flush(): Promise<pg.QueryResult | undefined> {
    if (this.pending.length === 0) return undefined;
    try {
      const result = last(await this.client.query(this.takePending()));
      this.answered++;
      return result;
    } catch (err) {
      this.onControlFailure?.(err);
      throw err;
    }
  }

  private async query(sql: string, params: SqlParam[]): Promise<pg.QueryResult> {
    const p = preparedOf(sql);
    const statement: pg.QueryConfig = { name: p.name, text: p.text, values: params };
    if (this.pending.length === 0) {
      try {
        const result = await this.client.query(statement);
        this.answered++;
        return result;
      } catch (err) {
        throw translatePostgresError(err);
      }
    }
    const stream = this.client.connection.stream;
    stream.cork();
    let control: Promise<unknown>;
    let answer: Promise<pg.QueryResult>;
    try {
      control = this.client.query(this.takePending());
      answer = this.client.query(statement);
    } finally {
      stream.uncork();
    }
    const [c, a] = await Promise.allSettled([control, answer]);
    if (c.status === 'rejected') {
      // The statement ran in a failed transaction (or none): its outcome does not count.
      this.onControlFailure?.(c.reason);
      throw c.reason;
    }
    this.answered++;
    if (a.status === 'rejected') throw translatePostgresError(a.reason);
    this.answered++;
    return a.value;
  }

  async all<T = Record<string, unknown>>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    return (await this.query(sql, params)).rows as T[];
  }

  async get<T = Record<string, unknown>>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return (await this.query(sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: SqlParam[] = []): Promise<{ changes: number }> {
    return { changes: (await this.query(sql, params)).rowCount ?? 0 };
  }
}
