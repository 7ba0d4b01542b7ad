// One Watch stream seen from a test: send create/cancel/progress requests, then take responses
// out of an arrival queue with a predicate and a timeout. Nothing here sleeps for a fixed time
// except collectFor(), which is meant for asserting that nothing (more) arrives.
// A timeout or a closed stream is returned as a string (not thrown) so a scenario can record it
// and the comparison with the reference shows where the responses stopped.
import * as grpc from '@grpc/grpc-js';
import type { EtcdClient } from '../support/etcd-client.ts';

export const WAIT_MS = 5_000;
export type WatchResponse = any;
type Match = (r: WatchResponse) => boolean;

export const isCreated = (id?: number): Match => (r) => r.created && (id === undefined || r.watch_id === id);
export const isCanceled = (id?: number): Match => (r) => !r.created && r.canceled && (id === undefined || r.watch_id === id);
/** A response without events that neither creates nor cancels: a progress notification. */
export const isProgress = (id?: number): Match => (r) =>
  !r.created && !r.canceled && r.events.length === 0 && !r.fragment && (id === undefined || r.watch_id === id);

export class WatchStream {
  private readonly queue: WatchResponse[] = [];
  private readonly waiters = new Set<() => void>();
  private closed?: string;
  private readonly call: grpc.ClientDuplexStream<any, any>;

  constructor(client: EtcdClient, metadata?: grpc.Metadata) {
    this.call = client.watch(metadata);
    this.call.on('data', (r) => { this.queue.push(r); this.wakeAll(); });
    this.call.on('error', (err: grpc.ServiceError) => { this.closed ??= `stream error ${grpc.status[err.code]}: ${err.details}`; this.wakeAll(); });
    this.call.on('end', () => { this.closed ??= 'stream ended'; this.wakeAll(); });
  }

  create(req: object): void { this.call.write({ create_request: req }); }
  cancel(watchId: number): void { this.call.write({ cancel_request: { watch_id: watchId } }); }
  requestProgress(): void { this.call.write({ progress_request: {} }); }

  /** Creates a watch and waits for its created response (the first created response queued). */
  async open(req: object, timeoutMs = WAIT_MS): Promise<WatchResponse> {
    this.create(req);
    return this.next(isCreated(), timeoutMs);
  }

  /** Removes and returns the first queued (or next arriving) response that matches. */
  async next(match: Match = () => true, timeoutMs = WAIT_MS): Promise<WatchResponse | string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex(match);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.closed) return this.closed;
      const left = deadline - Date.now();
      if (left <= 0) return `timeout: no matching watch response within ${timeoutMs} ms`;
      await this.arrival(left);
    }
  }

  /**
   * Takes the responses of one watch until `count` events arrived and returns the events
   * flattened: servers may group events into responses differently, but all events of one
   * revision must come in one response (or in its fragments); a split is reported as an entry
   * in the list. Progress notifications are left in the queue. A cancel response, a timeout or
   * a closed stream ends the list with an entry saying so.
   */
  async events(watchId: number, count: number, timeoutMs = WAIT_MS): Promise<unknown[]> {
    const deadline = Date.now() + timeoutMs;
    const out: unknown[] = [];
    let received = 0;
    let lastRev = 0;
    let inFragment = false;
    while (received < count) {
      const r = await this.next((x) => x.watch_id === watchId && (x.events.length > 0 || x.fragment || x.canceled), Math.max(0, deadline - Date.now()));
      if (typeof r === 'string') {
        out.push({ missing: `${count - received} more events`, why: r });
        break;
      }
      if (r.canceled) {
        out.push({ canceled: true, compact_revision: r.compact_revision, cancel_reason: r.cancel_reason });
        break;
      }
      const first = r.events[0]?.kv.mod_revision;
      if (!inFragment && first !== undefined && first === lastRev) out.push({ error: `events of revision ${first} split across responses` });
      out.push(...r.events);
      received += r.events.length;
      lastRev = r.events.at(-1)?.kv.mod_revision ?? lastRev;
      inFragment = r.fragment;
    }
    return out;
  }

  /** Takes the responses already queued that match (nothing waits): e.g. unexpected extra events. */
  leftovers(match: Match = () => true): WatchResponse[] {
    const taken = this.queue.filter(match);
    for (const r of taken) this.queue.splice(this.queue.indexOf(r), 1);
    return taken;
  }

  /** Waits `ms` (a bounded wait: for asserting that nothing arrives), then takes what matched. */
  async collectFor(ms: number, match: Match = () => true): Promise<WatchResponse[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.leftovers(match);
  }

  close(): void {
    this.closed ??= 'closed by the test';
    this.call.cancel();
  }

  private arrival(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.waiters.delete(done); resolve(); };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }
}
