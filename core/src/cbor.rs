//! A strict DAG-CBOR codec for the ledger's objects.
//!
//! Encoding is deterministic (RFC 8949 §4.2 core rules as DAG-CBOR narrows them): shortest
//! integer and length forms, definite lengths only, map keys are text sorted by length then
//! bytes, CIDs as tag 42 over `0x00 || cid bytes`. Decoding accepts exactly that and nothing
//! else (no floats, no other tags, no indefinite lengths, no duplicate or unsorted keys, no
//! trailing bytes), so decode-then-encode always reproduces the input bytes.

use std::collections::BTreeMap;

use crate::cid::Cid;

/// A DAG-CBOR value (the subset medshare uses: no floats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer in −2^64 ..= 2^64−1.
    Int(i128),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A UTF-8 text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map with text keys.
    Map(Map),
    /// A CID link (tag 42).
    Link(Cid),
}

/// A map with DAG-CBOR key order.
pub type Map = BTreeMap<MapKey, Value>;

/// A map key ordered as DAG-CBOR requires: shorter first, then bytewise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapKey(pub String);

impl Ord for MapKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.len(), self.0.as_bytes()).cmp(&(other.0.len(), other.0.as_bytes()))
    }
}

impl PartialOrd for MapKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl From<&str> for MapKey {
    fn from(s: &str) -> MapKey {
        MapKey(s.to_owned())
    }
}

/// Why bytes are not canonical DAG-CBOR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

const MAX_DEPTH: usize = 16;

/// Encodes a value canonically.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_into(v, &mut out);
    out
}

/// Direct writers of canonical DAG-CBOR items, for hot paths that would otherwise build a
/// [`Value`] tree only to encode it: the caller writes map keys in DAG-CBOR order itself (the
/// state map's values, checked against [`encode`] by their tests).
pub(crate) mod write {
    use crate::cid::Cid;

    /// A map of `n` pairs.
    pub fn map(out: &mut Vec<u8>, n: usize) {
        super::head(out, 5, n as u64);
    }

    /// An array of `n` items.
    pub fn array(out: &mut Vec<u8>, n: usize) {
        super::head(out, 4, n as u64);
    }

    /// A text string (a map key, a code).
    pub fn text(out: &mut Vec<u8>, s: &str) {
        super::head(out, 3, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }

    /// A byte string.
    pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        super::head(out, 2, b.len() as u64);
        out.extend_from_slice(b);
    }

    /// An unsigned integer.
    pub fn uint(out: &mut Vec<u8>, n: u64) {
        super::head(out, 0, n);
    }

    /// A CID link (tag 42).
    pub fn link(out: &mut Vec<u8>, c: &Cid) {
        super::head(out, 6, 42);
        let b = c.to_bytes();
        super::head(out, 2, b.len() as u64 + 1);
        out.push(0);
        out.extend_from_slice(&b);
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// [`encode`] appending to `out`.
pub(crate) fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Int(i) if *i >= 0 => head(out, 0, *i as u64),
        Value::Int(i) => head(out, 1, (-1 - *i) as u64),
        Value::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(a) => {
            head(out, 4, a.len() as u64);
            for x in a {
                encode_into(x, out);
            }
        }
        Value::Map(m) => {
            head(out, 5, m.len() as u64);
            for (k, x) in m {
                head(out, 3, k.0.len() as u64);
                out.extend_from_slice(k.0.as_bytes());
                encode_into(x, out);
            }
        }
        Value::Link(c) => {
            head(out, 6, 42);
            let b = c.to_bytes();
            head(out, 2, b.len() as u64 + 1);
            out.push(0);
            out.extend_from_slice(&b);
        }
    }
}

/// Decodes exactly one canonical DAG-CBOR value spanning all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder { buf: bytes, pos: 0 };
    let v = d.value(0)?;
    if d.pos != bytes.len() {
        return Err(err("trailing bytes after the value"));
    }
    Ok(v)
}

fn err(s: &str) -> DecodeError {
    DecodeError(s.to_owned())
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| err("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], DecodeError> {
        let n = usize::try_from(n).map_err(|_| err("length overflow"))?;
        if self.buf.len() - self.pos < n {
            return Err(err("length past end"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a head; returns (major, argument), enforcing the shortest form.
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let b = self.byte()?;
        let major = b >> 5;
        let info = b & 0x1f;
        let n = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                if v < 24 {
                    return Err(err("non-minimal integer"));
                }
                v
            }
            25 => {
                let s = self.take(2)?;
                let v = u64::from(u16::from_be_bytes([s[0], s[1]]));
                if v <= 0xff {
                    return Err(err("non-minimal integer"));
                }
                v
            }
            26 => {
                let s = self.take(4)?;
                let v = u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
                if v <= 0xffff {
                    return Err(err("non-minimal integer"));
                }
                v
            }
            27 => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                let v = u64::from_be_bytes(a);
                if v <= 0xffff_ffff {
                    return Err(err("non-minimal integer"));
                }
                v
            }
            _ => return Err(err("indefinite length or reserved encoding")),
        };
        Ok((major, n))
    }

    fn text(&mut self, n: u64) -> Result<String, DecodeError> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| err("text is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(err("nesting too deep"));
        }
        let (major, n) = self.head()?;
        Ok(match major {
            0 => Value::Int(i128::from(n)),
            1 => Value::Int(-1 - i128::from(n)),
            2 => Value::Bytes(self.take(n)?.to_vec()),
            3 => Value::Text(self.text(n)?),
            4 => {
                // Each element takes at least one byte: bound the allocation by what is left.
                if n > (self.buf.len() - self.pos) as u64 {
                    return Err(err("array longer than input"));
                }
                let mut a = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            5 => {
                if n > (self.buf.len() - self.pos) as u64 {
                    return Err(err("map longer than input"));
                }
                let mut m = Map::new();
                let mut last: Option<MapKey> = None;
                for _ in 0..n {
                    let (km, kn) = self.head()?;
                    if km != 3 {
                        return Err(err("map key is not text"));
                    }
                    let key = MapKey(self.text(kn)?);
                    if last.as_ref().is_some_and(|l| *l >= key) {
                        return Err(err("map keys unsorted or duplicated"));
                    }
                    last = Some(key.clone());
                    let v = self.value(depth + 1)?;
                    m.insert(key, v);
                }
                Value::Map(m)
            }
            6 => {
                if n != 42 {
                    return Err(err("only tag 42 (CID) is allowed"));
                }
                let (bm, bn) = self.head()?;
                if bm != 2 {
                    return Err(err("tag 42 must wrap bytes"));
                }
                let b = self.take(bn)?;
                if b.first() != Some(&0) {
                    return Err(err("CID bytes must start with 0x00"));
                }
                Value::Link(Cid::from_bytes(&b[1..]).map_err(|e| err(&format!("bad CID: {e}")))?)
            }
            7 => match n {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                _ => return Err(err("floats and other simple values are not allowed")),
            },
            _ => unreachable!("major type is 3 bits"),
        })
    }
}

/// Builds a map from `(key, value)` pairs.
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (MapKey::from(k), v))
            .collect(),
    )
}

impl Value {
    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_examples() {
        assert_eq!(encode(&Value::Int(0)), [0x00]);
        assert_eq!(encode(&Value::Int(24)), [0x18, 24]);
        assert_eq!(encode(&Value::Int(-1)), [0x20]);
        assert_eq!(encode(&Value::Int(1000)), [0x19, 0x03, 0xe8]);
        // Keys sorted by length first: "b" before "aa".
        let m = map([("aa", Value::Int(1)), ("b", Value::Int(2))]);
        assert_eq!(encode(&m), [0xa2, 0x61, b'b', 0x02, 0x62, b'a', b'a', 0x01]);
        let link = Value::Link(Cid::dag_cbor(b"x"));
        assert_eq!(decode(&encode(&link)).unwrap(), link);
    }

    #[test]
    fn non_canonical_is_rejected() {
        for bad in [
            &[0x18, 0x01][..],                                       // 1 in two bytes
            &[0x19, 0x00, 0x10],                                     // 16 in three bytes
            &[0x9f, 0xff],                                           // indefinite array
            &[0xa2, 0x62, b'a', b'a', 0x01, 0x61, b'b', 0x02],       // unsorted keys
            &[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02],             // duplicate keys
            &[0xf9, 0x3c, 0x00],                                     // half float
            &[0xc1, 0x00],                                           // tag 1
            &[0x00, 0x00],                                           // trailing bytes
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // absurd length
        ] {
            assert!(decode(bad).is_err(), "{bad:x?}");
        }
    }
}
