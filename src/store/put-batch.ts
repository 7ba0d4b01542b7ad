// Puts a server writer queued with WriteTx.putLater wait here until anything else is queued or
// sent, then go out together: a run of puts of distinct keys is one set of statements
// (SqlText.putUnread(n)) instead of one set per put. A statement costs the database a parse, a
// plan and an answer whatever its size, so a group commit of 30 puts sends 3 statements to
// MySQL (1 to PostgreSQL) instead of 90 (30). A key put twice ends the run: the second put's
// version derives from the first one's row.
import type { SqlParam } from './dialect.ts';
import type { PutArgs, PutUnreadStatements } from './sql-text.ts';

/** Most puts in one statement. */
const MAX_PUTS = 64;
/**
 * Most key and value bytes in one statement: MySQL sends a statement with its parameters inline
 * only up to 64 KiB of them (mysql-session.ts), a bigger one costs a round trip of its own.
 */
const MAX_BYTES = 48 * 1024;

/** Takes the rows a deferred read answered (see PipelinedSession.deferRead). */
export type DeliverRows = (rows: any[]) => void;

/** Where the batch's statements go: a writer session's queue. */
export interface StatementQueue {
  deferWrite(sql: string, params: SqlParam[]): void;
  deferRead(sql: string, params: SqlParam[], deliver: DeliverRows): void;
}

export class PutBatch {
  private puts: PutArgs[] = [];
  private delivers: Array<(row: any) => void> = [];
  private keys = new Set<string>();
  private bytes = 0;
  private statements: PutUnreadStatements | null = null;

  get size(): number {
    return this.puts.length;
  }

  /** Whether `put` may join the batch; if not, send the batch first. */
  accepts(statements: PutUnreadStatements, put: PutArgs): boolean {
    if (this.puts.length === 0) return true;
    return (
      statements === this.statements &&
      this.puts.length < MAX_PUTS &&
      this.bytes + put.key.length + put.value.length <= MAX_BYTES &&
      !this.keys.has(put.key.toString('latin1'))
    );
  }

  add(statements: PutUnreadStatements, put: PutArgs, deliverPrev: (row: any) => void): void {
    this.statements = statements;
    this.puts.push(put);
    this.delivers.push(deliverPrev);
    this.keys.add(put.key.toString('latin1'));
    this.bytes += put.key.length + put.value.length;
  }

  /** Queues the batch's statements; each put's former row (by key) goes to its deliverPrev. */
  send(queue: StatementQueue): void {
    if (this.puts.length === 0) return;
    const { puts, delivers, statements } = this;
    this.clear();
    for (const statement of statements!(puts.length)) {
      const params = statement.params(puts);
      if (!statement.answersPrev) {
        queue.deferWrite(statement.sql, params);
        continue;
      }
      queue.deferRead(statement.sql, params, (rows) => {
        const former = new Map<string, unknown>();
        for (const row of rows) former.set((row.k as Buffer).toString('latin1'), row);
        puts.forEach((put, i) => delivers[i](former.get(put.key.toString('latin1'))));
      });
    }
  }

  /** Forgets the batch unsent (the savepoint it belonged to was rolled back). */
  clear(): void {
    this.puts = [];
    this.delivers = [];
    this.keys = new Set();
    this.bytes = 0;
    this.statements = null;
  }
}
