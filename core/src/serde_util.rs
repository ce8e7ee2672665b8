//! Serde helpers for byte fields (a leaf module): bytes travel as base64 text in JSON.

/// `#[serde(with = "crate::serde_util::b64")]` for `Vec<u8>`.
pub mod b64 {
    /// Serializes bytes as standard base64 text.
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(b))
    }

    /// Deserializes standard base64 text.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        data_encoding::BASE64
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "crate::serde_util::b64_opt")]` for `Option<Vec<u8>>`.
pub mod b64_opt {
    /// Serializes optional bytes as base64 text or null.
    pub fn serialize<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_some(&data_encoding::BASE64.encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes optional base64 text.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let s = <Option<String> as serde::Deserialize>::deserialize(d)?;
        s.map(|s| {
            data_encoding::BASE64
                .decode(s.as_bytes())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// `#[serde(with = "crate::serde_util::b64_vec_opt")]` for `Option<Vec<Vec<u8>>>`: an array
/// of base64 texts, or absent.
pub mod b64_vec_opt {
    /// Serializes a list of byte strings as base64 texts.
    pub fn serialize<S: serde::Serializer>(
        b: &Option<Vec<Vec<u8>>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match b {
            Some(list) => s.collect_seq(list.iter().map(|b| data_encoding::BASE64.encode(b))),
            None => s.serialize_none(),
        }
    }

    /// Deserializes a list of base64 texts.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Vec<u8>>>, D::Error> {
        let list = <Option<Vec<String>> as serde::Deserialize>::deserialize(d)?;
        list.map(|l| {
            l.iter()
                .map(|s| {
                    data_encoding::BASE64
                        .decode(s.as_bytes())
                        .map_err(serde::de::Error::custom)
                })
                .collect()
        })
        .transpose()
    }
}

/// `#[serde(with = "crate::serde_util::hex32")]` for `[u8; 32]`.
pub mod hex32 {
    /// Serializes 32 bytes as lower-case hex.
    pub fn serialize<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(b))
    }

    /// Deserializes 32 bytes of lower-case hex.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// `#[serde(with = "crate::serde_util::b64_32")]` for `[u8; 32]` as base64 text.
pub mod b64_32 {
    /// Serializes 32 bytes as base64.
    pub fn serialize<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(b))
    }

    /// Deserializes 32 bytes of base64.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        data_encoding::BASE64
            .decode(s.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("not a base64 32-byte hash"))
    }
}

/// `#[serde(with = "crate::serde_util::b64_32_vec")]` for a list of 32-byte hashes as base64
/// texts.
pub mod b64_32_vec {
    /// Serializes each hash as base64.
    pub fn serialize<S: serde::Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| data_encoding::BASE64.encode(b)))
    }

    /// Deserializes a list of base64 32-byte hashes.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let v = <Vec<String> as serde::Deserialize>::deserialize(d)?;
        v.iter()
            .map(|s| {
                data_encoding::BASE64
                    .decode(s.as_bytes())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| serde::de::Error::custom("not a base64 32-byte hash"))
            })
            .collect()
    }
}
