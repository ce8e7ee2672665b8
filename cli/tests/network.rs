//! A medshare network for real: four CometBFT validators, four medshare nodes and four kubo
//! daemons on 127.0.0.1, written by `medshare testnet init` and started by this test (once for
//! the whole binary; every scenario runs on it, in order, and the test stops every process).
//!
//! Scenarios (issue 15): a 20 MB record published through node 0 and read through node 2;
//! invalid transactions refused at CheckTx with their rule; revocation across the network
//! (refused everywhere, unpinned everywhere); one validator killed and restarted; two killed
//! (clients time out, nothing lost); a Byzantine validator (forged proposals, bad certificate
//! shares); the chain exported as a CAR verifies offline, a single-authority certificate is
//! refused, and a validator-set change by vote is honoured; a light client's proven answers;
//! break-glass access with shares every node releases by itself (issue 18).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{medshare, ok_json};
use medshare::ledger::{Block, Certificate, CertificateObject, SignedTx, Submission, Tx, TxBody};
use medshare::sequencer::Sequencer;
use medshare::sequencer::comet::CometSequencer;
use medshare::{
    Cid, Endorsement, Error, GrantOptions, Identity, PublishOptions, Role, Rule, Store, Vault,
};
use medshare_node::testnet::Testnet;
use pollster::block_on;

const PASS: &str = common::PASSPHRASE;

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/testdata/keys")
}

fn fixture(role: Role, name: &str) -> Identity {
    let pem = std::fs::read_to_string(keys_dir().join(format!("{name}-2048.pem"))).unwrap();
    Identity::from_pkcs8_pem(role, name, &pem).unwrap()
}

fn tool(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/bin")
        .join(name);
    assert!(
        p.exists(),
        "{} not found (scripts/install-tools.sh installs it)",
        p.display()
    );
    p
}

struct Net {
    tn: Testnet,
    dir: PathBuf,
    genesis: Cid,
    _tmp: tempfile::TempDir,
}

impl Net {
    fn node_dir(&self, i: usize) -> &Path {
        &self.tn.layout.nodes[i].dir
    }

    fn authority(&self, i: usize) -> Identity {
        Identity::load(self.node_dir(i).join("authority.key"), PASS).unwrap()
    }

    fn sequencer(&self, via: usize, timeout: Duration) -> CometSequencer {
        CometSequencer::new(vec![self.tn.layout.nodes[via].rpc()])
            .unwrap()
            .with_timeout(timeout)
    }

    /// A client vault that submits through node `via` and keeps blocks on its kubo.
    fn client(&self, via: usize) -> Vault {
        self.client_with(via, Duration::from_secs(60))
    }

    fn client_with(&self, via: usize, timeout: Duration) -> Vault {
        let store =
            Store::open_spec(&format!("kubo={}", self.tn.layout.nodes[via].kubo())).unwrap();
        let seq = self.sequencer(via, timeout);
        block_on(Vault::open(store, Some(Arc::new(seq)), Some(&self.genesis))).unwrap()
    }

    fn head(&self, via: usize) -> medshare::sequencer::comet::HeadAnswer {
        block_on(self.sequencer(via, Duration::from_secs(5)).head_answer()).unwrap()
    }

    fn pinned(&self, i: usize, cid: &Cid) -> bool {
        let out = self
            .tn
            .kubo(i)
            .unwrap()
            .ipfs(&["pin", "ls", "--type=recursive", "--quiet"])
            .unwrap();
        String::from_utf8_lossy(&out)
            .lines()
            .any(|l| l.trim() == cid.to_string())
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_dir(i).join("node.log")).unwrap_or_default()
    }
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start() -> Net {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tn");
    let init = ok_json(
        tmp.path(),
        &[
            "testnet",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--validators",
            "4",
            "--base-port",
            "0",
            "--cometbft",
            tool("cometbft").to_str().unwrap(),
            "--ipfs",
            tool("ipfs").to_str().unwrap(),
        ],
    );
    let genesis: Cid = init["genesis"].as_str().unwrap().parse().unwrap();
    let mut tn = Testnet::new(
        &dir,
        PathBuf::from(env!("CARGO_BIN_EXE_medshare")),
        tool("cometbft"),
        tool("ipfs"),
        PASS.into(),
    )
    .unwrap();
    tn.start_all().unwrap();
    Net {
        tn,
        dir,
        genesis,
        _tmp: tmp,
    }
}

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `medshare record get` as `who` in `home`: the bytes it wrote to `file`.
fn cli_get(home: &Path, who: &str, record: &medshare::RecordId, file: &Path) -> Vec<u8> {
    ok_json(
        home,
        &[
            "record",
            "get",
            "--as",
            who,
            "--record",
            &record.to_string(),
            "-o",
            file.to_str().unwrap(),
        ],
    );
    std::fs::read(file).unwrap()
}

/// People and records the scenarios share.
struct World {
    patient: Identity,
    doctor: Identity,
    doctor2: Identity,
    record: medshare::RecordId,
    bytes: Vec<u8>,
}

/// Scenario 1: A patient publishes 20 MB through node 0 and grants a doctor; the doctor reads it through
/// node 2, byte-exact, also with the CLI.
fn story(net: &Net) -> World {
    let patient = fixture(Role::Patient, "patient");
    let doctor = fixture(Role::Doctor, "doctor");
    let doctor2 = fixture(Role::Doctor, "doctor2");
    let mut v0 = net.client(0);
    block_on(v0.register(&patient, None)).unwrap();
    let hospital = net.authority(0);
    for (d, licence) in [(&doctor, "GMC-1"), (&doctor2, "GMC-2")] {
        let e = Endorsement::sign(&hospital, &net.genesis, &d.id(), licence).unwrap();
        block_on(v0.register(d, Some(&e))).unwrap();
    }
    let bytes = data(20_000_000, 1);
    let record =
        block_on(v0.publish_bytes(&patient, &bytes, "ct.dcm", "application/dicom")).unwrap();
    block_on(v0.grant(&patient, &record, &doctor.id(), GrantOptions::default())).unwrap();
    block_on(v0.grant(&patient, &record, &doctor2.id(), GrantOptions::default())).unwrap();

    let v2 = net.client(2);
    let mut out = Vec::new();
    block_on(v2.open_record(&doctor, &record, &mut out)).unwrap();
    assert!(
        out == bytes,
        "the doctor read different bytes through node 2"
    );

    // The same with the CLI: a doctor's home joined through node 2.
    let home = net.dir.join("doctor-home");
    ok_json(
        &home,
        &[
            "init",
            "--network",
            net.node_dir(2).join("network.json").to_str().unwrap(),
        ],
    );
    let key = keys_dir().join("doctor-2048.pem");
    let created = ok_json(
        &home,
        &[
            "identity",
            "new",
            "--role",
            "doctor",
            "--name",
            "bob",
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(created["registered"], false);
    // Already registered above with the same key: the CLI's register says so by rule.
    let endorsement = net.dir.join("bob.endorsement");
    ok_json(
        net.node_dir(1),
        &[
            "endorse",
            "--doctor",
            &doctor.id().to_string(),
            "--licence",
            "GMC-1",
            "-o",
            endorsement.to_str().unwrap(),
        ],
    );
    let again = medshare(
        &home,
        &[
            "identity",
            "register",
            "--as",
            "bob",
            "--endorsement",
            endorsement.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("DuplicateRegistration"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(cli_get(&home, "bob", &record, &net.dir.join("read-by-cli.dcm")) == bytes);

    // Every node pins the content (fetched over IPFS from node 0's kubo).
    let content = v0.record(&record).unwrap().content;
    wait_until(
        "content pinned on every kubo",
        Duration::from_secs(60),
        || (0..4).all(|i| net.pinned(i, &content)),
    );
    World {
        patient,
        doctor,
        doctor2,
        record,
        bytes,
    }
}

/// Scenario 5: Invalid transactions are refused at CheckTx with their rule; none reaches a block.
fn refused_at_checktx(net: &Net, w: &World) {
    let v = net.client(0);
    let seq = net.sequencer(0, Duration::from_secs(20));
    let state = v.state();
    let tx = |author: &Identity, seq_no: u64, genesis: Cid, body: TxBody| Tx {
        genesis,
        author: author.id(),
        seq: seq_no,
        time: state.time(),
        body,
    };
    let p_seq = state.last_seq(&w.patient.id());
    let version = state.record(&w.record).unwrap().version;
    // A grant of the record to doctor 2 (the wrapped key is not checked before the author is).
    let grant_body = |doctor: &Identity| TxBody::Grant {
        record: w.record,
        version,
        doctor: doctor.id(),
        wrapped_key: vec![0; 256],
        expires: None,
        purpose: medshare::Purpose::Treatment,
        note: None,
    };
    // Bad signature.
    let good = SignedTx::sign(
        tx(&w.patient, p_seq + 1, net.genesis, grant_body(&w.doctor2)),
        &w.patient,
    )
    .unwrap();
    let mut sig = good.sig.clone();
    sig[10] ^= 0x40;
    let forged = SignedTx::assemble(good.tx.clone(), sig, None);
    // A doctor acting on the patient's record.
    let not_owner = SignedTx::sign(
        tx(
            &w.doctor,
            state.last_seq(&w.doctor.id()) + 1,
            net.genesis,
            grant_body(&w.doctor2),
        ),
        &w.doctor,
    )
    .unwrap();
    // A sequence number already used.
    let replayed = SignedTx::sign(
        tx(&w.patient, p_seq, net.genesis, grant_body(&w.doctor2)),
        &w.patient,
    )
    .unwrap();
    // Another network's genesis.
    let other: Cid = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        .parse()
        .unwrap();
    let elsewhere = SignedTx::sign(
        tx(&w.patient, p_seq + 1, other, grant_body(&w.doctor2)),
        &w.patient,
    )
    .unwrap();
    for (what, t, rule) in [
        ("bad signature", forged, Rule::TxSignature),
        ("non-owner", not_owner, Rule::NotOwner),
        ("replayed sequence", replayed, Rule::Sequence),
        ("wrong genesis", elsewhere, Rule::Network),
    ] {
        let started = Instant::now();
        match block_on(seq.submit(&Submission {
            txs: vec![t.clone()],
        })) {
            Err(Error::Rejected { rule: r, detail }) => {
                assert_eq!(r, rule, "{what}: {detail}");
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: refused only after waiting"
        );
        let a = block_on(seq.query(
            medshare::sequencer::comet::QUERY_TX,
            t.cid.to_string().as_bytes(),
        ))
        .unwrap()
        .unwrap();
        assert!(
            String::from_utf8_lossy(&a).contains("\"unknown\""),
            "{what} reached a block"
        );
    }
}

/// Scenario 7: A revoke through node 1: the doctor is refused through every node, and the old
/// version is unpinned on every kubo node (the new one pinned).
fn revocation_everywhere(net: &Net, w: &World) {
    let mut v1 = net.client(1);
    let old = v1.record(&w.record).unwrap().content;
    block_on(v1.revoke(&w.patient, &w.record, &w.doctor.id())).unwrap();
    let new = v1.record(&w.record).unwrap().content;
    for i in 0..4 {
        let v = net.client(i);
        match block_on(v.open_record(&w.doctor, &w.record, &mut Vec::new())) {
            Err(Error::AccessRevoked(_)) => {}
            other => panic!("through node {i}: {other:?}"),
        }
        let mut out = Vec::new();
        block_on(v.open_record(&w.doctor2, &w.record, &mut out)).unwrap();
        assert!(out == w.bytes, "doctor 2 through node {i}");
    }
    wait_until(
        "old version unpinned and new one pinned on every kubo",
        Duration::from_secs(60),
        || (0..4).all(|i| !net.pinned(i, &old) && net.pinned(i, &new)),
    );
}

/// Scenario 8 (issue 17): A light client that holds only the genesis CID asks node 2 for the
/// revoked record's access list and the doctors' records; what it gets is proven against a
/// certificate and matches a full replica. The CLI does the same, keeping its trust in a file.
fn light_client(net: &Net, w: &World) {
    use medshare::sequencer::light::LightClient;
    let full = net.client(2);
    let expected: Vec<_> = full
        .access_list(&w.record)
        .unwrap()
        .iter()
        .map(|g| g.doctor)
        .collect();
    // The node answers from its latest certified block: wait until that is the full replica's.
    let client = block_on(LightClient::connect(
        net.sequencer(2, Duration::from_secs(10)),
        &net.genesis,
        None,
    ))
    .unwrap();
    wait_until(
        "the light client sees the revocation",
        Duration::from_secs(30),
        || {
            let a = block_on(client.access_list(&w.record)).unwrap().unwrap();
            a.grants.iter().map(|g| g.doctor).collect::<Vec<_>>() == expected
        },
    );
    assert!(!expected.contains(&w.doctor.id()) && expected.contains(&w.doctor2.id()));
    let mine = block_on(client.records_of(&w.doctor2.id())).unwrap();
    assert!(mine.iter().any(|r| r.record == w.record));
    let revoked = block_on(client.records_of(&w.doctor.id())).unwrap();
    assert!(revoked.iter().all(|r| r.record != w.record), "{revoked:?}");
    // Another network's genesis: the node's genesis block is refused.
    let other: Cid = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        .parse()
        .unwrap();
    match block_on(LightClient::connect(
        net.sequencer(2, Duration::from_secs(10)),
        &other,
        None,
    )) {
        Err(Error::WrongGenesis { .. }) => {}
        other => panic!("{other:?}"),
    }
    // The trust carries over to a new session, and to the CLI.
    let trust = net.dir.join("light-trust.json");
    std::fs::write(&trust, client.trust()).unwrap();
    let again = block_on(LightClient::connect(
        net.sequencer(1, Duration::from_secs(10)),
        &net.genesis,
        Some(&client.trust()),
    ))
    .unwrap();
    assert!(block_on(again.access_list(&w.record)).unwrap().is_some());
    let rpc = net.tn.layout.nodes[3].rpc();
    let out = ok_json(
        &net.dir,
        &[
            "light",
            "--node",
            &rpc,
            "--genesis",
            &net.genesis.to_string(),
            "--record",
            &w.record.to_string(),
            "--trust",
            trust.to_str().unwrap(),
        ],
    );
    let grants = out["answer"]["record"]["grants"].as_array().unwrap();
    assert_eq!(grants.len(), expected.len(), "{out}");
    assert!(out["checkpoint"]["height"].as_u64().unwrap() >= 1);
}

/// Scenario 9 (issue 18): A patient opts a record into break-glass access; a doctor with no
/// grant breaks the glass with the CLI; every node releases its authority's share by itself
/// (`emergency: auto`) and the record opens for that doctor only; the emergency is listed
/// until an authority reviews it; the patient's next grant re-keys the record and the
/// emergency doctor's shares open nothing of the new version.
fn emergency_access(net: &Net, w: &World) {
    let mut v0 = net.client(0);
    let bytes = data(1_000_000, 9);
    let record = block_on(v0.publish_with(
        &w.patient,
        &bytes[..],
        medshare::Metadata {
            name: "allergies.pdf".into(),
            media_type: "application/pdf".into(),
            size: bytes.len() as u64,
        },
        PublishOptions { emergency: true },
        &mut |_| {},
    ))
    .unwrap();
    let split = v0.state().emergency_split(&record).unwrap();
    assert_eq!((split.threshold, split.shares.len()), (3, 4));
    // The doctor's CLI home (joined in scenario 1, key "bob" = the doctor).
    let home = net.dir.join("doctor-home");
    let asked = ok_json(
        &home,
        &[
            "emergency",
            "request",
            "--as",
            "bob",
            "--record",
            &record.to_string(),
            "--justification",
            "unconscious in the emergency room, allergies unknown",
        ],
    );
    let request = asked["request"].as_str().unwrap().to_owned();
    let mut v1 = net.client(1);
    wait_until(
        "the record opens for the emergency doctor",
        Duration::from_secs(90),
        || {
            block_on(v1.sync()).unwrap();
            block_on(v1.open_record(&w.doctor, &record, &mut Vec::new())).is_ok()
        },
    );
    let mut out = Vec::new();
    block_on(v1.open_record(&w.doctor, &record, &mut out)).unwrap();
    assert!(out == bytes, "the emergency doctor read other bytes");
    // Another doctor holds nothing.
    assert!(matches!(
        block_on(v1.open_record(&w.doctor2, &record, &mut Vec::new())),
        Err(Error::AccessDenied(_))
    ));
    assert!(cli_get(&home, "bob", &record, &net.dir.join("emergency.pdf")) == bytes);
    let shown = ok_json(
        &home,
        &["emergency", "show", "--request", &request, "--as", "bob"],
    );
    assert_eq!(shown["open"], true, "{shown}");
    assert_eq!(
        shown["justification_text"],
        "unconscious in the emergency room, allergies unknown"
    );
    // Each node released by itself; listed as unreviewed until hospital 3 reviews it.
    let listed = ok_json(net.node_dir(3), &["audit", "--emergency"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["request"] == request.as_str()),
        "{listed}"
    );
    ok_json(
        net.node_dir(3),
        &[
            "emergency",
            "review",
            "--request",
            &request,
            "--outcome",
            "justified",
        ],
    );
    let listed = ok_json(net.node_dir(3), &["audit", "--emergency"]);
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    // The patient sees it (through node 0, which commits those heights a moment later); her
    // next grant re-keys first.
    wait_until(
        "the review in the patient's audit trail",
        Duration::from_secs(30),
        || {
            block_on(v0.sync()).unwrap();
            let names: Vec<&str> = v0
                .audit(&record)
                .unwrap()
                .iter()
                .map(|e| e.kind.name())
                .collect();
            names.contains(&"emergency")
                && names.contains(&"reviewed")
                && names.iter().filter(|n| **n == "share-released").count() >= 3
        },
    );
    block_on(v0.grant(
        &w.patient,
        &record,
        &w.doctor2.id(),
        GrantOptions::default(),
    ))
    .unwrap();
    assert_eq!(v0.record(&record).unwrap().version, 2);
    block_on(v1.sync()).unwrap();
    assert!(matches!(
        block_on(v1.open_record(&w.doctor, &record, &mut Vec::new())),
        Err(Error::AccessDenied(_))
    ));
}

/// Scenario 2: With validator 3 killed, publishing, granting and revoking go on; restarted, it catches
/// up to the others' head and verifies from genesis.
fn one_validator_down(net: &mut Net, w: &World) {
    net.tn.kill_validator(3);
    let mut v = net.client(0);
    let r = block_on(v.publish_bytes(&w.patient, b"while node 3 is down", "n.txt", "text/plain"))
        .unwrap();
    block_on(v.grant(&w.patient, &r, &w.doctor.id(), GrantOptions::default())).unwrap();
    block_on(v.revoke(&w.patient, &r, &w.doctor.id())).unwrap();
    net.tn.start_validator(3).unwrap();
    let target = net.head(0);
    wait_until("node 3 catches up", Duration::from_secs(60), || {
        let h = net.head(3);
        h.height >= target.height
    });
    let mut v3 = net.client(3);
    let report = block_on(v3.verify()).unwrap();
    assert!(report.height >= target.height);
    assert_eq!(net.head(3).head, net.head(0).head);
    net.tn.wait_in_consensus(Duration::from_secs(60)).unwrap();
}

/// Scenario 3: Two validators down: no block commits and a client gets a timeout, not a hang; one back,
/// the chain resumes and the timed-out transaction commits.
fn two_validators_down(net: &mut Net, w: &World) {
    let mut v = net.client_with(0, Duration::from_secs(6));
    let r =
        block_on(v.publish_bytes(&w.patient, b"before the outage", "o.txt", "text/plain")).unwrap();
    net.tn.kill_validator(2);
    net.tn.kill_validator(3);
    let height = net.head(0).height;
    let started = Instant::now();
    match block_on(v.grant(&w.patient, &r, &w.doctor.id(), GrantOptions::default())) {
        Err(Error::Timeout(m)) => assert!(m.contains("more than a third"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the client hung"
    );
    assert_eq!(
        net.head(0).height,
        height,
        "a block committed with two of four validators"
    );
    net.tn.start_validator(2).unwrap();
    let mut v = net.client(0);
    wait_until("the waiting grant commits", Duration::from_secs(90), || {
        block_on(v.sync()).unwrap();
        v.access_list(&r)
            .unwrap()
            .iter()
            .any(|g| g.doctor == w.doctor.id())
    });
    net.tn.start_validator(3).unwrap();
    let target = net.head(0).height;
    wait_until("node 3 back in step", Duration::from_secs(60), || {
        net.head(3).height >= target
    });
    // The next scenario takes a validator away again: the three others must all be voting.
    net.tn.wait_in_consensus(Duration::from_secs(60)).unwrap();
}

/// The certificates of the chain from `head` back to block `from` (their signers' names).
fn certificate_signers(store: &Store, head: &Cid, from: u64) -> Vec<(u64, Vec<String>)> {
    let mut out = Vec::new();
    let mut at = *head;
    loop {
        let raw = block_on(store.get(&at)).unwrap();
        let Ok(cert) = CertificateObject::decode(&raw) else {
            break;
        };
        let cp = &cert.certificate.checkpoint;
        if cp.height < from {
            break;
        }
        out.push((
            cp.height,
            cert.certificate
                .signatures
                .iter()
                .map(|s| s.name.clone())
                .collect(),
        ));
        let block = Block::decode(&block_on(store.get(&cp.block)).unwrap()).unwrap();
        match block.header.parent_cert {
            Some(c) => at = c,
            None => break,
        }
    }
    out
}

/// Scenario 4: A Byzantine validator proposes forged transactions and signs shares of the wrong block:
/// the others reject both, the chain goes on, and no certificate holds its share.
fn byzantine(net: &mut Net, w: &World) {
    net.tn.kill_validator(1);
    net.tn
        .start_validator_with(1, "forge-proposal,bad-share")
        .unwrap();
    // Blocks still commit with only the three honest validators' votes.
    net.tn.wait_in_consensus(Duration::from_secs(60)).unwrap();
    let byzantine = net.authority(1).id().to_string();
    let from = net.head(0).height + 1;
    let mut v = net.client(0);
    // (Its node did sign transactions before: the key shares it released in scenario 9.)
    let seq_before = v.state().last_seq(&net.authority(1).id());
    for i in 0..6 {
        let r = block_on(v.publish_bytes(
            &w.patient,
            format!("byzantine {i}").as_bytes(),
            "b.txt",
            "text/plain",
        ))
        .unwrap();
        block_on(v.grant(&w.patient, &r, &w.doctor2.id(), GrantOptions::default())).unwrap();
    }
    let head = net.head(0).head;
    let store = v.store().clone();
    let certs = certificate_signers(&store, &head, from);
    assert!(certs.len() >= 6, "{certs:?}");
    for (h, signers) in &certs {
        assert!(
            !signers.contains(&byzantine),
            "block {h} holds the Byzantine share"
        );
        assert!(signers.len() >= 3, "block {h}: {signers:?}");
    }
    // The forged vote never reached the chain.
    assert_eq!(v.state().last_seq(&net.authority(1).id()), seq_before);
    // The honest nodes said why.
    let log = net.log(0) + &net.log(2) + &net.log(3);
    assert!(
        log.contains("rejected the certificate share of validator"),
        "no share rejected"
    );
    wait_until(
        "a forged proposal rejected",
        Duration::from_secs(60),
        || {
            let log = net.log(0) + &net.log(2) + &net.log(3);
            if log.contains("rejected the proposal") && log.contains("TxSignature") {
                return true;
            }
            // Node 1 proposes in turn; keep the chain moving until it has.
            let _ = block_on(v.publish_bytes(&w.patient, b"more", "m.txt", "text/plain"));
            false
        },
    );
    net.tn.kill_validator(1);
    net.tn.start_validator(1).unwrap();
    net.tn.wait_in_consensus(Duration::from_secs(60)).unwrap();
}

/// Scenario 6: A CAR exported from a node verifies offline; the same chain with a head certificate of
/// one authority is refused; a validator-set change by vote is honoured.
fn car_and_authority_vote(net: &mut Net, w: &World) {
    let car = net.dir.join("chain.car");
    ok_json(net.node_dir(2), &["export", "--car", car.to_str().unwrap()]);
    let offline = net.dir.join("offline");
    ok_json(
        &offline,
        &[
            "import",
            "--car",
            car.to_str().unwrap(),
            "--genesis",
            &net.genesis.to_string(),
        ],
    );
    let verified = ok_json(&offline, &["verify"]);
    assert_eq!(verified["authorities"], 4);

    // The head block re-certified by one authority alone.
    let v = net.client(0);
    let cp = v.state().checkpoint();
    let share = medshare::ledger::checkpoint::sign_share(&cp, &net.authority(0)).unwrap();
    let lone = CertificateObject::new(Certificate {
        checkpoint: cp,
        signatures: vec![share],
    });
    let forged = net.dir.join("forged.car");
    let mut reader = medshare::car::CarReader::new(std::fs::File::open(&car).unwrap()).unwrap();
    let mut writer =
        medshare::car::CarWriter::new(std::fs::File::create(&forged).unwrap(), &[lone.cid])
            .unwrap();
    writer.write_block(&lone.cid, &lone.bytes).unwrap();
    while let Some(b) = reader.next_block().unwrap() {
        writer.write_block(&b.cid, &b.data).unwrap();
    }
    writer.finish().unwrap();
    let out = medshare(
        &net.dir.join("forged-home"),
        &[
            "import",
            "--car",
            forged.to_str().unwrap(),
            "--genesis",
            &net.genesis.to_string(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("1 of 4 authorities signed"),
        "{err}"
    );

    // Three of four authorities vote node 3's out; CometBFT's validator set follows.
    let leaving = net.authority(3).id().to_string();
    for i in 0..3 {
        ok_json(
            net.node_dir(i),
            &["authority", "remove", "--authority", &leaving],
        );
    }
    let mut v = net.client(0);
    block_on(v.sync()).unwrap();
    assert_eq!(v.state().authorities().len(), 3);
    wait_until(
        "CometBFT drops validator 3",
        Duration::from_secs(30),
        || {
            let body =
                medshare_node::testnet::http_get(net.tn.layout.nodes[0].ports.rpc, "/validators")
                    .unwrap_or_default();
            body.contains("\"total\":\"3\"")
        },
    );
    // Node 3 can go; the three others certify alone.
    net.tn.kill_validator(3);
    let r =
        block_on(v.publish_bytes(&w.patient, b"after the vote", "v.txt", "text/plain")).unwrap();
    block_on(v.grant(&w.patient, &r, &w.doctor2.id(), GrantOptions::default())).unwrap();
    let report = block_on(v.verify()).unwrap();
    assert_eq!(report.authorities, 3);
}

#[test]
fn a_network_of_four_hospitals() {
    let mut net = start();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenarios(&mut net)));
    if let Err(panic) = outcome {
        // The nodes' own account of what happened, before the temporary directory goes.
        for i in 0..4 {
            eprintln!("{}", net.tn.log_tails(i, 40));
        }
        std::panic::resume_unwind(panic);
    }
    net.tn.stop_all();
}

fn scenarios(net: &mut Net) {
    let steps = Instant::now();
    let w = story(net);
    eprintln!("story: {:?}", steps.elapsed());
    refused_at_checktx(net, &w);
    eprintln!("refusals: {:?}", steps.elapsed());
    revocation_everywhere(net, &w);
    eprintln!("revocation: {:?}", steps.elapsed());
    light_client(net, &w);
    eprintln!("light client: {:?}", steps.elapsed());
    emergency_access(net, &w);
    eprintln!("emergency access: {:?}", steps.elapsed());
    one_validator_down(net, &w);
    eprintln!("one down: {:?}", steps.elapsed());
    two_validators_down(net, &w);
    eprintln!("two down: {:?}", steps.elapsed());
    byzantine(net, &w);
    eprintln!("byzantine: {:?}", steps.elapsed());
    car_and_authority_vote(net, &w);
    eprintln!("car and vote: {:?}", steps.elapsed());
}
