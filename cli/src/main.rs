//! `medshare`: the operator's command-line tool.
//!
//! All state lives under `--home DIR` (default `./.medshare`). Passphrases are asked on a
//! terminal or read from `MEDSHARE_PASSPHRASE`. `--json` prints machine-readable output. Any
//! failure exits non-zero with one line on stderr.

#![forbid(unsafe_code)]

mod commands;
mod demo;
mod emergency;
mod home;
mod network;
mod out;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use crate::home::Home;
use crate::out::Out;

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
    /// `,ipns-key=NAME` to publish every new head under that node key, or `,follow=k51…` to
    /// read the head from that IPNS name (replica, read-only).
    #[arg(long, global = true, default_value = "fs")]
    store: String,
    /// A network file (written by `medshare testnet init`): the network's genesis, its nodes'
    /// RPC and the stores clients use. Saved in the home as network.json by `init --network`.
    #[arg(long, global = true)]
    network: Option<PathBuf>,
    /// A validator's CometBFT RPC URL to submit to and read the head from (repeatable).
    #[arg(long = "node", global = true)]
    nodes: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a home: the filesystem store, a local authority key and the genesis block (or,
    /// with --network, join a network).
    Init {
        /// Network name written in the genesis block.
        #[arg(long, default_value = "medshare-local")]
        name: String,
    },
    /// Create, list and rotate identities.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Endorse a doctor's licence with this home's authority key (writes an endorsement the
    /// doctor registers with, wherever the doctor is).
    Endorse {
        /// The doctor's identity id (or name in this home).
        #[arg(long)]
        doctor: String,
        /// The licence reference.
        #[arg(long)]
        licence: String,
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
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
        /// How long the grant lasts, e.g. 30d, 12h, 45m, 2w.
        #[arg(long)]
        expires: Option<String>,
        /// Why, as an HL7 PurposeOfUse code: TREAT (default), ETREAT, COC, CAREMGT, HPAYMT,
        /// HOPERAT, HRESCH, PUBHLTH, HLEGAL, PATRQT, FAMRQT, PWATRNY, SUPNWK.
        #[arg(long, default_value = "TREAT")]
        purpose: String,
        /// A free-text note for the doctor, encrypted (only the patient and the doctor read it).
        #[arg(long)]
        note: Option<String>,
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
    /// The audit trail of a record, or (--emergency) the emergency accesses no authority has
    /// reviewed yet.
    Audit {
        /// Record id.
        #[arg(long, required_unless_present = "emergency")]
        record: Option<String>,
        /// List the unreviewed break-glass accesses of the whole network.
        #[arg(long, conflicts_with = "record")]
        emergency: bool,
    },
    /// Break-glass emergency access: a doctor opens a record its patient cannot grant, with the
    /// authorities' key shares.
    Emergency {
        #[command(subcommand)]
        command: EmergencyCommand,
    },
    /// Verify the whole chain from genesis: every certificate, signature, CID and rule.
    Verify {
        /// Also check that the content of every current record version is present and intact.
        #[arg(long)]
        content: bool,
    },
    /// Print the CID `ipfs add` would give a file.
    Cid {
        /// The file.
        file: PathBuf,
        /// unixfs-v1-2025 (default) or unixfs-v0-2015.
        #[arg(long, default_value = "unixfs-v1-2025")]
        profile: String,
    },
    /// Export the chain and every current record to a CAR file.
    Export {
        /// Output CAR file.
        #[arg(long)]
        car: PathBuf,
    },
    /// Import a CAR file: verified first; nothing of a refused CAR is kept.
    Import {
        /// Input CAR file.
        #[arg(long)]
        car: PathBuf,
        /// The network's genesis CID (required for a home that holds no chain yet).
        #[arg(long)]
        genesis: Option<String>,
    },
    /// Delete the blocks no current record version or ledger object needs.
    Gc,
    /// Set a damaged store head again from the newest chain in the store that verifies.
    Repair,
    /// Run the whole story end to end on a fresh store, narrated.
    Demo,
    /// Write a receipt: a self-contained proof that a transaction is in the certified chain
    /// (checkable offline with `verify-receipt`, by anyone who knows the network's genesis).
    Receipt {
        /// The record whose latest transaction to prove.
        #[arg(long)]
        record: Option<String>,
        /// The transaction to prove (a CID from `audit`).
        #[arg(long)]
        tx: Option<String>,
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Check a receipt offline against the network's genesis; print what it proves.
    VerifyReceipt {
        /// The receipt file.
        file: PathBuf,
        /// The network's genesis CID.
        #[arg(long)]
        genesis: String,
    },
    /// Ask a node, as a light client, for a record's access list or the records a doctor can
    /// read. The answer is proven against a certificate of the network's authorities and
    /// checked here; nothing but the genesis CID (and the trust file) is needed.
    Light {
        /// The network's genesis CID (the validators asked are the global `--node URL`s,
        /// repeatable, or the network file's).
        #[arg(long)]
        genesis: String,
        /// The record whose access list to ask for.
        #[arg(long, conflicts_with = "doctor", required_unless_present = "doctor")]
        record: Option<String>,
        /// The doctor (account id) whose readable records to ask for.
        #[arg(long)]
        doctor: Option<String>,
        /// A file keeping what this client trusts between runs (created if missing): with it,
        /// no node can take the client back to an older state.
        #[arg(long)]
        trust: Option<PathBuf>,
    },
    /// Write what the ledger knows about a record, or every record a patient owns, as an HL7
    /// FHIR Bundle (JSON): Consent per grant, AuditEvent per transaction, Provenance per version.
    Fhir {
        /// The record.
        #[arg(long, conflicts_with = "patient")]
        record: Option<String>,
        /// The patient (a name in this home, or an account id).
        #[arg(long)]
        patient: Option<String>,
        /// FHIR release: R5 or R4.
        #[arg(long = "fhir-version", default_value = "R5")]
        fhir_version: String,
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Run a validator's medshare node (the ABCI application its CometBFT connects to).
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// A local network of validators on 127.0.0.1: write it, then run it.
    Testnet {
        #[command(subcommand)]
        command: TestnetCommand,
    },
    /// Vote, as this home's authority, to add or remove an authority of the network.
    Authority {
        #[command(subcommand)]
        command: AuthorityCommand,
    },
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Serve CometBFT's ABCI connections for the node in DIR (its node.json, authority.key —
    /// decrypted with MEDSHARE_PASSPHRASE or a prompted passphrase — and its store).
    Start {
        /// The node directory (as `medshare testnet init` writes them).
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TestnetCommand {
    /// Write a new local network: per validator an authority key, CometBFT and kubo
    /// configurations (ports on 127.0.0.1), one genesis; plus DIR/network.json for clients.
    Init {
        /// The directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// Number of validators (hospitals).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Network name (the genesis block's, and CometBFT's chain id).
        #[arg(long, default_value = "medshare-testnet")]
        name: String,
        /// First port: node i uses BASE + 10·i + 0…5 (0: any free ports).
        #[arg(long, default_value_t = 26600)]
        base_port: u16,
        /// Authority RSA key size.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// CometBFT's timeout_commit, in milliseconds.
        #[arg(long, default_value_t = 300)]
        timeout_commit_ms: u64,
        /// The cometbft binary (default: $MEDSHARE_COMETBFT, .tools/bin/cometbft, or PATH).
        #[arg(long)]
        cometbft: Option<PathBuf>,
        /// The ipfs (kubo) binary (default: $MEDSHARE_IPFS, .tools/bin/ipfs, or PATH).
        #[arg(long)]
        ipfs: Option<PathBuf>,
    },
    /// Start every kubo, medshare node and CometBFT process of the testnet in DIR; Ctrl-C
    /// stops them all.
    Up {
        /// The testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// The cometbft binary.
        #[arg(long)]
        cometbft: Option<PathBuf>,
        /// The ipfs (kubo) binary.
        #[arg(long)]
        ipfs: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum EmergencyCommand {
    /// Opt a record's latest version into break-glass access (as its owner).
    Enable {
        /// The owning patient.
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
    },
    /// Break the glass: ask for emergency access to a record (as a registered doctor).
    Request {
        /// The doctor.
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// Why (encrypted: the patient, the doctor and the authorities read it).
        #[arg(long)]
        justification: String,
        /// How long the authorities may release their shares, e.g. 12h (default 24h, at most
        /// 72h).
        #[arg(long)]
        window: Option<String>,
    },
    /// Release this home's authority's key share to an emergency request (a node set to
    /// `emergency: manual` waits for this).
    Release {
        /// The request (its transaction CID).
        #[arg(long)]
        request: String,
    },
    /// Review an emergency access afterwards, as this home's authority.
    Review {
        /// The request (its transaction CID).
        #[arg(long)]
        request: String,
        /// justified or unjustified.
        #[arg(long)]
        outcome: String,
    },
    /// Show a request: its shares (checked, for the requesting doctor), its review, and its
    /// justification when --as can read it.
    Show {
        /// The request (its transaction CID).
        #[arg(long)]
        request: String,
        /// Who looks (the doctor or the patient, by name in this home).
        #[arg(long = "as", conflicts_with = "authority")]
        as_: Option<String>,
        /// Look as this home's authority (a node's directory).
        #[arg(long)]
        authority: bool,
    },
    /// Every emergency access on the chain (--unreviewed: those awaiting review).
    List {
        /// Only those no authority has reviewed.
        #[arg(long)]
        unreviewed: bool,
    },
}

#[derive(Subcommand)]
pub enum AuthorityCommand {
    /// Vote to add an authority: its RSA public key (PEM), and its CometBFT validator key.
    Add {
        /// PEM file of the new authority's public key.
        #[arg(long)]
        key: PathBuf,
        /// Its CometBFT validator public key (base64 ed25519, from priv_validator_key.json).
        #[arg(long)]
        validator: Option<String>,
    },
    /// Vote to remove an authority (and its validator).
    Remove {
        /// The authority's id.
        #[arg(long)]
        authority: String,
    },
}

/// Set by commands that stop on Ctrl-C themselves (`testnet up`).
pub static CATCH_INTERRUPT: AtomicBool = AtomicBool::new(false);
/// Set by Ctrl-C while [`CATCH_INTERRUPT`] is set.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Subcommand)]
pub enum IdentityCommand {
    /// Generate a key pair, save it encrypted here, and register it on the chain (a doctor
    /// with neither --licence nor --endorsement is only created: register it once endorsed).
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
        /// An endorsement made by an authority elsewhere (`medshare endorse`), for a doctor.
        #[arg(long)]
        endorsement: Option<PathBuf>,
        /// Use the key in this PKCS#8 PEM file instead of generating one (a doctor's key
        /// generated before the endorsement was requested).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// List the identities of this home.
    List,
    /// Register an identity created here before its endorsement existed (a doctor on a
    /// network: the key stays here, the endorsement comes from a hospital).
    Register {
        /// The identity.
        #[arg(long = "as")]
        as_: String,
        /// The endorsement file (`medshare endorse` at the hospital).
        #[arg(long)]
        endorsement: PathBuf,
    },
    /// Replace an identity's key (the account stays): data keys are wrapped to the new key and
    /// a patient's records re-keyed; the old key file is kept aside, renamed.
    Rotate {
        /// The identity.
        #[arg(long = "as")]
        as_: String,
    },
}

#[derive(Subcommand)]
pub enum RecordCommand {
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
        /// Opt into break-glass emergency access: the key is split among the network's
        /// authorities, more than two thirds of them needed to open it for a doctor.
        #[arg(long)]
        emergency: bool,
    },
    /// Publish a record's next version under a new key (the doctors keeping access are
    /// granted again): what ends an emergency access.
    Rekey {
        /// The owning patient.
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
    },
    /// Decrypt a record's latest version.
    Get {
        /// Who reads (the owner or a granted doctor).
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// Output file (appears only once complete and authenticated).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Show a grant's encrypted note (as the patient or that doctor).
    Note {
        /// Who reads (the owner or the doctor).
        #[arg(long = "as")]
        as_: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// The doctor the grant is for (default: the reader).
        #[arg(long)]
        doctor: Option<String>,
    },
}

fn main() {
    // An interrupted read leaves no decrypted bytes behind: remove any partial output file.
    let _ = ctrlc::set_handler(|| {
        if CATCH_INTERRUPT.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
            return;
        }
        medshare::fsutil::remove_partial_files();
        std::process::exit(130);
    });
    let cli = Cli::parse();
    let out = Out { json: cli.json };
    let result = Home::new(&cli.home, &cli.store, cli.network.as_deref(), &cli.nodes)
        .and_then(|home| commands::run(&home, &cli.home, cli.command, &out));
    if let Err(e) = result {
        // One line, the whole cause chain, control characters escaped.
        let msg = out::esc(&format!("{e:#}").replace('\n', " "));
        eprintln!("medshare: error: {msg}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// No flag of a subcommand clashes with a global one or another of its own. (clap checks
    /// that only in debug builds, where such a clash panics; the test command builds release.)
    #[test]
    fn no_flag_is_defined_twice() {
        fn walk(cmd: &clap::Command, inherited: &[String], path: &str) {
            let mut seen: Vec<String> = inherited.to_vec();
            let mut globals = inherited.to_vec();
            for a in cmd.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                if inherited.iter().any(|g| g == long) && a.is_global_set() {
                    continue; // the global itself, propagated
                }
                assert!(
                    !seen.iter().any(|s| s == long),
                    "`{path}`: --{long} is defined twice"
                );
                seen.push(long.to_owned());
                if a.is_global_set() {
                    globals.push(long.to_owned());
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &globals, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&super::Cli::command(), &[], "medshare");
        super::Cli::command().debug_assert();
    }
}
