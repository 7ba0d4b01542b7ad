// How a server writer's transaction (pipelined-write-tx.ts) sends puts whose former state it
// does not know (put-batch.ts): a run of puts of distinct keys as one set of statements, in
// order with everything else it queues, each put answered with its own key's former row.
// The session here records what would be sent; the SQL itself runs against the real databases
// in mvcc-store.test.ts ("puts of new and existing keys grouped without a head cache").
import { describe, expect, it } from 'vitest';
import type { SqlParam } from '../../src/store/dialect.ts';
import { PipelinedWriteTx, type PipelinedSession } from '../../src/store/pipelined-write-tx.ts';
import type { DeliverRows } from '../../src/store/put-batch.ts';
import { sqlText, type PutArgs } from '../../src/store/sql-text.ts';

const statements = sqlText('t_').putUnread;
const textOf = new Map<string, string>();
for (let n = 1; n <= 64; n++) statements(n).forEach((s, i) => textOf.set(s.sql, `put×${n}#${i}`));

/** Records the queue; a read answers the rows of the keys in `existing` among its parameters. */
class RecordingSession implements PipelinedSession<undefined> {
  onControlFailure: ((error: unknown) => void) | null = null;
  sent: string[] = [];
  private queue: Array<{ what: string; deliver?: () => void }> = [];
  constructor(private readonly existing: Map<string, { k: Buffer; version: number }> = new Map()) {}
  defer(control: string): void {
    this.queue.push({ what: control });
  }
  deferWrite(sql: string, params: SqlParam[]): void {
    this.queue.push({ what: textOf.get(sql) ?? `${sql} [${params.length}]` });
  }
  deferRead(sql: string, params: SqlParam[], deliver: DeliverRows): void {
    const rows = params.filter((p): p is Buffer => Buffer.isBuffer(p)).flatMap((p) => this.existing.get(p.toString()) ?? []);
    this.queue.push({ what: textOf.get(sql) ?? sql, deliver: () => deliver(rows) });
  }
  async flush(): Promise<undefined> {
    for (const q of this.queue.splice(0)) {
      this.sent.push(q.what);
      q.deliver?.();
    }
    return undefined;
  }
  async all<T>(sql: string): Promise<T[]> {
    await this.flush();
    this.sent.push(sql);
    return [];
  }
  async get<T>(sql: string): Promise<T | undefined> {
    return (await this.all<T>(sql))[0];
  }
}

let rev = 100;
const args = (key: string, bytes = 10): PutArgs => ({ rev: ++rev, seq: 0, key: Buffer.from(key), lease: 0, value: Buffer.alloc(bytes) });

describe('puts sent together (put-batch.ts)', () => {
  it('sends a run of puts of distinct keys as one set of statements, each answered with its own former row', async () => {
    const existing = new Map([['b', { k: Buffer.from('b'), version: 4 }]]);
    const session = new RecordingSession(existing);
    const tx = new PipelinedWriteTx(session, undefined, true);
    const prev: Record<string, unknown> = {};
    for (const key of ['a', 'b', 'c']) tx.putLater(statements, args(key), (row) => (prev[key] = row?.version ?? 'none'));
    await tx.commit();
    expect(session.sent).toEqual(['put×3#0', 'put×3#1', 'put×3#2', 'COMMIT']);
    expect(prev).toEqual({ a: 'none', b: 4, c: 'none' });
  });

  it('a key put again, any other statement, a savepoint and the limits each end the run, in order', async () => {
    const session = new RecordingSession();
    const tx = new PipelinedWriteTx(session, undefined, true);
    const ignore = () => undefined;
    tx.putLater(statements, args('a'), ignore);
    tx.putLater(statements, args('b'), ignore);
    tx.putLater(statements, args('a'), ignore); // the second put of a derives from the first
    await tx.run('DELETE FROM t_kv WHERE k = ?', [Buffer.from('z')]);
    tx.putLater(statements, args('c'), ignore);
    await tx.get('SELECT 1');
    for (let i = 0; i < 70; i++) tx.putLater(statements, args(`many/${i}`), ignore);
    for (let i = 0; i < 3; i++) tx.putLater(statements, args(`big/${i}`, 20_000), ignore);
    await tx.commit();
    expect(session.sent).toEqual([
      'put×2#0', 'put×2#1', 'put×2#2',
      'put×1#0', 'put×1#1', 'put×1#2',
      'DELETE FROM t_kv WHERE k = ? [1]',
      'put×1#0', 'put×1#1', 'put×1#2',
      'SELECT 1',
      'put×64#0', 'put×64#1', 'put×64#2',
      'put×8#0', 'put×8#1', 'put×8#2', // the other 6 of the 70 and 2 of 20 kB (48 KiB at most)
      'put×1#0', 'put×1#1', 'put×1#2', // the third of 20 kB
      'COMMIT',
    ]);
  });

  it('in savepoints: a write that fails drops its unsent puts; the others go out at their savepoint end', async () => {
    const session = new RecordingSession();
    const tx = new PipelinedWriteTx(session);
    const ignore = () => undefined;
    await tx.savepoint(async () => {
      tx.putLater(statements, args('a'), ignore);
      tx.putLater(statements, args('b'), ignore);
    });
    await expect(
      tx.savepoint(async () => {
        tx.putLater(statements, args('c'), ignore);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    await tx.commit();
    expect(session.sent).toEqual(['SAVEPOINT sp0', 'put×2#0', 'put×2#1', 'put×2#2', 'RELEASE SAVEPOINT sp0', 'SAVEPOINT sp0', 'ROLLBACK TO SAVEPOINT sp0', 'COMMIT']);
  });
});
