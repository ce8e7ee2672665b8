//! The payload STREAM: the padded plaintext cut into chunks of `2^e` bytes, each sealed with
//! AES-256-GCM under the payload key with the nonce `0^3 || counter (8 bytes) || last flag`
//! (docs/FORMAT.md §3.4). Push-style and executor-free: callers feed buffers in and take buffers
//! out, so the bytes can come from, or go to, an asynchronous store in constant memory.

use zeroize::{Zeroize, Zeroizing};

use crate::envelope::header::{Header, Metadata, TAG_LEN, padded_len};
use crate::envelope::key::{Cipher, DataKey};
use crate::error::{Error, Result};

/// One chunk whose AES-256-GCM the caller runs, for instance on the platform's own
/// implementation ([`crate::offload::Offload`]): the bytes at `offset..offset + len` of the
/// caller's buffer, sealed or opened under the payload key with `nonce` and no associated data,
/// the 16-byte tag right after them. Everything else about the payload (cutting, nonces, the
/// last-chunk flag, padding) stays with [`Encryptor`] and [`Decryptor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Where the chunk's bytes start in the buffer.
    pub offset: usize,
    /// Bytes of plaintext (equally, of ciphertext before the tag).
    pub len: usize,
    /// The chunk's nonce: `0^3 || index || last flag`.
    pub nonce: [u8; 12],
    /// The chunk's index in the payload.
    pub index: u64,
}

pub(crate) fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Push-style encryption of a payload: feed plaintext, collect ciphertext.
///
/// ```
/// # use medshare::envelope::*;
/// # fn demo(recipient: &medshare::PublicKey) -> medshare::Result<()> {
/// let meta = Metadata { name: "a.txt".into(), media_type: "text/plain".into(), size: 5 };
/// let record = medshare::RecordId::random()?;
/// let (mut enc, mut out) = Encryptor::new(&record, 1, &meta, &[recipient], SealOptions::default())?;
/// enc.update(b"hello", &mut out)?;
/// let dek = enc.finish(&mut out)?;
/// # let _ = dek; Ok(()) }
/// ```
pub struct Encryptor {
    cipher: Cipher,
    key: Zeroizing<[u8; 32]>,
    dek: DataKey,
    chunk_size: usize,
    declared: u64,
    seen: u64,
    index: u64,
    buf: Zeroizing<Vec<u8>>,
}

/// Options for sealing.
#[derive(Clone, Copy, Debug)]
pub struct SealOptions {
    /// Chunk size exponent (`2^e` plaintext bytes per chunk), 12..=20.
    pub chunk_exp: u8,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            chunk_exp: crate::envelope::header::DEFAULT_CHUNK_EXP,
        }
    }
}

impl Encryptor {
    /// Starts an envelope for `record`/`version` with a fresh DEK wrapped to every recipient.
    /// Returns the encryptor and the header bytes (the start of the envelope).
    pub fn new(
        record: &crate::RecordId,
        version: u32,
        metadata: &Metadata,
        recipients: &[&crate::PublicKey],
        options: SealOptions,
    ) -> Result<(Encryptor, Vec<u8>)> {
        Encryptor::with_key(
            DataKey::generate()?,
            record,
            version,
            metadata,
            recipients,
            options,
        )
    }

    /// Like [`Encryptor::new`] with a caller-chosen DEK and a fresh salt.
    pub fn with_key(
        dek: DataKey,
        record: &crate::RecordId,
        version: u32,
        metadata: &Metadata,
        recipients: &[&crate::PublicKey],
        options: SealOptions,
    ) -> Result<(Encryptor, Vec<u8>)> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| Error::Rng)?;
        let stanzas = recipients
            .iter()
            .map(|pk| {
                Ok(crate::envelope::Stanza {
                    recipient: pk.id(),
                    wrapped_key: dek.wrap(pk, record, version)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let header = Header::build(
            &dek,
            salt,
            options.chunk_exp,
            stanzas,
            record,
            version,
            metadata,
        )?;
        let enc = Encryptor::for_header(dek, &header, metadata.size);
        Ok((enc, header.raw))
    }

    /// The encryptor for the payload of a header built or parsed elsewhere (test vectors give
    /// every field). Returns it with the header bytes.
    pub fn from_header(dek: DataKey, header: &Header) -> Result<(Encryptor, Vec<u8>)> {
        let meta = header.metadata(&dek)?;
        Ok((
            Encryptor::for_header(dek, header, meta.size),
            header.as_bytes().to_vec(),
        ))
    }

    fn for_header(dek: DataKey, header: &Header, declared: u64) -> Encryptor {
        let chunk_size = header.chunk_size();
        let key = dek.payload_key(&header.salt, header.as_bytes());
        Encryptor {
            cipher: Cipher::new(&key),
            key,
            dek,
            chunk_size,
            declared,
            seen: 0,
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(chunk_size + TAG_LEN)),
        }
    }

    /// Encrypts `plaintext`, appending complete chunks to `out`. A full chunk is held back until
    /// more input (or `finish`) shows whether it is the last one.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.count(plaintext.len())?;
        self.push(plaintext, out, None);
        Ok(())
    }

    /// Like [`Encryptor::update`], but the chunks are laid out in `out` as plaintext with room
    /// for their tags, and listed in `jobs`, for the caller to seal in place under
    /// [`Encryptor::payload_key`] (each chunk's ciphertext over its plaintext, the tag after it).
    pub fn update_deferred(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
        jobs: &mut Vec<Chunk>,
    ) -> Result<()> {
        self.count(plaintext.len())?;
        self.push(plaintext, out, Some(jobs));
        Ok(())
    }

    /// The payload key, for a caller sealing chunks itself ([`Encryptor::update_deferred`]).
    pub fn payload_key(&self) -> &[u8; 32] {
        &self.key
    }

    fn count(&mut self, n: usize) -> Result<()> {
        self.seen += n as u64;
        if self.seen > self.declared {
            return Err(Error::SizeMismatch {
                expected: self.declared,
                actual: self.seen,
            });
        }
        Ok(())
    }

    fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>, mut jobs: Option<&mut Vec<Chunk>>) {
        while !plaintext.is_empty() {
            if self.buf.len() == self.chunk_size {
                self.emit(false, out, jobs.as_deref_mut());
            }
            if self.buf.is_empty() && plaintext.len() > self.chunk_size {
                // A whole chunk with more input after it, so not the last one: sealed straight
                // from the input into `out`, without passing through the chunk buffer.
                let (chunk, rest) = plaintext.split_at(self.chunk_size);
                let start = out.len();
                out.extend_from_slice(chunk);
                self.seal_at(start, false, out, jobs.as_deref_mut());
                plaintext = rest;
                continue;
            }
            let n = (self.chunk_size - self.buf.len()).min(plaintext.len());
            self.buf.extend_from_slice(&plaintext[..n]);
            plaintext = &plaintext[n..];
        }
    }

    fn emit(&mut self, last: bool, out: &mut Vec<u8>, jobs: Option<&mut Vec<Chunk>>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        super::wipe(&mut self.buf);
        self.seal_at(start, last, out, jobs);
    }

    /// Seals the chunk at `out[start..]` and appends its tag, or (deferred) leaves room for the
    /// tag and lists the chunk in `jobs`.
    fn seal_at(
        &mut self,
        start: usize,
        last: bool,
        out: &mut Vec<u8>,
        jobs: Option<&mut Vec<Chunk>>,
    ) {
        let nonce = chunk_nonce(self.index, last);
        match jobs {
            Some(jobs) => {
                jobs.push(Chunk {
                    offset: start,
                    len: out.len() - start,
                    nonce,
                    index: self.index,
                });
                out.resize(out.len() + TAG_LEN, 0);
            }
            None => {
                let tag = self.cipher.seal_in_place(nonce, &[], &mut out[start..]);
                out.extend_from_slice(&tag);
            }
        }
        self.index += 1;
    }

    /// Appends the padding and the final chunk; returns the DEK (so the caller can wrap it to
    /// more recipients).
    pub fn finish(self, out: &mut Vec<u8>) -> Result<DataKey> {
        self.finish_with(out, None)
    }

    /// How many bytes [`Encryptor::finish`] appends: the chunk held back, the padding, and
    /// their tags.
    pub fn finish_len(&self) -> u64 {
        let plain = self.buf.len() as u64
            + padded_len(self.declared).saturating_sub(self.seen.max(self.declared));
        let chunks = plain.div_ceil(self.chunk_size as u64).max(1);
        plain + chunks * TAG_LEN as u64
    }

    /// [`Encryptor::finish`] for a caller sealing chunks itself: the padding and the final
    /// chunk are laid out in `out` and listed in `jobs` (see [`Encryptor::update_deferred`]).
    pub fn finish_deferred(self, out: &mut Vec<u8>, jobs: &mut Vec<Chunk>) -> Result<DataKey> {
        self.finish_with(out, Some(jobs))
    }

    fn finish_with(
        mut self,
        out: &mut Vec<u8>,
        mut jobs: Option<&mut Vec<Chunk>>,
    ) -> Result<DataKey> {
        if self.seen != self.declared {
            return Err(Error::SizeMismatch {
                expected: self.declared,
                actual: self.seen,
            });
        }
        let mut pad = padded_len(self.declared) - self.declared;
        let zeros = [0u8; 4096];
        while pad > 0 {
            let n = pad.min(zeros.len() as u64) as usize;
            self.push(&zeros[..n], out, jobs.as_deref_mut());
            pad -= n as u64;
        }
        self.emit(true, out, jobs);
        Ok(self.dek.clone())
    }
}

/// Push-style decryption of a payload: feed ciphertext (after the header), collect plaintext.
/// The padding is checked (all zero) and never handed out.
pub struct Decryptor {
    cipher: Cipher,
    key: Zeroizing<[u8; 32]>,
    metadata: Metadata,
    chunk_size: usize,
    chunks: u64,
    /// Padded payload length (plaintext bytes of all chunks together).
    padded: u64,
    index: u64,
    /// Padded plaintext bytes decrypted so far.
    produced: u64,
    /// The index of the first chunk laid out by `update_deferred` and not yet completed (equal
    /// to `index` when none is pending).
    settled: u64,
    remaining: u64,
    buf: Vec<u8>,
}

impl Decryptor {
    /// Prepares to decrypt the payload of `header` with `dek`: checks the key commitment first,
    /// then decrypts and checks the metadata.
    pub fn new(header: &Header, dek: &DataKey) -> Result<Decryptor> {
        header.check_key(dek)?;
        let metadata = header.decrypt_metadata(&dek.metadata_cipher(&header.salt))?;
        let chunk_size = header.chunk_size();
        let key = dek.payload_key(&header.salt, header.as_bytes());
        Ok(Decryptor {
            cipher: Cipher::new(&key),
            key,
            chunks: header.chunk_count(metadata.size),
            padded: padded_len(metadata.size),
            remaining: header.payload_len(metadata.size),
            metadata,
            chunk_size,
            index: 0,
            produced: 0,
            settled: 0,
            buf: Vec::with_capacity(chunk_size + TAG_LEN),
        })
    }

    /// The decrypted metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn current_chunk_len(&self) -> usize {
        if self.index + 1 == self.chunks {
            // The last chunk holds what is left.
            let before = (self.chunks - 1) * self.chunk_size as u64;
            (self.padded - before) as usize + TAG_LEN
        } else {
            self.chunk_size + TAG_LEN
        }
    }

    /// How many bytes of the chunk just decrypted, `chunk`, are real plaintext; the rest is
    /// padding, which must be zero.
    fn unpadded(&mut self, chunk: &[u8]) -> Result<usize> {
        let real_end = self.metadata.size;
        let keep = real_end
            .saturating_sub(self.produced)
            .min(chunk.len() as u64) as usize;
        self.produced += chunk.len() as u64;
        if chunk[keep..].iter().any(|&b| b != 0) {
            return Err(Error::MalformedEnvelope("non-zero payload padding".into()));
        }
        Ok(keep)
    }

    /// Keeps the real plaintext of the chunk just decrypted at `out[start..]` and drops its
    /// padding, which must be zero.
    fn unpad(&mut self, out: &mut Vec<u8>, start: usize) -> Result<()> {
        match self.unpadded(&out[start..]) {
            Ok(keep) => {
                out.truncate(start + keep);
                Ok(())
            }
            Err(e) => {
                out[start..].zeroize();
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Decrypts `ciphertext`, appending plaintext of every completed chunk to `out`.
    pub fn update(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.update_with(ciphertext, out, None)
    }

    /// Like [`Decryptor::update`], but every completed chunk is copied to `out` as it is (its
    /// ciphertext, then its tag) and listed in `jobs`, for the caller to open in place under
    /// [`Decryptor::payload_key`]; then [`Decryptor::complete`] checks and strips the padding.
    pub fn update_deferred(
        &mut self,
        ciphertext: &[u8],
        out: &mut Vec<u8>,
        jobs: &mut Vec<Chunk>,
    ) -> Result<()> {
        self.update_with(ciphertext, out, Some(jobs))
    }

    /// The payload key, for a caller opening chunks itself ([`Decryptor::update_deferred`]).
    pub fn payload_key(&self) -> &[u8; 32] {
        &self.key
    }

    /// Finishes the chunks `jobs` listed since `out` was `from` bytes long, once the caller has
    /// opened them in place: `failed` is the first (in `jobs`' order) that did not
    /// authenticate, if any. Leaves `out[from..]` holding their real plaintext, in order, or
    /// wiped and removed on any error.
    pub fn complete(
        &mut self,
        out: &mut Vec<u8>,
        from: usize,
        jobs: &[Chunk],
        failed: Option<usize>,
    ) -> Result<()> {
        let in_order = jobs
            .iter()
            .enumerate()
            .all(|(k, j)| Some(j.index) == self.settled.checked_add(k as u64))
            && self.settled + jobs.len() as u64 <= self.index;
        let result = match failed {
            _ if !in_order || from > out.len() => Err(Error::InvalidInput(
                "chunks completed out of the order they were laid out in".into(),
            )),
            Some(i) => Err(Error::ChunkAuthentication {
                chunk: jobs.get(i).map(|j| j.index),
            }),
            None => self.compact(out, from, jobs),
        };
        if result.is_ok() {
            self.settled += jobs.len() as u64;
        }
        if result.is_err() && from <= out.len() {
            out[from..].zeroize();
            out.truncate(from);
        }
        result
    }

    /// Moves each chunk's kept plaintext down over the tags and padding before it.
    fn compact(&mut self, out: &mut Vec<u8>, from: usize, jobs: &[Chunk]) -> Result<()> {
        let mut w = from;
        for j in jobs {
            let end = j.offset.checked_add(j.len).filter(|&e| e <= out.len());
            let Some(end) = end.filter(|_| j.offset >= w) else {
                return Err(Error::MalformedEnvelope(
                    "a chunk outside its buffer".into(),
                ));
            };
            let keep = self.unpadded(&out[j.offset..end])?;
            out.copy_within(j.offset..j.offset + keep, w);
            w += keep;
        }
        out[w..].zeroize();
        out.truncate(w);
        Ok(())
    }

    /// [`Decryptor::update`] (no `jobs`) or [`Decryptor::update_deferred`].
    pub(crate) fn update_with(
        &mut self,
        mut ciphertext: &[u8],
        out: &mut Vec<u8>,
        mut jobs: Option<&mut Vec<Chunk>>,
    ) -> Result<()> {
        if ciphertext.len() as u64 > self.remaining {
            return Err(Error::TrailingData);
        }
        if jobs.is_none() && self.settled != self.index {
            return Err(Error::InvalidInput(
                "chunks laid out for the caller to open are not completed".into(),
            ));
        }
        self.remaining -= ciphertext.len() as u64;
        while !ciphertext.is_empty() {
            let len = self.current_chunk_len();
            if self.buf.is_empty() && ciphertext.len() >= len {
                // A whole chunk in the input: decrypted straight into `out`. If it does not
                // authenticate, what was written is wiped and removed.
                let (chunk, rest) = ciphertext.split_at(len);
                ciphertext = rest;
                if let Some(jobs) = jobs.as_deref_mut() {
                    self.defer(chunk, out, jobs);
                    continue;
                }
                let (body, tag) = chunk.split_at(len - TAG_LEN);
                let last = self.index + 1 == self.chunks;
                let start = out.len();
                out.extend_from_slice(body);
                if self
                    .cipher
                    .open_in_place(chunk_nonce(self.index, last), &[], &mut out[start..], tag)
                    .is_err()
                {
                    out[start..].zeroize();
                    out.truncate(start);
                    return Err(Error::ChunkAuthentication {
                        chunk: Some(self.index),
                    });
                }
                self.index += 1;
                self.settled = self.index;
                self.unpad(out, start)?;
                continue;
            }
            let want = self.current_chunk_len() - self.buf.len();
            let n = want.min(ciphertext.len());
            self.buf.extend_from_slice(&ciphertext[..n]);
            ciphertext = &ciphertext[n..];
            if self.buf.len() == self.current_chunk_len() {
                match jobs.as_deref_mut() {
                    Some(jobs) => {
                        let buf = std::mem::take(&mut self.buf);
                        self.defer(&buf, out, jobs);
                        self.buf = buf;
                        self.buf.clear();
                    }
                    None => self.decrypt_chunk(out)?,
                }
            }
        }
        Ok(())
    }

    /// Copies a whole chunk (ciphertext and tag) to `out` and lists it in `jobs`.
    fn defer(&mut self, chunk: &[u8], out: &mut Vec<u8>, jobs: &mut Vec<Chunk>) {
        let last = self.index + 1 == self.chunks;
        jobs.push(Chunk {
            offset: out.len(),
            len: chunk.len() - TAG_LEN,
            nonce: chunk_nonce(self.index, last),
            index: self.index,
        });
        out.extend_from_slice(chunk);
        self.index += 1;
    }

    fn decrypt_chunk(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let last = self.index + 1 == self.chunks;
        let split = self.buf.len() - TAG_LEN;
        let (body, tag) = self.buf.split_at_mut(split);
        let opened = self
            .cipher
            .open_in_place(chunk_nonce(self.index, last), &[], body, tag);
        if opened.is_err() {
            self.buf.clear();
            return Err(Error::ChunkAuthentication {
                chunk: Some(self.index),
            });
        }
        let start = out.len();
        out.extend_from_slice(body);
        super::wipe(&mut self.buf);
        self.index += 1;
        self.settled = self.index;
        self.unpad(out, start)
    }

    /// Checks that the whole payload was seen; returns the metadata.
    pub fn finish(self) -> Result<Metadata> {
        // `update` decrypts every chunk as soon as it is complete, and `complete` every chunk
        // `update_deferred` laid out, so all bytes seen and none pending means all chunks (the
        // final one included) were authenticated.
        if self.remaining != 0 {
            return Err(Error::Truncated);
        }
        if self.settled != self.index {
            return Err(Error::InvalidInput(
                "chunks laid out for the caller to open are not completed".into(),
            ));
        }
        Ok(self.metadata)
    }

    /// Decrypts chunk `index` (its ciphertext with the tag) in place. For random access
    /// ([`super::open_range`]).
    pub(crate) fn open_chunk(
        cipher: &Cipher,
        index: u64,
        last: bool,
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<()> {
        cipher
            .open_in_place(chunk_nonce(index, last), &[], body, tag)
            .map_err(|()| Error::ChunkAuthentication { chunk: Some(index) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Header, Stanza};

    #[test]
    fn non_zero_padding_is_refused() {
        let key = crate::Identity::from_pkcs8_pem(
            crate::Role::Patient,
            "p",
            include_str!("../../testdata/keys/patient-2048.pem"),
        )
        .unwrap();
        let record = crate::RecordId::from_bytes([1; 16]);
        let dek = DataKey::from_bytes([2; 32]);
        let stanza = Stanza {
            recipient: key.key_id(),
            wrapped_key: dek.wrap(key.public(), &record, 1).unwrap(),
        };
        let meta = Metadata {
            name: String::new(),
            media_type: "text/plain".into(),
            size: 10,
        };
        let h = Header::build(&dek, [3; 32], 12, vec![stanza], &record, 1, &meta).unwrap();
        // An encryptor that believes 256 plaintext bytes are declared: it seals non-zero bytes
        // where the padding goes.
        let mut enc = Encryptor::for_header(dek.clone(), &h, 256);
        let mut body = Vec::new();
        enc.update(&[0x41; 256], &mut body).unwrap();
        enc.finish(&mut body).unwrap();
        let mut dec = Decryptor::new(&h, &dek).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            dec.update(&body, &mut out),
            Err(Error::MalformedEnvelope(m)) if m.contains("padding")
        ));
        assert!(out.is_empty());
        // Reading a range of that chunk checks its padding too.
        let mut env = h.as_bytes().to_vec();
        env.extend_from_slice(&body);
        assert!(matches!(
            crate::envelope::open_range(&dek, std::io::Cursor::new(env), 0, 5, Vec::new()),
            Err(Error::MalformedEnvelope(m)) if m.contains("padding")
        ));
    }
}
