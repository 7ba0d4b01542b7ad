// A child's reply passed on as bytes: only the header changes (this node's identity, the child's
// revision); every other field is the child's, byte for byte.
import { describe, expect, it } from 'vitest';
import { makeHeader } from '../../src/etcd/header.ts';
import { reheaded } from '../../src/etcd/pass-through-reply.ts';
import { decoderFor, encoderFor } from '../../src/etcd/proto/load.ts';

const parentHeader = makeHeader({ name: 'root', clusterId: 11, memberId: 22, clientUrls: [] });

describe('reheaded', () => {
  it('replaces the header of a RangeResponse and keeps the rest', () => {
    const kvs = Array.from({ length: 300 }, (_, i) => ({ key: Buffer.from(`/k/${i}`), create_revision: 5, mod_revision: 7 + i, version: 1, value: Buffer.alloc(200, i), lease: 0 }));
    const child = encoderFor('etcdserverpb.RangeResponse')({ header: { cluster_id: 1, member_id: 2, revision: 1_000_123, raft_term: 9 }, kvs, more: true, count: 1000 });
    const out = reheaded(child, parentHeader).passThrough;
    const got = decoderFor('etcdserverpb.RangeResponse')(out) as { header: Record<string, number>; kvs: unknown[]; more: boolean; count: number };
    expect(got.header).toEqual({ cluster_id: 11, member_id: 22, revision: 1_000_123, raft_term: 1 });
    expect(got.kvs).toHaveLength(300);
    expect(got.more).toBe(true);
    expect(got.count).toBe(1000);
    // Everything after the header is the child's bytes.
    expect(child[0]).toBe(0x0a); // the header comes first, its length fits one byte here
    const childRest = child.subarray(2 + child[1]);
    expect(out.subarray(out.length - childRest.length).equals(childRest)).toBe(true);
  });

  it('adds a header to a reply without one', () => {
    const child = encoderFor('etcdserverpb.PutResponse')({ prev_kv: { key: Buffer.from('a'), value: Buffer.from('b'), create_revision: 1, mod_revision: 1, version: 1, lease: 0 } });
    const got = decoderFor('etcdserverpb.PutResponse')(reheaded(child, parentHeader).passThrough) as { header: Record<string, number>; prev_kv: { key: Buffer } };
    expect(got.header.member_id).toBe(22);
    expect(got.prev_kv.key.toString()).toBe('a');
  });

  it('passes a reply that already carries this node\'s identity on as it is, without a copy', () => {
    const child = encoderFor('etcdserverpb.RangeResponse')({ header: parentHeader(4242), kvs: [], more: false, count: 0 });
    expect(reheaded(child, parentHeader).passThrough).toBe(child);
  });
});
