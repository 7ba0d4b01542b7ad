// The Forward stream between a parent and a child (child/forward-stream.ts against
// etcd/forward-service.ts over a real gRPC connection on loopback): calls answered by id in any
// order, deadlines and cancellation reaching the child, a stream that breaks under calls in
// flight, a child shutting down gracefully, and a child that predates Forward.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ForwardStream, ForwardUnsupported } from '../../src/child/forward-stream.ts';
import { EtcdError } from '../../src/etcd/errors.ts';
import { forwardHandler, type ForwardableMethod } from '../../src/etcd/forward-service.ts';
import { treeService } from '../../src/etcd/proto/load.ts';
import type { IncomingCall } from '../../src/etcd/rpc-handler.ts';

const ECHO = '/test.Echo/Echo';

interface Harness {
  server: grpc.Server;
  port: number;
  /** Calls the child received, with a way to answer each. */
  received: Array<{ text: string; incoming: IncomingCall; answer(text: string): void; fail(code: grpc.status, message: string): void }>;
  endStreams(): void;
}

const servers: grpc.Server[] = [];
const clients: grpc.Client[] = [];

afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
  for (const c of clients.splice(0)) c.close();
});

async function startChild(options: { withForward?: boolean; port?: number } = {}): Promise<Harness> {
  const received: Harness['received'] = [];
  const enders = new Set<() => void>();
  const echo: ForwardableMethod = {
    decode: (bytes) => ({ text: bytes.toString() }),
    encode: (res) => Buffer.from((res as { text: string }).text),
    invoke: (request, incoming) =>
      new Promise((resolve, reject) => {
        received.push({
          text: (request as { text: string }).text,
          incoming,
          answer: (text) => resolve({ text }),
          fail: (code, message) => reject({ code, details: message }),
        });
      }),
  };
  const server = new grpc.Server();
  const impl: grpc.UntypedServiceImplementation = {};
  if (options.withForward !== false) {
    impl.Forward = forwardHandler(new Map([[ECHO, echo]]), (end) => {
      enders.add(end);
      return () => enders.delete(end);
    });
  }
  server.addService(treeService().service, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  servers.push(server);
  return { server, port, received, endStreams: () => [...enders].forEach((end) => end()) };
}

function parentOf(port: number): ForwardStream {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 100 });
  clients.push(client);
  return new ForwardStream(client, (status) => new EtcdError(grpc.status.UNAVAILABLE, `child gone: ${status.details || 'stream ended'}`));
}

function send(parent: ForwardStream, text: string, options: { metadata?: Record<string, string>; deadline?: Date; onCancel?: (cb: () => void) => () => void } = {}): Promise<string> {
  return parent.call(ECHO, Buffer.from(text), options.metadata ?? {}, options.deadline ?? null, options.onCancel ?? null).then((b) => b.toString());
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('Forward stream', () => {
  it('answers calls by id in the order the child finishes them, with each call metadata', async () => {
    const child = await startChild();
    const parent = parentOf(child.port);
    const first = send(parent, 'a', { metadata: { 'etcd-tree-hops': '1' } });
    const second = send(parent, 'b', { metadata: { 'etcd-tree-hops': '2' } });
    await until(() => child.received.length === 2);
    expect(child.received.map((r) => [r.text, r.incoming.metadata.get('etcd-tree-hops')[0]])).toEqual([['a', '1'], ['b', '2']]);
    child.received[1].answer('B');
    await expect(second).resolves.toBe('B');
    child.received[0].fail(grpc.status.FAILED_PRECONDITION, 'etcdserver: nope');
    await expect(first).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, message: 'etcdserver: nope' });
  });

  it('passes the deadline on; when it passes, the caller gets DEADLINE_EXCEEDED and the child a cancellation', async () => {
    const child = await startChild();
    const parent = parentOf(child.port);
    const pending = send(parent, 'slow', { deadline: new Date(Date.now() + 300) });
    await until(() => child.received.length === 1);
    const remaining = Number(child.received[0].incoming.deadline) - Date.now();
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(300);
    let cancelled = false;
    child.received[0].incoming.onCancel!(() => (cancelled = true));
    await expect(pending).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    await until(() => cancelled);
  });

  it('a caller that cancels gets CANCELLED at once and the child is told', async () => {
    const child = await startChild();
    const parent = parentOf(child.port);
    let cancel: () => void = () => {};
    const pending = send(parent, 'x', { onCancel: (cb) => ((cancel = cb), () => {}) });
    await until(() => child.received.length === 1);
    let cancelled = false;
    child.received[0].incoming.onCancel!(() => (cancelled = true));
    cancel();
    await expect(pending).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    await until(() => cancelled);
    // A late answer to the cancelled call is dropped; the stream keeps serving.
    child.received[0].answer('late');
    const next = send(parent, 'y');
    await until(() => child.received.length === 2);
    child.received[1].answer('Y');
    await expect(next).resolves.toBe('Y');
  });

  it('a child that goes away fails the calls in flight with the describe error; the next call opens a new stream', async () => {
    const child = await startChild();
    const parent = parentOf(child.port);
    const pending = send(parent, 'lost');
    await until(() => child.received.length === 1);
    child.server.forceShutdown();
    await expect(pending).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE, message: expect.stringContaining('child gone') });
    const again = await startChild({ port: child.port });
    const next = send(parent, 'again');
    await until(() => again.received.length === 1);
    again.received[0].answer('AGAIN');
    await expect(next).resolves.toBe('AGAIN');
  });

  it('a child shutting down answers the calls in flight, refuses new ones UNAVAILABLE, then ends the stream', async () => {
    const child = await startChild();
    const parent = parentOf(child.port);
    const inFlight = send(parent, 'in flight');
    await until(() => child.received.length === 1);
    child.endStreams();
    await expect(send(parent, 'too late')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE, message: 'etcdserver: server stopped' });
    child.received[0].answer('done');
    await expect(inFlight).resolves.toBe('done');
  });

  it('a child without Forward: the call fails with ForwardUnsupported (nothing ran) and the stream is marked unsupported', async () => {
    const child = await startChild({ withForward: false });
    const parent = parentOf(child.port);
    await expect(send(parent, 'x')).rejects.toBeInstanceOf(ForwardUnsupported);
    expect(parent.unsupported).toBe(true);
  });

  it('a method the child does not forward is UNIMPLEMENTED for that call only', async () => {
    const child = await startChild();
    const parent = parentOf(child.port);
    await expect(parent.call('/test.Echo/Other', Buffer.from('x'), {}, null, null)).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    const ok = send(parent, 'still');
    await until(() => child.received.length === 1);
    child.received[0].answer('fine');
    await expect(ok).resolves.toBe('fine');
  });
});
