// Trace contexts for work shared across requests. Batched work (group commit, batched Redis
// calls) runs in the trace of the request whose work it is: each batch in the context of the
// request that opened it, not of whichever request happened to start the loop that runs it.
// Machinery a request merely sets off (watch feeds woken by its commit) runs in no trace. Without
// span recording nothing is captured and nothing is switched.
import { context, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { spansRecorded } from './rpc-span.ts';

/** The active context when spans are recorded (to run batched work in later); else undefined. */
export function captureContext(): Context | undefined {
  return spansRecorded() ? context.active() : undefined;
}

/** Runs fn in `ctx` (from captureContext), or as it is when none was captured. */
export function runInContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx === undefined ? fn() : context.with(ctx, fn);
}

/**
 * Runs fn outside any request's trace: for shared work a request only triggers (waking watch
 * feeds and watermark waiters after its commit), which must not show up as that request's.
 */
export function untraced<T>(fn: () => T): T {
  return spansRecorded() ? context.with(ROOT_CONTEXT, fn) : fn();
}
