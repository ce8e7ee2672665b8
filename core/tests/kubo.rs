//! The kubo store against real kubo daemons started here on 127.0.0.1: the store conformance
//! suite, a vault whose records survive `ipfs repo gc` (pinned) and whose revoked versions do
//! not (unpinned), the head lock between two writers, a node that is down or answers garbage,
//! and a replica on a second node following the head over IPNS.

mod common;

#[path = "../../node/src/kubo.rs"]
#[allow(dead_code)]
mod kubo;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::identity;
use kubo::{Kubo, KuboPorts};
use medshare::ledger::{Endorsement, Policy};
use medshare::store::kubo::{KuboConfig, KuboStore};
use medshare::store::testsuite;
use medshare::{Error, GrantOptions, Store, Vault};

fn ipfs_bin() -> PathBuf {
    let p = std::env::var_os("MEDSHARE_IPFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/ipfs"));
    assert!(
        p.exists(),
        "kubo not found at {} (scripts/install-tools.sh builds it)",
        p.display()
    );
    p
}

struct Node {
    kubo: Kubo,
    _dir: tempfile::TempDir,
}

fn node(online: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("ipfs");
    kubo::init(&ipfs_bin(), &repo, KuboPorts::default()).unwrap();
    Node {
        kubo: Kubo::start(&ipfs_bin(), &repo, online).unwrap(),
        _dir: dir,
    }
}

fn store(k: &Kubo, namespace: &str) -> KuboStore {
    KuboStore::new(KuboConfig {
        namespace: namespace.into(),
        ..KuboConfig::new(&k.url)
    })
    .unwrap()
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn kubo_store_against_a_real_daemon() {
    let n = node(false);
    let d = &n.kubo;
    // The same conformance suite as every other backend, each check in its own MFS namespace.
    let mut i = 0;
    pollster::block_on(testsuite::run_all(|| {
        i += 1;
        Store::new(store(d, &format!("/medshare-suite-{i}")))
    }))
    .unwrap_or_else(|f| panic!("{f}"));

    pollster::block_on(async {
        let s = Store::new(store(d, "/medshare"));
        let mut v = Vault::create(
            s.clone(),
            "kubo-net",
            identity("authority"),
            Policy::default(),
        )
        .await
        .unwrap();
        let (p, doc) = (identity("patient"), identity("doctor"));
        v.register(&p, None).await.unwrap();
        let e = Endorsement::sign(&identity("authority"), &v.genesis(), &doc.id(), "L").unwrap();
        v.register(&doc, Some(&e)).await.unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let rec = v
            .publish_bytes(&p, &data, "scan.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &rec, &doc.id(), GrantOptions::default())
            .await
            .unwrap();
        let content = v.record(&rec).unwrap().content;
        // The record's root is pinned recursively; `ipfs repo gc` keeps every block of it.
        let pins = text(d.ipfs(&["pin", "ls", "--type=recursive", "-q"]).unwrap());
        assert!(pins.contains(&content.to_string()), "{pins}");
        d.ipfs(&["repo", "gc", "--silent"]).unwrap();
        let mut out = Vec::new();
        v.open_record(&doc, &rec, &mut out).await.unwrap();
        assert_eq!(out, data);
        assert!(v.verify_content().await.unwrap().missing.is_empty());
        // `ipfs cat <root>` prints exactly the sealed envelope medshare stored.
        let cat = d.ipfs(&["cat", &content.to_string()]).unwrap();
        assert!(cat.starts_with(b"MSHENV"));
        assert_eq!(
            medshare::cid(&cat, medshare::Profile::UnixfsV1_2025),
            content
        );
        // Revocation unpins the old version; after gc none of its blocks is on the node, while
        // the chain (pinned object by object) and the new version stay.
        let leaf = {
            let root = s.get(&content).await.unwrap();
            medshare::unixfs::pb::decode_node(&root).unwrap().links[0].cid
        };
        v.revoke(&p, &rec, &doc.id()).await.unwrap();
        d.ipfs(&["repo", "gc", "--silent"]).unwrap();
        assert!(!s.has(&content).await.unwrap());
        assert!(!s.has(&leaf).await.unwrap());
        assert!(matches!(
            v.open_record(&doc, &rec, &mut Vec::new()).await,
            Err(Error::AccessRevoked(_))
        ));
        v.open_record(&p, &rec, &mut Vec::new()).await.unwrap();
        v.verify().await.unwrap();
        // Another vault over the same node replays and verifies the chain.
        let again = Vault::open(Store::new(store(d, "/medshare")), None, Some(&v.genesis()))
            .await
            .unwrap();
        assert_eq!(again.head(), v.head());
    });
}

#[test]
fn the_head_lock_holds_between_writers_in_different_handles() {
    let n = node(false);
    let d = &n.kubo;
    // Two independent store handles (as two processes would have) race compare-and-swaps of
    // the same head: exactly one of each pair of swaps from the same head wins.
    let a = Arc::new(Store::new(store(d, "/race")));
    let b = Arc::new(Store::new(store(d, "/race")));
    let mut head = None;
    for i in 0..5u8 {
        let x = medshare::Cid::dag_cbor(&[i, 0]);
        let y = medshare::Cid::dag_cbor(&[i, 1]);
        let (a2, b2) = (a.clone(), b.clone());
        let ta = std::thread::spawn(move || {
            pollster::block_on(a2.compare_and_swap_head(head.as_ref(), Some(&x)))
        });
        let tb = std::thread::spawn(move || {
            pollster::block_on(b2.compare_and_swap_head(head.as_ref(), Some(&y)))
        });
        let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
        assert!(ra.is_ok() ^ rb.is_ok(), "round {i}: {ra:?} {rb:?}");
        let loser = if ra.is_ok() { rb } else { ra };
        assert!(
            matches!(loser, Err(Error::HeadConflict { .. })),
            "{loser:?}"
        );
        head = pollster::block_on(a.head()).unwrap();
        assert!(head == Some(x) || head == Some(y));
    }
}

#[test]
fn node_down_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = KuboStore::new(KuboConfig {
        attempts: 2,
        timeout: Duration::from_secs(5),
        ..KuboConfig::new(&format!("http://127.0.0.1:{port}"))
    })
    .unwrap();
    match pollster::block_on(Store::new(s).head()) {
        Err(Error::Backend(m)) => assert!(m.contains("unreachable"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_answers_are_a_clear_error() {
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
    let s =
        Store::new(KuboStore::new(KuboConfig::new(&format!("http://127.0.0.1:{port}"))).unwrap());
    let cid = medshare::Cid::v1(medshare::cid::RAW, b"x");
    match pollster::block_on(s.get(&cid)) {
        Err(Error::Backend(m)) => assert!(m.contains("unexpected HTTP 500"), "{m}"),
        other => panic!("{other:?}"),
    }
    match pollster::block_on(s.put(&cid, b"x")) {
        Err(Error::Backend(m)) => assert!(m.contains("unexpected HTTP 500"), "{m}"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

/// A one-request server standing in for kubo's `dag/import`: reads the request to the end of
/// its chunked body (or only `cut` bytes of it, then hangs up), answers `answer`, and returns
/// what it read.
fn fake_import(
    answer: &'static [u8],
    cut: Option<usize>,
) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    fake_import_after(Duration::ZERO, answer, cut)
}

/// [`fake_import`], listening only `after` this long (a node that is starting).
fn fake_import_after(
    after: Duration,
    answer: &'static [u8],
    cut: Option<usize>,
) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    let listening = if after.is_zero() {
        Some(reserved)
    } else {
        drop(reserved);
        None
    };
    let server = std::thread::spawn(move || {
        let listener = listening.unwrap_or_else(|| {
            std::thread::sleep(after);
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap()
        });
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if cut.is_some_and(|n| got.len() >= n) {
                return got; // dropped: the connection is closed mid-body
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            // The end of the chunked body: the last chunk, after the headers' end.
            let body = got.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
            if body.is_some_and(|b| got[b..].ends_with(b"\r\n0\r\n\r\n")) {
                break;
            }
        }
        let _ = s.write_all(answer);
        got
    });
    (port, server)
}

fn raw_blocks(n: usize, len: usize) -> Vec<medshare::store::Block> {
    (0..n)
        .map(|i| {
            let data = vec![i as u8; len];
            medshare::store::Block {
                cid: medshare::Cid::v1(medshare::cid::RAW, &data),
                data,
            }
        })
        .collect()
}

/// kubo's answer to an import when its blockstore is full.
const FULL: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
    Content-Length: 56\r\nConnection: close\r\n\r\n\
    {\"Message\":\"blockstore is full\",\"Code\":0,\"Type\":\"error\"}";

/// Data blocks stream into one open `dag/import`; kubo's refusal of it is the error of the
/// next call (here the flush before a head would move), word for word.
#[test]
fn an_import_kubo_refuses_is_the_next_calls_error() {
    let (port, server) = fake_import(FULL, None);
    let url = format!("http://127.0.0.1:{port}");
    let s = Store::new(KuboStore::new(KuboConfig::new(&url)).unwrap());
    pollster::block_on(s.put_many(&raw_blocks(3, 1000))).unwrap();
    match pollster::block_on(s.flush()) {
        Err(Error::Backend(m)) => {
            assert_eq!(m, format!("kubo at {url}: dag/import: blockstore is full"))
        }
        other => panic!("{other:?}"),
    }
    let request = server.join().unwrap();
    assert!(
        request.starts_with(b"POST /api/v0/dag/import?pin-roots=false&stats=true HTTP/1.1\r\n"),
        "{}",
        String::from_utf8_lossy(&request[..80])
    );
    // The three blocks went in the one request, each whole.
    let request = request
        .windows(1000)
        .filter(|w| w.iter().all(|&b| b == w[0]))
        .count();
    assert!(request >= 3, "the blocks were not in the request");
}

/// Each thread streams into its own import: another thread's call finishes it, but its failure
/// is kept for the thread that wrote it (its next call), not given to the other thread nor
/// lost.
#[test]
fn a_failed_import_is_the_error_of_the_thread_that_wrote_it() {
    let (port, server) = fake_import(FULL, None);
    let url = format!("http://127.0.0.1:{port}");
    let s = Store::new(KuboStore::new(KuboConfig::new(&url)).unwrap());
    let (put, flushed) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            pollster::block_on(s.put_many(&raw_blocks(3, 1000))).unwrap();
            put.wait();
            flushed.wait();
            pollster::block_on(s.flush())
        });
        put.wait();
        // This thread wrote nothing: finishing the other's import is not its failure.
        pollster::block_on(s.flush()).unwrap();
        flushed.wait();
        match writer.join().unwrap() {
            Err(Error::Backend(m)) => {
                assert_eq!(m, format!("kubo at {url}: dag/import: blockstore is full"))
            }
            other => panic!("{other:?}"),
        }
    });
    server.join().unwrap();
}

/// A node that cannot be reached when an import starts is tried again, as for every call, and
/// the import goes through once it listens; one that never does is a clear error.
#[test]
fn an_import_waits_for_a_node_that_is_starting() {
    let (port, server) = fake_import_after(
        Duration::from_millis(50),
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\
          Connection: close\r\n\r\n{\"Stats\":{\"BlockCount\":3,\"BlockBytesCount\":3000}}\n",
        None,
    );
    let s =
        Store::new(KuboStore::new(KuboConfig::new(&format!("http://127.0.0.1:{port}"))).unwrap());
    pollster::block_on(s.put_many(&raw_blocks(3, 1000))).unwrap();
    pollster::block_on(s.flush()).unwrap();
    server.join().unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let s = Store::new(
        KuboStore::new(KuboConfig {
            attempts: 2,
            ..KuboConfig::new(&url)
        })
        .unwrap(),
    );
    pollster::block_on(s.put_many(&raw_blocks(3, 1000))).unwrap();
    match pollster::block_on(s.flush()) {
        Err(Error::Backend(m)) => {
            assert!(
                m.starts_with(&format!("kubo at {url} is unreachable: ")),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// An import kubo answers with fewer blocks than were sent is refused.
#[test]
fn an_import_short_of_blocks_is_refused() {
    let (port, server) = fake_import(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\
          Connection: close\r\n\r\n{\"Stats\":{\"BlockCount\":2,\"BlockBytesCount\":2000}}\n",
        None,
    );
    let s =
        Store::new(KuboStore::new(KuboConfig::new(&format!("http://127.0.0.1:{port}"))).unwrap());
    pollster::block_on(s.put_many(&raw_blocks(3, 1000))).unwrap();
    match pollster::block_on(s.flush()) {
        Err(Error::Backend(m)) => assert_eq!(m, "kubo dag/import took Some(2) blocks of 3 sent"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

/// A node that hangs up in the middle of an import fails the put or the next call: the blocks
/// are never taken for stored.
#[test]
fn a_node_lost_mid_import_is_an_error_not_a_success() {
    let (port, server) = fake_import(b"", Some(3 << 20));
    let url = format!("http://127.0.0.1:{port}");
    let s = Store::new(KuboStore::new(KuboConfig::new(&url)).unwrap());
    let put = pollster::block_on(s.put_many(&raw_blocks(8, 1 << 20)));
    let flushed = pollster::block_on(s.flush());
    let err = match (put, flushed) {
        (Err(e), _) | (Ok(()), Err(e)) => e,
        (Ok(()), Ok(())) => panic!("an import cut short was taken for stored"),
    };
    match err {
        Error::Backend(m) => assert!(m.starts_with(&format!("kubo at {url}")), "{m}"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

/// Two nodes peered only with each other: node A's vault publishes, grants and revokes; node B
/// shares no files with A, learns the head from IPNS, fetches chain and records through IPFS,
/// verifies, and enforces the same access decisions. A stops midway through B's fetch; B fails
/// cleanly, keeps its state, and resumes once A is back.
#[test]
fn replica_on_a_second_node_follows_the_head_over_ipns() {
    let mut na = node(true);
    let nb = node(true);
    na.kubo.connect(&nb.kubo.swarm_addr().unwrap()).unwrap();
    let a = &mut na.kubo;
    let b = &nb.kubo;
    let writer = || {
        KuboStore::new(KuboConfig {
            publish_key: Some("medshare-head".into()),
            ..KuboConfig::new(&a.url)
        })
        .unwrap()
    };
    let name = pollster::block_on(writer().ipns_key("medshare-head")).unwrap();
    assert!(name.starts_with("k51"), "{name}");
    let (p, d1, d2) = (identity("patient"), identity("doctor"), identity("doctor2"));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let (rec, genesis) = pollster::block_on(async {
        let mut v = Vault::create(
            Store::new(writer()),
            "replicated",
            identity("authority"),
            Policy::default(),
        )
        .await
        .unwrap();
        v.register(&p, None).await.unwrap();
        for (d, l) in [(&d1, "L1"), (&d2, "L2")] {
            let e = Endorsement::sign(&identity("authority"), &v.genesis(), &d.id(), l).unwrap();
            v.register(d, Some(&e)).await.unwrap();
        }
        let rec = v
            .publish_bytes(&p, &data, "ct.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &rec, &d1.id(), GrantOptions::default())
            .await
            .unwrap();
        v.grant(&p, &rec, &d2.id(), GrantOptions::default())
            .await
            .unwrap();
        v.revoke(&p, &rec, &d1.id()).await.unwrap();
        (rec, v.genesis())
    });
    let follower = |attempts: u32, timeout: u64| {
        Store::new(
            KuboStore::new(KuboConfig {
                follow: Some(name.clone()),
                attempts,
                timeout: Duration::from_secs(timeout),
                ..KuboConfig::new(&b.url)
            })
            .unwrap(),
        )
    };
    pollster::block_on(async {
        let mut replica = Vault::open(follower(3, 60), None, Some(&genesis))
            .await
            .unwrap();
        assert_eq!(replica.verify().await.unwrap().blocks, 8);
        let mut out = Vec::new();
        replica.open_record(&d2, &rec, &mut out).await.unwrap();
        assert_eq!(out, data);
        assert!(matches!(
            replica.open_record(&d1, &rec, &mut Vec::new()).await,
            Err(Error::AccessRevoked(_))
        ));
        assert!(matches!(
            replica.register(&p, None).await,
            Err(Error::ReadOnly)
        ));
    });
    let big: Vec<u8> = (0..24_000_000u32).map(|i| (i % 239) as u8).collect();
    let rec2 = pollster::block_on(async {
        let mut v = Vault::open_local(Store::new(writer()), identity("authority"), Some(&genesis))
            .await
            .unwrap();
        let rec2 = v
            .publish_bytes(&p, &big, "mri.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &rec2, &d2.id(), GrantOptions::default())
            .await
            .unwrap();
        rec2
    });
    let mut replica =
        pollster::block_on(Vault::open(follower(1, 5), None, Some(&genesis))).unwrap();
    assert_eq!(pollster::block_on(replica.verify()).unwrap().blocks, 10);
    let content = replica.record(&rec2).unwrap().content;
    let b_store = follower(1, 5);
    let root = pollster::block_on(b_store.get(&content)).unwrap();
    let leaves: Vec<medshare::Cid> = medshare::unixfs::pb::decode_node(&root)
        .unwrap()
        .links
        .iter()
        .map(|l| l.cid)
        .collect();
    assert!(leaves.len() >= 20, "{} leaves", leaves.len());
    for leaf in &leaves[..leaves.len() / 2] {
        pollster::block_on(b_store.get(leaf)).unwrap();
    }
    a.stop();
    let head_before = replica.head();
    match pollster::block_on(replica.open_record(&d2, &rec2, &mut Vec::new())) {
        Err(Error::Backend(m)) => assert!(m.contains("block/get"), "{m}"),
        other => panic!("with node A down the record cannot be fetched, got {other:?}"),
    }
    assert_eq!(replica.head(), head_before);
    assert!(pollster::block_on(b_store.has(&leaves[0])).unwrap());
    assert!(!pollster::block_on(b_store.has(&leaves[leaves.len() - 1])).unwrap());
    a.run().unwrap();
    b.connect(&a.swarm_addr().unwrap()).unwrap();
    let mut out = Vec::new();
    pollster::block_on(replica.open_record(&d2, &rec2, &mut out)).unwrap();
    assert!(out == big, "resumed read differs");
}
