//! Snapshots of the verified chain state, so opening a chain costs what the blocks since the
//! snapshot cost, not the whole history.
//!
//! A snapshot is the [`State`] after a certified block, written by the process that verified it
//! (`docs/FORMAT.md` §13 has the bytes). It is a cache of that verification, kept beside the
//! blocks by stores that keep private files ([`crate::store::BlockStore::get_snapshot`]: the
//! filesystem store), never fetched from another party. Loading one checks, before anything is
//! trusted:
//!
//! * its CRC-32 trailer and its format line (a torn or damaged file is refused);
//! * that its genesis block is in the store (by CID) and is the network's;
//! * that the certificate it names is in the store, certifies its head block at its height,
//!   over its transaction log (size and RFC 6962 root), with a state-map root equal to the one
//!   recomputed from the snapshot's records, doctors and authorities, signed by more than two
//!   thirds of its authorities ([`State::apply_certificate`]).
//!
//! The blocks after it are then verified one by one as [`chain::extend`] always does. A snapshot
//! that fails any check, or whose head is not an ancestor of the chain's head, is ignored and
//! the chain is verified from genesis. `verify` never reads one.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{IdentityId, PublicKey, Role};
use crate::ledger::chain;
use crate::ledger::codec::{AuthorityChangeKind, CertificateObject, ReviewOutcome, WrappedShare};
use crate::ledger::merkle::{Frontier, Hash};
use crate::ledger::state::{
    AccessGrant, AuditEvent, AuditKind, Authority, Emergency, EmergencySplit, IdentityState,
    KeyRef, RecordState, Release, ReviewInfo, State, ValidatorUpdate, VersionState,
};
use crate::record::{Purpose, RecordId};
use crate::store::Store;

/// The format line a snapshot starts with.
pub const MAGIC: &[u8; 20] = b"medshare-snapshot/2\n";

/// Bytes of the trailer: the CRC-32 (IEEE, as zlib's) of everything before it, little-endian.
pub const CHECKSUM: usize = 4;

/// Records per independently decodable chunk of the records section.
const RECORDS_PER_CHUNK: usize = 256;

/// Largest snapshot read.
pub use crate::limits::MAX_SNAPSHOT;

/// A snapshot is written once the blocks plus the transactions since the last one (or since
/// genesis) reach this: opening then verifies less than that after loading it (the work is a
/// certificate per block and a signature per transaction), and writing it (`O(state)`) is
/// spread over as much.
pub const INTERVAL: u64 = 256;

/// Whether a state is [`INTERVAL`] past a snapshot at `height` with `transactions` in its log.
pub fn due(state: &State, height: u64, transactions: u64) -> bool {
    let work = state
        .height()
        .saturating_sub(height)
        .saturating_add(state.log_size().saturating_sub(transactions));
    work >= INTERVAL
}

/// How a chain was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum Opened {
    /// Verified from the genesis block.
    Genesis {
        /// Why no snapshot was used (`None`: there was none to use).
        #[serde(skip_serializing_if = "Option::is_none")]
        rejected: Option<Rejected>,
    },
    /// From a snapshot, then the blocks after it.
    Snapshot {
        /// The snapshot's height.
        height: u64,
        /// Transactions in the log at the snapshot.
        transactions: u64,
        /// Blocks verified after it.
        replayed: u64,
    },
}

/// Why a snapshot was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// It failed a check (damaged, another format, inconsistent with its certificate).
    Invalid,
    /// It belongs to another network than the one asked for.
    OtherNetwork,
    /// Its head is not on the chain being opened (a different or older history).
    OffChain,
}

impl Rejected {
    /// Its name: `invalid`, `other-network`, `off-chain` (what serialization and the bindings
    /// show).
    pub fn name(&self) -> &'static str {
        match self {
            Rejected::Invalid => "invalid",
            Rejected::OtherNetwork => "other-network",
            Rejected::OffChain => "off-chain",
        }
    }
}

impl serde::Serialize for Rejected {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::StoreCorrupt(format!("snapshot: {detail}"))
}

// ---- writing ---------------------------------------------------------------------------------

struct Enc {
    out: Vec<u8>,
}

impl Enc {
    fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn b(&mut self, bytes: &[u8]) {
        self.u(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn cid(&mut self, c: &Cid) {
        self.b(&c.to_bytes());
    }

    fn id(&mut self, id: &IdentityId) {
        self.raw(id.as_bytes());
    }

    fn flag(&mut self, present: bool) {
        self.out.push(u8::from(present));
    }

    fn opt_u(&mut self, v: Option<u64>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.u(v);
        }
    }

    fn opt_id(&mut self, v: &Option<IdentityId>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.id(v);
        }
    }

    fn opt32(&mut self, v: &Option<[u8; 32]>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.raw(v);
        }
    }

    fn purpose(&mut self, p: Purpose) {
        self.b(p.code().as_bytes());
    }

    /// `v` by its place in `table` plus one, or 0 and `v` itself (written by `raw`).
    fn indexed<K: Eq + std::hash::Hash>(
        &mut self,
        table: &std::collections::HashMap<K, u64>,
        v: &K,
        raw: impl FnOnce(&mut Self, &K),
    ) {
        match table.get(v) {
            Some(i) => self.u(i + 1),
            None => {
                self.u(0);
                raw(self, v);
            }
        }
    }

    /// An id of the records section, by its place in the identities section.
    fn rid(&mut self, t: &Tables, id: &IdentityId) {
        self.indexed(&t.ids, id, Enc::id);
    }

    /// A block CID of an audit event, by its place in the blocks section.
    fn block(&mut self, t: &Tables, c: &Cid) {
        self.indexed(&t.blocks, c, Enc::cid);
    }
}

/// What the records section refers to by index: the identities (sorted, as their section
/// lists them) and the blocks of the audit events (in order of first use).
struct Tables {
    ids: std::collections::HashMap<IdentityId, u64>,
    blocks: std::collections::HashMap<Cid, u64>,
}

/// Key table: every public key once, referred to by index.
struct Keys {
    index: BTreeMap<IdentityId, u64>,
    ders: Vec<Vec<u8>>,
}

impl Keys {
    fn of(&mut self, key: &PublicKey) -> u64 {
        let n = self.ders.len() as u64;
        *self.index.entry(key.id()).or_insert_with(|| {
            self.ders.push(key.to_spki_der().to_vec());
            n
        })
    }
}

impl State {
    /// This state as snapshot bytes (`docs/FORMAT.md` §13). `None` unless the head block is
    /// certified (only a certified state is snapshotted: loading checks that certificate).
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        let head_cert = self.head_cert?;
        let mut keys = Keys {
            index: BTreeMap::new(),
            ders: Vec::new(),
        };
        let mut identities: Vec<(&IdentityId, &IdentityState)> = self.identities.iter().collect();
        identities.sort_unstable_by_key(|(id, _)| **id);
        let idents: Vec<u64> = identities.iter().map(|(_, s)| keys.of(&s.key)).collect();
        let auths: Vec<u64> = self.authorities.values().map(|a| keys.of(&a.key)).collect();

        let mut e = Enc {
            out: Vec::with_capacity(1 << 16),
        };
        e.raw(MAGIC);
        e.cid(&self.genesis.cid);
        e.u(self.height);
        e.cid(&self.head);
        e.cid(&head_cert);
        e.u(self.time);
        e.u(self.log.size());
        e.u(self.log.peaks().len() as u64);
        for p in self.log.peaks() {
            e.raw(p);
        }
        e.u(keys.ders.len() as u64);
        for d in &keys.ders {
            e.b(d);
        }
        e.u(auths.len() as u64);
        for (a, k) in self.authorities.values().zip(&auths) {
            e.u(*k);
            e.opt32(&a.validator);
        }
        e.u(self.votes.len() as u64);
        for (kind, voters) in &self.votes {
            match kind {
                AuthorityChangeKind::Add { key, validator } => {
                    e.raw(&[0]);
                    e.b(key);
                    e.opt32(validator);
                }
                AuthorityChangeKind::Remove { authority } => {
                    e.raw(&[1]);
                    e.id(authority);
                }
            }
            e.u(voters.len() as u64);
            for v in voters {
                e.id(v);
            }
        }
        e.u(self.vote_txs.len() as u64);
        for c in &self.vote_txs {
            e.cid(c);
        }
        e.u(identities.len() as u64);
        for ((id, s), k) in identities.iter().zip(&idents) {
            e.id(id);
            e.raw(&[s.role.code()]);
            e.u(*k);
            e.u(s.seq);
            e.flag(s.licence.is_some());
            if let Some(l) = &s.licence {
                e.b(l.as_bytes());
            }
            e.opt_id(&s.endorser);
        }
        let mut owners: Vec<(&IdentityId, &IdentityId)> = self.key_owner.iter().collect();
        owners.sort_unstable();
        e.u(owners.len() as u64);
        for (k, a) in owners {
            e.id(k);
            e.id(a);
        }
        let mut records: Vec<(&RecordId, &RecordState)> = self.records.iter().collect();
        records.sort_unstable_by_key(|(id, _)| **id);
        let mut tables = Tables {
            ids: identities
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (**id, i as u64))
                .collect(),
            blocks: std::collections::HashMap::new(),
        };
        // The trails (those still in the bytes of the snapshot this state was loaded from are
        // decoded here, on the writer's thread); one that does not decode stops the writing.
        let trails = records
            .iter()
            .map(|(_, r)| r.audit.events())
            .collect::<R<Vec<Vec<AuditEvent>>>>()
            .ok()?;
        let mut blocks = Vec::new();
        for a in trails.iter().flatten() {
            let n = blocks.len() as u64;
            tables.blocks.entry(a.block).or_insert_with(|| {
                blocks.push(a.block);
                n
            });
        }
        let records: Vec<(&RecordId, &RecordState, &[AuditEvent])> = records
            .into_iter()
            .zip(&trails)
            .map(|((id, r), t)| (id, r, &t[..]))
            .collect();
        e.u(blocks.len() as u64);
        for c in &blocks {
            e.cid(c);
        }
        e.u(records.len() as u64);
        let chunks: Vec<&[(&RecordId, &RecordState, &[AuditEvent])]> =
            records.chunks(RECORDS_PER_CHUNK).collect();
        let encoded = crate::platform::par_map(&chunks, |chunk| {
            let mut c = Enc {
                out: Vec::with_capacity(chunk.len() * 1024),
            };
            for (id, r, trail) in chunk.iter() {
                put_record(&mut c, &tables, id, r, trail);
            }
            c.out
        });
        e.u(encoded.len() as u64);
        for c in &encoded {
            e.b(c);
        }
        for index in [&self.granted, &self.owned] {
            let mut list: Vec<_> = index.iter().collect();
            list.sort_unstable_by_key(|(id, _)| **id);
            e.u(list.len() as u64);
            for (who, set) in list {
                e.id(who);
                e.u(set.len() as u64);
                for r in set {
                    e.raw(r.as_bytes());
                }
            }
        }
        let mut doctors: Vec<_> = self.doctor_roots.iter().collect();
        doctors.sort_unstable_by_key(|(id, _)| **id);
        e.u(doctors.len() as u64);
        for (d, (count, root)) in doctors {
            e.id(d);
            e.u(*count);
            e.raw(root);
        }
        e.u(self.emergencies.len() as u64);
        for em in self.emergencies.values() {
            put_emergency(&mut e, em);
        }
        e.u(self.pending_rekey.len() as u64);
        for (r, i) in &self.pending_rekey {
            e.raw(r.as_bytes());
            e.u(*i as u64);
        }
        e.u(self.validator_updates.len() as u64);
        for v in &self.validator_updates {
            e.raw(&v.validator);
            e.u(v.power);
        }
        let crc = crc32fast::hash(&e.out);
        e.raw(&crc.to_le_bytes());
        Some(e.out)
    }
}

fn put_record(e: &mut Enc, t: &Tables, id: &RecordId, r: &RecordState, trail: &[AuditEvent]) {
    e.raw(id.as_bytes());
    e.rid(t, &r.owner);
    e.u(r.versions.len() as u64);
    for v in &r.versions {
        e.cid(&v.content);
        e.u(v.size);
        e.raw(&v.commitment);
        e.b(&v.owner_key);
        e.u(v.grants.len() as u64);
        for g in v.grants.values() {
            e.rid(t, &g.doctor);
            e.u(g.version.into());
            e.opt_u(g.expires);
            e.purpose(g.purpose);
            e.flag(g.note.is_some());
            if let Some(n) = &g.note {
                e.b(n);
            }
            e.u(g.granted_at);
            e.cid(&g.key.tx);
            e.u(g.key.index.into());
        }
        e.flag(v.emergency.is_some());
        if let Some(s) = &v.emergency {
            e.u(s.threshold.into());
            e.u(s.shares.len() as u64);
            for w in &s.shares {
                e.id(&w.authority);
                e.b(&w.wrapped);
                e.raw(&w.commitment);
            }
        }
        e.flag(v.exposed);
    }
    e.u(r.revoked.len() as u64);
    for (d, h) in &r.revoked {
        e.rid(t, d);
        e.u(*h);
    }
    // The trail as one `bytes`, so a reader can keep it undecoded.
    let mut a = Enc {
        out: Vec::with_capacity(16 + trail.len() * 96),
    };
    a.u(trail.len() as u64);
    for ev in trail {
        put_audit(&mut a, t, ev);
    }
    e.b(&a.out);
}

fn put_audit(e: &mut Enc, t: &Tables, a: &AuditEvent) {
    e.u(a.height);
    e.block(t, &a.block);
    e.u(a.time);
    e.cid(&a.tx);
    e.rid(t, &a.author);
    match &a.kind {
        AuditKind::Published { version, content } => {
            e.raw(&[0]);
            e.u((*version).into());
            e.cid(content);
        }
        AuditKind::Granted {
            doctor,
            version,
            expires,
            purpose,
        } => {
            e.raw(&[1]);
            e.rid(t, doctor);
            e.u((*version).into());
            e.opt_u(*expires);
            e.purpose(*purpose);
        }
        AuditKind::Revoked { doctor } => {
            e.raw(&[2]);
            e.rid(t, doctor);
        }
        AuditKind::EmergencyEnabled {
            version,
            threshold,
            shares,
        } => {
            e.raw(&[3]);
            e.u((*version).into());
            e.u((*threshold).into());
            e.u((*shares).into());
        }
        AuditKind::Emergency {
            doctor,
            version,
            expires,
            purpose,
        } => {
            e.raw(&[4]);
            e.rid(t, doctor);
            e.u((*version).into());
            e.opt_u(*expires);
            e.purpose(*purpose);
        }
        AuditKind::ShareReleased {
            request,
            doctor,
            index,
        } => {
            e.raw(&[5]);
            e.cid(request);
            e.rid(t, doctor);
            e.u((*index).into());
        }
        AuditKind::Reviewed {
            request,
            doctor,
            outcome,
        } => {
            e.raw(&[6]);
            e.cid(request);
            e.rid(t, doctor);
            e.raw(&[outcome_code(*outcome)]);
        }
    }
}

fn outcome_code(o: ReviewOutcome) -> u8 {
    match o {
        ReviewOutcome::Justified => 0,
        ReviewOutcome::Unjustified => 1,
    }
}

fn put_emergency(e: &mut Enc, em: &Emergency) {
    e.cid(&em.request);
    e.raw(em.record.as_bytes());
    e.u(em.version.into());
    e.id(&em.owner);
    e.id(&em.doctor);
    e.purpose(em.purpose);
    e.b(&em.justification);
    e.u(em.height);
    e.u(em.time);
    e.u(em.expires);
    e.u(em.threshold.into());
    e.u(em.holders.len() as u64);
    for h in &em.holders {
        e.id(h);
    }
    e.u(em.releases.len() as u64);
    for r in &em.releases {
        e.id(&r.authority);
        e.u(r.index.into());
        e.u(r.height);
        e.cid(&r.tx);
        e.b(&r.wrapped);
    }
    e.flag(em.review.is_some());
    if let Some(r) = &em.review {
        e.id(&r.authority);
        e.raw(&[outcome_code(r.outcome)]);
        e.u(r.height);
        e.cid(&r.tx);
    }
}

// ---- reading ---------------------------------------------------------------------------------

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn u(&mut self) -> R<u64> {
        let at = self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(format!("integer out of range at byte {at}"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(format!("integer not in its shortest form at byte {at}"));
                }
                return Ok(v);
            }
        }
        Err(format!("integer out of range at byte {at}"))
    }

    fn small<T: TryFrom<u64>>(&mut self, what: &str) -> R<T> {
        let v = self.u()?;
        T::try_from(v).map_err(|_| format!("{what} {v} out of range"))
    }

    /// A count of items of at least `min` bytes each: never more than the bytes left allow.
    fn count(&mut self, min: usize) -> R<usize> {
        let n = self.u()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min.max(1) as u64) > left {
            return Err(format!(
                "a count of {n} at byte {} exceeds the file",
                self.pos
            ));
        }
        Ok(n as usize)
    }

    fn b(&mut self) -> R<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// A `bytes`, with the position its content starts at.
    fn b_at(&mut self) -> R<(usize, &'a [u8])> {
        let n = self.count(1)?;
        let at = self.pos;
        Ok((at, self.take(n)?))
    }

    fn arr<const N: usize>(&mut self) -> R<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn cid(&mut self) -> R<Cid> {
        let at = self.pos;
        Cid::from_bytes(self.b()?).map_err(|e| format!("CID at byte {at}: {e}"))
    }

    fn id(&mut self) -> R<IdentityId> {
        let at = self.pos;
        IdentityId::from_bytes(self.take(34)?).map_err(|e| format!("identity at byte {at}: {e}"))
    }

    fn record(&mut self) -> R<RecordId> {
        Ok(RecordId::from_bytes(self.arr()?))
    }

    fn flag(&mut self) -> R<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("flag {b} at byte {}", self.pos - 1)),
        }
    }

    fn opt_u(&mut self) -> R<Option<u64>> {
        Ok(if self.flag()? { Some(self.u()?) } else { None })
    }

    fn opt_id(&mut self) -> R<Option<IdentityId>> {
        Ok(if self.flag()? { Some(self.id()?) } else { None })
    }

    fn opt32(&mut self) -> R<Option<[u8; 32]>> {
        Ok(if self.flag()? {
            Some(self.arr()?)
        } else {
            None
        })
    }

    fn text(&mut self) -> R<String> {
        let at = self.pos;
        String::from_utf8(self.b()?.to_vec()).map_err(|_| format!("text at byte {at} is not UTF-8"))
    }

    fn purpose(&mut self) -> R<Purpose> {
        let code = self.b()?;
        Purpose::ALL
            .iter()
            .find(|p| p.code().as_bytes() == code)
            .copied()
            .ok_or_else(|| format!("unknown purpose `{}`", String::from_utf8_lossy(code)))
    }

    /// What [`Enc::indexed`] wrote: an entry of `table` (`what` names it in an error), or the
    /// value itself (read by `raw`).
    fn indexed<T: Copy>(
        &mut self,
        table: &[T],
        what: &str,
        raw: impl FnOnce(&mut Self) -> R<T>,
    ) -> R<T> {
        match self.u()? {
            0 => raw(self),
            i => usize::try_from(i - 1)
                .ok()
                .and_then(|i| table.get(i))
                .copied()
                .ok_or_else(|| format!("{what} index {i} out of range")),
        }
    }

    fn rid(&mut self, t: &Lookup) -> R<IdentityId> {
        self.indexed(&t.ids, "identity", Dec::id)
    }

    fn block(&mut self, t: &Lookup) -> R<Cid> {
        self.indexed(&t.blocks, "block", Dec::cid)
    }

    fn outcome(&mut self) -> R<ReviewOutcome> {
        match self.byte()? {
            0 => Ok(ReviewOutcome::Justified),
            1 => Ok(ReviewOutcome::Unjustified),
            b => Err(format!("review outcome {b}")),
        }
    }
}

/// The tables the records section refers to ([`Tables`] on the writing side).
pub(crate) struct Lookup {
    ids: Vec<IdentityId>,
    blocks: Vec<Cid>,
}

/// A record's audit events still in the bytes of the snapshot its state was loaded from, at
/// `start..end`: what the state keeps to decode them when the trail is read
/// ([`crate::ledger::state::AuditTrail`]).
fn stored_events(
    bytes: Arc<Vec<u8>>,
    lookup: Arc<Lookup>,
    start: usize,
    end: usize,
) -> crate::ledger::state::StoredEvents {
    Arc::new(move || {
        let buf = bytes
            .get(start..end)
            .ok_or("the trail is outside the snapshot")?;
        read_trail(&mut Dec { buf, pos: 0 }, &lookup)
    })
}

/// A record's trail: a count, the events, nothing after them.
fn read_trail(d: &mut Dec, t: &Lookup) -> R<Vec<AuditEvent>> {
    let n = d.count(40)?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(read_audit(d, t)?);
    }
    if d.pos != d.buf.len() {
        return Err(format!("{} bytes after the events", d.buf.len() - d.pos));
    }
    Ok(out)
}

fn key_at(keys: &[PublicKey], i: u64) -> R<PublicKey> {
    usize::try_from(i)
        .ok()
        .and_then(|i| keys.get(i))
        .cloned()
        .ok_or_else(|| format!("key index {i} out of range"))
}

/// Checks the size, the format line and the CRC-32 trailer; returns a reader over the body
/// (past the format line) and the genesis CID it starts with.
fn open(bytes: &[u8]) -> Result<(Dec<'_>, Cid)> {
    if bytes.len() > MAX_SNAPSHOT {
        return Err(Error::TooLarge {
            what: "snapshot",
            size: bytes.len() as u64,
            limit: MAX_SNAPSHOT as u64,
        });
    }
    if bytes.len() < MAGIC.len() + CHECKSUM || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a medshare snapshot of format 2"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CHECKSUM);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt(
            "its checksum does not match (a damaged or torn file)",
        ));
    }
    let mut d = Dec {
        buf: body,
        pos: MAGIC.len(),
    };
    let genesis = d.cid().map_err(corrupt)?;
    Ok((d, genesis))
}

/// The state (its head certificate not applied yet) and the head certificate's CID.
fn read_state(
    d: &mut Dec,
    src: &Arc<Vec<u8>>,
    genesis: Arc<crate::ledger::GenesisBlock>,
) -> R<(State, Cid)> {
    let height = d.u()?;
    let head = d.cid()?;
    let head_cert = d.cid()?;
    let time = d.u()?;
    let log_size = d.u()?;
    let n = d.count(32)?;
    let peaks = (0..n).map(|_| d.arr()).collect::<R<Vec<Hash>>>()?;
    let log = Frontier::from_parts(log_size, peaks).ok_or("log frontier does not fit its size")?;
    // An SPKI DER key of 2048 bits or more is over 256 bytes.
    let n = d.count(256)?;
    let mut keys = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let der = d.b()?;
        keys.push(PublicKey::from_spki_der(der).map_err(|e| format!("key: {e}"))?);
    }
    let n = d.count(2)?;
    let mut authorities = imbl::OrdMap::new();
    for _ in 0..n {
        let key = key_at(&keys, d.u()?)?;
        let validator = d.opt32()?;
        let id = key.id();
        authorities.insert(id, Authority { id, key, validator });
    }
    let n = d.count(2)?;
    let mut votes = imbl::OrdMap::new();
    for _ in 0..n {
        let kind = match d.byte()? {
            0 => AuthorityChangeKind::Add {
                key: d.b()?.to_vec(),
                validator: d.opt32()?,
            },
            1 => AuthorityChangeKind::Remove { authority: d.id()? },
            b => return Err(format!("vote kind {b}")),
        };
        let m = d.count(34)?;
        let voters = (0..m).map(|_| d.id()).collect::<R<_>>()?;
        votes.insert(kind, voters);
    }
    let n = d.count(2)?;
    let vote_txs = (0..n).map(|_| d.cid()).collect::<R<imbl::Vector<Cid>>>()?;
    let n = d.count(34)?;
    let mut identities = imbl::HashMap::new();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = d.id()?;
        ids.push(id);
        let role = d.byte()?;
        let role = Role::from_code(role).ok_or_else(|| format!("role {role}"))?;
        let key = key_at(&keys, d.u()?)?;
        let seq = d.u()?;
        let licence = if d.flag()? { Some(d.text()?) } else { None };
        let endorser = d.opt_id()?;
        identities.insert(
            id,
            IdentityState {
                role,
                key,
                seq,
                licence,
                endorser,
            },
        );
    }
    let n = d.count(68)?;
    let mut key_owner = imbl::HashMap::new();
    for _ in 0..n {
        key_owner.insert(d.id()?, d.id()?);
    }
    let n = d.count(2)?;
    let blocks = (0..n).map(|_| d.cid()).collect::<R<Vec<Cid>>>()?;
    let lookup = Arc::new(Lookup { ids, blocks });
    let n = d.count(50)?;
    let m = d.count(1)?;
    let chunks = (0..m)
        .map(|_| d.b_at())
        .collect::<R<Vec<(usize, &[u8])>>>()?;
    let decoded = crate::platform::par_map(
        &chunks,
        |&(base, chunk)| -> R<Vec<(RecordId, RecordState)>> {
            let mut c = Dec { buf: chunk, pos: 0 };
            let mut out = Vec::with_capacity(RECORDS_PER_CHUNK);
            while c.pos < c.buf.len() {
                let (id, mut r, (start, end)) = read_record(&mut c, &lookup)?;
                r.audit.stored = Some(stored_events(
                    src.clone(),
                    lookup.clone(),
                    base + start,
                    base + end,
                ));
                out.push((id, r));
            }
            Ok(out)
        },
    );
    let mut records = imbl::HashMap::new();
    for chunk in decoded {
        records.extend(chunk?);
    }
    if records.len() != n {
        return Err(format!("{n} records announced, {} found", records.len()));
    }
    let mut indexes = Vec::with_capacity(2);
    for _ in 0..2 {
        let n = d.count(35)?;
        let mut index = imbl::HashMap::new();
        for _ in 0..n {
            let who = d.id()?;
            let m = d.count(16)?;
            let set = (0..m).map(|_| d.record()).collect::<R<imbl::OrdSet<_>>>()?;
            index.insert(who, set);
        }
        indexes.push(index);
    }
    let owned = indexes.pop().unwrap_or_default();
    let granted = indexes.pop().unwrap_or_default();
    let n = d.count(67)?;
    let mut doctor_roots = imbl::HashMap::new();
    for _ in 0..n {
        let doctor = d.id()?;
        let count = d.u()?;
        if count == 0 {
            return Err("a doctor entry of no record".into());
        }
        doctor_roots.insert(doctor, (count, d.arr()?));
    }
    let n = d.count(40)?;
    let mut emergencies = imbl::OrdMap::new();
    for _ in 0..n {
        let em = read_emergency(d)?;
        emergencies.insert(em.request, em);
    }
    let n = d.count(17)?;
    let mut pending_rekey = BTreeMap::new();
    for _ in 0..n {
        pending_rekey.insert(d.record()?, d.small("version index")?);
    }
    let n = d.count(33)?;
    let validator_updates = (0..n)
        .map(|_| {
            Ok(ValidatorUpdate {
                validator: d.arr()?,
                power: d.u()?,
            })
        })
        .collect::<R<Vec<_>>>()?;
    let state = State {
        genesis,
        authorities,
        votes,
        vote_txs,
        height,
        head,
        head_cert: None,
        time,
        log,
        identities,
        key_owner,
        records,
        granted,
        owned,
        pending_rekey,
        validator_updates,
        state_map: Default::default(),
        doctor_roots,
        doctor_maps: imbl::HashMap::new(),
        emergencies,
    };
    Ok((state, head_cert))
}

/// A record, its audit trail left undecoded (where its bytes are in the chunk).
fn read_record(d: &mut Dec, t: &Lookup) -> R<(RecordId, RecordState, (usize, usize))> {
    let id = d.record()?;
    let owner = d.rid(t)?;
    let n = d.count(40)?;
    if n == 0 {
        return Err(format!("record {id} has no version"));
    }
    let mut versions = imbl::Vector::new();
    for _ in 0..n {
        let content = d.cid()?;
        let size = d.u()?;
        let commitment = d.arr()?;
        let owner_key = d.b()?.to_vec();
        let m = d.count(40)?;
        let mut grants = imbl::OrdMap::new();
        for _ in 0..m {
            let doctor = d.rid(t)?;
            let version = d.small("version")?;
            let expires = d.opt_u()?;
            let purpose = d.purpose()?;
            let note = if d.flag()? {
                Some(d.b()?.to_vec())
            } else {
                None
            };
            let granted_at = d.u()?;
            let key = KeyRef {
                tx: d.cid()?,
                index: d.small("key index")?,
            };
            grants.insert(
                doctor,
                Arc::new(AccessGrant {
                    doctor,
                    version,
                    expires,
                    purpose,
                    note,
                    granted_at,
                    key,
                }),
            );
        }
        let emergency = if d.flag()? {
            let threshold = d.small("threshold")?;
            let k = d.count(68)?;
            let mut shares = Vec::with_capacity(k.min(crate::envelope::shares::MAX_SHARES));
            for _ in 0..k {
                shares.push(WrappedShare {
                    authority: d.id()?,
                    wrapped: d.b()?.to_vec(),
                    commitment: d.arr()?,
                });
            }
            Some(Arc::new(EmergencySplit { threshold, shares }))
        } else {
            None
        };
        let exposed = d.flag()?;
        versions.push_back(Arc::new(VersionState {
            content,
            size,
            commitment,
            owner_key,
            grants,
            emergency,
            exposed,
        }));
    }
    let n = d.count(2)?;
    let mut revoked = imbl::OrdMap::new();
    for _ in 0..n {
        revoked.insert(d.rid(t)?, d.u()?);
    }
    let (start, trail) = d.b_at()?;
    Ok((
        id,
        RecordState {
            owner,
            versions,
            revoked,
            audit: Default::default(),
        },
        (start, start + trail.len()),
    ))
}

fn read_audit(d: &mut Dec, t: &Lookup) -> R<AuditEvent> {
    let height = d.u()?;
    let block = d.block(t)?;
    let time = d.u()?;
    let tx = d.cid()?;
    let author = d.rid(t)?;
    let kind = match d.byte()? {
        0 => AuditKind::Published {
            version: d.small("version")?,
            content: d.cid()?,
        },
        1 => AuditKind::Granted {
            doctor: d.rid(t)?,
            version: d.small("version")?,
            expires: d.opt_u()?,
            purpose: d.purpose()?,
        },
        2 => AuditKind::Revoked { doctor: d.rid(t)? },
        3 => AuditKind::EmergencyEnabled {
            version: d.small("version")?,
            threshold: d.small("threshold")?,
            shares: d.small("share count")?,
        },
        4 => AuditKind::Emergency {
            doctor: d.rid(t)?,
            version: d.small("version")?,
            expires: d.opt_u()?,
            purpose: d.purpose()?,
        },
        5 => AuditKind::ShareReleased {
            request: d.cid()?,
            doctor: d.rid(t)?,
            index: d.small("share index")?,
        },
        6 => AuditKind::Reviewed {
            request: d.cid()?,
            doctor: d.rid(t)?,
            outcome: d.outcome()?,
        },
        b => return Err(format!("audit event kind {b}")),
    };
    Ok(AuditEvent {
        height,
        block,
        time,
        tx,
        author,
        kind,
    })
}

fn read_emergency(d: &mut Dec) -> R<Emergency> {
    let request = d.cid()?;
    let record = d.record()?;
    let version = d.small("version")?;
    let owner = d.id()?;
    let doctor = d.id()?;
    let purpose = d.purpose()?;
    let justification = d.b()?.to_vec();
    let height = d.u()?;
    let time = d.u()?;
    let expires = d.u()?;
    let threshold = d.small("threshold")?;
    let n = d.count(34)?;
    let holders = (0..n).map(|_| d.id()).collect::<R<Vec<_>>>()?;
    let n = d.count(40)?;
    let mut releases = Vec::with_capacity(n.min(crate::envelope::shares::MAX_SHARES));
    for _ in 0..n {
        releases.push(Release {
            authority: d.id()?,
            index: d.small("share index")?,
            height: d.u()?,
            tx: d.cid()?,
            wrapped: d.b()?.to_vec(),
        });
    }
    let review = if d.flag()? {
        Some(ReviewInfo {
            authority: d.id()?,
            outcome: d.outcome()?,
            height: d.u()?,
            tx: d.cid()?,
        })
    } else {
        None
    };
    Ok(Emergency {
        request,
        record,
        version,
        owner,
        doctor,
        purpose,
        justification,
        height,
        time,
        expires,
        threshold,
        holders,
        releases,
        review,
    })
}

/// Decodes snapshot `bytes` (checksum, format, every field) over the genesis block `genesis`,
/// without a store: the state (its state map not rebuilt, its certificate not applied) and the
/// certificate's CID. What the fuzzer drives (`medshare::fuzz::snapshot`).
#[cfg(feature = "fuzzing")]
pub fn decode(bytes: &[u8], genesis: &crate::ledger::GenesisBlock) -> Result<(State, Cid)> {
    let src = Arc::new(bytes.to_vec());
    let (mut d, _) = open(&src)?;
    let (mut state, cert) = read_state(&mut d, &src, Arc::new(genesis.clone())).map_err(corrupt)?;
    if d.pos != d.buf.len() {
        return Err(corrupt("bytes after the state"));
    }
    // The trails a load leaves undecoded, decoded here so the fuzzer reaches their decoder.
    for r in state.records.values() {
        r.audit.events().map_err(corrupt)?;
    }
    state.head_cert = Some(cert);
    Ok((state, cert))
}

/// Loads the snapshot `bytes` over the blocks in `store`: parses it, fetches its genesis block
/// and its head certificate from the store, rebuilds the state map and checks the certificate
/// against it ([`State::apply_certificate`]). With `expected`, the snapshot must be of that
/// network ([`Error::WrongGenesis`] otherwise).
pub async fn load(store: &Store, bytes: &[u8], expected: Option<&Cid>) -> Result<State> {
    load_owned(store, bytes.to_vec(), expected).await
}

/// [`load`] of bytes it keeps: the records' audit trails stay in them, decoded when read.
async fn load_owned(store: &Store, bytes: Vec<u8>, expected: Option<&Cid>) -> Result<State> {
    let src = Arc::new(bytes);
    let (mut d, genesis_cid) = open(&src)?;
    if let Some(e) = expected
        && *e != genesis_cid
    {
        return Err(Error::WrongGenesis {
            expected: *e,
            found: genesis_cid,
        });
    }
    let genesis = Arc::new(chain::fetch_genesis(store, &genesis_cid).await?);
    let (mut state, cert_cid) = read_state(&mut d, &src, genesis).map_err(corrupt)?;
    if d.pos != d.buf.len() {
        return Err(corrupt(format!(
            "{} bytes after the state",
            d.buf.len() - d.pos
        )));
    }
    let raw = store.get(&cert_cid).await?;
    let cert = CertificateObject::decode(&raw).map_err(|e| corrupt(format!("certificate: {e}")))?;
    if cert.cid != cert_cid {
        return Err(corrupt("the certificate's bytes are not its CID's"));
    }
    check_head_block(store, &state).await?;
    // The indexes are checked while the state map is rebuilt from the records (on another
    // core where there is one); the map is installed only if they agree.
    let (consistent, map) =
        crate::platform::join(|| check_consistency(&state), || state.computed_state_map());
    consistent.map_err(corrupt)?;
    state.set_state_map(map);
    state
        .apply_certificate(&cert)
        .map_err(|e| corrupt(format!("does not match its certificate: {e}")))?;
    Ok(state)
}

/// The head block (from the store, by its CID) is the snapshot's: same network, height, time
/// and transaction log.
async fn check_head_block(store: &Store, state: &State) -> Result<()> {
    let raw = store.get(&state.head).await?;
    let block =
        crate::ledger::Block::decode(&raw).map_err(|e| corrupt(format!("head block: {e}")))?;
    let h = &block.header;
    if h.genesis != state.genesis.cid
        || h.height != state.height
        || h.time != state.time
        || h.log_size != state.log.size()
        || h.log_root != state.log.root()
    {
        return Err(corrupt("its head block's header is not the state's"));
    }
    Ok(())
}

/// What the certificate does not cover but the state map's rebuilding relies on: the owner and
/// grantee indexes agree with the records (a doctor's tree is rebuilt from hers), and with no
/// authority vote in the log the authorities are the genesis block's.
fn check_consistency(state: &State) -> R<()> {
    for (id, r) in state.records.iter() {
        if !state
            .owned
            .get(&r.owner)
            .is_some_and(|set| set.contains(id))
        {
            return Err(format!("record {id} is missing from its owner's records"));
        }
        if let Some(latest) = r.versions.last() {
            for d in latest.grants.keys() {
                if !state.granted.get(d).is_some_and(|set| set.contains(id)) {
                    return Err(format!("record {id} is missing from a grantee's records"));
                }
            }
        }
    }
    for (owner, set) in state.owned.iter() {
        for id in set.iter() {
            if state.records.get(id).map(|r| &r.owner) != Some(owner) {
                return Err(format!(
                    "record {id} is listed for someone who does not own it"
                ));
            }
        }
    }
    for set in state.granted.values() {
        if let Some(id) = set.iter().find(|id| !state.records.contains_key(id)) {
            return Err(format!("a grantee's records name an unknown record {id}"));
        }
    }
    if state.vote_txs.is_empty() {
        let genesis: Vec<(IdentityId, Option<[u8; 32]>)> = state
            .genesis
            .genesis
            .authorities
            .iter()
            .map(|a| (a.key.id(), a.validator))
            .collect();
        let mut now: Vec<(IdentityId, Option<[u8; 32]>)> = state
            .authorities
            .values()
            .map(|a| (a.id, a.validator))
            .collect();
        let mut genesis = genesis;
        genesis.sort();
        now.sort();
        if now != genesis || !state.votes.is_empty() {
            return Err("authorities other than the genesis block's, and no vote for them".into());
        }
    }
    Ok(())
}

/// The state at the head pointer `head` of the chain in `store`: from the store's snapshot if
/// it has a usable one (then only the blocks after it are verified), else verified from
/// genesis ([`chain::load`]). Says which.
pub async fn load_chain(
    store: &Store,
    head: &Cid,
    expected: Option<&Cid>,
) -> Result<(State, Opened)> {
    let (found, mut rejected) = match store.get_snapshot().await {
        Ok(found) => (found, None),
        // Unreadable (too large, permissions, not a file): verified from genesis, replaced.
        Err(_) => (None, Some(Rejected::Invalid)),
    };
    if let Some(bytes) = found {
        match load_owned(store, bytes, expected).await {
            Ok(base) => match chain::extend(store, &base, head, u64::MAX).await {
                Ok((state, replayed)) => {
                    return Ok((
                        state,
                        Opened::Snapshot {
                            height: base.height(),
                            transactions: base.log_size(),
                            replayed,
                        },
                    ));
                }
                Err(_) => rejected = Some(Rejected::OffChain),
            },
            Err(Error::WrongGenesis { .. }) => rejected = Some(Rejected::OtherNetwork),
            Err(_) => rejected = Some(Rejected::Invalid),
        }
    }
    let (state, _) = chain::load(store, head, expected).await?;
    Ok((state, Opened::Genesis { rejected }))
}
