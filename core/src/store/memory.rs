//! An in-memory block store (tests, browsers, short-lived tools).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::store::{BlockStore, head_conflict};

/// Blocks in a hash map keyed by multihash, behind a mutex.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    blocks: HashMap<[u8; 34], Vec<u8>>,
    head: Option<Cid>,
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
        self.lock()?
            .blocks
            .entry(cid.multihash())
            .or_insert_with(|| data.to_vec());
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.blocks.get(&cid.multihash()).cloned())
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
}
