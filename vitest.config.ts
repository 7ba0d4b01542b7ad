import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files run for minutes (real kube-apiservers over several targets). A clean
 * checkout has no durations cached, so vitest would order files by size and start them late,
 * leaving one of them running alone at the end; started first, the other worker fills in around them.
 */
class EndToEndFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => (file.moduleId.includes('/test/e2e/') ? 0 : 1);
    return sorted.sort((a, b) => rank(a) - rank(b)); // stable: the rest keeps vitest's order
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: EndToEndFirst },
  },
});
