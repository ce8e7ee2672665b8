//! The vault: the high-level handle that ties identities, envelopes, UnixFS storage and the ledger
//! together. It opens over any [`Store`]; with a sealing authority it can append blocks,
//! without one it verifies and reads.
//!
//! Every write is one sealed block: `publish` (PublishRecord), `grant` (Grant), `revoke`
//! (Revoke + the re-encrypted next version + the remaining grants, together), `register`,
//! `rotate_key`. A transaction is checked against the replayed state before anything is written,
//! so a refused operation leaves the store unchanged; the head moves by compare-and-swap last.

use std::io::{Read, Write};
use std::sync::Arc;

use crate::cid::{Cid, DAG_PB};
use crate::envelope::{DataKey, Header, Metadata, Opener, RecordId, SealOptions, Sealer};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, Role};
use crate::ledger::{
    AccessGrant, AuditEvent, Block, BlockHeader, Genesis, Policy, RecordInfo, SignedTx, State, Tx,
    TxBody, endorsement_message, merkle_root,
};
use crate::store::{MaybeSend, Store};
use crate::unixfs::{Block as UnixfsBlock, Importer, Profile, Walker, pb};

/// Unix time in seconds, as the vault sees it.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> u64 {
    // `std::time::SystemTime::now()` panics on wasm32-unknown-unknown; web-time asks the JS host
    // there and is std's SystemTime everywhere else.
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Blocks are written to the store in batches of this many (4 MiB of 1 MiB leaves: peak memory
/// stays under 32 MiB for any file size). In a
/// browser each batch is also where the page gets control back, so batches are smaller there.
#[cfg(not(target_arch = "wasm32"))]
const PUT_BATCH: usize = 4;
#[cfg(target_arch = "wasm32")]
const PUT_BATCH: usize = 2;
const READ_BUF: usize = 1 << 20;
/// Raw leaves fetched and hashed ahead per step of `open_record`.
#[cfg(not(target_arch = "wasm32"))]
const OPEN_GROUP: usize = 4;
#[cfg(target_arch = "wasm32")]
const OPEN_GROUP: usize = 1;
/// Plaintext sealed per pipeline step of `publish`: several leaves, so their hashing spreads.
#[cfg(not(target_arch = "wasm32"))]
const SEAL_PIECE: usize = 4 << 20;
#[cfg(target_arch = "wasm32")]
const SEAL_PIECE: usize = 1 << 20;

/// Progress callback: bytes done so far.
#[cfg(not(target_arch = "wasm32"))]
pub type Progress<'a> = &'a mut (dyn FnMut(u64) + Send);
/// Progress callback: bytes done so far. (On wasm there are no threads, so no `Send`: a
/// JavaScript callback can be one.)
#[cfg(target_arch = "wasm32")]
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// What [`Vault::verify`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blocks verified, genesis included.
    pub blocks: u64,
    /// Transactions verified.
    pub transactions: u64,
    /// Head block CID.
    pub head: Cid,
}

/// What [`Vault::revoke`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeReport {
    /// The record's new version (re-encrypted under a new key).
    pub new_version: u32,
    /// Doctors still granted on the new version.
    pub remaining: Vec<IdentityId>,
    /// Blocks of older versions deleted from the store.
    pub deleted_blocks: usize,
}

/// What [`Vault::import_car`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Blocks read from the CAR and stored.
    pub blocks: u64,
    /// Ledger blocks newly applied (the whole chain, genesis included, for an empty store).
    pub applied: u64,
    /// The CAR's root: the chain head now.
    pub head: Cid,
}

/// CAR blocks are stored in batches of this many (at most 32 MiB of 2 MiB blocks).
const CAR_BATCH: usize = 16;

/// A medshare vault over a block store.
pub struct Vault {
    store: Store,
    state: State,
    sealer: Option<Identity>,
    profile: Profile,
    clock: Clock,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("height", &self.state.height())
            .field("head", &self.state.head())
            .finish()
    }
}

impl Vault {
    /// Creates a new chain in an empty store: a genesis block naming `authority` (which also
    /// becomes this vault's sealer) and `policy`.
    pub async fn create(
        store: Store,
        network: &str,
        authority: Identity,
        policy: Policy,
    ) -> Result<Vault> {
        if authority.role() != Role::Authority {
            return Err(Error::Rejected {
                rule: crate::ledger::Rule::Role,
                detail: "genesis must be sealed by an authority".into(),
            });
        }
        let now = system_clock();
        let header = BlockHeader {
            network: network.to_owned(),
            height: 0,
            parent: None,
            time: now,
            txs: Vec::new(),
            merkle: merkle_root(&[]),
            sealer: authority.id(),
            genesis: Some(Genesis {
                network: network.to_owned(),
                authorities: vec![authority.public().clone()],
                policy,
            }),
        };
        let block = Block::seal(header, &authority)?;
        let state = State::from_genesis(&block, now)?;
        store.put(&block.cid, &block.bytes).await?;
        store.compare_and_swap_head(None, Some(&block.cid)).await?;
        Ok(Vault {
            store,
            state,
            sealer: Some(authority),
            profile: Profile::default(),
            clock: Arc::new(system_clock),
        })
    }

    /// Opens the chain in `store`, verifying it from genesis. `sealer`, if given, must be one of
    /// the genesis authorities; without it the vault is read-only.
    pub async fn open(store: Store, sealer: Option<Identity>) -> Result<Vault> {
        let state = load_chain(&store, system_clock()).await?.0;
        if let Some(s) = sealer
            .as_ref()
            .filter(|s| !state.genesis().authorities.iter().any(|k| k.id() == s.id()))
        {
            return Err(Error::Rejected {
                rule: crate::ledger::Rule::Sealer,
                detail: format!("{} is not an authority of this chain", s.id()),
            });
        }
        Ok(Vault {
            store,
            state,
            sealer,
            profile: Profile::default(),
            clock: Arc::new(system_clock),
        })
    }

    /// Opens the chain in `store`, or, if the store is empty, creates one sealed by `authority`
    /// (default policy). An empty store without an authority is [`Error::NoChain`]: a chain
    /// whose sealing key nobody keeps could never be appended to.
    pub async fn open_or_create(
        store: Store,
        network: &str,
        authority: Option<Identity>,
    ) -> Result<Vault> {
        if store.head().await?.is_some() {
            return Vault::open(store, authority).await;
        }
        match authority {
            Some(a) => Vault::create(store, network, a, Policy::default()).await,
            None => Err(Error::NoChain),
        }
    }

    /// A vault in memory with a freshly generated authority (tests, short-lived tools).
    pub async fn memory(network: &str) -> Result<Vault> {
        let authority = Identity::generate(
            Role::Authority,
            "vault-authority",
            crate::identity::DEFAULT_KEY_BITS,
        )?;
        Vault::create(Store::memory(), network, authority, Policy::default()).await
    }

    /// Replaces the clock (unix seconds) used for grant expiry and block times.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Chooses the UnixFS profile for records published from now on.
    pub fn set_profile(&mut self, profile: Profile) {
        self.profile = profile;
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The replayed chain state.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    fn next_tx(&self, author: &Identity, extra: u64, body: TxBody) -> Tx {
        Tx {
            author: author.id(),
            seq: self.state.last_seq(&author.id()) + 1 + extra,
            time: self.now(),
            body,
        }
    }

    /// Seals `txs` into one block after checking them against a copy of the state, stores them
    /// and moves the head.
    async fn append(&mut self, txs: Vec<SignedTx>) -> Result<Block> {
        let sealer = self.sealer.as_ref().ok_or(Error::ReadOnly)?;
        let cids: Vec<Cid> = txs.iter().map(|t| t.cid).collect();
        let header = BlockHeader {
            network: self.state.genesis().network.clone(),
            height: self.state.height() + 1,
            parent: Some(self.state.head()),
            time: self.now().max(self.state.time()),
            merkle: merkle_root(&cids),
            txs: cids,
            sealer: sealer.id(),
            genesis: None,
        };
        let block = Block::seal(header, sealer)?;
        let mut next = self.state.clone();
        next.apply_block(&block, &txs, self.now())
            .map_err(|e| match e {
                Error::InvalidChain { rule, detail, .. } => Error::Rejected { rule, detail },
                other => other,
            })?;
        for t in &txs {
            self.store.put(&t.cid, &t.bytes).await?;
        }
        self.store.put(&block.cid, &block.bytes).await?;
        self.store
            .compare_and_swap_head(Some(&self.state.head()), Some(&block.cid))
            .await?;
        self.state = next;
        Ok(block)
    }

    /// Registers `identity` on the chain. Doctors are endorsed by this vault's authority, which
    /// vouches for `licence` (required for doctors).
    pub async fn register(&mut self, identity: &Identity, licence: Option<&str>) -> Result<Cid> {
        let body = match identity.role() {
            Role::Patient => TxBody::RegisterPatient {
                key: identity.public().clone(),
            },
            Role::Doctor => {
                let sealer = self.sealer.as_ref().ok_or(Error::ReadOnly)?;
                let licence = licence.unwrap_or_default().to_owned();
                let endorsement = sealer.sign(&endorsement_message(&identity.id(), &licence))?;
                TxBody::RegisterDoctor {
                    key: identity.public().clone(),
                    licence,
                    authority: sealer.id(),
                    endorsement,
                }
            }
            Role::Authority => {
                return Err(Error::Rejected {
                    rule: crate::ledger::Rule::Role,
                    detail: "authorities are named by the genesis block".into(),
                });
            }
        };
        let tx = SignedTx::sign(
            Tx {
                author: identity.id(),
                seq: 1,
                time: self.now(),
                body,
            },
            identity,
        )?;
        let cid = tx.cid;
        self.append(vec![tx]).await?;
        Ok(cid)
    }

    /// Replaces `old`'s key by `new`'s (same account id), signed by both.
    pub async fn rotate_key(&mut self, old: &Identity, new: &Identity) -> Result<()> {
        let tx = self.next_tx(
            old,
            0,
            TxBody::RotateKey {
                new_key: new.public().clone(),
            },
        );
        let tx = SignedTx::sign_rotation(tx, old, new)?;
        self.append(vec![tx]).await.map(|_| ())
    }

    /// Publishes `data` as a new record owned by `patient`.
    pub async fn publish_bytes(
        &mut self,
        patient: &Identity,
        data: &[u8],
        name: &str,
        media_type: &str,
    ) -> Result<RecordId> {
        let meta = Metadata {
            name: name.into(),
            media_type: media_type.into(),
            size: data.len() as u64,
        };
        self.publish(patient, data, meta, &mut |_| {}).await
    }

    /// Publishes a new record read from `input` (exactly `metadata.size` bytes), in constant
    /// memory: sealed, cut into UnixFS blocks, stored, and recorded on the chain.
    pub async fn publish<R: Read + MaybeSend>(
        &mut self,
        patient: &Identity,
        input: R,
        metadata: Metadata,
        progress: Progress<'_>,
    ) -> Result<RecordId> {
        let record = RecordId::random()?;
        let tx = self.next_tx(
            patient,
            0,
            TxBody::PublishRecord {
                record,
                version: 1,
                content: Cid::dag_cbor(b""),
                size: 0,
                wrapped_key: vec![0],
            },
        );
        // Refuse early (unregistered author, wrong role) before any encryption work.
        self.check(&tx)?;
        let (root, size, wrapped) = self
            .store_sealed(
                patient,
                &record,
                1,
                &metadata,
                input,
                DataKey::generate()?,
                progress,
            )
            .await?;
        let body = TxBody::PublishRecord {
            record,
            version: 1,
            content: root,
            size,
            wrapped_key: wrapped,
        };
        let tx = SignedTx::sign(Tx { body, ..tx }, patient)?;
        self.append(vec![tx]).await?;
        Ok(record)
    }

    /// Seals `input` for `owner`, stores it as UnixFS; returns (root, envelope size, owner wrap).
    #[allow(clippy::too_many_arguments)]
    async fn store_sealed<R: Read + MaybeSend>(
        &self,
        owner: &Identity,
        record: &RecordId,
        version: u32,
        metadata: &Metadata,
        mut input: R,
        dek: DataKey,
        progress: Progress<'_>,
    ) -> Result<(Cid, u64, Vec<u8>)> {
        let (mut sealer, header) = Sealer::with_key(
            dek,
            record,
            version,
            metadata,
            &[owner.public()],
            SealOptions::default(),
        )?;
        let wrapped = Header::parse(&header)?.stanzas()[0].wrapped_key.clone();
        let mut importer = Importer::new(self.profile);
        let mut blocks: Vec<UnixfsBlock> = Vec::with_capacity(PUT_BATCH + 2);
        importer.push(&header, &mut blocks);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; SEAL_PIECE]);
        // Two stages on two cores: piece k+1 is sealed while piece k's ciphertext is cut into
        // blocks and hashed (the importer, which hashes a piece's leaves in parallel too, so a
        // core that finishes sealing first helps hashing). With one thread, `join` runs them one
        // after the other.
        let mut sealed = Vec::with_capacity(SEAL_PIECE + SEAL_PIECE / 64);
        let mut hashing = Vec::with_capacity(SEAL_PIECE + SEAL_PIECE / 64);
        let mut done = 0u64;
        loop {
            let n = crate::unixfs::read_full(&mut input, &mut buf)?;
            if n == 0 {
                break;
            }
            let (seal, ()) = join(
                || sealer.update(&buf[..n], &mut sealed),
                || importer.push(&hashing, &mut blocks),
            );
            seal?;
            hashing.clear();
            std::mem::swap(&mut sealed, &mut hashing);
            if blocks.len() >= PUT_BATCH {
                self.store.put_many_hashed(&blocks).await?;
                blocks.clear();
            }
            done += n as u64;
            progress(done);
        }
        importer.push(&hashing, &mut blocks);
        let mut ct = hashing;
        ct.clear();
        sealer.finish(&mut ct)?;
        importer.push(&ct, &mut blocks);
        let size = importer.len();
        let root = importer.finish(&mut blocks);
        self.store.put_many_hashed(&blocks).await?;
        Ok((root, size, wrapped))
    }

    /// Grants `doctor` the latest version of `record` (optionally until `expires`, unix seconds).
    pub async fn grant(
        &mut self,
        patient: &Identity,
        record: &RecordId,
        doctor: &IdentityId,
        expires: Option<u64>,
        purpose: Option<&str>,
    ) -> Result<()> {
        let info = self
            .state
            .record(record)
            .ok_or_else(|| Error::UnknownRecord(record.to_string()))?;
        let probe = self.next_tx(
            patient,
            0,
            TxBody::Grant {
                record: *record,
                version: info.version,
                doctor: *doctor,
                wrapped_key: vec![0],
                expires,
                purpose: purpose.map(str::to_owned),
            },
        );
        self.check(&probe)?;
        let access = self.state.access(record, &patient.id(), self.now())?;
        let dek = DataKey::unwrap(patient, &access.wrapped_key, record, access.version)?;
        let key = self
            .state
            .identity(doctor)
            .ok_or_else(|| Error::UnknownIdentity(doctor.to_string()))?
            .1
            .clone();
        let wrapped_key = dek.wrap(&key, record, access.version)?;
        let TxBody::Grant {
            record,
            version,
            doctor,
            expires,
            purpose,
            ..
        } = probe.body.clone()
        else {
            unreachable!("built above")
        };
        let body = TxBody::Grant {
            record,
            version,
            doctor,
            wrapped_key,
            expires,
            purpose,
        };
        let tx = SignedTx::sign(Tx { body, ..probe }, patient)?;
        self.append(vec![tx]).await.map(|_| ())
    }

    /// Checks an unsigned probe transaction against the state (all rules but signatures).
    fn check(&self, probe: &Tx) -> Result<()> {
        self.state.check_unsigned(probe, self.now())
    }

    /// Revokes `doctor` from `record`: appends `Revoke`, re-encrypts the record as a new version
    /// under a new key, re-grants it to the remaining (unexpired) doctors — all in one block —
    /// then deletes the older versions' blocks from this vault's store.
    pub async fn revoke(
        &mut self,
        patient: &Identity,
        record: &RecordId,
        doctor: &IdentityId,
    ) -> Result<RevokeReport> {
        let revoke = self.next_tx(
            patient,
            0,
            TxBody::Revoke {
                record: *record,
                doctor: *doctor,
            },
        );
        self.check(&revoke)?;
        let now = self.now();
        let access = self.state.access(record, &patient.id(), now)?;
        let old_contents = self.state.contents(record);
        let remaining: Vec<AccessGrant> = self
            .state
            .access_list(record)?
            .into_iter()
            .filter(|g| g.doctor != *doctor && g.expires.is_none_or(|e| e > now))
            .collect();
        // Stream the current version through decryption into a new envelope under a new key:
        // constant memory whatever the record size.
        let old_dek = DataKey::unwrap(patient, &access.wrapped_key, record, access.version)?;
        let meta = self.peek_metadata(access.content, &old_dek).await?;
        let new_version = access.version + 1;
        let new_dek = DataKey::generate()?;
        let (sealer, header) = Sealer::with_key(
            new_dek.clone(),
            record,
            new_version,
            &meta,
            &[patient.public()],
            SealOptions::default(),
        )?;
        let wrapped = Header::parse(&header)?.stanzas()[0].wrapped_key.clone();
        let mut reseal = Reseal {
            sealer,
            importer: Importer::new(self.profile),
            ct: Vec::new(),
            blocks: Vec::new(),
        };
        reseal.importer.push(&header, &mut reseal.blocks);
        self.read_envelope(
            record,
            access.version,
            access.content,
            &old_dek,
            &mut reseal,
            &mut |_| {},
        )
        .await?;
        let Reseal {
            sealer,
            mut importer,
            mut ct,
            mut blocks,
        } = reseal;
        sealer.finish(&mut ct)?;
        importer.push(&ct, &mut blocks);
        let size = importer.len();
        let root = importer.finish(&mut blocks);
        self.store.put_many_hashed(&blocks).await?;
        let mut txs = vec![SignedTx::sign(revoke, patient)?];
        let publish = self.next_tx(
            patient,
            1,
            TxBody::PublishRecord {
                record: *record,
                version: new_version,
                content: root,
                size,
                wrapped_key: wrapped,
            },
        );
        txs.push(SignedTx::sign(publish, patient)?);
        for (i, g) in remaining.iter().enumerate() {
            let key = self
                .state
                .identity(&g.doctor)
                .ok_or_else(|| Error::UnknownIdentity(g.doctor.to_string()))?
                .1;
            let body = TxBody::Grant {
                record: *record,
                version: new_version,
                doctor: g.doctor,
                wrapped_key: new_dek.wrap(key, record, new_version)?,
                expires: g.expires,
                purpose: g.purpose.clone(),
            };
            txs.push(SignedTx::sign(
                self.next_tx(patient, 2 + i as u64, body),
                patient,
            )?);
        }
        self.append(txs).await?;
        let mut deleted = 0;
        for content in old_contents {
            for cid in self.dag_blocks(content).await? {
                self.store.delete(&cid).await?;
                deleted += 1;
            }
        }
        Ok(RevokeReport {
            new_version,
            remaining: remaining.iter().map(|g| g.doctor).collect(),
            deleted_blocks: deleted,
        })
    }

    /// Every block CID of a UnixFS DAG that is still present (fetches internal nodes only).
    async fn dag_blocks(&self, root: Cid) -> Result<Vec<Cid>> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(cid) = stack.pop() {
            if cid.codec() == DAG_PB {
                let Some(bytes) = self.store.get_opt(&cid).await? else {
                    continue;
                };
                stack.extend(pb::decode_node(&bytes)?.links.into_iter().map(|l| l.cid));
                out.push(cid);
            } else if self.store.has(&cid).await? {
                out.push(cid);
            }
        }
        Ok(out)
    }

    /// Decrypts the latest version of `record` as `reader`, after checking the chain's access
    /// list at the head: owner, or a doctor with an unexpired, unrevoked grant.
    pub async fn open_record<W: Write + MaybeSend>(
        &self,
        reader: &Identity,
        record: &RecordId,
        out: W,
    ) -> Result<Metadata> {
        self.open_record_with_progress(reader, record, out, &mut |_| {})
            .await
    }

    /// [`Vault::open_record`] with a progress callback (plaintext bytes written so far).
    pub async fn open_record_with_progress<W: Write + MaybeSend>(
        &self,
        reader: &Identity,
        record: &RecordId,
        out: W,
        progress: Progress<'_>,
    ) -> Result<Metadata> {
        let access = self.state.access(record, &reader.id(), self.now())?;
        let dek = DataKey::unwrap(reader, &access.wrapped_key, record, access.version)?;
        let mut sink = WriteSink(out);
        let meta = self
            .read_envelope(
                record,
                access.version,
                access.content,
                &dek,
                &mut sink,
                progress,
            )
            .await?;
        sink.0.flush()?;
        Ok(meta)
    }

    /// Decrypts the metadata of the envelope under `root` (reads only the blocks holding the header).
    async fn peek_metadata(&self, root: Cid, dek: &DataKey) -> Result<Metadata> {
        let mut walker = Walker::new(root);
        let mut head = Vec::new();
        while let Some(cid) = walker.next_cid() {
            let bytes = self.store.get(&cid).await?;
            head.extend_from_slice(&walker.visit_verified(&bytes)?);
            match Header::parse(&head) {
                Ok(h) => return h.metadata(dek),
                Err(Error::Truncated) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Truncated)
    }

    async fn read_envelope(
        &self,
        record: &RecordId,
        version: u32,
        root: Cid,
        dek: &DataKey,
        out: &mut dyn Sink,
        progress: Progress<'_>,
    ) -> Result<Metadata> {
        let mut walker = Walker::new(root);
        let mut head = Vec::new();
        let mut opener: Option<Opener> = None;
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(READ_BUF));
        let mut done = 0u64;
        // File data already checked against its CIDs, in order, waiting to be decrypted.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        // Decrypts `pending` into `out`; returns the plaintext bytes written.
        let mut decrypt = |pending: &[Vec<u8>], out: &mut dyn Sink| -> Result<u64> {
            let mut n = 0u64;
            for data in pending {
                match opener.as_mut() {
                    Some(o) => o.update(data, &mut plain)?,
                    None => {
                        head.extend_from_slice(data);
                        match Header::parse(&head) {
                            Ok(h) => {
                                if h.record() != *record || h.version() != version {
                                    return Err(Error::MalformedEnvelope(format!(
                                        "content holds record {} version {}, the chain says {record} version {version}",
                                        h.record(),
                                        h.version()
                                    )));
                                }
                                let mut o = Opener::new(&h, dek)?;
                                o.update(&head[h.len()..], &mut plain)?;
                                opener = Some(o);
                                head = Vec::new();
                            }
                            Err(Error::Truncated) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                out.consume(&plain)?;
                n += plain.len() as u64;
                zeroize::Zeroize::zeroize(&mut *plain);
                plain.clear();
            }
            Ok(n)
        };
        loop {
            // Raw leaves come in groups: group k+1 is fetched, then hashed on the rayon pool
            // while group k is decrypted (with one thread, `join` runs one after the other).
            let ids = walker.upcoming_raw(OPEN_GROUP);
            if ids.is_empty() {
                let Some(cid) = walker.next_cid() else { break };
                let bytes = self.store.get(&cid).await?;
                let data = walker.visit_verified(&bytes)?;
                if !data.is_empty() {
                    pending.push(data.into_owned());
                }
                done += decrypt(&pending, &mut *out)?;
                pending.clear();
            } else {
                let mut fetched = Vec::with_capacity(ids.len());
                for id in &ids {
                    fetched.push(self.store.get_unchecked(id).await?);
                }
                let (decrypted, checked) = join(
                    || decrypt(&pending, &mut *out),
                    || check_all(&ids, &fetched),
                );
                done += decrypted?;
                checked?;
                pending.clear();
                for bytes in fetched {
                    // A raw leaf's file data is the block itself.
                    walker.visit_verified(&bytes)?;
                    pending.push(bytes);
                }
            }
            let blocks = out.drain();
            if !blocks.is_empty() {
                self.store.put_many_hashed(&blocks).await?;
            }
            progress(done);
        }
        done += decrypt(&pending, &mut *out)?;
        let blocks = out.drain();
        if !blocks.is_empty() {
            self.store.put_many_hashed(&blocks).await?;
        }
        progress(done);
        let opener = opener.ok_or(Error::Truncated)?;
        opener.finish(&mut plain)
    }

    /// Records whose latest version `doctor` is granted.
    pub fn records_for(&self, doctor: &IdentityId) -> Vec<RecordInfo> {
        self.state.records_for(doctor)
    }

    /// Current grants on `record`.
    pub fn access_list(&self, record: &RecordId) -> Result<Vec<AccessGrant>> {
        self.state.access_list(record)
    }

    /// The audit trail of `record`.
    pub fn audit(&self, record: &RecordId) -> Result<Vec<AuditEvent>> {
        self.state.audit(record)
    }

    /// Re-verifies the whole chain in the store from genesis to head (every rule, every
    /// signature, every CID) and refreshes this vault's state from it.
    pub async fn verify(&mut self) -> Result<VerifyReport> {
        let (state, report) = load_chain(&self.store, self.now()).await?;
        self.state = state;
        Ok(report)
    }

    /// Applies blocks that another writer appended to the store since this vault last looked
    /// (incremental: only the new blocks are checked). Returns how many were applied.
    pub async fn sync(&mut self) -> Result<u64> {
        let head = self.store.head().await?.ok_or(Error::NoChain)?;
        let (next, n) = self.descend(head).await?;
        self.state = next;
        Ok(n)
    }

    /// Adopts `target` as the head if it extends this vault's chain (blocks already in the
    /// store, e.g. from a CAR import): the new blocks are verified incrementally, then the head
    /// moves by compare-and-swap. Returns how many blocks were applied.
    pub async fn import_head(&mut self, target: Cid) -> Result<u64> {
        let (next, n) = self.descend(target).await?;
        if n > 0 {
            self.store
                .compare_and_swap_head(Some(&self.state.head()), Some(&target))
                .await?;
            self.state = next;
        }
        Ok(n)
    }

    /// The state after applying the blocks between the current head and `target`.
    async fn descend(&self, target: Cid) -> Result<(State, u64)> {
        let mut pending = Vec::new();
        let mut cursor = target;
        while cursor != self.state.head() {
            let block = fetch_block(&self.store, &cursor, u64::MAX).await?;
            if block.header.height <= self.state.height() {
                return Err(Error::InvalidChain {
                    height: block.header.height,
                    tx: None,
                    rule: crate::ledger::Rule::Parent,
                    detail: format!(
                        "{target} does not descend from this vault's head {}",
                        self.state.head()
                    ),
                });
            }
            cursor = block.header.parent.ok_or_else(|| Error::InvalidChain {
                height: block.header.height,
                tx: None,
                rule: crate::ledger::Rule::Parent,
                detail: "chain ends before this vault's head".into(),
            })?;
            pending.push(block);
        }
        pending.reverse();
        let n = pending.len() as u64;
        let (next, _) = apply_chain(&self.store, &self.state, &pending, self.now()).await?;
        Ok((next, n))
    }

    /// Opens a replica from blocks already in `store` (e.g. imported from a CAR file) whose chain
    /// ends at `head`: verifies it from genesis, then sets the store's empty head to it.
    pub async fn adopt(store: Store, head: Cid) -> Result<Vault> {
        let (state, _) = load_chain_from(&store, head, system_clock()).await?;
        store.compare_and_swap_head(None, Some(&head)).await?;
        Ok(Vault {
            store,
            state,
            sealer: None,
            profile: Profile::default(),
            clock: Arc::new(system_clock),
        })
    }

    /// Imports a CARv1 stream rooted at one chain head (as written by [`Vault::export_car`] or
    /// `ipfs dag export`) into `store`, then verifies it. An empty store adopts the chain from
    /// genesis ([`Vault::adopt`]); a store that already holds a chain must be extended by it
    /// ([`Vault::import_head`]). Blocks are written in batches of 16 (bounded memory for any CAR
    /// size); the CAR reader checks each against its CID first. Blocks of a CAR whose chain is
    /// then refused stay in the store, unreferenced. The vault returned reads and verifies (no
    /// sealer).
    pub async fn import_car<R: Read + MaybeSend>(
        store: Store,
        car: R,
    ) -> Result<(Vault, ImportReport)> {
        let mut reader = crate::car::CarReader::new(car)?;
        let [root] = reader.roots() else {
            return Err(Error::MalformedCar(format!(
                "the CAR has {} roots; medshare imports a CAR rooted at one chain head",
                reader.roots().len()
            )));
        };
        let root = *root;
        let existing = store.head().await?.is_some();
        let mut batch = Vec::with_capacity(CAR_BATCH);
        let mut blocks = 0u64;
        while let Some(block) = reader.next_block()? {
            batch.push(block);
            blocks += 1;
            if batch.len() == CAR_BATCH {
                // The CAR reader has checked every block against its CID.
                store.put_many_hashed(&batch).await?;
                batch.clear();
            }
        }
        store.put_many_hashed(&batch).await?;
        let (vault, applied) = if existing {
            let mut vault = Vault::open(store, None).await?;
            let applied = vault.import_head(root).await?;
            (vault, applied)
        } else {
            let vault = Vault::adopt(store, root).await?;
            let applied = vault.state.height() + 1;
            (vault, applied)
        };
        Ok((
            vault,
            ImportReport {
                blocks,
                applied,
                head: root,
            },
        ))
    }

    /// Writes the whole chain (blocks and transactions) and the current version of every record
    /// still in the store to a CARv1 stream rooted at the head. Returns the number of blocks.
    pub async fn export_car<W: Write + MaybeSend>(&self, out: W) -> Result<u64> {
        let mut car = crate::car::CarWriter::new(out, &[self.state.head()])?;
        let mut n = 0u64;
        let mut cursor = Some(self.state.head());
        while let Some(cid) = cursor {
            let bytes = self.store.get(&cid).await?;
            let block = Block::decode(&bytes).map_err(Error::MalformedNode)?;
            car.write_block(&cid, &bytes)?;
            n += 1;
            for t in &block.header.txs {
                car.write_block(t, &self.store.get(t).await?)?;
                n += 1;
            }
            cursor = block.header.parent;
        }
        for info in self.state.all_records() {
            for cid in self.dag_blocks(info.content).await? {
                car.write_block(&cid, &self.store.get(&cid).await?)?;
                n += 1;
            }
        }
        car.finish()?;
        Ok(n)
    }
}

/// Where decrypted plaintext goes; a sink may produce blocks to store as it consumes.
trait Sink: MaybeSend {
    fn consume(&mut self, plain: &[u8]) -> Result<()>;
    fn drain(&mut self) -> Vec<UnixfsBlock> {
        Vec::new()
    }
}

struct WriteSink<W: Write>(W);

impl<W: Write + MaybeSend> Sink for WriteSink<W> {
    fn consume(&mut self, plain: &[u8]) -> Result<()> {
        self.0.write_all(plain).map_err(Error::Io)
    }
}

/// Re-encryption during revocation: plaintext in, new envelope's UnixFS blocks out.
struct Reseal {
    sealer: Sealer,
    importer: Importer,
    ct: Vec<u8>,
    blocks: Vec<UnixfsBlock>,
}

impl Sink for Reseal {
    fn consume(&mut self, plain: &[u8]) -> Result<()> {
        self.sealer.update(plain, &mut self.ct)?;
        self.importer.push(&self.ct, &mut self.blocks);
        self.ct.clear();
        Ok(())
    }

    fn drain(&mut self) -> Vec<UnixfsBlock> {
        std::mem::take(&mut self.blocks)
    }
}

async fn fetch_block(store: &Store, cid: &Cid, height_hint: u64) -> Result<Block> {
    let bytes = store
        .get(cid)
        .await
        .map_err(|e| chain_fetch_error(e, height_hint))?;
    Block::decode(&bytes).map_err(|detail| Error::InvalidChain {
        height: height_hint,
        tx: None,
        rule: crate::ledger::Rule::Encoding,
        detail: format!("block {cid}: {detail}"),
    })
}

fn chain_fetch_error(e: Error, height: u64) -> Error {
    match e {
        Error::CidMismatch { expected, actual } => Error::InvalidChain {
            height,
            tx: None,
            rule: crate::ledger::Rule::Cid,
            detail: format!("object {expected} has bytes of {actual}"),
        },
        other => other,
    }
}

async fn fetch_txs(store: &Store, block: &Block) -> Result<Vec<SignedTx>> {
    let mut txs = Vec::with_capacity(block.header.txs.len());
    for (i, cid) in block.header.txs.iter().enumerate() {
        let bytes =
            store
                .get(cid)
                .await
                .map_err(|e| match chain_fetch_error(e, block.header.height) {
                    Error::InvalidChain {
                        height,
                        rule,
                        detail,
                        ..
                    } => Error::InvalidChain {
                        height,
                        tx: Some(i),
                        rule,
                        detail,
                    },
                    other => other,
                })?;
        txs.push(
            SignedTx::decode(&bytes).map_err(|detail| Error::InvalidChain {
                height: block.header.height,
                tx: Some(i),
                rule: crate::ledger::Rule::Encoding,
                detail,
            })?,
        );
    }
    Ok(txs)
}

/// Ledger blocks whose rule checks run on one core while the other cores verify the previous
/// batch's signatures.
const VERIFY_BATCH: usize = 16;

/// Applies `blocks` (in chain order, each extending the last) to a copy of `base`, checking
/// every rule, with the signature checks split off and verified in parallel: batch k's
/// signatures are verified on the rayon pool while batch k+1's rules are checked. If anything
/// fails, the blocks are replayed from `base` one check at a time, so the error reported is
/// exactly the first one in chain order. Returns the new state and the transaction count.
async fn apply_chain(
    store: &Store,
    base: &State,
    blocks: &[Block],
    now: u64,
) -> Result<(State, u64)> {
    let mut state = base.clone();
    let mut pending = Vec::new();
    let mut transactions = 0u64;
    let mut clean = true;
    'batches: for batch in blocks.chunks(VERIFY_BATCH) {
        // Only the fetching is async; checking the objects' hashes and decoding them happen
        // below, on this thread, while another worker verifies the previous batch's signatures.
        let mut fetched = Vec::with_capacity(batch.len());
        for block in batch {
            let mut raw = Vec::with_capacity(block.header.txs.len());
            for cid in &block.header.txs {
                match store.get_unchecked(cid).await {
                    Ok(bytes) => raw.push(bytes),
                    Err(_) => {
                        clean = false;
                        break 'batches;
                    }
                }
            }
            fetched.push(raw);
        }
        let mut checks = Vec::new();
        // The rules run here, on this thread; the signature batch is the half another worker
        // steals (and this thread helps with once the rules are done).
        let (applied, previous_ok) = join(
            || -> Result<u64> {
                let mut n = 0u64;
                for (block, raw) in batch.iter().zip(&fetched) {
                    let mut txs = Vec::with_capacity(raw.len());
                    for (cid, bytes) in block.header.txs.iter().zip(raw) {
                        Store::check(cid, bytes)?;
                        txs.push(SignedTx::decode(bytes).map_err(Error::MalformedNode)?);
                    }
                    state.apply_block_deferred(block, &txs, now, &mut checks)?;
                    n += txs.len() as u64;
                }
                Ok(n)
            },
            || crate::ledger::verify_checks(&pending),
        );
        match (applied, previous_ok) {
            (Ok(n), true) => transactions += n,
            _ => {
                clean = false;
                break;
            }
        }
        pending = checks;
    }
    if clean && crate::ledger::verify_checks(&pending) {
        return Ok((state, transactions));
    }
    // Something failed: find exactly what, in order.
    let mut state = base.clone();
    let mut transactions = 0u64;
    for block in blocks {
        let txs = fetch_txs(store, block).await?;
        transactions += txs.len() as u64;
        state.apply_block(block, &txs, now)?;
    }
    Ok((state, transactions))
}

/// Checks fetched blocks against their CIDs, on every core where there are threads.
fn check_all(ids: &[Cid], blocks: &[Vec<u8>]) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        ids.par_iter()
            .zip(blocks)
            .try_for_each(|(c, b)| Store::check(c, b))
    }
    #[cfg(target_arch = "wasm32")]
    {
        ids.iter()
            .zip(blocks)
            .try_for_each(|(c, b)| Store::check(c, b))
    }
}

/// Runs `a` and `b` in parallel (rayon).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    rayon::join(a, b)
}

/// Runs `a`, then `b` (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub(crate) fn join<A: FnOnce() -> RA, B: FnOnce() -> RB, RA, RB>(a: A, b: B) -> (RA, RB) {
    (a(), b())
}

/// Loads and fully verifies the chain in `store` from its head back to genesis.
async fn load_chain(store: &Store, now: u64) -> Result<(State, VerifyReport)> {
    let head = store.head().await?.ok_or(Error::NoChain)?;
    load_chain_from(store, head, now).await
}

/// Loads and fully verifies the chain ending at `head`.
async fn load_chain_from(store: &Store, head: Cid, now: u64) -> Result<(State, VerifyReport)> {
    // Walk back to genesis, then replay forwards.
    let mut blocks: Vec<Block> = Vec::new();
    let mut cursor = Some(head);
    while let Some(cid) = cursor {
        let height_hint = blocks
            .last()
            .map_or(u64::MAX, |b| b.header.height.saturating_sub(1));
        let block = fetch_block(store, &cid, height_hint).await?;
        cursor = block.header.parent;
        let top = blocks
            .first()
            .map_or(block.header.height, |b| b.header.height);
        if blocks.len() as u64 > top {
            return Err(Error::InvalidChain {
                height: block.header.height,
                tx: None,
                rule: crate::ledger::Rule::Height,
                detail: "more ancestors than the height allows".into(),
            });
        }
        blocks.push(block);
    }
    blocks.reverse();
    let genesis = blocks.first().ok_or(Error::NoChain)?;
    let base = State::from_genesis(genesis, now)?;
    let (state, transactions) = apply_chain(store, &base, &blocks[1..], now).await?;
    Ok((
        state,
        VerifyReport {
            blocks: blocks.len() as u64,
            transactions,
            head,
        },
    ))
}
