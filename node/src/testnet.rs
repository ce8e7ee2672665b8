//! A local medshare network on 127.0.0.1: `medshare testnet init` writes every key, genesis and
//! configuration; [`Testnet`] starts and stops its processes (`medshare testnet up`, and the
//! network tests).
//!
//! Layout of a testnet directory `D`:
//!
//! ```text
//! D/network.json        what clients use: genesis, every validator's RPC, node 0's kubo
//! D/testnet.json        what `up` starts: per node, its directory and ports
//! D/node<i>/            node i: a CLI home of its hospital's authority, and the node
//!     authority.key     the authority's RSA key (encrypted; MEDSHARE_PASSPHRASE)
//!     genesis           the network's genesis CID
//!     network.json      the network seen from this hospital (its RPC first, its kubo)
//!     node.json         the node's ABCI address, store and genesis
//!     cometbft/         CometBFT's home (config, validator key, data)
//!     kubo/             the kubo repository
//!     *.log             process logs
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medshare::ledger::{AuthorityKey, Genesis, GenesisBlock, Policy};
use medshare::{Identity, Role};

use crate::NodeConfig;
use crate::kubo::{Kubo, KuboPorts};

/// What `testnet init` needs.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The testnet directory (must not exist or be empty).
    pub dir: PathBuf,
    /// Number of validators (hospitals), 1 to 16.
    pub validators: usize,
    /// The network's name (also CometBFT's chain id).
    pub name: String,
    /// First port; node i uses `base + 10·i + 0..6`. 0: any free ports.
    pub base_port: u16,
    /// Authority RSA key size.
    pub bits: usize,
    /// Passphrase of the authority key files.
    pub passphrase: String,
    /// The `cometbft` binary.
    pub cometbft: PathBuf,
    /// The `ipfs` (kubo) binary.
    pub ipfs: PathBuf,
    /// CometBFT's `timeout_commit` in milliseconds (how long a validator waits after a block).
    pub timeout_commit_ms: u64,
}

/// Ports of one node.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Ports {
    /// CometBFT P2P.
    pub p2p: u16,
    /// CometBFT RPC.
    pub rpc: u16,
    /// The medshare node's ABCI server.
    pub abci: u16,
    /// kubo RPC API.
    pub kubo_api: u16,
    /// kubo gateway.
    pub kubo_gateway: u16,
    /// kubo swarm.
    pub kubo_swarm: u16,
}

/// One node of `testnet.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NodeLayout {
    /// Its directory.
    pub dir: PathBuf,
    /// Its ports.
    pub ports: Ports,
    /// Its CometBFT validator address (hex).
    pub validator_address: String,
    /// Its authority id.
    pub authority: String,
}

impl NodeLayout {
    /// CometBFT RPC URL.
    pub fn rpc(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.rpc)
    }
    /// kubo RPC URL.
    pub fn kubo(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.kubo_api)
    }
    /// kubo gateway URL.
    pub fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.kubo_gateway)
    }
}

/// `testnet.json`: the whole layout.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    /// Network name.
    pub name: String,
    /// Genesis CID.
    pub genesis: String,
    /// The nodes.
    pub nodes: Vec<NodeLayout>,
}

impl Layout {
    /// Reads `<dir>/testnet.json`.
    pub fn load(dir: &Path) -> Result<Layout, String> {
        let path = dir.join("testnet.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "reading {}: {e} (run `medshare testnet init` first)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The network file clients read (the CLI's `--network`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NetworkFile {
    /// Genesis CID.
    pub genesis: String,
    /// Validators' RPC URLs, tried in order.
    pub nodes: Vec<String>,
    /// The kubo RPC clients write record blocks to.
    pub kubo: Option<String>,
    /// Gateways (read-only clients).
    pub gateways: Vec<String>,
}

fn err(context: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{context}: {e}")
}

fn run(cmd: &mut Command, what: &str) -> Result<Vec<u8>, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// A port free now, below the system's ephemeral range where it can (so no outgoing
/// connection is ever given it while a stopped node waits to restart on it). Its listener is
/// kept in `held` until every port of the testnet is chosen, so no two of them are the same.
fn free_port(held: &mut Vec<TcpListener>) -> Result<u16, String> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(0);
    if low > 20_000 {
        let span = u32::from(low - 20_000);
        let mut x = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
        for _ in 0..200 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let port = 20_000 + ((x >> 8) % span) as u16;
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                held.push(l);
                return Ok(port);
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").map_err(err("finding a free port"))?;
    let port = l
        .local_addr()
        .map(|a| a.port())
        .map_err(err("finding a free port"))?;
    held.push(l);
    Ok(port)
}

/// Sets `key = value` in `[section]` ("" for the top) of a TOML text, as CometBFT writes it.
pub fn set_toml(text: &str, section: &str, key: &str, value: &str) -> Result<String, String> {
    let mut current = String::new();
    let mut done = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            current = t[1..t.len() - 1].to_owned();
        }
        let is_key =
            !done && current == section && t.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if is_key {
            out.push_str(&format!("{key} = {value}"));
            done = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if done {
        Ok(out)
    } else {
        Err(format!(
            "CometBFT's config.toml has no `{key}` in [{section}]"
        ))
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Writes a new testnet: keys, genesis, CometBFT and kubo configurations.
pub fn init(opts: &InitOptions) -> Result<Layout, String> {
    if !(1..=16).contains(&opts.validators) {
        return Err("a testnet has 1 to 16 validators".into());
    }
    if opts.name.is_empty() || opts.name.len() > 50 || !opts.name.is_ascii() {
        return Err("the network name must be 1 to 50 ASCII characters".into());
    }
    if opts.dir.exists()
        && std::fs::read_dir(&opts.dir)
            .map_err(err("reading the testnet directory"))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} exists and is not empty: a testnet is only written into a new directory",
            opts.dir.display()
        ));
    }
    std::fs::create_dir_all(&opts.dir).map_err(err("creating the testnet directory"))?;
    let dir = opts
        .dir
        .canonicalize()
        .map_err(err("resolving the testnet directory"))?;

    struct Draft {
        dir: PathBuf,
        ports: Ports,
        pubkey: [u8; 32],
        pubkey_b64: String,
        address: String,
        node_id: String,
        authority: Identity,
        kubo_peer: String,
    }
    let mut drafts = Vec::new();
    let mut held = Vec::new();
    for i in 0..opts.validators {
        let ndir = dir.join(format!("node{i}"));
        std::fs::create_dir_all(&ndir).map_err(err("creating a node directory"))?;
        let mut port = |k: u16| -> Result<u16, String> {
            if opts.base_port == 0 {
                free_port(&mut held)
            } else {
                opts.base_port
                    .checked_add(10 * i as u16 + k)
                    .ok_or_else(|| "ports beyond 65535".to_owned())
            }
        };
        let ports = Ports {
            p2p: port(0)?,
            rpc: port(1)?,
            abci: port(2)?,
            kubo_api: port(3)?,
            kubo_gateway: port(4)?,
            kubo_swarm: port(5)?,
        };
        let chome = ndir.join("cometbft");
        run(
            Command::new(&opts.cometbft)
                .arg("init")
                .arg("--home")
                .arg(&chome),
            "cometbft init",
        )?;
        let key: serde_json::Value = serde_json::from_slice(
            &std::fs::read(chome.join("config/priv_validator_key.json"))
                .map_err(err("reading the validator key"))?,
        )
        .map_err(|e| format!("validator key: {e}"))?;
        let pubkey_b64 = key["pub_key"]["value"]
            .as_str()
            .ok_or("validator key without pub_key")?
            .to_owned();
        let raw = data_encoding::BASE64
            .decode(pubkey_b64.as_bytes())
            .map_err(|_| "validator key is not base64")?;
        let pubkey: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| "validator key is not 32 bytes")?;
        let address = data_encoding::HEXUPPER.encode(&crate::app::validator_address(&pubkey));
        let node_id = String::from_utf8_lossy(&run(
            Command::new(&opts.cometbft)
                .arg("show-node-id")
                .arg("--home")
                .arg(&chome),
            "cometbft show-node-id",
        )?)
        .trim()
        .to_owned();
        let authority = Identity::generate(Role::Authority, &format!("node{i}"), opts.bits)
            .map_err(|e| e.to_string())?;
        authority
            .save(crate::authority_path(&ndir), &opts.passphrase)
            .map_err(|e| e.to_string())?;
        let repo = ndir.join("kubo");
        crate::kubo::init(
            &opts.ipfs,
            &repo,
            KuboPorts {
                api: ports.kubo_api,
                gateway: ports.kubo_gateway,
                swarm: ports.kubo_swarm,
            },
        )
        .map_err(err("ipfs init"))?;
        let kubo_peer = String::from_utf8_lossy(&run(
            Command::new(&opts.ipfs)
                .args(["config", "Identity.PeerID"])
                .env("IPFS_PATH", &repo),
            "ipfs config Identity.PeerID",
        )?)
        .trim()
        .to_owned();
        drafts.push(Draft {
            dir: ndir,
            ports,
            pubkey,
            pubkey_b64,
            address,
            node_id,
            authority,
            kubo_peer,
        });
    }

    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| format!("randomness: {e}"))?;
    let genesis = GenesisBlock::new(Genesis {
        network: opts.name.clone(),
        time: medshare::platform::now_secs(),
        nonce,
        authorities: drafts
            .iter()
            .map(|d| AuthorityKey {
                key: d.authority.public().clone(),
                validator: Some(d.pubkey),
            })
            .collect(),
        policy: Policy::default(),
    });

    // CometBFT's genesis: every validator, vote extensions from height 1, the medshare genesis.
    let first = drafts
        .first()
        .ok_or("no validator")?
        .dir
        .join("cometbft/config/genesis.json");
    let mut cgen: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&first).map_err(err("reading CometBFT's genesis"))?)
            .map_err(|e| format!("CometBFT's genesis: {e}"))?;
    cgen["chain_id"] = serde_json::Value::String(opts.name.clone());
    cgen["initial_height"] = "1".into();
    cgen["consensus_params"]["abci"]["vote_extensions_enable_height"] = "1".into();
    cgen["validators"] = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            serde_json::json!({
                "address": d.address,
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": d.pubkey_b64},
                "power": "10",
                "name": format!("node{i}"),
            })
        })
        .collect();
    cgen["app_state"] =
        serde_json::json!({ "genesis": data_encoding::BASE64.encode(&genesis.bytes) });
    let cgen_text = serde_json::to_string_pretty(&cgen).map_err(|e| e.to_string())?;

    let peers = |skip: usize| -> String {
        drafts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != skip)
            .map(|(_, d)| format!("{}@127.0.0.1:{}", d.node_id, d.ports.p2p))
            .collect::<Vec<_>>()
            .join(",")
    };
    let all_rpcs: Vec<String> = drafts
        .iter()
        .map(|d| format!("http://127.0.0.1:{}", d.ports.rpc))
        .collect();
    for (i, d) in drafts.iter().enumerate() {
        let cdir = d.dir.join("cometbft/config");
        std::fs::write(cdir.join("genesis.json"), &cgen_text)
            .map_err(err("writing CometBFT's genesis"))?;
        let path = cdir.join("config.toml");
        let mut t = std::fs::read_to_string(&path).map_err(err("reading config.toml"))?;
        let q = |s: String| json_str(&s);
        for (section, key, value) in [
            (
                "",
                "proxy_app",
                q(format!("tcp://127.0.0.1:{}", d.ports.abci)),
            ),
            ("", "moniker", q(format!("node{i}"))),
            ("", "log_level", q("info".into())),
            (
                "rpc",
                "laddr",
                q(format!("tcp://127.0.0.1:{}", d.ports.rpc)),
            ),
            ("rpc", "cors_allowed_origins", r#"["*"]"#.into()),
            (
                "p2p",
                "laddr",
                q(format!("tcp://127.0.0.1:{}", d.ports.p2p)),
            ),
            ("p2p", "persistent_peers", q(peers(i))),
            ("p2p", "addr_book_strict", "false".into()),
            ("p2p", "allow_duplicate_ip", "true".into()),
            ("p2p", "pex", "false".into()),
            ("p2p", "flush_throttle_timeout", q("10ms".into())),
            ("consensus", "timeout_propose", q("1s".into())),
            (
                "consensus",
                "timeout_commit",
                q(format!("{}ms", opts.timeout_commit_ms)),
            ),
            ("tx_index", "indexer", q("null".into())),
        ] {
            t = set_toml(&t, section, key, &value)?;
        }
        std::fs::write(&path, t).map_err(err("writing config.toml"))?;

        // kubo: peered with every other node of the testnet (and nothing else).
        let peering: Vec<serde_json::Value> = drafts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| {
                serde_json::json!({
                    "ID": o.kubo_peer,
                    "Addrs": [format!("/ip4/127.0.0.1/tcp/{}", o.ports.kubo_swarm)],
                })
            })
            .collect();
        run(
            Command::new(&opts.ipfs)
                .args(["config", "--json", "Peering.Peers"])
                .arg(serde_json::Value::Array(peering).to_string())
                .env("IPFS_PATH", d.dir.join("kubo")),
            "ipfs config Peering.Peers",
        )?;

        NodeConfig {
            abci: format!("127.0.0.1:{}", d.ports.abci),
            store: format!(
                "kubo=http://127.0.0.1:{},namespace=/medshare-node",
                d.ports.kubo_api
            ),
            genesis: genesis.cid.to_string(),
            rpc: format!("http://127.0.0.1:{}", d.ports.rpc),
            // One operator's local testnet: every node accepts every testnet authority's
            // doctors. A real hospital lists only the hospitals whose credentialing it accepts.
            emergency: crate::app::EmergencyMode::Auto,
            emergency_trust: drafts
                .iter()
                .map(|o| o.authority.id().to_string())
                .collect(),
        }
        .save(&d.dir)?;
        std::fs::write(d.dir.join("genesis"), format!("{}\n", genesis.cid))
            .map_err(err("writing the genesis file"))?;
        let mut nodes = vec![all_rpcs[i].clone()];
        nodes.extend(
            all_rpcs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, r)| r.clone()),
        );
        write_json(
            &d.dir.join("network.json"),
            &NetworkFile {
                genesis: genesis.cid.to_string(),
                nodes,
                kubo: Some(format!("http://127.0.0.1:{}", d.ports.kubo_api)),
                gateways: Vec::new(),
            },
        )?;
    }
    write_json(
        &dir.join("network.json"),
        &NetworkFile {
            genesis: genesis.cid.to_string(),
            nodes: all_rpcs,
            kubo: drafts
                .first()
                .map(|d| format!("http://127.0.0.1:{}", d.ports.kubo_api)),
            gateways: Vec::new(),
        },
    )?;
    let layout = Layout {
        name: opts.name.clone(),
        genesis: genesis.cid.to_string(),
        nodes: drafts
            .iter()
            .map(|d| NodeLayout {
                dir: d.dir.clone(),
                ports: d.ports,
                validator_address: d.address.clone(),
                authority: d.authority.id().to_string(),
            })
            .collect(),
    };
    write_json(&dir.join("testnet.json"), &layout)?;
    Ok(layout)
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Waits until `addr` accepts TCP connections.
fn wait_port(addr: &str, within: Duration, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited at start: {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on {addr} within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.0 GET on 127.0.0.1 (readiness checks; no client library needed). HTTP/1.0, so
/// the body is never chunked: it is everything after the headers.
pub fn http_get(port: u16, path: &str) -> io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The running processes of one node.
struct Procs {
    node: Option<Child>,
    comet: Option<Child>,
    kubo: Option<Kubo>,
}

/// A running testnet (every process stopped on drop).
pub struct Testnet {
    /// Its layout.
    pub layout: Layout,
    medshare: PathBuf,
    cometbft: PathBuf,
    ipfs: PathBuf,
    passphrase: String,
    procs: Vec<Procs>,
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .map_err(|e| format!("opening {name}: {e}"))
}

impl Testnet {
    /// Binds the testnet in `dir` to the binaries that run it (nothing is started yet).
    pub fn new(
        dir: &Path,
        medshare: PathBuf,
        cometbft: PathBuf,
        ipfs: PathBuf,
        passphrase: String,
    ) -> Result<Testnet, String> {
        let layout = Layout::load(dir)?;
        let procs = layout
            .nodes
            .iter()
            .map(|_| Procs {
                node: None,
                comet: None,
                kubo: None,
            })
            .collect();
        Ok(Testnet {
            layout,
            medshare,
            cometbft,
            ipfs,
            passphrase,
            procs,
        })
    }

    /// Starts every node's kubo, then every medshare node and CometBFT validator, and waits
    /// until the first block is committed.
    pub fn start_all(&mut self) -> Result<(), String> {
        for i in 0..self.procs.len() {
            self.start_kubo(i)?;
        }
        for i in 0..self.procs.len() {
            self.start_validator(i)?;
        }
        self.wait_height(1, Duration::from_secs(60))
    }

    /// Starts node `i`'s kubo daemon.
    pub fn start_kubo(&mut self, i: usize) -> Result<(), String> {
        let repo = self.layout.nodes[i].dir.join("kubo");
        let k = Kubo::start(&self.ipfs, &repo, true).map_err(err("starting kubo"))?;
        self.procs[i].kubo = Some(k);
        Ok(())
    }

    /// Stops node `i`'s kubo daemon.
    pub fn stop_kubo(&mut self, i: usize) {
        if let Some(mut k) = self.procs[i].kubo.take() {
            k.stop();
        }
    }

    /// Starts node `i`'s medshare node and then its CometBFT validator.
    pub fn start_validator(&mut self, i: usize) -> Result<(), String> {
        self.start_validator_with(i, "")
    }

    /// [`Testnet::start_validator`] with test faults turned on in the node
    /// (`MEDSHARE_TEST_FAULTS`, see [`crate::app::Faults`]); "" for none.
    pub fn start_validator_with(&mut self, i: usize, faults: &str) -> Result<(), String> {
        let n = self.layout.nodes[i].clone();
        let mut node = Command::new(&self.medshare)
            .args(["node", "start", "--dir"])
            .arg(&n.dir)
            .env("MEDSHARE_PASSPHRASE", &self.passphrase)
            .env("MEDSHARE_TEST_FAULTS", faults)
            .stdout(Stdio::null())
            .stderr(log_file(&n.dir, "node.log")?)
            .spawn()
            .map_err(err("starting the medshare node"))?;
        let abci = format!("127.0.0.1:{}", n.ports.abci);
        if let Err(e) = wait_port(
            &abci,
            Duration::from_secs(60),
            &mut node,
            "the medshare node",
        ) {
            let _ = node.kill();
            let _ = node.wait();
            return Err(e);
        }
        self.procs[i].node = Some(node);
        let mut comet = Command::new(&self.cometbft)
            .arg("start")
            .arg("--home")
            .arg(n.dir.join("cometbft"))
            .stdout(log_file(&n.dir, "cometbft.log")?)
            .stderr(log_file(&n.dir, "cometbft.log")?)
            .spawn()
            .map_err(err("starting cometbft"))?;
        let rpc = format!("127.0.0.1:{}", n.ports.rpc);
        if let Err(e) = wait_port(&rpc, Duration::from_secs(60), &mut comet, "cometbft") {
            let _ = comet.kill();
            let _ = comet.wait();
            return Err(e);
        }
        self.procs[i].comet = Some(comet);
        Ok(())
    }

    /// Kills node `i`'s CometBFT validator and medshare node (as a crash would).
    pub fn kill_validator(&mut self, i: usize) {
        kill(&mut self.procs[i].comet);
        kill(&mut self.procs[i].node);
    }

    /// The `result` of a GET on node `i`'s CometBFT RPC, if it answers with JSON.
    fn rpc_result(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        let body = http_get(self.layout.nodes[i].ports.rpc, path).ok()?;
        let json = &body[body.find("\r\n\r\n")? + 4..];
        let mut v: serde_json::Value = serde_json::from_str(json).ok()?;
        Some(v["result"].take())
    }

    /// Node `i`'s latest CometBFT height, if its RPC answers.
    pub fn comet_height(&self, i: usize) -> Option<u64> {
        self.rpc_result(i, "/status")?["sync_info"]["latest_block_height"]
            .as_str()?
            .parse()
            .ok()
    }

    /// Whether node `i` takes part in consensus: its RPC answers, it is not catching up (block
    /// sync over), and it is connected to every other validator of the testnet that is running.
    pub fn in_consensus(&self, i: usize) -> bool {
        let Some(status) = self.rpc_result(i, "/status") else {
            return false;
        };
        if status["sync_info"]["catching_up"].as_bool() != Some(false) {
            return false;
        }
        let running = (0..self.procs.len())
            .filter(|&j| j != i && self.procs[j].comet.is_some())
            .count();
        let peers = self
            .rpc_result(i, "/net_info")
            .and_then(|n| n["n_peers"].as_str()?.parse::<usize>().ok());
        peers.is_some_and(|p| p >= running)
    }

    /// Waits until every running validator is [in consensus](Testnet::in_consensus) and the chain
    /// has moved at least one height past where the slowest of them was (so each has seen a
    /// block committed while it was connected).
    pub fn wait_in_consensus(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let running: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.procs[i].comet.is_some())
            .collect();
        loop {
            let out: Vec<usize> = running
                .iter()
                .copied()
                .filter(|&i| !self.in_consensus(i))
                .collect();
            if out.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "validators {out:?} not in consensus within {within:?} (see their cometbft.log)"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let top = running
            .iter()
            .filter_map(|&i| self.comet_height(i))
            .max()
            .unwrap_or(0);
        self.wait_height(top + 1, deadline.saturating_duration_since(Instant::now()))
    }

    /// The last `lines` lines of node `i`'s `cometbft.log` and `node.log`, for a failing test to
    /// print.
    pub fn log_tails(&self, i: usize, lines: usize) -> String {
        let mut out = String::new();
        for name in ["cometbft.log", "node.log"] {
            let text =
                std::fs::read_to_string(self.layout.nodes[i].dir.join(name)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- node {i} {name} (last {lines} lines) ---\n"));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Waits until every running validator reports at least CometBFT height `h`.
    pub fn wait_height(&self, h: u64, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let behind: Vec<usize> = (0..self.procs.len())
                .filter(|&i| self.procs[i].comet.is_some())
                .filter(|&i| self.comet_height(i).is_none_or(|x| x < h))
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "validators {behind:?} did not reach height {h} within {within:?} (see their cometbft.log and node.log)"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether node `i`'s validator processes are running.
    pub fn is_running(&self, i: usize) -> bool {
        self.procs[i].comet.is_some()
    }

    /// Node `i`'s kubo daemon, if running.
    pub fn kubo(&self, i: usize) -> Option<&Kubo> {
        self.procs[i].kubo.as_ref()
    }

    /// Stops everything: validators first, then the kubo daemons.
    pub fn stop_all(&mut self) {
        for i in 0..self.procs.len() {
            kill(&mut self.procs[i].comet);
        }
        for i in 0..self.procs.len() {
            kill(&mut self.procs[i].node);
        }
        for i in 0..self.procs.len() {
            self.stop_kubo(i);
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_are_set_in_their_section_only() {
        let t = "a = 1\n[rpc]\nladdr = \"x\"\n[p2p]\nladdr = \"y\"\n";
        let t = set_toml(t, "p2p", "laddr", "\"z\"").unwrap();
        assert_eq!(t, "a = 1\n[rpc]\nladdr = \"x\"\n[p2p]\nladdr = \"z\"\n");
        let t = set_toml(&t, "", "a", "2").unwrap();
        assert!(t.starts_with("a = 2\n"));
        assert!(set_toml(&t, "rpc", "missing", "1").is_err());
    }
}
