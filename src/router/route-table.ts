// Key prefix -> leaf, longest prefix wins; the empty prefix is the catch-all (DESIGN.md 1).
import type { LeafStore } from '../store/leaf-store.ts';
import type { KeyInterval } from '../store/types.ts';

export interface Route {
  prefix: Buffer;
  leaf: LeafStore;
}

export class RouteTable {
  /** Longest prefix first, so the first match wins. */
  private readonly routes: Route[];

  constructor(routes: Route[]) {
    this.routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  }

  leaves(): LeafStore[] {
    return [...new Set(this.routes.map((r) => r.leaf))];
  }

  leafFor(key: Buffer): LeafStore {
    for (const r of this.routes) {
      if (key.length >= r.prefix.length && key.subarray(0, r.prefix.length).equals(r.prefix)) return r.leaf;
    }
    throw new Error(`no route for key ${JSON.stringify(key.toString())}: the topology needs a catch-all route (prefix "")`);
  }

  /** Every leaf that may hold a key of the interval. */
  leavesFor(iv: KeyInterval): LeafStore[] {
    if (iv.end === null) return [this.leafFor(iv.start)];
    const out = new Set<LeafStore>();
    for (const r of this.routes) if (prefixMayOverlap(r.prefix, iv)) out.add(r.leaf);
    return [...out];
  }
}

/** Could some key starting with `prefix` fall inside the interval? (conservative) */
function prefixMayOverlap(prefix: Buffer, iv: KeyInterval): boolean {
  if (prefix.length === 0) return true;
  // Keys with this prefix lie in [prefix, prefixEnd); overlap test against [start, end).
  const prefixEnd = prefixSuccessor(prefix);
  const endOk = iv.end === null || iv.end.length === 0 || Buffer.compare(prefix, iv.end) < 0;
  const startOk = prefixEnd === null || Buffer.compare(iv.start, prefixEnd) < 0;
  return endOk && startOk;
}

/** The smallest key greater than every key with this prefix, or null if none exists. */
export function prefixSuccessor(prefix: Buffer): Buffer | null {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] < 0xff) {
      out[i]++;
      return out.subarray(0, i + 1);
    }
  }
  return null;
}
