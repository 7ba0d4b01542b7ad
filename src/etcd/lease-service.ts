// etcdserverpb.Lease: Grant, Revoke, KeepAlive (stream), TimeToLive, Leases.
import type * as grpc from '@grpc/grpc-js';
import { context } from '@opentelemetry/api';
import type { LeaseRegistry } from '../lease/lease-registry.ts';
import type { Router } from '../router/router.ts';
import { log } from '../telemetry/logger.ts';
import { endRpcSpan, startStreamSpan } from '../telemetry/tracing.ts';
import { Errors, toGrpcError } from './errors.ts';
import type { HeaderFn } from './header.ts';
import { unaryHandler } from './rpc-handler.ts';

export function leaseService(lessor: LeaseRegistry, router: Router, header: HeaderFn, track: StreamTracker): grpc.UntypedServiceImplementation {
  const current = () => router.currentRevision();
  return {
    LeaseGrant: unaryHandler('/etcdserverpb.Lease/LeaseGrant', async (req: { TTL: number; ID: number }) => {
      const { id, ttl } = await lessor.grant(req.TTL, req.ID);
      return { header: header(await current()), ID: id, TTL: ttl, error: '' };
    }),
    LeaseRevoke: unaryHandler('/etcdserverpb.Lease/LeaseRevoke', async (req: { ID: number }) => {
      await lessor.revoke(req.ID);
      return { header: header(await current()) };
    }),
    LeaseTimeToLive: unaryHandler('/etcdserverpb.Lease/LeaseTimeToLive', async (req: { ID: number; keys: boolean }) => {
      const t = await lessor.timeToLive(req.ID, req.keys);
      const h = header(await current());
      if (!t) return { header: h, ID: req.ID, TTL: -1, grantedTTL: 0, keys: [] };
      return { header: h, ID: req.ID, TTL: t.ttl, grantedTTL: t.grantedTtl, keys: t.keys };
    }),
    LeaseLeases: unaryHandler('/etcdserverpb.Lease/LeaseLeases', async () => {
      return { header: header(await current()), leases: (await lessor.list()).map((ID) => ({ ID })) };
    }),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<{ ID: number }, object>) => {
      const { span, context: streamContext } = startStreamSpan('/etcdserverpb.Lease/LeaseKeepAlive', call.metadata);
      const untrack = track(() => call.emit('error', toGrpcError(Errors.stopped())));
      const finish = (err?: unknown) => {
        untrack();
        endRpcSpan(span, err);
      };
      // Answers go out in request order: each waits for the previous one.
      let previous: Promise<unknown> = Promise.resolve();
      call.on('data', (req: { ID: number }) => {
        // In the stream's trace context: its Redis calls become spans of this stream.
        const answer = previous.then(() =>
          context.with(streamContext, async () => {
            const ttl = await lessor.keepAlive(req.ID);
            return { ttl, rev: await current() };
          }),
        );
        previous = answer.catch(() => undefined);
        answer.then(
          ({ ttl, rev }) => {
            if (!call.writableEnded && !call.destroyed) call.write({ header: header(rev), ID: req.ID, TTL: ttl });
          },
          (err) => {
            const status = toGrpcError(err);
            if (status.unexpected) log.warn({ err }, 'keep-alive failed');
            if (!call.writableEnded) call.emit('error', status);
          },
        );
      });
      call.on('end', () => {
        call.end();
        finish();
      });
      call.on('error', (err) => finish(err));
      call.on('close', () => finish());
    },
  };
}

/** Registers an open stream so shutdown can end it; returns the unregister function. */
export type StreamTracker = (end: () => void) => () => void;
