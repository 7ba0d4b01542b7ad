/** A topology problem, always naming the file and line it comes from. */
export class TopologyError extends Error {
  constructor(readonly file: string, readonly line: number, problem: string) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'TopologyError';
  }
}
