// `--config-file FILE`: node settings as YAML, keyed by the flag names without `--` (as etcd's
// config file is). Values become flag strings, so the file and the command line share one parser.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isScalar, isSeq, type Node } from 'yaml';
import { YamlReader } from '../topology/yaml-reader.ts';

/** What the reader needs to know about a flag to accept its value. */
export interface SettingShape {
  bool?: boolean;
  list?: boolean;
}

/** One setting from the file, as the flag value it stands for. */
export interface FileSetting {
  name: string;
  value: string;
  /** file:line, for errors about the value. */
  at: string;
}

/** Settings naming a file: relative paths mean "next to the config file", not "next to the shell". */
const PATH_SETTINGS = new Set(['data-dir', 'topology-dir', 'cert-file', 'key-file', 'trusted-ca-file']);

/** Settings that make no sense inside the file itself. */
const COMMAND_LINE_ONLY = new Set(['config-file']);

export function readConfigFile(file: string, shapes: Readonly<Record<string, SettingShape>>): FileSetting[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const r: YamlReader = new YamlReader(file, text);
  if (r.root === null) return [];
  const settings: FileSetting[] = [];
  for (const pair of r.map(r.root, 'a config file').items) {
    const name = r.string(pair.key, 'a setting name');
    const shape = shapes[name];
    if (!shape || COMMAND_LINE_ONLY.has(name)) {
      r.fail(pair.key, shape ? `"${name}" can only be given on the command line` : `unknown setting "${name}" (the names are the flags of etcd-tree --help, without --)`);
    }
    const valueNode = pair.value as Node | null;
    if (valueNode === null) r.fail(pair.key, `"${name}" needs a value`);
    let value = valueOf(r, name, shape, valueNode);
    if (PATH_SETTINGS.has(name) && !isAbsolute(value)) value = resolve(dirname(file), value);
    settings.push({ name, value, at: r.where(valueNode) });
  }
  return settings;
}

/** The flag string for one YAML value: scalars as written, sequences joined with commas. */
function valueOf(r: YamlReader, name: string, shape: SettingShape, node: Node): string {
  if (isSeq(node)) {
    if (!shape.list) r.fail(node, `"${name}" takes one value, not a list`);
    return node.items.map((item) => r.string(item as Node, `an item of "${name}"`)).join(',');
  }
  if (!isScalar(node)) r.fail(node, `"${name}" takes a single value, not a mapping`);
  if (node.value === null) r.fail(node, `"${name}" needs a value`);
  const v = node.value;
  if (shape.bool) {
    if (typeof v !== 'boolean') r.fail(node, `"${name}" takes true or false`);
    return String(v);
  }
  if (typeof v === 'boolean') r.fail(node, `"${name}" takes a value, not true or false`);
  if (typeof v !== 'string' && typeof v !== 'number') r.fail(node, `"${name}" needs a string or a number`);
  return String(v);
}
