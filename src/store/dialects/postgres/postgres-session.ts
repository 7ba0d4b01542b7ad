// One PostgreSQL connection running the store's statements. Every statement text becomes a
// named prepared statement (parsed once per connection, `?` turned into $1..$n once per text).
// Round trips are what a statement costs (a socket write and read on each side, and the single
// writer runs them one after another), so what need not be waited for is queued and pipelined
// in front of the next statement that must be: transaction control (BEGIN, SAVEPOINT, RELEASE,
// ROLLBACK TO, COMMIT) and, in the writer, write statements (see WriteTx.run). The client runs
// in pipeline mode and the socket is corked around the batch: one write for all of it.
import type pg from 'pg';
import type { SqlParam, SqlRunner } from '../../dialect.ts';
import type { DeliverRows } from '../../put-batch.ts';
import { translatePostgresError } from './postgres-errors.ts';

interface Prepared {
  name: string;
  text: string;
}

/** Statement text -> prepared statement. Process-wide: a name always means the same text. */
const prepared = new Map<string, Prepared>();

/** Rewrites each `?` outside quoted literals and identifiers with `placeholder(n)`, n from 1. */
export function replacePlaceholders(sql: string, placeholder: (n: number) => string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '?') {
      out += placeholder(++n);
      continue;
    }
    out += ch;
  }
  return out;
}

/** `?` placeholders -> $1..$n, leaving quoted literals and identifiers alone. */
export function numberPlaceholders(sql: string): string {
  return replacePlaceholders(sql, (n) => `$${n}`);
}

function statement(sql: string, params: SqlParam[]): pg.QueryConfig {
  let p = prepared.get(sql);
  if (!p) {
    p = { name: `etcd_tree_${prepared.size}`, text: numberPlaceholders(sql) };
    prepared.set(sql, p);
  }
  return { name: p.name, text: p.text, values: params };
}

/**
 * Queued work: control statements (run together as one simple query), a write statement, or a
 * read whose rows are delivered when it is answered.
 */
type Queued = { control: string } | { write: pg.QueryConfig; deliver?: DeliverRows };

export class PostgresSession implements SqlRunner {
  /** Not sent yet, in order. */
  private queue: Queued[] = [];
  /** Round trips answered on this session (none yet: a failure may be a stale pooled connection). */
  answered = 0;
  /** Called when queued control statements fail (the writer's transaction is then lost). */
  onControlFailure: ((err: unknown) => void) | null = null;

  /** `client` must run in pipeline mode. */
  constructor(readonly client: pg.Client) {}

  defer(control: string): void {
    const last = this.queue[this.queue.length - 1];
    if (last && 'control' in last) last.control += `; ${control}`;
    else this.queue.push({ control });
  }

  deferWrite(sql: string, params: SqlParam[]): void {
    this.queue.push({ write: statement(sql, params) });
  }

  deferRead(sql: string, params: SqlParam[], deliver: DeliverRows): void {
    this.queue.push({ write: statement(sql, params), deliver });
  }

  /** Forgets what was not sent (the transaction it belonged to is over). */
  reset(): void {
    this.queue = [];
    this.onControlFailure = null;
  }

  /**
   * Sends the queue and then `final` (if any) in one socket write, and waits for all of it.
   * The first failure in order is thrown; a failed control statement is also reported to
   * onControlFailure. Returns the result of `final`, or of the last queued item.
   */
  async flush(final?: pg.QueryConfig): Promise<pg.QueryResult | undefined> {
    const queue = this.queue;
    this.queue = [];
    if (queue.length === 0 && !final) return undefined;
    const sent: Array<{ control: boolean; answer: Promise<pg.QueryResult | pg.QueryResult[]>; deliver?: DeliverRows }> = [];
    const stream = this.client.connection.stream;
    stream.cork();
    try {
      for (const q of queue) {
        sent.push('control' in q ? { control: true, answer: this.client.query(q.control) } : { control: false, answer: this.client.query(q.write), deliver: q.deliver });
      }
      if (final) sent.push({ control: false, answer: this.client.query(final) });
    } finally {
      stream.uncork();
    }
    const settled = await Promise.allSettled(sent.map((s) => s.answer));
    let failure: { error: unknown } | null = null;
    for (const [i, s] of settled.entries()) {
      if (s.status === 'fulfilled') {
        this.answered++;
        sent[i].deliver?.((s.value as pg.QueryResult).rows);
        continue;
      }
      failure ??= { error: sent[i].control ? s.reason : translatePostgresError(s.reason) };
      // The statements after it ran in a failed transaction (or none): the transaction is lost.
      if (sent[i].control) this.onControlFailure?.(s.reason);
    }
    if (failure) throw failure.error;
    const last = (settled[settled.length - 1] as PromiseFulfilledResult<pg.QueryResult | pg.QueryResult[]>).value;
    return Array.isArray(last) ? last[last.length - 1] : last;
  }

  private async query(sql: string, params: SqlParam[]): Promise<pg.QueryResult> {
    if (this.queue.length > 0) return (await this.flush(statement(sql, params)))!;
    try {
      const result = await this.client.query(statement(sql, params));
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
