// Differential scenario runner. A scenario performs operations through a client and records
// every response (or gRPC error) with a label. describeConformance() runs each scenario against
// the reference (real etcd) and against every selected etcd-tree target, and compares the two
// recordings step by step after normalization (see normalize.ts).
//
// Relative revisions need a server on which nobody else writes while a scenario runs, so each
// test file gets its own reference and subject servers, the scenarios of a file run one after
// the other, and each scenario works under its own key prefix. Prefixes are numbered in
// scenario order, so a from-key range inside a scenario's prefix never sees an earlier
// scenario's keys. The reference and the subject run the same scenario concurrently (they are
// different servers), which halves the time spent waiting for leases and progress notifications.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { EtcdClient } from '../support/etcd-client.ts';
import { connectExact } from './exact-client.ts';
import { Normalizer, reconcileTtls } from './normalize.ts';
import { printRecordings, reference, selectSubjects, type RunningServer, type Target } from './targets.ts';
import { WatchStream } from './watch-stream.ts';

export interface ScenarioTarget {
  /** 'etcd' for the reference, the backend name for etcd-tree. */
  readonly name: string;
  readonly client: EtcdClient;
  /** This scenario's key prefix, the same on both servers. */
  readonly prefix: string;
  key(suffix?: string): Buffer;
  /** The store revision when the scenario started; recorded revisions are shown relative to it. */
  readonly base: number;
  /** The absolute revision `relative` revisions after the start (for requests). */
  rev(relative: number): number;
  /** Records a value (normalized now) as the next step. */
  record(label: string, value: unknown): void;
  /**
   * Runs a call and records its response (or `summary(response)`), or its gRPC error as
   * { code, details }. Returns the response, or undefined after an error.
   */
  step(label: string, call: () => Promise<any>, summary?: (res: any) => unknown): Promise<any>;
  /** Grants a lease (recorded as a step) that is revoked when the scenario ends; returns its ID. */
  grant(label: string, req: { TTL: number; ID?: number }): Promise<number | string | undefined>;
  /** The placeholder ("L1", ...) of a lease ID, as it appears in recorded values. */
  lease(id: number | string): string | number;
  /** Leases granted through grant(), for filtering Leases() answers. */
  readonly granted: ReadonlySet<string>;
  /** A watch stream, closed when the scenario ends. */
  watch(metadata?: grpc.Metadata): WatchStream;
  /** Runs fn when the scenario ends (streams to close, ...). */
  defer(fn: () => unknown): void;
}

export type Scenario = (t: ScenarioTarget) => Promise<void>;

interface Step { label: string; value: unknown }

/** A gRPC error as recorded: the status name and etcd's message. */
export function grpcError(err: unknown): { code: string; details: string } {
  const e = err as grpc.ServiceError;
  if (typeof e?.code !== 'number' || typeof e?.details !== 'string') throw err;
  return { code: grpc.status[e.code], details: e.details };
}

interface Recording { steps: Step[]; error?: unknown }

/** Runs a scenario on one server; an exception ends the recording early (and is returned). */
async function runScenario(scenario: Scenario, targetName: string, endpoint: string, prefix: string): Promise<Recording> {
  const client = connectExact(endpoint);
  const steps: Step[] = [];
  const cleanups: (() => unknown)[] = [];
  const granted = new Set<string>();
  try {
    const base = (await client.kv.range({ key: Buffer.from(prefix) })).header.revision as number;
    const norm = new Normalizer(base, prefix);
    const t: ScenarioTarget = {
      name: targetName,
      client,
      prefix,
      key: (suffix = '') => Buffer.from(prefix + suffix),
      base,
      rev: (relative) => base + relative,
      record: (label, value) => { steps.push({ label, value: norm.normalize(value) }); },
      async step(label, call, summary = (res) => res) {
        try {
          const res = await call();
          t.record(label, summary(res));
          return res;
        } catch (err) {
          t.record(label, grpcError(err));
          return undefined;
        }
      },
      async grant(label, req) {
        const res = await t.step(label, () => client.lease.grant(req));
        if (res) granted.add(String(res.ID));
        return res?.ID;
      },
      lease: (id) => norm.lease(id),
      granted,
      watch(metadata) {
        const w = new WatchStream(client, metadata);
        cleanups.push(() => w.close());
        return w;
      },
      defer: (fn) => { cleanups.push(fn); },
    };
    await scenario(t);
    return { steps };
  } catch (error) {
    return { steps, error };
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    for (const id of granted) await client.lease.revoke({ ID: id }).catch(() => undefined);
    client.close();
  }
}

/** The reference must answer every step: an exception, a timeout or a broken stream there is a scenario bug. */
async function runReference(scenario: Scenario, endpoint: string, prefix: string): Promise<Step[]> {
  const { steps, error } = await runScenario(scenario, reference.name, endpoint, prefix);
  if (error) throw error;
  const incomplete = steps.find((s) => /"(timeout: |stream error|stream ended)|"missing":/.test(JSON.stringify(s.value)));
  if (incomplete) throw new Error(`scenario bug: etcd did not answer step "${incomplete.label}": ${JSON.stringify(incomplete.value)}`);
  return steps;
}

/** On the subject, an exception (e.g. a step failed that etcd answered) is one more recorded step. */
async function runSubject(scenario: Scenario, targetName: string, endpoint: string, prefix: string): Promise<Step[]> {
  const { steps, error } = await runScenario(scenario, targetName, endpoint, prefix);
  return error ? [...steps, { label: 'scenario threw', value: String((error as Error)?.stack ?? error) }] : steps;
}

/** Steps keyed by label ("label #2" for a repeated one), so a skipped step does not shift the rest. */
function byLabel(steps: Step[]): [string, unknown][] {
  const seen = new Map<string, number>();
  return steps.map(({ label, value }) => {
    const n = (seen.get(label) ?? 0) + 1;
    seen.set(label, n);
    return [n > 1 ? `${label} #${n}` : label, value];
  });
}

function compareRecordings(want: Step[], got: Step[], subject: string, deviations: Record<string, unknown> = {}): void {
  const gotByLabel = new Map(byLabel(got));
  byLabel(want).forEach(([label, etcdAnswer], i) => {
    // A documented, intended difference replaces etcd's answer for this step only.
    const expected = label in deviations ? deviations[label] : etcdAnswer;
    const actual = gotByLabel.has(label) ? gotByLabel.get(label) : '(step not recorded)';
    gotByLabel.delete(label);
    reconcileTtls(expected, actual);
    expect.soft(actual, `step ${i + 1} "${label}": ${subject} differs from etcd`).toEqual(expected);
  });
  expect.soft(Object.fromEntries(gotByLabel), `steps only ${subject} recorded`).toEqual({});
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/**
 * One describe block per subject, one test per scenario. `file` names the key space and the
 * test group; scenarios run in the order given.
 */
export function describeConformance(file: string, scenarios: Record<string, Scenario>, subjects: Target[] = selectSubjects()): void {
  describe(file, () => {
    let ref: RunningServer | undefined;
    const refRecordings = new Map<string, Promise<Step[]>>();
    beforeAll(async () => { ref = await reference.start(); });
    afterAll(async () => { await ref?.stop(); });

    for (const subject of subjects) {
      describe(subject.name, () => {
        let server: RunningServer | undefined;
        beforeAll(async () => { server = await subject.start(); });
        afterAll(async () => { await server?.stop(); });

        Object.entries(scenarios).forEach(([name, scenario], i) => {
          const prefix = `/conformance/${file}/${String(i + 1).padStart(2, '0')}-${slug(name)}/`;
          it(name, async () => {
            onTestFailed(() => {
              const out = server?.output?.();
              if (out) console.error(`--- ${subject.name} output (tail) ---\n${out}`);
            });
            if (!refRecordings.has(name)) refRecordings.set(name, runReference(scenario, ref!.endpoint, prefix));
            const [want, got] = await Promise.all([refRecordings.get(name)!, runSubject(scenario, subject.name, server!.endpoint, prefix)]);
            if (printRecordings) console.log(JSON.stringify(want, null, 1));
            compareRecordings(want, got, subject.name, subject.deviations?.[`${file}/${name}`]);
          });
        });
      });
    }
  });
}
