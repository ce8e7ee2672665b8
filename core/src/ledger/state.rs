//! Chain state, derived by replaying blocks, and every validation rule.

use std::collections::{BTreeMap, HashMap};

use crate::cid::Cid;
use crate::envelope::RecordId;
use crate::error::{Error, Result};
use crate::identity::{IdentityId, PublicKey, Role};
use crate::ledger::codec::{Block, Genesis, Policy, SignedTx, TxBody};
use crate::ledger::{Rule, endorsement_message, merkle_root};

/// A signature check set aside while blocks are applied, so that a batch of them can be
/// verified on every core at once ([`verify_checks`]).
pub(crate) struct SigCheck {
    key: PublicKey,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

/// How [`State`] checks signatures while applying transactions.
pub(crate) enum Sigs<'a> {
    /// Verify each signature where the rules meet it (exact first error).
    Now,
    /// Record each check and assume it passes; the caller verifies the batch afterwards and
    /// discards the state if any fails.
    Defer(&'a mut Vec<SigCheck>),
    /// Skip them (checking an unsigned transaction before signing it).
    Skip,
}

impl Sigs<'_> {
    fn verify(&mut self, key: &PublicKey, msg: &[u8], sig: &[u8]) -> std::result::Result<(), ()> {
        match self {
            Sigs::Now => key.verify(msg, sig).map_err(drop),
            Sigs::Defer(checks) => {
                checks.push(SigCheck {
                    key: key.clone(),
                    msg: msg.to_vec(),
                    sig: sig.to_vec(),
                });
                Ok(())
            }
            Sigs::Skip => Ok(()),
        }
    }
}

/// Verifies deferred checks, on every core (rayon) where there are threads. True if all pass.
pub(crate) fn verify_checks(checks: &[SigCheck]) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        checks
            .par_iter()
            .with_min_len(8)
            .all(|c| c.key.verify(&c.msg, &c.sig).is_ok())
    }
    #[cfg(target_arch = "wasm32")]
    {
        checks.iter().all(|c| c.key.verify(&c.msg, &c.sig).is_ok())
    }
}

/// A failed rule with its explanation (placed into an error by the caller).
type RuleResult<T = ()> = std::result::Result<T, (Rule, String)>;

fn broken<T>(rule: Rule, detail: impl Into<String>) -> RuleResult<T> {
    Err((rule, detail.into()))
}

#[derive(Clone, Debug)]
struct IdentityState {
    role: Role,
    key: PublicKey,
    seq: u64,
    licence: Option<String>,
}

/// One grant of a record version to a doctor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessGrant {
    /// Grantee.
    pub doctor: IdentityId,
    /// Version granted.
    pub version: u32,
    /// Expiry, unix seconds.
    pub expires: Option<u64>,
    /// Stated purpose.
    pub purpose: Option<String>,
    /// Height of the granting block.
    pub granted_at: u64,
    /// The DEK wrapped to the doctor.
    pub wrapped_key: Vec<u8>,
}

#[derive(Clone, Debug)]
struct VersionState {
    content: Cid,
    size: u64,
    owner_wrap: Vec<u8>,
    grants: BTreeMap<IdentityId, AccessGrant>,
}

#[derive(Clone, Debug)]
struct RecordState {
    owner: IdentityId,
    versions: Vec<VersionState>,
    /// Doctors whose access was revoked (and not granted again since), with the height.
    revoked: BTreeMap<IdentityId, u64>,
    audit: Vec<AuditEvent>,
}

/// What happened to a record.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        /// Purpose.
        purpose: Option<String>,
    },
    /// A doctor's access was revoked.
    Revoked {
        /// The doctor.
        doctor: IdentityId,
    },
}

impl AuditKind {
    /// `published`, `granted` or `revoked`: the stable name the bindings and the CLI show.
    pub fn name(&self) -> &'static str {
        match self {
            AuditKind::Published { .. } => "published",
            AuditKind::Granted { .. } => "granted",
            AuditKind::Revoked { .. } => "revoked",
        }
    }

    /// The record version concerned (published, granted).
    pub fn version(&self) -> Option<u32> {
        match self {
            AuditKind::Published { version, .. } | AuditKind::Granted { version, .. } => {
                Some(*version)
            }
            AuditKind::Revoked { .. } => None,
        }
    }

    /// The doctor concerned (granted, revoked).
    pub fn doctor(&self) -> Option<IdentityId> {
        match self {
            AuditKind::Granted { doctor, .. } | AuditKind::Revoked { doctor } => Some(*doctor),
            AuditKind::Published { .. } => None,
        }
    }
}

/// One entry of a record's audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    pub kind: AuditKind,
}

/// A summary of a record as the chain knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// For `records_for(doctor)`: that doctor's grant on the latest version.
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
    /// The DEK wrapped to the reader.
    pub wrapped_key: Vec<u8>,
}

/// The replayed state of a chain.
#[derive(Clone, Debug)]
pub struct State {
    genesis: Genesis,
    authorities: HashMap<IdentityId, PublicKey>,
    height: u64,
    head: Cid,
    time: u64,
    identities: HashMap<IdentityId, IdentityState>,
    /// Which account each registered key belongs to (keys are never reused).
    key_owner: HashMap<IdentityId, IdentityId>,
    records: HashMap<RecordId, RecordState>,
}

impl State {
    /// Starts from a genesis block (validating it).
    pub fn from_genesis(block: &Block, now: u64) -> Result<State> {
        let at = |rule, detail: String| Error::InvalidChain {
            height: 0,
            tx: None,
            rule,
            detail,
        };
        let h = &block.header;
        let g = h
            .genesis
            .clone()
            .ok_or_else(|| at(Rule::Genesis, "first block has no genesis section".into()))?;
        if h.height != 0 || h.parent.is_some() || !h.txs.is_empty() {
            return Err(at(
                Rule::Genesis,
                "genesis must have height 0, no parent and no transactions".into(),
            ));
        }
        if g.authorities.is_empty() {
            return Err(at(Rule::Genesis, "genesis names no authority".into()));
        }
        if g.policy.min_key_bits < crate::identity::MIN_KEY_BITS as u64
            || g.policy.max_txs_per_block == 0
        {
            return Err(at(
                Rule::Genesis,
                "policy weaker than medshare's floor".into(),
            ));
        }
        let authorities: HashMap<_, _> =
            g.authorities.iter().map(|k| (k.id(), k.clone())).collect();
        if authorities.len() != g.authorities.len() {
            return Err(at(Rule::Genesis, "duplicate authority".into()));
        }
        if g.authorities
            .iter()
            .any(|k| (k.bits() as u64) < g.policy.min_key_bits)
        {
            return Err(at(
                Rule::Genesis,
                "authority key weaker than the policy".into(),
            ));
        }
        let mut state = State {
            genesis: g,
            authorities,
            height: 0,
            head: block.cid,
            time: h.time,
            identities: HashMap::new(),
            key_owner: HashMap::new(),
            records: HashMap::new(),
        };
        state
            .check_seal(block, now, &mut Sigs::Now)
            .map_err(|(rule, detail)| at(rule, detail))?;
        for k in state.genesis.authorities.clone() {
            state.key_owner.insert(k.id(), k.id());
            state.identities.insert(
                k.id(),
                IdentityState {
                    role: Role::Authority,
                    key: k,
                    seq: 0,
                    licence: None,
                },
            );
        }
        Ok(state)
    }

    fn check_seal(&self, block: &Block, now: u64, sigs: &mut Sigs<'_>) -> RuleResult {
        let h = &block.header;
        if h.network != self.genesis.network {
            return broken(Rule::Network, format!("block of network `{}`", h.network));
        }
        if block.bytes.len() as u64 > self.genesis.policy.max_object_bytes {
            return broken(
                Rule::Limits,
                format!("block of {} bytes", block.bytes.len()),
            );
        }
        if h.txs.len() as u64 > self.genesis.policy.max_txs_per_block {
            return broken(
                Rule::Limits,
                format!("{} transactions in one block", h.txs.len()),
            );
        }
        if h.time > now.saturating_add(self.genesis.policy.max_clock_skew_secs) {
            return broken(
                Rule::TimestampFuture,
                format!("block time {} is ahead of now ({now})", h.time),
            );
        }
        let Some(key) = self.authorities.get(&h.sealer) else {
            return broken(
                Rule::Sealer,
                format!("sealer {} is not an authority", h.sealer),
            );
        };
        if merkle_root(&h.txs) != h.merkle {
            return broken(
                Rule::MerkleRoot,
                "merkle root does not match the transactions",
            );
        }
        sigs.verify(key, &Block::signing_bytes(h), &block.sig)
            .map_err(|_| {
                (
                    Rule::SealSignature,
                    format!("seal of {} does not verify", h.sealer),
                )
            })
    }

    /// Applies the next block and its transactions (in block order), checking every rule. On
    /// error the state may be partly updated: callers apply to a clone when they must recover.
    pub fn apply_block(&mut self, block: &Block, txs: &[SignedTx], now: u64) -> Result<()> {
        self.apply_block_with(block, txs, now, &mut Sigs::Now)
    }

    /// [`State::apply_block`] with every signature check appended to `checks` instead of run.
    /// The state is only valid once [`verify_checks`] passes on them.
    pub(crate) fn apply_block_deferred(
        &mut self,
        block: &Block,
        txs: &[SignedTx],
        now: u64,
        checks: &mut Vec<SigCheck>,
    ) -> Result<()> {
        self.apply_block_with(block, txs, now, &mut Sigs::Defer(checks))
    }

    fn apply_block_with(
        &mut self,
        block: &Block,
        txs: &[SignedTx],
        now: u64,
        sigs: &mut Sigs<'_>,
    ) -> Result<()> {
        let h = &block.header;
        let height = h.height;
        let at = |rule, detail: String| Error::InvalidChain {
            height,
            tx: None,
            rule,
            detail,
        };
        if h.genesis.is_some() {
            return Err(at(Rule::Genesis, "a second genesis section".into()));
        }
        if h.parent != Some(self.head) {
            return Err(at(
                Rule::Parent,
                format!("parent {:?} is not the head {}", h.parent, self.head),
            ));
        }
        if h.height != self.height + 1 {
            return Err(at(
                Rule::Height,
                format!("height {} after {}", h.height, self.height),
            ));
        }
        if h.time < self.time {
            return Err(at(
                Rule::TimestampOrder,
                format!("time {} before the parent's {}", h.time, self.time),
            ));
        }
        self.check_seal(block, now, sigs)
            .map_err(|(rule, detail)| at(rule, detail))?;
        if txs.len() != h.txs.len() || txs.iter().zip(&h.txs).any(|(t, c)| t.cid != *c) {
            return Err(at(
                Rule::Cid,
                "transactions do not match the block's links".into(),
            ));
        }
        for (i, tx) in txs.iter().enumerate() {
            self.apply_tx(tx, block, sigs)
                .map_err(|(rule, detail)| Error::InvalidChain {
                    height,
                    tx: Some(i),
                    rule,
                    detail,
                })?;
        }
        self.height = height;
        self.head = block.cid;
        self.time = h.time;
        Ok(())
    }

    /// Checks an unsigned transaction against the current state as if it were the next one in a
    /// block at `time`, without changing anything: every rule but the signatures. Used to refuse
    /// an operation before doing its (possibly long) work. Returns the rule it would break.
    pub fn check_unsigned(&self, tx: &crate::ledger::Tx, time: u64) -> Result<()> {
        let tx = SignedTx::assemble(tx.clone(), Vec::new(), None);
        let mut copy = self.clone();
        let header = crate::ledger::BlockHeader {
            network: self.genesis.network.clone(),
            height: self.height + 1,
            parent: Some(self.head),
            time,
            txs: vec![tx.cid],
            merkle: [0; 32],
            sealer: self.genesis.authorities[0].id(),
            genesis: None,
        };
        let block = Block::assemble(header, Vec::new());
        copy.apply_tx(&tx, &block, &mut Sigs::Skip)
            .map_err(|(rule, detail)| Error::Rejected { rule, detail })
    }

    fn apply_tx(&mut self, stx: &SignedTx, block: &Block, sigs: &mut Sigs<'_>) -> RuleResult {
        let tx = &stx.tx;
        if stx.bytes.len() as u64 > self.genesis.policy.max_object_bytes {
            return broken(
                Rule::Limits,
                format!("transaction of {} bytes", stx.bytes.len()),
            );
        }
        let msg = SignedTx::signing_bytes(tx);
        let event = |kind| AuditEvent {
            height: block.header.height,
            block: block.cid,
            time: block.header.time,
            tx: stx.cid,
            author: tx.author,
            kind,
        };
        // Registrations are self-signed by the key they register.
        match &tx.body {
            TxBody::RegisterPatient { key } | TxBody::RegisterDoctor { key, .. } => {
                if key.id() != tx.author {
                    return broken(
                        Rule::Registration,
                        "author is not the id of the registered key",
                    );
                }
                if (key.bits() as u64) < self.genesis.policy.min_key_bits {
                    return broken(
                        Rule::Registration,
                        format!(
                            "{}-bit key under the policy minimum {}",
                            key.bits(),
                            self.genesis.policy.min_key_bits
                        ),
                    );
                }
                if self.key_owner.contains_key(&key.id()) {
                    return broken(
                        Rule::DuplicateRegistration,
                        format!("{} is already registered", tx.author),
                    );
                }
                sigs.verify(key, &msg, &stx.sig)
                    .map_err(|_| (Rule::TxSignature, "signature does not verify".to_owned()))?;
                if tx.seq != 1 {
                    return broken(
                        Rule::Sequence,
                        format!("registration must have sequence 1, has {}", tx.seq),
                    );
                }
                let (role, licence) = match &tx.body {
                    TxBody::RegisterDoctor {
                        licence,
                        authority,
                        endorsement,
                        ..
                    } => {
                        let Some(auth) = self.authorities.get(authority) else {
                            return broken(
                                Rule::Endorsement,
                                format!("{authority} is not an authority"),
                            );
                        };
                        // The authority's endorsement is a rule about the body, checked even
                        // when the transaction's own signature is not (`check_unsigned`).
                        let message = endorsement_message(&tx.author, licence);
                        match sigs {
                            Sigs::Skip => auth.verify(&message, endorsement).map_err(drop),
                            other => other.verify(auth, &message, endorsement),
                        }
                        .map_err(|_| {
                            (Rule::Endorsement, "endorsement does not verify".to_owned())
                        })?;
                        (Role::Doctor, Some(licence.clone()))
                    }
                    _ => (Role::Patient, None),
                };
                self.key_owner.insert(key.id(), tx.author);
                self.identities.insert(
                    tx.author,
                    IdentityState {
                        role,
                        key: key.clone(),
                        seq: 1,
                        licence,
                    },
                );
                return Ok(());
            }
            _ => {}
        }
        let Some(author) = self.identities.get(&tx.author) else {
            return broken(
                Rule::UnknownAuthor,
                format!("{} is not registered", tx.author),
            );
        };
        sigs.verify(&author.key, &msg, &stx.sig).map_err(|_| {
            (
                Rule::TxSignature,
                format!(
                    "signature does not verify against {}'s current key",
                    tx.author
                ),
            )
        })?;
        if tx.seq <= author.seq {
            return broken(
                Rule::Sequence,
                format!("sequence {} not above {}", tx.seq, author.seq),
            );
        }
        let author_role = author.role;
        match &tx.body {
            TxBody::RegisterPatient { .. } | TxBody::RegisterDoctor { .. } => {
                unreachable!("handled above")
            }
            TxBody::RotateKey { new_key } => {
                let cosig = stx.cosig.as_deref().unwrap_or_default();
                sigs.verify(new_key, &msg, cosig).map_err(|_| {
                    (
                        Rule::KeyRotation,
                        "new key's co-signature does not verify".to_owned(),
                    )
                })?;
                if (new_key.bits() as u64) < self.genesis.policy.min_key_bits {
                    return broken(Rule::KeyRotation, "new key under the policy minimum");
                }
                if self.key_owner.contains_key(&new_key.id()) {
                    return broken(Rule::KeyRotation, "new key is already in use");
                }
                if author_role == Role::Authority {
                    return broken(Rule::Role, "authority keys are fixed by the genesis");
                }
                self.key_owner.insert(new_key.id(), tx.author);
                if let Some(me) = self.identities.get_mut(&tx.author) {
                    me.key = new_key.clone();
                }
            }
            TxBody::PublishRecord {
                record,
                version,
                content,
                size,
                wrapped_key,
            } => {
                if author_role != Role::Patient {
                    return broken(
                        Rule::Role,
                        format!("a {author_role} cannot publish records"),
                    );
                }
                if wrapped_key.is_empty() || wrapped_key.len() > 512 {
                    return broken(Rule::Encoding, "wrapped key length");
                }
                let v = VersionState {
                    content: *content,
                    size: *size,
                    owner_wrap: wrapped_key.clone(),
                    grants: BTreeMap::new(),
                };
                let ev = event(AuditKind::Published {
                    version: *version,
                    content: *content,
                });
                match self.records.get_mut(record) {
                    None => {
                        if *version != 1 {
                            return broken(
                                Rule::Version,
                                format!("new record starts at version {version}, not 1"),
                            );
                        }
                        self.records.insert(
                            *record,
                            RecordState {
                                owner: tx.author,
                                versions: vec![v],
                                revoked: BTreeMap::new(),
                                audit: vec![ev],
                            },
                        );
                    }
                    Some(r) => {
                        if r.owner != tx.author {
                            return broken(
                                Rule::NotOwner,
                                format!("record {record} belongs to {}", r.owner),
                            );
                        }
                        if *version as usize != r.versions.len() + 1 {
                            return broken(
                                Rule::Version,
                                format!("version {version} after {}", r.versions.len()),
                            );
                        }
                        r.versions.push(v);
                        r.audit.push(ev);
                    }
                }
            }
            TxBody::Grant {
                record,
                version,
                doctor,
                wrapped_key,
                expires,
                purpose,
            } => {
                let grantee_ok = self
                    .identities
                    .get(doctor)
                    .is_some_and(|d| d.role == Role::Doctor);
                let r = self.record_owned_by(record, &tx.author)?;
                let Some(v) = r.versions.get_mut((*version as usize).wrapping_sub(1)) else {
                    return broken(
                        Rule::Version,
                        format!("record {record} has no version {version}"),
                    );
                };
                if !grantee_ok {
                    return broken(
                        Rule::Grantee,
                        format!("{doctor} is not a registered doctor"),
                    );
                }
                if expires.is_some_and(|e| e <= block.header.time) {
                    return broken(Rule::Expiry, "grant expires before it is issued");
                }
                if wrapped_key.is_empty() || wrapped_key.len() > 512 {
                    return broken(Rule::Encoding, "wrapped key length");
                }
                v.grants.insert(
                    *doctor,
                    AccessGrant {
                        doctor: *doctor,
                        version: *version,
                        expires: *expires,
                        purpose: purpose.clone(),
                        granted_at: block.header.height,
                        wrapped_key: wrapped_key.clone(),
                    },
                );
                r.revoked.remove(doctor);
                r.audit.push(event(AuditKind::Granted {
                    doctor: *doctor,
                    version: *version,
                    expires: *expires,
                    purpose: purpose.clone(),
                }));
            }
            TxBody::Revoke { record, doctor } => {
                let r = self.record_owned_by(record, &tx.author)?;
                let mut had = false;
                for v in &mut r.versions {
                    had |= v.grants.remove(doctor).is_some();
                }
                if !had {
                    return broken(
                        Rule::NotGranted,
                        format!("{doctor} holds no grant on {record}"),
                    );
                }
                r.revoked.insert(*doctor, block.header.height);
                r.audit.push(event(AuditKind::Revoked { doctor: *doctor }));
            }
        }
        if let Some(me) = self.identities.get_mut(&tx.author) {
            me.seq = tx.seq;
        }
        Ok(())
    }

    fn record_owned_by(
        &mut self,
        record: &RecordId,
        author: &IdentityId,
    ) -> RuleResult<&mut RecordState> {
        let Some(r) = self.records.get_mut(record) else {
            return broken(Rule::Version, format!("unknown record {record}"));
        };
        if r.owner != *author {
            return broken(
                Rule::NotOwner,
                format!("record {record} belongs to {}", r.owner),
            );
        }
        Ok(r)
    }

    // ---- queries ------------------------------------------------------------------------------

    /// Current height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Current head block CID.
    pub fn head(&self) -> Cid {
        self.head
    }

    /// Time of the head block.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The genesis configuration.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.genesis.policy
    }

    /// Role and current key of a registered identity.
    pub fn identity(&self, id: &IdentityId) -> Option<(Role, &PublicKey)> {
        self.identities.get(id).map(|i| (i.role, &i.key))
    }

    /// The doctor's licence reference, if `id` is a doctor.
    pub fn licence(&self, id: &IdentityId) -> Option<&str> {
        self.identities.get(id).and_then(|i| i.licence.as_deref())
    }

    /// Last sequence number used by `id` (0 if none).
    pub fn last_seq(&self, id: &IdentityId) -> u64 {
        self.identities.get(id).map_or(0, |i| i.seq)
    }

    /// Every registered identity with its role.
    pub fn identities(&self) -> Vec<(IdentityId, Role)> {
        let mut v: Vec<_> = self
            .identities
            .iter()
            .map(|(id, s)| (*id, s.role))
            .collect();
        v.sort();
        v
    }

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
            grant,
        })
    }

    /// A record's summary.
    pub fn record(&self, record: &RecordId) -> Option<RecordInfo> {
        self.records
            .get(record)
            .and_then(|r| self.info(record, r, None))
    }

    /// Every record.
    pub fn all_records(&self) -> Vec<RecordInfo> {
        let mut v: Vec<_> = self
            .records
            .iter()
            .filter_map(|(id, r)| self.info(id, r, None))
            .collect();
        v.sort_by_key(|i| i.record);
        v
    }

    /// Records owned by `owner`.
    pub fn records_of(&self, owner: &IdentityId) -> Vec<RecordInfo> {
        let mut v: Vec<_> = self
            .records
            .iter()
            .filter(|(_, r)| r.owner == *owner)
            .filter_map(|(id, r)| self.info(id, r, None))
            .collect();
        v.sort_by_key(|i| i.record);
        v
    }

    /// Records whose latest version `doctor` holds a grant on (expired grants included, marked by
    /// their `expires`).
    pub fn records_for(&self, doctor: &IdentityId) -> Vec<RecordInfo> {
        let mut v: Vec<_> = self
            .records
            .iter()
            .filter_map(|(id, r)| {
                let g = r.versions.last()?.grants.get(doctor)?.clone();
                self.info(id, r, Some(g))
            })
            .collect();
        v.sort_by_key(|i| i.record);
        v
    }

    /// Grants on the latest version of `record`.
    pub fn access_list(&self, record: &RecordId) -> Result<Vec<AccessGrant>> {
        let r = self
            .records
            .get(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        Ok(r.versions
            .last()
            .map(|v| v.grants.values().cloned().collect())
            .unwrap_or_default())
    }

    /// The audit trail of `record`, oldest first.
    pub fn audit(&self, record: &RecordId) -> Result<Vec<AuditEvent>> {
        let r = self
            .records
            .get(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        Ok(r.audit.clone())
    }

    /// Content roots of every version of `record` (oldest first).
    pub fn contents(&self, record: &RecordId) -> Vec<Cid> {
        self.records
            .get(record)
            .map(|r| r.versions.iter().map(|v| v.content).collect())
            .unwrap_or_default()
    }

    /// Whether `reader` may open the latest version of `record` at unix time `now`, and with what.
    pub fn access(&self, record: &RecordId, reader: &IdentityId, now: u64) -> Result<Access> {
        let r = self
            .records
            .get(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        let (n, v) = r
            .versions
            .iter()
            .enumerate()
            .next_back()
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        let version = n as u32 + 1;
        if r.owner == *reader {
            return Ok(Access {
                version,
                content: v.content,
                size: v.size,
                wrapped_key: v.owner_wrap.clone(),
            });
        }
        if let Some(g) = v.grants.get(reader) {
            if g.expires.is_some_and(|e| e <= now) {
                return Err(Error::AccessExpired(record.to_string()));
            }
            return Ok(Access {
                version,
                content: v.content,
                size: v.size,
                wrapped_key: g.wrapped_key.clone(),
            });
        }
        if r.revoked.contains_key(reader) {
            return Err(Error::AccessRevoked(record.to_string()));
        }
        Err(Error::AccessDenied(record.to_string()))
    }
}
