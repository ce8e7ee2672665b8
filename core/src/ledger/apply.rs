//! The rules: applying a block, a certificate, and each kind of transaction to a [`State`].
//!
//! Every check names the [`Rule`] it enforces. Signature checks go through [`Sigs`], so a
//! replay can set them aside and verify a batch of them on every core at once while the rules
//! of the next batch are checked ([`crate::ledger::chain`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{IdentityId, PublicKey, Role};
use crate::ledger::checkpoint::is_quorum;
use crate::ledger::codec::{
    AuthorityChangeKind, Block, CertificateObject, GenesisBlock, ReviewOutcome, Rewrapped,
    SignedTx, Tx, TxBody, WrappedShare,
};
use crate::ledger::endorsement_message;
use crate::ledger::merkle::leaf_hash;
use crate::ledger::state::{
    AccessGrant, AuditEvent, AuditKind, AuditTrail, Authority, Emergency, EmergencySplit,
    IdentityState, KeyRef, RecordState, Release, ReviewInfo, State, ValidatorUpdate, VersionState,
};
use crate::record::{Purpose, RecordId};
use crate::rule::Rule;

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
    /// Skip the author's own signatures (checking an unsigned transaction before signing it);
    /// signatures by others inside the body (an endorsement) are still verified.
    SkipAuthor,
    /// Verify each signature now unless this exact check passed before.
    Memo(&'a mut VerifiedSignatures),
}

/// Signature checks that passed, remembered so that a node verifies each transaction once
/// although it meets it several times: admitted to its mempool (`CheckTx`), re-checked after
/// every block, then proposed or received in a proposal.
///
/// An entry is the SHA-256 of a label naming the scheme (RSA-PSS with SHA-256), the key's id
/// (the hash of its canonical encoding), the message and the signature: exactly what a
/// verification depends on, so a remembered check gives the verdict verifying again would
/// (a key rotated since, or another message, is a different entry). Only passes are kept;
/// a failed check is verified again each time, and the checks of a submission that breaks any
/// rule are not kept either (replaying old transactions cannot crowd out the useful entries).
/// Bounded: once full, the oldest entries are forgotten first.
#[derive(Debug)]
pub struct VerifiedSignatures {
    seen: std::collections::HashSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
    /// Checks that passed in the submission being applied, kept only if all of it is accepted.
    staged: Vec<[u8; 32]>,
    capacity: usize,
    hits: u64,
}

impl VerifiedSignatures {
    /// Remembers at most `capacity` checks (at least one; 40 bytes or so each).
    pub fn new(capacity: usize) -> VerifiedSignatures {
        VerifiedSignatures {
            seen: std::collections::HashSet::new(),
            order: std::collections::VecDeque::new(),
            staged: Vec::new(),
            capacity: capacity.max(1),
            hits: 0,
        }
    }

    /// Checks remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Verifications skipped so far because the check had passed before.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    fn entry(key: &PublicKey, msg: &[u8], sig: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"medshare/v2/verified-signature rsa-pss-sha256\0");
        h.update(key.id().as_bytes());
        h.update((msg.len() as u64).to_be_bytes());
        h.update(msg);
        h.update(sig);
        h.finalize().into()
    }

    fn verify(&mut self, key: &PublicKey, msg: &[u8], sig: &[u8]) -> std::result::Result<(), ()> {
        let entry = Self::entry(key, msg, sig);
        if self.seen.contains(&entry) {
            self.hits += 1;
            return Ok(());
        }
        key.verify(msg, sig).map_err(drop)?;
        self.staged.push(entry);
        Ok(())
    }

    /// Keeps the staged checks (`accepted`: their submission was accepted) or drops them.
    fn settle(&mut self, accepted: bool) {
        let staged = std::mem::take(&mut self.staged);
        if !accepted {
            return;
        }
        for entry in staged {
            if !self.seen.insert(entry) {
                continue;
            }
            self.order.push_back(entry);
            if self.order.len() > self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }
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
            Sigs::SkipAuthor => Ok(()),
            Sigs::Memo(memo) => memo.verify(key, msg, sig),
        }
    }

    /// A signature that is part of the body (not the author's over the transaction).
    fn verify_body(
        &mut self,
        key: &PublicKey,
        msg: &[u8],
        sig: &[u8],
    ) -> std::result::Result<(), ()> {
        match self {
            Sigs::SkipAuthor => key.verify(msg, sig).map_err(drop),
            other => other.verify(key, msg, sig),
        }
    }
}

/// Verifies deferred checks on every core (where there are threads). True if all pass.
pub(crate) fn verify_checks(checks: &[SigCheck]) -> bool {
    crate::platform::par_all(checks, 8, |c| c.key.verify(&c.msg, &c.sig).is_ok())
}

/// A failed rule with its explanation (placed into an error by the caller).
type RuleResult<T = ()> = std::result::Result<T, (Rule, String)>;

fn broken<T>(rule: Rule, detail: impl Into<String>) -> RuleResult<T> {
    Err((rule, detail.into()))
}

const MIN_WRAPPED: usize = 256;
const MAX_WRAPPED: usize = 512;

fn check_wrapped(w: &[u8]) -> RuleResult {
    if !(MIN_WRAPPED..=MAX_WRAPPED).contains(&w.len()) {
        return broken(Rule::Encoding, format!("wrapped key of {} bytes", w.len()));
    }
    Ok(())
}

/// Where a transaction is applied: its block's height, CID and time.
#[derive(Clone, Copy)]
pub(crate) struct At {
    pub(crate) height: u64,
    pub(crate) block: Cid,
    pub(crate) time: u64,
}

impl State {
    // ---- blocks and certificates -------------------------------------------------------------

    /// Applies the next block and its transactions (in block order), checking every rule. On
    /// error the state may be partly updated: callers apply to a clone (cheap) when they must
    /// recover.
    pub fn apply_block(&mut self, block: &Block, txs: &[SignedTx]) -> Result<()> {
        self.apply_block_with(block, txs, None, &mut Sigs::Now)
    }

    /// [`State::apply_block`] with every signature check appended to `checks` instead of run.
    /// The state is only valid once [`verify_checks`] passes on them. `messages`, if given, are
    /// the transactions' [`SignedTx::signing_bytes`], in order (computed as they were decoded:
    /// [`SignedTx::decode_with_message`]).
    pub(crate) fn apply_block_deferred(
        &mut self,
        block: &Block,
        txs: &[SignedTx],
        messages: Option<&[Vec<u8>]>,
        checks: &mut Vec<SigCheck>,
    ) -> Result<()> {
        self.apply_block_with(block, txs, messages, &mut Sigs::Defer(checks))
    }

    /// The authorities in effect after `votes` (authority votes, in log order) on the network
    /// `genesis`: each vote's signature and the voting rule checked as in a chain, nothing
    /// else (what a receipt's verifier knows of the chain).
    pub fn authorities_after_votes(
        genesis: &GenesisBlock,
        votes: &[SignedTx],
    ) -> Result<BTreeMap<IdentityId, PublicKey>> {
        let mut state = State::from_genesis(genesis)?;
        let here = At {
            height: 0,
            block: genesis.cid,
            time: 0,
        };
        for (i, v) in votes.iter().enumerate() {
            state
                .apply_tx(i, v, None, here, &mut Sigs::Now)
                .map_err(|(rule, detail)| {
                    Error::InvalidProof(format!("authority vote {}: {rule}: {detail}", v.cid))
                })?;
        }
        Ok(state.authority_keys())
    }

    /// Applies a block this node has just built, with [`State::next_block`], from submissions
    /// it accepted on this very state with [`State::accept_submission`]: every rule again, but
    /// not the authors' signatures, which that acceptance verified. Never for a block from
    /// elsewhere (use [`State::apply_block`]).
    pub fn apply_built_block(&mut self, block: &Block, txs: &[SignedTx]) -> Result<()> {
        let mut verified = Vec::new();
        self.apply_block_deferred(block, txs, None, &mut verified)
    }

    /// Applies a block without checking its authors' signatures (tests that need a stored
    /// chain with a forged signature deep inside it).
    #[cfg(test)]
    pub(crate) fn apply_block_unsigned(&mut self, block: &Block, txs: &[SignedTx]) -> Result<()> {
        self.apply_block_with(block, txs, None, &mut Sigs::SkipAuthor)
    }

    fn apply_block_with(
        &mut self,
        block: &Block,
        txs: &[SignedTx],
        messages: Option<&[Vec<u8>]>,
        sigs: &mut Sigs<'_>,
    ) -> Result<()> {
        let h = &block.header;
        let at = |rule, detail: String| Error::InvalidChain {
            height: Some(h.height),
            tx: None,
            rule,
            detail,
        };
        if h.genesis != self.genesis.cid {
            return Err(at(Rule::Network, format!("block of network {}", h.genesis)));
        }
        if h.parent != self.head {
            return Err(at(
                Rule::Parent,
                format!("parent {} is not the head {}", h.parent, self.head),
            ));
        }
        if h.height != self.height + 1 {
            return Err(at(
                Rule::Height,
                format!("height {} after {}", h.height, self.height),
            ));
        }
        if h.parent_cert != self.head_cert || !self.is_certified() {
            return Err(at(
                Rule::Certificate,
                match (h.parent_cert, self.head_cert) {
                    (_, None) if self.height > 0 => {
                        format!("the parent block {} is not certified", self.height)
                    }
                    (Some(c), _) if self.height == 0 => {
                        format!("block 1 names a certificate {c} of the genesis block")
                    }
                    (got, want) => format!("parent certificate {got:?}, expected {want:?}"),
                },
            ));
        }
        if h.time < self.time {
            return Err(at(
                Rule::TimestampOrder,
                format!("time {} before the parent's {}", h.time, self.time),
            ));
        }
        if block.bytes.len() as u64 > self.policy().max_object_bytes {
            return Err(at(
                Rule::Limits,
                format!("block of {} bytes", block.bytes.len()),
            ));
        }
        if h.txs.is_empty() || h.txs.len() as u64 > self.policy().max_txs_per_block {
            return Err(at(
                Rule::Limits,
                format!("{} transactions in one block", h.txs.len()),
            ));
        }
        if txs.len() != h.txs.len()
            || txs.iter().zip(&h.txs).any(|(t, c)| t.cid != *c)
            || messages.is_some_and(|m| m.len() != txs.len())
        {
            return Err(at(
                Rule::Cid,
                "transactions do not match the block's links".into(),
            ));
        }
        self.validator_updates.clear();
        self.pending_rekey.clear();
        let here = At {
            height: h.height,
            block: block.cid,
            time: h.time,
        };
        // What the block changes in the state map: records (with their grantees before it)
        // and whether the authorities change.
        let mut touched = BTreeMap::new();
        let mut authorities = false;
        for (i, tx) in txs.iter().enumerate() {
            match &tx.tx.body {
                TxBody::PublishRecord { record, .. }
                | TxBody::Grant { record, .. }
                | TxBody::Revoke { record, .. } => {
                    touched
                        .entry(*record)
                        .or_insert_with(|| self.grantees(record));
                }
                TxBody::AuthorityChange { .. } => authorities = true,
                _ => {}
            }
            let message = messages.and_then(|m| m.get(i)).map(Vec::as_slice);
            self.apply_tx(i, tx, message, here, sigs)
                .map_err(|(rule, detail)| Error::InvalidChain {
                    height: Some(h.height),
                    tx: Some(i),
                    rule,
                    detail,
                })?;
            self.log.push(leaf_hash(&tx.cid.to_bytes()));
        }
        if let Some((record, &i)) = self.pending_rekey.iter().next() {
            return Err(Error::InvalidChain {
                height: Some(h.height),
                tx: Some(i),
                rule: Rule::Rekey,
                detail: format!(
                    "record {record} is revoked but its next version is not published in the same block"
                ),
            });
        }
        if self.log.size() != h.log_size || self.log.root() != h.log_root {
            return Err(at(
                Rule::MerkleRoot,
                format!(
                    "the block commits to a log of {} transactions that is not this chain's ({})",
                    h.log_size,
                    self.log.size()
                ),
            ));
        }
        self.refresh_state_map(touched, authorities);
        self.height = h.height;
        self.head = block.cid;
        self.head_cert = None;
        self.time = h.time;
        Ok(())
    }

    /// Applies the certificate of the head block: it must certify exactly the head (height,
    /// CID, log) of this network, with signatures from more than two thirds of the authorities
    /// in effect after it.
    pub fn apply_certificate(&mut self, cert: &CertificateObject) -> Result<()> {
        let cp = &cert.certificate.checkpoint;
        let at = |detail: String| Error::InvalidChain {
            height: Some(cp.height),
            tx: None,
            rule: Rule::Certificate,
            detail,
        };
        if cp.genesis != self.genesis.cid {
            return Err(Error::InvalidChain {
                height: Some(cp.height),
                tx: None,
                rule: Rule::Network,
                detail: format!("certificate of network {}", cp.genesis),
            });
        }
        if self.height == 0 {
            return Err(at("the genesis block takes no certificate".into()));
        }
        if cp.block != self.head || cp.height != self.height {
            return Err(at(format!(
                "certificate of block {} ({}), the head is block {} ({})",
                cp.height, cp.block, self.height, self.head
            )));
        }
        if cp.size != self.log.size() || cp.root != self.log.root() {
            return Err(at("the certificate's log is not the chain's".into()));
        }
        if cp.state != self.state_root() {
            return Err(at("the certificate's state root is not the chain's".into()));
        }
        if cert.bytes.len() as u64 > self.policy().max_object_bytes {
            return Err(at(format!("certificate of {} bytes", cert.bytes.len())));
        }
        cert.certificate
            .verify(&self.authority_keys())
            .map_err(|e| at(e.to_string()))?;
        self.head_cert = Some(cert.cid);
        Ok(())
    }

    /// Checks a submission against the state as the next transactions of a block at `time`,
    /// without changing anything: every rule, signatures included. What a sequencer does before
    /// accepting it (CometBFT's `CheckTx`). Failures are [`Error::Rejected`].
    pub fn check_submission(&self, txs: &[SignedTx], time: u64) -> Result<()> {
        let mut copy = self.clone();
        copy.apply_submission(txs, time, &mut Sigs::Now)
    }

    /// Applies a submission to this state as the next transactions of a block being built at
    /// `time`: all of them or none (then the state is unchanged), every rule and signature
    /// checked. What a sequencer does to pick the submissions of its next block, and what a
    /// mempool's check state does to admit a submission after the ones already admitted.
    /// Failures are [`Error::Rejected`].
    pub fn accept_submission(&mut self, txs: &[SignedTx], time: u64) -> Result<()> {
        self.apply_submission(txs, time, &mut Sigs::Now)
    }

    /// [`State::accept_submission`], skipping any signature check that passed before in
    /// `verified` and remembering the ones that pass now. The verdict is the same: only
    /// repeated work is saved (a consensus node meets each transaction several times).
    pub fn accept_submission_with(
        &mut self,
        txs: &[SignedTx],
        time: u64,
        verified: &mut VerifiedSignatures,
    ) -> Result<()> {
        verified.staged.clear();
        let result = self.apply_submission(txs, time, &mut Sigs::Memo(verified));
        verified.settle(result.is_ok());
        result
    }

    /// Applies a submission as part of a block being built at `time` (a sequencer building a
    /// block): all its transactions or none. `block` is the CID the audit trail names, known
    /// only once the block is encoded; builders apply with a placeholder, then re-apply.
    pub(crate) fn apply_submission(
        &mut self,
        txs: &[SignedTx],
        time: u64,
        sigs: &mut Sigs<'_>,
    ) -> Result<()> {
        let mut copy = self.clone();
        copy.pending_rekey.clear();
        let here = At {
            height: self.height + 1,
            block: self.head,
            time,
        };
        for (i, tx) in txs.iter().enumerate() {
            copy.apply_tx(i, tx, None, here, sigs)
                .map_err(|(rule, detail)| Error::Rejected { rule, detail })?;
        }
        if let Some(record) = copy.pending_rekey.keys().next() {
            return Err(Error::Rejected {
                rule: Rule::Rekey,
                detail: format!(
                    "revoking on record {record} must publish its next version in the same submission"
                ),
            });
        }
        *self = copy;
        Ok(())
    }

    /// Checks an unsigned transaction against the current state as if it were the next one in a
    /// block at `time`, without changing anything: every rule but the author's signature. Used
    /// to refuse an operation before doing its (possibly long) work.
    pub fn check_unsigned(&self, tx: &Tx, time: u64) -> Result<()> {
        let stx = SignedTx::assemble(tx.clone(), Vec::new(), None);
        let mut copy = self.clone();
        let here = At {
            height: self.height + 1,
            block: self.head,
            time,
        };
        copy.apply_tx(0, &stx, None, here, &mut Sigs::SkipAuthor)
            .map_err(|(rule, detail)| Error::Rejected { rule, detail })
    }

    // ---- transactions ------------------------------------------------------------------------

    /// Applies one transaction. `message` is its [`SignedTx::signing_bytes`] if the caller
    /// already has them (computed from the transaction otherwise).
    fn apply_tx(
        &mut self,
        index: usize,
        stx: &SignedTx,
        message: Option<&[u8]>,
        at: At,
        sigs: &mut Sigs<'_>,
    ) -> RuleResult {
        let tx = &stx.tx;
        if stx.bytes.len() as u64 > self.policy().max_object_bytes {
            return broken(
                Rule::Limits,
                format!("transaction of {} bytes", stx.bytes.len()),
            );
        }
        if tx.genesis != self.genesis.cid {
            return broken(
                Rule::Network,
                format!(
                    "signed for the network {}, not {}",
                    tx.genesis, self.genesis.cid
                ),
            );
        }
        let msg = match message {
            Some(m) => std::borrow::Cow::Borrowed(m),
            None => std::borrow::Cow::Owned(SignedTx::signing_bytes(tx)),
        };
        match &tx.body {
            TxBody::RegisterPatient { key } => {
                return self.register(stx, &msg, key, Role::Patient, None, sigs);
            }
            TxBody::RegisterDoctor {
                key,
                licence,
                authority,
                endorsement,
            } => {
                self.check_endorsement(&tx.author, licence, authority, endorsement, sigs)?;
                let endorsed = Some((licence.clone(), *authority));
                return self.register(stx, &msg, key, Role::Doctor, endorsed, sigs);
            }
            _ => {}
        }
        let Some(author) = self.identities.get(&tx.author) else {
            return broken(
                Rule::UnknownAuthor,
                format!("{} is not registered", tx.author),
            );
        };
        let (role, key, last_seq) = (author.role, author.key.clone(), author.seq);
        sigs.verify(&key, &msg, &stx.sig).map_err(|_| {
            (
                Rule::TxSignature,
                format!(
                    "signature does not verify against {}'s current key",
                    tx.author
                ),
            )
        })?;
        if tx.seq <= last_seq {
            return broken(
                Rule::Sequence,
                format!("sequence {} not above {last_seq}", tx.seq),
            );
        }
        let event = |kind| AuditEvent {
            height: at.height,
            block: at.block,
            time: at.time,
            tx: stx.cid,
            author: tx.author,
            kind,
        };
        match &tx.body {
            TxBody::RegisterPatient { .. } | TxBody::RegisterDoctor { .. } => {
                return broken(Rule::Registration, "registrations are handled above");
            }
            TxBody::RotateKey { new_key } => self.rotate_key(stx, &msg, role, new_key, sigs)?,
            TxBody::Rewrap { keys } => self.rewrap(&tx.author, stx.cid, keys)?,
            TxBody::PublishRecord {
                record,
                version,
                content,
                size,
                commitment,
                owner_key,
            } => self.publish(
                &tx.author,
                role,
                *record,
                *version,
                VersionState {
                    content: *content,
                    size: *size,
                    commitment: *commitment,
                    owner_key: owner_key.clone(),
                    grants: imbl::OrdMap::new(),
                    emergency: None,
                    exposed: false,
                },
                event(AuditKind::Published {
                    version: *version,
                    content: *content,
                }),
            )?,
            TxBody::Grant {
                record,
                version,
                doctor,
                wrapped_key,
                expires,
                purpose,
                note,
            } => self.grant(
                &tx.author,
                *record,
                AccessGrant {
                    doctor: *doctor,
                    version: *version,
                    expires: *expires,
                    purpose: *purpose,
                    note: note.clone(),
                    granted_at: at.height,
                    key: KeyRef {
                        tx: stx.cid,
                        index: 0,
                    },
                },
                wrapped_key,
                at.time,
                event(AuditKind::Granted {
                    doctor: *doctor,
                    version: *version,
                    expires: *expires,
                    purpose: *purpose,
                }),
            )?,
            TxBody::Revoke { record, doctor } => self.revoke(
                &tx.author,
                *record,
                *doctor,
                index,
                at.height,
                event(AuditKind::Revoked { doctor: *doctor }),
            )?,
            TxBody::AuthorityChange { change } => {
                self.authority_vote(&tx.author, role, change)?;
                self.vote_txs.push_back(stx.cid);
            }
            TxBody::EmergencyShares {
                record,
                version,
                threshold,
                shares,
            } => self.emergency_shares(
                &tx.author,
                *record,
                *version,
                *threshold,
                shares,
                event(AuditKind::EmergencyEnabled {
                    version: *version,
                    threshold: *threshold,
                    shares: shares.len() as u8,
                }),
            )?,
            TxBody::EmergencyAccess {
                record,
                version,
                purpose,
                justification,
                window,
            } => {
                let expires = at.time.saturating_add(*window);
                self.emergency_access(
                    role,
                    EmergencyRequest {
                        record: *record,
                        version: *version,
                        purpose: *purpose,
                        justification,
                        window: *window,
                    },
                    event(AuditKind::Emergency {
                        doctor: tx.author,
                        version: *version,
                        expires: Some(expires),
                        purpose: *purpose,
                    }),
                )?
            }
            TxBody::ShareRelease {
                request,
                index,
                wrapped,
            } => self.share_release(role, request, *index, wrapped, &event)?,
            TxBody::Review { request, outcome } => self.review(role, request, *outcome, &event)?,
        }
        if let Some(me) = self.identities.get_mut(&tx.author) {
            me.seq = tx.seq;
        }
        Ok(())
    }

    fn check_endorsement(
        &self,
        doctor: &IdentityId,
        licence: &str,
        authority: &IdentityId,
        endorsement: &[u8],
        sigs: &mut Sigs<'_>,
    ) -> RuleResult {
        if licence.trim().is_empty() {
            return broken(Rule::Endorsement, "a doctor's licence reference is empty");
        }
        if licence.len() > 256 {
            return broken(Rule::Limits, "licence reference over 256 bytes");
        }
        if licence.chars().any(char::is_control) {
            return broken(
                Rule::Endorsement,
                "a licence reference is printable text (no control characters)",
            );
        }
        let Some(auth) = self.authorities.get(authority) else {
            return broken(
                Rule::Endorsement,
                format!("{authority} is not an authority of this network"),
            );
        };
        let message = endorsement_message(&self.genesis.cid, doctor, licence);
        sigs.verify_body(&auth.key, &message, endorsement)
            .map_err(|_| {
                (
                    Rule::Endorsement,
                    format!("the endorsement by {authority} does not verify for this doctor, licence and network"),
                )
            })
    }

    fn register(
        &mut self,
        stx: &SignedTx,
        msg: &[u8],
        key: &PublicKey,
        role: Role,
        licence: Option<(String, IdentityId)>,
        sigs: &mut Sigs<'_>,
    ) -> RuleResult {
        let tx = &stx.tx;
        if key.id() != tx.author {
            return broken(
                Rule::Registration,
                "a registration's author must be the id of the key it registers",
            );
        }
        if (key.bits() as u64) < self.policy().min_key_bits {
            return broken(Rule::Registration, "key under the policy minimum");
        }
        if self.identities.contains_key(&tx.author) || self.key_owner.contains_key(&key.id()) {
            return broken(
                Rule::DuplicateRegistration,
                format!("{} is already registered", tx.author),
            );
        }
        if tx.seq != 1 {
            return broken(Rule::Sequence, "a registration has sequence number 1");
        }
        sigs.verify(key, msg, &stx.sig).map_err(|_| {
            (
                Rule::TxSignature,
                "registration not signed by the registered key".to_owned(),
            )
        })?;
        self.key_owner.insert(key.id(), tx.author);
        self.identities.insert(
            tx.author,
            IdentityState {
                role,
                key: key.clone(),
                seq: 1,
                endorser: licence.as_ref().map(|l| l.1),
                licence: licence.map(|l| l.0),
            },
        );
        Ok(())
    }

    fn rotate_key(
        &mut self,
        stx: &SignedTx,
        msg: &[u8],
        role: Role,
        new_key: &PublicKey,
        sigs: &mut Sigs<'_>,
    ) -> RuleResult {
        let author = stx.tx.author;
        if role == Role::Authority {
            return broken(
                Rule::Role,
                "authority keys change by vote (AuthorityChange), not by rotation",
            );
        }
        let cosig = stx.cosig.as_deref().unwrap_or_default();
        sigs.verify(new_key, msg, cosig).map_err(|_| {
            (
                Rule::KeyRotation,
                "the new key's co-signature does not verify".to_owned(),
            )
        })?;
        if (new_key.bits() as u64) < self.policy().min_key_bits {
            return broken(Rule::KeyRotation, "new key under the policy minimum");
        }
        if self.key_owner.contains_key(&new_key.id()) {
            return broken(Rule::KeyRotation, "the new key is already in use");
        }
        self.key_owner.insert(new_key.id(), author);
        if let Some(me) = self.identities.get_mut(&author) {
            me.key = new_key.clone();
        }
        Ok(())
    }

    fn rewrap(&mut self, author: &IdentityId, tx: Cid, keys: &[Rewrapped]) -> RuleResult {
        if keys.is_empty() {
            return broken(Rule::Encoding, "a rewrap of no keys");
        }
        for (index, k) in keys.iter().enumerate() {
            check_wrapped(&k.wrapped_key)?;
            let Some(r) = self.records.get_mut(&k.record) else {
                return broken(Rule::Version, format!("unknown record {}", k.record));
            };
            let owner = r.owner == *author;
            let Some(v) = r
                .versions
                .get_mut((k.version as usize).wrapping_sub(1))
                .map(Arc::make_mut)
            else {
                return broken(
                    Rule::Version,
                    format!("record {} has no version {}", k.record, k.version),
                );
            };
            if owner {
                v.owner_key = k.wrapped_key.clone();
            } else if let Some(g) = v.grants.get_mut(author) {
                Arc::make_mut(g).key = KeyRef {
                    tx,
                    index: index as u32,
                };
            } else {
                return broken(
                    Rule::NotGranted,
                    format!(
                        "{author} cannot open record {} version {}",
                        k.record, k.version
                    ),
                );
            }
        }
        Ok(())
    }

    fn publish(
        &mut self,
        author: &IdentityId,
        role: Role,
        record: RecordId,
        version: u32,
        v: VersionState,
        event: AuditEvent,
    ) -> RuleResult {
        if role != Role::Patient {
            return broken(Rule::Role, format!("a {role} cannot publish records"));
        }
        check_wrapped(&v.owner_key)?;
        match self.records.get_mut(&record) {
            None => {
                if version != 1 {
                    return broken(
                        Rule::Version,
                        format!("new record starts at version {version}, not 1"),
                    );
                }
                self.records.insert(
                    record,
                    RecordState {
                        owner: *author,
                        versions: imbl::vector![Arc::new(v)],
                        revoked: imbl::OrdMap::new(),
                        audit: AuditTrail::of(event),
                    },
                );
                self.owned.entry(*author).or_default().insert(record);
            }
            Some(r) => {
                if r.owner != *author {
                    return broken(
                        Rule::NotOwner,
                        format!("record {record} belongs to {}", r.owner),
                    );
                }
                if version as usize != r.versions.len() + 1 {
                    return broken(
                        Rule::Version,
                        format!("version {version} after {}", r.versions.len()),
                    );
                }
                r.versions.push_back(Arc::new(v));
                r.audit.push(event);
                self.pending_rekey.remove(&record);
            }
        }
        Ok(())
    }

    fn owned_record(
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

    fn grant(
        &mut self,
        author: &IdentityId,
        record: RecordId,
        grant: AccessGrant,
        wrapped_key: &[u8],
        now: u64,
        event: AuditEvent,
    ) -> RuleResult {
        let grantee_ok = self
            .identities
            .get(&grant.doctor)
            .is_some_and(|d| d.role == Role::Doctor);
        let r = self.owned_record(&record, author)?;
        if grant.version as usize != r.versions.len() {
            return broken(
                Rule::Version,
                format!(
                    "grants name the latest version of record {record} ({}), not {}",
                    r.versions.len(),
                    grant.version
                ),
            );
        }
        if r.versions.back().is_some_and(|v| v.exposed) {
            return broken(
                Rule::Rekey,
                format!(
                    "record {record} version {} was opened by emergency access: publish its next version (re-key) before granting",
                    grant.version
                ),
            );
        }
        if !grantee_ok {
            return broken(
                Rule::Grantee,
                format!("{} is not a registered doctor", grant.doctor),
            );
        }
        if grant.expires.is_some_and(|e| e <= now) {
            return broken(Rule::Expiry, "the grant expires before it is issued");
        }
        check_wrapped(wrapped_key)?;
        if grant
            .note
            .as_ref()
            .is_some_and(|n| n.len() > crate::limits::MAX_GRANT_NOTE || n.len() < 32)
        {
            return broken(Rule::Limits, "grant note of a bad size");
        }
        let doctor = grant.doctor;
        if let Some(v) = r.versions.back_mut().map(Arc::make_mut) {
            v.grants.insert(doctor, Arc::new(grant));
        }
        r.revoked.remove(&doctor);
        r.audit.push(event);
        self.granted.entry(doctor).or_default().insert(record);
        Ok(())
    }

    fn revoke(
        &mut self,
        author: &IdentityId,
        record: RecordId,
        doctor: IdentityId,
        index: usize,
        height: u64,
        event: AuditEvent,
    ) -> RuleResult {
        let r = self.owned_record(&record, author)?;
        let mut had = false;
        for v in r.versions.iter_mut() {
            if v.grants.contains_key(&doctor) {
                had |= Arc::make_mut(v).grants.remove(&doctor).is_some();
            }
        }
        if !had {
            return broken(
                Rule::NotGranted,
                format!("{doctor} holds no grant on {record}"),
            );
        }
        r.revoked.insert(doctor, height);
        r.audit.push(event);
        if let Some(set) = self.granted.get_mut(&doctor) {
            set.remove(&record);
        }
        self.pending_rekey.entry(record).or_insert(index);
        Ok(())
    }

    fn authority_vote(
        &mut self,
        author: &IdentityId,
        role: Role,
        change: &AuthorityChangeKind,
    ) -> RuleResult {
        if role != Role::Authority || !self.authorities.contains_key(author) {
            return broken(
                Rule::AuthorityChange,
                format!("{author} is not an authority in effect"),
            );
        }
        match change {
            AuthorityChangeKind::Add { key, validator } => {
                let key = PublicKey::from_spki_der(key)
                    .map_err(|e| (Rule::AuthorityChange, format!("new authority key: {e}")))?;
                if (key.bits() as u64) < self.policy().min_key_bits {
                    return broken(
                        Rule::AuthorityChange,
                        "new authority key under the policy minimum",
                    );
                }
                if self.key_owner.contains_key(&key.id()) {
                    return broken(
                        Rule::AuthorityChange,
                        "the new authority's key is already registered",
                    );
                }
                if validator.is_some()
                    && self.authorities.values().any(|a| a.validator == *validator)
                {
                    return broken(
                        Rule::AuthorityChange,
                        "the validator key is already an authority's",
                    );
                }
            }
            AuthorityChangeKind::Remove { authority } => {
                if !self.authorities.contains_key(authority) {
                    return broken(
                        Rule::AuthorityChange,
                        format!("{authority} is not an authority"),
                    );
                }
                if self.authorities.len() == 1 {
                    return broken(
                        Rule::AuthorityChange,
                        "the last authority cannot be removed",
                    );
                }
            }
        }
        let voters = self.votes.entry(change.clone()).or_default();
        if !voters.insert(*author) {
            return broken(
                Rule::AuthorityChange,
                format!("{author} already voted for this change"),
            );
        }
        let current: Vec<IdentityId> = self.authorities.keys().copied().collect();
        let yes = voters.iter().filter(|v| current.contains(v)).count();
        if !is_quorum(yes, current.len()) {
            return Ok(());
        }
        self.votes.remove(change);
        match change {
            AuthorityChangeKind::Add { key, validator } => {
                let key = PublicKey::from_spki_der(key)
                    .map_err(|e| (Rule::AuthorityChange, e.to_string()))?;
                let id = key.id();
                self.key_owner.insert(id, id);
                self.identities.insert(
                    id,
                    IdentityState {
                        role: Role::Authority,
                        key: key.clone(),
                        seq: 0,
                        licence: None,
                        endorser: None,
                    },
                );
                self.authorities.insert(
                    id,
                    Authority {
                        id,
                        key,
                        validator: *validator,
                    },
                );
                if let Some(v) = validator {
                    self.validator_updates.push(ValidatorUpdate {
                        validator: *v,
                        power: 10,
                    });
                }
            }
            AuthorityChangeKind::Remove { authority } => {
                if let Some(a) = self.authorities.remove(authority)
                    && let Some(v) = a.validator
                {
                    self.validator_updates.push(ValidatorUpdate {
                        validator: v,
                        power: 0,
                    });
                }
                // Votes by the removed authority no longer count.
                let keys: Vec<AuthorityChangeKind> = self.votes.keys().cloned().collect();
                for k in keys {
                    if let Some(v) = self.votes.get_mut(&k) {
                        v.remove(authority);
                    }
                }
            }
        }
        Ok(())
    }

    // ---- break-glass emergency access --------------------------------------------------------

    fn emergency_shares(
        &mut self,
        author: &IdentityId,
        record: RecordId,
        version: u32,
        threshold: u8,
        shares: &[WrappedShare],
        event: AuditEvent,
    ) -> RuleResult {
        let authorities: Vec<IdentityId> = self.authorities.keys().copied().collect();
        let r = self.owned_record(&record, author)?;
        if version as usize != r.versions.len() {
            return broken(
                Rule::Version,
                format!(
                    "emergency shares name the latest version of record {record} ({}), not {version}",
                    r.versions.len()
                ),
            );
        }
        let Some(v) = r.versions.back_mut().map(Arc::make_mut) else {
            return broken(Rule::Version, format!("unknown record {record}"));
        };
        if v.emergency.is_some() {
            return broken(
                Rule::Emergency,
                format!("record {record} version {version} is already split"),
            );
        }
        let n = shares.len();
        if n != authorities.len() {
            return broken(
                Rule::Emergency,
                format!(
                    "{n} shares for {} authorities: one share per authority in effect",
                    authorities.len()
                ),
            );
        }
        let k = usize::from(threshold);
        if k < 2 || k > n || !is_quorum(k, n) {
            return broken(
                Rule::Emergency,
                format!(
                    "a threshold of {k} of {n}: at least 2 and more than two thirds, as a certificate needs"
                ),
            );
        }
        for (i, s) in shares.iter().enumerate() {
            if !authorities.contains(&s.authority)
                || shares[..i].iter().any(|t| t.authority == s.authority)
            {
                return broken(
                    Rule::Emergency,
                    format!("share {} is not for a distinct authority in effect", i + 1),
                );
            }
            check_wrapped(&s.wrapped)?;
        }
        v.emergency = Some(std::sync::Arc::new(EmergencySplit {
            threshold,
            shares: shares.to_vec(),
        }));
        r.audit.push(event);
        Ok(())
    }

    fn emergency_access(
        &mut self,
        role: Role,
        req: EmergencyRequest<'_>,
        event: AuditEvent,
    ) -> RuleResult {
        let record = req.record;
        if role != Role::Doctor {
            return broken(
                Rule::Role,
                format!("a {role} cannot request emergency access: only a registered doctor"),
            );
        }
        if req.purpose != Purpose::EmergencyTreatment {
            return broken(
                Rule::Emergency,
                format!(
                    "emergency access is for emergency treatment (ETREAT), not {}",
                    req.purpose.code()
                ),
            );
        }
        if !(crate::limits::MIN_EMERGENCY_WINDOW..=crate::limits::MAX_EMERGENCY_WINDOW)
            .contains(&req.window)
        {
            return broken(
                Rule::Emergency,
                format!(
                    "a window of {} s ({} s to {} s)",
                    req.window,
                    crate::limits::MIN_EMERGENCY_WINDOW,
                    crate::limits::MAX_EMERGENCY_WINDOW
                ),
            );
        }
        if req.justification.len() < 32
            || req.justification.len() > crate::limits::MAX_JUSTIFICATION
        {
            return broken(Rule::Limits, "emergency justification of a bad size");
        }
        let doctor = event.author;
        let now = event.time;
        let open: Vec<&Emergency> = self
            .emergencies
            .values()
            .filter(|e| e.doctor == doctor && e.open_at(now))
            .collect();
        if open
            .iter()
            .any(|e| e.record == record && e.version == req.version)
        {
            return broken(
                Rule::Emergency,
                format!("{doctor} already has an open emergency request on record {record}"),
            );
        }
        if open.len() >= crate::limits::MAX_OPEN_EMERGENCIES {
            return broken(
                Rule::Emergency,
                format!(
                    "{doctor} already has {} emergency requests open (at most {})",
                    open.len(),
                    crate::limits::MAX_OPEN_EMERGENCIES
                ),
            );
        }
        let in_effect = |id: &IdentityId| self.authorities.contains_key(id);
        let Some(r) = self.records.get_mut(&record) else {
            return broken(Rule::Version, format!("unknown record {record}"));
        };
        if req.version as usize != r.versions.len() {
            return broken(
                Rule::Version,
                format!(
                    "emergency requests name the latest version of record {record} ({}), not {}",
                    r.versions.len(),
                    req.version
                ),
            );
        }
        let Some(split) = r.versions.back().and_then(|v| v.emergency.clone()) else {
            return broken(
                Rule::Emergency,
                format!("record {record} has no emergency shares (its owner did not opt in)"),
            );
        };
        let holders = split
            .shares
            .iter()
            .filter(|s| in_effect(&s.authority))
            .count();
        if holders < usize::from(split.threshold) {
            return broken(
                Rule::Emergency,
                format!(
                    "only {holders} of the authorities holding shares of record {record} are still in effect, {} are needed: its owner must re-key it",
                    split.threshold
                ),
            );
        }
        let e = Emergency {
            request: event.tx,
            record,
            version: req.version,
            owner: r.owner,
            doctor,
            purpose: req.purpose,
            justification: req.justification.to_vec(),
            height: event.height,
            time: now,
            expires: now.saturating_add(req.window),
            threshold: split.threshold,
            holders: split.shares.iter().map(|s| s.authority).collect(),
            releases: Vec::new(),
            review: None,
        };
        r.audit.push(event);
        self.emergencies.insert(e.request, e);
        Ok(())
    }

    fn share_release(
        &mut self,
        role: Role,
        request: &crate::cid::Cid,
        index: u8,
        wrapped: &[u8],
        event: &dyn Fn(AuditKind) -> AuditEvent,
    ) -> RuleResult {
        let Some(e) = self.emergencies.get(request) else {
            return broken(Rule::Emergency, format!("no emergency request {request}"));
        };
        let ev = event(AuditKind::ShareReleased {
            request: *request,
            doctor: e.doctor,
            index,
        });
        let (author, now) = (ev.author, ev.time);
        if role != Role::Authority || !self.authorities.contains_key(&author) {
            return broken(
                Rule::Role,
                format!("{author} is not an authority in effect"),
            );
        }
        if !e.open_at(now) {
            return broken(
                Rule::Emergency,
                format!("the window of emergency request {request} is over"),
            );
        }
        let Some(r) = self.records.get_mut(&e.record) else {
            return broken(Rule::Version, format!("unknown record {}", e.record));
        };
        if r.versions.len() as u32 != e.version {
            return broken(
                Rule::Emergency,
                format!("record {} was re-keyed since the request", e.record),
            );
        }
        if index == 0 || e.holders.get(usize::from(index) - 1) != Some(&author) {
            return broken(
                Rule::Emergency,
                format!("{author} does not hold share {index} of this request"),
            );
        }
        if e.releases.iter().any(|x| x.index == index) {
            return broken(
                Rule::Emergency,
                format!("share {index} of request {request} is already released"),
            );
        }
        check_wrapped(wrapped)?;
        if let Some(v) = r.versions.back_mut().map(Arc::make_mut) {
            v.exposed = true;
        }
        r.audit.push(ev.clone());
        if let Some(e) = self.emergencies.get_mut(request) {
            e.releases.push(Release {
                authority: author,
                index,
                height: ev.height,
                tx: ev.tx,
                wrapped: wrapped.to_vec(),
            });
        }
        Ok(())
    }

    fn review(
        &mut self,
        role: Role,
        request: &crate::cid::Cid,
        outcome: ReviewOutcome,
        event: &dyn Fn(AuditKind) -> AuditEvent,
    ) -> RuleResult {
        let Some(e) = self.emergencies.get(request) else {
            return broken(Rule::Emergency, format!("no emergency request {request}"));
        };
        let ev = event(AuditKind::Reviewed {
            request: *request,
            doctor: e.doctor,
            outcome,
        });
        if role != Role::Authority || !self.authorities.contains_key(&ev.author) {
            return broken(
                Rule::Role,
                format!("{} is not an authority in effect", ev.author),
            );
        }
        if self.identities.get(&e.doctor).and_then(|d| d.endorser) == Some(ev.author) {
            return broken(
                Rule::Emergency,
                format!(
                    "{} endorsed the doctor: another authority reviews the access",
                    ev.author
                ),
            );
        }
        if let Some(r) = &e.review {
            return broken(
                Rule::Emergency,
                format!(
                    "emergency request {request} was reviewed already by {}",
                    r.authority
                ),
            );
        }
        let record = e.record;
        if let Some(e) = self.emergencies.get_mut(request) {
            e.review = Some(ReviewInfo {
                authority: ev.author,
                outcome,
                height: ev.height,
                tx: ev.tx,
            });
        }
        if let Some(r) = self.records.get_mut(&record) {
            r.audit.push(ev);
        }
        Ok(())
    }
}

/// An `EmergencyAccess` transaction's fields.
struct EmergencyRequest<'a> {
    record: RecordId,
    version: u32,
    purpose: Purpose,
    justification: &'a [u8],
    window: u64,
}
