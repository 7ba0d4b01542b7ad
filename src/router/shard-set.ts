// A shard set: several targets (leaves or child nodes) behind one prefix; a key goes to one of them by consistent
// hashing of one key segment after the prefix (e.g. the namespace of /registry/pods/<ns>/<name>).
import ConsistentHash from 'consistent-hash';
import { createHash } from 'node:crypto';
import type { Target } from './target.ts';

const SLASH = 0x2f;
const RING_RANGE = 100_003;
/** Control points per leaf: more points, smoother shares. */
const POINTS_PER_LEAF = 100;

/** Control points derived from the leaf's name: every node of a tree builds the same ring. */
function controlPoints(name: string): number[] {
  return Array.from({ length: POINTS_PER_LEAF }, (_, i) => createHash('sha256').update(`${name}#${i}`).digest().readUInt32BE(0) % RING_RANGE);
}

/**
 * The ring's own string hash clusters short, similar names (ns1, ns2, ...); a digest of the
 * segment spreads them evenly.
 */
function ringKey(segment: Buffer): string {
  return createHash('sha1').update(segment).digest('hex');
}

export class ShardSet {
  private readonly ring: ConsistentHash;
  private readonly byName: Map<string, Target>;

  constructor(readonly prefix: Buffer, readonly targets: Target[], readonly segment: number) {
    this.ring = new ConsistentHash({ range: RING_RANGE, weight: POINTS_PER_LEAF });
    this.byName = new Map(targets.map((l) => [l.name, l]));
    for (const l of targets) this.ring.add(l.name, POINTS_PER_LEAF, controlPoints(l.name));
  }

  /** The hashed segment of a key under the prefix, or null when the key has no such segment. */
  segmentOf(key: Buffer): Buffer | null {
    let start = this.prefix.length;
    for (let i = 0; i < this.segment; i++) {
      const slash = key.indexOf(SLASH, start);
      if (slash < 0) return null;
      start = slash + 1;
    }
    const end = key.indexOf(SLASH, start);
    return key.subarray(start, end < 0 ? key.length : end);
  }

  targetFor(key: Buffer): Target {
    const seg = this.segmentOf(key);
    return this.byName.get(this.ring.get(ringKey(seg ?? Buffer.alloc(0))) as string)!;
  }

  /**
   * The key range [start, end) that shares the segment of `key`, when the segment is complete
   * in `key` (followed by "/"): every key in it goes to the same shard.
   */
  segmentRange(key: Buffer): { start: Buffer; end: Buffer } | null {
    let pos = this.prefix.length;
    for (let i = 0; i <= this.segment; i++) {
      const slash = key.indexOf(SLASH, pos);
      if (slash < 0) return null;
      pos = slash + 1;
    }
    const start = key.subarray(0, pos);
    const end = Buffer.from(start);
    end[end.length - 1]++; // "/" + 1 = "0": the first key after everything under start
    return { start, end };
  }
}
