// Each test's Redis keys live under a prefix of its own (--revision-prefix), so tests never see
// each other's revisions or leases; the prefix's keys are deleted when the test is done.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

export function uniqueRedisPrefix(): string {
  return `etcd-tree-test:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every Redis key under the prefix ("Redis restarted empty", or cleanup); returns how many. */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    const keys = await r.keys(`${prefix}*`);
    return keys.length ? await r.del(...keys) : 0;
  } finally {
    r.disconnect();
  }
}
