// The Redis side of the revision protocol (DESIGN.md 4): key names and one Lua script per
// step, so each step is atomic. Scripts are registered with ioredis defineCommand: they run
// by EVALSHA, and ioredis falls back to EVAL when a restarted Redis forgot them.
//
// Keys under the prefix:
//   counter           the highest revision handed out (INCRBY)
//   generation        present only while the counter is known to be above every revision in the tree
//   pending:<leaf>    zset rev -> rev: allocated to <leaf>, not yet resolved
//   deadlines         zset deadline(ms, Redis clock) -> "<leaf>:<rev>", for fencing
//   generation-lock   held (SET NX PX) by the one node re-establishing the generation
// Channel <prefix>wake: published when some leaf's lowest pending revision was resolved (its
// watermark advanced) or a generation was established. A resolve's payload (see WakeMessage) is
// the resolving node's origin id (that node has already woken itself), then a snapshot read
// right after the resolve: counter, generation, and the lowest pending revision of the resolved
// leaves and of every other leaf that node knows. Every node learns those leaves' watermarks
// from it without asking (a leaf with nothing pending is at the counter, which any allocation
// moves).
//
// Revisions are Lua numbers (doubles): exact up to 2^53, far beyond any tree's lifetime. They
// are formatted with %d, never tostring (which would switch to exponent notation above 1e14).
import type { Redis } from 'ioredis';
import { tracedScriptCall } from './redis-connection.ts';

export class RedisKeys {
  readonly counter: string;
  readonly generation: string;
  readonly deadlines: string;
  readonly lock: string;
  readonly wakeChannel: string;

  constructor(readonly prefix: string) {
    this.counter = `${prefix}counter`;
    this.generation = `${prefix}generation`;
    this.deadlines = `${prefix}deadlines`;
    this.lock = `${prefix}generation-lock`;
    this.wakeChannel = `${prefix}wake`;
  }

  pending(leaf: string): string {
    return `${this.prefix}pending:${leaf}`;
  }
}

/** Error prefixes the scripts answer with (the first word of a Redis error reply). */
export const ScriptErrors = {
  noGeneration: 'NOGEN',
  noCounter: 'NOCOUNTER',
  lockLost: 'LOCKLOST',
} as const;

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const SCRIPTS = {
  // KEYS: counter, generation, pending:<leaf>, deadlines. ARGV: leaf, n, deadline after (ms).
  // Returns {first revision, generation}: the caller owns first .. first+n-1.
  etcdTreeAllocate: `
local gen = redis.call('GET', KEYS[2])
if not gen then return redis.error_reply('${ScriptErrors.noGeneration} the revision counter has no generation') end
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('${ScriptErrors.noCounter} the revision counter is missing') end
local n = tonumber(ARGV[2])
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n + 1
${NOW_MS}
local deadline = string.format('%d', now + tonumber(ARGV[3]))
local pending, deadlines = {}, {}
for r = first, last do
  local s = string.format('%d', r)
  pending[#pending + 1] = s
  pending[#pending + 1] = s
  deadlines[#deadlines + 1] = deadline
  deadlines[#deadlines + 1] = ARGV[1] .. ':' .. s
end
redis.call('ZADD', KEYS[3], unpack(pending))
redis.call('ZADD', KEYS[4], unpack(deadlines))
return {first, tonumber(gen) or -1}`,

  // KEYS: deadlines, counter, generation, pending:<leaf> of each group, then pending:<leaf> of
  // each other leaf to report. ARGV: wake channel, origin, number of groups, then per group:
  // leaf, count, rev..., then the other leaves. Returns what etcdTreeSnapshot returns for the
  // groups' leaves and the others, read after the resolve, then the leaves whose watermark
  // advanced. If any did, it publishes that snapshot: origin, counter, generation, n, the n
  // lowest pending revisions, the n leaves.
  etcdTreeResolve: `
local out = {tonumber(redis.call('GET', KEYS[2]) or '-1') or -1, tonumber(redis.call('GET', KEYS[3]) or '-1') or -1}
local groups = tonumber(ARGV[3])
local leaves, advanced = {}, {}
local i = 4
for k = 4, 3 + groups do
  local leaf = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  i = i + 2
  local before = redis.call('ZRANGE', KEYS[k], 0, 0)[1]
  local revs, members = {}, {}
  for j = 0, count - 1 do
    revs[#revs + 1] = ARGV[i + j]
    members[#members + 1] = leaf .. ':' .. ARGV[i + j]
  end
  i = i + count
  redis.call('ZREM', KEYS[k], unpack(revs))
  redis.call('ZREM', KEYS[1], unpack(members))
  local after = redis.call('ZRANGE', KEYS[k], 0, 0)[1]
  out[#out + 1] = after and tonumber(after) or 0
  leaves[#leaves + 1] = leaf
  if before and before ~= after then advanced[#advanced + 1] = leaf end
end
for k = 4 + groups, #KEYS do
  local lowest = redis.call('ZRANGE', KEYS[k], 0, 0)[1]
  out[#out + 1] = lowest and tonumber(lowest) or 0
  leaves[#leaves + 1] = ARGV[i]
  i = i + 1
end
if #advanced > 0 then
  local message = {ARGV[2], string.format('%d', out[1]), string.format('%d', out[2]), #leaves}
  for j = 1, #leaves do message[#message + 1] = string.format('%d', out[2 + j]) end
  for j = 1, #leaves do message[#message + 1] = leaves[j] end
  redis.call('PUBLISH', ARGV[1], table.concat(message, '\\n'))
end
for _, leaf in ipairs(advanced) do out[#out + 1] = leaf end
return out`,

  // KEYS: counter, generation, pending:<leaf>... Returns {counter or -1, generation or -1,
  // lowest pending revision of each leaf or 0 when none}: W(S) for any S among the leaves is
  // min(counter, lowest(L) - 1 for L in S with pending revisions), read atomically.
  etcdTreeSnapshot: `
local out = {tonumber(redis.call('GET', KEYS[1]) or '-1') or -1, tonumber(redis.call('GET', KEYS[2]) or '-1') or -1}
for k = 3, #KEYS do
  local lowest = redis.call('ZRANGE', KEYS[k], 0, 0)[1]
  out[#out + 1] = lowest and tonumber(lowest) or 0
end
return out`,

  // KEYS: deadlines. ARGV: limit, leaf... Returns {leaf, rev, ...} whose deadline passed
  // (Redis clock), for the given leaves only.
  etcdTreeExpired: `
${NOW_MS}
local limit = tonumber(ARGV[1])
local wanted = {}
for i = 2, #ARGV do wanted[ARGV[i]] = true end
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))) do
  local leaf, rev = string.match(m, '^(.*):(%d+)$')
  if leaf and wanted[leaf] then
    out[#out + 1] = leaf
    out[#out + 1] = rev
    if #out >= limit * 2 then break end
  end
end
return out`,

  // KEYS: counter. ARGV: floor. Raises the counter to at least floor; returns the counter.
  etcdTreeSeed: `
local c = tonumber(redis.call('GET', KEYS[1]) or '-1') or -1
local floor = tonumber(ARGV[1])
if floor > c then
  redis.call('SET', KEYS[1], string.format('%d', floor))
  return floor
end
return c`,

  // KEYS: lock. ARGV: token, ttl ms. Extends the lock if still ours; 1 if so.
  etcdTreeLockRefresh: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,

  // KEYS: lock. ARGV: token. Releases the lock if still ours.
  etcdTreeLockRelease: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,

  // KEYS: lock, counter, generation. ARGV: token, counter floor, generation, wake channel.
  // Under the lock only: raise the counter (never lower it), publish the generation, unlock,
  // wake everyone. Returns the counter.
  etcdTreeEstablish: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('${ScriptErrors.lockLost} the generation lock expired or Redis lost it') end
local c = tonumber(redis.call('GET', KEYS[2]) or '-1') or -1
local target = tonumber(ARGV[2])
if target > c then
  redis.call('SET', KEYS[2], string.format('%d', target))
  c = target
end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[4], '')
return c`,
} as const;

/** What a snapshot says: counter and generation (null when missing), lowest pending per leaf. */
export interface RedisSnapshot {
  counter: number | null;
  generation: number | null;
  /** Lowest pending revision of each leaf asked about; 0 when it has none. */
  lowest: Map<string, number>;
}

/** A resolve's wake-up as published: who resolved, and a snapshot of the leaves it reported. */
export interface WakeMessage {
  origin: string;
  snapshot: RedisSnapshot;
}

/**
 * Reads a resolve's wake-up (etcdTreeResolve); null for anything else (a generation's empty
 * one, a format this node does not know, a leaf name with a line break in it).
 */
export function parseWakeMessage(message: string): WakeMessage | null {
  const lines = message.split('\n');
  const n = Number(lines[3]);
  if (!Number.isSafeInteger(n) || n < 1 || lines.length !== 4 + 2 * n) return null;
  const numbers = [lines[1], lines[2], ...lines.slice(4, 4 + n)].map(Number);
  if (!numbers.every(Number.isSafeInteger)) return null;
  return { origin: lines[0], snapshot: snapshotOf(numbers, lines.slice(4 + n)) };
}

/** A script's answer {counter or -1, generation or -1, lowest pending of each leaf or 0, ...} as a snapshot. */
function snapshotOf(out: ReadonlyArray<number | string>, leaves: readonly string[]): RedisSnapshot {
  const lowest = new Map<string, number>();
  leaves.forEach((leaf, i) => lowest.set(leaf, Number(out[i + 2])));
  const counter = Number(out[0]);
  const generation = Number(out[1]);
  return { counter: counter < 0 ? null : counter, generation: generation < 0 ? null : generation, lowest };
}

/** Typed calls of the scripts on one connection. */
export class RevisionScripts {
  private readonly r: Record<string, (...args: Array<string | number>) => Promise<unknown>>;

  constructor(redis: Redis, private readonly keys: RedisKeys) {
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    this.r = redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>;
  }

  private call(name: keyof typeof SCRIPTS, keys: string[], args: Array<string | number>): Promise<unknown> {
    return tracedScriptCall(name, () => this.r[name].call(this.r, keys.length, ...keys, ...args));
  }

  async allocate(leaf: string, n: number, deadlineMs: number): Promise<{ first: number; generation: number }> {
    const k = this.keys;
    const [first, generation] = (await this.call('etcdTreeAllocate', [k.counter, k.generation, k.pending(leaf), k.deadlines], [leaf, n, deadlineMs])) as [number, number];
    return { first: Number(first), generation: Number(generation) };
  }

  /**
   * Resolves revisions grouped by leaf. Answers a snapshot of the groups' leaves and of `others`
   * taken right after, and the leaves whose watermark advanced; if any did, that snapshot is
   * published on the wake channel (after `origin`).
   */
  async resolve(groups: ReadonlyMap<string, readonly number[]>, others: readonly string[], origin: string): Promise<{ snapshot: RedisSnapshot; advanced: string[] }> {
    const k = this.keys;
    const keys = [k.deadlines, k.counter, k.generation];
    const args: Array<string | number> = [k.wakeChannel, origin, groups.size];
    for (const [leaf, revs] of groups) {
      keys.push(k.pending(leaf));
      args.push(leaf, revs.length, ...revs);
    }
    for (const leaf of others) keys.push(k.pending(leaf));
    args.push(...others);
    const out = (await this.call('etcdTreeResolve', keys, args)) as Array<number | string>;
    const leaves = [...groups.keys(), ...others];
    return { snapshot: snapshotOf(out, leaves), advanced: out.slice(2 + leaves.length).map(String) };
  }

  async snapshot(leaves: readonly string[]): Promise<RedisSnapshot> {
    const k = this.keys;
    const out = (await this.call('etcdTreeSnapshot', [k.counter, k.generation, ...leaves.map((l) => k.pending(l))], [])) as number[];
    return snapshotOf(out, leaves);
  }

  async expired(leaves: readonly string[], limit: number): Promise<Array<{ leaf: string; rev: number }>> {
    const out = (await this.call('etcdTreeExpired', [this.keys.deadlines], [limit, ...leaves])) as string[];
    const list: Array<{ leaf: string; rev: number }> = [];
    for (let i = 0; i + 1 < out.length; i += 2) list.push({ leaf: String(out[i]), rev: Number(out[i + 1]) });
    return list;
  }

  async seed(floor: number): Promise<number> {
    return Number(await this.call('etcdTreeSeed', [this.keys.counter], [floor]));
  }

  async refreshLock(token: string, ttlMs: number): Promise<boolean> {
    return Number(await this.call('etcdTreeLockRefresh', [this.keys.lock], [token, ttlMs])) === 1;
  }

  async releaseLock(token: string): Promise<void> {
    await this.call('etcdTreeLockRelease', [this.keys.lock], [token]);
  }

  async establish(token: string, counterFloor: number, generation: number): Promise<number> {
    const k = this.keys;
    return Number(await this.call('etcdTreeEstablish', [k.lock, k.counter, k.generation], [token, counterFloor, generation, k.wakeChannel]));
  }
}
