//! Break-glass emergency access (`docs/SECURITY.md`, "Emergency access").
//!
//! * The owner opts a record in ([`Vault::enable_emergency`], or
//!   [`PublishOptions::emergency`](crate::vault::PublishOptions) when publishing): the latest
//!   version's data key is split among the network's authorities, more than half of them
//!   needed, each share wrapped to its authority and committed to on the ledger.
//! * A registered doctor breaks the glass ([`Vault::request_emergency`]): an `EmergencyAccess`
//!   transaction, with an encrypted justification, committed before anything is released.
//! * Each authority (its node automatically, or its operator) releases its share re-wrapped to
//!   that doctor ([`Vault::release_share`], [`release_share_tx`]).
//! * With enough genuine shares on the chain the doctor's reads open the version
//!   ([`Vault::open_record`] finds them); every share is checked against its commitment first,
//!   so a wrong share is named, never combined into a wrong key.
//! * The version is then "exposed": it takes no new grant until the owner re-keys it, which her
//!   next grant does by itself ([`Vault::rekey`] does it alone); an authority reviews the
//!   access afterwards ([`Vault::review_emergency`]).

use std::time::Duration;

use crate::cid::Cid;
use crate::envelope::key::DataKey;
use crate::envelope::shares::{self, KeyShare};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId};
use crate::ledger::state::{Access, Emergency, EmergencySplit};
use crate::ledger::{ReviewOutcome, SignedTx, State, Tx, TxBody, WrappedShare};
use crate::record::{Purpose, RecordId};
use crate::vault::Vault;
use crate::vault::read::{open_text, seal_text};

/// How long shares may be released after a request, unless the doctor asks otherwise.
pub const DEFAULT_EMERGENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// One released share, as the requesting doctor checked it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShareCheck {
    /// The releasing authority.
    pub authority: IdentityId,
    /// The share's index.
    pub index: u8,
    /// Whether it unwrapped and matched the commitment the owner signed.
    pub valid: bool,
}

/// An emergency request as its doctor sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmergencyStatus {
    /// The request as the chain has it.
    #[serde(flatten)]
    pub emergency: Emergency,
    /// Every release, checked.
    pub shares: Vec<ShareCheck>,
    /// Whether the doctor can open the version now (enough genuine shares, window open by
    /// this vault's clock, the version still the latest).
    pub open: bool,
}

fn justification_label(record: &RecordId, version: u32, doctor: &IdentityId) -> Vec<u8> {
    let mut label = b"medshare/v3/emergency-justification".to_vec();
    label.extend_from_slice(record.as_bytes());
    label.extend_from_slice(&version.to_be_bytes());
    label.extend_from_slice(doctor.as_bytes());
    label
}

/// The share threshold medshare uses for `n` authorities: more than two thirds, as for
/// certificates (at least 2): one authority down does not stop an emergency from n = 4.
pub fn default_threshold(n: usize) -> usize {
    (n * 2 / 3 + 1).max(2)
}

/// The `EmergencyShares` body splitting `dek` (the key of `record`'s `version`) among the
/// authorities in effect in `state`.
pub(crate) fn shares_body(
    state: &State,
    record: &RecordId,
    version: u32,
    dek: &DataKey,
) -> Result<TxBody> {
    let authorities = state.authorities();
    if authorities.len() < 2 {
        return Err(Error::InvalidInput(
            "emergency access needs a network of at least two authorities (no single one may open a record)".into(),
        ));
    }
    let k = default_threshold(authorities.len());
    let split = shares::split(dek, k, authorities.len())?;
    // Never publish a split that does not give the key back.
    if shares::combine(&split[..k])?.expose() != dek.expose() {
        return Err(Error::KeyCommitment);
    }
    let shares = split
        .iter()
        .zip(&authorities)
        .map(|(s, a)| {
            Ok(WrappedShare {
                authority: a.id,
                wrapped: s.wrap_to_authority(&a.key, record, version)?,
                commitment: s.commitment(record, version),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TxBody::EmergencyShares {
        record: *record,
        version,
        threshold: k as u8,
        shares,
    })
}

/// Whether a record's key can be split among the authorities in effect in `state` (two to
/// [`shares::MAX_SHARES`] of them).
pub(crate) fn can_split(state: &State) -> bool {
    (2..=shares::MAX_SHARES).contains(&state.authorities().len())
}

/// The justification of `request`, decrypted as `reader` (the record's owner, the doctor, or
/// an authority holding a share): what a node reads before releasing on its own.
pub fn emergency_justification(state: &State, reader: &Identity, request: &Cid) -> Result<String> {
    let e = state
        .emergency(request)
        .ok_or_else(|| Error::InvalidInput(format!("no emergency request {request}")))?;
    let (&count, sealed) = e
        .justification
        .split_first()
        .ok_or_else(|| Error::MalformedEnvelope("empty justification".into()))?;
    open_text(
        reader,
        sealed,
        usize::from(count),
        &justification_label(&e.record, e.version, &e.doctor),
        "emergency justification",
    )
}

/// The `ShareRelease` of `authority` for `request`: its share unwrapped and wrapped again to the
/// requesting doctor, signed with sequence number `seq` at `time`. What a node does on its own
/// (and [`Vault::release_share`] for an operator); the state must hold the request, open.
pub fn release_share_tx(
    state: &State,
    authority: &Identity,
    request: &Cid,
    seq: u64,
    time: u64,
) -> Result<SignedTx> {
    let e = state
        .emergency(request)
        .ok_or_else(|| Error::InvalidInput(format!("no emergency request {request}")))?;
    let pos = e
        .holders
        .iter()
        .position(|h| *h == authority.id())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} holds no share of emergency request {request}",
                authority.id()
            ))
        })?;
    let split = version_split(state, &e.record, e.version)?;
    let index = (pos + 1) as u8;
    let held = split.shares.get(pos).ok_or_else(|| {
        Error::InvalidInput(format!(
            "emergency request {request} names no share {}",
            pos + 1
        ))
    })?;
    let share =
        KeyShare::unwrap_as_authority(authority, &held.wrapped, &e.record, e.version, index)?;
    if !share.matches(&e.record, e.version, &held.commitment) {
        return Err(Error::KeyCommitment);
    }
    let doctor = state
        .identity(&e.doctor)
        .ok_or_else(|| Error::UnknownIdentity(e.doctor.to_string()))?
        .1;
    let body = TxBody::ShareRelease {
        request: *request,
        index,
        wrapped: share.wrap_to_requester(doctor, request)?,
    };
    SignedTx::sign(
        Tx {
            genesis: state.genesis_cid(),
            author: authority.id(),
            seq,
            time,
            body,
        },
        authority,
    )
}

/// The split of `record`'s `version` if it is still the latest (releases are for it only).
fn version_split(state: &State, record: &RecordId, version: u32) -> Result<EmergencySplit> {
    let info = state
        .record(record)
        .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
    if info.version != version {
        return Err(Error::EmergencyPending {
            record: record.to_string(),
            detail: format!("the request is for version {version}, the record was re-keyed since"),
        });
    }
    state
        .emergency_split(record)
        .ok_or_else(|| Error::InvalidInput(format!("record {record} has no emergency shares")))
}

impl Vault {
    /// Opts the latest version of `record` (owned by `patient`) into break-glass access: its key
    /// split among the network's authorities (more than two thirds needed). Later versions
    /// (re-keys) are split again. Returns the transaction's CID.
    pub async fn enable_emergency(&mut self, patient: &Identity, record: &RecordId) -> Result<Cid> {
        self.ready_to_write().await?;
        let (access, dek) = self.unlock_to_rewrap(patient, record).await?;
        let body = shares_body(&self.state, record, access.version, &dek)?;
        let tx = self.next_tx(patient, 0, body);
        self.probe(&tx)?;
        let tx = self.sign_tx(tx, patient).await?;
        let cid = tx.cid;
        self.submit(vec![tx]).await?;
        Ok(cid)
    }

    /// Breaks the glass: `doctor` asks for emergency access to the latest version of `record`
    /// for emergency treatment, with a `justification` the owner, the doctor and the
    /// authorities holding shares can read (nobody else). Shares may be released during
    /// `window` (default 24 h, at most 72 h). Returns the request (its transaction CID).
    pub async fn request_emergency(
        &mut self,
        doctor: &Identity,
        record: &RecordId,
        justification: &str,
        window: Option<Duration>,
    ) -> Result<Cid> {
        self.ready_to_write().await?;
        if justification.trim().is_empty() {
            return Err(Error::InvalidInput(
                "an emergency request states its justification".into(),
            ));
        }
        let info = self.record(record)?;
        let window = window.unwrap_or(DEFAULT_EMERGENCY_WINDOW).as_secs();
        let probe_body = |justification: Vec<u8>| TxBody::EmergencyAccess {
            record: *record,
            version: info.version,
            purpose: Purpose::EmergencyTreatment,
            justification,
            window,
        };
        self.probe(&self.next_tx(doctor, 0, probe_body(vec![0; 32])))?;
        let split = version_split(&self.state, record, info.version)?;
        let mut readers = vec![self.key_of(&info.owner)?, doctor.public().clone()];
        for s in &split.shares {
            readers.push(self.key_of(&s.authority)?);
        }
        let refs: Vec<&crate::PublicKey> = readers.iter().collect();
        let sealed = seal_text(
            &refs,
            &justification_label(record, info.version, &doctor.id()),
            justification,
            "emergency justification",
            crate::limits::MAX_JUSTIFICATION - 1,
        )?;
        let mut counted = vec![readers.len() as u8];
        counted.extend_from_slice(&sealed);
        let tx = self
            .sign_tx(self.next_tx(doctor, 0, probe_body(counted)), doctor)
            .await?;
        let cid = tx.cid;
        self.submit(vec![tx]).await?;
        Ok(cid)
    }

    fn key_of(&self, id: &IdentityId) -> Result<crate::PublicKey> {
        Ok(self
            .state
            .identity(id)
            .ok_or_else(|| Error::UnknownIdentity(id.to_string()))?
            .1
            .clone())
    }

    /// Releases `authority`'s share of the emergency request `request` to its doctor (what a
    /// node set to `emergency: manual` needs its operator to do). Returns the transaction CID.
    pub async fn release_share(&mut self, authority: &Identity, request: &Cid) -> Result<Cid> {
        self.ready_to_write().await?;
        let seq = self.state.last_seq(&authority.id()) + 1;
        let tx = release_share_tx(&self.state, authority, request, seq, self.now())?;
        let cid = tx.cid;
        self.submit(vec![tx]).await?;
        Ok(cid)
    }

    /// Records `authority`'s review of the emergency access `request`. Returns the
    /// transaction CID.
    pub async fn review_emergency(
        &mut self,
        authority: &Identity,
        request: &Cid,
        outcome: ReviewOutcome,
    ) -> Result<Cid> {
        self.ready_to_write().await?;
        let tx = self.next_tx(
            authority,
            0,
            TxBody::Review {
                request: *request,
                outcome,
            },
        );
        self.probe(&tx)?;
        let tx = self.sign_tx(tx, authority).await?;
        let cid = tx.cid;
        self.submit(vec![tx]).await?;
        Ok(cid)
    }

    /// Every emergency access on the chain, oldest first; with `unreviewed`, only those no
    /// authority has reviewed (what `medshare audit --emergency` lists).
    pub fn emergencies(&self, unreviewed: bool) -> Vec<Emergency> {
        self.state.emergencies(unreviewed)
    }

    /// The justification of `request`, decrypted as `reader` (the record's owner, the doctor,
    /// or an authority holding a share).
    pub fn emergency_justification(&self, reader: &Identity, request: &Cid) -> Result<String> {
        emergency_justification(&self.state, reader, request)
    }

    fn emergency(&self, request: &Cid) -> Result<&Emergency> {
        self.state
            .emergency(request)
            .ok_or_else(|| Error::InvalidInput(format!("no emergency request {request}")))
    }

    /// `request` as its doctor sees it: every released share unwrapped and checked against its
    /// commitment, and whether the record opens.
    pub fn emergency_status(&self, doctor: &Identity, request: &Cid) -> Result<EmergencyStatus> {
        let e = self.emergency(request)?.clone();
        let (shares, key) = self.check_shares(doctor, &e);
        let open = key.is_ok();
        Ok(EmergencyStatus {
            emergency: e,
            shares: shares
                .into_iter()
                .map(|(r, s)| ShareCheck {
                    authority: r.0,
                    index: r.1,
                    valid: s.is_some(),
                })
                .collect(),
            open,
        })
    }

    /// The releases of `e` unwrapped as `doctor` and checked, and the key if enough are genuine.
    #[allow(clippy::type_complexity)]
    fn check_shares(
        &self,
        doctor: &Identity,
        e: &Emergency,
    ) -> (Vec<((IdentityId, u8), Option<KeyShare>)>, Result<DataKey>) {
        let pending = |detail: String| Error::EmergencyPending {
            record: e.record.to_string(),
            detail,
        };
        let split = match version_split(&self.state, &e.record, e.version) {
            Ok(s) => s,
            Err(err) => return (Vec::new(), Err(err)),
        };
        let mut checked = Vec::new();
        for r in &e.releases {
            let genuine = split
                .shares
                .get(usize::from(r.index).wrapping_sub(1))
                .and_then(|held| {
                    let s = KeyShare::unwrap_as_requester(doctor, &r.wrapped, &e.request, r.index)
                        .ok()?;
                    s.matches(&e.record, e.version, &held.commitment)
                        .then_some(s)
                });
            checked.push(((r.authority, r.index), genuine));
        }
        let good: Vec<KeyShare> = checked.iter().filter_map(|(_, s)| s.clone()).collect();
        let bad: Vec<String> = checked
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|((a, i), _)| format!("share {i} from {a} fails its commitment"))
            .collect();
        let k = usize::from(e.threshold);
        let key = if e.doctor != doctor.id() {
            Err(pending(format!("request {} is {}'s", e.request, e.doctor)))
        } else if !e.open_at(self.now()) {
            Err(pending(format!(
                "the window of request {} is over",
                e.request
            )))
        } else if good.len() < k {
            let mut detail = format!(
                "{} genuine share(s) of the {k} needed released for request {}",
                good.len(),
                e.request
            );
            for b in &bad {
                detail.push_str("; ");
                detail.push_str(b);
            }
            Err(pending(detail))
        } else {
            shares::combine(&good[..k])
        };
        (checked, key)
    }

    /// The access and key of `reader`'s open emergency request on the latest version of
    /// `record`, if it has one; `None` if it has none at all.
    pub(crate) fn emergency_unlock(
        &self,
        reader: &Identity,
        record: &RecordId,
    ) -> Result<Option<(Access, DataKey)>> {
        let info = self
            .state
            .record(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        let mine: Vec<&Emergency> = self
            .state
            .emergencies
            .values()
            .filter(|e| e.record == *record && e.doctor == reader.id() && e.version == info.version)
            .collect();
        let mut last = None;
        for e in mine.iter().rev() {
            match self.check_shares(reader, e).1 {
                Ok(dek) => {
                    let access = Access {
                        version: info.version,
                        content: info.content,
                        size: info.size,
                        commitment: info.commitment,
                        key: crate::ledger::WrappedKey::None,
                    };
                    return Ok(Some((access, dek)));
                }
                Err(err) => last = Some(err),
            }
        }
        last.map_or(Ok(None), Err)
    }

    /// Re-keys `record` (owned by `patient`): its next version under a new key, granted again
    /// to the doctors whose grants are unexpired, split again if it was. What ends a break-glass
    /// access for good (the emergency doctor's key opens nothing new); a patient's grant does
    /// it by itself when needed. Returns the new version.
    pub async fn rekey(&mut self, patient: &Identity, record: &RecordId) -> Result<u32> {
        self.ready_to_write().await?;
        let now = self.now();
        let old = self.state.contents(record);
        let rekey = self
            .rekey_txs(
                patient,
                record,
                |g| !g.expired_at(now),
                0,
                &std::collections::BTreeMap::new(),
            )
            .await?;
        self.submit_pinned(rekey.txs, rekey.root).await?;
        self.retire(old).await?;
        Ok(rekey.version)
    }
}
