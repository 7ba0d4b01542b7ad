#!/usr/bin/env node
// Entry point of the `etcd-tree` command: runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
