// Before a new route table replaces the old one: would some existing key stop being reachable
// (it lives in a leaf or child that the new table no longer routes it to)? Counted exactly, per prefix.
import type { RevisionAllocator } from '../revision/allocator.ts';
import { isChild } from '../child/child-node.ts';
import { LOCAL_CALL } from '../child/call-context.ts';
import type { RangeRequest } from '../store/types.ts';
import { prefixSuccessor, type RouteTable } from './route-table.ts';
import { ShardSet } from './shard-set.ts';
import type { Target } from './target.ts';

export interface HiddenKeys {
  prefix: string;
  count: number;
  leaf: string;
}

const PAGE = 5000;

function scanRequest(start: Buffer, end: Buffer): RangeRequest {
  return {
    key: start, range_end: end, limit: PAGE, revision: 0, sort_order: 0, sort_target: 0, serializable: true,
    keys_only: true, count_only: false, min_mod_revision: 0, max_mod_revision: 0, min_create_revision: 0, max_create_revision: 0,
  };
}

function targetsOf(table: RouteTable, prefix: Buffer): string {
  const r = table.routes.find((x) => x.prefix.equals(prefix));
  if (!r) return '';
  return r.target instanceof ShardSet ? r.target.targets.map((l) => l.name).join(',') : r.target.name;
}

export async function findHiddenKeys(oldTable: RouteTable, newTable: RouteTable, allocator: RevisionAllocator): Promise<HiddenKeys[]> {
  const prefixes = new Map<string, Buffer>();
  for (const r of [...oldTable.routes, ...newTable.routes]) prefixes.set(r.prefix.toString('latin1'), r.prefix);
  const hidden: HiddenKeys[] = [];
  for (const prefix of prefixes.values()) {
    if (targetsOf(oldTable, prefix) === targetsOf(newTable, prefix)) continue;
    const end = prefixSuccessor(prefix) ?? Buffer.alloc(0);
    const iv = { start: prefix.length === 0 ? Buffer.from([0]) : prefix, end: prefix.length === 0 ? Buffer.alloc(0) : end };
    for (const leaf of oldTable.targetsFor(iv)) {
      const count = await countMoved(leaf, iv.start, iv.end, oldTable, newTable, allocator);
      if (count > 0) hidden.push({ prefix: prefix.toString(), count, leaf: leaf.name });
    }
  }
  return hidden;
}

async function countMoved(leaf: Target, start: Buffer, end: Buffer, oldTable: RouteTable, newTable: RouteTable, allocator: RevisionAllocator): Promise<number> {
  // A child reads at the read index (it waits for its own watermark); a leaf at its watermark.
  const rev = isChild(leaf) ? await allocator.current() : await allocator.watermark([leaf.name]);
  let count = 0;
  for (let from = start; ; ) {
    const page = await leaf.range(scanRequest(from, end), rev, LOCAL_CALL);
    for (const kv of page.kvs) if (oldTable.targetFor(kv.key) === leaf && newTable.targetFor(kv.key) !== leaf) count++;
    if (!page.more || page.kvs.length === 0) return count;
    from = Buffer.concat([page.kvs[page.kvs.length - 1].key, Buffer.from([0])]);
  }
}
