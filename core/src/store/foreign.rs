//! Stores written in another language (Python, JavaScript, Kotlin, Swift), adapted once here.
//!
//! A binding implements [`ForeignStore`] by calling the user's object: CIDs travel as text, a
//! missing block is `None`, compare-and-swap answers `true` or `false`. [`Foreign`] turns that
//! into a [`BlockStore`]: it parses what comes back, and turns a refused compare-and-swap into
//! [`Error::HeadConflict`] naming the head the store actually holds — or into a backend error
//! if the store refuses a swap although its head is the expected one.

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::platform::MaybeSendSync;
use crate::store::{BlockStore, head_conflict};

/// What a binding implements over a user's store object. Errors the object raises become
/// [`Error::Backend`] (or [`Error::Io`]) in the binding.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait ForeignStore: MaybeSendSync {
    /// The bytes under `cid` (CIDv1 text), or `None`.
    async fn get(&self, cid: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `data` under `cid`.
    async fn put(&self, cid: &str, data: &[u8]) -> Result<()>;
    /// Whether `cid` is stored.
    async fn has(&self, cid: &str) -> Result<bool>;
    /// Removes `cid` (no error if absent).
    async fn delete(&self, cid: &str) -> Result<()>;
    /// The head CID text, or `None`.
    async fn head(&self) -> Result<Option<String>>;
    /// Sets the head to `new` if it is `expected`; `false` if it was not.
    async fn compare_and_swap_head(
        &self,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool>;
}

/// The adapter from [`ForeignStore`] to [`BlockStore`].
pub struct Foreign<F>(pub F);

fn parse_head(text: Option<String>) -> Result<Option<Cid>> {
    text.map(|t| {
        t.trim()
            .parse::<Cid>()
            .map_err(|e| Error::Backend(format!("the store's head is not a CID: {e}")))
    })
    .transpose()
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<F: ForeignStore> BlockStore for Foreign<F> {
    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.0.put(&cid.to_string(), data).await
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        self.0.get(&cid.to_string()).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.0.has(&cid.to_string()).await
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        self.0.delete(&cid.to_string()).await
    }

    async fn head(&self) -> Result<Option<Cid>> {
        parse_head(self.0.head().await?)
    }

    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
        let e = expected.map(Cid::to_string);
        let n = new.map(Cid::to_string);
        if self
            .0
            .compare_and_swap_head(e.as_deref(), n.as_deref())
            .await?
        {
            return Ok(());
        }
        let found = parse_head(self.0.head().await?)?;
        if found.as_ref() == expected {
            return Err(Error::Backend(format!(
                "the store refused to move its head although it holds the expected {}",
                expected.map_or_else(|| "none".to_owned(), Cid::to_string)
            )));
        }
        Err(head_conflict(expected, found.as_ref()))
    }
}
