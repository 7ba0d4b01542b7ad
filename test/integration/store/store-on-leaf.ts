// A store on a test leaf, as the store suites open it: one per test, on a leaf of its own.
import { MemoryAllocator } from '../../../src/revision/memory-allocator.ts';
import { MvccStore } from '../../../src/store/mvcc-store.ts';
import type { StoreBackend, TestLeaf } from './store-backends.ts';

export interface StoreOnLeaf {
  leaf: TestLeaf;
  allocator: MemoryAllocator;
  store: MvccStore;
}

/** A fresh leaf of `backend` and an open store on it; compaction in batches of 7, so tests cross batch edges. */
export async function openStoreOnLeaf(backend: StoreBackend): Promise<StoreOnLeaf> {
  const leaf = await backend.create();
  const allocator = new MemoryAllocator();
  const store = new MvccStore('leaf', leaf.dialect, allocator, { compactionBatch: 7, tablePrefix: leaf.tablePrefix });
  await store.open();
  return { leaf, allocator, store };
}

export async function closeStoreOnLeaf({ store, leaf }: StoreOnLeaf): Promise<void> {
  await store.close();
  await leaf.cleanup();
}

/**
 * `allocator` as a node that is not the leaf's only writer sees it (as with Redis revisions):
 * its store keeps no sole-writer caches and reads every answer from the database. It starts at
 * `allocator`'s revision; once it allocates, it counts on in a counter of its own.
 */
export function notSoleWriter(allocator: MemoryAllocator): MemoryAllocator {
  return Object.assign(Object.create(allocator), { soleWriter: false });
}

/** Another store on the same leaf that reads everything from the database (see notSoleWriter). */
export function logOnlyStore(leaf: TestLeaf, allocator: MemoryAllocator): MvccStore {
  return new MvccStore('leaf', leaf.dialect, notSoleWriter(allocator), { tablePrefix: leaf.tablePrefix });
}
