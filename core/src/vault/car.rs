//! CAR files: exporting a chain with its current records, and importing one — verified before
//! anything of it is stored.
//!
//! An import reads the whole CAR into a staging area first (ledger objects in memory, record
//! blocks in an unnamed temporary file), verifies the chain it holds from there, and only then
//! copies into the store the chain's objects and the blocks of the *current* record versions.
//! A refused CAR leaves nothing behind, and an accepted one cannot bring back the ciphertext of a
//! version that was revoked.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use crate::car::{CarReader, CarWriter};
use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::ledger::{State, chain};
use crate::platform::{MaybeSend, batch};
use crate::record::RecordId;
use crate::sequencer::ReadOnly;
use crate::store::{Block, BlockStore, Store};
use crate::vault::Vault;

/// What [`Vault::import_car`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportReport {
    /// Blocks in the CAR.
    pub read: u64,
    /// Blocks stored (the chain's new objects and the current versions' missing blocks).
    pub stored: u64,
    /// Ledger blocks newly applied (the whole chain, genesis included, for an empty store).
    pub applied: u64,
    /// The CAR's root: the head pointer now.
    pub head: Cid,
}

/// A record whose content could not be exported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DamagedRecord {
    /// The record.
    pub record: RecordId,
    /// Why.
    pub error: String,
}

/// What [`Vault::export_car`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportReport {
    /// Blocks written.
    pub blocks: u64,
    /// The root (the head pointer).
    pub head: Cid,
    /// Records left out (or written only in part) because their content is missing or damaged
    /// in the store; everything else was exported.
    pub damaged: Vec<DamagedRecord>,
}

/// Largest total of ledger objects an import holds in memory.
const MAX_STAGED_LEDGER: u64 = 512 << 20;

/// Where an import's record blocks wait until the chain is verified.
enum Spool {
    #[cfg(not(target_arch = "wasm32"))]
    File(std::fs::File, u64),
    #[cfg(target_arch = "wasm32")]
    Memory(Vec<u8>),
}

impl Spool {
    fn new() -> Result<Spool> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            Ok(Spool::File(tempfile::tempfile()?, 0))
        }
        #[cfg(target_arch = "wasm32")]
        {
            Ok(Spool::Memory(Vec::new()))
        }
    }

    fn append(&mut self, data: &[u8]) -> Result<u64> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Spool::File(f, len) => {
                let at = *len;
                f.write_all(data)?;
                *len += data.len() as u64;
                Ok(at)
            }
            #[cfg(target_arch = "wasm32")]
            Spool::Memory(v) => {
                let at = v.len() as u64;
                v.extend_from_slice(data);
                Ok(at)
            }
        }
    }

    fn read(&mut self, at: u64, len: usize) -> Result<Vec<u8>> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Spool::File(f, _) => {
                use std::io::{Seek, SeekFrom};
                f.seek(SeekFrom::Start(at))?;
                let mut buf = vec![0u8; len];
                f.read_exact(&mut buf)?;
                f.seek(SeekFrom::End(0))?;
                Ok(buf)
            }
            #[cfg(target_arch = "wasm32")]
            Spool::Memory(v) => Ok(v[at as usize..at as usize + len].to_vec()),
        }
    }
}

/// The store the import verifies from: the staged CAR, then the real store.
struct Staged {
    ledger: HashMap<[u8; 34], Vec<u8>>,
    spool: Mutex<Spool>,
    index: HashMap<[u8; 34], (u64, usize)>,
    base: Store,
}

fn read_only() -> Error {
    Error::Backend("the import's staging area is read-only".into())
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlockStore for Staged {
    async fn put(&self, _cid: &Cid, _data: &[u8]) -> Result<()> {
        Err(read_only())
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let mh = cid.multihash();
        if let Some(b) = self.ledger.get(&mh) {
            return Ok(Some(b.clone()));
        }
        if let Some(&(at, len)) = self.index.get(&mh) {
            let mut spool = self
                .spool
                .lock()
                .map_err(|_| Error::Backend("spool lock poisoned".into()))?;
            return spool.read(at, len).map(Some);
        }
        self.base.get_opt(cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let mh = cid.multihash();
        Ok(self.ledger.contains_key(&mh)
            || self.index.contains_key(&mh)
            || self.base.has(cid).await?)
    }

    async fn delete(&self, _cid: &Cid) -> Result<()> {
        Err(read_only())
    }

    async fn head(&self) -> Result<Option<Cid>> {
        Ok(None)
    }

    async fn compare_and_swap_head(&self, _e: Option<&Cid>, _n: Option<&Cid>) -> Result<()> {
        Err(read_only())
    }
}

impl Vault {
    /// Writes the chain (genesis, blocks, transactions, certificates) and the current version
    /// of every record to a CARv1 stream rooted at the head pointer. A record whose content is
    /// missing or damaged in the store does not stop the export: it is reported (and the CAR
    /// holds everything else).
    pub async fn export_car<W: Write + MaybeSend>(&self, out: W) -> Result<ExportReport> {
        let head = self.state.head_pointer();
        let mut car = CarWriter::new(out, &[head])?;
        let mut n = 0u64;
        for cid in self.chain_cids().await? {
            car.write_block(&cid, &self.store.get(&cid).await?)?;
            n += 1;
        }
        let mut damaged = Vec::new();
        for info in self.state.all_records() {
            let result: Result<u64> = async {
                let mut k = 0;
                for cid in self.dag_cids(info.content).await? {
                    car.write_block(&cid, &self.store.get(&cid).await?)?;
                    k += 1;
                }
                Ok(k)
            }
            .await;
            match result {
                Ok(k) => n += k,
                Err(e @ Error::Io(_)) => return Err(e),
                Err(e) => damaged.push(DamagedRecord {
                    record: info.record,
                    error: e.to_string(),
                }),
            }
        }
        car.finish()?;
        Ok(ExportReport {
            blocks: n,
            head,
            damaged,
        })
    }

    /// Imports a CARv1 stream rooted at one head pointer (as written by [`Vault::export_car`]
    /// or `ipfs dag export`) into `store`, verifying it before anything is stored. A store that
    /// holds a chain must be extended by the CAR's; an empty store adopts the CAR's chain from
    /// genesis, which must be `genesis` when given ([`Error::WrongGenesis`]). The vault
    /// returned reads and verifies (no sequencer).
    pub async fn import_car<R: Read + MaybeSend>(
        store: Store,
        car: R,
        genesis: Option<&Cid>,
        now: u64,
    ) -> Result<(Vault, ImportReport)> {
        let mut reader = CarReader::new(car)?;
        let [root] = reader.roots() else {
            return Err(Error::MalformedCar(format!(
                "the CAR has {} roots; medshare imports a CAR rooted at one head",
                reader.roots().len()
            )));
        };
        let root = *root;
        let mut ledger = HashMap::new();
        let mut ledger_bytes = 0u64;
        let mut spool = Spool::new()?;
        let mut index = HashMap::new();
        let mut read = 0u64;
        // The CAR reader checks every block against its CID.
        while let Some(block) = reader.next_block()? {
            read += 1;
            if block.cid.codec() == crate::cid::DAG_CBOR {
                ledger_bytes += block.data.len() as u64;
                if ledger_bytes > MAX_STAGED_LEDGER {
                    return Err(Error::TooLarge {
                        what: "ledger objects in one CAR",
                        size: ledger_bytes,
                        limit: MAX_STAGED_LEDGER,
                    });
                }
                ledger.insert(block.cid.multihash(), block.data);
            } else {
                let at = spool.append(&block.data)?;
                index.insert(block.cid.multihash(), (at, block.data.len()));
            }
        }
        let staged = Store::new(Staged {
            ledger,
            spool: Mutex::new(spool),
            index,
            base: store.clone(),
        });
        let existing = store.head().await?;
        // Never an older or different history than the store already verified.
        if let chain::Head::Certified(c) = chain::fetch_head(&staged, &root).await? {
            let trusted =
                crate::vault::proof::stored_trusted(&store, &c.certificate.checkpoint.genesis)
                    .await?;
            crate::vault::proof::check_fresh(&store, trusted.as_ref(), &c.certificate).await?;
        }
        let (state, applied): (State, u64) = match existing {
            Some(head) => {
                let (base, _) = chain::load(&store, &head, genesis).await?;
                if let chain::Head::Certified(c) = chain::fetch_head(&staged, &root).await?
                    && base.height() > 0
                {
                    let mine = base.checkpoint();
                    crate::vault::proof::check_fresh(&store, Some(&mine), &c.certificate).await?;
                }
                match chain::extend(&staged, &base, &root, now).await {
                    Ok(done) => done,
                    Err(
                        e @ Error::InvalidChain {
                            rule: crate::rule::Rule::Parent,
                            ..
                        },
                    ) => {
                        // Not a continuation: a valid chain of this network is another history.
                        if base.height() > 0
                            && let Ok((other, _)) = chain::load(&staged, &root, genesis).await
                        {
                            let named = chain::fetch_head(&staged, &root).await?;
                            let mine = base.checkpoint();
                            crate::vault::proof::check_chain(
                                &staged,
                                &store,
                                Some(&mine),
                                &other,
                                &named,
                            )
                            .await?;
                        }
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                let (state, _) = chain::load(&staged, &root, genesis).await?;
                // A store without a head may still remember a checkpoint: the chain must
                // contain it.
                let trusted =
                    crate::vault::proof::stored_trusted(&store, &state.genesis_cid()).await?;
                let named = chain::fetch_head(&staged, &root).await?;
                crate::vault::proof::check_chain(&staged, &store, trusted.as_ref(), &state, &named)
                    .await?;
                let newest = state.height();
                // Nothing was accepted here before: the newest block is checked against the
                // network's start.
                State::from_genesis(state.genesis())?.check_not_future(
                    newest,
                    state.time(),
                    now,
                )?;
                (state, newest + 1)
            }
        };
        // Verified: store the chain's objects, then the current versions' blocks.
        let view = Vault::assemble(
            staged.clone(),
            Arc::new(ReadOnly(staged.clone())),
            false,
            state.clone(),
        );
        let mut stored = 0u64;
        let mut batch_blocks = Vec::with_capacity(batch::CAR);
        let mut wanted = view.chain_cids().await?;
        for info in state.all_records() {
            wanted.extend(view.dag_cids(info.content).await?);
        }
        for cid in wanted {
            if store.has(&cid).await? {
                continue;
            }
            let data = staged.get(&cid).await?;
            batch_blocks.push(Block { cid, data });
            stored += 1;
            if batch_blocks.len() == batch::CAR {
                store.put_many_hashed(&batch_blocks).await?;
                batch_blocks.clear();
            }
        }
        store.put_many_hashed(&batch_blocks).await?;
        for info in state.all_records() {
            store.pin(&info.content).await?;
        }
        store
            .compare_and_swap_head(existing.as_ref(), Some(&state.head_pointer()))
            .await?;
        let mut vault = Vault::assemble(store.clone(), Arc::new(ReadOnly(store)), false, state);
        vault.remember_checkpoint().await?;
        Ok((
            vault,
            ImportReport {
                read,
                stored,
                applied,
                head: root,
            },
        ))
    }
}
