// An IndexedDB-backed block store for browsers: pass it to Vault.withStore / Vault.openOrCreate.
// Blocks live in the object store "blocks" keyed by CID text; the chain head in "meta".
// Each put resolves once its transaction has committed; compareAndSwapHead reads and writes
// the head in one readwrite transaction, so two tabs cannot both move it from the same value.

const BLOCKS = "blocks";
const META = "meta";
const HEAD = "head";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** Opens (creating if needed) the database `name` and returns a BlockStore over it. */
export async function openIndexedDbStore(name = "medshare", factory = globalThis.indexedDB) {
  if (!factory) throw new Error("IndexedDB is not available in this environment");
  const open = factory.open(name, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains(BLOCKS)) db.createObjectStore(BLOCKS);
    if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
  };
  const db = await request(open);

  const read = (store, key) => request(db.transaction(store, "readonly").objectStore(store).get(key));
  const write = async (store, fn) => {
    const tx = db.transaction(store, "readwrite", { durability: "strict" });
    const done = committed(tx);
    fn(tx.objectStore(store));
    await done;
  };

  return {
    name,
    async get(cid) {
      const v = await read(BLOCKS, cid);
      return v === undefined ? null : new Uint8Array(v);
    },
    async put(cid, data) {
      await write(BLOCKS, (s) => s.put(data, cid));
    },
    async has(cid) {
      const key = await request(db.transaction(BLOCKS, "readonly").objectStore(BLOCKS).getKey(cid));
      return key !== undefined;
    },
    async delete(cid) {
      await write(BLOCKS, (s) => s.delete(cid));
    },
    async head() {
      return (await read(META, HEAD)) ?? null;
    },
    async compareAndSwapHead(expected, next) {
      const tx = db.transaction(META, "readwrite", { durability: "strict" });
      const done = committed(tx);
      const meta = tx.objectStore(META);
      const current = (await request(meta.get(HEAD))) ?? null;
      const swap = current === expected;
      if (swap) {
        if (next === null) meta.delete(HEAD);
        else meta.put(next, HEAD);
      }
      await done;
      return swap;
    },
    /** Closes the database connection. */
    close() {
      db.close();
    },
  };
}

/** Deletes the database `name` (every block and the head). */
export async function deleteIndexedDbStore(name = "medshare", factory = globalThis.indexedDB) {
  await request(factory.deleteDatabase(name));
}
