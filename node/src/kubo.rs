//! A kubo (IPFS) daemon as a child process on 127.0.0.1: initialised, configured, started,
//! waited for, stopped. Standard library only, so the test suites of the other crates can use
//! it too (`#[path]`), without depending on this crate.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports of a kubo node (0: any free port).
#[derive(Clone, Copy, Debug, Default)]
pub struct KuboPorts {
    /// RPC API.
    pub api: u16,
    /// HTTP gateway.
    pub gateway: u16,
    /// libp2p swarm (TCP).
    pub swarm: u16,
}

/// A running kubo daemon (stopped on drop).
pub struct Kubo {
    bin: PathBuf,
    repo: PathBuf,
    child: Option<Child>,
    online: bool,
    /// RPC URL, e.g. `http://127.0.0.1:5001`.
    pub url: String,
    /// Gateway URL, e.g. `http://127.0.0.1:8080`.
    pub gateway: String,
}

fn run(bin: &Path, repo: &Path, args: &[&str]) -> io::Result<Vec<u8>> {
    let out = Command::new(bin)
        .args(args)
        .env("IPFS_PATH", repo)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ipfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Creates a kubo repository listening on 127.0.0.1 only, with no bootstrap peers, with CORS
/// open to any page on 127.0.0.1 / localhost for the RPC API and the gateway (the doctor
/// portal reads and writes from the browser).
pub fn init(bin: &Path, repo: &Path, ports: KuboPorts) -> io::Result<()> {
    std::fs::create_dir_all(repo)?;
    run(bin, repo, &["init", "--profile=test"])?;
    let cfg = |k: &str, v: &str| run(bin, repo, &["config", k, v]).map(drop);
    let json = |k: &str, v: &str| run(bin, repo, &["config", "--json", k, v]).map(drop);
    cfg(
        "Addresses.API",
        &format!("/ip4/127.0.0.1/tcp/{}", ports.api),
    )?;
    cfg(
        "Addresses.Gateway",
        &format!("/ip4/127.0.0.1/tcp/{}", ports.gateway),
    )?;
    json(
        "Addresses.Swarm",
        &format!(r#"["/ip4/127.0.0.1/tcp/{}"]"#, ports.swarm),
    )?;
    json("Addresses.Announce", "[]")?;
    json("Bootstrap", "[]")?;
    cfg("Routing.Type", "dht")?;
    // No provider records: bitswap only finds blocks on nodes it is connected to. The testnet
    // peers its nodes with each other (Peering.Peers, reconnected after a restart); tests that
    // start two daemons connect them (`swarm connect`) and must reconnect after a restart.
    // Announcing every stored block made each daemon write the others' records, with an
    // fsync each (8% of a network benchmark's CPU). IPNS does not need them.
    json("Provide.Enabled", "false")?;
    json("Discovery.MDNS.Enabled", "false")?;
    json("Swarm.RelayClient.Enabled", "false")?;
    json("Swarm.Transports.Network.Websocket", "false")?;
    json("Swarm.Transports.Network.QUIC", "false")?;
    json("Swarm.Transports.Network.WebTransport", "false")?;
    json("Swarm.Transports.Network.WebRTCDirect", "false")?;
    json("Gateway.NoFetch", "false")?;
    let origins = r#"["http://127.0.0.1", "http://localhost", "*"]"#;
    json("API.HTTPHeaders.Access-Control-Allow-Origin", origins)?;
    json(
        "API.HTTPHeaders.Access-Control-Allow-Methods",
        r#"["POST", "GET"]"#,
    )?;
    json(
        "Gateway.HTTPHeaders.Access-Control-Allow-Origin",
        r#"["*"]"#,
    )?;
    Ok(())
}

impl Kubo {
    /// Starts the daemon of `repo` and waits until its API answers (offline: no libp2p).
    pub fn start(bin: &Path, repo: &Path, online: bool) -> io::Result<Kubo> {
        let mut k = Kubo {
            bin: bin.to_path_buf(),
            repo: repo.to_path_buf(),
            child: None,
            online,
            url: String::new(),
            gateway: String::new(),
        };
        k.run()?;
        Ok(k)
    }

    /// Starts the daemon process (again, after [`Kubo::stop`]).
    pub fn run(&mut self) -> io::Result<()> {
        let _ = std::fs::remove_file(self.repo.join("api"));
        let _ = std::fs::remove_file(self.repo.join("gateway"));
        let args: &[&str] = if self.online {
            &["daemon", "--enable-gc=false"]
        } else {
            &["daemon", "--offline", "--enable-gc=false"]
        };
        let child = Command::new(&self.bin)
            .args(args)
            .env("IPFS_PATH", &self.repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let read = |f: &str| {
            std::fs::read_to_string(self.repo.join(f))
                .ok()
                .filter(|a| !a.trim().is_empty())
        };
        loop {
            if let (Some(api), Some(gw)) = (read("api"), read("gateway")) {
                let port = |a: &str| a.trim().rsplit(['/', ':']).next().unwrap_or("").to_owned();
                self.url = format!("http://127.0.0.1:{}", port(&api));
                self.gateway = format!("http://127.0.0.1:{}", port(&gw));
                break;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(io::Error::other(format!("kubo exited at start: {status}")));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::other("kubo daemon did not start within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the daemon process (the repository stays).
    pub fn stop(&mut self) {
        let _ = run(&self.bin, &self.repo, &["shutdown"]);
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

    /// Runs `ipfs ARGS…` on this node's repository.
    pub fn ipfs(&self, args: &[&str]) -> io::Result<Vec<u8>> {
        run(&self.bin, &self.repo, args)
    }

    /// The repository.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// The swarm address other local nodes dial (`/ip4/127.0.0.1/tcp/…/p2p/…`).
    pub fn swarm_addr(&self) -> io::Result<String> {
        let addrs = String::from_utf8_lossy(&self.ipfs(&["id", "-f", "<addrs>"])?).into_owned();
        addrs
            .lines()
            .find(|l| l.starts_with("/ip4/127.0.0.1/"))
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other("kubo has no 127.0.0.1 swarm address"))
    }

    /// Connects to another node now and keeps peering with it (Peering.Peers is read at start,
    /// `swarm connect` works at once).
    pub fn connect(&self, addr: &str) -> io::Result<()> {
        self.ipfs(&["swarm", "connect", addr]).map(drop)
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        self.stop();
    }
}
