// Micro benchmark of the Redis allocator's round trips (the issue wants < 0.3 ms at p50 on
// loopback for allocate + resolve). Run: node --import tsx test/integration/revision/redis-round-trip-bench.ts
// (ETCD_TREE_TEST_REDIS_URL picks the server; N=<iterations>).
import { performance } from 'node:perf_hooks';
import { established, redisFixture } from './redis-fixture.ts';

const N = Number(process.env.N ?? 5000);
const fx = redisFixture();
const a = fx.allocator({ pollMs: 60_000 });

function quantiles(samples: number[]): string {
  const s = [...samples].sort((x, y) => x - y);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(3);
  return `p50 ${q(0.5)} ms  p90 ${q(0.9)} ms  p99 ${q(0.99)} ms`;
}

async function measure(name: string, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 500; i++) await fn(i); // warm up (scripts loaded, JIT)
  const samples: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await fn(i);
    samples.push(performance.now() - t);
  }
  console.log(`${name.padEnd(52)} ${quantiles(samples)}`);
}

try {
  await established(a);
  await measure('PING (raw ioredis, baseline)', () => fx.redis.ping());
  await measure('allocate', () => a.allocate('bench'));
  // What a write adds: current() for beginRev, then allocate, then the background resolve.
  await measure('current + allocate + resolve (a write, sequential)', async () => {
    await a.current();
    const { rev } = await a.allocate('bench2');
    a.resolve('bench2', rev);
  });
  // allocate, resolve, and wait until a reader can see it resolved (W >= rev).
  await measure('allocate + resolve + waitFor(W >= rev)', async () => {
    const { rev } = await a.allocate('bench3');
    a.resolve('bench3', rev);
    await a.waitFor(['bench3'], rev);
  });
  await measure('readIndex (nothing pending)', () => a.readIndex(['bench3']));

  // Throughput with concurrency: batching should keep calls far below allocations.
  for (const concurrency of [1, 16, 256]) {
    const before = a.stats();
    const t = performance.now();
    let done = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (done < 20_000) {
          done++;
          const { rev } = await a.allocate('tput');
          a.resolve('tput', rev);
        }
      }),
    );
    const secs = (performance.now() - t) / 1000;
    const after = a.stats();
    console.log(
      `concurrency ${String(concurrency).padStart(3)}: ${Math.round(20_000 / secs)} allocate+resolve/s, ` +
        `${after.allocateCalls - before.allocateCalls} allocate calls, ${after.resolveCalls - before.resolveCalls} resolve calls for 20000 revisions`,
    );
  }
} finally {
  await fx.cleanup();
}
