//! What the ledger knows a record by: its id, and the purpose codes grants carry in clear.

use std::fmt;
use std::str::FromStr;

use crate::cid::{multibase_base32, parse_multibase_base32};
use crate::error::{Error, Result};

/// The id of a record: 16 random bytes, printed as multibase base32 (`b…`, 27 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 16]);

impl RecordId {
    /// A fresh random record id.
    pub fn random() -> Result<RecordId> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|_| Error::Rng)?;
        Ok(RecordId(b))
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> RecordId {
        RecordId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&multibase_base32(&self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({self})")
    }
}

impl FromStr for RecordId {
    type Err = Error;

    /// A record id typed by someone: anything malformed is [`Error::InvalidInput`].
    fn from_str(s: &str) -> Result<RecordId> {
        parse_multibase_base32(s)
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .map(RecordId)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "`{}` is not a record id (27 characters, b…)",
                    crate::text::escape(s)
                ))
            })
    }
}

impl serde::Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RecordId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! purposes {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $display:literal; )*) => {
        /// Why a doctor is given access: a code of the HL7 v3 `PurposeOfUse` value set
        /// (`http://terminology.hl7.org/CodeSystem/v3-ActReason`). Only this code is in clear
        /// on the ledger; any free-text reason travels encrypted to the patient and the doctor.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum Purpose {
            $( $(#[$doc])* $variant, )*
        }

        impl Purpose {
            /// Every code medshare accepts.
            pub const ALL: &'static [Purpose] = &[$(Purpose::$variant),*];

            /// The HL7 code, e.g. `TREAT`.
            pub fn code(self) -> &'static str {
                match self { $(Purpose::$variant => $code,)* }
            }

            /// The code system's display name, e.g. `treatment`.
            pub fn display(self) -> &'static str {
                match self { $(Purpose::$variant => $display,)* }
            }
        }

        impl FromStr for Purpose {
            type Err = Error;

            fn from_str(s: &str) -> Result<Purpose> {
                match s.to_ascii_uppercase().as_str() {
                    $($code => Ok(Purpose::$variant),)*
                    _ => Err(Error::InvalidInput(format!(
                        "unknown purpose code `{}`: use one of {}",
                        crate::text::escape(s),
                        [$($code),*].join(", ")
                    ))),
                }
            }
        }
    };
}

purposes! {
    /// Treatment (the default).
    #[default]
    Treatment => "TREAT", "treatment";
    /// Emergency treatment (break-glass access uses it).
    EmergencyTreatment => "ETREAT", "emergency treatment";
    /// Coordination of care.
    CoordinationOfCare => "COC", "coordination of care";
    /// Care management.
    CareManagement => "CAREMGT", "care management";
    /// Healthcare payment.
    Payment => "HPAYMT", "healthcare payment";
    /// Healthcare operations.
    Operations => "HOPERAT", "healthcare operations";
    /// Healthcare research.
    Research => "HRESCH", "healthcare research";
    /// Public health.
    PublicHealth => "PUBHLTH", "public health";
    /// Legal.
    Legal => "HLEGAL", "legal";
    /// Requested by the patient.
    PatientRequest => "PATRQT", "patient requested";
    /// Requested by the patient's family.
    FamilyRequest => "FAMRQT", "family requested";
    /// Power of attorney.
    PowerOfAttorney => "PWATRNY", "power of attorney";
    /// The patient's support network.
    SupportNetwork => "SUPNWK", "support network";
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl serde::Serialize for Purpose {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Purpose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_purposes_parse_as_input() {
        let id = RecordId::from_bytes([7; 16]);
        assert_eq!(id.to_string().parse::<RecordId>().unwrap(), id);
        assert!(matches!(
            "not-a-record-id".parse::<RecordId>(),
            Err(Error::InvalidInput(_))
        ));
        for p in Purpose::ALL {
            assert_eq!(p.code().parse::<Purpose>().unwrap(), *p);
        }
        assert_eq!("treat".parse::<Purpose>().unwrap(), Purpose::Treatment);
        assert!(matches!(
            "HIV follow-up".parse::<Purpose>(),
            Err(Error::InvalidInput(_))
        ));
    }
}
