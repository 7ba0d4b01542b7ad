// Shared by the tree tests (test/integration/tree/*.test.ts, test/faults/tree.test.ts): watches
// that record every event, writer loops that record what was acknowledged, and the check that a
// watch stream is exactly the acknowledged writes in revision order.
import * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import { ShardSet } from '../../../src/router/shard-set.ts';
import type { Target } from '../../../src/router/target.ts';
import type { EtcdClient } from '../../support/etcd-client.ts';

export const b = (s: string) => Buffer.from(s);

/** The range_end of a prefix. */
export const end = (p: string) => {
  const e = b(p);
  e[e.length - 1]++;
  return e;
};

/** Channel options for a client of a node that gets restarted: it finds the node again quickly. */
export const FAST_RECONNECT: grpc.ChannelOptions = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 };

export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface WatchedEvent {
  key: string;
  rev: number;
  /** 0 = PUT, 1 = DELETE. */
  type: number;
}

export interface RecordedWatch {
  events: WatchedEvent[];
  /** Highest revision the stream reached: the last event's, or a progress notification's. */
  reached(): number;
  /** Set when the server canceled the watch or the stream failed. */
  failure(): string | null;
  close(): void;
}

/**
 * A watch over the prefix that records every event. Resolves once the server confirmed it:
 * every write acknowledged after that is in its stream (or, with startRevision, every write
 * from that revision on).
 */
export async function watchAll(client: EtcdClient, prefix: string, startRevision = 0): Promise<RecordedWatch> {
  const events: WatchedEvent[] = [];
  const stream = client.watch();
  let reached = 0;
  let failure: string | null = null;
  const created = new Promise<void>((resolve, reject) => {
    stream.on('data', (res: any) => {
      if (res.canceled) {
        failure = `watch canceled: ${res.cancel_reason}`;
        reject(new Error(failure));
      }
      if (res.created) resolve();
      for (const e of res.events ?? []) events.push({ key: e.kv.key.toString(), rev: Number(e.kv.mod_revision), type: e.type });
      // An events response reached its last event; a progress notification its header (not the
      // created response: a watch from an old revision has not sent that history yet).
      if (res.created || res.canceled) return;
      const rev = res.events?.length ? Number(res.events[res.events.length - 1].kv.mod_revision) : Number(res.header?.revision ?? 0);
      reached = Math.max(reached, rev);
    });
    stream.on('error', (err: Error) => {
      failure ??= `watch stream failed: ${err.message}`;
      reject(err);
    });
  });
  stream.write({ create_request: { key: b(prefix), range_end: end(prefix), start_revision: startRevision, progress_notify: true } });
  await created;
  return { events, reached: () => reached, failure: () => failure, close: () => stream.cancel() };
}

/** Waits until the watch reached `rev` (failing early, with the reason, if the watch ended). */
export async function watchReaches(w: RecordedWatch, rev: number, what: string, timeoutMs = 30_000): Promise<void> {
  await until(() => {
    if (w.failure()) throw new Error(`${what}: ${w.failure()}`);
    return w.reached() >= rev;
  }, `${what} (at ${w.reached()}, want ${rev})`, timeoutMs);
}

export interface WriteLog {
  /** key -> revision of every acknowledged put. */
  acked: Map<string, number>;
  /** Every key a put was tried for (acknowledged or not). */
  attempted: Set<string>;
}

export const newWriteLog = (): WriteLog => ({ acked: new Map(), attempted: new Set() });

export interface Writer {
  /** Acknowledged puts of this writer. */
  ok(): number;
  errors: grpc.ServiceError[];
  stop(): Promise<void>;
}

/**
 * A put loop: a new key per attempt (a failed put may still have committed, so a key is never
 * retried), recording acknowledged revisions; failures are kept and the loop goes on.
 */
/** Writers not stopped yet: a test that failed half-way leaves them to stopWriters() (afterAll). */
const running = new Set<Writer>();

export async function stopWriters(): Promise<void> {
  await Promise.all([...running].map((w) => w.stop()));
}

export function writer(client: EtcdClient, keyOf: (i: number) => string, log: WriteLog): Writer {
  let stop = false;
  let ok = 0;
  const errors: grpc.ServiceError[] = [];
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const key = keyOf(i);
      log.attempted.add(key);
      try {
        const res = await client.kv.put({ key: b(key), value: b(`v${i}`) });
        log.acked.set(key, Number(res.header.revision));
        ok++;
      } catch (err) {
        errors.push(err as grpc.ServiceError);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  const w: Writer = { ok: () => ok, errors, stop: async () => { stop = true; running.delete(w); await done; } };
  running.add(w);
  return w;
}

/**
 * The stream is exactly the acknowledged writes in revision order: strictly increasing
 * revisions, no key twice, every acknowledged put with its revision, nothing never attempted.
 * (A put that failed may still have committed: it may appear, once.)
 */
export function expectExactStream(events: WatchedEvent[], log: WriteLog): void {
  for (let i = 1; i < events.length; i++) {
    expect(events[i].rev, `event ${i} (${events[i].key}) after revision ${events[i - 1].rev} (${events[i - 1].key})`).toBeGreaterThan(events[i - 1].rev);
  }
  const seen = new Map<string, number>();
  const repeated: string[] = [];
  for (const e of events) {
    if (seen.has(e.key)) repeated.push(`${e.key} at ${seen.get(e.key)} and ${e.rev}`);
    seen.set(e.key, e.rev);
  }
  expect(repeated, 'no event repeated').toEqual([]);
  const missing: string[] = [];
  for (const [key, rev] of log.acked) if (seen.get(key) !== rev) missing.push(`${key}@${rev} (watch: ${seen.get(key)})`);
  expect(missing, 'every acknowledged put in the stream with its revision').toEqual([]);
  for (const key of seen.keys()) expect(log.attempted.has(key), `${key} was written by the test`).toBe(true);
}

/** A call that must fail: resolves with its gRPC error (rejects if it succeeded or took too long). */
export async function failure(call: Promise<unknown>, timeoutMs = 10_000): Promise<grpc.ServiceError> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([call, timeout]);
  } catch (err) {
    if ((err as grpc.ServiceError).code === undefined) throw err;
    return err as grpc.ServiceError;
  } finally {
    clearTimeout(timer);
  }
  throw new Error('the call succeeded; it was expected to fail');
}

/**
 * Which shard a namespace's keys go to, computed as the nodes compute it (the shard ring
 * depends only on the shard names): lets a test pick namespaces on each side of a shard set.
 */
export function shardOf(prefix: string, shards: string[], namespace: string): string {
  const set = new ShardSet(b(prefix), shards.map((name) => ({ name })) as unknown as Target[], 0);
  return set.targetFor(b(`${prefix}${namespace}/x`)).name;
}

/**
 * Namespaces whose configmaps spread over both branches (root shard set) and whose pods spread
 * over both of branch-b's pod leaves, per test/support/tree.ts.
 */
export const TREE_NAMESPACES = ['default', 'team-d', 'kube-public', 'db', 'ns4', 'team-b'];
export const configmapsBranch = (namespace: string) => shardOf('/registry/configmaps/', ['branch-a', 'branch-b'], namespace);
export const podsLeaf = (namespace: string) => shardOf('/registry/pods/', ['pods-my', 'pods-pg'], namespace);
