//! Endorsements: an authority vouching for a doctor's licence, made in the authority's own
//! process and carried to the doctor's as a short text, so that registering a doctor never
//! needs the authority's key where the doctor is.
//!
//! ```text
//! medshare-endorsement/v2
//! genesis bafyrei…
//! doctor bciq…
//! licence GMC-7001234
//! authority bciq…
//! signature <base64 RSA-PSS over the endorsement message>
//! ```

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, PublicKey, Role};
use crate::ledger::endorsement_message;

const HEADER: &str = "medshare-endorsement/v2";

/// An authority's endorsement of a doctor's licence on one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endorsement {
    /// The network.
    pub genesis: Cid,
    /// The doctor's account id.
    pub doctor: IdentityId,
    /// The licence reference the authority vouches for.
    pub licence: String,
    /// The endorsing authority.
    pub authority: IdentityId,
    /// Its signature over [`endorsement_message`].
    pub signature: Vec<u8>,
}

fn check_licence(licence: &str) -> Result<()> {
    if licence.trim().is_empty() {
        return Err(Error::InvalidInput(
            "a doctor's licence reference must not be empty".into(),
        ));
    }
    if licence.len() > 256 || licence.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a licence reference is at most 256 bytes of printable text".into(),
        ));
    }
    Ok(())
}

impl Endorsement {
    /// `authority` endorses `doctor`'s `licence` on the network `genesis`.
    pub fn sign(
        authority: &Identity,
        genesis: &Cid,
        doctor: &IdentityId,
        licence: &str,
    ) -> Result<Endorsement> {
        if authority.role() != Role::Authority {
            return Err(Error::InvalidInput(format!(
                "only an authority endorses doctors, not a {}",
                authority.role()
            )));
        }
        check_licence(licence)?;
        Ok(Endorsement {
            genesis: *genesis,
            doctor: *doctor,
            licence: licence.to_owned(),
            authority: authority.id(),
            signature: authority.sign(&endorsement_message(genesis, doctor, licence))?,
        })
    }

    /// Checks the signature against the authority's key.
    pub fn verify(&self, authority: &PublicKey) -> Result<()> {
        authority.verify(
            &endorsement_message(&self.genesis, &self.doctor, &self.licence),
            &self.signature,
        )
    }

    /// The text form (what `medshare endorse` writes).
    pub fn to_text(&self) -> String {
        format!(
            "{HEADER}\ngenesis {}\ndoctor {}\nlicence {}\nauthority {}\nsignature {}\n",
            self.genesis,
            self.doctor,
            self.licence,
            self.authority,
            data_encoding::BASE64.encode(&self.signature)
        )
    }

    /// Parses the text form.
    pub fn from_text(text: &str) -> Result<Endorsement> {
        let bad = |why: &str| Error::InvalidInput(format!("not an endorsement: {why}"));
        if text.len() > 8192 {
            return Err(bad("too long"));
        }
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(HEADER) {
            return Err(bad(&format!("the first line must be `{HEADER}`")));
        }
        let mut field = |name: &str| -> Result<String> {
            let line = lines
                .next()
                .ok_or_else(|| bad(&format!("no `{name}` line")))?;
            line.strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("expected a `{name}` line")))
        };
        let genesis = field("genesis")?
            .parse()
            .map_err(|_| bad("bad genesis CID"))?;
        let doctor = field("doctor")?.parse()?;
        let licence = field("licence")?;
        check_licence(&licence)?;
        let authority = field("authority")?.parse()?;
        let signature = data_encoding::BASE64
            .decode(field("signature")?.trim().as_bytes())
            .map_err(|_| bad("the signature is not base64"))?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(bad("text after the signature line"));
        }
        Ok(Endorsement {
            genesis,
            doctor,
            licence,
            authority,
            signature,
        })
    }
}
