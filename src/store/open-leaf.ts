// Builds a leaf store for a topology backend: the dialect for its database kind, shared MVCC logic.
import type { RevisionAllocator } from '../revision/allocator.ts';
import type { LeafBackend } from '../topology/backend-spec.ts';
import type { Dialect } from './dialect.ts';
import { SqliteDialect } from './dialects/sqlite/sqlite-dialect.ts';
import { MvccStore } from './mvcc-store.ts';

export async function dialectFor(backend: LeafBackend): Promise<Dialect> {
  switch (backend.kind) {
    case 'sqlite':
      return new SqliteDialect({ path: backend.path });
    case 'postgres': {
      const { PostgresDialect } = await import('./dialects/postgres/postgres-dialect.ts');
      return new PostgresDialect({ url: backend.url, poolMax: backend.poolMax, statementTimeoutMs: backend.statementTimeoutMs });
    }
    case 'mysql': {
      const { MysqlDialect } = await import('./dialects/mysql/mysql-dialect.ts');
      return new MysqlDialect({ url: backend.url, poolMax: backend.poolMax, statementTimeoutMs: backend.statementTimeoutMs });
    }
  }
}

export async function openLeaf(backend: LeafBackend, allocator: RevisionAllocator): Promise<MvccStore> {
  const store = new MvccStore(backend.name, await dialectFor(backend), allocator, { tablePrefix: backend.table ? `${backend.table}_` : '' });
  await store.open();
  return store;
}
