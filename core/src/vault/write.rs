//! Writing: each operation builds the author's transactions, signs them with the author's own
//! key, stores any new record content, and hands them to the sequencer as one submission (all
//! commit, or none). Every transaction is checked against the verified state first, so a
//! refused operation does no long work and writes nothing to the chain.
//!
//! Re-keying — a record's next version under a new data key, re-encrypted and wrapped again to
//! the owner and to the doctors who keep access — is what revocation, expired grants, key
//! rotation and emergency access all need; it is [`Vault::rekey_txs`], written once.

use std::collections::BTreeMap;
use std::io::Read;

use crate::cid::Cid;
use crate::envelope::key::DataKey;
use crate::envelope::{Encryptor, Metadata, SealOptions};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, Role};
use crate::ledger::{AccessGrant, Endorsement, Rewrapped, SignedTx, Submission, Tx, TxBody};
use crate::offload::Offload;
use crate::platform::{MaybeSend, Progress, batch, join, join_futures};
use crate::record::{Purpose, RecordId};
use crate::sequencer::Committed;
use crate::store::Block;
use crate::unixfs::{Importer, read_full};
use crate::vault::read::{Reseal, decrypt_note, encrypt_note};
use crate::vault::{Expiry, Vault};

/// How a grant is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantOptions {
    /// When it ends (none: until revoked).
    pub expires: Option<Expiry>,
    /// Why (in clear on the ledger, from a fixed vocabulary).
    pub purpose: Purpose,
    /// A free-text reason, encrypted to the patient and the doctor.
    pub note: Option<String>,
}

/// How a record is published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Opt the record into break-glass emergency access: its key is split among the network's
    /// authorities (more than two thirds needed to open it), and so is every later version's.
    pub emergency: bool,
}

/// What [`Vault::revoke`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevokeReport {
    /// The record's new version (re-encrypted under a new key).
    pub new_version: u32,
    /// Doctors still granted on the new version.
    pub remaining: Vec<IdentityId>,
    /// Blocks of older versions deleted from the store.
    pub deleted_blocks: usize,
}

/// What [`Vault::rotate_key`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RotateReport {
    /// Data keys wrapped again to the new key.
    pub rewrapped: usize,
    /// Records re-keyed (a patient's own), so the old key opens nothing published from now on.
    pub rekeyed: Vec<RecordId>,
}

/// The rekey of one record, ready to submit.
pub(crate) struct Rekey {
    pub(crate) txs: Vec<SignedTx>,
    pub(crate) version: u32,
    pub(crate) kept: Vec<IdentityId>,
    pub(crate) root: Cid,
}

/// Most re-wrapped keys per `Rewrap` transaction (about 40 KiB at 4096 bits).
const REWRAPS_PER_TX: usize = 64;

impl Vault {
    fn writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly)
        }
    }

    /// Fails with `ReadOnly` unless this vault can write, and brings it to the sequencer's
    /// head first if the chain moved since it last looked (other clients' transactions on a
    /// network): every write is checked and built against the latest state.
    pub(crate) async fn ready_to_write(&mut self) -> Result<()> {
        self.writable()?;
        let Some(head) = self.sequencer.head().await? else {
            return Ok(());
        };
        if head == self.state.head_pointer() {
            return Ok(());
        }
        // A node that lags behind what this vault already verified answers an older head:
        // nothing to apply (never a step back).
        if let crate::ledger::chain::Head::Certified(c) =
            crate::ledger::chain::fetch_head(&self.store, &head).await?
            && c.certificate.checkpoint.height <= self.state.height()
        {
            return Ok(());
        }
        self.sync_to(&head).await?;
        Ok(())
    }

    /// The next unsigned transaction of `author` (the `extra`-th after its last one).
    /// Signs `tx` as `author`, through the platform's RSA where it offers it (see
    /// [`crate::offload::sign`]).
    pub(crate) async fn sign_tx(&self, tx: Tx, author: &Identity) -> Result<SignedTx> {
        if self.offload.is_none() {
            return SignedTx::sign(tx, author);
        }
        let message = SignedTx::signing_bytes(&tx);
        let sig = crate::offload::sign(self.offload.as_deref(), author, &message).await?;
        Ok(SignedTx::assemble(tx, sig, None))
    }

    pub(crate) fn next_tx(&self, author: &Identity, extra: u64, body: TxBody) -> Tx {
        Tx {
            genesis: self.state.genesis_cid(),
            author: author.id(),
            seq: self.state.last_seq(&author.id()) + 1 + extra,
            time: self.now(),
            body,
        }
    }

    /// Refuses early (before any long work) a transaction the state would refuse.
    pub(crate) fn probe(&self, tx: &Tx) -> Result<()> {
        self.state
            .check_unsigned(tx, self.now().max(self.state.time()))
    }

    /// Submits `txs`, which publish the version whose content is `root`: the content is pinned
    /// first (so a garbage collector running meanwhile keeps it), and unpinned if the
    /// submission is refused.
    pub(crate) async fn submit_pinned(
        &mut self,
        txs: Vec<SignedTx>,
        root: Cid,
    ) -> Result<Committed> {
        self.store.pin(&root).await?;
        match self.submit(txs).await {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = self.store.unpin(&root).await;
                Err(e)
            }
        }
    }

    /// Submits `txs` together and brings this vault to the certified head that holds them.
    pub(crate) async fn submit(&mut self, txs: Vec<SignedTx>) -> Result<Committed> {
        self.writable()?;
        let committed = self.sequencer.submit(&Submission { txs }).await?;
        self.sync_to(&committed.head).await?;
        Ok(committed)
    }

    /// Casts `authority`'s vote for a change of the network's authorities (adding one, with
    /// its CometBFT validator key on a network, or removing one). The change takes effect in
    /// the block where more than two thirds of the authorities in effect have voted for it; on
    /// a network the validator set follows. Returns the vote's transaction CID.
    pub async fn vote_authority(
        &mut self,
        authority: &Identity,
        change: crate::ledger::AuthorityChangeKind,
    ) -> Result<Cid> {
        self.ready_to_write().await?;
        let tx = self.next_tx(authority, 0, TxBody::AuthorityChange { change });
        self.probe(&tx)?;
        let signed = self.sign_tx(tx, authority).await?;
        let cid = signed.cid;
        self.submit(vec![signed]).await?;
        Ok(cid)
    }

    /// Registers `identity` on the chain. A doctor registers with an `endorsement` of their
    /// licence, which an authority of this network made for them (`medshare endorse`,
    /// [`Endorsement::sign`]); a patient needs none. Authorities are named by the genesis
    /// block or added by vote, not registered.
    pub async fn register(
        &mut self,
        identity: &Identity,
        endorsement: Option<&Endorsement>,
    ) -> Result<Cid> {
        self.ready_to_write().await?;
        let body = match (identity.role(), endorsement) {
            (Role::Patient, None) => TxBody::RegisterPatient {
                key: identity.public().clone(),
            },
            (Role::Patient, Some(_)) => {
                return Err(Error::InvalidInput(
                    "a patient registers without an endorsement".into(),
                ));
            }
            (Role::Doctor, None) => {
                return Err(Error::InvalidInput(
                    "a doctor registers with an authority's endorsement of their licence".into(),
                ));
            }
            (Role::Doctor, Some(e)) => {
                if e.doctor != identity.id() {
                    return Err(Error::InvalidInput(format!(
                        "the endorsement is for {}, not {}",
                        e.doctor,
                        identity.id()
                    )));
                }
                if e.genesis != self.state.genesis_cid() {
                    return Err(Error::InvalidInput(format!(
                        "the endorsement is for the network {}, not {}",
                        e.genesis,
                        self.state.genesis_cid()
                    )));
                }
                TxBody::RegisterDoctor {
                    key: identity.public().clone(),
                    licence: e.licence.clone(),
                    authority: e.authority,
                    endorsement: e.signature.clone(),
                }
            }
            (Role::Authority, _) => {
                return Err(Error::Rejected {
                    rule: crate::rule::Rule::Role,
                    detail: "authorities are named by the genesis block or added by vote".into(),
                });
            }
        };
        if identity.id() != identity.key_id() {
            return Err(Error::InvalidInput(
                "a rotated key registers nothing: its account is already registered".into(),
            ));
        }
        let tx = Tx {
            genesis: self.state.genesis_cid(),
            author: identity.id(),
            seq: 1,
            time: self.now(),
            body,
        };
        self.probe(&tx)?;
        let tx = self.sign_tx(tx, identity).await?;
        let cid = tx.cid;
        self.submit(vec![tx]).await?;
        Ok(cid)
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
    /// memory: sealed, cut into UnixFS blocks, stored, and recorded on the chain. The content
    /// is pinned where the store pins.
    pub async fn publish<R: Read + MaybeSend>(
        &mut self,
        patient: &Identity,
        input: R,
        metadata: Metadata,
        progress: Progress<'_>,
    ) -> Result<RecordId> {
        self.publish_with(
            patient,
            input,
            metadata,
            PublishOptions::default(),
            progress,
        )
        .await
    }

    /// [`Vault::publish`] with options (break-glass emergency access).
    pub async fn publish_with<R: Read + MaybeSend>(
        &mut self,
        patient: &Identity,
        input: R,
        metadata: Metadata,
        options: PublishOptions,
        progress: Progress<'_>,
    ) -> Result<RecordId> {
        self.ready_to_write().await?;
        if options.emergency && self.state.authorities().len() < 2 {
            return Err(Error::InvalidInput(
                "emergency access needs a network of at least two authorities (no single one may open a record)".into(),
            ));
        }
        let record = RecordId::random()?;
        let probe = self.next_tx(
            patient,
            0,
            TxBody::PublishRecord {
                record,
                version: 1,
                content: Cid::dag_cbor(b""),
                size: 0,
                commitment: [0; 32],
                owner_key: vec![0; 256],
            },
        );
        self.probe(&probe)?;
        let dek = DataKey::generate()?;
        let sealed = self
            .store_sealed(patient, &record, 1, &metadata, input, dek.clone(), progress)
            .await?;
        let mut txs = vec![
            self.sign_tx(
                Tx {
                    body: sealed.publish_body(record, 1),
                    ..probe
                },
                patient,
            )
            .await?,
        ];
        if options.emergency {
            let body = crate::vault::emergency::shares_body(&self.state, &record, 1, &dek)?;
            txs.push(
                self.sign_tx(self.next_tx(patient, 1, body), patient)
                    .await?,
            );
        }
        self.submit_pinned(txs, sealed.root).await?;
        Ok(record)
    }

    /// Seals `input` for `owner` under `dek` and stores it as UnixFS: the pipeline behind
    /// publishing (piece k+1 is sealed while piece k is cut into blocks and hashed).
    #[allow(clippy::too_many_arguments)]
    async fn store_sealed<R: Read + MaybeSend>(
        &self,
        owner: &Identity,
        record: &RecordId,
        version: u32,
        metadata: &Metadata,
        input: R,
        dek: DataKey,
        progress: Progress<'_>,
    ) -> Result<SealedContent> {
        let (enc, header) = Encryptor::with_key(
            dek,
            record,
            version,
            metadata,
            &[owner.public()],
            SealOptions::default(),
        )?;
        let parsed = crate::envelope::Header::parse(&header)?;
        let owner_key = parsed.stanzas()[0].wrapped_key.clone();
        let commitment = *parsed.commitment();
        let (root, size) = match self.offload.clone() {
            Some(offload) => {
                let piece = piece_for(metadata.size, batch::OFFLOAD_PIECE);
                self.store_through(&*offload, enc, &header, input, piece, progress)
                    .await?
            }
            None => {
                let piece = piece_for(metadata.size, batch::SEAL_PIECE);
                self.store_here(enc, &header, input, piece, progress)
                    .await?
            }
        };
        Ok(SealedContent {
            root,
            size,
            commitment,
            owner_key,
        })
    }

    /// [`Vault::store_sealed`] with this crate's own AES-GCM and SHA-256, on every core where
    /// there are threads. Returns the root and the envelope's size.
    async fn store_here<R: Read + MaybeSend>(
        &self,
        mut enc: Encryptor,
        header: &[u8],
        mut input: R,
        piece: usize,
        progress: Progress<'_>,
    ) -> Result<(Cid, u64)> {
        let mut importer = Importer::new(self.profile);
        let mut blocks: Vec<Block> = Vec::with_capacity(batch::PUT + 2);
        importer.push(header, &mut blocks);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; piece]);
        let mut sealed = Vec::with_capacity(piece + piece / 64);
        let mut hashing = Vec::with_capacity(piece + piece / 64);
        let mut done = 0u64;
        loop {
            let n = read_full(&mut input, &mut buf)?;
            if n == 0 {
                break;
            }
            let (seal, ()) = join(
                || enc.update(&buf[..n], &mut sealed),
                || importer.push(&hashing, &mut blocks),
            );
            seal?;
            hashing.clear();
            std::mem::swap(&mut sealed, &mut hashing);
            if blocks.len() >= batch::PUT {
                self.store.put_many_hashed(&blocks).await?;
                blocks.clear();
            }
            done += n as u64;
            progress(done);
        }
        importer.push(&hashing, &mut blocks);
        let mut ct = hashing;
        ct.clear();
        enc.finish(&mut ct)?;
        importer.push(&ct, &mut blocks);
        let size = importer.len();
        let root = importer.finish(&mut blocks);
        self.store.put_many_hashed(&blocks).await?;
        Ok((root, size))
    }

    /// [`Vault::store_sealed`] with the chunks sealed and the blocks hashed by `offload`, a piece
    /// at a time: the leaves of piece k are hashed while piece k+1 is sealed. Returns the root
    /// and the envelope's size.
    async fn store_through<R: Read + MaybeSend>(
        &self,
        offload: &dyn Offload,
        enc: Encryptor,
        header: &[u8],
        mut input: R,
        piece: usize,
        progress: Progress<'_>,
    ) -> Result<(Cid, u64)> {
        let mut importer = Importer::new(self.profile);
        let mut blocks: Vec<Block> = Vec::with_capacity(batch::PUT + 2);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; piece]);
        // Plaintext until `offload` seals it in place, so wiped if anything fails first.
        let mut sealed =
            zeroize::Zeroizing::new(Vec::with_capacity(header.len() + piece + piece / 64));
        sealed.extend_from_slice(header);
        let mut enc = Some(enc);
        let mut jobs = Vec::new();
        // The leaves of the piece sealed last, hashed while the next one is sealed.
        let mut leaves: Vec<Vec<u8>> = Vec::new();
        let mut done = 0u64;
        while let Some(mut e) = enc.take() {
            let n = read_full(&mut input, &mut buf)?;
            let key = zeroize::Zeroizing::new(*e.payload_key());
            if n > 0 {
                e.update_deferred(&buf[..n], &mut sealed, &mut jobs)?;
                enc = Some(e);
            } else {
                // The padding may outgrow the buffer: room is made before any plaintext is in
                // it, so no reallocation leaves a copy behind.
                let more = e.finish_len();
                usize::try_from(more)
                    .ok()
                    .and_then(|m| sealed.try_reserve(m).ok())
                    .ok_or(Error::TooLarge {
                        what: "the last step of a record",
                        size: more,
                        limit: usize::MAX as u64,
                    })?;
                e.finish_deferred(&mut sealed, &mut jobs)?;
            }
            let probe = jobs.first().and_then(|j| crate::offload::probe(&sealed, j));
            let items: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
            let (seal, digests) = join_futures(
                offload.seal_chunks(&key, &mut sealed, &jobs),
                digests(offload, &items),
            )
            .await;
            seal?;
            if let Some(p) = &probe {
                crate::offload::check_block(&key, &sealed, p, "sealed")?;
            }
            let digests = digests?;
            drop(items);
            importer.link_hashed(std::mem::take(&mut leaves), &digests, &mut blocks)?;
            jobs.clear();
            leaves = importer.cut(&sealed);
            sealed.clear();
            if blocks.len() >= batch::PUT {
                self.store.put_many_hashed(&blocks).await?;
                blocks.clear();
            }
            done += n as u64;
            progress(done);
        }
        leaves.extend(importer.cut_last());
        let items: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
        let digests = digests(offload, &items).await?;
        drop(items);
        importer.link_hashed(leaves, &digests, &mut blocks)?;
        let size = importer.len();
        let root = importer.finish(&mut blocks);
        self.store.put_many_hashed(&blocks).await?;
        Ok((root, size))
    }

    /// Grants `doctor` the latest version of `record`. If a grant on the record has expired
    /// (by this vault's clock), the record is re-keyed first, in the same submission, so that
    /// the expired doctor's key opens nothing from now on.
    pub async fn grant(
        &mut self,
        patient: &Identity,
        record: &RecordId,
        doctor: &IdentityId,
        options: GrantOptions,
    ) -> Result<()> {
        self.ready_to_write().await?;
        let now = self.now();
        let info = self.record(record)?;
        let expires = options.expires.map(|e| e.resolve(now)).transpose()?;
        let probe_body = |version| TxBody::Grant {
            record: *record,
            version,
            doctor: *doctor,
            wrapped_key: vec![0; 256],
            expires,
            purpose: options.purpose,
            note: None,
        };
        // An expired grant, a share of the key released to an emergency doctor, or a split
        // over authorities no longer the network's: the record is re-keyed first.
        let expired = self
            .state
            .access_list(record)?
            .iter()
            .any(|g| g.expired_at(now))
            || self.state.exposed(record)
            || self.state.split_outdated(record);
        match self.probe(&self.next_tx(patient, 0, probe_body(info.version))) {
            // The exposed version takes no grant: the re-key below makes the one it goes on.
            Err(Error::Rejected {
                rule: crate::rule::Rule::Rekey,
                ..
            }) if expired => {}
            other => other?,
        }
        let mut txs = Vec::new();
        let mut version = info.version;
        let mut new_root = None;
        if expired {
            let rekey = self
                .rekey_txs(
                    patient,
                    record,
                    |g| !g.expired_at(now) && g.doctor != *doctor,
                    0,
                    &BTreeMap::new(),
                )
                .await?;
            version = rekey.version;
            txs = rekey.txs;
            new_root = Some(rekey.root);
        }
        let dek = if expired {
            // The new version's key: unwrap it from the PublishRecord just built.
            let Some(TxBody::PublishRecord { owner_key, .. }) = txs.first().map(|t| &t.tx.body)
            else {
                return Err(Error::Rejected {
                    rule: crate::rule::Rule::Rekey,
                    detail: "re-key produced no new version".into(),
                });
            };
            DataKey::unwrap(patient, owner_key, record, version)?
        } else {
            // The latest version's key, as its owner (the access and current-key checks).
            self.unlock_to_rewrap(patient, record).await?.1
        };
        let key = self
            .state
            .identity(doctor)
            .ok_or_else(|| Error::UnknownIdentity(doctor.to_string()))?
            .1
            .clone();
        let note = options
            .note
            .as_deref()
            .map(|n| encrypt_note(patient.public(), &key, record, version, doctor, n))
            .transpose()?;
        let body = TxBody::Grant {
            record: *record,
            version,
            doctor: *doctor,
            wrapped_key: dek.wrap(&key, record, version)?,
            expires,
            purpose: options.purpose,
            note,
        };
        let extra = txs.len() as u64;
        txs.push(
            self.sign_tx(self.next_tx(patient, extra, body), patient)
                .await?,
        );
        let old = self.state.contents(record);
        match new_root {
            Some(root) => {
                self.submit_pinned(txs, root).await?;
                self.retire(old).await?;
            }
            None => {
                self.submit(txs).await?;
            }
        }
        Ok(())
    }

    /// Revokes `doctor` from `record`: a `Revoke` and the record's next version, re-encrypted
    /// under a new key and granted again to the remaining (unexpired) doctors, all in one
    /// block; then the older versions' blocks are deleted from this vault's store (unpinned
    /// where the store pins).
    pub async fn revoke(
        &mut self,
        patient: &Identity,
        record: &RecordId,
        doctor: &IdentityId,
    ) -> Result<RevokeReport> {
        self.ready_to_write().await?;
        let revoke = self.next_tx(
            patient,
            0,
            TxBody::Revoke {
                record: *record,
                doctor: *doctor,
            },
        );
        self.probe(&revoke)?;
        let now = self.now();
        let rekey = self
            .rekey_txs(
                patient,
                record,
                |g| g.doctor != *doctor && !g.expired_at(now),
                1,
                &BTreeMap::new(),
            )
            .await?;
        let mut txs = vec![self.sign_tx(revoke, patient).await?];
        txs.extend(rekey.txs);
        let old = self.state.contents(record);
        self.submit_pinned(txs, rekey.root).await?;
        let deleted = self.retire(old).await?;
        Ok(RevokeReport {
            new_version: rekey.version,
            remaining: rekey.kept,
            deleted_blocks: deleted,
        })
    }

    /// The transactions that re-key `record` (owned by `patient`): its next version under a new
    /// data key, stored, and new grants to the doctors for which `keep` holds (same expiry,
    /// purpose and note). `extra` is how many of the patient's transactions come before these
    /// in the submission.
    /// `notes`: the grants' notes already decrypted, by doctor (a rotation decrypts them with
    /// the retired key, to which they were wrapped); the others are decrypted as `patient`.
    pub(crate) async fn rekey_txs(
        &self,
        patient: &Identity,
        record: &RecordId,
        keep: impl Fn(&AccessGrant) -> bool,
        extra: u64,
        notes: &BTreeMap<IdentityId, String>,
    ) -> Result<Rekey> {
        let (access, old_dek) = self.unlock(patient, record).await?;
        let grants: Vec<AccessGrant> = self
            .state
            .access_list(record)?
            .into_iter()
            .filter(|g| keep(g))
            .collect();
        let header = self.read_header(record, &access).await?;
        let meta = header.metadata(&old_dek)?;
        let version = access.version + 1;
        let new_dek = DataKey::generate()?;
        let (enc, head) = Encryptor::with_key(
            new_dek.clone(),
            record,
            version,
            &meta,
            &[patient.public()],
            SealOptions::default(),
        )?;
        let parsed = crate::envelope::Header::parse(&head)?;
        let owner_key = parsed.stanzas()[0].wrapped_key.clone();
        let commitment = *parsed.commitment();
        // Stream the current version through decryption into the new envelope: constant
        // memory whatever the record's size.
        let mut reseal = Reseal {
            enc,
            importer: Importer::new(self.profile),
            ct: Vec::new(),
            blocks: Vec::new(),
        };
        reseal.importer.push(&head, &mut reseal.blocks);
        self.read_envelope(record, &access, &old_dek, &mut reseal, &mut |_| {})
            .await?;
        let Reseal {
            enc,
            mut importer,
            mut ct,
            mut blocks,
        } = reseal;
        enc.finish(&mut ct)?;
        importer.push(&ct, &mut blocks);
        let size = importer.len();
        let root = importer.finish(&mut blocks);
        self.store.put_many_hashed(&blocks).await?;
        let sealed = SealedContent {
            root,
            size,
            commitment,
            owner_key,
        };
        let mut txs = vec![
            self.sign_tx(
                self.next_tx(patient, extra, sealed.publish_body(*record, version)),
                patient,
            )
            .await?,
        ];
        let mut kept = Vec::new();
        for (i, g) in grants.iter().enumerate() {
            let key = self
                .state
                .identity(&g.doctor)
                .ok_or_else(|| Error::UnknownIdentity(g.doctor.to_string()))?
                .1;
            let note = match &g.note {
                Some(n) => {
                    let text = match notes.get(&g.doctor) {
                        Some(t) => t.clone(),
                        None => decrypt_note(patient, record, g.version, &g.doctor, n)?,
                    };
                    Some(encrypt_note(
                        patient.public(),
                        key,
                        record,
                        version,
                        &g.doctor,
                        &text,
                    )?)
                }
                None => None,
            };
            let body = TxBody::Grant {
                record: *record,
                version,
                doctor: g.doctor,
                wrapped_key: new_dek.wrap(key, record, version)?,
                expires: g.expires,
                purpose: g.purpose,
                note,
            };
            txs.push(
                self.sign_tx(self.next_tx(patient, extra + 1 + i as u64, body), patient)
                    .await?,
            );
            kept.push(g.doctor);
        }
        // A record opted into break-glass access stays so: the new key is split again (unless
        // the network is down to one authority, which may not hold a record alone).
        if self.state.emergency_split(record).is_some()
            && crate::vault::emergency::can_split(&self.state)
        {
            let body =
                crate::vault::emergency::shares_body(&self.state, record, version, &new_dek)?;
            let n = txs.len() as u64;
            txs.push(
                self.sign_tx(self.next_tx(patient, extra + n, body), patient)
                    .await?,
            );
        }
        Ok(Rekey {
            txs,
            version,
            kept,
            root,
        })
    }

    /// Replaces `old`'s key by `new`'s (`new` = `old.rotated()`: same account). The rotation is
    /// signed by both keys; every data key `old` could open is wrapped again to `new`, in the
    /// same submission; then, for a patient, every record she owns is re-keyed, so that the old
    /// key (perhaps compromised) opens nothing published from now on.
    pub async fn rotate_key(&mut self, old: &Identity, new: &Identity) -> Result<RotateReport> {
        self.ready_to_write().await?;
        if new.id() != old.id() || new.key_id() == old.key_id() || new.role() != old.role() {
            return Err(Error::InvalidInput(
                "the new identity must be the old one rotated (same account, new key)".into(),
            ));
        }
        let rotate = self.next_tx(
            old,
            0,
            TxBody::RotateKey {
                new_key: new.public().clone(),
            },
        );
        self.probe(&rotate)?;
        // Every key the old key opens: own records' latest versions, grants held.
        let me = old.id();
        let mut keys = Vec::new();
        let mut mine: Vec<RecordId> = Vec::new();
        let mut notes: BTreeMap<RecordId, BTreeMap<IdentityId, String>> = BTreeMap::new();
        for info in self.state.records_owned_by(&me) {
            let (access, dek) = self.unlock_to_rewrap(old, &info.record).await?;
            // The grants' notes are wrapped to the key being retired: read them now, to wrap
            // them to the new one when the record is re-keyed below.
            for g in self.state.access_list(&info.record)? {
                if let Some(n) = &g.note {
                    let text = decrypt_note(old, &info.record, g.version, &g.doctor, n)?;
                    notes.entry(info.record).or_default().insert(g.doctor, text);
                }
            }
            keys.push(Rewrapped {
                record: info.record,
                version: access.version,
                wrapped_key: dek.wrap(new.public(), &info.record, access.version)?,
            });
            mine.push(info.record);
        }
        for info in self.state.records_granted_to(&me) {
            let Some(g) = info.grant else { continue };
            let wrapped = self
                .wrapped_key_at(&g.key, &info.record, g.version, &me)
                .await?;
            let dek = DataKey::unwrap(old, &wrapped, &info.record, g.version)?;
            keys.push(Rewrapped {
                record: info.record,
                version: g.version,
                wrapped_key: dek.wrap(new.public(), &info.record, g.version)?,
            });
        }
        let mut txs = vec![match self.offload.as_deref() {
            None => SignedTx::sign_rotation(rotate, old, new)?,
            offload => {
                // Signed by the old key and co-signed by the new one, through the platform.
                let message = SignedTx::signing_bytes(&rotate);
                let sig = crate::offload::sign(offload, old, &message).await?;
                let cosig = crate::offload::sign(offload, new, &message).await?;
                SignedTx::assemble(rotate, sig, Some(cosig))
            }
        }];
        for (i, chunk) in keys.chunks(REWRAPS_PER_TX).enumerate() {
            let body = TxBody::Rewrap {
                keys: chunk.to_vec(),
            };
            txs.push(
                self.sign_tx(self.next_tx(new, 1 + i as u64, body), new)
                    .await?,
            );
        }
        self.submit(txs).await?;
        let mut rekeyed = Vec::new();
        let now = self.now();
        for record in mine {
            let old_contents = self.state.contents(&record);
            let rekey = self
                .rekey_txs(
                    new,
                    &record,
                    |g| !g.expired_at(now),
                    0,
                    notes.get(&record).unwrap_or(&BTreeMap::new()),
                )
                .await?;
            self.submit_pinned(rekey.txs, rekey.root).await?;
            self.retire(old_contents).await?;
            rekeyed.push(record);
        }
        Ok(RotateReport {
            rewrapped: keys.len(),
            rekeyed,
        })
    }
}

/// A sealed version in the store: what its `PublishRecord` says.
struct SealedContent {
    root: Cid,
    size: u64,
    commitment: [u8; 32],
    owner_key: Vec<u8>,
}

impl SealedContent {
    fn publish_body(&self, record: RecordId, version: u32) -> TxBody {
        TxBody::PublishRecord {
            record,
            version,
            content: self.root,
            size: self.size,
            commitment: self.commitment,
            owner_key: self.owner_key.clone(),
        }
    }
}

/// Plaintext read per step of a publish: `max` bytes, or the whole record if it is smaller (a
/// small record does not zero a buffer of `max` bytes).
fn piece_for(size: u64, max: usize) -> usize {
    usize::try_from(size).map_or(max, |s| s.clamp(1, max))
}

/// The SHA-256 digests of `items` through `offload` (no call for none).
async fn digests(offload: &dyn Offload, items: &[&[u8]]) -> Result<Vec<[u8; 32]>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    offload.sha256_many(items).await
}
