//! The commands. Each one is argument parsing and printing around one call into the core.

use std::path::Path;

use anyhow::{Context, Result, bail};
use medshare::envelope::Metadata;
use medshare::ledger::{AuditKind, Endorsement, Policy};
use medshare::{Expiry, GrantOptions, Identity, Profile, Purpose, RecordId, Role, Vault};
use serde_json::json;

use crate::home::{Home, passphrase};
use crate::out::{Out, esc};
use crate::{Command, IdentityCommand, RecordCommand};

pub fn run(home: &Home, home_arg: &Path, command: Command, out: &Out) -> Result<()> {
    match command {
        Command::Init { name } => init(home, &name, out),
        Command::Node { command } => crate::network::node(command, out),
        Command::Receipt {
            record,
            tx,
            out: path,
        } => receipt(home, record.as_deref(), tx.as_deref(), path.as_deref(), out),
        Command::VerifyReceipt { file, genesis } => verify_receipt(&file, &genesis, out),
        Command::Light {
            genesis,
            record,
            doctor,
            trust,
        } => light(
            home.network
                .as_ref()
                .map(|n| n.nodes.clone())
                .unwrap_or_default(),
            &genesis,
            record.as_deref(),
            doctor.as_deref(),
            trust.as_deref(),
            out,
        ),
        Command::Fhir {
            record,
            patient,
            fhir_version,
            out: path,
        } => fhir(
            home,
            record.as_deref(),
            patient.as_deref(),
            &fhir_version,
            path.as_deref(),
            out,
        ),
        Command::Testnet { command } => crate::network::testnet(command, out),
        Command::Authority { command } => crate::network::authority(home, command, out),
        Command::Identity { command } => match command {
            IdentityCommand::New {
                role,
                name,
                bits,
                licence,
                endorsement,
                key,
            } => identity_new(
                home,
                &role,
                &name,
                bits,
                licence.as_deref(),
                endorsement.as_deref(),
                key.as_deref(),
                out,
            ),
            IdentityCommand::List => identity_list(home, out),
            IdentityCommand::Register { as_, endorsement } => {
                identity_register(home, &as_, &endorsement, out)
            }
            IdentityCommand::Rotate { as_ } => identity_rotate(home, &as_, out),
        },
        Command::Endorse {
            doctor,
            licence,
            out: path,
        } => endorse(home, &doctor, &licence, path.as_deref(), out),
        Command::Record { command } => match command {
            RecordCommand::Add {
                as_,
                file,
                media_type,
                emergency,
            } => record_add(home, &as_, &file, media_type, emergency, out),
            RecordCommand::Rekey { as_, record } => {
                crate::emergency::rekey(home, &as_, &record, out)
            }
            RecordCommand::Get {
                as_,
                record,
                out: path,
            } => record_get(home, &as_, &record, &path, out),
            RecordCommand::Note {
                as_,
                record,
                doctor,
            } => record_note(home, &as_, &record, doctor.as_deref(), out),
        },
        Command::Grant {
            as_,
            record,
            doctor,
            expires,
            purpose,
            note,
        } => grant(
            home,
            &as_,
            &record,
            &doctor,
            expires.as_deref(),
            &purpose,
            note,
            out,
        ),
        Command::Revoke {
            as_,
            record,
            doctor,
        } => revoke(home, &as_, &record, &doctor, out),
        Command::Records { as_ } => records(home, &as_, out),
        Command::Audit {
            record: Some(record),
            emergency: false,
        } => audit(home, &record, out),
        Command::Audit {
            emergency: true, ..
        } => crate::emergency::list(home, true, out),
        Command::Audit { record: None, .. } => {
            bail!(
                "say what to audit: --record R, or --emergency for the unreviewed emergency accesses"
            )
        }
        Command::Emergency { command } => crate::emergency::run(home, command, out),
        Command::Verify { content } => verify(home, content, out),
        Command::Cid { file, profile } => cid(&file, &profile, out),
        Command::Export { car } => export(home, &car, out),
        Command::Import { car, genesis } => import(home, &car, genesis.as_deref(), out),
        Command::Gc => gc(home, out),
        Command::Repair => repair(home, out),
        Command::Demo => crate::demo::run(home_arg, home_arg.as_os_str() != ".medshare"),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn init(home: &Home, name: &str, out: &Out) -> Result<()> {
    // Nothing of an existing home is ever replaced: a second `init` (with any store) would
    // otherwise overwrite the authority key, and the chain could never be written again.
    let existing = home.existing_parts()?;
    if !existing.is_empty() {
        bail!(
            "refusing to initialise: {} already exists (a home is initialised once)",
            existing.join(", ")
        );
    }
    if let Some(net) = &home.network {
        // Joining a network: no authority here; the network's genesis binds the home.
        let genesis = medshare::parse_cid(&net.genesis)?;
        std::fs::create_dir_all(&home.root)?;
        medshare::fsutil::write_new(
            &home.root.join("network.json"),
            serde_json::to_string_pretty(net)?.as_bytes(),
            false,
        )?;
        home.save_genesis(&genesis)?;
        let vault = home.vault(false)?;
        out.emit(
            format!(
                "joined network `{}` (genesis {}, block {}) through {}",
                esc(vault.state().network()),
                vault.genesis(),
                vault.height(),
                net.nodes.join(", ")
            ),
            json!({"home": home.root.display().to_string(), "genesis": vault.genesis().to_string(), "network": vault.state().network()}),
        );
        return Ok(());
    }
    std::fs::create_dir_all(home.identities_dir())?;
    let pass = passphrase("the new authority key", true)?;
    let authority = Identity::generate(
        Role::Authority,
        "local-authority",
        medshare::identity::DEFAULT_KEY_BITS,
    )?;
    let store = home.open_store()?;
    // A sequencer publishing heads under IPNS: make sure the node has the key, and say its name.
    let ipns = match &home.kubo {
        Some(c) => match &c.publish_key {
            Some(k) => Some(block_on(
                medshare::store::kubo::KuboStore::new(c.clone())?.ipns_key(k),
            )?),
            None => None,
        },
        None => None,
    };
    let id = authority.id();
    authority.save(home.authority_path(), &pass)?;
    let vault = block_on(Vault::create(store, name, authority, Policy::default()))?;
    home.save_genesis(&vault.genesis())?;
    out.emit(
        format!(
            "initialised {} (network `{}`, genesis {}, authority {id}){}",
            home.root.display(),
            esc(name),
            vault.genesis(),
            ipns.as_ref().map(|n| format!(", heads published at /ipns/{n}")).unwrap_or_default()
        ),
        json!({"home": home.root.display().to_string(), "network": name, "genesis": vault.genesis().to_string(),
               "authority": id.to_string(), "ipns": ipns}),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn identity_new(
    home: &Home,
    role: &str,
    name: &str,
    bits: usize,
    licence: Option<&str>,
    endorsement: Option<&Path>,
    key: Option<&Path>,
    out: &Out,
) -> Result<()> {
    let role: Role = role.parse()?;
    if role == Role::Authority {
        bail!("authorities are named by the genesis block (`medshare init`) or added by vote");
    }
    let path = home.identity_path(name)?;
    if path.exists() || home.public_path(name)?.exists() {
        bail!("an identity named `{name}` already exists in this home");
    }
    let mut vault = home.vault(true)?;
    let pass = passphrase(name, true)?;
    let id = match key {
        Some(k) => {
            let pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?,
            );
            Identity::from_pkcs8_pem(role, name, &pem)?
        }
        None => Identity::generate(role, name, bits)?,
    };
    let endorsement = match (role, endorsement, licence) {
        (Role::Doctor, Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            Some(Endorsement::from_text(&text)?)
        }
        (Role::Doctor, None, Some(licence)) => {
            // Embedded mode: this home's authority endorses the doctor it registers.
            let authority = home.load_authority().context(
                "a doctor needs an endorsement: --endorsement FILE from an authority, or --licence with this home's authority key",
            )?;
            Some(Endorsement::sign(
                &authority,
                &vault.genesis(),
                &id.id(),
                licence,
            )?)
        }
        // On a network: the key is made here, the endorsement at a hospital; register later.
        (Role::Doctor, None, None) => None,
        _ => None,
    };
    // Save first (refusing to replace anything), register second: a key whose registration
    // fails can be registered later; a registered identity without its key is lost.
    std::fs::create_dir_all(home.identities_dir())?;
    id.save(&path, &pass)?;
    home.save_public(name, &id)?;
    if role == Role::Doctor && endorsement.is_none() {
        out.emit(
            format!(
                "doctor `{name}` created, not registered yet: account {id}\n\
                 an authority of the network endorses it (`medshare endorse --doctor {id} --licence …`), \
                 then: medshare identity register --as {name} --endorsement FILE",
                id = id.id()
            ),
            json!({"id": id.id().to_string(), "name": name, "role": role.as_str(), "registered": false}),
        );
        return Ok(());
    }
    if let Err(e) = block_on(vault.register(&id, endorsement.as_ref())) {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(home.public_path(name)?);
        return Err(e.into());
    }
    out.emit(
        format!("{role} `{name}` registered: {}", id.id()),
        json!({"id": id.id().to_string(), "name": name, "role": role.as_str()}),
    );
    Ok(())
}

fn identity_register(home: &Home, name: &str, endorsement: &Path, out: &Out) -> Result<()> {
    let mut vault = home.vault(true)?;
    let id = home.load_identity(name)?;
    let text = std::fs::read_to_string(endorsement)
        .with_context(|| format!("reading {}", endorsement.display()))?;
    let e = Endorsement::from_text(&text)?;
    block_on(vault.register(&id, Some(&e)))?;
    out.emit(
        format!("{} `{name}` registered: {}", id.role(), id.id()),
        json!({"id": id.id().to_string(), "name": name, "role": id.role().as_str(), "registered": true}),
    );
    Ok(())
}

fn identity_list(home: &Home, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let mut rows = Vec::new();
    let mut text = String::new();
    for (name, _) in home.identity_files()? {
        let id = home.resolve_id(&name)?;
        let role = vault
            .state()
            .identity(&id)
            .map(|(r, _)| r.as_str())
            .unwrap_or("unregistered");
        text += &format!("{name:<16} {role:<12} {id}\n");
        rows.push(json!({"name": name, "role": role, "id": id.to_string()}));
    }
    out.emit(text.trim_end(), json!(rows));
    Ok(())
}

fn identity_rotate(home: &Home, name: &str, out: &Out) -> Result<()> {
    let mut vault = home.vault(true)?;
    let old = home.load_identity(name)?;
    let path = home.identity_path(name)?;
    let pass = passphrase(name, false)?;
    let new = old.rotated()?;
    // The new key file is written before the chain changes, beside the old one; the old one is
    // renamed aside only once the rotation is committed.
    let staged = path.with_extension("key.new");
    new.save(&staged, &pass)?;
    let report = match block_on(vault.rotate_key(&old, &new)) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    let retired = path.with_extension(format!("key.retired-{}", medshare::platform::now_secs()));
    std::fs::rename(&path, &retired)?;
    std::fs::rename(&staged, &path)?;
    home.save_public(name, &new)?;
    out.emit(
        format!(
            "`{name}` now uses key {} (account {} unchanged): {} data key(s) re-wrapped, {} record(s) re-keyed; the old key file is kept as {}",
            new.key_id(),
            new.id(),
            report.rewrapped,
            report.rekeyed.len(),
            retired.display()
        ),
        json!({"id": new.id().to_string(), "key": new.key_id().to_string(), "rewrapped": report.rewrapped,
               "rekeyed": report.rekeyed.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
               "retired": retired.display().to_string()}),
    );
    Ok(())
}

fn endorse(home: &Home, doctor: &str, licence: &str, path: Option<&Path>, out: &Out) -> Result<()> {
    let genesis = home
        .genesis()?
        .context("this home is bound to no network yet (run `medshare init`)")?;
    let doctor = home.resolve_id(doctor)?;
    let authority = home.load_authority()?;
    let e = Endorsement::sign(&authority, &genesis, &doctor, licence)?;
    let text = e.to_text();
    match path {
        Some(p) => {
            medshare::fsutil::write_new(p, text.as_bytes(), false)
                .with_context(|| format!("writing {}", p.display()))?;
            out.emit(
                format!("endorsed {doctor} (licence {}) in {}", esc(licence), p.display()),
                json!({"doctor": doctor.to_string(), "licence": licence, "file": p.display().to_string()}),
            );
        }
        None => {
            if out.json {
                out.emit(
                    "",
                    json!({"doctor": doctor.to_string(), "licence": licence, "endorsement": text}),
                );
            } else {
                crate::out::print_line(text.trim_end());
            }
        }
    }
    Ok(())
}

fn guess_media_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => "application/fhir+json",
        Some("xml") => "application/fhir+xml",
        Some("dcm") => "application/dicom",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

fn progress_bar(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || total < (8 << 20) {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        pb.set_style(style);
    }
    pb.set_message(what.to_owned());
    Some(pb)
}

fn record_add(
    home: &Home,
    as_: &str,
    file: &Path,
    media_type: Option<String>,
    emergency: bool,
    out: &Out,
) -> Result<()> {
    let mut vault = home.vault(true)?;
    let patient = home.load_identity(as_)?;
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = f.metadata()?.len();
    let meta = Metadata {
        name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        media_type: media_type.unwrap_or_else(|| guess_media_type(file).to_owned()),
        size,
    };
    let pb = progress_bar(size, "encrypting");
    let record = block_on(vault.publish_with(
        &patient,
        std::io::BufReader::with_capacity(1 << 20, f),
        meta,
        medshare::PublishOptions { emergency },
        &mut |n| {
            if let Some(pb) = &pb {
                pb.set_position(n);
            }
        },
    ))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let content = vault.record(&record)?.content.to_string();
    out.emit(
        format!("published {} as record {record} (content {content})", file.display()),
        json!({"id": record.to_string(), "record": record.to_string(), "content": content, "size": size}),
    );
    Ok(())
}

fn record_get(home: &Home, as_: &str, record: &str, path: &Path, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let reader = home.load_identity(as_)?;
    let record: RecordId = record.parse()?;
    let size = vault.record(&record).map_or(0, |r| r.size);
    let pb = progress_bar(size, "decrypting");
    let meta = block_on(vault.open_record_to_path(&reader, &record, path, &mut |n| {
        if let Some(pb) = &pb {
            pb.set_position(n);
        }
    }))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    out.emit(
        format!(
            "wrote {} ({} bytes, {}, originally `{}`)",
            path.display(),
            meta.size,
            esc(&meta.media_type),
            esc(&meta.name)
        ),
        json!({"record": record.to_string(), "out": path.display().to_string(), "size": meta.size,
               "media_type": meta.media_type, "name": meta.name}),
    );
    Ok(())
}

fn record_note(
    home: &Home,
    as_: &str,
    record: &str,
    doctor: Option<&str>,
    out: &Out,
) -> Result<()> {
    let vault = home.vault(false)?;
    let reader = home.load_identity(as_)?;
    let record: RecordId = record.parse()?;
    let doctor = match doctor {
        Some(d) => home.resolve_id(d)?,
        None => reader.id(),
    };
    let note = block_on(vault.grant_note(&reader, &record, &doctor))?;
    out.emit(
        note.as_deref().map_or_else(|| "(no note)".to_owned(), esc),
        json!({"record": record.to_string(), "doctor": doctor.to_string(), "note": note}),
    );
    Ok(())
}

/// `30d`, `12h`, `45m`, `90s`, `2w` → seconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("bad duration `{}` (e.g. 30d, 12h, 45m)", esc(s)))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => bail!("bad duration unit in `{}` (s, m, h, d or w)", esc(s)),
    };
    n.checked_mul(mult)
        .filter(|&d| d <= 100 * 365 * 86_400)
        .with_context(|| format!("duration `{}` is longer than a hundred years", esc(s)))
}

#[allow(clippy::too_many_arguments)]
fn grant(
    home: &Home,
    as_: &str,
    record: &str,
    doctor: &str,
    expires: Option<&str>,
    purpose: &str,
    note: Option<String>,
    out: &Out,
) -> Result<()> {
    let record: RecordId = record.parse()?;
    let purpose: Purpose = purpose.parse()?;
    let expires = expires
        .map(parse_duration)
        .transpose()?
        .map(|s| Expiry::After(std::time::Duration::from_secs(s)));
    let doctor_id = home.resolve_id(doctor)?;
    let mut vault = home.vault(true)?;
    let patient = home.load_identity(as_)?;
    block_on(vault.grant(
        &patient,
        &record,
        &doctor_id,
        GrantOptions {
            expires,
            purpose,
            note,
        },
    ))?;
    let g = vault
        .access_list(&record)?
        .into_iter()
        .find(|g| g.doctor == doctor_id);
    let expires_at = g.as_ref().and_then(|g| g.expires);
    out.emit(
        format!(
            "granted {record} to {} ({}){}",
            esc(doctor),
            purpose.code(),
            expires_at
                .map(|e| format!(" until {e}"))
                .unwrap_or_default()
        ),
        json!({"record": record.to_string(), "doctor": doctor_id.to_string(), "expires": expires_at,
               "purpose": purpose.code(), "version": vault.record(&record)?.version}),
    );
    Ok(())
}

fn revoke(home: &Home, as_: &str, record: &str, doctor: &str, out: &Out) -> Result<()> {
    let record: RecordId = record.parse()?;
    let doctor_id = home.resolve_id(doctor)?;
    let mut vault = home.vault(true)?;
    let patient = home.load_identity(as_)?;
    let report = block_on(vault.revoke(&patient, &record, &doctor_id))?;
    out.emit(
        format!(
            "revoked {} from {record}: re-encrypted as version {}, {} doctor(s) keep access, {} old block(s) deleted",
            esc(doctor),
            report.new_version,
            report.remaining.len(),
            report.deleted_blocks
        ),
        json!({"record": record.to_string(), "version": report.new_version,
               "remaining": report.remaining.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
               "deleted_blocks": report.deleted_blocks}),
    );
    Ok(())
}

fn records(home: &Home, as_: &str, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let id = home.resolve_id(as_)?;
    let list = vault.records_for(&id)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for r in &list {
        let status = match &r.grant {
            None => "owner".to_owned(),
            Some(g) if vault.is_expired(g) => "expired".to_owned(),
            Some(g) => match g.expires {
                Some(e) => format!("{} until {e}", g.purpose.code()),
                None => g.purpose.code().to_owned(),
            },
        };
        text += &format!("{}  v{}  {} bytes  {status}\n", r.record, r.version, r.size);
        rows.push(json!({"record": r.record.to_string(), "version": r.version, "owner": r.owner.to_string(),
                         "size": r.size, "content": r.content.to_string(), "status": status,
                         "expires": r.grant.as_ref().and_then(|g| g.expires),
                         "purpose": r.grant.as_ref().map(|g| g.purpose.code())}));
    }
    if list.is_empty() {
        text = format!("no records for {}", esc(as_));
    }
    out.emit(text.trim_end(), json!(rows));
    Ok(())
}

fn audit(home: &Home, record: &str, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let record: RecordId = record.parse()?;
    let events = vault.audit(&record)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for e in &events {
        let detail = match &e.kind {
            AuditKind::Published { version, content } => {
                format!("version {version}, content {content}")
            }
            AuditKind::Granted {
                doctor,
                version,
                expires,
                purpose,
            } => format!(
                "to {doctor}, version {version}, purpose {}{}",
                purpose.code(),
                expires
                    .map(|x| format!(", expires {x}"))
                    .unwrap_or_default()
            ),
            AuditKind::Revoked { doctor } => format!("from {doctor}"),
            AuditKind::EmergencyEnabled {
                version,
                threshold,
                shares,
            } => format!(
                "version {version}, key split {threshold} of {shares} among the authorities"
            ),
            AuditKind::Emergency {
                doctor,
                version,
                expires,
                purpose,
            } => format!(
                "EMERGENCY OVERRIDE by {doctor}, version {version}, purpose {}, shares until {}",
                purpose.code(),
                expires.unwrap_or_default()
            ),
            AuditKind::ShareReleased {
                request,
                doctor,
                index,
            } => format!("share {index} to {doctor} for request {request}"),
            AuditKind::Reviewed {
                request,
                doctor,
                outcome,
            } => format!("request {request} by {doctor}: {outcome}"),
        };
        text += &format!(
            "block {:>4}  t={}  {:<9} {detail}  (by {})\n",
            e.height,
            e.time,
            e.kind.name(),
            e.author
        );
        let mut row = serde_json::to_value(e)?;
        row["detail"] = json!(detail);
        rows.push(row);
    }
    out.emit(text.trim_end(), json!(rows));
    Ok(())
}

fn receipt(
    home: &Home,
    record: Option<&str>,
    tx: Option<&str>,
    path: Option<&Path>,
    out: &Out,
) -> Result<()> {
    let vault = home.vault(false)?;
    let tx: medshare::Cid = match (tx, record) {
        (Some(t), _) => medshare::parse_cid(t)?,
        (None, Some(r)) => {
            let record: RecordId = r.parse()?;
            vault
                .audit(&record)?
                .last()
                .map(|e| e.tx)
                .context("the record has no transaction")?
        }
        (None, None) => bail!("say which transaction: --tx CID, or --record R for its latest"),
    };
    let receipt = block_on(vault.receipt(&tx))?;
    let text = receipt.to_json();
    match path {
        Some(p) => {
            medshare::fsutil::write_atomic(p, text.as_bytes(), false)
                .with_context(|| format!("writing {}", p.display()))?;
            out.emit(
                format!(
                    "receipt of {tx} ({} bytes) in {}",
                    text.len(),
                    esc(&p.display().to_string())
                ),
                json!({"tx": tx.to_string(), "bytes": text.len(), "file": p.display().to_string()}),
            );
        }
        None => crate::out::print_line(&text),
    }
    Ok(())
}

fn fhir(
    home: &Home,
    record: Option<&str>,
    patient: Option<&str>,
    version: &str,
    path: Option<&Path>,
    out: &Out,
) -> Result<()> {
    let version: medshare::FhirVersion = version.parse()?;
    let vault = home.vault(false)?;
    let scope = match (record, patient) {
        (Some(r), _) => medshare::FhirScope::Record(r.parse()?),
        (None, Some(p)) => medshare::FhirScope::Patient(home.resolve_id(p)?),
        (None, None) => bail!("say what to export: --record R, or --patient NAME"),
    };
    let bundle = block_on(vault.fhir(&scope, version))?;
    let text = serde_json::to_string_pretty(&bundle)?;
    match path {
        Some(p) => {
            medshare::fsutil::write_atomic(p, text.as_bytes(), false)
                .with_context(|| format!("writing {}", p.display()))?;
            let n = bundle["entry"].as_array().map_or(0, Vec::len);
            out.emit(
                format!(
                    "FHIR {version:?} bundle of {n} resources in {}",
                    esc(&p.display().to_string())
                ),
                json!({"resources": n, "bytes": text.len(), "file": p.display().to_string()}),
            );
        }
        None => crate::out::print_line(&text),
    }
    Ok(())
}

fn light(
    node: Vec<String>,
    genesis: &str,
    record: Option<&str>,
    doctor: Option<&str>,
    trust: Option<&Path>,
    out: &Out,
) -> Result<()> {
    use medshare::ledger::light::{LightAnswer, StateQuery};
    if node.is_empty() {
        bail!("say which validator to ask: --node URL (repeatable)");
    }
    let genesis = medshare::parse_cid(genesis)?;
    let kept = match trust {
        Some(p) if p.exists() => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        _ => None,
    };
    let node = medshare::sequencer::comet::CometSequencer::new(node)?;
    let client = block_on(medshare::sequencer::light::LightClient::connect(
        node,
        &genesis,
        kept.as_deref(),
    ))?;
    let query = match (record, doctor) {
        (Some(r), _) => StateQuery::Record(r.parse()?),
        (None, Some(d)) => StateQuery::Doctor(d.parse()?),
        (None, None) => bail!("say what to ask: --record R or --doctor ID"),
    };
    let answer = block_on(client.ask(query))?;
    if let Some(p) = trust {
        medshare::fsutil::write_atomic(p, client.trust().as_bytes(), false)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let cp = client
        .checkpoint()
        .ok_or_else(|| anyhow::anyhow!("no checkpoint verified"))?;
    let at = format!(
        "(proven at block {}, log of {} transactions)",
        cp.height, cp.size
    );
    let human = match &answer {
        LightAnswer::Record(None) => format!("no such record {at}"),
        LightAnswer::Record(Some(r)) => {
            let mut s = format!(
                "record {} of {}, version {} {at}",
                r.record, r.owner, r.version
            );
            if r.grants.is_empty() {
                s += "\n  no grants";
            }
            for g in &r.grants {
                s += &format!(
                    "\n  {} version {} for {}{}",
                    g.doctor,
                    g.version,
                    g.purpose.code(),
                    g.expires
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                );
            }
            s
        }
        LightAnswer::Doctor(rs) => {
            let mut s = format!("{} records readable {at}", rs.len());
            for r in rs {
                s += &format!(
                    "\n  {} version {}{}",
                    r.record,
                    r.version,
                    r.expires
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                );
            }
            s
        }
    };
    out.emit(
        human,
        json!({"answer": answer, "checkpoint": serde_json::to_value(&cp)?}),
    );
    Ok(())
}

fn verify_receipt(file: &Path, genesis: &str, out: &Out) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let genesis = medshare::parse_cid(genesis)?;
    let facts = medshare::ledger::Receipt::from_json(&text)?.verify(&genesis)?;
    let mut what = format!("{} by {}", facts.kind, facts.author);
    if let Some(r) = &facts.record {
        what += &format!(" on record {r}");
    }
    if let Some(v) = facts.version {
        what += &format!(" version {v}");
    }
    if let Some(d) = &facts.doctor {
        what += &format!(", doctor {d}");
    }
    if let Some(p) = &facts.purpose {
        what += &format!(", purpose {p}");
    }
    if let Some(x) = facts.expires {
        what += &format!(", expires {x}");
    }
    out.emit(
        format!(
            "receipt verified: {what}\n  transaction {} is entry {} of the log of {} transactions of network `{}`, certified at block {} by {} of {} authorities",
            facts.tx,
            facts.index,
            facts.log_size,
            esc(&facts.network),
            facts.height,
            facts.signers.len(),
            facts.authorities
        ),
        serde_json::to_value(&facts)?,
    );
    Ok(())
}

fn verify(home: &Home, content: bool, out: &Out) -> Result<()> {
    let mut vault = home.vault(false)?;
    let r = block_on(vault.verify())?;
    let mut human = format!(
        "chain verified: network `{}` (genesis {}), {} blocks, {} transactions, head {} (block {}), {} authorit{}",
        esc(&r.network),
        r.genesis,
        r.blocks,
        r.transactions,
        r.head,
        r.height,
        r.authorities,
        if r.authorities == 1 { "y" } else { "ies" }
    );
    let mut json = serde_json::to_value(&r)?;
    json["ok"] = json!(true);
    if content {
        let c = block_on(vault.verify_content())?;
        human += &format!(
            "; content of {} current record version(s) checked ({} blocks)",
            c.records, c.blocks
        );
        json["content"] = serde_json::to_value(&c)?;
        if !c.missing.is_empty() {
            json["ok"] = json!(false);
            out.emit(&human, json);
            bail!(
                "{} record(s) have missing or damaged content: {}",
                c.missing.len(),
                c.missing
                    .iter()
                    .map(|(r, e)| format!("{r} ({})", esc(e)))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    out.emit(human, json);
    Ok(())
}

fn cid(file: &Path, profile: &str, out: &Out) -> Result<()> {
    let profile: Profile = profile.parse()?;
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let cid =
        medshare::unixfs::cid_of_reader(std::io::BufReader::with_capacity(1 << 20, f), profile)?;
    out.emit(
        cid.to_string(),
        json!({"cid": cid.to_string(), "profile": profile.as_str()}),
    );
    Ok(())
}

fn export(home: &Home, car: &Path, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let mut output = medshare::fsutil::Output::create(car)
        .with_context(|| format!("creating {}", car.display()))?;
    let report =
        block_on(vault.export_car(std::io::BufWriter::with_capacity(1 << 20, output.file())))?;
    output.commit()?;
    out.emit(
        format!(
            "exported {} blocks rooted at {} to {}",
            report.blocks,
            report.head,
            car.display()
        ),
        serde_json::to_value(&report)?,
    );
    if !report.damaged.is_empty() {
        bail!(
            "{} record(s) could not be exported whole (missing or damaged content); the rest was: {}",
            report.damaged.len(),
            report
                .damaged
                .iter()
                .map(|d| format!("{} ({})", d.record, esc(&d.error)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

fn import(home: &Home, car: &Path, genesis: Option<&str>, out: &Out) -> Result<()> {
    let file = std::fs::File::open(car).with_context(|| format!("opening {}", car.display()))?;
    let store = home.open_store()?;
    let bound = home.genesis()?;
    let given = genesis.map(medshare::parse_cid).transpose()?;
    let expected = match (bound, given) {
        (Some(b), Some(g)) if b != g => bail!("this home belongs to the network {b}, not {g}"),
        (Some(b), _) => b,
        (None, Some(g)) => g,
        (None, None) => bail!(
            "this home holds no chain yet: say which network to accept with --genesis CID (`medshare init` prints it)"
        ),
    };
    let (vault, report) = block_on(Vault::import_car(
        store,
        std::io::BufReader::with_capacity(1 << 20, file),
        Some(&expected),
        medshare::platform::now_secs(),
    ))
    .with_context(|| format!("importing {}", car.display()))?;
    home.save_genesis(&vault.genesis())?;
    out.emit(
        format!(
            "imported {}: chain verified, {} new ledger block(s), {} block(s) stored, head {}",
            car.display(),
            report.applied,
            report.stored,
            report.head
        ),
        serde_json::to_value(&report)?,
    );
    Ok(())
}

fn gc(home: &Home, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let report = block_on(vault.gc())?;
    out.emit(
        format!(
            "gc: {} block(s) deleted, {} in use",
            report.deleted, report.live
        ),
        serde_json::to_value(&report)?,
    );
    Ok(())
}

fn repair(home: &Home, out: &Out) -> Result<()> {
    if home.kubo.is_some() || home.network.is_some() {
        bail!("`repair` mends the embedded store; a kubo node or a network keeps its own head");
    }
    let genesis = home
        .genesis()?
        .context("this home records no genesis (see `medshare import --genesis`)")?;
    let fs = std::sync::Arc::new(medshare::store::fs::FsStore::open(home.store_dir())?);
    let store = medshare::Store::from_arc(fs.clone());
    let before = block_on(store.head());
    let tip = block_on(medshare::ledger::chain::find_tip(&store, &genesis))?
        .context("no chain of this home's network is in the store")?;
    fs.reset_head(&tip)?;
    out.emit(
        format!(
            "head set to {tip} (was {})",
            match before {
                Ok(Some(c)) => c.to_string(),
                Ok(None) => "none".into(),
                Err(_) => "damaged".into(),
            }
        ),
        json!({"head": tip.to_string()}),
    );
    Ok(())
}
