//! The CLI's home directory: where the blocks, the keys and the network's identity live.
//!
//! ```text
//! <home>/store/                  the embedded filesystem block store (blocks, HEAD, LOCK, meta)
//! <home>/genesis                 the network's genesis CID: every chain opened here must be it
//! <home>/authority.key           the local authority (embedded mode: certifies blocks, endorses)
//! <home>/identities/<name>.key   one encrypted key file per identity created here
//! <home>/identities/<name>.pub   its public key (PEM), readable without a passphrase
//! <home>/identities/<name>.key.retired-<unix time>   a key replaced by `identity rotate`
//! <home>/network.json            set by `--network FILE` users: the network's nodes and stores
//! ```

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use medshare::cid::Cid;
use medshare::sequencer::comet::CometSequencer;
use medshare::store::kubo::{KuboConfig, KuboStore};
use medshare::{Identity, IdentityId, PublicKey, Sequencer, Store, Vault};
use zeroize::Zeroizing;

/// How this home reaches a network, if it uses one instead of its embedded sequencer.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct NetworkFile {
    /// The network's genesis CID.
    pub genesis: String,
    /// Validators' CometBFT RPC URLs, tried in order.
    pub nodes: Vec<String>,
    /// A kubo node's RPC URL, where clients write record blocks (and read them).
    #[serde(default)]
    pub kubo: Option<String>,
    /// Trustless gateways to read blocks from, when there is no kubo RPC to use.
    #[serde(default)]
    pub gateways: Vec<String>,
}

pub struct Home {
    pub root: PathBuf,
    /// `Some` when the blocks live on a kubo node (`--store kubo=URL`) instead of `<home>/store`.
    pub kubo: Option<KuboConfig>,
    /// `Some` when transactions go to a network (`--network FILE`, `--node URL`).
    pub network: Option<NetworkFile>,
}

impl Home {
    pub fn new(root: &Path, store: &str, network: Option<&Path>, nodes: &[String]) -> Result<Home> {
        let kubo = match store {
            "fs" => None,
            s if s.starts_with("kubo=") => {
                let mut c = KuboConfig::parse(&s["kubo=".len()..])?;
                c.token = std::env::var("MEDSHARE_KUBO_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty());
                Some(c)
            }
            other => bail!(
                "unknown --store `{}`: use `fs` or `kubo=http://127.0.0.1:5001`",
                medshare::text::escape(other)
            ),
        };
        let mut net = match network {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the network file {}", path.display()))?;
                Some(serde_json::from_str::<NetworkFile>(&text).with_context(|| {
                    format!("{} is not a medshare network file", path.display())
                })?)
            }
            None => {
                let saved = root.join("network.json");
                match std::fs::read_to_string(&saved) {
                    Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
                        format!("{} is not a medshare network file", saved.display())
                    })?),
                    Err(_) => None,
                }
            }
        };
        if !nodes.is_empty() {
            let n = net.get_or_insert_with(NetworkFile::default);
            n.nodes = nodes.to_vec();
        }
        let kubo = match (kubo, &net) {
            (Some(k), _) => Some(k),
            (None, Some(n)) => n.kubo.as_deref().map(KuboConfig::parse).transpose()?,
            (None, None) => None,
        };
        Ok(Home {
            root: root.to_path_buf(),
            kubo,
            network: net,
        })
    }

    /// The block store: the network's kubo node or gateways, the `--store` kubo node, or the
    /// embedded filesystem store.
    pub fn open_store(&self) -> Result<Store> {
        if let Some(c) = &self.kubo {
            return Ok(Store::new(KuboStore::new(c.clone())?));
        }
        if let Some(n) = &self.network
            && !n.gateways.is_empty()
        {
            return Ok(Store::gateways(n.gateways.clone())?);
        }
        Ok(Store::open_dir(self.store_dir())?)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    pub fn authority_path(&self) -> PathBuf {
        self.root.join("authority.key")
    }

    pub fn genesis_path(&self) -> PathBuf {
        self.root.join("genesis")
    }

    pub fn identities_dir(&self) -> PathBuf {
        self.root.join("identities")
    }

    pub fn identity_path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with('.')
        {
            bail!(
                "identity name `{}` must be 1 to 64 letters, digits, '-', '_' or '.'",
                medshare::text::escape(name)
            );
        }
        Ok(self.identities_dir().join(format!("{name}.key")))
    }

    /// Where the public key of a local identity is kept (readable without a passphrase).
    pub fn public_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.identity_path(name)?.with_extension("pub"))
    }

    /// The genesis CID this home is bound to (set by `init`, `import --genesis`, a network).
    pub fn genesis(&self) -> Result<Option<Cid>> {
        if let Some(n) = &self.network
            && !n.genesis.is_empty()
        {
            return Ok(Some(medshare::parse_cid(&n.genesis)?));
        }
        match std::fs::read_to_string(self.genesis_path()) {
            Ok(t) => Ok(Some(medshare::parse_cid(t.trim()).with_context(|| {
                format!("{} is damaged", self.genesis_path().display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn save_genesis(&self, genesis: &Cid) -> Result<()> {
        std::fs::create_dir_all(&self.root)?;
        medshare::fsutil::write_atomic(
            &self.genesis_path(),
            format!("{genesis}\n").as_bytes(),
            false,
        )?;
        Ok(())
    }

    /// Whether anything of a home is here already (a store with a chain, a key, an identity).
    pub fn existing_parts(&self) -> Result<Vec<String>> {
        let mut found = Vec::new();
        if self.authority_path().exists() {
            found.push(self.authority_path().display().to_string());
        }
        if self.genesis_path().exists() {
            found.push(self.genesis_path().display().to_string());
        }
        if !self.identity_files()?.is_empty() {
            found.push(format!("identities in {}", self.identities_dir().display()));
        }
        if self.store_dir().join("HEAD").exists() {
            found.push(format!("a chain in {}", self.store_dir().display()));
        }
        if let (Some(c), true) = (&self.kubo, found.is_empty()) {
            let store = Store::new(KuboStore::new(c.clone())?);
            if pollster::block_on(store.head())?.is_some() {
                found.push(format!("a chain on the kubo node at {}", c.url));
            }
        }
        Ok(found)
    }

    fn sequencer(&self, store: &Store) -> Result<Arc<dyn Sequencer>> {
        if let Some(n) = &self.network {
            if n.nodes.is_empty() {
                bail!("the network file names no node");
            }
            return Ok(Arc::new(CometSequencer::new(n.nodes.clone())?));
        }
        if !self.authority_path().exists() {
            bail!(
                "this home has no authority key and no network: it can read and verify, not write (see `medshare --network FILE`)"
            );
        }
        let authority = self.load_authority()?;
        Ok(Arc::new(medshare::LocalSequencer::new(
            store.clone(),
            authority,
        )?))
    }

    /// Opens the vault: verified from genesis, bound to this home's genesis. With `write`, it
    /// can submit transactions (to the network, or to the embedded sequencer, which then needs
    /// the authority key).
    pub fn vault(&self, write: bool) -> Result<Vault> {
        let store = self.open_store()?;
        let genesis = self.genesis()?;
        let sequencer = if write || self.network.is_some() {
            Some(self.sequencer(&store)?)
        } else {
            None
        };
        if sequencer.is_none() && pollster::block_on(store.head())?.is_none() {
            match &self.kubo {
                None => bail!(
                    "{} holds no chain; run `medshare init` (or `medshare import --car F --genesis CID`) first",
                    self.root.display()
                ),
                Some(c) => bail!(
                    "the kubo node at {} holds no medshare chain; run `medshare init` first",
                    c.url
                ),
            }
        }
        let vault = pollster::block_on(Vault::open(store, sequencer, genesis.as_ref()))?;
        if genesis.is_none() {
            // First use of a chain found in the store: bind this home to it.
            self.save_genesis(&vault.genesis())?;
        }
        Ok(vault)
    }

    pub fn load_authority(&self) -> Result<Identity> {
        if !self.authority_path().exists() {
            bail!("this home has no authority key (`medshare init` makes one)");
        }
        let pass = passphrase("the authority", false)?;
        Identity::load(self.authority_path(), &pass).context("loading the authority key")
    }

    /// Every identity key file here: (name, path).
    pub fn identity_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let dir = self.identities_dir();
        if !dir.exists() {
            return Ok(out);
        }
        for e in std::fs::read_dir(dir)? {
            let path = e?.path();
            if let Some(stem) = path
                .file_stem()
                .filter(|_| path.extension().is_some_and(|x| x == "key"))
            {
                out.push((stem.to_string_lossy().into_owned(), path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Loads an identity by name (its key file here).
    pub fn load_identity(&self, name: &str) -> Result<Identity> {
        let path = self.identity_path(name)?;
        if !path.exists() {
            bail!(
                "no identity named `{name}` in {} (see `medshare identity list`)",
                self.root.display()
            );
        }
        let pass = passphrase(name, false)?;
        Identity::load(&path, &pass).with_context(|| format!("loading identity `{name}`"))
    }

    /// Resolves the name of a local identity, or an identity id, to an (account) id.
    pub fn resolve_id(&self, who: &str) -> Result<IdentityId> {
        if who.starts_with('b') && who.len() > 50 {
            return Ok(who.parse::<IdentityId>()?);
        }
        let path = self.public_path(who)?;
        if !path.exists() {
            bail!(
                "`{}` is neither an identity id nor the name of an identity in this home",
                medshare::text::escape(who)
            );
        }
        let text = std::fs::read_to_string(&path)?;
        // `<name>.pub` holds the account id on its first line (since rotation), then the PEM.
        if let Some(first) = text.lines().next().and_then(|l| l.strip_prefix("account ")) {
            return Ok(first.trim().parse()?);
        }
        Ok(PublicKey::from_pem(&text)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?
            .id())
    }

    /// Writes `<name>.pub`: the account id, then the current public key.
    pub fn save_public(&self, name: &str, id: &Identity) -> Result<()> {
        let text = format!("account {}\n{}", id.id(), id.public().to_pem());
        medshare::fsutil::write_atomic(&self.public_path(name)?, text.as_bytes(), false)?;
        Ok(())
    }
}

/// The passphrase for `what`: `MEDSHARE_PASSPHRASE` in scripts, else asked on the terminal.
/// A passphrase for a new key must have at least 8 characters, whichever way it comes.
pub fn passphrase(what: &str, new: bool) -> Result<Zeroizing<String>> {
    let p = if let Ok(p) = std::env::var("MEDSHARE_PASSPHRASE") {
        Zeroizing::new(p)
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no passphrase for {what}: set MEDSHARE_PASSPHRASE or run on a terminal");
        }
        let p = Zeroizing::new(rpassword::prompt_password(format!(
            "passphrase for {what}: "
        ))?);
        if new {
            let again = Zeroizing::new(rpassword::prompt_password("repeat passphrase: ")?);
            if *again != *p {
                bail!("passphrases differ");
            }
        }
        p
    };
    if p.is_empty() {
        bail!("the passphrase for {what} is empty (MEDSHARE_PASSPHRASE is set but empty?)");
    }
    if new && p.chars().count() < 8 {
        bail!("use a passphrase of at least 8 characters for {what}");
    }
    Ok(p)
}
