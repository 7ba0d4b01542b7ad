// A YAML file read for validation: every value keeps its line, every error names file and line.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import { TopologyError } from './topology-error.ts';

export class YamlReader {
  private readonly lines = new LineCounter();
  readonly root: Node | null;

  constructor(readonly file: string, text: string) {
    const doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      // linePos is only filled in with prettyErrors; the offset is always there.
      throw new TopologyError(file, this.lines.linePos(e.pos[0]).line, `invalid YAML: ${e.message.split('\n')[0]}`);
    }
    this.root = (doc.contents as Node | null) ?? null;
  }

  line(node: Node | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : this.lines.linePos(offset).line;
  }

  where(node: Node | null | undefined): string {
    return `${this.file}:${this.line(node)}`;
  }

  fail(node: Node | null | undefined, problem: string): never {
    throw new TopologyError(this.file, this.line(node), problem);
  }

  map(node: Node | null | undefined, what: string): YAMLMap<Node, Node> {
    if (!isMap(node)) this.fail(node, `${what} must be a mapping`);
    return node as YAMLMap<Node, Node>;
  }

  seq(node: Node | null | undefined, what: string): Node[] {
    if (!isSeq(node)) this.fail(node, `${what} must be a list`);
    return (node as YAMLSeq<Node>).items;
  }

  string(node: Node | null | undefined, what: string): string {
    if (!isScalar(node) || typeof node.value !== 'string') this.fail(node, `${what} must be a string`);
    return node.value as string;
  }

  integer(node: Node | null | undefined, what: string, min = 0): number {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value) || node.value < min) {
      this.fail(node, `${what} must be an integer >= ${min}`);
    }
    return node.value as number;
  }

  /** Checks that a mapping holds only allowed keys; returns key -> value node. */
  fields(map: YAMLMap<Node, Node>, allowed: readonly string[], what: string): Map<string, Node> {
    const out = new Map<string, Node>();
    for (const pair of map.items) {
      const key = this.string(pair.key, `a key of ${what}`);
      if (!allowed.includes(key)) this.fail(pair.key, `unknown field "${key}" in ${what} (allowed: ${allowed.join(', ')})`);
      out.set(key, pair.value as Node);
    }
    return out;
  }
}
