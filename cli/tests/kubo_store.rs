//! The kubo store against a real kubo daemon started here on 127.0.0.1: the core's store
//! conformance suite, a vault story with `ipfs cat` interop, and a node that is down or
//! answers garbage.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ipfs, ipfs_bin, ok_json};
use medshare::ledger::Policy;
use medshare::store::kubo::{KuboConfig, KuboStore};
use medshare::store::testsuite;
use medshare::{Error, Identity, Role, Store, Vault};

/// A kubo daemon on 127.0.0.1 (random ports, offline: no network beyond loopback), stopped on drop.
struct Daemon {
    child: Option<Child>,
    repo: tempfile::TempDir,
    url: String,
    online: bool,
}

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_with(false)
    }

    /// `online`: a daemon that talks libp2p, with no bootstrap peers (only peers we connect).
    fn start_with(online: bool) -> Daemon {
        let repo = tempfile::tempdir().unwrap();
        let r = repo.path();
        ipfs(r, &["init", "--profile=test"]);
        ipfs(r, &["config", "Addresses.API", "/ip4/127.0.0.1/tcp/0"]);
        ipfs(r, &["config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/0"]);
        ipfs(
            r,
            &[
                "config",
                "--json",
                "Addresses.Swarm",
                r#"["/ip4/127.0.0.1/tcp/0"]"#,
            ],
        );
        ipfs(r, &["config", "--json", "Bootstrap", "[]"]);
        ipfs(r, &["config", "Routing.Type", "dht"]);
        let mut d = Daemon {
            child: None,
            repo,
            url: String::new(),
            online,
        };
        d.run();
        d
    }

    /// Starts the daemon process on this repository (again, after `stop`).
    fn run(&mut self) {
        let r = self.repo.path();
        let _ = std::fs::remove_file(r.join("api"));
        let args: &[&str] = if self.online {
            &["daemon"]
        } else {
            &["daemon", "--offline"]
        };
        let child = Command::new(ipfs_bin())
            .args(args)
            .env("IPFS_PATH", r)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let api_file = r.join("api");
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            if let Some(a) = std::fs::read_to_string(&api_file)
                .ok()
                .filter(|a| !a.trim().is_empty())
            {
                break a;
            }
            assert!(Instant::now() < deadline, "kubo daemon did not start");
            std::thread::sleep(Duration::from_millis(100));
        };
        // "/ip4/127.0.0.1/tcp/PORT"
        let port = addr.trim().rsplit('/').next().unwrap().to_owned();
        self.url = format!("http://127.0.0.1:{port}");
        self.child = Some(child);
    }

    /// Stops the daemon process (the repository stays).
    fn stop(&mut self) {
        let _ = Command::new(ipfs_bin())
            .arg("shutdown")
            .env("IPFS_PATH", self.repo.path())
            .output();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The swarm address other local nodes dial.
    fn swarm_addr(&self) -> String {
        let addrs = String::from_utf8(self.rpc("id -f <addrs>")).unwrap();
        addrs
            .lines()
            .find(|l| l.starts_with("/ip4/127.0.0.1/"))
            .unwrap()
            .to_owned()
    }

    fn store(&self, namespace: &str) -> KuboStore {
        KuboStore::new(KuboConfig {
            namespace: namespace.into(),
            ..KuboConfig::new(&self.url)
        })
    }

    fn rpc(&self, path: &str) -> Vec<u8> {
        ipfs(self.repo.path(), &path.split(' ').collect::<Vec<_>>())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn kubo_store_against_a_real_daemon() {
    let d = Daemon::start();
    // The same conformance suite as every other backend, each check in its own MFS namespace.
    let mut n = 0;
    pollster::block_on(testsuite::run_all(|| {
        n += 1;
        Store::new(d.store(&format!("/medshare-suite-{n}")))
    }))
    .unwrap_or_else(|f| panic!("{f}"));

    // A vault over kubo: publish, grant, read, revoke; kubo serves the envelope by its root.
    pollster::block_on(async {
        let store = Store::new(d.store("/medshare"));
        let authority = Identity::generate(Role::Authority, "a", 2048).unwrap();
        let mut v = Vault::create(store.clone(), "kubo-net", authority, Policy::default())
            .await
            .unwrap();
        let p = Identity::generate(Role::Patient, "p", 2048).unwrap();
        let doc = Identity::generate(Role::Doctor, "d", 2048).unwrap();
        v.register(&p, None).await.unwrap();
        v.register(&doc, Some("L")).await.unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let rec = v
            .publish_bytes(&p, &data, "scan.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &rec, &doc.id(), None, None).await.unwrap();
        let mut out = Vec::new();
        v.open_record(&doc, &rec, &mut out).await.unwrap();
        assert_eq!(out, data);
        // `ipfs cat <root>` prints exactly the sealed envelope medshare stored.
        let content = v.state().record(&rec).unwrap().content;
        let cat = d.rpc(&format!("cat {content}"));
        assert!(cat.starts_with(b"MSHENV"));
        assert_eq!(
            medshare::cid(&cat, medshare::Profile::UnixfsV1_2025),
            content
        );
        // `ipfs dag get` shows the head block as DAG-CBOR with links.
        let head = v.state().head();
        let json = String::from_utf8(d.rpc(&format!("dag get {head}"))).unwrap();
        assert!(json.contains("\"parent\":{\"/\":\"bafyrei"), "{json}");
        // Revocation removes the old version's blocks from the node.
        v.revoke(&p, &rec, &doc.id()).await.unwrap();
        assert!(!store.has(&content).await.unwrap());
        assert!(matches!(
            v.open_record(&doc, &rec, &mut Vec::new()).await,
            Err(Error::AccessRevoked(_))
        ));
        // Another vault over the same node replays and verifies the chain.
        let again = Vault::open(Store::new(d.store("/medshare")), None)
            .await
            .unwrap();
        assert_eq!(again.state().head(), v.state().head());
    });
}

#[test]
fn node_down_is_a_clear_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = KuboStore::new(KuboConfig {
        attempts: 2,
        timeout: Duration::from_secs(5),
        ..KuboConfig::new(&format!("http://127.0.0.1:{port}"))
    });
    match pollster::block_on(Store::new(store).head()) {
        Err(Error::Backend(m)) => assert!(m.contains("unreachable"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_answers_are_a_clear_error() {
    // A server on 127.0.0.1 that answers every request with a non-kubo reply.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 500 Oops\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!",
            );
        }
    });
    let store = Store::new(KuboStore::new(KuboConfig::new(&format!(
        "http://127.0.0.1:{port}"
    ))));
    let cid = medshare::Cid::v1(medshare::cid::RAW, b"x");
    match pollster::block_on(store.get(&cid)) {
        Err(Error::Backend(m)) => assert!(m.contains("unexpected HTTP 500"), "{m}"),
        other => panic!("{other:?}"),
    }
    match pollster::block_on(store.put(&cid, b"x")) {
        Err(Error::Backend(m)) => assert!(m.contains("unexpected HTTP 500"), "{m}"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn cli_runs_on_a_kubo_node() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("kubo={},ipns-key=medshare-head", d.url);
    let home = dir.path().join("home");
    let run = |args: &[&str]| {
        let mut a = vec!["--store", store.as_str()];
        a.extend_from_slice(args);
        ok_json(&home, &a)
    };
    let init = run(&["init"]);
    let ipns = init["ipns"].as_str().unwrap().to_owned();
    run(&[
        "identity", "new", "--role", "patient", "--name", "alice", "--bits", "2048",
    ]);
    run(&[
        "identity",
        "new",
        "--role",
        "doctor",
        "--name",
        "bob",
        "--bits",
        "2048",
        "--licence",
        "L-1",
    ]);
    let src = dir.path().join("labs.json");
    std::fs::write(&src, br#"{"resourceType":"Bundle","id":"on-kubo"}"#).unwrap();
    let rec = run(&["record", "add", "--as", "alice", src.to_str().unwrap()]);
    run(&[
        "grant",
        "--as",
        "alice",
        "--record",
        rec["id"].as_str().unwrap(),
        "--doctor",
        "bob",
    ]);
    let out = dir.path().join("out.json");
    run(&[
        "record",
        "get",
        "--as",
        "bob",
        "--record",
        rec["id"].as_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    assert_eq!(run(&["verify"])["blocks"], 5);
    // Nothing of the chain or the record is in the home: the blocks are on the node.
    assert!(!dir.path().join("home/store").exists());
    let cat = d.rpc(&format!("cat {}", rec["content"].as_str().unwrap()));
    assert!(cat.starts_with(b"MSHENV"));
    // A replica home follows the head through IPNS: same chain, verified, read-only.
    let replica = dir.path().join("replica");
    let follow = format!("kubo={},follow={ipns}", d.url);
    let v = ok_json(&replica, &["--store", &follow, "verify"]);
    assert_eq!(v["blocks"], 5);
}

/// Two nodes peered only with each other: node A's vault publishes, grants and revokes; node B
/// shares no files with A, learns the head from IPNS, fetches chain and records through IPFS,
/// verifies, and enforces the same access decisions.
#[test]
fn replica_on_a_second_node_follows_the_head_over_ipns() {
    let mut a = Daemon::start_with(true);
    let b = Daemon::start_with(true);
    a.rpc(&format!("swarm connect {}", b.swarm_addr()));

    let sealer = KuboStore::new(KuboConfig {
        publish_key: Some("medshare-head".into()),
        ..KuboConfig::new(&a.url)
    });
    let name = sealer.ipns_key("medshare-head").unwrap();
    assert!(name.starts_with("k51"), "{name}");
    let (p, d1, d2) = (
        Identity::generate(Role::Patient, "p", 2048).unwrap(),
        Identity::generate(Role::Doctor, "d1", 2048).unwrap(),
        Identity::generate(Role::Doctor, "d2", 2048).unwrap(),
    );
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let authority = Identity::generate(Role::Authority, "a", 2048).unwrap();
    let rec = pollster::block_on(async {
        let mut v = Vault::create(
            Store::new(sealer),
            "replicated",
            authority.clone(),
            Policy::default(),
        )
        .await
        .unwrap();
        v.register(&p, None).await.unwrap();
        v.register(&d1, Some("L1")).await.unwrap();
        v.register(&d2, Some("L2")).await.unwrap();
        let rec = v
            .publish_bytes(&p, &data, "ct.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &rec, &d1.id(), None, None).await.unwrap();
        v.grant(&p, &rec, &d2.id(), None, None).await.unwrap();
        v.revoke(&p, &rec, &d1.id()).await.unwrap();
        rec
    });

    let follower = KuboStore::new(KuboConfig {
        follow: Some(name.clone()),
        ..KuboConfig::new(&b.url)
    });
    pollster::block_on(async {
        let mut replica = Vault::open(Store::new(follower), None).await.unwrap();
        let report = replica.verify().await.unwrap();
        assert_eq!(report.blocks, 8);
        let mut out = Vec::new();
        replica.open_record(&d2, &rec, &mut out).await.unwrap();
        assert_eq!(out, data);
        assert!(matches!(
            replica.open_record(&d1, &rec, &mut Vec::new()).await,
            Err(Error::AccessRevoked(_))
        ));
        // A follower never moves the head itself.
        assert!(matches!(
            replica.register(&p, None).await,
            Err(Error::ReadOnly)
        ));
    });

    // Node A goes down while B needs a record only A holds: B's fetch fails cleanly and B's
    // state stays intact; once A is back, B resumes and reads it.
    let big: Vec<u8> = (0..24_000_000u32).map(|i| (i % 239) as u8).collect();
    let sealer = KuboStore::new(KuboConfig {
        publish_key: Some("medshare-head".into()),
        ..KuboConfig::new(&a.url)
    });
    let rec2 = pollster::block_on(async {
        let mut v = Vault::open(Store::new(sealer), Some(authority.clone()))
            .await
            .unwrap();
        let rec2 = v
            .publish_bytes(&p, &big, "mri.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &rec2, &d2.id(), None, None).await.unwrap();
        rec2
    });
    let follower = || {
        Store::new(KuboStore::new(KuboConfig {
            follow: Some(name.clone()),
            timeout: Duration::from_secs(5),
            attempts: 1,
            ..KuboConfig::new(&b.url)
        }))
    };
    let mut replica = pollster::block_on(Vault::open(follower(), None)).unwrap();
    assert_eq!(pollster::block_on(replica.verify()).unwrap().blocks, 10);
    // B starts fetching the record: the root and the first half of its leaves arrive from A…
    let content = replica.state().record(&rec2).unwrap().content;
    let b_store = follower();
    let root = pollster::block_on(b_store.get(&content)).unwrap();
    let leaves: Vec<medshare::Cid> = medshare::unixfs::pb::decode_node(&root)
        .unwrap()
        .links
        .iter()
        .map(|l| l.cid)
        .collect();
    assert!(leaves.len() >= 20, "{} leaves", leaves.len());
    let half = leaves.len() / 2;
    for leaf in &leaves[..half] {
        pollster::block_on(b_store.get(leaf)).unwrap();
    }
    // …then node A stops, midway.
    a.stop();
    let head_before = replica.state().head();
    match pollster::block_on(replica.open_record(&d2, &rec2, &mut Vec::new())) {
        Err(Error::Backend(m)) => assert!(m.contains("block/get"), "{m}"),
        other => panic!("with node A down the record cannot be fetched, got {other:?}"),
    }
    assert_eq!(replica.state().head(), head_before);
    // What B fetched before the stop is still there, hash-checked; the rest is not.
    assert!(pollster::block_on(b_store.has(&leaves[0])).unwrap());
    assert!(!pollster::block_on(b_store.has(&leaves[leaves.len() - 1])).unwrap());
    a.run();
    b.rpc(&format!("swarm connect {}", a.swarm_addr()));
    let mut out = Vec::new();
    pollster::block_on(replica.open_record(&d2, &rec2, &mut out)).unwrap();
    assert!(out == big, "resumed read differs");
    assert_eq!(pollster::block_on(replica.verify()).unwrap().blocks, 10);
}
