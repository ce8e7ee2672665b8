//! Receipts of this vault's chain, and the protection against being shown an older one.

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::ledger::checkpoint::{Certificate, Checkpoint};
use crate::ledger::merkle::{Hash, inclusion_proof};
use crate::ledger::receipt::{ProofHash, ProvenTx, RECEIPT_FORMAT, Receipt, tx_leaf};
use crate::ledger::snapshot;
use crate::ledger::{CertificateObject, chain};
use crate::store::Store;
use crate::vault::Vault;

/// The store metadata key of the largest checkpoint of network `genesis` this store's vaults
/// have verified (`tc-<genesis CID>`: one per network, so one network's never hides another's).
pub(crate) fn trusted_key(genesis: &Cid) -> String {
    format!("tc-{genesis}")
}
/// The store metadata key where fork evidence is kept.
pub(crate) const FORK_KEY: &str = "fork-evidence";
/// How many forks' evidence is kept.
const MAX_FORKS: usize = 16;

impl Vault {
    /// A receipt of the transaction `tx` (a grant, a revocation, a publication…): the
    /// transaction, its inclusion proof in the log of the certified head, the head's
    /// certificate, and what a verifier needs to know the authorities. Checkable offline with
    /// [`Receipt::verify`] by anyone who knows the network's genesis CID.
    pub async fn receipt(&self, tx: &Cid) -> Result<Receipt> {
        let cert_cid = self
            .state
            .head_cert()
            .ok_or_else(|| Error::InvalidInput("the chain has no certified block yet".into()))?;
        let cert = CertificateObject::decode(&self.store.get(&cert_cid).await?)
            .map_err(|e| Error::StoreCorrupt(format!("certificate {cert_cid}: {e}")))?;
        let cids = chain::log_cids(&self.store, &self.state).await?;
        let size = cert.certificate.checkpoint.size;
        if cids.len() as u64 != size {
            return Err(Error::StoreCorrupt(format!(
                "the chain holds {} transactions, its certificate {size}",
                cids.len()
            )));
        }
        let leaves: Vec<Hash> = cids.iter().map(tx_leaf).collect();
        let prove = |cid: &Cid| -> Result<(u64, Vec<ProofHash>)> {
            let index = cids.iter().position(|c| c == cid).ok_or_else(|| {
                Error::InvalidInput(format!("transaction {cid} is not in this chain"))
            })? as u64;
            let proof = inclusion_proof(&leaves, index, size)?;
            Ok((index, proof.into_iter().map(ProofHash).collect()))
        };
        let (index, proof) = prove(tx)?;
        let mut votes = Vec::new();
        for v in self.state.vote_txs() {
            let (index, proof) = prove(v)?;
            votes.push(ProvenTx {
                tx: self.store.get(v).await?,
                index,
                proof,
            });
        }
        let genesis = self.state.genesis_cid();
        Ok(Receipt {
            format: RECEIPT_FORMAT.into(),
            genesis,
            genesis_block: self.store.get(&genesis).await?,
            authority_votes: votes,
            transaction: ProvenTx {
                tx: self.store.get(tx).await?,
                index,
                proof,
            },
            certificate: cert.certificate.to_note(),
        })
    }

    /// The largest checkpoint verified by vaults over this store (or this vault), if any: what
    /// an offered head must not go back from.
    pub async fn trusted_checkpoint(&self) -> Result<Option<Checkpoint>> {
        Ok(newest(
            stored_trusted(&self.store, &self.state.genesis_cid()).await?,
            self.trusted.clone(),
        ))
    }

    /// Trusts `checkpoint` as if this vault had verified it: one the application kept from an
    /// earlier session ([`Vault::trusted_checkpoint`]), which matters most for vaults whose
    /// store cannot keep it (a gateway, a browser's memory). The current chain must contain it
    /// (`Rollback` if the chain is shorter, `Fork` if it holds another history at that size,
    /// with the evidence kept); the vault keeps its state either way, and from now on no head
    /// that goes back from it is adopted.
    pub async fn trust_checkpoint(&mut self, checkpoint: Checkpoint) -> Result<()> {
        let genesis = self.state.genesis_cid();
        if checkpoint.genesis != genesis {
            return Err(Error::WrongGenesis {
                expected: genesis,
                found: checkpoint.genesis,
            });
        }
        // The given checkpoint itself is checked (not only whichever is newest), then kept.
        let head = chain::fetch_head(&self.store, &self.state.head_pointer()).await?;
        let verdict = check_chain(
            &self.store,
            &self.store,
            Some(&checkpoint),
            &self.state,
            &head,
        )
        .await;
        self.trusted = newest(self.trusted.take(), Some(checkpoint));
        verdict?;
        self.remember_checkpoint().await
    }

    /// Refuses to go from the trusted checkpoint to `offered` (the certificate of a head about
    /// to be adopted) if that would go back (`Rollback`) or sideways (`Fork`, evidence kept).
    pub(crate) async fn check_fresh(&self, offered: &Certificate) -> Result<()> {
        let trusted = self.trusted_checkpoint().await?;
        check_fresh(&self.store, trusted.as_ref(), offered).await
    }

    /// [`Vault::check_fresh`], and against this vault's own head too.
    pub(crate) async fn check_offered(&self, offered: &Certificate) -> Result<()> {
        self.check_fresh(offered).await?;
        if self.state.height() > 0 {
            check_fresh(&self.store, Some(&self.state.checkpoint()), offered).await?;
        }
        Ok(())
    }

    /// After loading a chain from genesis (`head` is what its head pointer names): the chain
    /// must contain the trusted checkpoint, or it is older (`Rollback`) or another history
    /// (`Fork`).
    pub(crate) async fn check_head(&self, head: &chain::Head) -> Result<()> {
        let trusted = self.trusted_checkpoint().await?;
        check_chain(
            &self.store,
            &self.store,
            trusted.as_ref(),
            &self.state,
            head,
        )
        .await
    }

    /// The error for a head that does not descend from this vault's: `Fork` (evidence kept) if
    /// it is a valid chain of this network whose history differs from this vault's at its
    /// checkpoint, otherwise `not_descendant` as it was.
    pub(crate) async fn fork_or(&self, head: &Cid, not_descendant: Error) -> Error {
        if self.state.height() == 0 {
            return not_descendant;
        }
        let genesis = self.state.genesis_cid();
        let Ok((other, _)) = chain::load(&self.store, head, Some(&genesis)).await else {
            return not_descendant;
        };
        let Ok(named) = chain::fetch_head(&self.store, head).await else {
            return not_descendant;
        };
        let mine = self.state.checkpoint();
        match check_chain(&self.store, &self.store, Some(&mine), &other, &named).await {
            Err(e @ (Error::Fork { .. } | Error::Rollback { .. })) => e,
            _ => not_descendant,
        }
    }

    /// Records the state's checkpoint as trusted if it is newer than what was.
    pub(crate) async fn remember_checkpoint(&mut self) -> Result<()> {
        if !self.state.is_certified() || self.state.height() == 0 {
            return Ok(());
        }
        self.keep_snapshot().await;
        let cp = self.state.checkpoint();
        let known = self.trusted_checkpoint().await?;
        if known.as_ref().is_some_and(|k| k.size >= cp.size) {
            return Ok(());
        }
        self.trusted = Some(cp.clone());
        if !self.store.is_read_only() {
            let raw = serde_json::to_vec(&cp).map_err(|e| Error::Backend(e.to_string()))?;
            self.store
                .put_meta(&trusted_key(&cp.genesis), Some(&raw))
                .await?;
        }
        Ok(())
    }
}

impl Vault {
    /// Writes a snapshot of the state once the chain is [`snapshot::INTERVAL`] past the store's
    /// last one ([`snapshot::due`]; at once if that one could not be used). A cache: a failure
    /// to write it loses nothing and is not the caller's error (the next one is tried an
    /// interval later).
    async fn keep_snapshot(&mut self) {
        if !self.store.keeps_snapshots() || self.store.is_read_only() {
            return;
        }
        let due = match self.snapshot_at {
            None => true,
            Some((height, transactions)) => snapshot::due(&self.state, height, transactions),
        };
        if !due {
            return;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            // Encoding a large state takes tens of milliseconds and writing it more: both run
            // on their own thread, on a copy of the state (persistent: O(1)), so the operation
            // that made it due does not wait. One at a time: while one runs, the next is due
            // again at the next operation.
            if !self.snapshot_job.idle() {
                return;
            }
            let state = self.state.clone();
            let store = self.store.clone();
            self.snapshot_job.start(move || {
                if let Some(bytes) = state
                    .snapshot()
                    .filter(|b| b.len() <= crate::limits::MAX_SNAPSHOT)
                {
                    let _ = crate::platform::block_on(store.put_snapshot(&bytes));
                }
            });
            self.snapshot_at = Some((self.state.height(), self.state.log_size()));
        }
        #[cfg(target_arch = "wasm32")]
        if let Some(bytes) = self
            .state
            .snapshot()
            .filter(|b| b.len() <= crate::limits::MAX_SNAPSHOT)
        {
            let _ = self.store.put_snapshot(&bytes).await;
            self.snapshot_at = Some((self.state.height(), self.state.log_size()));
        }
    }

    /// Waits for a snapshot being written in the background, if any (tests and benchmarks that
    /// look at the store's snapshot; dropping the vault waits too).
    pub fn wait_for_snapshot(&mut self) {
        self.snapshot_job.wait();
    }
}

/// A snapshot written on its own thread ([`Vault`]'s `keep_snapshot`). Dropping it waits for
/// the thread, so a vault never outlives its store's lock in a stray thread: once a vault is
/// dropped, its store can be opened again at once.
#[derive(Default)]
pub(crate) struct SnapshotJob {
    #[cfg(not(target_arch = "wasm32"))]
    running: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotJob {
    /// No snapshot is being written (a finished one is reaped).
    #[cfg(not(target_arch = "wasm32"))]
    fn idle(&mut self) -> bool {
        match &self.running {
            Some(job) if !job.is_finished() => false,
            _ => {
                self.wait();
                true
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn start(&mut self, job: impl FnOnce() + Send + 'static) {
        // A thread that cannot be started (resource limits) leaves the job to run here.
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(job)));
        let theirs = slot.clone();
        let take = |s: &std::sync::Mutex<Option<_>>| s.lock().ok().and_then(|mut j| j.take());
        match std::thread::Builder::new()
            .name("medshare-snapshot".into())
            .spawn(move || {
                if let Some(job) = take(&theirs) {
                    job()
                }
            }) {
            Ok(handle) => self.running = Some(handle),
            Err(_) => {
                if let Some(job) = take(&slot) {
                    job()
                }
            }
        }
    }

    /// Waits for the running job, if any.
    fn wait(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(job) = self.running.take() {
            // A panic in the job (none is expected: the write's errors are ignored, it is a
            // cache) loses only the snapshot.
            let _ = job.join();
        }
    }
}

impl Drop for SnapshotJob {
    fn drop(&mut self) {
        self.wait();
    }
}

/// The larger of two checkpoints (by log size).
pub(crate) fn newest(a: Option<Checkpoint>, b: Option<Checkpoint>) -> Option<Checkpoint> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.size >= b.size { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The trusted checkpoint kept in `store`'s metadata.
pub(crate) async fn stored_trusted(store: &Store, genesis: &Cid) -> Result<Option<Checkpoint>> {
    match store.get_meta(&trusted_key(genesis)).await? {
        Some(raw) => serde_json::from_slice::<Checkpoint>(&raw)
            .map(Some)
            .map_err(|e| Error::StoreCorrupt(format!("the trusted checkpoint is damaged: {e}"))),
        None => Ok(None),
    }
}

/// `Rollback` if `offered` has a smaller log than `trusted`, `Fork` (evidence kept in the
/// store) if the same size but another log or block.
pub(crate) async fn check_fresh(
    store: &Store,
    trusted: Option<&Checkpoint>,
    offered: &Certificate,
) -> Result<()> {
    let Some(trusted) = trusted else {
        return Ok(());
    };
    let cp = &offered.checkpoint;
    if cp.genesis != trusted.genesis {
        return Ok(()); // another network: the genesis check says so
    }
    if cp.size < trusted.size {
        return Err(Error::Rollback {
            trusted: trusted.size,
            offered: cp.size,
        });
    }
    if cp.size == trusted.size && (cp.root != trusted.root || cp.block != trusted.block) {
        return Err(fork(store, trusted, offered).await);
    }
    Ok(())
}

/// Whether the verified chain `state` (its head pointer naming `head`; its objects in
/// `objects`) contains `trusted`: `Rollback` if it is shorter, `Fork` (evidence kept in `meta`)
/// if it holds another history at the trusted height.
pub(crate) async fn check_chain(
    objects: &Store,
    meta: &Store,
    trusted: Option<&Checkpoint>,
    state: &crate::ledger::State,
    head: &chain::Head,
) -> Result<()> {
    let Some(trusted) = trusted else {
        return Ok(());
    };
    if trusted.genesis != state.genesis_cid() {
        return Ok(()); // another network: the genesis check says so
    }
    let offered = match head {
        chain::Head::Genesis(_) if trusted.size > 0 => {
            return Err(Error::Rollback {
                trusted: trusted.size,
                offered: 0,
            });
        }
        chain::Head::Genesis(_) => return Ok(()),
        chain::Head::Certified(c) => &c.certificate,
    };
    check_fresh(meta, Some(trusted), offered).await?;
    if trusted.height == 0 {
        return Ok(());
    }
    // The chain's block at the trusted height, with the log after it.
    let found = if trusted.height > state.height() {
        None // a log at least as long in fewer blocks: another history
    } else if trusted.height == state.height() {
        let cp = state.checkpoint();
        Some((cp.block, cp.size, cp.root))
    } else {
        let b = chain::block_at(objects, state, trusted.height).await?;
        Some((b.cid, b.header.log_size, b.header.log_root))
    };
    match found {
        Some((block, size, root))
            if block == trusted.block && size == trusted.size && root == trusted.root =>
        {
            Ok(())
        }
        _ => Err(fork(meta, trusted, offered).await),
    }
}

async fn fork(store: &Store, trusted: &Checkpoint, offered: &Certificate) -> Error {
    let trusted_note = trusted.body();
    let offered_note = offered.to_note();
    let evidence = serde_json::json!({"trusted": trusted_note, "offered": offered_note});
    // Every fork seen, oldest first (the last MAX_FORKS): one never hides another.
    let mut all: Vec<serde_json::Value> = match store.get_meta(FORK_KEY).await {
        Ok(Some(raw)) => serde_json::from_slice(&raw).unwrap_or_default(),
        _ => Vec::new(),
    };
    if !all.contains(&evidence) {
        all.push(evidence);
    }
    let keep = all.len().saturating_sub(MAX_FORKS);
    let raw = serde_json::Value::Array(all.split_off(keep)).to_string();
    // Best effort: the refusal stands even if the evidence cannot be written.
    let _ = store.put_meta(FORK_KEY, Some(raw.as_bytes())).await;
    Error::Fork {
        size: trusted.size,
        trusted: trusted_note,
        offered: offered_note,
    }
}
