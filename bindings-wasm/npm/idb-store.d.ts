import type { BlockStore } from "./index.js";

/** A BlockStore in IndexedDB; `close()` releases the connection. */
export interface IndexedDbStore extends BlockStore {
  readonly name: string;
  close(): void;
}

/** Opens (creating if needed) the IndexedDB database `name` as a block store. */
export function openIndexedDbStore(name?: string, factory?: IDBFactory): Promise<IndexedDbStore>;

/** Deletes the IndexedDB database `name` (every block and the head). */
export function deleteIndexedDbStore(name?: string, factory?: IDBFactory): Promise<void>;
