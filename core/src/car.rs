//! CARv1 (Content Addressable aRchive) files, as `ipfs dag export` writes and `ipfs dag import`
//! reads them: a DAG-CBOR header `{"roots": [CID…], "version": 1}` prefixed by its varint
//! length, then one section per block: `varint(len(cid) + len(data)) || cid || data`.
//!
//! Reading checks every block against its CID and every length against the block size limit.

use std::io::{Read, Write};

use crate::cbor::{self, Value, map};
use crate::cid::{Cid, put_varint};
use crate::error::{Error, Result};
use crate::limits;
use crate::store::Block;

const MAX_HEADER: u64 = 64 * 1024;

fn bad(why: impl Into<String>) -> Error {
    Error::MalformedCar(why.into())
}

/// Writes a CARv1 stream.
pub struct CarWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Starts a CAR with `roots`.
    pub fn new(mut out: W, roots: &[Cid]) -> Result<CarWriter<W>> {
        let header = cbor::encode(&map([
            (
                "roots",
                Value::Array(roots.iter().map(|c| Value::Link(*c)).collect()),
            ),
            ("version", Value::Int(1)),
        ]));
        let mut buf = Vec::with_capacity(16);
        put_varint(&mut buf, header.len() as u64);
        out.write_all(&buf)?;
        out.write_all(&header)?;
        Ok(CarWriter { out, buf })
    }

    /// Appends one block.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        let cid_bytes = cid.to_bytes();
        self.buf.clear();
        put_varint(&mut self.buf, (cid_bytes.len() + data.len()) as u64);
        self.out.write_all(&self.buf)?;
        self.out.write_all(&cid_bytes)?;
        self.out.write_all(data)?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a CARv1 stream block by block.
pub struct CarReader<R: Read> {
    input: R,
    roots: Vec<Cid>,
}

fn read_varint<R: Read>(r: &mut R) -> Result<Option<u64>> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        match r.read(&mut b) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => return Err(bad("truncated varint")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(bad("varint too long"))
}

fn read_exact<R: Read>(r: &mut R, n: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad("truncated section"),
        _ => Error::Io(e),
    })?;
    Ok(buf)
}

/// Length of the CID at the start of `bytes`.
fn cid_len(bytes: &[u8]) -> Result<usize> {
    if bytes.len() >= 34 && bytes[0] == 0x12 && bytes[1] == 0x20 {
        return Ok(34);
    }
    let mut rest = bytes;
    for _ in 0..2 {
        crate::cid::take_varint(&mut rest).map_err(|_| bad("bad CID in section"))?;
    }
    let _code = crate::cid::take_varint(&mut rest).map_err(|_| bad("bad multihash"))?;
    let len = crate::cid::take_varint(&mut rest).map_err(|_| bad("bad multihash"))?;
    let used = bytes.len() - rest.len();
    let total = used as u64 + len;
    if total > bytes.len() as u64 {
        return Err(bad("CID past the section end"));
    }
    Ok(total as usize)
}

impl<R: Read> CarReader<R> {
    /// Reads the header.
    pub fn new(mut input: R) -> Result<CarReader<R>> {
        let len = read_varint(&mut input)?.ok_or_else(|| bad("empty file"))?;
        if len == 0 || len > MAX_HEADER {
            return Err(bad(format!("header length {len}")));
        }
        let header = read_exact(&mut input, len)?;
        let v = cbor::decode(&header).map_err(|e| bad(format!("header: {}", e.0)))?;
        let m = v.as_map().ok_or_else(|| bad("header is not a map"))?;
        if m.get(&"version".into()) != Some(&Value::Int(1)) {
            return Err(bad("only CARv1 is supported"));
        }
        let roots = match m.get(&"roots".into()) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::Link(c) => Ok(*c),
                    _ => Err(bad("roots must be links")),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => return Err(bad("header has no roots")),
        };
        Ok(CarReader { input, roots })
    }

    /// The header's roots.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next block, checked against its CID; `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        let Some(len) = read_varint(&mut self.input)? else {
            return Ok(None);
        };
        if len > limits::MAX_BLOCK_SIZE as u64 + 128 {
            return Err(Error::TooLarge {
                what: "CAR section",
                size: len,
                limit: limits::MAX_BLOCK_SIZE as u64 + 128,
            });
        }
        let section = read_exact(&mut self.input, len)?;
        let n = cid_len(&section)?;
        let cid = Cid::from_bytes(&section[..n])?;
        let data = section[n..].to_vec();
        cid.verify(&data)?;
        Ok(Some(Block { cid, data }))
    }
}
