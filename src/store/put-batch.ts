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
  /** The puts' keys (latin1: one char per byte), in order. */
  private keys: string[] = [];
  private readonly keySet = new Set<string>();
  private bytes = 0;
  private statements: PutUnreadStatements | null = null;

  /** Adds a put; a put that cannot join the batch sends the batch to `queue` first. */
  add(queue: StatementQueue, statements: PutUnreadStatements, put: PutArgs, deliverPrev: (row: any) => void): void {
    const key = put.key.toString('latin1');
    const size = put.key.length + put.value.length;
    const joins = statements === this.statements && this.puts.length < MAX_PUTS && this.bytes + size <= MAX_BYTES && !this.keySet.has(key);
    if (!joins) this.send(queue);
    this.statements = statements;
    this.puts.push(put);
    this.delivers.push(deliverPrev);
    this.keys.push(key);
    this.keySet.add(key);
    this.bytes += size;
  }

  /** Queues the batch's statements; each put's former row (by key) goes to its deliverPrev. */
  send(queue: StatementQueue): void {
    if (this.puts.length === 0) return;
    const { puts, delivers, keys, statements } = this;
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
        keys.forEach((key, i) => delivers[i](former.get(key)));
      });
    }
  }

  /** Forgets the batch unsent (the savepoint it belonged to was rolled back). */
  clear(): void {
    this.puts = [];
    this.delivers = [];
    this.keys = [];
    this.keySet.clear();
    this.bytes = 0;
    this.statements = null;
  }
}
