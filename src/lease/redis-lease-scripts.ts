// The Redis side of multi-node leases (DESIGN.md 7): key names and one Lua script per step, so
// each step is atomic. Registered with ioredis defineCommand (EVALSHA, EVAL fallback).
//
// Keys under <prefix>lease:
//   restored   present once the records were loaded from the home leaf (where every lease is
//              also persisted). Missing = Redis lost its data: every script but the restore
//              answers NOLEASES (UNAVAILABLE) until a node restored the records, so a lost
//              record never reads as "lease not found" and no attached key is orphaned.
//   records    hash id -> granted TTL (s). A lease exists while its record does.
//   deadlines  zset id -> deadline (ms, Redis clock). For a lease being revoked: the claim's
//              expiry instead, so a crashed revoker's lease falls due again and another node
//              takes the revocation over.
//   claims     hash id -> token of the node revoking it. A claimed lease takes no keys, cannot
//              be kept alive, and is gone for TimeToLive and Leases.
//   vouched    hash id -> until when (ms, Redis clock) some node may still accept puts with the
//              lease from its cache (see live-lease-cache.ts). A revoker waits until then before
//              deleting keys, so no key written under a cached "live" can outlive the lease.
// Channel <prefix>lease:revoking: a claimed lease's ID, so nodes drop it from their caches at once.
//
// IDs travel as decimal strings (they are below 2^53, exact in Lua's doubles); times as %d.
import type { Redis } from 'ioredis';
import { tracedScriptCall } from '../revision/redis-connection.ts';

export class LeaseRedisKeys {
  readonly records: string;
  readonly deadlines: string;
  readonly claims: string;
  readonly vouched: string;
  readonly revokingChannel: string;
  readonly restored: string;

  constructor(prefix: string) {
    const p = `${prefix}lease:`;
    this.records = `${p}records`;
    this.deadlines = `${p}deadlines`;
    this.claims = `${p}claims`;
    this.vouched = `${p}vouched`;
    this.revokingChannel = `${p}revoking`;
    this.restored = `${p}restored`;
  }

  /** Every script's KEYS, in this order. */
  get all(): string[] {
    return [this.restored, this.records, this.deadlines, this.claims, this.vouched];
  }
}

/** First word of the error reply of scripts that find the `restored` marker missing. */
export const NO_LEASES = 'NOLEASES';

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// Every script gets KEYS: restored, records, deadlines, claims, vouched.
const RESTORED = `if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('${NO_LEASES} the lease records are not loaded (Redis lost its data?)') end`;

// Marks `id` claimed by `token` until now + claimMs, tells every node, and returns how long the
// claimer must wait for nodes' caches to lapse.
const CLAIM_FN = `
local function claim(id, token, claimMs, channel)
  redis.call('HSET', KEYS[4], id, token)
  redis.call('ZADD', KEYS[3], string.format('%d', now + tonumber(claimMs)), id)
  redis.call('PUBLISH', channel, id)
  local v = tonumber(redis.call('HGET', KEYS[5], id) or '0') or 0
  return math.max(0, v - now)
end`;

const SCRIPTS = {
  // ARGV: id, ttl (s). 1 when granted, 0 when the ID exists.
  etcdTreeLeaseGrant: `
${RESTORED}
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
${NOW_MS}
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], string.format('%d', now + tonumber(ARGV[2]) * 1000), ARGV[1])
return 1`,

  // ARGV: id. Undoes a grant whose record could not be saved in the home leaf.
  etcdTreeLeaseUngrant: `
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1`,

  // ARGV: id. The granted TTL after pushing the deadline, or 0 when the lease is gone, being
  // revoked, or already expired (etcd: an expired lease is not found).
  etcdTreeLeaseKeepAlive: `
${RESTORED}
local ttl = redis.call('HGET', KEYS[2], ARGV[1])
if not ttl or redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return 0 end
${NOW_MS}
local d = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0') or 0
if d <= now then return 0 end
redis.call('ZADD', KEYS[3], string.format('%d', now + tonumber(ttl) * 1000), ARGV[1])
return tonumber(ttl)`,

  // ARGV: id. {granted TTL, ms left} or {} when gone.
  etcdTreeLeaseTimeToLive: `
${RESTORED}
local ttl = redis.call('HGET', KEYS[2], ARGV[1])
if not ttl or redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return {} end
${NOW_MS}
local d = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0') or 0
return {tonumber(ttl), math.max(0, d - now)}`,

  // IDs of leases that exist and are not being revoked.
  etcdTreeLeaseList: `
${RESTORED}
local out = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do
  if redis.call('HEXISTS', KEYS[4], id) == 0 then out[#out + 1] = id end
end
return out`,

  // ARGV: valid for (ms), id... Per id 1 when it may take keys (then its vouched time is raised
  // to now + valid for), else 0.
  etcdTreeLeaseVouch: `
${RESTORED}
${NOW_MS}
local untilMs = now + tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], id) == 1 and redis.call('HEXISTS', KEYS[4], id) == 0 then
    local v = tonumber(redis.call('HGET', KEYS[5], id) or '0') or 0
    if untilMs > v then redis.call('HSET', KEYS[5], id, string.format('%d', untilMs)) end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out`,

  // ARGV: id, token, claim ms, channel.
  // {-1, 0}: no such lease; {0, 0}: another node's claim is still running; {1, wait ms}: ours.
  etcdTreeLeaseClaim: `
${RESTORED}
${NOW_MS}
${CLAIM_FN}
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {-1, 0} end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  local d = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0') or 0
  if d > now then return {0, 0} end
end
return {1, claim(ARGV[1], ARGV[2], ARGV[3], ARGV[4])}`,

  // ARGV: token, claim ms, channel, limit. Claims up to `limit` leases whose deadline (or whose
  // previous claim) passed: {id, wait ms, id, wait ms, ...}.
  etcdTreeLeaseClaimExpired: `
${RESTORED}
${NOW_MS}
${CLAIM_FN}
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', now), 'LIMIT', 0, tonumber(ARGV[4]))) do
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
  else
    out[#out + 1] = id
    out[#out + 1] = claim(id, ARGV[1], ARGV[2], ARGV[3])
  end
end
return out`,

  // ARGV: id, token, claim ms. 1 if the claim is still ours (then extended).
  etcdTreeLeaseExtendClaim: `
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
${NOW_MS}
redis.call('ZADD', KEYS[3], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
return 1`,

  // ARGV: id, token. Removes the lease if the claim is still ours; 1 if so.
  etcdTreeLeaseFinish: `
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1`,

  // ARGV: vouch for (ms), then id, ttl pairs from the home leaf. Adds the leases Redis does not
  // have, each with its full TTL (as etcd does after a leader change), vouched for as if every
  // node had it cached (their caches may predate the loss). Returns how many it added.
  etcdTreeLeaseRestore: `
${NOW_MS}
local added = 0
local vouch = string.format('%d', now + tonumber(ARGV[1]))
for i = 2, #ARGV - 1, 2 do
  local id, ttl = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', KEYS[2], id, ttl) == 1 then
    redis.call('ZADD', KEYS[3], string.format('%d', now + tonumber(ttl) * 1000), id)
    redis.call('HSET', KEYS[5], id, vouch)
    added = added + 1
  end
end
return added`,

  // Marks the records loaded.
  etcdTreeLeaseRestored: `
${NOW_MS}
redis.call('SET', KEYS[1], string.format('%d', now))
return 1`,
} as const;

export type ClaimResult = { kind: 'missing' } | { kind: 'busy' } | { kind: 'claimed'; waitMs: number };

/** Typed calls of the scripts on one connection. */
export class LeaseScripts {
  private readonly r: Record<string, (...args: Array<string | number>) => Promise<unknown>>;

  constructor(redis: Redis, private readonly keys: LeaseRedisKeys) {
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    this.r = redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>;
  }

  private call(name: keyof typeof SCRIPTS, args: Array<string | number>): Promise<unknown> {
    const keys = this.keys.all;
    return tracedScriptCall(name, () => this.r[name].call(this.r, keys.length, ...keys, ...args));
  }

  async grant(id: number, ttl: number): Promise<boolean> {
    return Number(await this.call('etcdTreeLeaseGrant', [String(id), ttl])) === 1;
  }

  async ungrant(id: number): Promise<void> {
    await this.call('etcdTreeLeaseUngrant', [String(id)]);
  }

  async keepAlive(id: number): Promise<number> {
    return Number(await this.call('etcdTreeLeaseKeepAlive', [String(id)]));
  }

  async timeToLive(id: number): Promise<{ grantedTtl: number; remainingMs: number } | null> {
    const out = (await this.call('etcdTreeLeaseTimeToLive', [String(id)])) as number[];
    return out.length === 0 ? null : { grantedTtl: Number(out[0]), remainingMs: Number(out[1]) };
  }

  async list(): Promise<number[]> {
    return ((await this.call('etcdTreeLeaseList', [])) as string[]).map(Number);
  }

  /** Per id, whether it may take keys; vouches for it until Redis' now + validForMs. */
  async vouch(ids: readonly number[], validForMs: number): Promise<boolean[]> {
    const out = (await this.call('etcdTreeLeaseVouch', [validForMs, ...ids.map(String)])) as number[];
    return out.map((v) => Number(v) === 1);
  }

  async claim(id: number, token: string, claimMs: number): Promise<ClaimResult> {
    const [status, waitMs] = (await this.call('etcdTreeLeaseClaim', [String(id), token, claimMs, this.keys.revokingChannel])) as number[];
    if (Number(status) < 0) return { kind: 'missing' };
    if (Number(status) === 0) return { kind: 'busy' };
    return { kind: 'claimed', waitMs: Number(waitMs) };
  }

  async claimExpired(token: string, claimMs: number, limit: number): Promise<Array<{ id: number; waitMs: number }>> {
    const out = (await this.call('etcdTreeLeaseClaimExpired', [token, claimMs, this.keys.revokingChannel, limit])) as Array<string | number>;
    const claimed: Array<{ id: number; waitMs: number }> = [];
    for (let i = 0; i + 1 < out.length; i += 2) claimed.push({ id: Number(out[i]), waitMs: Number(out[i + 1]) });
    return claimed;
  }

  async extendClaim(id: number, token: string, claimMs: number): Promise<boolean> {
    return Number(await this.call('etcdTreeLeaseExtendClaim', [String(id), token, claimMs])) === 1;
  }

  async finish(id: number, token: string): Promise<boolean> {
    return Number(await this.call('etcdTreeLeaseFinish', [String(id), token])) === 1;
  }

  /** Adds the leases Redis lacks; returns how many. */
  async restore(leases: ReadonlyArray<{ id: number; ttl: number }>, vouchForMs: number): Promise<number> {
    return Number(await this.call('etcdTreeLeaseRestore', [vouchForMs, ...leases.flatMap((l) => [String(l.id), l.ttl])]));
  }

  async markRestored(): Promise<void> {
    await this.call('etcdTreeLeaseRestored', []);
  }
}
