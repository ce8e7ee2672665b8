//! HL7 FHIR export of what the ledger knows: a `Bundle` (type `collection`) per record or per
//! patient, in FHIR R5 or R4 JSON.
//!
//! | ledger | FHIR |
//! |---|---|
//! | a patient account | `Patient` (id = account id; identifier [`SYSTEM_ACCOUNT`]) |
//! | a doctor account | `Practitioner` (same, and its licence as a `qualification`) |
//! | a record | `DocumentReference` (identifier [`SYSTEM_RECORD`]; content `ipfs://<CID>`) |
//! | a grant | `Consent` (id = the grant's transaction CID), `active` until revoked, superseded or expired |
//! | each record transaction | `AuditEvent` (id = the transaction CID), shaped after IHE BALP |
//! | each record version | `Provenance` (the version's content CID and its author's signature) |
//!
//! Only what the ledger holds in clear goes out: no record content, no metadata (names and
//! media types are encrypted in the envelope), no grant notes (encrypted to the owner and the
//! doctor). The mapping, code systems and URIs are documented in `docs/FHIR.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{IdentityId, Role};
use crate::ledger::SignedTx;
use crate::ledger::state::{AuditEvent, AuditKind, State};
use crate::record::{Purpose, RecordId};
use crate::vault::Vault;

impl Vault {
    /// What the ledger knows about a record, or every record a patient owns, as an HL7 FHIR
    /// `Bundle` (JSON; see [`bundle`] and `docs/FHIR.md`). Expiry is decided by the vault's
    /// clock; each version's `Provenance` carries its author's signature.
    pub async fn fhir(&self, scope: &FhirScope, version: FhirVersion) -> Result<Value> {
        let records: Vec<RecordId> = match scope {
            FhirScope::Record(r) => vec![*r],
            FhirScope::Patient(p) => self
                .state()
                .records_owned_by(p)
                .into_iter()
                .map(|i| i.record)
                .collect(),
        };
        let mut signatures = BTreeMap::new();
        for r in &records {
            for e in self.state().audit(r)? {
                if let AuditKind::Published { .. } = e.kind {
                    let raw = self.store().get(&e.tx).await?;
                    let stx = SignedTx::decode(&raw).map_err(|err| {
                        Error::StoreCorrupt(format!("transaction {}: {err}", e.tx))
                    })?;
                    signatures.insert(e.tx, stx.sig);
                }
            }
        }
        bundle(self.state(), scope, version, self.now(), &signatures)
    }
}

/// Identifier system of medshare account ids (`Patient`, `Practitioner`).
pub const SYSTEM_ACCOUNT: &str = "urn:medshare:account";
/// Identifier system of medshare record ids (`DocumentReference`).
pub const SYSTEM_RECORD: &str = "urn:medshare:record";
/// Identifier system of ledger transaction CIDs (`AuditEvent.entity`, `Consent.identifier`).
pub const SYSTEM_TX: &str = "urn:medshare:tx";
/// Identifier system of a network, by its genesis CID (`AuditEvent.source.observer`).
pub const SYSTEM_NETWORK: &str = "urn:medshare:network";
/// Identifier system of doctors' licences as endorsed by an authority.
pub const SYSTEM_LICENCE: &str = "urn:medshare:licence";
/// Identifier system of IPFS content (CIDs).
pub const SYSTEM_CID: &str = "urn:ipfs:cid";
/// medshare's own audit event codes (`publish`, `grant`, `revoke`).
pub const SYSTEM_EVENT: &str = "urn:medshare:audit-event";

const V3_PURPOSE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const LOINC: &str = "http://loinc.org";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const PROVENANCE_ROLE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const SIGNATURE_TYPE: &str = "urn:iso-astm:E1762-95:2013";

/// Which FHIR release to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FhirVersion {
    /// FHIR R5 (5.0.0), the default.
    R5,
    /// FHIR R4 (4.0.1).
    R4,
}

impl std::str::FromStr for FhirVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<FhirVersion> {
        match s {
            "R5" | "r5" => Ok(FhirVersion::R5),
            "R4" | "r4" => Ok(FhirVersion::R4),
            other => Err(Error::InvalidInput(format!(
                "FHIR version {:?}: expected R5 or R4",
                crate::text::escape(other)
            ))),
        }
    }
}

/// What a bundle is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FhirScope {
    /// One record: its document, grants, audit trail and versions.
    Record(RecordId),
    /// Every record a patient owns.
    Patient(IdentityId),
}

/// Builds the bundle for `scope` from a chain's state at unix time `now` (which decides expiry).
/// `signatures` maps the CID of each record version's publication to its author's signature
/// bytes (for `Provenance.signature`); a missing entry leaves the signature's data out.
pub fn bundle(
    state: &State,
    scope: &FhirScope,
    version: FhirVersion,
    now: u64,
    signatures: &BTreeMap<Cid, Vec<u8>>,
) -> Result<Value> {
    let (id, records) = match scope {
        FhirScope::Record(r) => {
            let info = state
                .record(r)
                .ok_or_else(|| Error::UnknownRecord(r.to_string()))?;
            (format!("record-{r}"), vec![info])
        }
        FhirScope::Patient(p) => match state.identity(p) {
            Some((Role::Patient, _)) => (format!("patient-{p}"), state.records_owned_by(p)),
            _ => {
                return Err(Error::UnknownIdentity(format!(
                    "{p} is not a registered patient"
                )));
            }
        },
    };
    let w = Writer {
        state,
        version,
        now,
    };
    let mut people = BTreeSet::new();
    let mut entries = Vec::new();
    for info in &records {
        people.insert(info.owner);
        let audit = state.audit(&info.record)?;
        entries.push(w.document(
            &info.record,
            &info.owner,
            info.version,
            &info.content,
            info.size,
        ));
        for (i, e) in audit.iter().enumerate() {
            people.insert(e.author);
            if let Some(d) = e.kind.doctor() {
                people.insert(d);
            }
            if let AuditKind::Granted { .. } = e.kind {
                entries.push(w.consent(&info.record, &info.owner, e, &audit[i + 1..]));
            }
            if let AuditKind::Published { version, content } = &e.kind {
                entries.push(w.provenance(&info.record, *version, content, e, signatures));
            }
            entries.push(w.audit_event(&info.record, &info.owner, e));
        }
    }
    // Patients first, then practitioners, each by account id.
    let mut resources: Vec<Value> = people.iter().filter_map(|p| w.person(p)).collect();
    resources.sort_by_key(|r| r["resourceType"] != "Patient");
    resources.extend(entries);
    Ok(json!({
        "resourceType": "Bundle",
        "id": fhir_id(&id),
        "meta": {"source": format!("{SYSTEM_NETWORK}:{}", state.genesis_cid())},
        "type": "collection",
        "timestamp": instant(now),
        "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    }))
}

struct Writer<'a> {
    state: &'a State,
    version: FhirVersion,
    now: u64,
}

impl Writer<'_> {
    fn r5(&self) -> bool {
        self.version == FhirVersion::R5
    }

    /// `Patient` or `Practitioner` for an account (authorities are not people: skipped).
    fn person(&self, id: &IdentityId) -> Option<Value> {
        let ident = json!([{"system": SYSTEM_ACCOUNT, "value": id.to_string()}]);
        match self.state.identity(id)?.0 {
            Role::Patient => Some(json!({
                "resourceType": "Patient",
                "id": id.to_string(),
                "identifier": ident,
            })),
            Role::Doctor => {
                let mut p = json!({
                    "resourceType": "Practitioner",
                    "id": id.to_string(),
                    "identifier": ident,
                });
                if let Some(licence) = self.state.licence(id) {
                    p["qualification"] = json!([{
                        "identifier": [{"system": SYSTEM_LICENCE, "value": licence}],
                        "code": {"text": "medical licence, endorsed on the ledger by an authority"},
                    }]);
                }
                Some(p)
            }
            Role::Authority => None,
        }
    }

    fn document(
        &self,
        record: &RecordId,
        owner: &IdentityId,
        version: u32,
        content: &Cid,
        size: u64,
    ) -> Value {
        // R5's Attachment.size is integer64, a JSON string; R4's is unsignedInt, a number.
        let size = if self.r5() {
            json!(size.to_string())
        } else {
            json!(size)
        };
        let mut d = json!({
            "resourceType": "DocumentReference",
            "id": record.to_string(),
            "identifier": [{"system": SYSTEM_RECORD, "value": record.to_string()}],
            "status": "current",
            "subject": patient_ref(owner),
            "content": [{"attachment": {
                "contentType": "application/vnd.medshare.envelope",
                "url": format!("ipfs://{content}"),
                "size": size,
            }}],
        });
        if self.r5() {
            d["version"] = json!(version.to_string());
        }
        d
    }

    /// A grant as a `Consent`: `later` are the record's events after it, which may end it.
    fn consent(
        &self,
        record: &RecordId,
        owner: &IdentityId,
        e: &AuditEvent,
        later: &[AuditEvent],
    ) -> Value {
        let AuditKind::Granted {
            doctor,
            expires,
            purpose,
            ..
        } = &e.kind
        else {
            return Value::Null;
        };
        // Ended by a revocation of this doctor or a newer grant to them (a re-key re-grants).
        let ended = later
            .iter()
            .find(|l| l.kind.doctor() == Some(*doctor))
            .map(|l| l.time);
        let end = match (ended, expires) {
            (Some(a), Some(b)) => Some(a.min(*b)),
            (a, b) => a.or(*b),
        };
        let active = ended.is_none() && expires.is_none_or(|x| x > self.now);
        let mut period = json!({"start": instant(e.time)});
        if let Some(end) = end {
            period["end"] = json!(instant(end));
        }
        let actor = json!([{
            "role": {"coding": [{"system": PARTICIPATION, "code": "PRCP", "display": "primary information recipient"}]},
            "reference": practitioner_ref(doctor),
        }]);
        let purpose = json!([purpose_coding(*purpose)]);
        let data = json!([{"meaning": "instance", "reference": document_ref(record)}]);
        let category = json!([{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}]);
        let status = if active { "active" } else { "inactive" };
        let identifier = json!([{"system": SYSTEM_TX, "value": e.tx.to_string()}]);
        if self.r5() {
            json!({
                "resourceType": "Consent",
                "id": e.tx.to_string(),
                "identifier": identifier,
                "status": status,
                "category": category,
                "subject": patient_ref(owner),
                "date": &instant(e.time)[..10],
                "period": period,
                "grantor": [patient_ref(owner)],
                "grantee": [practitioner_ref(doctor)],
                "decision": "permit",
                "provision": [{"period": period, "actor": actor, "purpose": purpose, "data": data}],
            })
        } else {
            json!({
                "resourceType": "Consent",
                "id": e.tx.to_string(),
                "identifier": identifier,
                "status": status,
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": category,
                "patient": patient_ref(owner),
                "dateTime": instant(e.time),
                "performer": [patient_ref(owner)],
                "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
                "provision": {"type": "permit", "period": period, "actor": actor, "purpose": purpose, "data": data},
            })
        }
    }

    /// A transaction as an `AuditEvent` (IHE BALP shape): publish = create, grant = consent
    /// authorization (an emergency-purpose grant adds DICOM 110127 "Emergency Override
    /// Started"), revoke = delete of the authorization.
    fn audit_event(&self, record: &RecordId, owner: &IdentityId, e: &AuditEvent) -> Value {
        let (code, display, action) = match &e.kind {
            AuditKind::Published { .. } => ("publish", "record version published", "C"),
            AuditKind::Granted { .. } => ("grant", "access granted (consent authorization)", "C"),
            AuditKind::Revoked { .. } => ("revoke", "access revoked", "D"),
            AuditKind::EmergencyEnabled { .. } => (
                "emergency-enable",
                "key shares made for break-glass access",
                "U",
            ),
            AuditKind::Emergency { .. } => {
                ("emergency", "emergency access requested (break-glass)", "E")
            }
            AuditKind::ShareReleased { .. } => (
                "share-release",
                "emergency key share released (privacy disclosure)",
                "E",
            ),
            AuditKind::Reviewed { .. } => ("emergency-review", "emergency access reviewed", "R"),
        };
        let mut subtype = vec![json!({"system": SYSTEM_EVENT, "code": code, "display": display})];
        if let AuditKind::Reviewed { .. } = e.kind {
            subtype.push(
                json!({"system": DCM, "code": "110128", "display": "Emergency Override Stopped"}),
            );
        } else if e.kind.purpose() == Some(Purpose::EmergencyTreatment) || e.kind.is_emergency() {
            subtype.push(
                json!({"system": DCM, "code": "110127", "display": "Emergency Override Started"}),
            );
        }
        let author = match self.state.identity(&e.author).map(|(r, _)| r) {
            Some(Role::Doctor) => practitioner_ref(&e.author),
            Some(Role::Patient) => patient_ref(&e.author),
            _ => json!({"identifier": {"system": SYSTEM_ACCOUNT, "value": e.author.to_string()}}),
        };
        let observer = json!({
            "identifier": {"system": SYSTEM_NETWORK, "value": self.state.genesis_cid().to_string()},
            "display": format!("medshare network {}", self.state.network()),
        });
        let mut entity = vec![
            json!({"what": document_ref(record)}),
            json!({"what": {"identifier": {"system": SYSTEM_TX, "value": e.tx.to_string()}}}),
        ];
        if let Some(d) = e.kind.doctor() {
            entity.push(json!({"what": practitioner_ref(&d)}));
        }
        let dcm_type = json!({"system": DCM, "code": "110110", "display": "Patient Record"});
        let purpose = e
            .kind
            .purpose()
            .map(|p| json!([{"coding": [purpose_coding(p)]}]));
        let mut a = if self.r5() {
            let mut codings = vec![dcm_type];
            codings.extend(subtype);
            json!({
                "resourceType": "AuditEvent",
                "id": e.tx.to_string(),
                "category": [{"coding": [{"system": DCM, "code": "110110", "display": "Patient Record"}]}],
                "code": {"coding": codings},
                "action": action,
                "occurredDateTime": instant(e.time),
                "recorded": instant(e.time),
                "outcome": {"code": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-outcome", "code": "0", "display": "Success"}},
                "patient": patient_ref(owner),
                "agent": [{"who": author, "requestor": true}],
                "source": {"observer": observer},
                "entity": entity,
            })
        } else {
            json!({
                "resourceType": "AuditEvent",
                "id": e.tx.to_string(),
                "type": dcm_type,
                "subtype": subtype,
                "action": action,
                "recorded": instant(e.time),
                "outcome": "0",
                "agent": [{"who": author, "requestor": true}],
                "source": {"observer": observer},
                "entity": entity,
            })
        };
        if let Some(p) = purpose {
            a[if self.r5() {
                "authorization"
            } else {
                "purposeOfEvent"
            }] = p;
        }
        a
    }

    /// A record version as a `Provenance`: who published it, when, from which content, signed
    /// how.
    fn provenance(
        &self,
        record: &RecordId,
        version: u32,
        content: &Cid,
        e: &AuditEvent,
        signatures: &BTreeMap<Cid, Vec<u8>>,
    ) -> Value {
        let mut signature = json!({
            "type": [{"system": SIGNATURE_TYPE, "code": "1.2.840.10065.1.12.1.1", "display": "Author's Signature"}],
            "when": instant(e.time),
            "who": patient_ref(&e.author),
            "targetFormat": "application/vnd.ipld.dag-cbor",
            "sigFormat": "application/vnd.medshare.rsa-pss-sha256",
        });
        if let Some(sig) = signatures.get(&e.tx) {
            signature["data"] = json!(data_encoding::BASE64.encode(sig));
        }
        json!({
            "resourceType": "Provenance",
            "id": e.tx.to_string(),
            "target": [{"reference": format!("DocumentReference/{record}/_history/{version}")}],
            "recorded": instant(e.time),
            "agent": [{
                "type": {"coding": [{"system": PROVENANCE_ROLE, "code": "author", "display": "Author"}]},
                "who": patient_ref(&e.author),
            }],
            "entity": [{
                "role": "source",
                "what": {"identifier": {"system": SYSTEM_CID, "value": content.to_string()}},
            }],
            "signature": [signature],
        })
    }
}

fn patient_ref(id: &IdentityId) -> Value {
    json!({"reference": format!("Patient/{id}")})
}

fn practitioner_ref(id: &IdentityId) -> Value {
    json!({"reference": format!("Practitioner/{id}")})
}

fn document_ref(record: &RecordId) -> Value {
    json!({"reference": format!("DocumentReference/{record}")})
}

fn purpose_coding(p: Purpose) -> Value {
    json!({"system": V3_PURPOSE, "code": p.code(), "display": p.display()})
}

/// A FHIR id: at most 64 of `[A-Za-z0-9.-]`.
fn fhir_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// Unix seconds as a FHIR instant (`YYYY-MM-DDThh:mm:ssZ`, UTC).
pub fn instant(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_utc_calendar_times() {
        assert_eq!(instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(instant(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(instant(1_764_028_799), "2025-11-24T23:59:59Z");
        assert_eq!(instant(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn ids_are_fhir_ids() {
        assert_eq!(fhir_id("record-ab_c"), "record-ab-c");
        assert_eq!(fhir_id(&"x".repeat(80)).len(), 64);
    }
}
