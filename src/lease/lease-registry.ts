// The lease registry contract (DESIGN.md 2, 7): what the Lease service and the router need from
// leases. Implementations: leaf-lessor.ts (one node: records in the home leaf, deadlines in
// memory) and redis-lessor.ts (several nodes: records, deadlines and revocation claims in Redis).
//
// Invariant every implementation keeps: a key never outlives its lease. A lease that started
// being revoked (explicitly or on expiry) stops taking keys before its keys are deleted, and the
// deletion is one write per leaf (router.revokeLeaseKeys), so each key gets exactly one delete event.

/** etcd's minimum TTL with default election settings: ceil(1.5 * election timeout 1 s). */
export const MIN_LEASE_TTL = 2;
export const MAX_LEASE_TTL = 9_000_000_000;

/** What a registry needs from the keyspace (the router implements it). */
export interface LeaseKeys {
  /** Deletes every key attached to the lease, one write per leaf that holds some. */
  revokeLeaseKeys(id: number): Promise<void>;
  keysOfLease(id: number): Promise<Buffer[]>;
}

export interface LeaseTimeToLive {
  /** Seconds left (0 when expired but not yet revoked). */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

export interface LeaseRegistry {
  start(): Promise<void>;
  /** Stops expiry checks and releases connections; calls after it fail. */
  stop(): Promise<void>;

  /** etcd's LeaseGrant: `requestedId` 0 picks a random ID; an existing ID -> leaseExist. */
  grant(ttl: number, requestedId: number): Promise<{ id: number; ttl: number }>;
  /** Deletes the lease's keys, then the lease; leaseNotFound when it does not exist. */
  revoke(id: number): Promise<void>;
  /** Returns the TTL granted again, or 0 when the lease does not exist (etcd's answer). */
  keepAlive(id: number): Promise<number>;
  /** null when the lease does not exist (or is being revoked). */
  timeToLive(id: number, withKeys: boolean): Promise<LeaseTimeToLive | null>;
  /** IDs of the live leases. */
  list(): Promise<number[]>;

  /**
   * Called before a write txn with every lease ID its puts use: afterwards exists() answers for
   * them without I/O. Never throws for a lease that does not exist (exists() then says false);
   * throws UNAVAILABLE when it cannot find out.
   */
  ensureKnown(ids: readonly number[]): Promise<void>;
  /**
   * Synchronous, inside leaf write transactions: may the lease take keys? False for unknown,
   * revoked, or being-revoked leases. With a remote registry, only IDs passed to ensureKnown()
   * shortly before can answer true.
   */
  exists(id: number): boolean;
}

/** A random lease ID: positive and below 2^53, so it survives every JSON and JS number path. */
export function randomLeaseId(): number {
  return Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1)) + 1;
}
