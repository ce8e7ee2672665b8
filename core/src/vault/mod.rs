//! The vault: what an application holds to use medshare. It opens over a [`Store`] (where blocks
//! live) and a [`Sequencer`] (where signed transactions go): the embedded [`LocalSequencer`] of
//! a single clinic, a CometBFT network, or none for a read-only replica. It keeps the verified
//! chain [`State`] and offers the operations:
//!
//! * writing ([`Vault::register`], [`Vault::publish`], [`Vault::grant`], [`Vault::revoke`],
//!   [`Vault::rotate_key`]): the author's transactions are built and signed here with the
//!   author's own key and submitted; the vault never needs an authority's key;
//! * reading ([`Vault::open_record`], [`Vault::metadata`], [`Vault::grant_note`]);
//! * the chain ([`Vault::sync`], [`Vault::verify`], [`Vault::audit`], …), CAR files
//!   ([`Vault::export_car`], [`Vault::import_car`]) and housekeeping ([`Vault::gc`]).

mod car;
mod emergency;
mod gc;
mod proof;
mod read;
mod write;

use std::sync::Arc;
use std::time::Duration;

pub use car::{DamagedRecord, ExportReport, ImportReport};
pub use emergency::{
    DEFAULT_EMERGENCY_WINDOW, EmergencyStatus, ShareCheck, default_threshold,
    emergency_justification, release_share_tx,
};
pub use gc::{ContentReport, GcReport};
pub use write::{GrantOptions, PublishOptions, RevokeReport, RotateReport};

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, Role};
use crate::ledger::chain::{self, VerifyReport};
use crate::ledger::snapshot::{self, Opened};
use crate::ledger::{AccessGrant, AuditEvent, Policy, RecordInfo, State};
use crate::record::RecordId;
use crate::sequencer::{Clock, LocalSequencer, ReadOnly, Sequencer, system_clock};
use crate::store::Store;
use crate::unixfs::Profile;

/// When a grant ends: at a unix time, or a duration from now by the vault's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// At this unix time (seconds).
    At(u64),
    /// This long after now (the vault's clock).
    After(Duration),
}

impl Expiry {
    /// The unix time this expiry names, by `now`.
    pub fn resolve(self, now: u64) -> Result<u64> {
        match self {
            Expiry::At(t) => Ok(t),
            Expiry::After(d) => now.checked_add(d.as_secs()).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "an expiry {} s from now is out of range",
                    d.as_secs()
                ))
            }),
        }
    }
}

/// A medshare vault over a block store and a sequencer.
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) sequencer: Arc<dyn Sequencer>,
    pub(crate) writable: bool,
    pub(crate) state: State,
    pub(crate) profile: Profile,
    pub(crate) clock: Clock,
    /// The largest checkpoint this vault verified (also kept in the store when it can).
    pub(crate) trusted: Option<crate::ledger::Checkpoint>,
    /// How the chain was opened (from a snapshot or from genesis).
    pub(crate) opened: Opened,
    /// Height and log size of the snapshot the store holds, as far as this vault knows
    /// (`None`: one that could not be used, to be replaced at once).
    pub(crate) snapshot_at: Option<(u64, u64)>,
    /// The snapshot being encoded and written on its own thread, if any (native targets).
    pub(crate) snapshot_job: proof::SnapshotJob,
    /// Where record content is sealed, opened and hashed, if not by this crate's own code.
    pub(crate) offload: Option<Arc<dyn crate::offload::Offload>>,
    /// Whether this vault made its sequencer (a `LocalSequencer` holding the authority keys
    /// it was given), so that its offload is the sequencer's too.
    pub(crate) own_sequencer: bool,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("network", &self.state.network())
            .field("height", &self.state.height())
            .field("head", &self.state.head_pointer())
            .finish()
    }
}

/// Key size of the throwaway authority a memory vault makes when given none: 2048 bits, the
/// fastest size medshare accepts (it lives as long as the vault).
pub const MEMORY_AUTHORITY_BITS: usize = 2048;

impl Vault {
    fn assemble(
        store: Store,
        sequencer: Arc<dyn Sequencer>,
        writable: bool,
        state: State,
    ) -> Vault {
        Vault {
            store,
            sequencer,
            writable,
            state,
            profile: Profile::default(),
            clock: system_clock(),
            trusted: None,
            opened: Opened::Genesis { rejected: None },
            snapshot_at: Some((0, 0)),
            snapshot_job: proof::SnapshotJob::default(),
            offload: None,
            own_sequencer: false,
        }
    }

    /// Starts a new network in the empty `store`, with `authority` as its only authority and
    /// this process as its sequencer (the embedded mode: a demo, tests, a single clinic).
    pub async fn create(
        store: Store,
        network: &str,
        authority: Identity,
        policy: Policy,
    ) -> Result<Vault> {
        let (seq, genesis) =
            LocalSequencer::create(store.clone(), network, authority, policy).await?;
        let g = chain::fetch_genesis(&store, &genesis).await?;
        let state = State::from_genesis(&g)?;
        let mut vault = Vault::assemble(store, Arc::new(seq), true, state);
        vault.own_sequencer = true;
        Ok(vault)
    }

    /// Starts a new network in the empty `store` with several `authorities` whose keys are all
    /// in this process (the first orders the blocks, each signs every certificate): tests and
    /// demos of what needs several authorities, such as break-glass access. On a real network
    /// each authority keeps its key on its own node (`medshare testnet`).
    pub async fn create_with_authorities(
        store: Store,
        network: &str,
        authorities: Vec<Identity>,
        policy: Policy,
    ) -> Result<Vault> {
        let (seq, genesis) =
            LocalSequencer::create_with(store.clone(), network, authorities, policy).await?;
        let g = chain::fetch_genesis(&store, &genesis).await?;
        let state = State::from_genesis(&g)?;
        let mut vault = Vault::assemble(store, Arc::new(seq), true, state);
        vault.own_sequencer = true;
        Ok(vault)
    }

    /// Opens the chain in `store`, verifying it: from the snapshot the store keeps, if it has a
    /// usable one, then every block after it; else from genesis ([`Vault::opened`] says which;
    /// `ledger::snapshot` lists what a snapshot must pass). Transactions go to `sequencer`
    /// (whose head is the chain's); without one the vault reads and verifies only, from the
    /// store's head. Over a store that only reads (a gateway) the vault reads only too, at the
    /// head the sequencer names. With `genesis`, the chain must be that network's.
    pub async fn open(
        store: Store,
        sequencer: Option<Arc<dyn Sequencer>>,
        genesis: Option<&Cid>,
    ) -> Result<Vault> {
        // A store that only reads (a gateway) makes a reader, whose head the sequencer names.
        let (sequencer, writable): (Arc<dyn Sequencer>, bool) = match sequencer {
            Some(s) => (s, !store.is_read_only()),
            None => (Arc::new(ReadOnly(store.clone())), false),
        };
        let head = sequencer.head().await?.ok_or(Error::NoChain)?;
        let (state, opened) = snapshot::load_chain(&store, &head, genesis).await?;
        let mut vault = Vault::assemble(store, sequencer, writable, state);
        vault.opened = opened;
        vault.snapshot_at = match opened {
            Opened::Snapshot {
                height,
                transactions,
                ..
            } => Some((height, transactions)),
            Opened::Genesis { rejected: None } => Some((0, 0)),
            Opened::Genesis { rejected: Some(_) } => None,
        };
        // Never an older history than one this store's vaults already verified.
        let named = chain::fetch_head(&vault.store, &head).await?;
        vault.check_head(&named).await?;
        // A state this vault verified (and found no rollback in) spares a sequencer that keeps
        // its own a second verification of the chain.
        vault.sequencer.adopt(&vault.state);
        vault.remember_checkpoint().await?;
        if writable {
            vault.finish_pending_deletions().await?;
        }
        Ok(vault)
    }

    /// Opens the chain in `store` with this process as its sequencer, certifying with
    /// `authority` (which must be the network's only authority).
    pub async fn open_local(
        store: Store,
        authority: Identity,
        genesis: Option<&Cid>,
    ) -> Result<Vault> {
        let seq = LocalSequencer::new(store.clone(), authority)?;
        let mut vault = Vault::open(store, Some(Arc::new(seq)), genesis).await?;
        vault.own_sequencer = true;
        Ok(vault)
    }

    /// Opens the chain in `store`, or, if the store is empty, starts one certified by
    /// `authority` (default policy). With an authority the vault can write; without one it
    /// reads only, and an empty store is [`Error::NoChain`] (a chain whose authority key
    /// nobody keeps could never be appended to).
    pub async fn open_or_create(
        store: Store,
        network: &str,
        authority: Option<Identity>,
    ) -> Result<Vault> {
        if store.head().await?.is_some() {
            return match authority {
                Some(a) => Vault::open_local(store, a, None).await,
                None => Vault::open(store, None, None).await,
            };
        }
        match authority {
            Some(a) => Vault::create(store, network, a, Policy::default()).await,
            None => Err(Error::NoChain),
        }
    }

    /// A vault in memory with its own sequencer: certified by `authority`, or by a fresh
    /// throwaway authority of [`MEMORY_AUTHORITY_BITS`] bits.
    pub async fn memory(network: &str, authority: Option<Identity>) -> Result<Vault> {
        let authority = match authority {
            Some(a) => a,
            None => Identity::generate(Role::Authority, "memory-authority", MEMORY_AUTHORITY_BITS)?,
        };
        Vault::create(Store::memory(), network, authority, Policy::default()).await
    }

    /// Replaces the clock (unix seconds) used for block times, grant expiry and access checks.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Chooses the UnixFS profile for records published from now on.
    pub fn set_profile(&mut self, profile: Profile) {
        self.profile = profile;
    }

    /// Publishes and opens record content (AES-256-GCM of the envelope's chunks, SHA-256 of its
    /// blocks), signs transactions and unwraps data keys through `offload` from now on, or
    /// through this crate's own code (`None`, the default); a sequencer this vault made
    /// ([`Vault::create`], [`Vault::open_local`]) signs its certificates through it too. The
    /// bytes are the same either way; see [`crate::offload`] for what is checked.
    pub fn set_offload(&mut self, offload: Option<Arc<dyn crate::offload::Offload>>) {
        if self.own_sequencer {
            self.sequencer.set_offload(offload.clone());
        }
        self.offload = offload;
    }

    /// How this vault opened its chain: from the store's snapshot (and how many blocks it
    /// verified after it) or from genesis.
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The verified chain state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether this vault can submit transactions.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The network's genesis CID.
    pub fn genesis(&self) -> Cid {
        self.state.genesis_cid()
    }

    /// The head pointer this vault has verified up to.
    pub fn head(&self) -> Cid {
        self.state.head_pointer()
    }

    /// Height of the latest verified block.
    pub fn height(&self) -> u64 {
        self.state.height()
    }

    pub(crate) fn now(&self) -> u64 {
        (self.clock)()
    }

    /// A record's summary.
    pub fn record(&self, record: &RecordId) -> Result<RecordInfo> {
        self.state
            .record(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))
    }

    /// Records whose latest version `doctor` holds a grant on (expired ones included, marked
    /// by their `expires`).
    pub fn records_granted_to(&self, doctor: &IdentityId) -> Vec<RecordInfo> {
        self.state.records_granted_to(doctor)
    }

    /// Records `patient` owns.
    pub fn records_owned_by(&self, patient: &IdentityId) -> Vec<RecordInfo> {
        self.state.records_owned_by(patient)
    }

    /// What `who` can open: a patient's own records, a doctor's granted ones.
    pub fn records_for(&self, who: &IdentityId) -> Result<Vec<RecordInfo>> {
        match self.state.identity(who) {
            Some((Role::Patient, _)) => Ok(self.records_owned_by(who)),
            Some((Role::Doctor, _)) => Ok(self.records_granted_to(who)),
            Some((Role::Authority, _)) => Ok(Vec::new()),
            None => Err(Error::UnknownIdentity(who.to_string())),
        }
    }

    /// Current grants on `record`.
    pub fn access_list(&self, record: &RecordId) -> Result<Vec<AccessGrant>> {
        self.state.access_list(record)
    }

    /// The audit trail of `record`.
    pub fn audit(&self, record: &RecordId) -> Result<Vec<AuditEvent>> {
        self.state.audit(record)
    }

    /// Whether a grant is expired by this vault's clock.
    pub fn is_expired(&self, grant: &AccessGrant) -> bool {
        grant.expired_at(self.now())
    }

    /// Re-verifies the whole chain in the store from genesis to the head (every rule, every
    /// signature, every CID, every certificate) and refreshes this vault's state from it.
    pub async fn verify(&mut self) -> Result<VerifyReport> {
        let head = self.sequencer.head().await?.ok_or(Error::NoChain)?;
        let genesis = self.state.genesis_cid();
        let (state, report) = chain::load(&self.store, &head, Some(&genesis)).await?;
        let before = std::mem::replace(&mut self.state, state);
        let named = chain::fetch_head(&self.store, &head).await?;
        if let Err(e) = self.check_head(&named).await {
            self.state = before;
            return Err(e);
        }
        self.remember_checkpoint().await?;
        Ok(report)
    }

    /// Applies the blocks appended since this vault last looked (incremental: only the new
    /// blocks and certificates are checked, and the newest may not be ahead of this vault's
    /// clock beyond the policy's skew). Returns how many blocks were applied.
    pub async fn sync(&mut self) -> Result<u64> {
        let head = self.sequencer.head().await?.ok_or(Error::NoChain)?;
        self.sync_to(&head).await
    }

    /// Applies the blocks up to the head pointer `head` (which must descend from this vault's).
    pub async fn sync_to(&mut self, head: &Cid) -> Result<u64> {
        if *head == self.state.head_pointer() {
            return Ok(0);
        }
        // An older or different history than the one verified is refused before anything else.
        if let chain::Head::Certified(c) = chain::fetch_head(&self.store, head).await? {
            self.check_offered(&c.certificate).await?;
        }
        let (next, n) = match chain::extend(&self.store, &self.state, head, self.now()).await {
            Ok(done) => done,
            Err(
                e @ Error::InvalidChain {
                    rule: crate::rule::Rule::Parent,
                    ..
                },
            ) => {
                // Not a continuation of this vault's chain: a valid chain of this network is
                // then another history, reported (and kept as evidence) as a fork.
                return Err(self.fork_or(head, e).await);
            }
            Err(e) => return Err(e),
        };
        self.state = next;
        self.remember_checkpoint().await?;
        Ok(n)
    }
}
