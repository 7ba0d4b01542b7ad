// The node's default process metrics sample the event-loop delay coarsely: prom-client's 10 ms
// default is a timer that woke an idle node 100 times a second.
import perfHooks from 'node:perf_hooks';
import { describe, expect, it, vi } from 'vitest';

describe('event-loop delay metrics', () => {
  it('sample every 100 ms and are exported', async () => {
    const monitor = vi.spyOn(perfHooks, 'monitorEventLoopDelay');
    try {
      // Imported only now, so the spy sees the monitor that loading the metrics sets up.
      const { EVENT_LOOP_SAMPLE_MS, renderMetrics } = await import('../../src/telemetry/metrics.ts');
      expect(EVENT_LOOP_SAMPLE_MS).toBe(100);
      expect(monitor).toHaveBeenCalledWith({ resolution: EVENT_LOOP_SAMPLE_MS });
      expect(await renderMetrics()).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    } finally {
      monitor.mockRestore();
    }
  });
});
