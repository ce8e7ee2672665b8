//! HTTP, as the network stores and the network sequencer need it: one small trait that each
//! platform implements once. Natively it is [`UreqHttp`] (feature `http`, a blocking client used
//! inside the async methods, as the filesystem store does its I/O); in a browser the wasm
//! binding implements it with `fetch`. Everything above it (kubo's RPC, trustless gateways,
//! CometBFT's RPC) is written once, here in core.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::platform::MaybeSendSync;

/// One HTTP request.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Absolute URL, query included.
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<Vec<u8>>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Largest response body accepted (bytes).
    pub max_response: u64,
}

impl HttpRequest {
    /// A `GET` of `url` with a 60 s timeout and a 4 MiB response limit.
    pub fn get(url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method: "GET",
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(60),
            max_response: 4 << 20,
        }
    }

    /// A `POST` of `body` to `url`.
    pub fn post(url: impl Into<String>, body: Option<Vec<u8>>) -> HttpRequest {
        HttpRequest {
            method: "POST",
            body,
            ..HttpRequest::get(url)
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> HttpRequest {
        self.timeout = t;
        self
    }
}

/// One HTTP response (any status; the caller interprets it).
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// An HTTP client. Implementations fail with [`Error::Unavailable`] when the server cannot be
/// reached and [`Error::Timeout`] when it does not answer in time; any answer, whatever its
/// status, is an `Ok`.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Http: MaybeSendSync {
    /// Sends `req` and returns the answer.
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse>;

    /// Sends `req` with the body read from `body` as it is produced (chunked transfer), for a
    /// body that is never whole in memory: a publish's blocks streamed to kubo as one CAR. The
    /// name lookup, the connection, every write and read, and the wait for the answer once the
    /// body is sent each have `req.timeout`; the call as a whole has none. The default reads `body` to its end, then sends it (for
    /// clients that cannot stream).
    #[cfg(not(target_arch = "wasm32"))]
    async fn send_streaming(
        &self,
        mut req: HttpRequest,
        mut body: Box<dyn std::io::Read + Send>,
    ) -> Result<HttpResponse> {
        let mut all = Vec::new();
        body.read_to_end(&mut all).map_err(Error::Io)?;
        req.body = Some(all);
        self.send(req).await
    }

    /// Waits `d` (between retries and polls). The native client blocks the calling thread, as
    /// its requests do; a browser client resolves a `setTimeout`.
    async fn sleep(&self, d: Duration);
}

/// The platform's default HTTP client, if it has one built in (native targets with the `http`
/// feature). In a browser, pass the binding's `fetch` client instead.
pub fn default_http() -> Result<Arc<dyn Http>> {
    #[cfg(all(feature = "http", not(target_arch = "wasm32")))]
    {
        Ok(Arc::new(UreqHttp::new()))
    }
    #[cfg(not(all(feature = "http", not(target_arch = "wasm32"))))]
    {
        Err(Error::Unavailable(
            "this build has no HTTP client: pass one (the `http` feature provides one natively)"
                .into(),
        ))
    }
}

/// The native HTTP client (ureq, rustls).
#[cfg(all(feature = "http", not(target_arch = "wasm32")))]
pub struct UreqHttp {
    agent: ureq::Agent,
}

#[cfg(all(feature = "http", not(target_arch = "wasm32")))]
impl UreqHttp {
    /// A client with a connection pool.
    pub fn new() -> UreqHttp {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        UreqHttp { agent }
    }
}

#[cfg(all(feature = "http", not(target_arch = "wasm32")))]
impl Default for UreqHttp {
    fn default() -> Self {
        UreqHttp::new()
    }
}

#[cfg(all(feature = "http", not(target_arch = "wasm32")))]
#[async_trait::async_trait]
impl Http for UreqHttp {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse> {
        let url = req.url.clone();
        let sent = if req.method == "GET" {
            let mut r = self.agent.get(&req.url);
            for (k, v) in &req.headers {
                r = r.header(k, v);
            }
            r.config().timeout_global(Some(req.timeout)).build().call()
        } else {
            let mut r = self.agent.post(&req.url);
            for (k, v) in &req.headers {
                r = r.header(k, v);
            }
            let r = r.config().timeout_global(Some(req.timeout)).build();
            match &req.body {
                Some(b) => r.send(&b[..]),
                None => r.send_empty(),
            }
        };
        answer(&url, &req, sent)
    }

    async fn send_streaming(
        &self,
        req: HttpRequest,
        body: Box<dyn std::io::Read + Send>,
    ) -> Result<HttpResponse> {
        let url = req.url.clone();
        let mut r = self.agent.post(&req.url);
        for (k, v) in &req.headers {
            r = r.header(k, v);
        }
        let t = Some(req.timeout);
        let sent = r
            .config()
            .timeout_global(None)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_per_write(t)
            .timeout_per_read(t)
            .timeout_recv_response(t)
            .build()
            .send(ureq::SendBody::from_owned_reader(body));
        answer(&url, &req, sent)
    }

    async fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The answer to `req` as an [`HttpResponse`], its body read within `req.max_response`.
#[cfg(all(feature = "http", not(target_arch = "wasm32")))]
fn answer(
    url: &str,
    req: &HttpRequest,
    sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<HttpResponse> {
    let mut resp = sent.map_err(|e| match e {
        ureq::Error::Timeout(_) => {
            Error::Timeout(format!("{url}: no answer within {:?}", req.timeout))
        }
        other => Error::Unavailable(format!("{url}: {other}")),
    })?;
    let status = resp.status().as_u16();
    let mut body = resp
        .body_mut()
        .with_config()
        .limit(req.max_response)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => {
                Error::Timeout(format!("{url}: answer not read within {:?}", req.timeout))
            }
            other => Error::Unavailable(format!("{url}: reading the answer: {other}")),
        })?;
    // A streamed answer (no length) grows the buffer by doubling: a 1 MiB block can hold
    // 2 MiB until it is trimmed, and a read keeps several in flight.
    body.shrink_to_fit();
    Ok(HttpResponse { status, body })
}

/// `s` percent-encoded for a URL query value (RFC 3986 unreserved characters kept).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `"field": "value"` string of a JSON object, or `None`.
pub fn json_str(v: &serde_json::Value, field: &str) -> Option<String> {
    v.get(field).and_then(|x| x.as_str()).map(str::to_owned)
}
