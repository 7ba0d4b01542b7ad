// Leases of a single node: granted with a TTL, kept alive by clients, and on expiry or revoke
// every attached key is deleted in one write per leaf (delete events for each). Lease records
// are persisted in the home leaf, deadlines live in memory; after a restart every lease gets its
// full TTL again, as etcd does on leader change.
import { Errors } from '../etcd/errors.ts';
import type { LeaseHome } from '../router/target.ts';
import { log } from '../telemetry/logger.ts';
import { MAX_LEASE_TTL, MIN_LEASE_TTL, randomLeaseId, type LeaseKeys, type LeaseRegistry, type LeaseTimeToLive } from './lease-registry.ts';

const EXPIRY_CHECK_MS = 500;

interface Lease {
  id: number;
  /** Granted TTL in seconds (after raising to the minimum). */
  ttl: number;
  /** When it expires, in ms since the epoch. */
  expiresAt: number;
  /** Set once revocation started: from then on the lease takes no keys, so none can outlive it. */
  revoking?: Promise<void>;
}

export class LeafLessor implements LeaseRegistry {
  private readonly leases = new Map<number, Lease>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly home: LeaseHome, private readonly keys: LeaseKeys, private readonly now = () => Date.now()) {}

  async start(): Promise<void> {
    for (const rec of await this.home.listLeases()) {
      this.leases.set(rec.id, { id: rec.id, ttl: rec.ttl, expiresAt: this.now() + rec.ttl * 1000 });
    }
    this.timer = setInterval(() => this.expire(), EXPIRY_CHECK_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Everything is in memory already. */
  async ensureKnown(): Promise<void> {}

  exists(id: number): boolean {
    const lease = this.leases.get(id);
    return lease !== undefined && !lease.revoking;
  }

  async grant(ttl: number, requestedId: number): Promise<{ id: number; ttl: number }> {
    if (ttl > MAX_LEASE_TTL) throw Errors.leaseTTLTooLarge();
    const id = requestedId !== 0 ? requestedId : this.newId();
    if (this.leases.has(id)) throw Errors.leaseExist();
    const granted = Math.max(ttl, MIN_LEASE_TTL);
    const lease: Lease = { id, ttl: granted, expiresAt: this.now() + granted * 1000 };
    this.leases.set(id, lease);
    try {
      await this.home.saveLease({ id, ttl: granted });
    } catch (err) {
      this.leases.delete(id);
      throw err;
    }
    return { id, ttl: granted };
  }

  async revoke(id: number): Promise<void> {
    const lease = this.leases.get(id);
    if (!lease) throw Errors.leaseNotFound();
    await this.revokeLease(lease);
  }

  async keepAlive(id: number): Promise<number> {
    const lease = this.leases.get(id);
    if (!lease || lease.revoking) return 0;
    lease.expiresAt = this.now() + lease.ttl * 1000;
    return lease.ttl;
  }

  async timeToLive(id: number, withKeys: boolean): Promise<LeaseTimeToLive | null> {
    const lease = this.leases.get(id);
    if (!lease || lease.revoking) return null; // expired or revoked: gone, as etcd answers
    const remaining = Math.max(0, Math.trunc((lease.expiresAt - this.now()) / 1000));
    return { ttl: remaining, grantedTtl: lease.ttl, keys: withKeys ? await this.keys.keysOfLease(id) : [] };
  }

  async list(): Promise<number[]> {
    return [...this.leases.values()].filter((l) => !l.revoking).map((l) => l.id);
  }

  private revokeLease(lease: Lease): Promise<void> {
    lease.revoking ??= (async () => {
      try {
        await this.keys.revokeLeaseKeys(lease.id);
        await this.home.deleteLease(lease.id);
        this.leases.delete(lease.id);
      } catch (err) {
        lease.revoking = undefined;
        throw err;
      }
    })();
    return lease.revoking;
  }

  private expire(): void {
    const now = this.now();
    for (const lease of this.leases.values()) {
      if (lease.expiresAt <= now && !lease.revoking) {
        this.revokeLease(lease).catch((err) => log.warn({ err, lease: lease.id }, 'lease expiry failed; retrying'));
      }
    }
  }

  private newId(): number {
    for (;;) {
      const id = randomLeaseId();
      if (!this.leases.has(id)) return id;
    }
  }
}
