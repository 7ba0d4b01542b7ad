// Group commit on a leaf's one writer connection: write jobs that arrive while the event
// loop is busy are run one after another inside ONE database transaction, each in its own
// savepoint, and share one commit (one fsync). Every job settles only after that commit, so
// nothing is acknowledged before it is durable. On server databases a group goes optimistically
// first, without savepoints, and is redone the careful way after a database error or a job
// that failed after it wrote (dialect.ts optimisticWrites). With
// span recording on, each job runs in the trace of the request that submitted it, and the
// shared transaction in the batch's first one.
import type { Context } from '@opentelemetry/api';
import { captureContext, runInContext } from '../telemetry/tracing.ts';
import { WriteTxRedo, type Dialect, type WriteTx, type WriteTxOptions } from './dialect.ts';

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

type Job = {
  run: (tx: WriteTx) => Promise<unknown>;
  /** See submit(). */
  prepare: (() => void) | undefined;
  /** Runs synchronously once the job's commit succeeded, before any later job starts. */
  committed: ((value: unknown) => void) | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** The submitter's trace context (only while spans are recorded). */
  context: Context | undefined;
};

export class GroupCommitQueue {
  private queue: Job[] = [];
  private scheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  /** Largest number of jobs committed together so far (a metric for tuning). */
  maxBatch = 0;
  /** Optimistic transactions done again after a database error (a metric). */
  redone = 0;

  /**
   * `commitFailed` runs synchronously when a commit fails, before any later job starts.
   * `soleWriter`: every write of the leaf goes through this queue (see beginWithStatements).
   */
  constructor(
    private readonly dialect: Dialect,
    private readonly maxJobsPerCommit = 512,
    private readonly commitFailed: (error: unknown) => void = () => undefined,
    private readonly soleWriter = false,
  ) {}

  /**
   * Runs `run` in the next group's transaction. `committed` sees its result right after the
   * commit, before any job of a later group runs: state kept beside the database (the store's
   * head cache) is then never behind what a later transaction reads. `prepare` is called once
   * the group's transaction holds the leaf's write lock, before any job runs, for the jobs at
   * the head of the group that have one, in order and synchronously: a job that will surely
   * write asks for its revision there, so the group's revisions come in one call, in job order.
   */
  submit<T>(run: (tx: WriteTx) => Promise<T>, committed?: (value: T) => void, prepare?: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, prepare, committed: committed as ((value: unknown) => void) | undefined, resolve: resolve as (v: unknown) => void, reject, context: captureContext() });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate: gather every request that arrived in this turn of the event loop.
        setImmediate(() => {
          this.flushing = this.flushing.then(() => this.flush());
        });
      }
    });
  }

  /** Resolves when every job submitted so far has settled. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled) {
      await new Promise((r) => setImmediate(r));
      await this.flushing;
    }
    await this.flushing;
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const optimistic = this.dialect.capabilities.optimisticWrites === true;
    // A group that follows a commit at once (its jobs arrived meanwhile) may send BEGIN with its
    // statements: the connection has just answered (WriteTxOptions.beginWithStatements). The
    // first group after a pause waits for its BEGIN, so a connection closed while the leaf was
    // idle is replaced without doubt about what ran.
    let afterCommit = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxJobsPerCommit);
      if (batch.length > this.maxBatch) this.maxBatch = batch.length;
      const beginWithStatements = afterCommit && this.soleWriter && !batch[0].prepare;
      afterCommit = false;
      let outcomes: Outcome[];
      try {
        try {
          outcomes = await this.run(batch, { optimistic, beginWithStatements });
        } catch (err) {
          if (!(err instanceof WriteTxRedo)) throw err;
          this.redone++;
          // Nothing of it committed: again, each job's writes answered inside its savepoint,
          // so a database error fails only the job that caused it.
          outcomes = await this.run(batch, {});
        }
      } catch (commitError) {
        this.commitFailed(commitError);
        for (const job of batch) job.reject(commitError);
        continue;
      }
      afterCommit = true;
      batch.forEach((job, i) => {
        const o = outcomes[i];
        if (o.ok) {
          job.committed?.(o.value);
          job.resolve(o.value);
        } else {
          job.reject(o.error);
        }
      });
    }
  }

  /** The batch in one transaction, each job in its savepoint; the jobs' outcomes once it committed. */
  private async run(batch: Job[], options: WriteTxOptions): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    await runInContext(batch[0].context, () =>
      this.dialect.writeTx(async (tx) => {
        // Only the run at the head: a later job's revision must not come before an earlier one's.
        for (const job of batch) {
          if (!job.prepare) break;
          job.prepare();
        }
        for (const job of batch) {
          try {
            // The batch's first request sees its savepoint inside the transaction's span.
            const jobContext = job.context === batch[0].context ? undefined : job.context;
            outcomes.push({ ok: true, value: await runInContext(jobContext, () => tx.savepoint(() => job.run(tx))) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      }, options),
    );
    return outcomes;
  }
}
