//! The sealed record envelope, format version 2: a header, then a chunked AES-256-GCM STREAM.
//!
//! One envelope holds one version of one record. A fresh 256-bit data key (DEK) is drawn per
//! version and wrapped with RSA-OAEP-SHA256 to every recipient under a label that binds it to
//! (record id, version), so a wrapped key cannot be replayed onto another record or version.
//! The header commits to the DEK, and a reader checks the commitment before decrypting anything
//! (AES-GCM is not key-committing: without it, a publisher could give two readers two keys that
//! both "open" the same bytes to different plaintexts). Metadata (file name, media type, size)
//! is encrypted; the payload is padded (Padmé) so the envelope's size says little about the
//! plaintext's, and split into chunks of `2^e` bytes. Because the (authenticated) metadata
//! fixes the size, the number and size of chunks is known before the first chunk is read:
//! truncation, extension, reordering and chunk swapping are all detected, and any byte range can
//! be decrypted alone.
//!
//! The parts, as age's are: [`header`] (the format), [`key`] (the data key, its wrapping and
//! its key schedule), [`stream`] (the chunked payload). The byte layout is in `docs/FORMAT.md`.
//!
//! Two interfaces are offered: [`seal`] / [`open`] / [`open_range`] over `Read`/`Write`/`Seek`,
//! and the push-style [`Encryptor`] / [`Decryptor`] that a caller feeds buffers to (used where
//! the bytes come from, or go to, an asynchronous store). Both use constant memory.

pub mod header;
pub mod key;
pub mod shares;
pub mod stream;

use std::io::{Read, Seek, SeekFrom, Write};

use zeroize::{Zeroize, Zeroizing};

pub use header::{
    DEFAULT_CHUNK_EXP, FORMAT_VERSION, Header, MAGIC, MAX_CHUNK_EXP, MIN_CHUNK_EXP, Metadata,
    Stanza, TAG_LEN, padded_len,
};
pub use key::{DataKey, oaep_label};
pub use stream::{Chunk, Decryptor, Encryptor, SealOptions};

use crate::error::{Error, Result};
use crate::identity::{Identity, PublicKey};
use crate::record::RecordId;

/// Result of [`seal`].
#[derive(Debug)]
pub struct Sealed {
    /// The DEK of this version (wrap it to later grantees).
    pub key: DataKey,
    /// Total envelope length written.
    pub len: u64,
}

const IO_BUF: usize = 1 << 20;

/// Zeroes a buffer that held plaintext, its spare capacity too, and empties it.
///
/// `Vec::zeroize` from the `zeroize` crate writes the elements one volatile byte at a time
/// (about 1 byte per cycle: a third of a second per GiB opened); the slice impls it calls here
/// zero with `memset` behind an optimisation barrier instead.
pub(crate) fn wipe(buf: &mut Vec<u8>) {
    buf.as_mut_slice().zeroize();
    buf.spare_capacity_mut().zeroize();
    buf.clear();
}

/// Seals `input` (exactly `metadata.size` bytes) into `output` for `recipients`.
pub fn seal<R: Read, W: Write>(
    record: &RecordId,
    version: u32,
    metadata: &Metadata,
    recipients: &[&PublicKey],
    mut input: R,
    mut output: W,
) -> Result<Sealed> {
    let (mut enc, header) = Encryptor::new(
        record,
        version,
        metadata,
        recipients,
        SealOptions::default(),
    )?;
    output.write_all(&header)?;
    let mut len = header.len() as u64;
    let mut inbuf = Zeroizing::new(vec![0u8; IO_BUF]);
    let mut out = Vec::with_capacity(IO_BUF + IO_BUF / 256);
    loop {
        let n = read_some(&mut input, &mut inbuf)?;
        if n == 0 {
            break;
        }
        enc.update(&inbuf[..n], &mut out)?;
        output.write_all(&out)?;
        len += out.len() as u64;
        out.clear();
    }
    let key = enc.finish(&mut out)?;
    output.write_all(&out)?;
    len += out.len() as u64;
    output.flush()?;
    Ok(Sealed { key, len })
}

fn read_some<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<usize> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
    }
}

/// Opens an envelope as `identity` (which must be a recipient), writing the plaintext.
pub fn open<R: Read, W: Write>(identity: &Identity, mut input: R, output: W) -> Result<Metadata> {
    let header = Header::read_from(&mut input)?;
    let dek = header.unwrap_key(identity)?;
    open_payload(&header, &dek, input, output)
}

/// Opens an envelope with an already unwrapped DEK (e.g. from a ledger grant); the DEK is
/// checked against the header's commitment first.
pub fn open_with_key<R: Read, W: Write>(
    dek: &DataKey,
    mut input: R,
    output: W,
) -> Result<Metadata> {
    let header = Header::read_from(&mut input)?;
    open_payload(&header, dek, input, output)
}

fn open_payload<R: Read, W: Write>(
    header: &Header,
    dek: &DataKey,
    mut input: R,
    mut output: W,
) -> Result<Metadata> {
    let mut dec = Decryptor::new(header, dek)?;
    let mut inbuf = vec![0u8; IO_BUF];
    let mut out = Zeroizing::new(Vec::with_capacity(IO_BUF));
    loop {
        let n = read_some(&mut input, &mut inbuf)?;
        if n == 0 {
            break;
        }
        dec.update(&inbuf[..n], &mut out)?;
        output.write_all(&out)?;
        wipe(&mut out);
    }
    let meta = dec.finish()?;
    output.flush()?;
    Ok(meta)
}

/// Decrypts only the plaintext bytes `start..start+len` of an envelope, reading just the chunks
/// that hold them. Returns the metadata.
pub fn open_range<R: Read + Seek, W: Write>(
    dek: &DataKey,
    mut input: R,
    start: u64,
    len: u64,
    mut output: W,
) -> Result<Metadata> {
    input.seek(SeekFrom::Start(0))?;
    let header = Header::read_from(&mut input)?;
    let meta = header.metadata(dek)?;
    let end =
        start
            .checked_add(len)
            .filter(|&e| e <= meta.size)
            .ok_or(Error::RangeOutOfBounds {
                start,
                end: start.saturating_add(len),
                size: meta.size,
            })?;
    let total = input.seek(SeekFrom::End(0))?;
    let expected = header.len() as u64 + header.payload_len(meta.size);
    if total < expected {
        return Err(Error::Truncated);
    }
    if total > expected {
        return Err(Error::TrailingData);
    }
    if len == 0 {
        return Ok(meta);
    }
    let cipher = dek.payload_cipher(&header.salt, header.as_bytes());
    let cs = header.chunk_size() as u64;
    let chunks = header.chunk_count(meta.size);
    let padded = padded_len(meta.size);
    let first = start / cs;
    let last_needed = (end - 1) / cs;
    input.seek(SeekFrom::Start(
        header.len() as u64 + first * (cs + TAG_LEN as u64),
    ))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(cs as usize + TAG_LEN));
    for index in first..=last_needed {
        let is_last = index + 1 == chunks;
        let chunk_len = if is_last { padded - index * cs } else { cs };
        buf.resize(chunk_len as usize + TAG_LEN, 0);
        header::read_exact_or_truncated(&mut input, &mut buf)?;
        let (body, tag) = buf.split_at_mut(chunk_len as usize);
        Decryptor::open_chunk(&cipher, index, is_last, body, tag)?;
        let chunk_start = index * cs;
        // Padding past the declared size is authenticated, and must be zero, as in `open`.
        let pad_from = meta.size.saturating_sub(chunk_start).min(chunk_len) as usize;
        if body[pad_from..].iter().any(|&b| b != 0) {
            return Err(Error::MalformedEnvelope("non-zero payload padding".into()));
        }
        let from = start.max(chunk_start) - chunk_start;
        let to = end.min(chunk_start + chunk_len) - chunk_start;
        output.write_all(&body[from as usize..to as usize])?;
    }
    output.flush()?;
    Ok(meta)
}
