// Key prefix -> target (leaf, child node) or shard set; longest prefix wins; the empty prefix
// is the catch-all.
import type { KeyInterval } from '../store/types.ts';
import { isChild } from '../child/child-node.ts';
import { ShardSet } from './shard-set.ts';
import type { Target } from './target.ts';

export interface Route {
  prefix: Buffer;
  target: Target | ShardSet;
}

function targetsOf(target: Target | ShardSet): Target[] {
  return target instanceof ShardSet ? target.targets : [target];
}

export class RouteTable {
  /** Longest prefix first, so the first match wins. */
  readonly routes: Route[];

  /** Some route leads to a child node (a table of leaves only never forwards a request whole). */
  readonly hasChildren: boolean;

  constructor(routes: Route[]) {
    this.routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
    this.hasChildren = this.targets().some(isChild);
  }

  /** Every target of the table (leaves and child nodes). */
  targets(): Target[] {
    return [...new Set(this.routes.flatMap((r) => targetsOf(r.target)))];
  }

  routeFor(key: Buffer): Route {
    for (const r of this.routes) {
      if (key.length >= r.prefix.length && key.subarray(0, r.prefix.length).equals(r.prefix)) return r;
    }
    throw new Error(`no route for key ${JSON.stringify(key.toString())}: the topology needs a catch-all route (prefix "")`);
  }

  targetFor(key: Buffer): Target {
    const { target } = this.routeFor(key);
    return target instanceof ShardSet ? target.targetFor(key) : target;
  }

  /** Every target that may hold a key of the interval. */
  targetsFor(iv: KeyInterval): Target[] {
    if (iv.end === null) return [this.targetFor(iv.start)];
    const out = new Set<Target>();
    for (const r of this.routes) {
      if (!prefixOverlaps(r.prefix, iv)) continue;
      // Keys under a longer prefix inside this interval belong to that route, not this one;
      // this route still owns whatever is left, so it is included (conservatively).
      if (r.target instanceof ShardSet) {
        const within = r.target.segmentRange(iv.start);
        const narrow = within && iv.start.subarray(0, r.prefix.length).equals(r.prefix) && iv.end.length > 0 && Buffer.compare(iv.end, within.end) <= 0;
        if (narrow) out.add(r.target.targetFor(iv.start));
        else for (const l of r.target.targets) out.add(l);
      } else {
        out.add(r.target);
      }
      if (coversInterval(r.prefix, iv)) break; // shorter prefixes own nothing inside it
    }
    return [...out];
  }
}

/** Could some key starting with `prefix` fall inside the interval? */
function prefixOverlaps(prefix: Buffer, iv: KeyInterval): boolean {
  if (prefix.length === 0) return true;
  const prefixEnd = prefixSuccessor(prefix);
  const endOk = iv.end === null || iv.end.length === 0 || Buffer.compare(prefix, iv.end) < 0;
  const startOk = prefixEnd === null || Buffer.compare(iv.start, prefixEnd) < 0;
  return endOk && startOk;
}

/** Does every key of the interval start with `prefix`? */
function coversInterval(prefix: Buffer, iv: KeyInterval): boolean {
  if (prefix.length === 0) return true;
  if (!iv.start.subarray(0, prefix.length).equals(prefix)) return false;
  const prefixEnd = prefixSuccessor(prefix);
  if (prefixEnd === null) return true;
  return iv.end !== null && iv.end.length > 0 && Buffer.compare(iv.end, prefixEnd) <= 0;
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
