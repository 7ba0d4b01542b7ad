// Types for the consistent-hash package (it ships none): the part etcd-tree uses.
declare module 'consistent-hash' {
  interface Options {
    range?: number;
    weight?: number;
    distribution?: 'random' | 'uniform';
  }
  class ConsistentHash {
    constructor(options?: Options);
    add(node: string, weight?: number, points?: number[]): this;
    remove(node: string): this;
    get(resource: string): string | null;
    readonly nodeCount: number;
  }
  export default ConsistentHash;
}
