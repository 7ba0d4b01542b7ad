// Each test gets a key prefix of its own on the real Redis (ETCD_TREE_TEST_REDIS_URL, default
// redis://127.0.0.1:6379/0) and deletes its keys afterwards, so tests and files run in parallel.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisAllocator, type RedisAllocatorOptions } from '../../../src/revision/redis-allocator.ts';

export const REDIS_URL = process.env.ETCD_TREE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

export interface RedisFixture {
  prefix: string;
  /** A plain client, to look at (or break) the keys behind the allocator's back. */
  redis: Redis;
  /** A new allocator on the prefix (a node); closed by cleanup(). */
  allocator(opts?: Partial<RedisAllocatorOptions>): RedisAllocator;
  /** Every key of the prefix (what Redis restarting empty would do to this tree). */
  flush(): Promise<number>;
  cleanup(): Promise<void>;
}

export function redisFixture(): RedisFixture {
  const prefix = `etcd-tree-test:${randomBytes(6).toString('hex')}:`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const allocators: RedisAllocator[] = [];
  const flush = async () => {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await redis.del(...keys);
    } while (cursor !== '0');
    return n;
  };
  return {
    prefix,
    redis,
    allocator(opts = {}) {
      const a = new RedisAllocator({ url: REDIS_URL, keyPrefix: prefix, ...opts });
      allocators.push(a);
      return a;
    },
    flush,
    async cleanup() {
      await Promise.all(allocators.map((a) => a.close()));
      await flush();
      await redis.quit();
    },
  };
}

/** Seeds and establishes a generation, as a node would on first start. */
export async function established(a: RedisAllocator, floor = 1): Promise<number> {
  await a.seed(floor);
  return a.establishGeneration(floor, 0, async () => undefined);
}

/** The settled state of a promise right now (after pending microtasks and I/O callbacks ran). */
export async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  await new Promise((r) => setImmediate(r));
  return settled;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
