//! Reading records: the access check at the verified head, then the envelope streamed out of
//! the store block by block, each block hash-checked, the key commitment checked before any
//! plaintext, and the plaintext written as it is authenticated.

use std::io::Write;

use zeroize::Zeroizing;

use crate::cid::Cid;
use crate::envelope::key::DataKey;
use crate::envelope::{Chunk, Decryptor, Encryptor, Header, Metadata};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId};
use crate::ledger::state::{Access, KeyRef, WrappedKey};
use crate::ledger::{SignedTx, TxBody};
use crate::offload::Offload;
use crate::platform::{
    MaybeSend, Progress, batch, join, join_fetch, join_futures, map_io, overlap,
};
use crate::record::RecordId;
use crate::store::{Block, Store};
use crate::unixfs::{Importer, Walker};
use crate::vault::Vault;

const READ_BUF: usize = 1 << 20;

/// Where decrypted plaintext goes; a sink may produce blocks to store as it consumes.
pub(crate) trait Sink: MaybeSend {
    /// Called once, with the authenticated metadata, before any plaintext.
    fn begin(&mut self, metadata: &Metadata) -> Result<()> {
        let _ = metadata;
        Ok(())
    }
    fn consume(&mut self, plain: &[u8]) -> Result<()>;
    fn drain(&mut self) -> Vec<Block> {
        Vec::new()
    }
}

pub(crate) struct WriteSink<W: Write>(pub(crate) W);

impl<W: Write + MaybeSend> Sink for WriteSink<W> {
    fn consume(&mut self, plain: &[u8]) -> Result<()> {
        self.0.write_all(plain).map_err(Error::Io)
    }
}

/// A writer made once the metadata (the plaintext's size) is known.
struct SizedSink<W, F> {
    make: Option<F>,
    out: Option<W>,
}

impl<W: Write + MaybeSend, F: FnOnce(&Metadata) -> Result<W> + MaybeSend> Sink for SizedSink<W, F> {
    fn begin(&mut self, metadata: &Metadata) -> Result<()> {
        if let Some(make) = self.make.take() {
            self.out = Some(make(metadata)?);
        }
        Ok(())
    }

    fn consume(&mut self, plain: &[u8]) -> Result<()> {
        match &mut self.out {
            Some(w) => w.write_all(plain).map_err(Error::Io),
            None if plain.is_empty() => Ok(()),
            None => Err(Error::Truncated),
        }
    }
}

/// Re-encryption (a re-key): plaintext in, the new envelope's UnixFS blocks out.
pub(crate) struct Reseal {
    pub(crate) enc: Encryptor,
    pub(crate) importer: Importer,
    pub(crate) ct: Vec<u8>,
    pub(crate) blocks: Vec<Block>,
}

impl Sink for Reseal {
    fn consume(&mut self, plain: &[u8]) -> Result<()> {
        self.enc.update(plain, &mut self.ct)?;
        self.importer.push(&self.ct, &mut self.blocks);
        self.ct.clear();
        Ok(())
    }

    fn drain(&mut self) -> Vec<Block> {
        std::mem::take(&mut self.blocks)
    }
}

/// Checks fetched blocks against their CIDs, on every core where there are threads.
fn check_all(ids: &[Cid], blocks: &[Vec<u8>]) -> Result<()> {
    let pairs: Vec<(&Cid, &Vec<u8>)> = ids.iter().zip(blocks).collect();
    crate::platform::par_map(&pairs, |(c, b)| Store::check(c, b))
        .into_iter()
        .collect()
}

impl Vault {
    /// What `reader` needs to open the latest version of `record`, and its data key, to be
    /// checked against the version's key commitment before it decrypts anything (reading the
    /// envelope does); see [`Vault::unlock_to_rewrap`] for a key that is passed on instead.
    pub(crate) async fn unlock(
        &self,
        reader: &Identity,
        record: &RecordId,
    ) -> Result<(Access, DataKey)> {
        let access = match self.state.access(record, &reader.id(), self.now()) {
            Ok(a) => a,
            // A doctor without a grant may hold an emergency access (break-glass).
            Err(
                e @ (Error::AccessDenied(_) | Error::AccessRevoked(_) | Error::AccessExpired(_)),
            ) => {
                self.check_current_key(reader)?;
                return self.emergency_unlock(reader, record)?.ok_or(e);
            }
            Err(e) => return Err(e),
        };
        self.check_current_key(reader)?;
        let wrapped = match &access.key {
            WrappedKey::Bytes(b) => b.clone(),
            WrappedKey::At(at) => {
                self.wrapped_key_at(at, record, access.version, &reader.id())
                    .await?
            }
            WrappedKey::None => return Err(Error::AccessDenied(record.to_string())),
        };
        let dek = self
            .unwrap_dek(reader, &wrapped, record, access.version)
            .await?;
        Ok((access, dek))
    }

    /// [`Vault::unlock`] for a key that is wrapped again or split (a grant, a rotation,
    /// break-glass shares) rather than used to decrypt: a key the platform unwrapped is checked
    /// against the envelope's commitment first, so a wrong one never reaches the ledger.
    pub(crate) async fn unlock_to_rewrap(
        &self,
        reader: &Identity,
        record: &RecordId,
    ) -> Result<(Access, DataKey)> {
        let (access, dek) = self.unlock(reader, record).await?;
        if self.offload.is_some() {
            self.read_header(record, &access).await?.check_key(&dek)?;
        }
        Ok((access, dek))
    }

    /// [`DataKey::unwrap`], through the platform's RSA where it offers it (for [`Vault::unlock`],
    /// whose key is checked against the envelope's commitment before it is used).
    async fn unwrap_dek(
        &self,
        reader: &Identity,
        wrapped: &[u8],
        record: &RecordId,
        version: u32,
    ) -> Result<DataKey> {
        if let Some(offload) = &self.offload
            && wrapped.len() == reader.public().bits() / 8
        {
            let label = crate::envelope::oaep_label(record, version);
            if let Some(raw) = offload.oaep_unwrap(reader, wrapped, &label).await? {
                let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| Error::KeyUnwrap)?;
                return Ok(DataKey::from_bytes(key));
            }
        }
        DataKey::unwrap(reader, wrapped, record, version)
    }

    /// The bytes of `doctor`'s wrapped key to `record` `version`, from the transaction the state
    /// names for it ([`KeyRef`]): fetched from the store (hash-checked), it must be her `Grant`
    /// of that version or her `Rewrap` of it.
    pub(crate) async fn wrapped_key_at(
        &self,
        at: &KeyRef,
        record: &RecordId,
        version: u32,
        doctor: &IdentityId,
    ) -> Result<Vec<u8>> {
        let raw = self.store.get(&at.tx).await?;
        let tx = SignedTx::decode(&raw)
            .map_err(|e| Error::StoreCorrupt(format!("transaction {}: {e}", at.tx)))?;
        let found = match &tx.tx.body {
            TxBody::Grant {
                record: r,
                version: v,
                doctor: d,
                wrapped_key,
                ..
            } if at.index == 0 && r == record && *v == version && d == doctor => Some(wrapped_key),
            TxBody::Rewrap { keys } if tx.tx.author == *doctor => keys
                .get(at.index as usize)
                .filter(|k| k.record == *record && k.version == version)
                .map(|k| &k.wrapped_key),
            _ => None,
        };
        found.cloned().ok_or_else(|| {
            Error::StoreCorrupt(format!(
                "the chain state names transaction {} (key {}) for {doctor}'s key to record {record} version {version}, and it carries no such key",
                at.tx, at.index
            ))
        })
    }

    /// Fails unless `reader` is its account's current key.
    fn check_current_key(&self, reader: &Identity) -> Result<()> {
        if let Some((_, current)) = self.state.identity(&reader.id())
            && current.id() != reader.key_id()
        {
            return Err(Error::InvalidKey(format!(
                "key {} of account {} was retired by a key rotation; use its current key {}",
                reader.key_id(),
                reader.id(),
                current.id()
            )));
        }
        Ok(())
    }

    /// Decrypts the latest version of `record` as `reader` into `out`, after checking the
    /// chain's access list at the verified head: the owner, or a doctor with an unexpired,
    /// unrevoked grant. Returns the record's metadata.
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
        let (access, dek) = self.unlock(reader, record).await?;
        let mut sink = WriteSink(out);
        let meta = self
            .read_envelope(record, &access, &dek, &mut sink, progress)
            .await?;
        sink.0.flush()?;
        Ok(meta)
    }

    /// [`Vault::open_record_with_progress`] into a writer `make` returns once the record's
    /// metadata (its size, say, to allocate the output once) is authenticated; returns the
    /// writer and the metadata.
    pub async fn open_record_sized<W, F>(
        &self,
        reader: &Identity,
        record: &RecordId,
        make: F,
        progress: Progress<'_>,
    ) -> Result<(W, Metadata)>
    where
        W: Write + MaybeSend,
        F: FnOnce(&Metadata) -> Result<W> + MaybeSend,
    {
        let (access, dek) = self.unlock(reader, record).await?;
        let mut sink = SizedSink {
            make: Some(make),
            out: None,
        };
        let meta = self
            .read_envelope(record, &access, &dek, &mut sink, progress)
            .await?;
        let mut out = match sink.out {
            Some(out) => out,
            None => make_late(sink.make, &meta)?,
        };
        out.flush()?;
        Ok((out, meta))
    }

    /// Decrypts the latest version of `record` as `reader` into the file at `path`. The file
    /// appears only once complete and authenticated: a failed or interrupted read leaves
    /// nothing decrypted behind (see [`crate::fsutil::Output`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn open_record_to_path(
        &self,
        reader: &Identity,
        record: &RecordId,
        path: &std::path::Path,
        progress: Progress<'_>,
    ) -> Result<Metadata> {
        let mut output = crate::fsutil::Output::create(path)?;
        let meta = self
            .open_record_with_progress(
                reader,
                record,
                std::io::BufWriter::with_capacity(READ_BUF, output.file()),
                progress,
            )
            .await?;
        output.commit()?;
        Ok(meta)
    }

    /// The metadata (file name, media type, size) of the latest version of `record`, as
    /// `reader`: only the blocks holding the envelope's header are read.
    pub async fn metadata(&self, reader: &Identity, record: &RecordId) -> Result<Metadata> {
        let (access, dek) = self.unlock(reader, record).await?;
        let header = self.read_header(record, &access).await?;
        header.metadata(&dek)
    }

    /// The free-text note of `doctor`'s grant on `record`, as `reader` (the owner or that
    /// doctor): `None` if the grant has no note.
    pub async fn grant_note(
        &self,
        reader: &Identity,
        record: &RecordId,
        doctor: &IdentityId,
    ) -> Result<Option<String>> {
        let grant = self
            .state
            .access_list(record)?
            .into_iter()
            .find(|g| g.doctor == *doctor)
            .ok_or_else(|| Error::AccessDenied(record.to_string()))?;
        let Some(note) = grant.note else {
            return Ok(None);
        };
        decrypt_note(reader, record, grant.version, doctor, &note).map(Some)
    }

    /// The envelope header of a version (reads only the blocks holding it).
    pub(crate) async fn read_header(&self, record: &RecordId, access: &Access) -> Result<Header> {
        let mut walker = Walker::with_limit(access.content, access.size);
        let mut head = Vec::new();
        while let Some(cid) = walker.next_cid() {
            let bytes = self.store.get(&cid).await?;
            head.extend_from_slice(&walker.visit_verified(&bytes)?);
            match Header::parse(&head) {
                Ok(h) => {
                    check_header(&h, record, access)?;
                    return Ok(h);
                }
                Err(Error::Truncated) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Truncated)
    }

    pub(crate) async fn read_envelope(
        &self,
        record: &RecordId,
        access: &Access,
        dek: &DataKey,
        out: &mut dyn Sink,
        progress: Progress<'_>,
    ) -> Result<Metadata> {
        let mut walker = Walker::with_limit(access.content, access.size);
        let mut opening = Opening {
            record,
            access,
            dek,
            head: Vec::new(),
            dec: None,
            begun: false,
            plain: Zeroizing::new(Vec::with_capacity(READ_BUF)),
            jobs: Vec::new(),
        };
        let offload = self.offload.as_deref();
        let mut done = 0u64;
        // File data already checked against its CIDs, in order, waiting to be decrypted.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        // Buffers of leaves already decrypted, for the next fetch.
        let mut spare: Vec<Vec<u8>> = Vec::new();
        loop {
            // Raw leaves come in groups: group k+1 is fetched, then hashed on the other cores
            // while group k is decrypted (with one thread, `join` runs one after the other).
            let ids = walker.upcoming_raw(match offload {
                Some(_) => batch::OFFLOAD_GROUP,
                None => batch::OPEN_GROUP,
            });
            if ids.is_empty() {
                let Some(cid) = walker.next_cid() else { break };
                let bytes = self.store.get(&cid).await?;
                let data = walker.visit_verified(&bytes)?;
                if !data.is_empty() {
                    pending.push(data.into_owned());
                }
                done += opening.decrypt(offload, &pending, &mut *out).await?;
                pending.clear();
            } else if let Some(offload) = offload {
                // Group k+1 is hashed while group k is decrypted, both through `offload` (on
                // threads of its own).
                let mut fetched = Vec::with_capacity(ids.len());
                for id in &ids {
                    fetched.push(self.store.get_unchecked(id).await?);
                }
                let items: Vec<&[u8]> = fetched.iter().map(Vec::as_slice).collect();
                let (decrypted, digests) = join_futures(
                    opening.decrypt(Some(offload), &pending, &mut *out),
                    offload.sha256_many(&items),
                )
                .await;
                done += decrypted?;
                pending.clear();
                let digests = digests?;
                drop(items);
                if digests.len() != ids.len() {
                    return Err(Error::Backend(format!(
                        "{} digests for {} blocks",
                        digests.len(),
                        ids.len()
                    )));
                }
                for ((id, digest), bytes) in ids.iter().zip(&digests).zip(fetched) {
                    id.verify_digest(digest)?;
                    // A raw leaf's file data is the block itself.
                    walker.visit_verified(&bytes)?;
                    pending.push(bytes);
                }
            } else if self.store.parallel_io() {
                // The group is fetched (each leaf on its own thread) and hashed while the
                // previous one is decrypted.
                let (decrypted, fetched) = overlap(
                    true,
                    || opening.decrypt_here(&pending, &mut *out),
                    self.fetch_checked(&ids),
                )
                .await;
                done += decrypted?;
                pending.clear();
                for bytes in fetched? {
                    // A raw leaf's file data is the block itself.
                    walker.visit_verified(&bytes)?;
                    pending.push(bytes);
                }
            } else if self.store.fetch_on_pool() {
                // The group is fetched and hashed on the pool, a leaf per task, while the
                // previous one is decrypted here; it is read into the buffers of the group
                // before last (ciphertext only; see `BlockStore::get_into`).
                let jobs: Vec<(Cid, Vec<u8>)> = ids
                    .iter()
                    .map(|id| (*id, spare.pop().unwrap_or_default()))
                    .collect();
                let (decrypted, fetched) = join_fetch(
                    || opening.decrypt_here(&pending, &mut *out),
                    jobs,
                    |(id, mut bytes)| async move {
                        self.store.get_unchecked_into(&id, &mut bytes).await?;
                        Store::check(&id, &bytes)?;
                        Ok::<_, Error>(bytes)
                    },
                )
                .await;
                done += decrypted?;
                spare.append(&mut pending);
                for bytes in fetched {
                    let bytes = bytes?;
                    // A raw leaf's file data is the block itself.
                    walker.visit_verified(&bytes)?;
                    pending.push(bytes);
                }
            } else {
                let mut fetched = Vec::with_capacity(ids.len());
                for id in &ids {
                    fetched.push(self.store.get_unchecked(id).await?);
                }
                let (decrypted, checked) = join(
                    || opening.decrypt_here(&pending, &mut *out),
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
        done += opening.decrypt(offload, &pending, &mut *out).await?;
        let blocks = out.drain();
        if !blocks.is_empty() {
            self.store.put_many_hashed(&blocks).await?;
        }
        progress(done);
        if walker.position() != access.size {
            return Err(Error::SizeMismatch {
                expected: access.size,
                actual: walker.position(),
            });
        }
        let dec = opening.dec.ok_or(Error::Truncated)?;
        dec.finish()
    }
}

/// An envelope's bytes, in order, to plaintext: the header gathered and checked, then the
/// payload decrypted into a sink.
struct Opening<'a> {
    record: &'a RecordId,
    access: &'a Access,
    dek: &'a DataKey,
    /// The header's bytes so far, until it parses.
    head: Vec<u8>,
    dec: Option<Decryptor>,
    /// Whether the sink was given the metadata.
    begun: bool,
    plain: Zeroizing<Vec<u8>>,
    jobs: Vec<Chunk>,
}

impl Opening<'_> {
    /// Feeds envelope bytes to the decryptor (once the header is complete); with `jobs`, the
    /// chunks are laid out in `plain` to be opened by the caller.
    fn feed(&mut self, data: &[u8], jobs: Option<&mut Vec<Chunk>>) -> Result<()> {
        if let Some(d) = self.dec.as_mut() {
            return d.update_with(data, &mut self.plain, jobs);
        }
        self.head.extend_from_slice(data);
        match Header::parse(&self.head) {
            Ok(h) => {
                check_header(&h, self.record, self.access)?;
                let mut d = Decryptor::new(&h, self.dek)?;
                let head = std::mem::take(&mut self.head);
                d.update_with(&head[h.len()..], &mut self.plain, jobs)?;
                self.dec = Some(d);
                Ok(())
            }
            Err(Error::Truncated) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands the plaintext decrypted so far to `out` (after the metadata, the first time);
    /// returns its length.
    fn flush(&mut self, out: &mut dyn Sink) -> Result<u64> {
        if !self.begun
            && let Some(dec) = &self.dec
        {
            out.begin(dec.metadata())?;
            self.begun = true;
        }
        out.consume(&self.plain)?;
        let n = self.plain.len() as u64;
        crate::envelope::wipe(&mut self.plain);
        Ok(n)
    }

    /// Decrypts `pending` into `out` with this crate's own AES-GCM; returns the plaintext
    /// bytes written.
    fn decrypt_here(&mut self, pending: &[Vec<u8>], out: &mut dyn Sink) -> Result<u64> {
        let mut n = 0u64;
        for data in pending {
            self.feed(data, None)?;
            n += self.flush(out)?;
        }
        Ok(n)
    }

    /// Decrypts `pending` into `out`, through `offload` if there is one.
    async fn decrypt(
        &mut self,
        offload: Option<&dyn Offload>,
        pending: &[Vec<u8>],
        out: &mut dyn Sink,
    ) -> Result<u64> {
        let Some(offload) = offload else {
            return self.decrypt_here(pending, out);
        };
        let mut jobs = std::mem::take(&mut self.jobs);
        jobs.clear();
        let fed = pending
            .iter()
            .try_for_each(|data| self.feed(data, Some(&mut jobs)));
        let opened = match (fed, self.dec.as_mut()) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(dec)) if !jobs.is_empty() => {
                let key = Zeroizing::new(*dec.payload_key());
                let probe = crate::offload::probe(&self.plain, &jobs[0]);
                match offload.open_chunks(&key, &mut self.plain, &jobs).await {
                    Ok(None) => match &probe {
                        Some(p) => crate::offload::check_block(&key, &self.plain, p, "opened"),
                        None => Ok(()),
                    }
                    .and_then(|()| dec.complete(&mut self.plain, 0, &jobs, None)),
                    Ok(failed) => dec.complete(&mut self.plain, 0, &jobs, failed),
                    Err(e) => Err(e),
                }
            }
            (Ok(()), _) => Ok(()),
        };
        self.jobs = jobs;
        if let Err(e) = opened {
            crate::envelope::wipe(&mut self.plain);
            return Err(e);
        }
        self.flush(out)
    }
}

impl Vault {
    /// Fetches `ids` at once (see [`crate::platform::map_io`]), each checked against its CID
    /// on the thread that fetched it (not on the caller's pool, which may be waiting for this).
    async fn fetch_checked(&self, ids: &[Cid]) -> Result<Vec<Vec<u8>>> {
        map_io(true, ids, |id| async move {
            let bytes = self.store.get_unchecked(&id).await?;
            Store::check(&id, &bytes)?;
            Ok(bytes)
        })
        .await
        .into_iter()
        .collect()
    }
}

/// The envelope must be the version the chain names, committing to the key the chain names.
fn check_header(h: &Header, record: &RecordId, access: &Access) -> Result<()> {
    if h.record() != *record || h.version() != access.version {
        return Err(Error::MalformedEnvelope(format!(
            "content holds record {} version {}, the chain says {record} version {}",
            h.record(),
            h.version(),
            access.version
        )));
    }
    if *h.commitment() != access.commitment {
        return Err(Error::KeyCommitment);
    }
    Ok(())
}

fn note_label(record: &RecordId, version: u32, doctor: &IdentityId) -> Vec<u8> {
    let mut label = b"medshare/v2/grant-note".to_vec();
    label.extend_from_slice(record.as_bytes());
    label.extend_from_slice(&version.to_be_bytes());
    label.extend_from_slice(doctor.as_bytes());
    label
}

/// Encrypts a grant's free-text note for exactly two readers: the doctor and the record's
/// owner (other grantees of the same version, who hold the same data key, cannot read it). A
/// fresh note key is wrapped with RSA-OAEP to each, then the text sealed with AES-256-GCM:
/// `u16 len || wrap to doctor || u16 len || wrap to owner || nonce (12) || ciphertext || tag`.
pub(crate) fn encrypt_note(
    owner: &crate::PublicKey,
    doctor_key: &crate::PublicKey,
    record: &RecordId,
    version: u32,
    doctor: &IdentityId,
    note: &str,
) -> Result<Vec<u8>> {
    seal_text(
        &[doctor_key, owner],
        &note_label(record, version, doctor),
        note,
        "grant note",
        crate::limits::MAX_GRANT_NOTE,
    )
}

/// Decrypts a grant note made by [`encrypt_note`] as `reader` (the doctor or the owner).
pub(crate) fn decrypt_note(
    reader: &Identity,
    record: &RecordId,
    version: u32,
    doctor: &IdentityId,
    sealed: &[u8],
) -> Result<String> {
    open_text(
        reader,
        sealed,
        2,
        &note_label(record, version, doctor),
        "grant note",
    )
}

/// Seals `text` for each of `readers`: a fresh key wrapped with RSA-OAEP (`label`) to each,
/// then AES-256-GCM: `(u16 len || wrap)` per reader, `nonce (12) || ciphertext || tag`. At
/// most `limit` bytes in all.
pub(crate) fn seal_text(
    readers: &[&crate::PublicKey],
    label: &[u8],
    text: &str,
    what: &'static str,
    limit: usize,
) -> Result<Vec<u8>> {
    let key = DataKey::generate()?;
    let wraps = readers
        .iter()
        .map(|r| r.oaep_wrap(key.expose(), label))
        .collect::<Result<Vec<_>>>()?;
    let overhead = wraps.iter().map(|w| 2 + w.len()).sum::<usize>() + 28;
    if text.len() + overhead > limit {
        return Err(Error::TooLarge {
            what,
            size: text.len() as u64,
            limit: limit.saturating_sub(overhead) as u64,
        });
    }
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| Error::Rng)?;
    let mut buf = text.as_bytes().to_vec();
    // `text` is within `limit`, far below AES-GCM's input limit.
    let tag = crate::envelope::key::Cipher::new(key.expose()).seal_in_place(nonce, label, &mut buf);
    let mut out = Vec::with_capacity(overhead + buf.len());
    for w in &wraps {
        out.extend_from_slice(&(w.len() as u16).to_be_bytes());
        out.extend_from_slice(w);
    }
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens text sealed by [`seal_text`] for `count` readers, as `reader` (one of them).
pub(crate) fn open_text(
    reader: &Identity,
    sealed: &[u8],
    count: usize,
    label: &[u8],
    what: &str,
) -> Result<String> {
    let bad = || Error::MalformedEnvelope(format!("{what} is malformed"));
    let mut rest = sealed;
    let mut wraps = Vec::new();
    for _ in 0..count {
        if rest.len() < 2 {
            return Err(bad());
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + n {
            return Err(bad());
        }
        wraps.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    if rest.len() < 28 {
        return Err(bad());
    }
    let key = wraps
        .iter()
        .find_map(|w| reader.oaep_unwrap(w, label).ok())
        .ok_or(Error::NotARecipient)?;
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| Error::KeyUnwrap)?;
    let (nonce, rest) = rest.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let mut buf = Zeroizing::new(ct.to_vec());
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
    crate::envelope::key::Cipher::new(&key)
        .open_in_place(nonce, label, &mut buf, tag)
        .map_err(|()| Error::ChunkAuthentication { chunk: None })?;
    String::from_utf8(buf.to_vec())
        .map_err(|_| Error::MalformedEnvelope(format!("{what} is not UTF-8")))
}

/// The writer of a sized open whose sink never began (no plaintext was produced before the
/// envelope ended): made from the metadata now.
fn make_late<W, F: FnOnce(&Metadata) -> Result<W>>(make: Option<F>, meta: &Metadata) -> Result<W> {
    make.ok_or(Error::Truncated)?(meta)
}
