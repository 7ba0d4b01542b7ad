// The nodes of a tree directory: one folder per node, each with a node.yaml (its flags) and the
// topology.d/ that file points to. Everything is read and validated before anything starts.
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseFlags, type NodeConfig } from '../config/node-config.ts';
import { loadTopology, type Topology } from '../topology/load-topology.ts';

export interface TreeNode {
  /** The folder name: how the runner names the node in its output and log files. */
  name: string;
  configFile: string;
  config: NodeConfig;
  topology: Topology;
}

export function readTreeNodes(dir: string): TreeNode[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    throw new Error(`cannot read tree directory ${dir}: ${(err as Error).message}`);
  }
  const nodes: TreeNode[] = [];
  for (const name of entries) {
    const configFile = shown(join(dir, name, 'node.yaml'));
    if (!existsSync(configFile)) continue;
    const config = parseFlags(['--config-file', configFile]);
    let topology: Topology;
    try {
      // Relative to here, so the route table names files as the user sees them.
      topology = loadTopology(shown(config.topologyDir), config.dataDir);
    } catch (err) {
      throw new Error(`node ${name}: ${(err as Error).message}`);
    }
    nodes.push({ name, configFile, config, topology });
  }
  if (nodes.length === 0) throw new Error(`tree directory ${dir} has no node folders (<name>/node.yaml)`);
  if (!nodes.some((n) => n.config.treeRole === 'root')) throw new Error(`tree directory ${dir} has no node with tree-role: root`);
  return nodes;
}

/**
 * Children before parents, so a parent finds its children answering: branches first, roots
 * last. Among branches the folder order holds (in a deeper tree, name the lower branches so
 * they sort first).
 */
export function startOrder(nodes: TreeNode[]): TreeNode[] {
  return [...nodes.filter((n) => n.config.treeRole === 'branch'), ...nodes.filter((n) => n.config.treeRole === 'root')];
}

/** A path as messages should name it: relative to here when it is below here, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel;
}
