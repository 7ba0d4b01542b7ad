// What a request carries across the tree (DESIGN.md 7): its trace, how many nodes it crossed,
// the parent's read index, its deadline and cancellation. Built once per incoming RPC from its
// gRPC metadata; turned back into metadata for each call to a child.
import * as grpc from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import { EtcdError } from '../etcd/errors.ts';
import type { ResponseHeader } from '../store/types.ts';
import { injectSpan } from '../telemetry/tracing.ts';

/** gRPC metadata keys of the tree protocol. */
export const TreeMetadata = {
  /** Nodes a request crossed before this one; each hop adds one. */
  hops: 'etcd-tree-hops',
  /** The parent's read revision: the child waits for its watermark to reach it and reads there. */
  readIndex: 'etcd-tree-read-index',
  /** On a Watch stream: send a progress response whenever a watch's revision advances. */
  eagerProgress: 'etcd-tree-eager-progress',
} as const;

/** More hops than this is a routing loop (a child routing back up), not a deep tree. */
export const MAX_HOPS = 16;

/** The identity part of a response header (cluster, member, raft term). */
export type ResponseIdentity = Required<Omit<ResponseHeader, 'revision'>>;

export interface CallContext {
  /** The incoming RPC's server span: calls to children continue its trace. */
  span: Span | null;
  /** Nodes crossed before this one. */
  hops: number;
  /** The parent's read index, or 0 when the request came from a client. */
  readIndex: number;
  deadline: grpc.Deadline | null;
  /** Runs `cb` if the caller cancels or goes away; returns the unsubscribe function. */
  onCancel: ((cb: () => void) => () => void) | null;
  /**
   * The header identity this request's answer is passed on with, when a parent said so on its
   * Forward stream (forward-stream.ts): answered with it, the parent passes the bytes on as they are.
   */
  identity?: ResponseIdentity | null;
}

/** For work a node starts itself (lease expiry, compaction of its own leaves, tests). */
export const LOCAL_CALL: CallContext = { span: null, hops: 0, readIndex: 0, deadline: null, onCancel: null };

function intHeader(metadata: grpc.Metadata, key: string): number {
  const v = metadata.get(key)[0];
  if (v === undefined) return 0;
  const n = Number(typeof v === 'string' ? v : v.toString());
  if (!Number.isSafeInteger(n) || n < 0) throw new EtcdError(grpc.status.INVALID_ARGUMENT, `etcd-tree: metadata ${key} must be a non-negative integer`);
  return n;
}

const LOOP_MESSAGE = 'the routes form a loop';

export function hopsOf(metadata: grpc.Metadata): number {
  const hops = intHeader(metadata, TreeMetadata.hops);
  if (hops >= MAX_HOPS) {
    throw new EtcdError(grpc.status.FAILED_PRECONDITION, `etcd-tree: request crossed ${hops} nodes; ${LOOP_MESSAGE} (limit ${MAX_HOPS} hops)`);
  }
  return hops;
}

/**
 * The loop error as the first node that forwarded into the loop passes it back: naming the key
 * and the child it was routed to (the node that hit the limit knew neither).
 */
export function describeLoop(err: EtcdError, child: string, key: Buffer | undefined): EtcdError {
  if (err.code !== grpc.status.FAILED_PRECONDITION || !err.message.includes(LOOP_MESSAGE) || err.message.includes('; routed ')) return err;
  const what = key ? `key "${key.toString()}"` : 'the request';
  return new EtcdError(err.code, `${err.message}; routed ${what} to child node ${child}`);
}

export function incomingContext(metadata: grpc.Metadata, span: Span | null, deadline: grpc.Deadline | null, onCancel: CallContext['onCancel'], identity: ResponseIdentity | null = null): CallContext {
  return { span, hops: hopsOf(metadata), readIndex: intHeader(metadata, TreeMetadata.readIndex), deadline, onCancel, identity };
}

/**
 * The metadata of a call to a child, as plain fields: one more hop, the trace (`span` = the
 * client span), a read index. A Forward message carries them as they are (forward-stream.ts).
 */
export function childFields(ctx: CallContext, span: Span | null, readIndex = 0): Record<string, string> {
  const fields: Record<string, string> = { [TreeMetadata.hops]: String(ctx.hops + 1) };
  if (readIndex > 0) fields[TreeMetadata.readIndex] = String(readIndex);
  if (span) injectSpan(fields, span);
  return fields;
}

/** Fields as gRPC metadata (a unary call, a Watch stream, a call that came on a Forward stream). */
export function metadataOf(fields: Record<string, string>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(fields)) metadata.set(key, value);
  return metadata;
}

/** gRPC metadata for a call to a child (see childFields). */
export function childMetadata(ctx: CallContext, span: Span | null, readIndex = 0): grpc.Metadata {
  return metadataOf(childFields(ctx, span, readIndex));
}
