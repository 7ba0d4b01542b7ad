// A raw Watch stream (test/support/etcd-client.ts) with its responses recorded and awaitable.
import type * as grpc from '@grpc/grpc-js';
import type { EtcdClient } from '../../support/etcd-client.ts';

export interface RecordedStream {
  call: grpc.ClientDuplexStream<any, any>;
  responses: any[];
  /** Final status once the stream ended, from the 'status' event. */
  status?: grpc.StatusObject;
  ended: Promise<grpc.StatusObject>;
  /** Sends create requests and resolves with their watch ids once all are created. */
  create(...reqs: object[]): Promise<number[]>;
  /** Resolves with the responses seen so far once `pred` holds over them. */
  until(pred: (responses: any[]) => boolean, what: string, timeoutMs?: number): Promise<any[]>;
  events(): any[];
}

export function openWatch(client: EtcdClient, metadata?: grpc.Metadata): RecordedStream {
  const call = client.watch(metadata);
  const responses: any[] = [];
  const waiters = new Set<() => void>();
  const rec: RecordedStream = {
    call,
    responses,
    ended: new Promise((resolve) => {
      call.on('status', (st: grpc.StatusObject) => { rec.status = st; resolve(st); for (const w of waiters) w(); });
    }),
    async create(...reqs) {
      const before = responses.filter((r) => r.created).length;
      for (const r of reqs) call.write({ create_request: r });
      const all = await rec.until((rs) => rs.filter((r) => r.created).length >= before + reqs.length, `${reqs.length} watches created`);
      return all.filter((r) => r.created).slice(before).map((r) => r.watch_id);
    },
    until(pred, what, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred(responses)) { done(); resolve(responses); } else if (rec.status) { done(); reject(new Error(`${what}: stream ended first with ${rec.status.code} ${rec.status.details}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`${what}: not within ${timeoutMs} ms; ${responses.length} responses`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    events: () => responses.flatMap((r) => r.events ?? []),
  };
  call.on('data', (r: any) => { responses.push(r); for (const w of waiters) w(); });
  call.on('error', () => {}); // the status event carries it
  return rec;
}

export const prefixEnd = (p: string): Buffer => {
  const b = Buffer.from(p);
  b[b.length - 1]++;
  return b;
};
