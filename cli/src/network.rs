//! The network commands: `node start`, `testnet init|up`, `authority add|remove`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use medshare::ledger::AuthorityChangeKind;
use medshare_node::testnet::{self, InitOptions, Testnet};
use serde_json::json;

use crate::home::{Home, passphrase};
use crate::out::{Out, esc};
use crate::{AuthorityCommand, NodeCommand, TestnetCommand};

/// A tool binary: the explicit path, else `$VAR`, else `.tools/bin/NAME` under the current
/// directory (where `scripts/install-tools.sh` puts it), else `NAME` on the PATH.
fn tool(explicit: Option<PathBuf>, var: &str, name: &str) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(".tools/bin").join(name);
    if local.exists() {
        return local.canonicalize().unwrap_or(local);
    }
    PathBuf::from(name)
}

pub fn node(command: NodeCommand, out: &Out) -> Result<()> {
    match command {
        NodeCommand::Start { dir } => {
            let pass = passphrase("the node's authority key", false)?;
            let node = medshare_node::Node::open(&dir, &pass).map_err(|e| anyhow!(e))?;
            drop(pass);
            out.emit(
                format!(
                    "medshare node of {} serving CometBFT on {}",
                    esc(&dir.display().to_string()),
                    node.abci_addr()
                ),
                json!({"dir": dir.display().to_string(), "abci": node.abci_addr()}),
            );
            node.serve().map_err(|e| anyhow!(e))
        }
    }
}

pub fn testnet(command: TestnetCommand, out: &Out) -> Result<()> {
    match command {
        TestnetCommand::Init {
            dir,
            validators,
            name,
            base_port,
            bits,
            timeout_commit_ms,
            cometbft,
            ipfs,
        } => {
            let pass = passphrase("the testnet's authority keys", true)?;
            let layout = testnet::init(&InitOptions {
                dir: dir.clone(),
                validators,
                name,
                base_port,
                bits,
                passphrase: pass.to_string(),
                cometbft: tool(cometbft, "MEDSHARE_COMETBFT", "cometbft"),
                ipfs: tool(ipfs, "MEDSHARE_IPFS", "ipfs"),
                timeout_commit_ms,
            })
            .map_err(|e| anyhow!(e))?;
            let mut text = format!(
                "testnet `{}` in {}: genesis {}\n",
                esc(&layout.name),
                esc(&dir.display().to_string()),
                layout.genesis
            );
            for (i, n) in layout.nodes.iter().enumerate() {
                text.push_str(&format!(
                    "  node{i}: RPC {}  kubo {}  authority {}\n",
                    n.rpc(),
                    n.kubo(),
                    n.authority
                ));
            }
            text.push_str(&format!(
                "start it with `medshare testnet up --dir {}`; clients use `--network {}`",
                esc(&dir.display().to_string()),
                esc(&dir.join("network.json").display().to_string())
            ));
            out.emit(text, serde_json::to_value(&layout)?);
            Ok(())
        }
        TestnetCommand::Up {
            dir,
            cometbft,
            ipfs,
        } => {
            let pass = passphrase("the testnet's authority keys", false)?;
            let me = std::env::current_exe().context("finding the medshare binary")?;
            let mut net = Testnet::new(
                &dir,
                me,
                tool(cometbft, "MEDSHARE_COMETBFT", "cometbft"),
                tool(ipfs, "MEDSHARE_IPFS", "ipfs"),
                pass.to_string(),
            )
            .map_err(|e| anyhow!(e))?;
            crate::CATCH_INTERRUPT.store(true, Ordering::SeqCst);
            net.start_all().map_err(|e| anyhow!(e))?;
            let nodes: Vec<_> = net
                .layout
                .nodes
                .iter()
                .map(|n| json!({"rpc": n.rpc(), "kubo": n.kubo(), "gateway": n.gateway()}))
                .collect();
            out.emit(
                format!(
                    "testnet `{}` is up ({} validators, genesis {}); clients: --network {}\nCtrl-C stops every process",
                    esc(&net.layout.name),
                    net.layout.nodes.len(),
                    net.layout.genesis,
                    esc(&dir.join("network.json").display().to_string())
                ),
                json!({"genesis": net.layout.genesis, "nodes": nodes}),
            );
            while !crate::INTERRUPTED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
            }
            net.stop_all();
            out.emit("testnet stopped", json!({"stopped": true}));
            Ok(())
        }
    }
}

pub fn authority(home: &Home, command: AuthorityCommand, out: &Out) -> Result<()> {
    let change = match command {
        AuthorityCommand::Add { key, validator } => {
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let public = medshare::PublicKey::from_pem(&pem)
                .or_else(|_| {
                    // A public file written by this tool: `account <id>` line, then the PEM.
                    let start = pem.find("-----BEGIN").unwrap_or(0);
                    medshare::PublicKey::from_pem(&pem[start..])
                })
                .with_context(|| format!("{} holds no RSA public key", key.display()))?;
            let validator = match validator {
                None => None,
                Some(v) => {
                    let raw = data_encoding::BASE64
                        .decode(v.as_bytes())
                        .map_err(|_| anyhow!("--validator must be the base64 ed25519 key"))?;
                    Some(<[u8; 32]>::try_from(raw.as_slice()).map_err(|_| {
                        anyhow!("--validator must be a 32-byte ed25519 key (CometBFT's priv_validator_key.json pub_key)")
                    })?)
                }
            };
            AuthorityChangeKind::Add {
                key: public.to_spki_der().to_vec(),
                validator,
            }
        }
        AuthorityCommand::Remove { authority } => AuthorityChangeKind::Remove {
            authority: authority.parse::<medshare::IdentityId>()?,
        },
    };
    let authority_key = home.load_authority()?;
    let mut vault = home.vault(true)?;
    let before = vault.state().authorities().len();
    let tx = pollster::block_on(vault.vote_authority(&authority_key, change))?;
    let after = vault.state().authorities().len();
    let text = if before != after {
        format!("vote {tx} recorded: the change took effect ({before} → {after} authorities)")
    } else {
        format!(
            "vote {tx} recorded; the change takes effect once more than two thirds of the {before} authorities vote for it"
        )
    };
    out.emit(text, json!({"tx": tx.to_string(), "authorities": after}));
    Ok(())
}
