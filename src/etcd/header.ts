// Response headers: cluster and member identity of this node plus the revision.
import { createHash } from 'node:crypto';
import type { ResponseHeader } from '../store/types.ts';

/** etcd's raft term; a node has no raft, so it stays constant. */
export const RAFT_TERM = 1;

export interface NodeIdentity {
  name: string;
  clusterId: number;
  memberId: number;
  clientUrls: string[];
}

/** Stable IDs derived from a name, below 2^53 so they survive JS numbers. */
export function idFromName(name: string): number {
  const h = createHash('sha256').update(name).digest();
  return h.readUIntBE(0, 6) + 1;
}

export function makeHeader(identity: NodeIdentity) {
  return (revision: number): ResponseHeader => ({
    cluster_id: identity.clusterId,
    member_id: identity.memberId,
    revision,
    raft_term: RAFT_TERM,
  });
}

export type HeaderFn = ReturnType<typeof makeHeader>;
