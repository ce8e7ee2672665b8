//! The sequencer of a medshare network on CometBFT, reached over any validator's RPC.
//!
//! A submission is one CometBFT transaction (its bytes are the [`Submission`] encoding), sent
//! with `broadcast_tx_sync`: the node's `CheckTx` runs every ledger rule, so a refusal comes
//! back at once with the rule's name. Then the node is asked (`abci_query`, path
//! [`QUERY_TX`]) until the block holding the submission is certified. The node's query
//! protocol is defined here, once, for the node to answer and every client to ask.

use std::sync::Arc;
use std::time::Duration;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::ledger::Submission;
use crate::net::{Http, HttpRequest};
use crate::rule::Rule;
use crate::sequencer::{Committed, Sequencer};

/// `abci_query` path answering the node's certified head: JSON [`HeadAnswer`].
pub const QUERY_HEAD: &str = "/medshare/head";
/// `abci_query` path answering where a transaction (data: its CID text) is: JSON [`TxAnswer`].
pub const QUERY_TX: &str = "/medshare/tx";
/// `abci_query` path answering a light client (data: a JSON
/// [`StateQuery`](crate::ledger::light::StateQuery)): JSON
/// [`StateAnswer`](crate::ledger::light::StateAnswer) proven against the node's latest
/// certified block.
pub const QUERY_STATE: &str = "/medshare/state";
/// `abci_query` path answering the network's genesis block (its DAG-CBOR bytes).
pub const QUERY_GENESIS: &str = "/medshare/genesis";
/// The codespace of every medshare `CheckTx` refusal; its log is `<Rule>: <detail>`.
pub const CODESPACE: &str = "medshare";

/// The node's answer to [`QUERY_HEAD`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadAnswer {
    /// The network's genesis block.
    pub genesis: Cid,
    /// The head pointer (certificate of the latest certified block, or genesis).
    pub head: Cid,
    /// Height of the latest certified block.
    pub height: u64,
}

/// The node's answer to [`QUERY_TX`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxAnswer {
    /// `unknown`, `committed`, or `refused` (valid when it entered the mempool, but no longer
    /// when its block was executed: another transaction got there first).
    pub status: String,
    /// The block holding it, once committed.
    pub block: Option<Cid>,
    /// Its height.
    pub height: Option<u64>,
    /// The certified head pointer once that block is certified.
    pub certified_head: Option<Cid>,
    /// Why it was refused (`<Rule>: <detail>`), when `status` is `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The CometBFT sequencer.
pub struct CometSequencer {
    rpcs: Vec<String>,
    http: Arc<dyn Http>,
    timeout: Duration,
    poll: Duration,
}

impl std::fmt::Debug for CometSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CometSequencer({:?})", self.rpcs)
    }
}

fn rpc_error(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("CometBFT RPC at {url}: {e}"))
}

impl CometSequencer {
    /// A sequencer submitting to the validators' RPC URLs (`http://127.0.0.1:26657`), tried in
    /// order, with the platform's HTTP client.
    pub fn new(rpcs: Vec<String>) -> Result<CometSequencer> {
        CometSequencer::with_http(rpcs, crate::net::default_http()?)
    }

    /// The same with a given HTTP client (a browser's `fetch`).
    pub fn with_http(rpcs: Vec<String>, http: Arc<dyn Http>) -> Result<CometSequencer> {
        if rpcs.is_empty() {
            return Err(Error::InvalidInput("no node RPC URL given".into()));
        }
        for r in &rpcs {
            if !(r.starts_with("http://") || r.starts_with("https://")) {
                return Err(Error::InvalidInput(format!(
                    "node RPC `{}` is not an http(s) URL",
                    crate::text::escape(r)
                )));
            }
        }
        Ok(CometSequencer {
            rpcs: rpcs
                .into_iter()
                .map(|r| r.trim_end_matches('/').to_owned())
                .collect(),
            http,
            timeout: Duration::from_secs(30),
            poll: Duration::from_millis(150),
        })
    }

    /// How long [`Sequencer::submit`] waits for a certified block (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> CometSequencer {
        self.timeout = timeout;
        self
    }

    /// One JSON-RPC call to the first node that answers; returns `result`.
    async fn call(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut last = None;
        for url in &self.rpcs {
            let req = HttpRequest::post(url.clone(), Some(body.to_string().into_bytes()))
                .header("Content-Type", "application/json")
                .timeout(Duration::from_secs(10));
            let resp = match self.http.send(req).await {
                Ok(r) => r,
                Err(e @ (Error::Unavailable(_) | Error::Timeout(_))) => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let v: serde_json::Value = serde_json::from_slice(&resp.body)
                .map_err(|e| rpc_error(url, format!("answer is not JSON-RPC ({e})")))?;
            if let Some(err) = v.get("error") {
                let data = err.get("data").and_then(|d| d.as_str()).unwrap_or_default();
                return Err(Error::Unavailable(format!(
                    "CometBFT RPC at {url}: {method}: {} {data}",
                    err.get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("error")
                )));
            }
            return v
                .get("result")
                .cloned()
                .ok_or_else(|| rpc_error(url, "answer has no result"));
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no node RPC answered".into())))
    }

    /// `abci_query` of `path` with `data`; returns the answer's value bytes (None if empty).
    pub async fn query(&self, path: &str, data: &[u8]) -> Result<Option<Vec<u8>>> {
        let result = self
            .call(
                "abci_query",
                serde_json::json!({
                    "path": path,
                    "data": data_encoding::HEXLOWER.encode(data),
                    "height": "0",
                    "prove": false
                }),
            )
            .await?;
        let resp = result
            .get("response")
            .ok_or_else(|| Error::Unavailable("abci_query answer has no response".into()))?;
        let code = resp.get("code").and_then(|c| c.as_u64()).unwrap_or(0);
        if code != 0 {
            let log = resp.get("log").and_then(|l| l.as_str()).unwrap_or_default();
            return Err(Error::Unavailable(format!("query {path}: {log}")));
        }
        match resp.get("value").and_then(|v| v.as_str()) {
            None | Some("") => Ok(None),
            Some(b64) => data_encoding::BASE64
                .decode(b64.as_bytes())
                .map(Some)
                .map_err(|_| Error::Unavailable("abci_query value is not base64".into())),
        }
    }

    /// The node's certified head.
    pub async fn head_answer(&self) -> Result<HeadAnswer> {
        let v = self
            .query(QUERY_HEAD, &[])
            .await?
            .ok_or_else(|| Error::Unavailable("the node answered no head".into()))?;
        serde_json::from_slice(&v).map_err(|e| Error::Unavailable(format!("head answer: {e}")))
    }

    async fn tx_answer(&self, tx: &Cid) -> Result<TxAnswer> {
        let v = self
            .query(QUERY_TX, tx.to_string().as_bytes())
            .await?
            .ok_or_else(|| Error::Unavailable("the node answered nothing".into()))?;
        serde_json::from_slice(&v).map_err(|e| Error::Unavailable(format!("tx answer: {e}")))
    }
}

/// Turns a `CheckTx` refusal's log (`<Rule>: <detail>`) into [`Error::Rejected`].
pub fn parse_refusal(log: &str) -> Error {
    let (rule, detail) = log.split_once(": ").unwrap_or(("Encoding", log));
    match rule.parse::<Rule>() {
        Ok(rule) => Error::Rejected {
            rule,
            detail: detail.to_owned(),
        },
        Err(()) => Error::Rejected {
            rule: Rule::Encoding,
            detail: log.to_owned(),
        },
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Sequencer for CometSequencer {
    async fn head(&self) -> Result<Option<Cid>> {
        Ok(Some(self.head_answer().await?.head))
    }

    async fn submit(&self, submission: &Submission) -> Result<Committed> {
        let first = submission
            .txs
            .first()
            .ok_or_else(|| Error::InvalidInput("an empty submission".into()))?
            .cid;
        let tx = data_encoding::BASE64.encode(&submission.encode());
        match self
            .call("broadcast_tx_sync", serde_json::json!({ "tx": tx }))
            .await
        {
            Ok(result) => {
                let code = result.get("code").and_then(|c| c.as_u64()).unwrap_or(0);
                if code != 0 {
                    let log = result
                        .get("log")
                        .and_then(|l| l.as_str())
                        .unwrap_or_default();
                    let codespace = result
                        .get("codespace")
                        .and_then(|l| l.as_str())
                        .unwrap_or_default();
                    if codespace == CODESPACE {
                        return Err(parse_refusal(log));
                    }
                    // CometBFT's own refusal (a full mempool, a transaction too large): not a
                    // ledger rule; the network may take it later.
                    return Err(Error::Unavailable(format!(
                        "the node did not take the transaction (code {code}{}): {}",
                        if codespace.is_empty() {
                            String::new()
                        } else {
                            format!(", {}", crate::text::escape(codespace))
                        },
                        crate::text::escape(log)
                    )));
                }
            }
            // Sent before (a retry): wait for it like the first time.
            Err(Error::Unavailable(m)) if m.contains("already exists in cache") => {}
            Err(e) => return Err(e),
        }
        let mut waited = Duration::ZERO;
        loop {
            if let Ok(a) = self.tx_answer(&first).await {
                if let Some(log) = &a.refused {
                    return Err(parse_refusal(log));
                }
                if let (Some(height), Some(block), Some(head)) =
                    (a.height, a.block, a.certified_head)
                {
                    return Ok(Committed {
                        height,
                        block,
                        head,
                    });
                }
            }
            if waited >= self.timeout {
                return Err(Error::Timeout(format!(
                    "transaction {first} was accepted but not committed in a certified block within {} s: more than a third of the validators may be down",
                    self.timeout.as_secs()
                )));
            }
            self.http.sleep(self.poll).await;
            waited += self.poll;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::HttpResponse;

    /// A node that answers every `broadcast_tx_sync` with `answer`.
    struct Canned(serde_json::Value);

    #[async_trait::async_trait]
    impl Http for Canned {
        async fn send(&self, _req: HttpRequest) -> Result<HttpResponse> {
            Ok(HttpResponse {
                status: 200,
                body: serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": self.0})
                    .to_string()
                    .into_bytes(),
            })
        }
        async fn sleep(&self, _d: Duration) {}
    }

    fn submission() -> Submission {
        let key = crate::Identity::from_pkcs8_pem(
            crate::Role::Patient,
            "p",
            include_str!("../../testdata/keys/patient-2048.pem"),
        )
        .unwrap();
        let tx = crate::ledger::Tx {
            genesis: Cid::dag_cbor(b"genesis"),
            author: key.id(),
            seq: 1,
            time: 1,
            body: crate::ledger::TxBody::RegisterPatient {
                key: key.public().clone(),
            },
        };
        Submission {
            txs: vec![crate::ledger::SignedTx::sign(tx, &key).unwrap()],
        }
    }

    fn submit(answer: serde_json::Value) -> Error {
        let seq =
            CometSequencer::with_http(vec!["http://127.0.0.1:1".into()], Arc::new(Canned(answer)))
                .unwrap();
        pollster::block_on(seq.submit(&submission())).unwrap_err()
    }

    #[test]
    fn refusals_by_rule_and_by_the_engine_are_told_apart() {
        let e = submit(serde_json::json!({
            "code": 1, "codespace": "medshare", "log": "Sequence: sequence 1 not above 1"
        }));
        assert!(
            matches!(&e, Error::Rejected { rule: Rule::Sequence, detail } if detail == "sequence 1 not above 1"),
            "{e:?}"
        );
        // CometBFT's own refusal: not a ledger rule.
        let e = submit(serde_json::json!({"code": 20, "codespace": "", "log": "mempool is full"}));
        assert!(
            matches!(&e, Error::Unavailable(m) if m.contains("mempool is full")),
            "{e:?}"
        );
    }
}
