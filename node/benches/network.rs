//! The network benchmark: committed transactions per second and submit-to-certified latency
//! of grant transactions on a local 4-validator medshare testnet, next to CometBFT's built-in
//! `kvstore` application on the same 4-node configuration (same ports scheme, timeouts, vote
//! extensions on), in the same run.
//!
//! `cargo build --release -p medshare-cli && cargo bench -p medshare-node --bench network`
//! (needs `.tools/bin/cometbft` and `.tools/bin/ipfs` from scripts/install-tools.sh).
//!
//! * Throughput: a burst of pre-signed grants (480; `MEDSHARE_BENCH_BURST`), one patient per
//!   client and each client submitting its patient's grants in sequence order (8 clients in
//!   parallel, spread over the 4 validators; `MEDSHARE_BENCH_CLIENTS`), timed until the last is
//!   committed (in a block: kvstore has nothing more) and, for medshare, until it is certified.
//!   It also prints when the burst was all submitted and how many transactions each height
//!   carried. `MEDSHARE_BENCH_PERF=FILE` runs `perf record -a -g` over the medshare burst;
//!   `MEDSHARE_BENCH_KEEP=1` copies the medshare network's node and CometBFT logs to
//!   `/tmp/medshare-bench-logs` (with `MEDSHARE_ABCI_SLOW_MS=0` the nodes log every call).
//! * References: kvstore inside CometBFT (the target's peer) and, if `.tools/bin/abci-cli`
//!   exists (scripts/install-tools.sh builds it), the same kvstore as a separate process per
//!   validator over CometBFT's ABCI socket protocol, as the medshare nodes are reached: the
//!   difference between the two is what the transport alone costs.
//! * Latency: one transaction at a time (closed loop), submit to certified, p50 and p99; for
//!   medshare also submit to committed (in a block, before its certificate).
//!
//! The grants' wrapped keys are random bytes of a valid size: the ledger can check a wrap's size
//! but not its content, so this measures ordering, rule checks, signatures and certificates, not
//! the clients' RSA-OAEP.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medshare::ledger::{SignedTx, Submission, Tx, TxBody};
use medshare::sequencer::comet::CometSequencer;
use medshare::{Endorsement, GrantOptions, Identity, Purpose, Role, Store, Vault};
use medshare_node::testnet::{self, InitOptions, Testnet, http_get};
use pollster::block_on;

/// Transactions in the throughput burst (`MEDSHARE_BENCH_BURST`, default 480).
fn burst() -> usize {
    std::env::var("MEDSHARE_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(480)
}
const LATENCY_SAMPLES: usize = 60;
const PASS: &str = "benchmark passphrase";

/// Clients submitting the burst in parallel, each one patient's grants in sequence order
/// (`MEDSHARE_BENCH_CLIENTS`, default 8).
fn clients() -> usize {
    std::env::var("MEDSHARE_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=burst()).contains(n))
        .unwrap_or(8)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tool(name: &str) -> PathBuf {
    root().join(".tools/bin").join(name)
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

/// GET on a validator's RPC; the JSON body.
fn rpc(port: u16, path: &str) -> serde_json::Value {
    let raw = http_get(port, path).unwrap_or_default();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked or not, the JSON object spans from the first '{' to the last '}'.
    let (a, b) = (body.find('{'), body.rfind('}'));
    match (a, b) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Report {
    /// Until the last transaction is committed (in a block).
    tps: f64,
    /// Until the last is certified (medshare only).
    certified_tps: Option<f64>,
    p50: Duration,
    p99: Duration,
    committed_p50: Option<Duration>,
}

fn init(dir: &std::path::Path) -> testnet::Layout {
    testnet::init(&InitOptions {
        dir: dir.to_path_buf(),
        validators: 4,
        name: "bench".into(),
        base_port: 0,
        bits: 2048,
        passphrase: PASS.into(),
        cometbft: tool("cometbft"),
        ipfs: tool("ipfs"),
        timeout_commit_ms: 300,
    })
    .expect("testnet init")
}

fn tx_state(port: u16, cid: &medshare::Cid) -> (bool, bool) {
    let data = hex(cid.to_string().as_bytes());
    let v = rpc(
        port,
        &format!("/abci_query?path=%22/medshare/tx%22&data=0x{data}"),
    );
    let Some(value) = v["result"]["response"]["value"].as_str() else {
        return (false, false);
    };
    let raw = data_encoding::BASE64
        .decode(value.as_bytes())
        .unwrap_or_default();
    let a: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    (a["status"] == "committed", !a["certified_head"].is_null())
}

fn medshare_bench(dir: &std::path::Path) -> Report {
    let layout = init(dir);
    let mut net = Testnet::new(
        dir,
        root().join("target/release/medshare"),
        tool("cometbft"),
        tool("ipfs"),
        PASS.into(),
    )
    .unwrap();
    net.start_all().unwrap();
    let genesis: medshare::Cid = layout.genesis.parse().unwrap();
    let node = |i: usize| &layout.nodes[i];
    let client = |i: usize| {
        let store = Store::open_spec(&format!("kubo={}", node(i).kubo())).unwrap();
        let seq = CometSequencer::new(vec![node(i).rpc()]).unwrap();
        block_on(Vault::open(store, Some(Arc::new(seq)), Some(&genesis))).unwrap()
    };
    // People: a patient with a record for each client, one doctor.
    let mut v = client(0);
    let hospital = Identity::load(node(0).dir.join("authority.key"), PASS).unwrap();
    let doctor = Identity::generate(Role::Doctor, "doctor", 2048).unwrap();
    let e = Endorsement::sign(&hospital, &genesis, &doctor.id(), "GMC-1").unwrap();
    block_on(v.register(&doctor, Some(&e))).unwrap();
    let mut people = Vec::new();
    for p in 0..clients() {
        let patient = Identity::generate(Role::Patient, &format!("p{p}"), 2048).unwrap();
        block_on(v.register(&patient, None)).unwrap();
        let record = block_on(v.publish_bytes(
            &patient,
            b"{\"resourceType\":\"Bundle\"}",
            "b.json",
            "application/fhir+json",
        ))
        .unwrap();
        people.push((patient, record));
    }
    // Closed-loop latency first, through the full client path (Vault::grant).
    let mut lat = Vec::new();
    let mut committed = Vec::new();
    let (p0, r0) = &people[0];
    for _ in 0..LATENCY_SAMPLES {
        // Pre-sign one grant, submit it, watch it become committed, then certified.
        let state = v.state();
        let tx = grant(
            &genesis,
            p0,
            r0,
            &doctor,
            state.last_seq(&p0.id()) + 1,
            state.time(),
        );
        let t0 = Instant::now();
        broadcast(node(0).ports.rpc, &tx);
        let mut seen_commit = None;
        loop {
            let (c, cert) = tx_state(node(0).ports.rpc, &tx.cid);
            if c && seen_commit.is_none() {
                seen_commit = Some(t0.elapsed());
            }
            if cert {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(t0.elapsed());
        committed.push(seen_commit.unwrap_or_default());
        block_on(v.sync()).unwrap();
    }
    // One real client grant, end to end (unwrap, wrap, sign, submit, certified, sync).
    let t = Instant::now();
    block_on(v.grant(p0, r0, &doctor.id(), GrantOptions::default())).unwrap();
    eprintln!(
        "medshare: one Vault::grant end to end: {:.0} ms",
        ms(t.elapsed())
    );
    // Throughput: a burst of pre-signed grants.
    block_on(v.sync()).unwrap();
    let state = v.state().clone();
    let batches: Vec<Vec<SignedTx>> = people
        .iter()
        .map(|(p, r)| {
            let s = state.last_seq(&p.id());
            (1..=(burst() / clients()) as u64)
                .map(|k| grant(&genesis, p, r, &doctor, s + k, state.time()))
                .collect()
        })
        .collect();
    let total: usize = batches.iter().map(Vec::len).sum();
    let h0 = chain_height(node(0).ports.rpc);
    let perf = profile_start();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (i, batch) in batches.iter().enumerate() {
            let port = node(i % 4).ports.rpc;
            s.spawn(move || {
                for tx in batch {
                    broadcast(port, tx);
                }
            });
        }
    });
    let submitted = t0.elapsed();
    let last: Vec<_> = batches.iter().map(|b| b.last().unwrap().cid).collect();
    let mut in_block = None;
    loop {
        let states: Vec<(bool, bool)> = last
            .iter()
            .map(|c| tx_state(node(0).ports.rpc, c))
            .collect();
        if in_block.is_none() && states.iter().all(|s| s.0) {
            in_block = Some(t0.elapsed());
        }
        if states.iter().all(|s| s.1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = t0.elapsed();
    let in_block = in_block.unwrap_or(wall);
    profile_stop(perf);
    eprintln!(
        "medshare: burst of {total} from {} clients submitted in {:.0} ms, committed in {:.0} ms, certified in {:.0} ms; {}",
        clients(),
        ms(submitted),
        ms(in_block),
        ms(wall),
        blocks_since(node(0).ports.rpc, h0)
    );
    net.stop_all();
    if std::env::var_os("MEDSHARE_BENCH_KEEP").is_some() {
        let keep = std::path::Path::new("/tmp/medshare-bench-logs");
        let _ = std::fs::create_dir_all(keep);
        for (i, n) in layout.nodes.iter().enumerate() {
            for log in ["node", "cometbft"] {
                let _ = std::fs::copy(
                    n.dir.join(format!("{log}.log")),
                    keep.join(format!("{log}{i}.log")),
                );
            }
        }
    }
    lat.sort();
    committed.sort();
    Report {
        tps: total as f64 / in_block.as_secs_f64(),
        certified_tps: Some(total as f64 / wall.as_secs_f64()),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        committed_p50: Some(percentile(&committed, 0.5)),
    }
}

/// With `MEDSHARE_BENCH_PERF=FILE`, `perf record -a -g -o FILE` runs over the medshare burst
/// (every process on the machine: validators, kubo daemons, nodes, this client).
fn profile_start() -> Option<std::process::Child> {
    let out = std::env::var_os("MEDSHARE_BENCH_PERF")?;
    let child = std::process::Command::new("perf")
        .args(["record", "-a", "-g", "-o"])
        .arg(out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    // perf prints nothing when it is ready; give it time to open its buffers.
    std::thread::sleep(Duration::from_millis(500));
    Some(child)
}

fn profile_stop(perf: Option<std::process::Child>) {
    if let Some(mut p) = perf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }
}

/// The validator's latest committed height.
fn chain_height(port: u16) -> u64 {
    rpc(port, "/status")["result"]["sync_info"]["latest_block_height"]
        .as_str()
        .and_then(|h| h.parse::<u64>().ok())
        .unwrap_or(0)
}

/// How the heights after `from` were filled: "heights h..: n1 n2 …" (transactions per block,
/// certificates included).
fn blocks_since(port: u16, from: u64) -> String {
    let to = chain_height(port);
    let v = rpc(
        port,
        &format!("/blockchain?minHeight={}&maxHeight={to}", from + 1),
    );
    let mut counts: Vec<(u64, String)> = v["result"]["block_metas"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    let h = m["header"]["height"].as_str()?.parse().ok()?;
                    Some((h, m["num_txs"].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    counts.sort();
    let list: Vec<String> = counts.into_iter().map(|(_, n)| n).collect();
    format!(
        "transactions per height from {}: {}",
        from + 1,
        list.join(" ")
    )
}

fn grant(
    genesis: &medshare::Cid,
    patient: &Identity,
    record: &medshare::RecordId,
    doctor: &Identity,
    seq: u64,
    time: u64,
) -> SignedTx {
    let mut wrapped = vec![0u8; 256];
    getrandom::fill(&mut wrapped).unwrap();
    let tx = Tx {
        genesis: *genesis,
        author: patient.id(),
        seq,
        time,
        body: TxBody::Grant {
            record: *record,
            version: 1,
            doctor: doctor.id(),
            wrapped_key: wrapped,
            expires: None,
            purpose: Purpose::Treatment,
            note: None,
        },
    };
    SignedTx::sign(tx, patient).unwrap()
}

fn broadcast(port: u16, tx: &SignedTx) {
    let bytes = Submission {
        txs: vec![tx.clone()],
    }
    .encode();
    let v = rpc(port, &format!("/broadcast_tx_sync?tx=0x{}", hex(&bytes)));
    let code = v["result"]["code"].as_u64().unwrap_or(99);
    assert_eq!(code, 0, "broadcast refused: {v}");
}

/// The kvstore run's processes, killed when it ends, a failed assertion included (as
/// [`Testnet`] does for the medshare network).
struct Procs(Vec<std::process::Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// kvstore on the testnet's configuration: inside CometBFT, or (`out_of_process`) as an
/// `abci-cli kvstore` process per validator reached over the ABCI socket protocol.
fn kvstore_bench(dir: &std::path::Path, out_of_process: bool) -> Report {
    let layout = init(dir);
    let mut procs = Procs(Vec::new());
    for n in &layout.nodes {
        let log = std::fs::File::create(n.dir.join("kvstore.log")).unwrap();
        let proxy = if out_of_process {
            let addr = format!("tcp://127.0.0.1:{}", n.ports.abci);
            procs.0.push(
                std::process::Command::new(tool("abci-cli"))
                    .args(["kvstore", "--log_level", "error", "--address", &addr])
                    .stdout(std::process::Stdio::null())
                    .stderr(log.try_clone().unwrap())
                    .spawn()
                    .unwrap(),
            );
            // CometBFT gives up at once if its application is not listening yet.
            let t0 = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", n.ports.abci)).is_err() {
                if let Some(Ok(Some(status))) = procs.0.last_mut().map(|c| c.try_wait()) {
                    panic!(
                        "abci-cli exited ({status}): {}",
                        std::fs::read_to_string(n.dir.join("kvstore.log")).unwrap_or_default()
                    );
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "abci-cli did not listen"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            addr
        } else {
            "kvstore".to_string()
        };
        procs.0.push(
            std::process::Command::new(tool("cometbft"))
                .arg("start")
                .arg("--home")
                .arg(n.dir.join("cometbft"))
                .arg(format!("--proxy_app={proxy}"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
    let port = |i: usize| layout.nodes[i].ports.rpc;
    while (0..4).any(|i| chain_height(port(i)) < 2) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let committed = |key: &str| {
        let v = rpc(
            port(0),
            &format!("/abci_query?data=0x{}", hex(key.as_bytes())),
        );
        v["result"]["response"]["value"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    };
    let mut lat = Vec::new();
    for i in 0..LATENCY_SAMPLES {
        let key = format!("lat{i}");
        let tx = hex(format!("{key}=v").as_bytes());
        let t0 = Instant::now();
        let v = rpc(port(0), &format!("/broadcast_tx_sync?tx=0x{tx}"));
        assert_eq!(v["result"]["code"].as_u64(), Some(0), "{v}");
        while !committed(&key) {
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(t0.elapsed());
    }
    let (senders, each) = (clients(), burst() / clients());
    let total = senders * each;
    let h0 = chain_height(port(0));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for p in 0..senders {
            let port = port(p % 4);
            s.spawn(move || {
                for k in 0..each {
                    // Transactions of the grants' size, so blocks carry as many bytes.
                    let tx = hex(format!("b{p}-{k}={}", "x".repeat(600)).as_bytes());
                    let v = rpc(port, &format!("/broadcast_tx_sync?tx=0x{tx}"));
                    assert_eq!(v["result"]["code"].as_u64(), Some(0), "{v}");
                }
            });
        }
    });
    let submitted = t0.elapsed();
    for p in 0..senders {
        let key = format!("b{p}-{}", each - 1);
        while !committed(&key) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let wall = t0.elapsed();
    eprintln!(
        "kvstore ({}): burst of {total} from {senders} clients submitted in {:.0} ms, committed in {:.0} ms; {}",
        if out_of_process {
            "abci-cli, socket"
        } else {
            "in CometBFT"
        },
        ms(submitted),
        ms(wall),
        blocks_since(port(0), h0)
    );
    drop(procs);
    lat.sort();
    Report {
        tps: total as f64 / wall.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        certified_tps: None,
        committed_p50: None,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` must not start networks.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    assert!(
        root().join("target/release/medshare").exists(),
        "build the CLI first: cargo build --release -p medshare-cli"
    );
    let tmp = tempfile::tempdir().unwrap();
    let kv = kvstore_bench(&tmp.path().join("kvstore"), false);
    let kv_out = tool("abci-cli")
        .exists()
        .then(|| kvstore_bench(&tmp.path().join("kvstore-out"), true));
    let ms_ = medshare_bench(&tmp.path().join("medshare"));
    println!(
        "network benchmark: 4 validators on 127.0.0.1, timeout_commit 300 ms, 2 cores; a burst of {} from {} clients",
        burst() / clients() * clients(),
        clients()
    );
    println!(
        "{:<28} {:>14} {:>16} {:>12} {:>12} {:>16}",
        "application", "tx/s committed", "tx/s certified", "p50 ms", "p99 ms", "p50 in block ms"
    );
    let kvstore_row = |name: &str, kv: &Report| {
        println!(
            "{:<28} {:>14.1} {:>16} {:>12.0} {:>12.0} {:>16}",
            name,
            kv.tps,
            "-",
            ms(kv.p50),
            ms(kv.p99),
            "-"
        )
    };
    kvstore_row("kvstore (CometBFT)", &kv);
    if let Some(kv) = &kv_out {
        kvstore_row("kvstore (abci-cli, socket)", kv);
    }
    println!(
        "{:<28} {:>14.1} {:>16.1} {:>12.0} {:>12.0} {:>16.0}",
        "medshare grants",
        ms_.tps,
        ms_.certified_tps.unwrap_or_default(),
        ms(ms_.p50),
        ms(ms_.p99),
        ms(ms_.committed_p50.unwrap_or_default())
    );
    println!(
        "ratio medshare/kvstore: committed throughput {:.2}x, certified throughput {:.2}x, p50 latency (certified) {:.2}x",
        ms_.tps / kv.tps,
        ms_.certified_tps.unwrap_or_default() / kv.tps,
        ms(ms_.p50) / ms(kv.p50)
    );
    if let Some(kv) = &kv_out {
        println!(
            "ratio medshare/kvstore over the socket: committed throughput {:.2}x, certified throughput {:.2}x",
            ms_.tps / kv.tps,
            ms_.certified_tps.unwrap_or_default() / kv.tps,
        );
    }
}
