// Key helpers shared by workloads.
import type { KvChannel } from '../bench-client.ts';

/** etcd's range_end for "every key starting with prefix": the prefix with its last byte + 1. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] += 1; // our prefixes end in '/', never 0xff
  return end;
}

/** Writes keys `${prefix}${i}` for i < count, `inFlight` at a time; returns the keys. */
export async function populate(kv: (worker: number) => KvChannel, prefix: string, count: number, value: Buffer, inFlight = 32): Promise<Buffer[]> {
  const keys = Array.from({ length: count }, (_, i) => Buffer.from(`${prefix}${String(i).padStart(6, '0')}`));
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async (_, worker) => {
    while (next < count) await kv(worker).put(keys[next++], value);
  }));
  return keys;
}
