//! A read-only store over IPFS HTTP gateways in trustless mode (the IPFS "Trustless Gateway"
//! specification): `GET /ipfs/{cid}?format=raw` with `Accept: application/vnd.ipld.raw`
//! returns one block's bytes, which [`crate::Store`] hash-checks like any other backend's — so
//! any gateway, trusted or not, can serve a reader. Several gateways can be listed; each block
//! is asked of them in order until one has it. Reading needs no IPFS node on the client.

use std::sync::Arc;
use std::time::Duration;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::net::{Http, HttpRequest};
use crate::store::BlockStore;

/// The trustless-gateway store.
pub struct GatewayStore {
    gateways: Vec<String>,
    http: Arc<dyn Http>,
    timeout: Duration,
}

impl std::fmt::Debug for GatewayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GatewayStore({:?})", self.gateways)
    }
}

impl GatewayStore {
    /// A store reading from `gateways` (base URLs such as `http://127.0.0.1:8080`) in order.
    pub fn new(gateways: Vec<String>, http: Arc<dyn Http>) -> Result<GatewayStore> {
        if gateways.is_empty() {
            return Err(Error::InvalidInput("no gateway given".into()));
        }
        for g in &gateways {
            if !(g.starts_with("http://") || g.starts_with("https://")) {
                return Err(Error::InvalidInput(format!(
                    "gateway `{}` is not an http(s) URL",
                    crate::text::escape(g)
                )));
            }
        }
        Ok(GatewayStore {
            gateways: gateways
                .into_iter()
                .map(|g| g.trim_end_matches('/').to_owned())
                .collect(),
            http,
            timeout: Duration::from_secs(60),
        })
    }

    /// Sets the timeout of one request.
    pub fn with_timeout(mut self, timeout: Duration) -> GatewayStore {
        self.timeout = timeout;
        self
    }

    fn read_only() -> Error {
        Error::Backend("a gateway store is read-only".into())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlockStore for GatewayStore {
    fn is_read_only(&self) -> bool {
        true
    }

    /// HTTP fetches, from any thread where there are threads.
    fn parallel_io(&self) -> bool {
        cfg!(not(target_arch = "wasm32"))
    }

    async fn put(&self, _cid: &Cid, _data: &[u8]) -> Result<()> {
        Err(GatewayStore::read_only())
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let mut last = None;
        for g in &self.gateways {
            let req = HttpRequest::get(format!("{g}/ipfs/{cid}?format=raw"))
                .header("Accept", "application/vnd.ipld.raw")
                .timeout(self.timeout);
            let req = HttpRequest {
                max_response: crate::limits::MAX_BLOCK_SIZE as u64 + 1,
                ..req
            };
            match self.http.send(req).await {
                Ok(r) if r.status == 200 => return Ok(Some(r.body)),
                // Not found here (or the gateway would have to fetch it and gave up): next one.
                Ok(r) if matches!(r.status, 404 | 410 | 412 | 504) => {}
                Ok(r) => {
                    last = Some(Error::Backend(format!(
                        "gateway {g}: HTTP {} for {cid}",
                        r.status
                    )))
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.get(cid).await?.is_some())
    }

    async fn delete(&self, _cid: &Cid) -> Result<()> {
        Err(GatewayStore::read_only())
    }

    async fn head(&self) -> Result<Option<Cid>> {
        // Gateways serve blocks, not heads: a reader learns the head from a node.
        Ok(None)
    }

    async fn compare_and_swap_head(&self, _e: Option<&Cid>, _n: Option<&Cid>) -> Result<()> {
        Err(GatewayStore::read_only())
    }
}
