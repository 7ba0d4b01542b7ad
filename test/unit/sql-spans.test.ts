// SQL spans of a leaf (src/store/traced-dialect.ts) and the trace contexts of work shared across
// requests (group commit, batched calls, feeds woken by a commit), on SQLite with the in-memory
// allocator and the SDK's in-memory exporter.
import * as grpc from '@grpc/grpc-js';
import { SpanKind, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter, ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryAllocator } from '../../src/revision/memory-allocator.ts';
import { SerialBatcher } from '../../src/revision/serial-batcher.ts';
import { SqliteDialect } from '../../src/store/dialects/sqlite/sqlite-dialect.ts';
import { MvccStore } from '../../src/store/mvcc-store.ts';
import type { RangeRequest, TxnRequest } from '../../src/store/types.ts';
import { initTracingForTest, shutdownTracing, traceUnary } from '../../src/telemetry/tracing.ts';

const putTxn = (key: string, value: string): TxnRequest => ({
  compare: [],
  success: [{ request: 'request_put', request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: 0, prev_kv: false, ignore_value: false, ignore_lease: false } }],
  failure: [],
});

const rangeOf = (key: string): RangeRequest => ({
  key: Buffer.from(key), range_end: Buffer.alloc(0), limit: 0, revision: 0, sort_order: 0, sort_target: 0, serializable: false,
  keys_only: false, count_only: false, min_mod_revision: 0, max_mod_revision: 0, min_create_revision: 0, max_create_revision: 0,
});

const noLeases = { leaseExists: () => false };

/** A request's server span: `fn` runs in it, as a handler does. */
function request<T>(fn: () => Promise<T>): Promise<{ result: T; traceId: string; spanId: string }> {
  let ids = { traceId: '', spanId: '' };
  return traceUnary('/etcdserverpb.KV/Txn', new grpc.Metadata(), async (span) => {
    ids = { traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
    return fn();
  }).then((result) => ({ result, ...ids }));
}

/** Whether `span` is below the span `ancestorId` in `spans`. */
function isBelow(span: ReadableSpan, ancestorId: string, spans: ReadableSpan[]): boolean {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  for (let p = span.parentSpanContext?.spanId; p; p = byId.get(p)?.parentSpanContext?.spanId) if (p === ancestorId) return true;
  return false;
}

describe('SQL spans', () => {
  let exporter: InMemorySpanExporter;
  let dir: string;
  let store: MvccStore;
  let allocator: MemoryAllocator;

  beforeAll(() => {
    exporter = initTracingForTest();
  });
  afterAll(() => shutdownTracing());
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sql-spans-'));
    allocator = new MemoryAllocator();
    store = new MvccStore('leaf-1', new SqliteDialect({ path: join(dir, 'leaf.db') }), allocator);
    await store.open();
    exporter.reset();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts each statement of a write in a CLIENT span under the request, with the SQL text and no parameter values', async () => {
    const { traceId, spanId } = await request(() => store.txn(putTxn('/registry/pods/ns/secret-name', 'secret-value'), noLeases));
    const spans = exporter.getFinishedSpans();
    const statements = spans.filter((s) => s.kind === SpanKind.CLIENT);
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      expect(s.spanContext().traceId).toBe(traceId);
      expect(isBelow(s, spanId, spans)).toBe(true);
      expect(s.attributes).toMatchObject({ 'db.system': 'sqlite', 'db.name': 'leaf-1' });
      expect(s.name).toBe(`${String(s.attributes['db.operation'])} leaf-1`);
      expect(String(s.attributes['db.statement'])).toMatch(/^\s*[A-Z]+ /);
      for (const v of Object.values(s.attributes)) expect(String(v)).not.toMatch(/secret/);
    }
    expect(statements.some((s) => String(s.attributes['db.statement']).startsWith('INSERT'))).toBe(true);
    // Statements sit in the savepoint, the savepoint in the write transaction.
    const tx = spans.find((s) => s.name === 'write transaction leaf-1')!;
    const savepoint = spans.find((s) => s.name === 'SAVEPOINT leaf-1')!;
    expect(tx.parentSpanContext?.spanId).toBe(spanId);
    expect(savepoint.parentSpanContext?.spanId).toBe(tx.spanContext().spanId);
    for (const s of statements) expect(isBelow(s, savepoint.spanContext().spanId, spans)).toBe(true);
  });

  it('traces reads too', async () => {
    await store.txn(putTxn('/a', '1'), noLeases);
    exporter.reset();
    // A key never written: the store's head cache cannot answer it, the database does.
    const { spanId } = await request(() => store.range(rangeOf('/b'), allocator.allocateNow('other')));
    const spans = exporter.getFinishedSpans();
    const reads = spans.filter((s) => s.kind === SpanKind.CLIENT && s.attributes['db.operation'] === 'SELECT');
    expect(reads.length).toBeGreaterThan(0);
    for (const s of reads) expect(isBelow(s, spanId, spans)).toBe(true);
  });

  it('records nothing for SQL outside a request (background work)', async () => {
    await store.txn(putTxn('/a', '1'), noLeases);
    await store.range(rangeOf('/a'), await allocator.current());
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('keeps each request of a group commit in its own trace', async () => {
    const [first, second] = await Promise.all([
      request(() => store.txn(putTxn('/g/1', 'x'), noLeases)),
      request(() => store.txn(putTxn('/g/2', 'y'), noLeases)),
    ]);
    const spans = exporter.getFinishedSpans();
    // One database transaction for both, in the trace of the request that opened the batch.
    const txs = spans.filter((s) => s.name === 'write transaction leaf-1');
    expect(txs).toHaveLength(1);
    expect(txs[0].spanContext().traceId).toBe(first.traceId);
    const savepoints = spans.filter((s) => s.name === 'SAVEPOINT leaf-1');
    expect(savepoints.map((s) => s.spanContext().traceId).sort()).toEqual([first.traceId, second.traceId].sort());
    const secondsSavepoint = savepoints.find((s) => s.spanContext().traceId === second.traceId)!;
    expect(secondsSavepoint.parentSpanContext?.spanId).toBe(second.spanId);
    // Each request's statements are in its own trace.
    for (const s of spans.filter((x) => x.kind === SpanKind.CLIENT && x.attributes['db.operation'] === 'INSERT')) {
      const owner = s.spanContext().traceId === first.traceId ? first : second;
      expect(isBelow(s, owner.spanId, spans)).toBe(true);
    }
  });

  it('wakes watch feeds outside the trace of the write that woke them', async () => {
    const seen: Array<string | undefined> = [];
    allocator.onAdvance(() => seen.push(trace.getActiveSpan()?.spanContext().traceId));
    await request(() => store.txn(putTxn('/w', '1'), noLeases));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((t) => t === undefined)).toBe(true);
  });
});

describe('batched calls', () => {
  beforeAll(() => {
    initTracingForTest();
  });
  afterAll(() => shutdownTracing());

  it('run in the trace of the batch\'s first request', async () => {
    const runIn: string[] = [];
    const batcher = new SerialBatcher<number, number>(async (reqs) => {
      runIn.push(trace.getActiveSpan()?.spanContext().traceId ?? 'none');
      await new Promise((r) => setTimeout(r, 5));
      return reqs;
    });
    const first = request(() => batcher.submit(1));
    // Arrives while the first call is in flight: rides on the next call, in its own trace.
    await new Promise((r) => setTimeout(r, 1));
    const second = request(() => batcher.submit(2));
    const [a, b] = await Promise.all([first, second]);
    expect(runIn).toEqual([a.traceId, b.traceId]);
  });
});
