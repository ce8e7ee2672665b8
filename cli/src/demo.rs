//! `medshare demo`: the whole story on a fresh filesystem store, narrated step by step.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use medshare::envelope::Metadata;
use medshare::ledger::{AuditKind, Endorsement, Policy};
use medshare::{Error, GrantOptions, Identity, Purpose, Role, Store, Vault};
use sha2::{Digest, Sha256};

const BIG: u64 = 50 * 1000 * 1000;
const PASSPHRASE: &str = "demo passphrase, not for real use";

fn say(step: &str, text: &str) {
    println!("\n[{step}] {text}");
}

fn detail(text: &str) {
    println!("      {text}");
}

fn short(s: &str) -> String {
    if s.len() > 20 {
        format!("{}…{}", &s[..12], &s[s.len() - 6..])
    } else {
        s.to_owned()
    }
}

/// Deterministic pseudo-random bytes standing in for an imaging study.
struct FakeStudy {
    left: u64,
    state: u64,
}

impl Read for FakeStudy {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.state = self
                .state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = self.state.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct HashWriter(Sha256, u64);

impl Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        self.1 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex8(d: &[u8]) -> String {
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub fn run(home_arg: &Path, explicit_home: bool) -> Result<()> {
    let tmp;
    let home = if explicit_home {
        if home_arg.join("store").exists() {
            bail!(
                "{} already holds a store; the demo needs a fresh --home",
                home_arg.display()
            );
        }
        home_arg.to_path_buf()
    } else {
        tmp = tempfile::Builder::new()
            .prefix("medshare-demo-")
            .tempdir()?;
        tmp.path().to_path_buf()
    };
    pollster::block_on(story(&home))
}

async fn story(home: &Path) -> Result<()> {
    let started = Instant::now();
    println!("medshare demo — a patient shares records with two doctors, then revokes one.");
    println!(
        "Everything lives in a fresh embedded store under {}",
        home.display()
    );

    say(
        "1/9",
        "A hospital sets up the network: its authority key certifies every block of the ledger.",
    );
    let t = Instant::now();
    let authority = Identity::generate(Role::Authority, "St. Example Hospital", 3072)?;
    let store = Store::open_dir(home.join("store"))?;
    let mut vault =
        Vault::create(store, "medshare-demo", authority.clone(), Policy::default()).await?;
    detail(&format!(
        "authority id {} (RSA-3072, {:.1?})",
        short(&authority.id().to_string()),
        t.elapsed()
    ));
    detail(&format!(
        "genesis block {} (every signature on this network binds it)",
        vault.genesis()
    ));

    say(
        "2/9",
        "Alice (patient) and Drs. Bob and Carol create keys; the hospital endorses the doctors' licences.",
    );
    let t = Instant::now();
    let alice = Identity::generate(Role::Patient, "alice", 3072)?;
    let bob = Identity::generate(Role::Doctor, "dr-bob", 3072)?;
    let carol = Identity::generate(Role::Doctor, "dr-carol", 3072)?;
    detail(&format!("three RSA-3072 key pairs in {:.1?}", t.elapsed()));
    std::fs::create_dir_all(home.join("identities"))?;
    for id in [&alice, &bob, &carol] {
        id.save(
            home.join("identities").join(format!("{}.key", id.name())),
            PASSPHRASE,
        )?;
    }
    let reloaded = Identity::load(home.join("identities/alice.key"), PASSPHRASE)?;
    ensure!(
        reloaded.id() == alice.id(),
        "key file round trip changed the id"
    );
    detail("private keys saved encrypted (PKCS#8, scrypt + AES-256-GCM) and reloaded");
    vault.register(&alice, None).await?;
    // The hospital endorses each doctor's licence with its own key; the doctor registers with
    // that endorsement (on a network, in two different places).
    let genesis = vault.genesis();
    let bob_endorsed =
        Endorsement::sign(&authority, &genesis, &bob.id(), "GMC-7001234 cardiology")?;
    let carol_endorsed =
        Endorsement::sign(&authority, &genesis, &carol.id(), "GMC-7005678 radiology")?;
    vault.register(&bob, Some(&bob_endorsed)).await?;
    vault.register(&carol, Some(&carol_endorsed)).await?;
    for id in [&alice, &bob, &carol] {
        detail(&format!(
            "{:<9} {:<8} {}",
            id.name(),
            id.role().as_str(),
            short(&id.id().to_string())
        ));
    }

    say(
        "3/9",
        "Alice publishes a FHIR lab bundle and a 50 MB imaging study, each sealed under a fresh key.",
    );
    let fhir = br#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}]},"valueQuantity":{"value":95,"unit":"mg/dL"}}}]}"#;
    let labs = vault
        .publish_bytes(&alice, fhir, "labs.json", "application/fhir+json")
        .await?;
    detail(&format!(
        "labs.json   -> record {} ({} bytes)",
        labs,
        fhir.len()
    ));
    let t = Instant::now();
    let mut expected = Sha256::new();
    let mut copy = FakeStudy {
        left: BIG,
        state: 7,
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = copy.read(&mut buf)?;
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    let expected = expected.finalize();
    let meta = Metadata {
        name: "ct-chest.dcm".into(),
        media_type: "application/dicom".into(),
        size: BIG,
    };
    let scan = vault
        .publish(
            &alice,
            FakeStudy {
                left: BIG,
                state: 7,
            },
            meta,
            &mut |_| {},
        )
        .await?;
    let secs = t.elapsed().as_secs_f64();
    let info = vault.record(&scan).context("record missing")?;
    detail(&format!(
        "ct-chest.dcm -> record {scan} ({} MB in {secs:.2}s, {:.0} MB/s: sealed, cut into UnixFS blocks, stored)",
        BIG / 1_000_000,
        BIG as f64 / 1e6 / secs
    ));
    detail(&format!(
        "its ciphertext root CID is {} — what `ipfs add` would print",
        info.content
    ));

    say(
        "4/9",
        "Alice grants both doctors both records (the data key is wrapped to each doctor's RSA key).",
    );
    for rec in [&labs, &scan] {
        let why = |note: &str| GrantOptions {
            purpose: Purpose::Treatment,
            note: Some(note.into()),
            ..GrantOptions::default()
        };
        vault
            .grant(&alice, rec, &bob.id(), why("cardiology follow-up"))
            .await?;
        vault
            .grant(&alice, rec, &carol.id(), why("radiology review"))
            .await?;
    }
    detail(&format!(
        "Dr. Bob can read {} record(s), Dr. Carol {}",
        vault.records_granted_to(&bob.id()).len(),
        vault.records_granted_to(&carol.id()).len()
    ));
    detail(&format!(
        "the ledger shows only the purpose code ({}); the note \"{}\" is encrypted to Alice and Dr. Bob",
        Purpose::Treatment.code(),
        vault
            .grant_note(&bob, &labs, &bob.id())
            .await?
            .unwrap_or_default()
    ));

    say(
        "5/9",
        "Both doctors open the records; the ledger's access list is checked, then every block by its CID.",
    );
    for doc in [&bob, &carol] {
        let mut out = Vec::new();
        vault.open_record(doc, &labs, &mut out).await?;
        ensure!(out == fhir, "labs differ for {}", doc.name());
        let t = Instant::now();
        let mut h = HashWriter(Sha256::new(), 0);
        let m = vault.open_record(doc, &scan, &mut h).await?;
        ensure!(
            h.0.finalize() == expected && h.1 == BIG,
            "scan differs for {}",
            doc.name()
        );
        detail(&format!(
            "{:<9} read labs.json and {} ({} MB in {:.2}s), sha256 {}… matches",
            doc.name(),
            m.name,
            BIG / 1_000_000,
            t.elapsed().as_secs_f64(),
            hex8(&expected)
        ));
    }

    say("6/9", "Alice revokes Dr. Bob from the imaging study.");
    let t = Instant::now();
    let report = vault.revoke(&alice, &scan, &bob.id()).await?;
    detail(&format!(
        "Revoke + re-encryption as version {} under a new key, re-granted to {} remaining doctor(s), one certified block ({:.2}s)",
        report.new_version,
        report.remaining.len(),
        t.elapsed().as_secs_f64()
    ));
    detail(&format!(
        "the old version's {} blocks were deleted from this store",
        report.deleted_blocks
    ));

    say(
        "7/9",
        "Dr. Bob tries again and is refused; Dr. Carol still reads the new version.",
    );
    match vault.open_record(&bob, &scan, &mut std::io::sink()).await {
        Err(Error::AccessRevoked(_)) => detail("Dr. Bob: refused — AccessRevoked"),
        Ok(_) => bail!("the revoked doctor could still read the record"),
        Err(e) => bail!("unexpected error for the revoked doctor: {e}"),
    }
    let mut h = HashWriter(Sha256::new(), 0);
    vault.open_record(&carol, &scan, &mut h).await?;
    ensure!(h.0.finalize() == expected, "new version differs");
    detail("Dr. Carol: read version 2, same bytes as before");
    let mut out = Vec::new();
    vault.open_record(&bob, &labs, &mut out).await?;
    detail("Dr. Bob still reads labs.json, which Alice did not revoke");
    detail("(what Dr. Bob downloaded before the revocation cannot be recalled — no system can)");

    say(
        "8/9",
        "Anyone holding the store verifies the whole ledger offline, from genesis.",
    );
    let t = Instant::now();
    let r = vault.verify().await?;
    detail(&format!(
        "{} blocks, {} transactions: every CID, signature, certificate and rule checked in {:.2?}",
        r.blocks,
        r.transactions,
        t.elapsed()
    ));

    say("9/9", "The audit trail of the imaging study:");
    let name = |id: &medshare::IdentityId| {
        [&alice, &bob, &carol]
            .iter()
            .find(|i| i.id() == *id)
            .map_or_else(|| short(&id.to_string()), |i| i.name().to_owned())
    };
    for e in vault.audit(&scan)? {
        let what = match &e.kind {
            AuditKind::Published { version, .. } => format!("published version {version}"),
            AuditKind::Granted {
                doctor,
                version,
                purpose,
                ..
            } => format!(
                "granted v{version} to {} ({})",
                name(doctor),
                purpose.code()
            ),
            AuditKind::Revoked { doctor } => format!("revoked {}", name(doctor)),
            other => other.name().to_owned(),
        };
        detail(&format!(
            "block {:>2}  {:<40} by {}",
            e.height,
            what,
            name(&e.author)
        ));
    }
    println!(
        "\nDone in {:.1?}. The story is recorded in a chain any party can re-verify.",
        started.elapsed()
    );
    Ok(())
}
