//! An in-memory block store (tests, browsers, short-lived tools).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::store::{BlockStore, head_conflict};

/// Blocks in a hash map keyed by multihash, behind a mutex. Each block is shared (`Arc`), so a
/// read copies it out after the lock is released and parallel reads copy in parallel.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    blocks: HashMap<[u8; 34], Arc<[u8]>>,
    head: Option<Cid>,
    meta: HashMap<String, Vec<u8>>,
}

impl MemoryStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Backend("memory store mutex poisoned".into()))
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.lock().map(|s| s.blocks.len()).unwrap_or(0)
    }

    /// Whether the store holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlockStore for MemoryStore {
    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        // `Store` checked `data` against `cid`: replacing also repairs a damaged copy.
        self.lock()?.blocks.insert(cid.multihash(), data.into());
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let data = self.lock()?.blocks.get(&cid.multihash()).cloned();
        Ok(data.map(|d| d.to_vec()))
    }

    async fn get_into(&self, cid: &Cid, buf: &mut Vec<u8>) -> Result<bool> {
        let Some(data) = self.lock()?.blocks.get(&cid.multihash()).cloned() else {
            return Ok(false);
        };
        buf.clear();
        buf.extend_from_slice(&data);
        Ok(true)
    }

    fn completes_when_polled(&self) -> bool {
        true
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.lock()?.blocks.contains_key(&cid.multihash()))
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        self.lock()?.blocks.remove(&cid.multihash());
        Ok(())
    }

    async fn head(&self) -> Result<Option<Cid>> {
        Ok(self.lock()?.head)
    }

    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
        let mut state = self.lock()?;
        if state.head.as_ref() != expected {
            return Err(head_conflict(expected, state.head.as_ref()));
        }
        state.head = new.copied();
        Ok(())
    }

    async fn list(&self) -> Result<Option<Vec<Cid>>> {
        Ok(Some(
            self.lock()?
                .blocks
                .keys()
                .filter_map(|mh| Cid::from_bytes(mh).ok())
                .map(|c| c.to_v1())
                .collect(),
        ))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.meta.get(key).cloned())
    }

    async fn put_meta(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        let mut state = self.lock()?;
        match value {
            Some(v) => state.meta.insert(key.to_owned(), v.to_vec()),
            None => state.meta.remove(key),
        };
        Ok(())
    }
}

impl MemoryStore {
    /// Replaces a block's bytes without any check (tests simulating a damaged store).
    #[doc(hidden)]
    pub fn corrupt(&self, cid: &Cid, data: &[u8]) {
        if let Ok(mut s) = self.lock() {
            s.blocks.insert(cid.multihash(), data.into());
        }
    }
}
