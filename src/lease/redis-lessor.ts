// Leases shared by every node of a tree (DESIGN.md 7): IDs are global, records and deadlines
// live in Redis (redis-lease-scripts.ts), any node answers Grant/KeepAlive/TimeToLive/Leases,
// and every node scans for expired leases; exactly one claims each (atomically in Redis), waits
// until no node can still accept puts with it (live-lease-cache.ts), deletes its keys in every
// leaf (one write per leaf: one delete event per key), then removes the record. A claim that is
// not finished (the claimer crashed or lost Redis) falls due again and another node takes over;
// a second deletion pass finds no keys, so no key is deleted twice.
//
// Every lease is also persisted in the home leaf (its lease table, as the single-node lessor
// keeps it), so Redis losing its data loses no lease: until a node reloaded the records (with
// their full TTL, as etcd after a leader change) lease calls answer UNAVAILABLE. This also
// carries leases over from single-node mode.
import { randomBytes } from 'node:crypto';
import { Errors } from '../etcd/errors.ts';
import type { LeaseHome } from '../router/target.ts';
import { log } from '../telemetry/logger.ts';
import { MAX_LEASE_TTL, MIN_LEASE_TTL, randomLeaseId, type LeaseKeys, type LeaseRegistry, type LeaseTimeToLive } from './lease-registry.ts';
import { RedisConnection, type RedisErrorWords } from '../revision/redis-connection.ts';
import { LiveLeaseCache } from './live-lease-cache.ts';
import { LeasesNotLoaded } from './leases-not-loaded.ts';
import { LeaseRedisKeys, LeaseScripts, NO_LEASES } from './redis-lease-scripts.ts';

/** How the lessor's Redis connections word their failures. */
const LEASE_ERRORS: RedisErrorWords = {
  what: 'lease calls',
  unreachable: (reason) => Errors.unavailable(`leases unavailable: redis unreachable: ${reason}`),
  closed: () => Errors.unavailable('the lessor is stopped'),
  reply: (word) => (word === NO_LEASES ? new LeasesNotLoaded() : undefined),
};

export interface RedisLessorOptions {
  /** redis://host:port/db, shared by every node of the tree. */
  url: string;
  /** Prefix of the Redis keys, one tree per prefix (default `etcd-tree:`; leases add `lease:`). */
  keyPrefix?: string;
  /** Shown in Redis CLIENT LIST and in claim tokens. */
  nodeName?: string;
  /** How long a call waits for a Redis (re)connection before failing UNAVAILABLE (default 1000). */
  connectWaitMs?: number;
  /** A Redis command without a reply after this long fails UNAVAILABLE (default 2000). */
  commandTimeoutMs?: number;
  /** How often this node looks for expired leases (default 500, as etcd). */
  expiryCheckMs?: number;
  /**
   * How long this node trusts "lease is live" after asking Redis (default 2000). Bounds how
   * long a revoked lease can still take keys on a node that missed the invalidation, and how
   * long a revocation waits before deleting the keys of a lease used for puts just before.
   */
  cacheMaxAgeMs?: number;
  /** Puts re-ask Redis about a lease whose answer is older than this (default 500). */
  cacheRefreshMs?: number;
  /** A revocation claim lasts this long, extended while the revocation runs (default 10 000). */
  claimMs?: number;
  /** Most leases one node claims per expiry check (default 64). */
  maxClaimsPerCheck?: number;
  /**
   * Whether this node looks for expired leases (default true). Only nodes that see the whole
   * keyspace (roots) may: a revocation deletes the lease's keys in every target of the node
   * that runs it, and a branch would miss the keys under its siblings.
   */
  expiryChecks?: boolean;
}

/** Leases restored per script call. */
const RESTORE_BATCH = 500;

/** Extra lifetime vouched for in Redis beyond cacheMaxAgeMs: clock-rate differences, scheduling. */
const VOUCH_MARGIN_MS = 100;
/** How often a Revoke waiting for another node's revocation looks again. */
const BUSY_POLL_MS = 100;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class RedisLessor implements LeaseRegistry {
  private readonly conn: RedisConnection;
  private readonly sub: RedisConnection;
  private readonly keys: LeaseRedisKeys;
  private readonly scripts: LeaseScripts;
  private readonly cache: LiveLeaseCache;
  private readonly expiryCheckMs: number;
  private readonly claimMs: number;
  private readonly maxClaims: number;
  private readonly expiryChecks: boolean;
  private readonly tokenBase: string;
  private tokenSeq = 0;
  /** Fetches from Redis in flight, by lease ID: concurrent puts with one lease share one. */
  private readonly fetching = new Map<number, Promise<void>>();
  /** Revocations this node is running, by lease ID: a Revoke of one of them joins it. */
  private readonly revoking = new Map<number, Promise<boolean>>();
  private timer: NodeJS.Timeout | null = null;
  private scanning = false;
  /** A reload of the records from the home leaf in progress (after Redis lost them). */
  private restoring: Promise<void> | null = null;
  private scanFailing = false;
  private stopped = false;

  constructor(private readonly home: LeaseHome, private readonly leaseKeys: LeaseKeys, opts: RedisLessorOptions) {
    const name = opts.nodeName ?? 'node';
    const common = { url: opts.url, connectWaitMs: opts.connectWaitMs ?? 1000, commandTimeoutMs: opts.commandTimeoutMs ?? 2000 };
    this.conn = new RedisConnection({ ...common, errors: LEASE_ERRORS, name: `etcd-tree-leases-${name}` });
    this.sub = new RedisConnection({ ...common, errors: LEASE_ERRORS, name: `etcd-tree-leases-revoking-${name}`, subscriber: true, autoResubscribe: true });
    this.keys = new LeaseRedisKeys(opts.keyPrefix ?? 'etcd-tree:');
    this.scripts = new LeaseScripts(this.conn.client, this.keys);
    this.cache = new LiveLeaseCache(opts.cacheMaxAgeMs ?? 2000, opts.cacheRefreshMs ?? 500);
    this.expiryCheckMs = opts.expiryCheckMs ?? 500;
    this.claimMs = opts.claimMs ?? 10_000;
    this.maxClaims = opts.maxClaimsPerCheck ?? 64;
    this.expiryChecks = opts.expiryChecks ?? true;
    this.tokenBase = `${name}:${randomBytes(6).toString('hex')}`;

    this.sub.client.on('message', (channel: string, message: string) => {
      if (channel === this.keys.revokingChannel) this.cache.invalidate(Number(message));
    });
    // (Re)subscribe on every connection; invalidations published while away are lost, so the
    // cache starts over (the age bound would catch them too, later).
    let connectedBefore = false;
    this.sub.client.on('ready', () => {
      if (connectedBefore) this.cache.clear();
      connectedBefore = true;
      this.sub.client.subscribe(this.keys.revokingChannel).catch(() => undefined);
    });
  }

  /** Never fails for Redis being unreachable: lease calls answer UNAVAILABLE until it is back. */
  async start(): Promise<void> {
    await this.restoreIfLost().catch((err) => log.warn({ err: (err as Error).message }, 'lease records not checked yet; the expiry checks retry'));
    if (!this.expiryChecks) return;
    this.timer = setInterval(() => void this.expire(), this.expiryCheckMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.conn.close();
    this.sub.close();
  }

  async grant(ttl: number, requestedId: number): Promise<{ id: number; ttl: number }> {
    if (ttl > MAX_LEASE_TTL) throw Errors.leaseTTLTooLarge();
    const granted = Math.max(ttl, MIN_LEASE_TTL);
    let id = requestedId;
    if (requestedId !== 0) {
      if (!(await this.redis(() => this.scripts.grant(requestedId, granted)))) throw Errors.leaseExist();
    } else {
      // Random IDs below 2^53 collide about never; the script refuses one that exists anyway.
      for (let attempt = 0; ; attempt++) {
        if (attempt === 8) throw Errors.unavailable('could not find a free lease ID; retry');
        id = randomLeaseId();
        if (await this.redis(() => this.scripts.grant(id, granted))) break;
      }
    }
    // Redis made the ID ours; the home leaf keeps the lease should Redis lose its data.
    try {
      await this.home.saveLease({ id, ttl: granted });
    } catch (err) {
      await this.conn.run(() => this.scripts.ungrant(id)).catch(() => undefined); // else it just expires, with no keys
      throw err;
    }
    return { id, ttl: granted };
  }

  async revoke(id: number): Promise<void> {
    const giveUpAt = Date.now() + this.claimMs * 2;
    for (let first = true; ; first = false) {
      const running = this.revoking.get(id);
      if (running) {
        if (await running) return;
      } else {
        const token = this.newToken();
        const claim = await this.redis(() => this.scripts.claim(id, token, this.claimMs));
        if (claim.kind === 'missing') {
          if (first) throw Errors.leaseNotFound();
          return; // revoked meanwhile (by another node)
        }
        if (claim.kind === 'claimed' && (await this.track(id, this.revokeClaimed(id, token, claim.waitMs)))) return;
      }
      // Another node is revoking it (or took our claim over): wait until the record is gone,
      // or its claim lapses and we take over.
      if (Date.now() > giveUpAt) throw Errors.unavailable(`lease ${id} is being revoked by another node; retry`);
      await sleep(BUSY_POLL_MS);
    }
  }

  keepAlive(id: number): Promise<number> {
    return this.redis(() => this.scripts.keepAlive(id));
  }

  async timeToLive(id: number, withKeys: boolean): Promise<LeaseTimeToLive | null> {
    const t = await this.redis(() => this.scripts.timeToLive(id));
    if (!t) return null;
    return { ttl: Math.trunc(t.remainingMs / 1000), grantedTtl: t.grantedTtl, keys: withKeys ? await this.leaseKeys.keysOfLease(id) : [] };
  }

  list(): Promise<number[]> {
    return this.redis(() => this.scripts.list());
  }

  exists(id: number): boolean {
    return this.cache.isLive(id);
  }

  async ensureKnown(ids: readonly number[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const ask: number[] = [];
    for (const id of new Set(ids)) {
      if (id === 0 || !this.cache.needsRefresh(id)) continue;
      const inflight = this.fetching.get(id);
      if (inflight) waits.push(inflight);
      else ask.push(id);
    }
    if (ask.length > 0) {
      const fetch = this.fetch(ask);
      for (const id of ask) this.fetching.set(id, fetch);
      const done = () => {
        for (const id of ask) if (this.fetching.get(id) === fetch) this.fetching.delete(id);
      };
      fetch.then(done, done);
      waits.push(fetch);
    }
    if (waits.length === 0) return;
    const failed = (await Promise.allSettled(waits)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // Redis did not answer: an answer still young enough will do; otherwise UNAVAILABLE.
    if (failed && ids.some((id) => id !== 0 && !this.cache.isLive(id))) throw failed.reason;
  }

  /** Asks Redis which of `ids` may take keys, vouching for them there (see live-lease-cache.ts). */
  private async fetch(ids: number[]): Promise<void> {
    const sentAt = this.cache.now();
    const live = await this.redis(() => this.scripts.vouch(ids, this.cache.maxAgeMs + VOUCH_MARGIN_MS));
    ids.forEach((id, i) => this.cache.record(id, live[i], sentAt));
  }

  /** Keeps a revocation findable by Revoke calls on this node while it runs. */
  private track(id: number, revocation: Promise<boolean>): Promise<boolean> {
    this.revoking.set(id, revocation);
    const done = () => {
      if (this.revoking.get(id) === revocation) this.revoking.delete(id);
    };
    revocation.then(done, done);
    return revocation;
  }

  /**
   * Runs a revocation this node claimed: wait until no node can still accept puts with the
   * lease, delete its keys in every leaf, remove the record. False when the claim was lost to
   * another node (this one was too slow); errors leave the claim to lapse and be retried.
   */
  private async revokeClaimed(id: number, token: string, waitMs: number): Promise<boolean> {
    this.cache.invalidate(id);
    const extend = () => this.redis(() => this.scripts.extendClaim(id, token, this.claimMs));
    let warned = false;
    const heartbeat = setInterval(() => {
      if (this.stopped) return clearInterval(heartbeat);
      extend().catch((err) => {
        if (!warned) log.warn({ lease: id, err: (err as Error).message }, 'could not extend a lease revocation claim; another node takes over if it lapses');
        warned = true;
      });
    }, Math.max(100, Math.floor(this.claimMs / 3)));
    heartbeat.unref();
    try {
      if (waitMs > 0) await sleep(waitMs);
      if (!(await extend())) return false;
      await this.leaseKeys.revokeLeaseKeys(id);
      await this.home.deleteLease(id);
      await this.redis(() => this.scripts.finish(id, token));
      return true;
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** One expiry check: claim what fell due (expired leases, lapsed claims) and revoke it. */
  private async expire(): Promise<void> {
    if (this.scanning || this.stopped) return;
    this.scanning = true;
    try {
      this.cache.prune();
      const limit = Math.max(0, this.maxClaims - this.revoking.size);
      if (limit === 0) return;
      const token = this.newToken();
      const claimed = await this.redis(() => this.scripts.claimExpired(token, this.claimMs, limit));
      if (this.scanFailing) log.info('lease expiry checks work again');
      this.scanFailing = false;
      for (const { id, waitMs } of claimed) {
        this.track(id, this.revokeClaimed(id, token, waitMs)).catch((err) => {
          if (!this.stopped) log.warn({ lease: id, err: (err as Error).message }, 'lease expiry failed; another check retries it when the claim lapses');
        });
      }
    } catch (err) {
      if (!this.scanFailing && !this.stopped) log.warn({ err: (err as Error).message }, 'lease expiry check failed; retrying');
      this.scanFailing = true;
    } finally {
      this.scanning = false;
    }
  }

  /** Runs a script; when Redis lost the records, starts reloading them (and still fails this call). */
  private async redis<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.conn.run(fn);
    } catch (err) {
      if (err instanceof LeasesNotLoaded) void this.restoreIfLost().catch((e) => log.warn({ err: (e as Error).message }, 'could not restore lease records; retrying'));
      throw err;
    }
  }

  /**
   * Loads the home leaf's lease records into Redis when Redis does not have them (first start,
   * Redis restarted empty, or a switch from single-node mode). Idempotent: several nodes may
   * do it at once; leases Redis has are left alone.
   */
  private restoreIfLost(): Promise<void> {
    this.restoring ??= (async () => {
      try {
        if ((await this.conn.run((c) => c.exists(this.keys.restored))) === 1) return;
        const records = await this.home.listLeases();
        let added = 0;
        for (let i = 0; i < records.length; i += RESTORE_BATCH) {
          added += await this.conn.run(() => this.scripts.restore(records.slice(i, i + RESTORE_BATCH), this.cache.maxAgeMs + VOUCH_MARGIN_MS));
        }
        await this.conn.run(() => this.scripts.markRestored());
        if (added > 0) log.info({ leases: records.length, added }, 'lease records loaded into redis from the home leaf');
      } finally {
        this.restoring = null;
      }
    })();
    return this.restoring;
  }

  private newToken(): string {
    return `${this.tokenBase}:${++this.tokenSeq}`;
  }
}
