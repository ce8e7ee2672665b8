//! dag-pb (`PBNode`/`PBLink`) and UnixFS `Data` protobuf messages: encoding exactly as kubo
//! writes them, and strict decoding.
//!
//! Canonical dag-pb puts `Links` (field 2) before `Data` (field 1); kubo writes `Name` as an
//! empty string on file links. UnixFS `Data` fields are written in field-number order.

use crate::cid::{Cid, put_varint};
use crate::error::{Error, Result};

/// UnixFS node type `File`.
pub const TYPE_FILE: u64 = 2;
/// UnixFS node type `Raw`.
pub const TYPE_RAW: u64 = 0;

/// One link of a dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbLink {
    /// Target CID.
    pub cid: Cid,
    /// Link name (empty for file chunks).
    pub name: Option<String>,
    /// Cumulative size of the target DAG.
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PbNode {
    /// Links, in order.
    pub links: Vec<PbLink>,
    /// The `Data` field (a UnixFS message for UnixFS nodes).
    pub data: Option<Vec<u8>>,
}

/// A decoded UnixFS `Data` message (file-related fields only).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UnixFsData {
    /// Node type.
    pub kind: u64,
    /// Inline file bytes.
    pub data: Option<Vec<u8>>,
    /// Total file size under this node.
    pub filesize: Option<u64>,
    /// File size of each child, in link order.
    pub blocksizes: Vec<u64>,
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(out, (field << 3) | wire);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 0);
    put_varint(out, v);
}

/// Encodes a UnixFS `File` data message.
pub fn encode_file_data(data: Option<&[u8]>, filesize: u64, blocksizes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.map_or(0, <[u8]>::len) + blocksizes.len() * 4);
    varint_field(&mut out, 1, TYPE_FILE);
    if let Some(d) = data {
        bytes_field(&mut out, 2, d);
    }
    varint_field(&mut out, 3, filesize);
    for &b in blocksizes {
        varint_field(&mut out, 4, b);
    }
    out
}

/// Encodes a dag-pb node from links (CID, tsize) with empty names, and a data field.
pub fn encode_node(links: &[(Cid, u64)], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(links.len() * 48 + data.len() + 8);
    let mut link = Vec::with_capacity(48);
    for (cid, tsize) in links {
        link.clear();
        bytes_field(&mut link, 1, &cid.to_bytes());
        bytes_field(&mut link, 2, b"");
        varint_field(&mut link, 3, *tsize);
        bytes_field(&mut out, 2, &link);
    }
    bytes_field(&mut out, 1, data);
    out
}

/// The prefix and suffix that surround `n` bytes of file data in a dag-pb UnixFS leaf
/// (`PBNode{Data: UnixFS{Type: File, Data: bytes, filesize: n}}`), so that a leaf can be hashed
/// without copying the data.
pub fn leaf_frame(n: usize) -> (Vec<u8>, Vec<u8>) {
    let n64 = n as u64;
    let mut inner_head = Vec::with_capacity(16);
    varint_field(&mut inner_head, 1, TYPE_FILE);
    if n > 0 {
        key(&mut inner_head, 2, 2);
        put_varint(&mut inner_head, n64);
    }
    let mut inner_tail = Vec::with_capacity(12);
    varint_field(&mut inner_tail, 3, n64);
    let inner_len = inner_head.len() + n + inner_tail.len();
    let mut head = Vec::with_capacity(8 + inner_head.len());
    key(&mut head, 1, 2);
    put_varint(&mut head, inner_len as u64);
    head.extend_from_slice(&inner_head);
    (head, inner_tail)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| bad("truncated varint"))?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(bad("varint overflow"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| bad("length overflow"))?;
        if len > self.buf.len() {
            return Err(bad("length past end"));
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    fn done(&self) -> bool {
        self.buf.is_empty()
    }
}

fn bad(why: &str) -> Error {
    Error::MalformedNode(why.to_owned())
}

/// Decodes a dag-pb node strictly: known fields only, in canonical order, no duplicates.
pub fn decode_node(bytes: &[u8]) -> Result<PbNode> {
    let mut r = Reader { buf: bytes };
    let mut node = PbNode::default();
    while !r.done() {
        let k = r.varint()?;
        match k {
            0x12 => {
                if node.data.is_some() {
                    return Err(bad("Links after Data"));
                }
                node.links.push(decode_link(r.bytes()?)?);
            }
            0x0a => {
                if node.data.is_some() {
                    return Err(bad("duplicate Data"));
                }
                node.data = Some(r.bytes()?.to_vec());
            }
            _ => return Err(bad("unknown field in PBNode")),
        }
    }
    Ok(node)
}

fn decode_link(bytes: &[u8]) -> Result<PbLink> {
    let mut r = Reader { buf: bytes };
    let mut cid = None;
    let mut name = None;
    let mut tsize = None;
    let mut last = 0;
    while !r.done() {
        let k = r.varint()?;
        let field = k >> 3;
        if field <= last {
            return Err(bad("PBLink fields out of order or repeated"));
        }
        last = field;
        match k {
            0x0a => {
                cid =
                    Some(Cid::from_bytes(r.bytes()?).map_err(|e| bad(&format!("link hash: {e}")))?)
            }
            0x12 => {
                name = Some(
                    String::from_utf8(r.bytes()?.to_vec())
                        .map_err(|_| bad("link name is not UTF-8"))?,
                );
            }
            0x18 => tsize = Some(r.varint()?),
            _ => return Err(bad("unknown field in PBLink")),
        }
    }
    let cid = cid.ok_or_else(|| bad("link without Hash"))?;
    Ok(PbLink { cid, name, tsize })
}

/// Decodes a UnixFS `Data` message (rejects fields medshare never writes except `hashType`,
/// `fanout`, `mode` and `mtime`, which are skipped).
pub fn decode_unixfs(bytes: &[u8]) -> Result<UnixFsData> {
    let mut r = Reader { buf: bytes };
    let mut d = UnixFsData::default();
    let mut have_type = false;
    while !r.done() {
        let k = r.varint()?;
        match k {
            0x08 => {
                d.kind = r.varint()?;
                have_type = true;
            }
            0x12 => d.data = Some(r.bytes()?.to_vec()),
            0x18 => d.filesize = Some(r.varint()?),
            0x20 => d.blocksizes.push(r.varint()?),
            0x22 => {
                // Packed blocksizes (accepted on read).
                let mut inner = Reader { buf: r.bytes()? };
                while !inner.done() {
                    d.blocksizes.push(inner.varint()?);
                }
            }
            0x28 | 0x30 | 0x38 => {
                r.varint()?;
            }
            0x42 => {
                r.bytes()?;
            }
            _ => return Err(bad("unknown field in UnixFS Data")),
        }
    }
    if !have_type {
        return Err(bad("UnixFS Data without Type"));
    }
    Ok(d)
}
