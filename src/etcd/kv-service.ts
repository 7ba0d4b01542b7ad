// etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.
import type * as grpc from '@grpc/grpc-js';
import type { Router } from '../router/router.ts';
import { isTxnReadOnly } from '../store/txn-executor.ts';
import type { DeleteRangeRequest, PutRequest, RangeRequest, ResponseHeader, TxnRequest } from '../store/types.ts';
import type { CallContext } from '../child/call-context.ts';
import { Errors } from './errors.ts';
import { reheaded } from './pass-through-reply.ts';
import type { HeaderFn } from './header.ts';
import { checkDelete, checkPut, checkRange, checkTxn } from './request-validation.ts';
import { requestSize, unaryHandler } from './rpc-handler.ts';

export interface KvLimits {
  maxRequestBytes: number;
  maxTxnOps: number;
}

export function kvService(router: Router, header: HeaderFn, limits: KvLimits): grpc.UntypedServiceImplementation {
  // Writes go through etcd's raft proposal size check; reads do not.
  const checkSize = (req: object) => {
    if (requestSize(req) > limits.maxRequestBytes) throw Errors.requestTooLarge();
  };
  // Answers carry this node's header identity, or the one a parent asked its answers to carry.
  const { revision: _, ...ownIdentity } = header(0) as Required<ResponseHeader>;
  const headerFor = (ctx: CallContext): HeaderFn => {
    const identity = ctx.identity;
    return identity ? (revision) => ({ ...identity, revision }) : header;
  };
  // A request that goes whole to one child is answered with the child's bytes, re-headed. The
  // child is asked to answer with the identity this node answers with: then re-heading finds the
  // header right and passes the bytes on without copying them.
  const passThrough = async (method: 'Range' | 'Put' | 'DeleteRange' | 'Txn', req: RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest, ctx: CallContext) => {
    const bytes = await router.forwardWhole(method, req, ctx.identity ? ctx : { ...ctx, identity: ownIdentity });
    return bytes ? reheaded(bytes, headerFor(ctx)) : null;
  };
  return {
    Range: unaryHandler('/etcdserverpb.KV/Range', async (req: RangeRequest, ctx) => {
      checkRange(req);
      const forwarded = await passThrough('Range', req, ctx);
      if (forwarded) return forwarded;
      const res = await router.range(req, ctx);
      return { ...res, header: headerFor(ctx)(res.header.revision) };
    }),
    Put: unaryHandler('/etcdserverpb.KV/Put', async (req: PutRequest, ctx) => {
      checkPut(req);
      checkSize(req);
      const forwarded = await passThrough('Put', req, ctx);
      if (forwarded) return forwarded;
      const res = await router.put(req, ctx);
      return { ...res, header: headerFor(ctx)(res.header.revision) };
    }),
    DeleteRange: unaryHandler('/etcdserverpb.KV/DeleteRange', async (req: DeleteRangeRequest, ctx) => {
      checkDelete(req);
      checkSize(req);
      const forwarded = await passThrough('DeleteRange', req, ctx);
      if (forwarded) return forwarded;
      const res = await router.deleteRange(req, ctx);
      return { ...res, header: headerFor(ctx)(res.header.revision) };
    }),
    Txn: unaryHandler('/etcdserverpb.KV/Txn', async (req: TxnRequest, ctx) => {
      checkTxn(req, limits.maxTxnOps);
      if (!isTxnReadOnly(req)) checkSize(req);
      const forwarded = await passThrough('Txn', req, ctx);
      if (forwarded) return forwarded;
      const { response } = await router.txn(req, ctx);
      return { ...response, header: headerFor(ctx)(response.header.revision) };
    }),
    Compact: unaryHandler('/etcdserverpb.KV/Compact', async (req: { revision: number; physical: boolean }, ctx) => {
      const current = await router.compact(req.revision, req.physical, ctx);
      return { header: headerFor(ctx)(current) };
    }),
  };
}
