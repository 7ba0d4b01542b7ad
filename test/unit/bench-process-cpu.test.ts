// The benchmark's CPU accounting (test/bench/process-cpu.ts) on real processes: CPU is split by
// program, and a child that exits does not take its CPU time out of the tree's sum (a database
// server's backends come and go during a run).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { cpuDifference, processTreeCpuByProgram } from '../bench/process-cpu.ts';

describe('bench process CPU', () => {
  it('counts a child that burned CPU and exited in its parent, under its program', async () => {
    // sh starts a busy child (about 0.3 s of CPU), waits for it, then idles until told to stop.
    const parent = spawn('sh', ['-c', "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; echo done; read _"], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const before = processTreeCpuByProgram([parent.pid!]);
      await once(parent.stdout!, 'data'); // the child exited and was reaped
      const after = processTreeCpuByProgram([parent.pid!]);
      const used = cpuDifference(after, before);
      expect(Object.keys(used)).toEqual(['sh']);
      expect(used.sh).toBeGreaterThanOrEqual(0.1);
    } finally {
      parent.stdin!.end();
      await once(parent, 'exit');
    }
  });
});
