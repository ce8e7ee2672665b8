//! The medshare network node: an ABCI 2.0 application for CometBFT v0.38 whose state machine is
//! the medshare ledger, and a local testnet of such nodes.
//!
//! A hospital runs three processes: a CometBFT validator (consensus, P2P, the RPC clients
//! submit to), this node (the application CometBFT calls over ABCI, started with `medshare node
//! start`), and a kubo node (the blocks: ledger objects and record ciphertexts, pinned).
//!
//! * [`abci`]: the ABCI socket protocol (varint-framed protobuf, `tendermint-proto` types).
//! * [`app`]: the application: `CheckTx` rules, deterministic blocks, certificates from vote
//!   extensions, persistence and restart.
//! * [`testnet`]: `medshare testnet init` / `up`: keys, genesis and configs of a local network
//!   on 127.0.0.1, and its processes.
//! * [`kubo`]: a kubo daemon as a child process (also used by other crates' tests).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abci;
pub mod app;
pub mod kubo;
pub mod testnet;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use medshare::{Cid, Identity, Store};

/// A node directory's configuration (`node.json`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NodeConfig {
    /// Where the ABCI server listens (CometBFT's `proxy_app`), e.g. `127.0.0.1:26658`.
    pub abci: String,
    /// The node's block store: `fs` (the directory's `store/`) or `kubo=URL[,option…]`.
    pub store: String,
    /// The network's genesis CID.
    pub genesis: String,
    /// This validator's CometBFT RPC URL (what clients of this hospital submit to).
    pub rpc: String,
    /// What the node does with its authority's share when a doctor breaks the glass: `auto`
    /// releases it once the request is certified; `manual` (the default) waits for the
    /// operator's `medshare emergency release`.
    #[serde(default)]
    pub emergency: app::EmergencyMode,
    /// With `auto`: the authorities (ids) whose endorsement of a doctor this hospital accepts
    /// for releasing on its own; its own authority always is. A doctor endorsed by another
    /// authority waits for the operator (`medshare emergency release`).
    #[serde(default)]
    pub emergency_trust: Vec<String>,
}

impl NodeConfig {
    /// Reads `<dir>/node.json`.
    pub fn load(dir: &Path) -> Result<NodeConfig, String> {
        let path = dir.join("node.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes `<dir>/node.json`.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join("node.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Opens the node's store.
    pub fn open_store(&self, dir: &Path) -> Result<Store, String> {
        if self.store == "fs" {
            Store::open_dir(dir.join("store")).map_err(|e| e.to_string())
        } else {
            Store::open_spec(&self.store).map_err(|e| e.to_string())
        }
    }
}

/// The authority key file of a node directory.
pub fn authority_path(dir: &Path) -> PathBuf {
    dir.join("authority.key")
}

/// A node ready to serve: its application and the bound ABCI listener.
pub struct Node {
    server: abci::Server,
    app: app::SharedApp,
}

impl Node {
    /// Opens the node in `dir` (its `node.json`, `authority.key` decrypted with `passphrase`,
    /// its store) and binds its ABCI address.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Node, String> {
        let config = NodeConfig::load(dir)?;
        let genesis: Cid = medshare::parse_cid(&config.genesis).map_err(|e| e.to_string())?;
        let authority = Identity::load(authority_path(dir), passphrase)
            .map_err(|e| format!("{}: {e}", authority_path(dir).display()))?;
        let store = config.open_store(dir)?;
        let mut app = app::NodeApp::open(store, genesis, authority, app::Faults::from_env())?;
        if config.emergency == app::EmergencyMode::Auto {
            let trust = config
                .emergency_trust
                .iter()
                .map(|t| t.parse())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("node.json: emergency_trust: {e}"))?;
            app.release_automatically(config.rpc.clone(), trust);
        }
        let server = abci::Server::bind(&config.abci)
            .map_err(|e| format!("ABCI address {}: {e}", config.abci))?;
        Ok(Node {
            server,
            app: Arc::new(Mutex::new(app)),
        })
    }

    /// Where CometBFT connects.
    pub fn abci_addr(&self) -> String {
        self.server
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// Serves CometBFT until the process ends.
    pub fn serve(self) -> Result<(), String> {
        self.server.serve(self.app).map_err(|e| e.to_string())
    }
}
