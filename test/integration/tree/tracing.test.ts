// Tracing across the tree (DESIGN.md 9): the 3-level test tree exports its spans by OTLP/HTTP to
// a receiver in this process. A client sends a traceparent with a known trace id; a Put routed
// root -> branch-b -> a pods shard and a Range sharded over both branches at the root come back
// as one trace: server spans on every node crossed, the root's client spans the parents of the
// children's server spans, SQL and Redis spans under the server span of the node that made them.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd, type EtcdClient } from '../../support/etcd-client.ts';
import { startTree, type Tree } from '../../support/tree.ts';
import { OtlpSpanKind, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const TRACE_ID = randomBytes(16).toString('hex');
/** The client's own spans, parents of the root's server spans. */
const PUT_PARENT = randomBytes(8).toString('hex');
const RANGE_PARENT = randomBytes(8).toString('hex');

const PUT_KEY = '/registry/pods/ns1/p1';
const CONFIGMAPS = '/registry/configmaps/';

let receiver: OtlpReceiver;
let tree: Tree;
let client: EtcdClient;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  tree = await startTree({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      // What exporter-trace-otlp-http speaks anyway; the receiver decodes only JSON.
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // Spans leave a node 50 ms after they end, not 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '50',
    },
  });
  client = connectEtcd(tree.root.endpoint);
});

afterAll(async () => {
  client?.close();
  await tree?.destroy();
  await receiver?.close();
});

function traced(parentSpanId: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('traceparent', `00-${TRACE_ID}-${parentSpanId}-01`);
  return md;
}

const nodeOf = (s: ReceivedSpan) => s.resource['etcd_tree.node'];

/** The spans as an indented tree ("node name"), for failure messages. */
function outline(spans: ReceivedSpan[]): string {
  const ids = new Set(spans.map((s) => s.spanId));
  const lines: string[] = [];
  const walk = (parent: string, depth: number, top: boolean): void => {
    for (const s of spans.filter((x) => (top ? !ids.has(x.parentSpanId) : x.parentSpanId === parent))) {
      lines.push(`${'  '.repeat(depth)}${String(nodeOf(s))} ${s.name}`);
      walk(s.spanId, depth + 1, false);
    }
  };
  walk('', 0, true);
  return lines.join('\n');
}

describe('tracing across the tree', () => {
  it('a Put and a sharded Range form one trace with spans from every node they crossed, down to SQL and Redis', async () => {
    await client.kv.put({ key: Buffer.from(PUT_KEY), value: Buffer.from('v') }, traced(PUT_PARENT));
    const range = await client.kv.range({ key: Buffer.from(CONFIGMAPS), range_end: Buffer.from('/registry/configmaps0') }, traced(RANGE_PARENT));
    expect(Number(range.count)).toBe(0);

    const trace = () => receiver.spans.filter((s) => s.traceId === TRACE_ID);
    const byId = () => new Map(trace().map((s) => [s.spanId, s]));
    /** Spans of the trace below `root` (not `root` itself). */
    const below = (root: ReceivedSpan) => {
      const spans = byId();
      return trace().filter((s) => {
        for (let p = spans.get(s.parentSpanId); p; p = spans.get(p.parentSpanId)) if (p.spanId === root.spanId) return true;
        return false;
      });
    };
    const server = (node: string, method: string, parent: string) =>
      trace().find((s) => s.kind === OtlpSpanKind.SERVER && nodeOf(s) === node && s.name === `etcdserverpb.KV/${method}` && s.parentSpanId === parent);
    /** The root's CLIENT span to `child` under `rootServer`, and the child's SERVER span under that. */
    const hopTo = (rootServer: ReceivedSpan | undefined, child: string) => {
      const clientSpan = rootServer && below(rootServer).find((s) => s.kind === OtlpSpanKind.CLIENT && nodeOf(s) === 'root' && s.attributes['etcd_tree.child'] === child);
      const childServer = clientSpan && trace().find((s) => s.kind === OtlpSpanKind.SERVER && s.parentSpanId === clientSpan.spanId);
      return { clientSpan, childServer };
    };
    const sqlBelow = (span: ReceivedSpan | undefined, system: string | string[]) =>
      span && below(span).find((s) => s.kind === OtlpSpanKind.CLIENT && ([] as string[]).concat(system).includes(String(s.attributes['db.system'])));

    // Nodes export on their own schedule: wait until the whole picture arrived.
    await waitFor(() => {
      const rootPut = server('root', 'Put', PUT_PARENT);
      const rootRange = server('root', 'Range', RANGE_PARENT);
      return (
        rootPut && rootRange &&
        sqlBelow(hopTo(rootPut, 'branch-b').childServer, ['mysql', 'postgresql']) &&
        sqlBelow(hopTo(rootRange, 'branch-a').childServer, 'postgresql') &&
        sqlBelow(hopTo(rootRange, 'branch-b').childServer, 'sqlite') &&
        below(rootRange).some((s) => s.attributes['db.system'] === 'redis')
      );
    }, "the trace's spans from every node", 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\nthe trace so far:\n${outline(trace())}`);
    });

    const spans = trace();
    // Every span names its node, and the requests crossed all three.
    for (const s of spans) expect(['root', 'branch-a', 'branch-b']).toContain(nodeOf(s));
    expect(new Set(spans.map(nodeOf))).toEqual(new Set(['root', 'branch-a', 'branch-b']));

    // Root: the server span continues the client's span; its client spans to the children are the
    // parents of the children's server spans.
    const rootPut = server('root', 'Put', PUT_PARENT)!;
    const rootRange = server('root', 'Range', RANGE_PARENT)!;
    const hop = (rootServer: ReceivedSpan, child: string) => {
      const { clientSpan, childServer } = hopTo(rootServer, child);
      expect(clientSpan!.parentSpanId).toBe(rootServer.spanId);
      expect(childServer!.traceId).toBe(TRACE_ID);
      expect(nodeOf(childServer!)).toBe(child);
      expect(childServer!.name).toBe(`etcdserverpb.KV/${String(clientSpan!.attributes['rpc.method'])}`);
      return childServer!;
    };
    const branchBPut = hop(rootPut, 'branch-b');
    const branchARange = hop(rootRange, 'branch-a');
    const branchBRange = hop(rootRange, 'branch-b');
    expect(branchARange.name).toBe('etcdserverpb.KV/Range');
    expect(branchBRange.name).toBe('etcdserverpb.KV/Range');
    // The Put went to branch-b only.
    expect(below(rootPut).filter((s) => s.kind === OtlpSpanKind.SERVER).map(nodeOf)).toEqual(['branch-b']);

    // SQL under the branches' server spans, on the leaves the keys route to.
    const putSql = below(branchBPut).filter((s) => s.attributes['db.statement'] !== undefined);
    expect(putSql.length).toBeGreaterThan(0);
    for (const s of putSql) {
      expect(nodeOf(s)).toBe('branch-b');
      expect(['pods-my', 'pods-pg']).toContain(s.attributes['db.name']);
      expect(s.attributes['db.system']).toBe(s.attributes['db.name'] === 'pods-my' ? 'mysql' : 'postgresql');
    }
    expect(putSql.some((s) => /^INSERT\b/i.test(String(s.attributes['db.statement'])))).toBe(true);
    expect(sqlBelow(branchARange, 'postgresql')!.attributes['db.name']).toBe('events');
    expect(sqlBelow(branchBRange, 'sqlite')!.attributes['db.name']).toBe('local');
    // Statements, never parameter values: the key travels as a parameter.
    for (const s of spans) for (const v of Object.values(s.attributes)) expect(String(v)).not.toContain('ns1/p1');

    // Redis: the Put's revision allocated on branch-b; the Range's read index at the root.
    expect(below(branchBPut).some((s) => s.kind === OtlpSpanKind.CLIENT && s.attributes['db.system'] === 'redis' && s.name === 'etcdTreeAllocate')).toBe(true);
    expect(below(rootRange).some((s) => nodeOf(s) === 'root' && s.attributes['db.system'] === 'redis' && s.name === 'etcdTreeSnapshot')).toBe(true);
  });
});
