// At most one call in flight; whatever arrives meanwhile rides on the next call (the way
// Percolator/TiKV timestamp-oracle clients batch, DESIGN.md 4 "Throughput"). So the load on
// Redis falls as concurrency rises instead of growing with it. Requests submitted in the same
// tick as the first one share its call (the flush waits for a microtask). With span recording
// on, a call runs in the trace of its batch's first request.
import type { Context } from '@opentelemetry/api';
import { captureContext, runInContext } from '../telemetry/tracing.ts';

interface Queued<Req, Res> {
  req: Req;
  resolve: (res: Res) => void;
  reject: (err: unknown) => void;
  /** The submitter's trace context (only while spans are recorded). */
  context: Context | undefined;
}

export class SerialBatcher<Req, Res> {
  /** Requests waiting for the next call, in arrival order (answers keep that order). */
  private queue: Array<Queued<Req, Res>> = [];
  /** Invariant: true while a call runs or a flush is scheduled, so at most one call is in flight. */
  private busy = false;
  /** Calls made so far (a metric; tests check that batching batches). */
  calls = 0;

  /**
   * @param run answers a batch: one result per request, in order. A rejection fails the batch.
   * @param maxBatch largest batch per call; the rest waits for the following call.
   */
  constructor(
    private readonly run: (reqs: Req[]) => Promise<Res[]>,
    private readonly maxBatch = 1000,
  ) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ req, resolve, reject, context: captureContext() });
      if (!this.busy) {
        this.busy = true;
        queueMicrotask(() => void this.flush());
      }
    });
  }

  /** Requests waiting for a call (not counting the batch in flight). */
  get waiting(): number {
    return this.queue.length;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.calls++;
      try {
        const reqs = batch.map((q) => q.req);
        const results = await runInContext(batch[0].context, () => this.run(reqs));
        batch.forEach((q, i) => q.resolve(results[i]));
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
    this.busy = false;
  }
}
