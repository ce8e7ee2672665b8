//! The CLI's home directory: the embedded filesystem store, the local authority key and the
//! identities' key files.
//!
//! ```text
//! <home>/store/                 filesystem block store (blocks, HEAD, LOCK)
//! <home>/authority.key          the local authority (seals blocks, endorses doctors)
//! <home>/identities/<name>.key  one key file per identity created here
//! ```

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use medshare::store::kubo::{KuboConfig, KuboStore};
use medshare::{Identity, IdentityId, PublicKey, Store, Vault};
use zeroize::Zeroizing;

pub struct Home {
    pub root: PathBuf,
    /// `Some` when the blocks live on a kubo node (`--store kubo=URL`) instead of `<home>/store`.
    pub kubo: Option<KuboConfig>,
}

impl Home {
    pub fn new(root: &Path, store: &str) -> Result<Home> {
        let kubo = match store {
            "fs" => None,
            s if s.starts_with("kubo=") => {
                // kubo=URL[,ipns-key=NAME][,follow=IPNS-NAME]
                let mut parts = s["kubo=".len()..].split(',');
                let mut c = KuboConfig::new(parts.next().unwrap_or_default());
                for opt in parts {
                    match opt.split_once('=') {
                        Some(("ipns-key", k)) => c.publish_key = Some(k.to_owned()),
                        Some(("follow", n)) => c.follow = Some(n.to_owned()),
                        _ => bail!(
                            "unknown kubo store option `{opt}` (ipns-key=NAME or follow=IPNS-NAME)"
                        ),
                    }
                }
                c.token = std::env::var("MEDSHARE_KUBO_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty());
                Some(c)
            }
            other => bail!("unknown --store `{other}`: use `fs` or `kubo=http://127.0.0.1:5001`"),
        };
        Ok(Home {
            root: root.to_path_buf(),
            kubo,
        })
    }

    /// The block store: the embedded filesystem store, or the kubo node.
    pub fn open_store(&self) -> Result<Store> {
        Ok(match &self.kubo {
            Some(c) => Store::new(KuboStore::new(c.clone())),
            None => Store::open_dir(self.store_dir())?,
        })
    }

    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    pub fn authority_path(&self) -> PathBuf {
        self.root.join("authority.key")
    }

    pub fn identities_dir(&self) -> PathBuf {
        self.root.join("identities")
    }

    pub fn identity_path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with('.')
        {
            bail!("identity name `{name}` must be letters, digits, '-', '_' or '.'");
        }
        Ok(self.identities_dir().join(format!("{name}.key")))
    }

    /// Whether the store holds a chain: made by `init`, or by `import` of a CAR file.
    pub fn is_initialised(&self) -> bool {
        match &self.kubo {
            None => self.store_dir().join("HEAD").exists(),
            Some(_) => self
                .open_store()
                .ok()
                .and_then(|s| pollster::block_on(s.head()).ok().flatten())
                .is_some(),
        }
    }

    fn require_init(&self) -> Result<()> {
        if !self.is_initialised() {
            match &self.kubo {
                None => bail!(
                    "{} is not a medshare home; run `medshare init` first",
                    self.root.display()
                ),
                Some(c) => bail!(
                    "the kubo node at {} holds no medshare chain; run `medshare init` first",
                    c.url
                ),
            }
        }
        Ok(())
    }

    /// Opens the store and the chain; with `write`, loads the authority to seal blocks.
    pub fn vault(&self, write: bool) -> Result<Vault> {
        self.require_init()?;
        let store = self.open_store()?;
        let sealer = if write {
            Some(self.load_authority()?)
        } else {
            None
        };
        Ok(pollster::block_on(Vault::open(store, sealer))?)
    }

    pub fn load_authority(&self) -> Result<Identity> {
        if !self.authority_path().exists() {
            bail!(
                "this home has no authority key (a replica made by `import`): it can read and verify, not write"
            );
        }
        let pass = passphrase("authority", false)?;
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

    /// Where the public key of a local identity is kept (readable without a passphrase).
    pub fn public_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.identity_path(name)?.with_extension("pub"))
    }

    /// Resolves the name of a local identity, or an identity id, to an id.
    pub fn resolve_id(&self, who: &str) -> Result<IdentityId> {
        if let Ok(id) = who.parse::<IdentityId>() {
            return Ok(id);
        }
        let path = self.public_path(who)?;
        if !path.exists() {
            bail!("`{who}` is neither an identity id nor the name of an identity in this home");
        }
        let pem = std::fs::read_to_string(&path)?;
        Ok(PublicKey::from_pem(&pem)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?
            .id())
    }
}

/// The passphrase for `what`: `MEDSHARE_PASSPHRASE` in scripts, else asked on the terminal.
pub fn passphrase(what: &str, new: bool) -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("MEDSHARE_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase for `{what}`: set MEDSHARE_PASSPHRASE or run on a terminal");
    }
    let p = Zeroizing::new(rpassword::prompt_password(format!(
        "passphrase for {what}: "
    ))?);
    if new {
        let again = Zeroizing::new(rpassword::prompt_password("repeat passphrase: ")?);
        if *again != *p {
            bail!("passphrases differ");
        }
        if p.len() < 8 {
            bail!("use a passphrase of at least 8 characters");
        }
    }
    Ok(p)
}
