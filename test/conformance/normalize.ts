// Turns what one server answered into something comparable with what the other answered:
// - revisions relative to the revision the scenario started at ("B+3"; 0 stays 0 = "none"),
// - lease IDs as placeholders in order of first appearance ("L1", "L2", ...),
// - header cluster_id / member_id / raft_term dropped (they identify a cluster, not behaviour),
// - bytes as readable text (long values as length + digest), the scenario's key prefix
//   (the same on both servers) shortened to "~/",
// and finally TTLs that differ by at most one second are taken as equal (reconcileTtls).
import { createHash } from 'node:crypto';

const REVISION_FIELDS = new Set(['revision', 'create_revision', 'mod_revision', 'compact_revision']);
const LEASE_FIELDS = new Set(['ID', 'lease']);
const IGNORED_FIELDS = new Set(['cluster_id', 'member_id', 'raft_term']);

export class Normalizer {
  private readonly leases = new Map<string, string>();

  /** baseRevision: the store revision read when the scenario started; prefix: its key prefix. */
  constructor(readonly baseRevision: number, private readonly prefix = '') {}

  revision(rev: number): string | number {
    if (rev === 0) return 0;
    const d = rev - this.baseRevision;
    return d >= 0 ? `B+${d}` : `B${d}`;
  }

  /** The placeholder of a lease ID (a number, or a decimal string above 2^53). 0 = no lease. */
  lease(id: number | string): string | number {
    if (id === 0 || id === '0') return 0;
    const k = String(id);
    if (!this.leases.has(k)) this.leases.set(k, `L${this.leases.size + 1}`);
    return this.leases.get(k)!;
  }

  normalize(value: unknown): unknown {
    if (Buffer.isBuffer(value)) {
      const text = bytesText(value);
      return this.prefix && text.startsWith(this.prefix) ? `~/${text.slice(this.prefix.length)}` : text;
    }
    if (Array.isArray(value)) return value.map((v) => this.normalize(v));
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (IGNORED_FIELDS.has(k)) continue;
      if (REVISION_FIELDS.has(k) && typeof v === 'number') out[k] = this.revision(v);
      else if (LEASE_FIELDS.has(k) && (typeof v === 'number' || typeof v === 'string')) out[k] = this.lease(v);
      else out[k] = this.normalize(v);
    }
    return out;
  }
}

/** Short keys and values as text (non-printable bytes as \xNN); long ones as size + digest. */
export function bytesText(b: Buffer): string {
  if (b.length > 128) return `<${b.length} bytes sha256:${createHash('sha256').update(b).digest('hex').slice(0, 12)}>`;
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

/**
 * Lease TTLs count down in seconds and the two servers are read a few milliseconds apart, so a
 * `TTL` in `actual` that is within one second of the same `TTL` in `expected` is replaced by the
 * expected value (in place). Other differences are left for the comparison to show.
 */
export function reconcileTtls(expected: unknown, actual: unknown): void {
  if (expected === null || actual === null || typeof expected !== 'object' || typeof actual !== 'object') return;
  const e = expected as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  for (const k of Object.keys(a)) {
    if (k === 'TTL' && typeof a[k] === 'number' && typeof e[k] === 'number' && Math.abs((a[k] as number) - (e[k] as number)) <= 1) a[k] = e[k];
    else reconcileTtls(e[k], a[k]);
  }
}
