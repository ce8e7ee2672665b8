//! `medshare`: the operator's command-line tool.
//!
//! All state lives under `--home DIR` (default `./.medshare`). Passphrases are asked on a
//! terminal or read from `MEDSHARE_PASSPHRASE`. `--json` prints machine-readable output. Any
//! failure exits non-zero with one line on stderr.

#![forbid(unsafe_code)]

mod demo;
mod home;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use medshare::envelope::{Metadata, RecordId};
use medshare::ledger::{AuditKind, Policy};
use medshare::{Identity, Profile, Role, Vault};
use serde_json::json;

use crate::home::{Home, passphrase};

#[derive(Parser)]
#[command(
    name = "medshare",
    version,
    about = "Share medical records between patients and doctors, encrypted, content-addressed and on a verifiable ledger"
)]
struct Cli {
    /// Directory holding the store and the keys.
    #[arg(long, global = true, default_value = ".medshare")]
    home: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Where blocks live: `fs` (the home's embedded store) or `kubo=http://127.0.0.1:5001`
    /// (a kubo node's RPC API; a bearer token is read from MEDSHARE_KUBO_TOKEN). Append
    /// `,ipns-key=NAME` to publish every new head under that node key (sealer), or
    /// `,follow=k51…` to read the head from that IPNS name (replica, read-only).
    #[arg(long, global = true, default_value = "fs")]
    store: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a home: the filesystem store, a local authority key and the genesis block.
    Init {
        /// Network name written in the genesis block.
        #[arg(long, default_value = "medshare-local")]
        network: String,
    },
    /// Create and list identities.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Add and fetch records.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// Let a doctor read a record (its latest version).
    Grant {
        /// The patient who owns the record.
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// Doctor (name in this home, or identity id).
        #[arg(long)]
        doctor: String,
        /// How long the grant lasts, e.g. 30d, 12h, 45m.
        #[arg(long)]
        expires: Option<String>,
        /// Why the doctor gets access.
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Take a doctor's access away: re-encrypts the record as a new version without them.
    Revoke {
        /// The patient who owns the record.
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// Doctor (name in this home, or identity id).
        #[arg(long)]
        doctor: String,
    },
    /// Records an identity can read: granted to a doctor, or owned by a patient.
    Records {
        /// Identity (name in this home, or id).
        #[arg(long = "as")]
        as_: String,
    },
    /// The audit trail of a record.
    Audit {
        /// Record id.
        #[arg(long)]
        record: String,
    },
    /// Verify the whole chain from genesis: every signature, CID and rule.
    Verify,
    /// Print the CID `ipfs add` would give a file.
    Cid {
        /// The file.
        file: PathBuf,
        /// unixfs-v1-2025 (default) or unixfs-v0-2015.
        #[arg(long, default_value = "unixfs-v1-2025")]
        profile: String,
    },
    /// Export the chain and every stored record to a CAR file.
    Export {
        /// Output CAR file.
        #[arg(long)]
        car: PathBuf,
    },
    /// Import blocks from a CAR file and adopt its chain if it extends this one.
    Import {
        /// Input CAR file.
        #[arg(long)]
        car: PathBuf,
    },
    /// Run the whole story end to end on a fresh store, narrated.
    Demo,
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Generate a key pair, save it encrypted here, and register it on the chain.
    New {
        /// patient or doctor.
        #[arg(long)]
        role: String,
        /// Local name (used as `--as NAME`).
        #[arg(long)]
        name: String,
        /// RSA key size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 3072)]
        bits: usize,
        /// Doctor's licence reference, endorsed by this home's authority.
        #[arg(long)]
        licence: Option<String>,
    },
    /// List the identities of this home.
    List,
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Encrypt a file, store it and publish it on the chain.
    Add {
        /// The owning patient.
        #[arg(long = "as")]
        as_: String,
        /// The file.
        file: PathBuf,
        /// Media type (guessed from the extension when absent).
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Decrypt a record's latest version.
    Get {
        /// Who reads (the owner or a granted doctor).
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// Output file.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // One line, the whole cause chain.
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("medshare: error: {msg}");
        std::process::exit(1);
    }
}

struct Out {
    json: bool,
}

impl Out {
    fn emit(&self, human: impl AsRef<str>, json: serde_json::Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{}", human.as_ref());
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let out = Out { json: cli.json };
    let home = Home::new(&cli.home, &cli.store)?;
    match cli.command {
        Command::Init { network } => init(&home, &network, &out),
        Command::Identity {
            command:
                IdentityCommand::New {
                    role,
                    name,
                    bits,
                    licence,
                },
        } => identity_new(&home, &role, &name, bits, licence.as_deref(), &out),
        Command::Identity {
            command: IdentityCommand::List,
        } => identity_list(&home, &out),
        Command::Record {
            command:
                RecordCommand::Add {
                    as_,
                    file,
                    media_type,
                },
        } => record_add(&home, &as_, &file, media_type, &out),
        Command::Record {
            command:
                RecordCommand::Get {
                    as_,
                    record,
                    out: path,
                },
        } => record_get(&home, &as_, &record, &path, &out),
        Command::Grant {
            as_,
            record,
            doctor,
            expires,
            purpose,
        } => {
            let mut vault = home.vault(true)?;
            let patient = home.load_identity(&as_)?;
            let record: RecordId = record.parse()?;
            let doctor_id = home.resolve_id(&doctor)?;
            let expires_at = expires
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .map(|d| unix_now() + d);
            pollster::block_on(vault.grant(
                &patient,
                &record,
                &doctor_id,
                expires_at,
                purpose.as_deref(),
            ))?;
            out.emit(
                format!("granted {record} to {doctor}{}", expires.map(|e| format!(" for {e}")).unwrap_or_default()),
                json!({"record": record.to_string(), "doctor": doctor_id.to_string(), "expires": expires_at}),
            );
            Ok(())
        }
        Command::Revoke {
            as_,
            record,
            doctor,
        } => {
            let mut vault = home.vault(true)?;
            let patient = home.load_identity(&as_)?;
            let record: RecordId = record.parse()?;
            let doctor_id = home.resolve_id(&doctor)?;
            let report = pollster::block_on(vault.revoke(&patient, &record, &doctor_id))?;
            out.emit(
                format!(
                    "revoked {doctor} from {record}: re-encrypted as version {}, {} doctor(s) keep access, {} old block(s) deleted",
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
        Command::Records { as_ } => records(&home, &as_, &out),
        Command::Audit { record } => audit(&home, &record, &out),
        Command::Verify => {
            let mut vault = home.vault(false)?;
            let r = pollster::block_on(vault.verify())?;
            out.emit(
                format!("chain verified: {} blocks, {} transactions, head {}", r.blocks, r.transactions, r.head),
                json!({"ok": true, "blocks": r.blocks, "transactions": r.transactions, "head": r.head.to_string()}),
            );
            Ok(())
        }
        Command::Cid { file, profile } => {
            let profile: Profile = profile.parse()?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let cid = medshare::unixfs::cid_of_reader(
                std::io::BufReader::with_capacity(1 << 20, f),
                profile,
            )?;
            out.emit(
                cid.to_string(),
                json!({"cid": cid.to_string(), "profile": profile.as_str()}),
            );
            Ok(())
        }
        Command::Export { car } => {
            let vault = home.vault(false)?;
            let file = std::fs::File::create(&car)
                .with_context(|| format!("creating {}", car.display()))?;
            let n = pollster::block_on(
                vault.export_car(std::io::BufWriter::with_capacity(1 << 20, file)),
            )?;
            let head = vault.state().head();
            out.emit(
                format!("exported {n} blocks rooted at {head} to {}", car.display()),
                json!({"car": car.display().to_string(), "blocks": n, "root": head.to_string()}),
            );
            Ok(())
        }
        Command::Import { car } => import(&home, &car, &out),
        Command::Demo => demo::run(&cli.home, cli.home.as_os_str() != ".medshare"),
    }
}

fn import(home: &Home, car: &Path, out: &Out) -> Result<()> {
    let file = std::fs::File::open(car).with_context(|| format!("opening {}", car.display()))?;
    let store = home.open_store()?;
    let (_, report) = pollster::block_on(Vault::import_car(
        store,
        std::io::BufReader::with_capacity(1 << 20, file),
    ))
    .with_context(|| format!("importing {}", car.display()))?;
    let medshare::vault::ImportReport {
        blocks: n,
        applied,
        head: root,
    } = report;
    out.emit(
        format!("imported {n} blocks from {}; chain verified, {applied} new ledger block(s), head {root}", car.display()),
        json!({"blocks": n, "applied": applied, "head": root.to_string()}),
    )
    ;
    Ok(())
}

fn init(home: &Home, network: &str, out: &Out) -> Result<()> {
    if home.is_initialised() {
        match &home.kubo {
            None => bail!("{} is already initialised", home.root.display()),
            Some(c) => bail!("the kubo node at {} already holds a medshare chain", c.url),
        }
    }
    std::fs::create_dir_all(home.identities_dir())?;
    let pass = passphrase("the new authority key", true)?;
    let authority = Identity::generate(
        Role::Authority,
        "local-authority",
        medshare::identity::DEFAULT_KEY_BITS,
    )?;
    let store = home.open_store()?;
    // A sealer publishing heads under IPNS: make sure the node has the key, and say its name.
    let ipns = match &home.kubo {
        Some(c) => match &c.publish_key {
            Some(k) => Some(medshare::store::kubo::KuboStore::new(c.clone()).ipns_key(k)?),
            None => None,
        },
        None => None,
    };
    let id = authority.id();
    authority.save(home.authority_path(), &pass)?;
    pollster::block_on(Vault::create(store, network, authority, Policy::default()))?;
    out.emit(
        format!(
            "initialised {} (network `{network}`, authority {id}){}",
            home.root.display(),
            ipns.as_ref().map(|n| format!(", heads published at /ipns/{n}")).unwrap_or_default()
        ),
        json!({"home": home.root.display().to_string(), "network": network, "authority": id.to_string(),
               "ipns": ipns}),
    );
    Ok(())
}

fn identity_new(
    home: &Home,
    role: &str,
    name: &str,
    bits: usize,
    licence: Option<&str>,
    out: &Out,
) -> Result<()> {
    let role: Role = role.parse()?;
    if role == Role::Authority {
        bail!("authorities are created by `medshare init`");
    }
    if role == Role::Doctor && licence.is_none_or(str::is_empty) {
        bail!("a doctor needs --licence (the reference this home's authority endorses)");
    }
    let path = home.identity_path(name)?;
    if path.exists() {
        bail!("an identity named `{name}` already exists");
    }
    let mut vault = home.vault(true)?;
    let pass = passphrase(name, true)?;
    let id = Identity::generate(role, name, bits)?;
    pollster::block_on(vault.register(&id, licence))?;
    id.save(&path, &pass)?;
    medshare::store::fs::write_atomic(
        &home.public_path(name)?,
        id.public().to_pem().as_bytes(),
        false,
    )?;
    out.emit(
        format!("{role} `{name}` registered: {}", id.id()),
        json!({"id": id.id().to_string(), "name": name, "role": role.as_str()}),
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
        text += &format!("{name:<16} {role:<10} {id}\n");
        rows.push(json!({"name": name, "role": role, "id": id.to_string()}));
    }
    out.emit(text.trim_end(), json!(rows));
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
    let record = pollster::block_on(vault.publish(
        &patient,
        std::io::BufReader::with_capacity(1 << 20, f),
        meta,
        &mut |n| {
            if let Some(pb) = &pb {
                pb.set_position(n);
            }
        },
    ))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let content = vault
        .state()
        .record(&record)
        .map(|r| r.content.to_string())
        .unwrap_or_default();
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
    // Write to a temp file next to the target, renamed on success: a refused or corrupt read
    // never leaves partial plaintext under the requested name.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let size = vault.state().record(&record).map_or(0, |r| r.size);
    let pb = progress_bar(size, "decrypting");
    let meta = pollster::block_on(vault.open_record_with_progress(
        &reader,
        &record,
        std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut()),
        &mut |n| {
            if let Some(pb) = &pb {
                pb.set_position(n);
            }
        },
    ))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    out.emit(
        format!(
            "wrote {} ({} bytes, {}, originally `{}`)",
            path.display(),
            meta.size,
            meta.media_type,
            meta.name
        ),
        json!({"record": record.to_string(), "out": path.display().to_string(), "size": meta.size,
               "media_type": meta.media_type, "name": meta.name}),
    );
    Ok(())
}

fn records(home: &Home, as_: &str, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let id = home.resolve_id(as_)?;
    let (role, _) = vault
        .state()
        .identity(&id)
        .ok_or_else(|| medshare::Error::UnknownIdentity(id.to_string()))?;
    let list = if role == Role::Patient {
        vault.state().records_of(&id)
    } else {
        vault.records_for(&id)
    };
    let now = unix_now();
    let mut text = String::new();
    let mut rows = Vec::new();
    for r in &list {
        let status = match &r.grant {
            None => "owner".to_owned(),
            Some(g) => match g.expires {
                Some(e) if e <= now => "expired".to_owned(),
                Some(e) => format!("until {e}"),
                None => "granted".to_owned(),
            },
        };
        text += &format!("{}  v{}  {} bytes  {status}\n", r.record, r.version, r.size);
        rows.push(json!({"record": r.record.to_string(), "version": r.version, "owner": r.owner.to_string(),
                         "size": r.size, "content": r.content.to_string(), "status": status,
                         "purpose": r.grant.as_ref().and_then(|g| g.purpose.clone())}));
    }
    if list.is_empty() {
        text = format!("no records for {as_}");
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
        let (what, detail) = match &e.kind {
            AuditKind::Published { version, content } => {
                ("published", format!("version {version}, content {content}"))
            }
            AuditKind::Granted {
                doctor,
                version,
                expires,
                purpose,
            } => (
                "granted",
                format!(
                    "to {doctor}, version {version}{}{}",
                    expires
                        .map(|x| format!(", expires {x}"))
                        .unwrap_or_default(),
                    purpose
                        .as_ref()
                        .map(|p| format!(", purpose `{p}`"))
                        .unwrap_or_default()
                ),
            ),
            AuditKind::Revoked { doctor } => ("revoked", format!("from {doctor}")),
        };
        text += &format!(
            "block {:>4}  t={}  {what:<9} {detail}  (by {})\n",
            e.height, e.time, e.author
        );
        rows.push(json!({"height": e.height, "block": e.block.to_string(), "time": e.time, "tx": e.tx.to_string(),
                         "author": e.author.to_string(), "event": what, "detail": detail}));
    }
    out.emit(text.trim_end(), json!(rows));
    Ok(())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `30d`, `12h`, `45m`, `90s`, `2w` → seconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("bad duration `{s}` (e.g. 30d, 12h, 45m)"))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => bail!("bad duration unit in `{s}` (s, m, h, d or w)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("duration `{s}` too long"))
}
