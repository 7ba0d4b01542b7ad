// One PostgreSQL connection running the store's statements. Every statement text becomes a
// named prepared statement (parsed once per connection, `?` turned into $1..$n once per text).
// Transaction-control statements (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO, COMMIT) are deferred
// and sent together, in one round trip, before the next statement.
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

  /**
   * @param combine a parameterless statement may travel with the pending control statements in
   *   one simple query (readers: BEGIN and the head revision in one round trip). Writers keep
   *   control statements apart, so that their failure is told apart from a statement's.
   */
  constructor(readonly client: pg.ClientBase, private readonly combine: boolean) {}

  defer(sql: string): void {
    this.pending.push(sql);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Sends the pending control statements; returns the last one's result. */
  async flush(): Promise<pg.QueryResult | undefined> {
    if (this.pending.length === 0) return undefined;
    const text = this.pending.join('; ');
    this.pending = [];
    const result = last(await this.client.query(text));
    this.answered++;
    return result;
  }

  private async query(sql: string, params: SqlParam[]): Promise<pg.QueryResult> {
    try {
      if (this.pending.length > 0) {
        if (this.combine && params.length === 0) {
          this.pending.push(sql);
          return (await this.flush())!;
        }
        await this.flush();
      }
      const p = preparedOf(sql);
      const result = await this.client.query({ name: p.name, text: p.text, values: params });
      this.answered++;
      return result;
    } catch (err) {
      throw translatePostgresError(err);
    }
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
