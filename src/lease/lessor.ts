// Compatibility names for node.ts, which still imports `Lessor` from here: the single-node
// registry under its old name. New code imports leaf-lessor.ts / redis-lessor.ts /
// lease-registry.ts; remove this file once node.ts does.
export { LeafLessor as Lessor } from './leaf-lessor.ts';
export { MAX_LEASE_TTL, MIN_LEASE_TTL, type LeaseKeys } from './lease-registry.ts';
