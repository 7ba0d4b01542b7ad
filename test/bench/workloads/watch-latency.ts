import type { Workload } from '../workload.ts';
import { prefixEnd } from './keys.ts';

const EVENT_TIMEOUT_MS = 10_000;

/**
 * Put-to-event latency: a watcher on a prefix, then one put at a time under it; an operation
 * lasts from sending the put until the watcher receives its event (whether or not the put's own
 * response came first).
 */
export const watchLatency: Workload = {
  name: 'watch-event',
  description: 'Time from sending a put (1 KiB) to receiving its event on a prefix watch, one at a time',
  operation: 'event',
  concurrency: 1,
  async prepare({ client, runPrefix, value }) {
    const kv = client.kv(0);
    const stream = client.watch();
    const waiting = new Map<string, { resolve(): void; reject(err: Error): void }>();
    let streamFailure: Error | undefined;
    const failAll = (err: Error) => {
      streamFailure ??= err;
      for (const waiter of waiting.values()) waiter.reject(err);
      waiting.clear();
    };

    const created = new Promise<void>((resolve, reject) => {
      stream.on('data', (res) => {
        if (res.created) resolve();
        if (res.canceled) failAll(new Error(`watch canceled: ${res.cancel_reason || 'no reason given'}`));
        for (const event of res.events) {
          const key = event.kv.key.toString('latin1');
          waiting.get(key)?.resolve();
          waiting.delete(key);
        }
      });
      stream.on('error', (err: Error) => { failAll(err); reject(err); });
    });
    stream.write({ create_request: { key: Buffer.from(runPrefix), range_end: prefixEnd(runPrefix) } });
    await created;

    let n = 0;
    return {
      op: () =>
        new Promise<void>((resolve, reject) => {
          if (streamFailure) return reject(streamFailure);
          const key = `${runPrefix}${n++}`;
          const timer = setTimeout(() => {
            waiting.delete(key);
            reject(new Error(`no watch event for ${key} within ${EVENT_TIMEOUT_MS} ms`));
          }, EVENT_TIMEOUT_MS);
          waiting.set(key, {
            resolve: () => { clearTimeout(timer); resolve(); },
            reject: (err) => { clearTimeout(timer); reject(err); },
          });
          kv.put(Buffer.from(key, 'latin1'), value).catch((err: Error) => {
            waiting.get(key)?.reject(err);
            waiting.delete(key);
          });
        }),
      close: () => {
        stream.removeAllListeners('data');
        stream.on('error', () => {}); // the cancellation below surfaces as a CANCELLED error
        stream.cancel();
      },
    };
  },
};
