//! Chain state, derived by replaying blocks, and what can be asked of it.
//!
//! The maps are persistent (structurally shared): cloning a state to try a block or a
//! submission on it costs `O(1)`, not `O(state)`, so checking the next transaction of a chain
//! of 10^6 costs what it costs on a chain of 10^3. The rules that change it are in
//! `ledger::apply`, one function per transaction kind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{IdentityId, PublicKey, Role};
use crate::ledger::codec::{
    AuthorityChangeKind, GenesisBlock, Policy, ReviewOutcome, WrappedShare,
};
use crate::ledger::merkle::{Frontier, Hash};
use crate::ledger::smt::StateMap;
use crate::record::{Purpose, RecordId};

/// A registered participant.
#[derive(Clone, Debug)]
pub(crate) struct IdentityState {
    pub(crate) role: Role,
    pub(crate) key: PublicKey,
    pub(crate) seq: u64,
    pub(crate) licence: Option<String>,
    /// For a doctor: the authority that endorsed the licence.
    pub(crate) endorser: Option<IdentityId>,
}

/// An authority in effect.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Authority {
    /// Its id.
    pub id: IdentityId,
    /// Its RSA key.
    #[serde(skip)]
    pub key: PublicKey,
    /// Its CometBFT validator key, if it runs a validator.
    #[serde(with = "opt_hex32")]
    pub validator: Option<[u8; 32]>,
}

mod opt_hex32 {
    pub fn serialize<S: serde::Serializer>(b: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_some(&data_encoding::HEXLOWER.encode(b)),
            None => s.serialize_none(),
        }
    }
}

/// A change of the CometBFT validator set that a block caused (power 0 removes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorUpdate {
    /// The validator's ed25519 public key.
    pub validator: [u8; 32],
    /// Its voting power (0: removed).
    pub power: u64,
}

/// One grant of a record version to a doctor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessGrant {
    /// Grantee.
    pub doctor: IdentityId,
    /// Version granted.
    pub version: u32,
    /// Expiry, unix seconds (the grant authorises nothing from then on).
    pub expires: Option<u64>,
    /// Stated purpose (HL7 PurposeOfUse code).
    pub purpose: Purpose,
    /// The encrypted free-text note, if any (readable by the owner and the doctor).
    #[serde(with = "crate::serde_util::b64_opt")]
    pub note: Option<Vec<u8>>,
    /// Height of the granting block.
    pub granted_at: u64,
    /// Where the DEK wrapped to the doctor is on the chain.
    pub key: KeyRef,
}

/// Where a doctor's wrapped data key is on the chain: the transaction that carried it (her
/// `Grant`, or the `Rewrap` that last replaced it) and its place among that transaction's keys
/// (0 for a `Grant`). The state keeps this, not the key's 256–512 bytes: a reader fetches the
/// transaction (a hash-checked block of the chain) when she opens the record, and a state of
/// 10^5 grants is ~23 MB smaller in memory and in its snapshot (`docs/FORMAT.md` §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyRef {
    /// The transaction's CID.
    pub tx: Cid,
    /// The key's index among the transaction's keys.
    pub index: u32,
}

impl AccessGrant {
    /// Whether the grant has expired at unix time `now` (by the caller's clock).
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct VersionState {
    pub(crate) content: Cid,
    pub(crate) size: u64,
    pub(crate) commitment: [u8; 32],
    pub(crate) owner_key: Vec<u8>,
    /// Behind `Arc`s for the same reason as a record's versions (an imbl node holds 64).
    pub(crate) grants: imbl::OrdMap<IdentityId, Arc<AccessGrant>>,
    /// The version's key split for break-glass access, if the owner opted in.
    pub(crate) emergency: Option<Arc<EmergencySplit>>,
    /// Whether an authority released a share of this version's key (then it takes no new
    /// grant: the owner re-keys first, rule `Rekey`).
    pub(crate) exposed: bool,
}

/// A version's data key split among the authorities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencySplit {
    /// Shares needed.
    pub threshold: u8,
    /// Share `i + 1` is `shares[i]`.
    pub shares: Vec<WrappedShare>,
}

#[derive(Clone, Debug)]
pub(crate) struct RecordState {
    pub(crate) owner: IdentityId,
    /// Each behind an `Arc`: imbl's chunks hold 64 elements whatever the length, so small
    /// per-record lists hold pointers, not 64 copies' worth of space.
    pub(crate) versions: imbl::Vector<Arc<VersionState>>,
    /// Doctors whose access was revoked (and not granted again since), with the height.
    pub(crate) revoked: imbl::OrdMap<IdentityId, u64>,
    pub(crate) audit: AuditTrail,
}

/// A record's audit trail, oldest first: the events of the snapshot the state was loaded from,
/// left in the snapshot's bytes and decoded only when the trail is read (opening a chain of
/// 10^5 transactions otherwise builds 10^5 events that most commands never look at), then the
/// events applied since.
#[derive(Clone, Default)]
pub(crate) struct AuditTrail {
    pub(crate) stored: Option<StoredEvents>,
    pub(crate) events: imbl::Vector<Arc<AuditEvent>>,
}

/// Decodes the events a trail left in the bytes of a snapshot (`ledger::snapshot` makes it),
/// oldest first, or says what in them does not decode.
pub(crate) type StoredEvents =
    Arc<dyn Fn() -> std::result::Result<Vec<AuditEvent>, String> + Send + Sync>;

impl std::fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTrail")
            .field("stored", &self.stored.is_some())
            .field("events", &self.events)
            .finish()
    }
}

impl AuditTrail {
    /// A trail of one event.
    pub(crate) fn of(event: AuditEvent) -> AuditTrail {
        AuditTrail {
            stored: None,
            events: imbl::vector![Arc::new(event)],
        }
    }

    /// Appends an event.
    pub(crate) fn push(&mut self, event: AuditEvent) {
        self.events.push_back(Arc::new(event));
    }

    /// Every event, oldest first: the snapshot's decoded (an error says what in them does not
    /// decode), then the later ones.
    pub(crate) fn events(&self) -> std::result::Result<Vec<AuditEvent>, String> {
        let mut out = match &self.stored {
            Some(decode) => decode()?,
            None => Vec::with_capacity(self.events.len()),
        };
        out.extend(self.events.iter().map(|e| AuditEvent::clone(e)));
        Ok(out)
    }
}

/// What happened to a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum AuditKind {
    /// A version was published.
    Published {
        /// Version number.
        version: u32,
        /// Its content root.
        content: Cid,
    },
    /// A doctor was granted a version.
    Granted {
        /// Grantee.
        doctor: IdentityId,
        /// Version.
        version: u32,
        /// Expiry.
        expires: Option<u64>,
        /// Purpose code.
        purpose: Purpose,
    },
    /// A doctor's access was revoked.
    Revoked {
        /// The doctor.
        doctor: IdentityId,
    },
    /// The owner opted a version into break-glass access (its key split among authorities).
    #[serde(rename = "emergency-enabled")]
    EmergencyEnabled {
        /// Version.
        version: u32,
        /// Shares needed.
        threshold: u8,
        /// Shares made (one per authority).
        shares: u8,
    },
    /// A doctor broke the glass: an emergency override started (DICOM 110127).
    Emergency {
        /// The requesting doctor.
        doctor: IdentityId,
        /// Version.
        version: u32,
        /// Until when shares may be released (unix seconds).
        expires: Option<u64>,
        /// Purpose code (ETREAT).
        purpose: Purpose,
    },
    /// An authority released its share to an emergency request.
    #[serde(rename = "share-released")]
    ShareReleased {
        /// The releasing authority is the event's author; the request.
        request: Cid,
        /// The requesting doctor.
        doctor: IdentityId,
        /// The share's index.
        index: u8,
    },
    /// An authority reviewed an emergency access.
    Reviewed {
        /// The request.
        request: Cid,
        /// The doctor who made it.
        doctor: IdentityId,
        /// What the review found.
        outcome: ReviewOutcome,
    },
}

impl AuditKind {
    /// `published`, `granted` or `revoked`: the stable name the bindings and the CLI show.
    pub fn name(&self) -> &'static str {
        match self {
            AuditKind::Published { .. } => "published",
            AuditKind::Granted { .. } => "granted",
            AuditKind::Revoked { .. } => "revoked",
            AuditKind::EmergencyEnabled { .. } => "emergency-enabled",
            AuditKind::Emergency { .. } => "emergency",
            AuditKind::ShareReleased { .. } => "share-released",
            AuditKind::Reviewed { .. } => "reviewed",
        }
    }

    /// Whether the event is part of a break-glass access (request, release, review).
    pub fn is_emergency(&self) -> bool {
        matches!(
            self,
            AuditKind::Emergency { .. }
                | AuditKind::ShareReleased { .. }
                | AuditKind::Reviewed { .. }
        )
    }

    /// The record version concerned (published, granted, emergency).
    pub fn version(&self) -> Option<u32> {
        match self {
            AuditKind::Published { version, .. }
            | AuditKind::Granted { version, .. }
            | AuditKind::EmergencyEnabled { version, .. }
            | AuditKind::Emergency { version, .. } => Some(*version),
            _ => None,
        }
    }

    /// The doctor concerned (granted, revoked, and the requester of an emergency access).
    pub fn doctor(&self) -> Option<IdentityId> {
        match self {
            AuditKind::Granted { doctor, .. }
            | AuditKind::Revoked { doctor }
            | AuditKind::Emergency { doctor, .. }
            | AuditKind::ShareReleased { doctor, .. }
            | AuditKind::Reviewed { doctor, .. } => Some(*doctor),
            _ => None,
        }
    }

    /// The grant's expiry (granted), or the end of an emergency request's window.
    pub fn expires(&self) -> Option<u64> {
        match self {
            AuditKind::Granted { expires, .. } | AuditKind::Emergency { expires, .. } => *expires,
            _ => None,
        }
    }

    /// The purpose (granted, emergency).
    pub fn purpose(&self) -> Option<Purpose> {
        match self {
            AuditKind::Granted { purpose, .. } | AuditKind::Emergency { purpose, .. } => {
                Some(*purpose)
            }
            _ => None,
        }
    }

    /// The emergency request concerned (share released, reviewed).
    pub fn request(&self) -> Option<Cid> {
        match self {
            AuditKind::ShareReleased { request, .. } | AuditKind::Reviewed { request, .. } => {
                Some(*request)
            }
            _ => None,
        }
    }

    /// The content root (published).
    pub fn content(&self) -> Option<Cid> {
        match self {
            AuditKind::Published { content, .. } => Some(*content),
            _ => None,
        }
    }
}

/// One entry of a record's audit trail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// Block height.
    pub height: u64,
    /// Block CID.
    pub block: Cid,
    /// Block time (unix seconds).
    pub time: u64,
    /// Transaction CID.
    pub tx: Cid,
    /// Author of the transaction.
    pub author: IdentityId,
    /// What happened.
    #[serde(flatten)]
    pub kind: AuditKind,
}

/// A summary of a record as the chain knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordInfo {
    /// Record id.
    pub record: RecordId,
    /// Owner.
    pub owner: IdentityId,
    /// Latest version.
    pub version: u32,
    /// Content root of the latest version.
    pub content: Cid,
    /// Envelope size of the latest version.
    pub size: u64,
    /// The latest version's key commitment.
    #[serde(with = "crate::serde_util::hex32")]
    pub commitment: [u8; 32],
    /// For the records granted to a doctor: that doctor's grant on the latest version.
    pub grant: Option<AccessGrant>,
}

/// What a reader needs to open a record version.
#[derive(Clone, Debug)]
pub struct Access {
    /// Version.
    pub version: u32,
    /// Content root.
    pub content: Cid,
    /// Envelope size.
    pub size: u64,
    /// The key commitment the envelope must carry.
    pub commitment: [u8; 32],
    /// The DEK wrapped to the reader, or where it is on the chain.
    pub key: WrappedKey,
}

/// A reader's wrapped data key: the owner's is kept in the state; a doctor's is in the
/// transaction that granted (or re-wrapped) it ([`KeyRef`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WrappedKey {
    /// The wrapped key's bytes.
    Bytes(Vec<u8>),
    /// The transaction that carries it.
    At(KeyRef),
    /// None: the data key comes from elsewhere (an emergency access's released shares).
    None,
}

/// The replayed state of a chain.
#[derive(Clone, Debug)]
pub struct State {
    pub(crate) genesis: Arc<GenesisBlock>,
    pub(crate) authorities: imbl::OrdMap<IdentityId, Authority>,
    pub(crate) votes: imbl::OrdMap<AuthorityChangeKind, BTreeSet<IdentityId>>,
    /// Every authority vote in the log, in order (what receipts prove the authorities with).
    pub(crate) vote_txs: imbl::Vector<Cid>,
    pub(crate) height: u64,
    pub(crate) head: Cid,
    pub(crate) head_cert: Option<Cid>,
    pub(crate) time: u64,
    pub(crate) log: Frontier,
    pub(crate) identities: imbl::HashMap<IdentityId, IdentityState>,
    /// Which account each registered key belongs to (keys are never reused).
    pub(crate) key_owner: imbl::HashMap<IdentityId, IdentityId>,
    pub(crate) records: imbl::HashMap<RecordId, RecordState>,
    /// Records each doctor holds a grant on (latest or older versions).
    pub(crate) granted: imbl::HashMap<IdentityId, imbl::OrdSet<RecordId>>,
    /// Records each patient owns.
    pub(crate) owned: imbl::HashMap<IdentityId, imbl::OrdSet<RecordId>>,
    /// Within the block being applied: records revoked that must get their next version.
    pub(crate) pending_rekey: BTreeMap<RecordId, usize>,
    /// Within the block being applied: validator-set changes it causes.
    pub(crate) validator_updates: Vec<ValidatorUpdate>,
    /// The state map light clients are answered from (`ledger::light`).
    pub(crate) state_map: StateMap,
    /// Each doctor's state-map entry: how many records she holds a grant on and the root of
    /// her own tree of them (present when at least one).
    pub(crate) doctor_roots: imbl::HashMap<IdentityId, (u64, crate::ledger::merkle::Hash)>,
    /// The doctors' trees built so far (a state loaded from a snapshot builds one when a block
    /// first changes it; one replayed from genesis has them all).
    pub(crate) doctor_maps: imbl::HashMap<IdentityId, StateMap>,
    /// Every emergency access, by its request's transaction CID.
    pub(crate) emergencies: imbl::OrdMap<Cid, Emergency>,
}

/// A share an authority released to an emergency request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    /// The releasing authority.
    pub authority: IdentityId,
    /// The share's index (1-based).
    pub index: u8,
    /// Height of the block holding the release.
    pub height: u64,
    /// The `ShareRelease` transaction.
    pub tx: Cid,
    /// The share, wrapped to the requesting doctor.
    #[serde(with = "crate::serde_util::b64")]
    pub wrapped: Vec<u8>,
}

/// An authority's review of an emergency access.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReviewInfo {
    /// The reviewing authority.
    pub authority: IdentityId,
    /// What it found.
    pub outcome: ReviewOutcome,
    /// Height of the block holding the review.
    pub height: u64,
    /// The `Review` transaction.
    pub tx: Cid,
}

/// A break-glass emergency access, as the chain knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Emergency {
    /// The `EmergencyAccess` transaction.
    pub request: Cid,
    /// Record.
    pub record: RecordId,
    /// Version whose key the shares open.
    pub version: u32,
    /// Its owner (the patient).
    pub owner: IdentityId,
    /// The requesting doctor.
    pub doctor: IdentityId,
    /// Purpose code (ETREAT).
    pub purpose: Purpose,
    /// The encrypted justification (the owner, the doctor and the share holders read it).
    #[serde(with = "crate::serde_util::b64")]
    pub justification: Vec<u8>,
    /// Height of the requesting block.
    pub height: u64,
    /// Its time (unix seconds).
    pub time: u64,
    /// Shares may be released until this time (unix seconds, block time).
    pub expires: u64,
    /// Shares needed.
    pub threshold: u8,
    /// The authorities holding shares, in index order.
    pub holders: Vec<IdentityId>,
    /// Shares released so far.
    pub releases: Vec<Release>,
    /// The review, once an authority made it.
    pub review: Option<ReviewInfo>,
}

impl Emergency {
    /// Whether shares may still be released at block time `now`.
    pub fn open_at(&self, now: u64) -> bool {
        now < self.expires
    }
}

impl State {
    /// The state right after genesis (validating the genesis block).
    pub fn from_genesis(genesis: &GenesisBlock) -> Result<State> {
        let at = |detail: &str| Error::InvalidChain {
            height: Some(0),
            tx: None,
            rule: crate::rule::Rule::Genesis,
            detail: detail.to_owned(),
        };
        let g = &genesis.genesis;
        if g.authorities.is_empty() {
            return Err(at("genesis names no authority"));
        }
        if g.policy.min_key_bits < crate::identity::MIN_KEY_BITS as u64
            || g.policy.max_txs_per_block == 0
            || g.policy.max_object_bytes < 4096
        {
            return Err(at("policy weaker than medshare's floor"));
        }
        if g.network.is_empty() || g.network.len() > 128 {
            return Err(at("network name must be 1 to 128 bytes"));
        }
        let mut authorities = imbl::OrdMap::new();
        let mut identities = imbl::HashMap::new();
        let mut key_owner = imbl::HashMap::new();
        for a in &g.authorities {
            if (a.key.bits() as u64) < g.policy.min_key_bits {
                return Err(at("authority key weaker than the policy"));
            }
            let id = a.key.id();
            if authorities.contains_key(&id) {
                return Err(at("duplicate authority"));
            }
            if a.validator.is_some()
                && g.authorities
                    .iter()
                    .filter(|b| b.validator == a.validator)
                    .count()
                    > 1
            {
                return Err(at("two authorities share a validator key"));
            }
            authorities.insert(
                id,
                Authority {
                    id,
                    key: a.key.clone(),
                    validator: a.validator,
                },
            );
            key_owner.insert(id, id);
            identities.insert(
                id,
                IdentityState {
                    role: Role::Authority,
                    key: a.key.clone(),
                    seq: 0,
                    licence: None,
                    endorser: None,
                },
            );
        }
        Ok(State {
            genesis: Arc::new(genesis.clone()),
            authorities,
            votes: imbl::OrdMap::new(),
            vote_txs: imbl::Vector::new(),
            height: 0,
            head: genesis.cid,
            head_cert: None,
            time: g.time,
            log: Frontier::new(),
            identities,
            key_owner,
            records: imbl::HashMap::new(),
            granted: imbl::HashMap::new(),
            owned: imbl::HashMap::new(),
            pending_rekey: BTreeMap::new(),
            validator_updates: Vec::new(),
            state_map: StateMap::new(),
            doctor_roots: imbl::HashMap::new(),
            doctor_maps: imbl::HashMap::new(),
            emergencies: imbl::OrdMap::new(),
        }
        .with_authorities_entry())
    }

    // ---- the chain ---------------------------------------------------------------------------

    /// Current height (0: only genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The latest block (the genesis block at height 0).
    pub fn head(&self) -> Cid {
        self.head
    }

    /// The certificate of the latest block, once it has one (never for genesis).
    pub fn head_cert(&self) -> Option<Cid> {
        self.head_cert
    }

    /// Whether the latest block is final (certified, or genesis).
    pub fn is_certified(&self) -> bool {
        self.height == 0 || self.head_cert.is_some()
    }

    /// What a store's head pointer names for this state: the head's certificate, or the
    /// genesis block before the first block.
    pub fn head_pointer(&self) -> Cid {
        self.head_cert.unwrap_or(self.genesis.cid)
    }

    /// Time of the latest block.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The genesis block's CID: the network's identity.
    pub fn genesis_cid(&self) -> Cid {
        self.genesis.cid
    }

    /// The genesis block.
    pub fn genesis(&self) -> &GenesisBlock {
        &self.genesis
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        &self.genesis.genesis.network
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.genesis.genesis.policy
    }

    /// Transactions in the log so far.
    pub fn log_size(&self) -> u64 {
        self.log.size()
    }

    /// RFC 6962 root of the log so far.
    pub fn log_root(&self) -> Hash {
        self.log.root()
    }

    /// The authorities in effect.
    pub fn authorities(&self) -> Vec<Authority> {
        self.authorities.values().cloned().collect()
    }

    /// The authorities in effect, as the certificate check wants them.
    pub fn authority_keys(&self) -> BTreeMap<IdentityId, PublicKey> {
        self.authorities
            .iter()
            .map(|(id, a)| (*id, a.key.clone()))
            .collect()
    }

    /// Every authority vote in the log so far, in log order.
    pub fn vote_txs(&self) -> impl Iterator<Item = &Cid> {
        self.vote_txs.iter()
    }

    /// Validator-set changes caused by the last block applied.
    pub fn validator_updates(&self) -> &[ValidatorUpdate] {
        &self.validator_updates
    }

    /// Fails with `TimestampFuture` if `block_time` is later than `now` plus the policy's
    /// allowed skew, unless it is no later than this state's own time (block times never go
    /// back, so a block after one already accepted may keep its time). Checked by whoever
    /// *accepts* a block (a replica syncing or importing it), against their own clock — never
    /// when replaying blocks already accepted, so a stored chain always stays readable.
    pub fn check_not_future(&self, height: u64, block_time: u64, now: u64) -> Result<()> {
        if block_time > now.saturating_add(self.policy().max_clock_skew_secs)
            && block_time > self.time
        {
            return Err(Error::InvalidChain {
                height: Some(height),
                tx: None,
                rule: crate::rule::Rule::TimestampFuture,
                detail: format!(
                    "block time {block_time} is more than {} s ahead of this clock ({now})",
                    self.policy().max_clock_skew_secs
                ),
            });
        }
        Ok(())
    }

    /// The next block for `txs` on this state: the header (parent, its certificate, time, the
    /// transactions, the log after them). Deterministic: the same state, time and transactions
    /// give the same block and CID on every node. Not applied (see [`State::apply_block`]).
    pub fn next_block(&self, txs: &[crate::ledger::SignedTx], time: u64) -> crate::ledger::Block {
        let mut log = self.log.clone();
        for t in txs {
            log.push(crate::ledger::merkle::leaf_hash(&t.cid.to_bytes()));
        }
        crate::ledger::Block::new(crate::ledger::BlockHeader {
            genesis: self.genesis.cid,
            height: self.height + 1,
            parent: self.head,
            parent_cert: self.head_cert,
            time: time.max(self.time),
            txs: txs.iter().map(|t| t.cid).collect(),
            log_size: log.size(),
            log_root: log.root(),
        })
    }

    /// The checkpoint this state's head block is certified with.
    pub fn checkpoint(&self) -> crate::ledger::Checkpoint {
        crate::ledger::Checkpoint {
            genesis: self.genesis.cid,
            size: self.log.size(),
            root: self.log.root(),
            height: self.height,
            block: self.head,
            state: self.state_map.root(),
        }
    }

    // ---- identities --------------------------------------------------------------------------

    /// Role and current key of a registered identity.
    pub fn identity(&self, id: &IdentityId) -> Option<(Role, &PublicKey)> {
        self.identities.get(id).map(|i| (i.role, &i.key))
    }

    /// The account a key belongs to, if it was ever registered.
    pub fn account_of_key(&self, key: &IdentityId) -> Option<IdentityId> {
        self.key_owner.get(key).copied()
    }

    /// The authority that endorsed a doctor's licence, if `id` is a doctor.
    pub fn endorser(&self, id: &IdentityId) -> Option<IdentityId> {
        self.identities.get(id).and_then(|i| i.endorser)
    }

    /// The doctor's licence reference, if `id` is a doctor.
    pub fn licence(&self, id: &IdentityId) -> Option<&str> {
        self.identities.get(id).and_then(|i| i.licence.as_deref())
    }

    /// Last sequence number used by `id` (0 if none).
    pub fn last_seq(&self, id: &IdentityId) -> u64 {
        self.identities.get(id).map_or(0, |i| i.seq)
    }

    /// Every registered identity with its role, sorted by id.
    pub fn identities(&self) -> Vec<(IdentityId, Role)> {
        let mut v: Vec<_> = self
            .identities
            .iter()
            .map(|(id, s)| (*id, s.role))
            .collect();
        v.sort();
        v
    }

    // ---- records -----------------------------------------------------------------------------

    fn info(
        &self,
        id: &RecordId,
        r: &RecordState,
        grant: Option<AccessGrant>,
    ) -> Option<RecordInfo> {
        let last = r.versions.last()?;
        Some(RecordInfo {
            record: *id,
            owner: r.owner,
            version: r.versions.len() as u32,
            content: last.content,
            size: last.size,
            commitment: last.commitment,
            grant,
        })
    }

    /// A record's summary.
    pub fn record(&self, record: &RecordId) -> Option<RecordInfo> {
        self.records
            .get(record)
            .and_then(|r| self.info(record, r, None))
    }

    /// Every record, sorted by id.
    pub fn all_records(&self) -> Vec<RecordInfo> {
        let mut v: Vec<_> = self
            .records
            .iter()
            .filter_map(|(id, r)| self.info(id, r, None))
            .collect();
        v.sort_by_key(|i| i.record);
        v
    }

    /// Records owned by `patient`, sorted by id.
    pub fn records_owned_by(&self, patient: &IdentityId) -> Vec<RecordInfo> {
        self.owned
            .get(patient)
            .map(|set| {
                set.iter()
                    .filter_map(|id| self.records.get(id).and_then(|r| self.info(id, r, None)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records whose latest version `doctor` holds a grant on (expired grants included, marked
    /// by their `expires`), sorted by id.
    pub fn records_granted_to(&self, doctor: &IdentityId) -> Vec<RecordInfo> {
        self.granted
            .get(doctor)
            .map(|set| {
                set.iter()
                    .filter_map(|id| {
                        let r = self.records.get(id)?;
                        let g = AccessGrant::clone(r.versions.last()?.grants.get(doctor)?);
                        self.info(id, r, Some(g))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Grants on the latest version of `record`.
    pub fn access_list(&self, record: &RecordId) -> Result<Vec<AccessGrant>> {
        let r = self
            .records
            .get(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        Ok(r.versions
            .last()
            .map(|v| v.grants.values().map(|g| AccessGrant::clone(g)).collect())
            .unwrap_or_default())
    }

    /// The audit trail of `record`, oldest first.
    pub fn audit(&self, record: &RecordId) -> Result<Vec<AuditEvent>> {
        let r = self
            .records
            .get(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        r.audit.events().map_err(|e| {
            Error::StoreCorrupt(format!(
                "snapshot: the audit trail of record {record} does not decode ({e}): remove the store's SNAPSHOT file and the chain is verified from genesis"
            ))
        })
    }

    /// Content roots of every version of `record` (oldest first).
    pub fn contents(&self, record: &RecordId) -> Vec<Cid> {
        self.records
            .get(record)
            .map(|r| r.versions.iter().map(|v| v.content).collect())
            .unwrap_or_default()
    }

    /// Content roots of every retired version of every record (not the latest).
    pub fn retired_contents(&self) -> Vec<Cid> {
        let mut out = Vec::new();
        for r in self.records.values() {
            let n = r.versions.len();
            out.extend(
                r.versions
                    .iter()
                    .take(n.saturating_sub(1))
                    .map(|v| v.content),
            );
        }
        out.sort();
        out
    }

    /// Whether `reader` may open the latest version of `record` at unix time `now` (the
    /// reader's clock), and with what: the owner, or a doctor with an unexpired, unrevoked
    /// grant on that version.
    pub fn access(&self, record: &RecordId, reader: &IdentityId, now: u64) -> Result<Access> {
        let r = self
            .records
            .get(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        let v = r
            .versions
            .last()
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        let version = r.versions.len() as u32;
        let make = |key: WrappedKey| Access {
            version,
            content: v.content,
            size: v.size,
            commitment: v.commitment,
            key,
        };
        if r.owner == *reader {
            return Ok(make(WrappedKey::Bytes(v.owner_key.clone())));
        }
        if let Some(g) = v.grants.get(reader) {
            if g.expired_at(now) {
                return Err(Error::AccessExpired(record.to_string()));
            }
            return Ok(make(WrappedKey::At(g.key)));
        }
        if r.revoked.contains_key(reader) {
            return Err(Error::AccessRevoked(record.to_string()));
        }
        Err(Error::AccessDenied(record.to_string()))
    }

    // ---- emergency access --------------------------------------------------------------------

    /// The break-glass split of `record`'s latest version, if its owner opted in.
    pub fn emergency_split(&self, record: &RecordId) -> Option<EmergencySplit> {
        let v = self.records.get(record)?.versions.last()?;
        v.emergency.as_deref().cloned()
    }

    /// Whether a share of the key of `record`'s latest version was released to an emergency
    /// request (then it takes no new grant before a re-key).
    pub fn exposed(&self, record: &RecordId) -> bool {
        self.records
            .get(record)
            .and_then(|r| r.versions.last())
            .is_some_and(|v| v.exposed)
    }

    /// Whether the break-glass split of `record`'s latest version is not over exactly the
    /// authorities in effect (one was added or removed since): its owner should re-key it.
    pub fn split_outdated(&self, record: &RecordId) -> bool {
        self.emergency_split(record).is_some_and(|s| {
            s.shares.len() != self.authorities.len()
                || s.shares
                    .iter()
                    .any(|x| !self.authorities.contains_key(&x.authority))
        })
    }

    /// An emergency access by its request's transaction CID.
    pub fn emergency(&self, request: &Cid) -> Option<&Emergency> {
        self.emergencies.get(request)
    }

    /// Every emergency access, oldest first; with `unreviewed`, only those no authority has
    /// reviewed yet.
    pub fn emergencies(&self, unreviewed: bool) -> Vec<Emergency> {
        let mut v: Vec<Emergency> = self
            .emergencies
            .values()
            .filter(|e| !unreviewed || e.review.is_none())
            .cloned()
            .collect();
        v.sort_by_key(|e| (e.height, e.request));
        v
    }

    /// The open requests (window not over at `now`, the version still the latest) for which
    /// `authority` holds a share it has not released: what its node releases.
    pub fn releases_due(&self, authority: &IdentityId, now: u64) -> Vec<(Cid, u8)> {
        let mut due = Vec::new();
        for e in self.emergencies.values() {
            let Some(pos) = e.holders.iter().position(|h| h == authority) else {
                continue;
            };
            let index = (pos + 1) as u8;
            let latest = self.records.get(&e.record).map(|r| r.versions.len() as u32);
            if e.open_at(now)
                && latest == Some(e.version)
                && !e.releases.iter().any(|r| r.index == index)
            {
                due.push((e.request, index));
            }
        }
        due
    }
}
