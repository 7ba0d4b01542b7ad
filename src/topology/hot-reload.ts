// Watches the topology directory; on a change (debounced) reads and validates it again and
// hands the result to `apply`, which swaps it in or refuses it. The old topology stays in
// force on any error.
import { watch, type FSWatcher } from 'node:fs';
import { log } from '../telemetry/logger.ts';
import { loadTopology, type Topology } from './load-topology.ts';

export interface TopologyWatcher {
  close(): void;
  /** Resolves after the reload in progress (if any) has finished; for tests and shutdown. */
  settled(): Promise<void>;
}

export function watchTopology(dir: string, dataDir: string, apply: (t: Topology) => Promise<void>, debounceMs = 150): TopologyWatcher {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  const reload = () => {
    running = running.then(async () => {
      try {
        await apply(loadTopology(dir, dataDir));
      } catch (err) {
        log.error({ reason: (err as Error).message }, 'topology change refused; the previous topology stays in force');
      }
    });
  };
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(reload, debounceMs);
    });
  } catch (err) {
    log.warn({ err, dir }, 'cannot watch the topology directory; changes need a restart');
    return { close() {}, settled: () => running };
  }
  watcher.on('error', (err) => log.warn({ err, dir }, 'topology directory watch failed'));
  return {
    close() {
      if (timer) clearTimeout(timer);
      watcher.close();
    },
    settled: () => running,
  };
}
