//! The medshare ABCI application: CometBFT orders transactions, this state machine (the core's
//! ledger [`State`]) decides what they mean.
//!
//! * A CometBFT transaction is either a client's [`Submission`] (transactions that commit
//!   together or not at all) or a [`CertificateObject`] the proposer adds.
//! * `CheckTx` runs every ledger rule against the mempool's state, so an invalid transaction
//!   never enters the mempool and the client gets the rule's name back.
//! * At each height, the valid submissions become the next medshare block, built
//!   deterministically from the committed state, the transactions in consensus order and
//!   CometBFT's block time (`execute`): every honest node computes the same block and CID.
//!   The head block must be certified before the next one is built.
//! * Certificates: in `ExtendVote`, each validator signs the checkpoint of the block the
//!   height produces (a C2SP signed-note line over the transaction log's root and the block
//!   CID) with its authority's RSA key; `VerifyVoteExtension` checks the others' shares; the
//!   next proposer turns the shares CometBFT hands it into a certificate transaction, checked
//!   again by everyone. A certificate needs more than two thirds of the authorities.
//! * `Commit` writes the objects to the node's store and moves its head; `Info` reports the
//!   last committed height so that CometBFT replays only what is missing after a restart.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use medshare::Sequencer;
use medshare::ledger::checkpoint::{Certificate, Checkpoint, sign_share};
use medshare::ledger::codec::object_type;
use medshare::ledger::light::StateQuery;
use medshare::ledger::{
    Block, CertificateObject, GenesisBlock, SignedTx, State, Submission, Tx, TxBody,
    VerifiedSignatures, chain,
};
use medshare::sequencer::comet::{
    CODESPACE, CometSequencer, HeadAnswer, QUERY_GENESIS, QUERY_HEAD, QUERY_STATE, QUERY_TX,
    TxAnswer,
};
use medshare::store::Block as StoredBlock;
use medshare::vault::release_share_tx;
use medshare::{Cid, Error, Identity, IdentityId, PublicKey, Rule, Store};
use prost::bytes::Bytes;
use sha2::{Digest, Sha256};
use tendermint_proto::v0_38::abci::{
    ExecTxResult, ExtendedCommitInfo, RequestCheckTx, RequestExtendVote, RequestFinalizeBlock,
    RequestInfo, RequestInitChain, RequestPrepareProposal, RequestProcessProposal, RequestQuery,
    RequestVerifyVoteExtension, ResponseCheckTx, ResponseCommit, ResponseExtendVote,
    ResponseFinalizeBlock, ResponseInfo, ResponseInitChain, ResponsePrepareProposal,
    ResponseProcessProposal, ResponseQuery, ResponseVerifyVoteExtension, ValidatorUpdate,
};
use tendermint_proto::v0_38::crypto::{PublicKey as CometKey, public_key::Sum};

use crate::abci::Application;

/// The store metadata key of the node's progress.
const META_KEY: &str = "node";
/// The store metadata key of the last height whose ledger objects are kept (pinned).
const KEPT_KEY: &str = "node-kept";
/// `CheckTx` code of a refused transaction (the log says which rule).
const CODE_REFUSED: u32 = 1;
/// Vote extension verification statuses and proposal statuses (ABCI enums).
const ACCEPT: i32 = 1;
const REJECT: i32 = 2;
/// CometBFT's `BlockIDFlag` of a precommit for the block.
const BLOCK_ID_FLAG_COMMIT: i32 = 2;

/// Test-only faults of a Byzantine validator (off unless the environment turns them on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every proposal this node makes carries a transaction with a forged signature.
    pub forge_proposal: bool,
    /// Every certificate share this node signs is for a different block CID.
    pub bad_share: bool,
}

impl Faults {
    /// Reads `MEDSHARE_TEST_FAULTS` (comma-separated: `forge-proposal`, `bad-share`).
    pub fn from_env() -> Faults {
        let v = std::env::var("MEDSHARE_TEST_FAULTS").unwrap_or_default();
        Faults {
            forge_proposal: v.split(',').any(|f| f.trim() == "forge-proposal"),
            bad_share: v.split(',').any(|f| f.trim() == "bad-share"),
        }
    }
}

/// What the node persisted at its last `Commit` (store metadata, JSON).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct NodeMeta {
    /// Last committed CometBFT height.
    comet_height: i64,
    /// Its app hash (hex).
    app_hash: String,
    /// The latest certified head pointer (certificate CID, or the genesis).
    certified: Cid,
    /// Its medshare height.
    certified_height: u64,
    /// The latest block (certified or not yet).
    head: Cid,
}

/// Where a transaction ended up.
#[derive(Clone, Debug)]
enum Place {
    Committed { height: u64, block: Cid },
    Refused { log: String },
}

/// One CometBFT transaction, decoded.
enum NetTx {
    Submission(Submission),
    Certificate(Box<CertificateObject>),
}

fn decode_tx(raw: &[u8]) -> Result<NetTx, Error> {
    match object_type(raw).as_deref() {
        Some("submission") => Submission::decode(raw).map(NetTx::Submission),
        Some("certificate") => CertificateObject::decode(raw)
            .map(|c| NetTx::Certificate(Box::new(c)))
            .map_err(|detail| Error::rejected(Rule::Encoding, detail)),
        _ => Err(Error::rejected(
            Rule::Encoding,
            "neither a submission nor a certificate",
        )),
    }
}

/// `<Rule>: <detail>` — what clients parse back into [`Error::Rejected`].
fn refusal_log(e: &Error) -> String {
    match e {
        Error::Rejected { rule, detail } | Error::InvalidChain { rule, detail, .. } => {
            format!("{rule}: {detail}")
        }
        other => format!("{}: {other}", Rule::Encoding),
    }
}

/// The result of executing one height's transactions on a state.
struct Outcome {
    state: State,
    results: Vec<ExecTxResult>,
    /// The new block and its transactions, if any submission was valid.
    block: Option<(Block, Vec<SignedTx>)>,
    cert: Option<CertificateObject>,
    /// The state that certificate certifies (before the new block, if any).
    certified: Option<State>,
    refused: Vec<(Cid, String)>,
    /// Whether every transaction was valid (what `ProcessProposal` requires).
    all_valid: bool,
}

impl Outcome {
    /// The ledger objects this outcome adds to the store: the certificate, the transactions,
    /// the block.
    fn object_refs(&self) -> Vec<(Cid, &[u8])> {
        let mut objects: Vec<(Cid, &[u8])> = Vec::new();
        if let Some(c) = &self.cert {
            objects.push((c.cid, &c.bytes));
        }
        if let Some((block, txs)) = &self.block {
            objects.extend(txs.iter().map(|t| (t.cid, t.bytes.as_slice())));
            objects.push((block.cid, &block.bytes));
        }
        objects
    }

    /// [`Outcome::object_refs`], copied out to be stored.
    fn objects(&self) -> Vec<StoredBlock> {
        self.object_refs()
            .into_iter()
            .map(|(cid, data)| StoredBlock {
                cid,
                data: data.to_vec(),
            })
            .collect()
    }
}

fn result(code: u32, log: String) -> ExecTxResult {
    ExecTxResult {
        code,
        log,
        codespace: if code == 0 {
            String::new()
        } else {
            CODESPACE.into()
        },
        ..Default::default()
    }
}

/// Executes the transactions of one height on `state` at CometBFT block time `time`.
/// Deterministic: only the state, the transactions and the time count.
fn execute(state: &State, txs: &[Bytes], time: u64, verified: &mut VerifiedSignatures) -> Outcome {
    let mut st = state.clone();
    let mut out = Outcome {
        state: state.clone(),
        results: Vec::with_capacity(txs.len()),
        block: None,
        cert: None,
        certified: None,
        refused: Vec::new(),
        all_valid: true,
    };
    let time = time.max(st.time());
    let max_txs = st.policy().max_txs_per_block as usize;
    let mut working: Option<State> = None;
    let mut accepted: Vec<SignedTx> = Vec::new();
    for (i, raw) in txs.iter().enumerate() {
        let verdict = match decode_tx(raw) {
            Err(e) => Err(e),
            Ok(NetTx::Certificate(c)) => {
                if i != 0 || out.cert.is_some() {
                    Err(Error::rejected(
                        Rule::Certificate,
                        "a certificate comes first in its block, once",
                    ))
                } else {
                    let mut next = st.clone();
                    match next.apply_certificate(&c) {
                        Ok(()) => {
                            out.certified = Some(next.clone());
                            st = next;
                            out.cert = Some(*c);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            }
            Ok(NetTx::Submission(sub)) => {
                let first = sub.txs.first().map(|t| t.cid);
                let verdict = if !st.is_certified() {
                    Err(Error::rejected(
                        Rule::Certificate,
                        format!("block {} is not certified yet", st.height()),
                    ))
                } else if accepted.len() + sub.txs.len() > max_txs {
                    Err(Error::rejected(
                        Rule::Limits,
                        "the block is full of transactions",
                    ))
                } else {
                    let w = working.get_or_insert_with(|| st.clone());
                    w.accept_submission_with(&sub.txs, time, verified)
                        .map(|()| accepted.extend(sub.txs.iter().cloned()))
                };
                if let (Err(e), Some(first)) = (&verdict, first) {
                    out.refused.push((first, refusal_log(e)));
                }
                verdict
            }
        };
        match verdict {
            Ok(()) => out.results.push(result(0, String::new())),
            Err(e) => {
                out.all_valid = false;
                out.results.push(result(CODE_REFUSED, refusal_log(&e)));
            }
        }
    }
    if !accepted.is_empty() {
        let block = st.next_block(&accepted, time);
        let mut next = st.clone();
        match next.apply_built_block(&block, &accepted) {
            Ok(()) => {
                st = next;
                out.block = Some((block, accepted));
            }
            Err(e) => {
                // Each submission passed alone; the block as a whole did not (its size): none
                // of them commits, every node alike.
                let log = refusal_log(&e);
                out.all_valid = false;
                for (r, raw) in out.results.iter_mut().zip(txs) {
                    if r.code == 0
                        && let Ok(NetTx::Submission(s)) = decode_tx(raw)
                    {
                        *r = result(CODE_REFUSED, log.clone());
                        if let Some(t) = s.txs.first() {
                            out.refused.push((t.cid, log.clone()));
                        }
                    }
                }
            }
        }
    }
    out.state = st;
    out
}

/// The app hash of a state: what CometBFT agrees on after each height.
fn app_hash(state: &State) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"medshare/app-hash/v1\0");
    h.update(state.genesis_cid().to_bytes());
    h.update(state.height().to_be_bytes());
    h.update(state.head().to_bytes());
    if let Some(c) = state.head_cert() {
        h.update(c.to_bytes());
    }
    h.finalize().to_vec()
}

/// CometBFT's validator address of an ed25519 key: the first 20 bytes of its SHA-256.
pub fn validator_address(key: &[u8; 32]) -> [u8; 20] {
    let d = Sha256::digest(key);
    let mut a = [0u8; 20];
    a.copy_from_slice(&d[..20]);
    a
}

/// The authority (id, key) running the validator at `address`.
fn authority_at(state: &State, address: &[u8]) -> Option<(IdentityId, PublicKey)> {
    state
        .authorities()
        .into_iter()
        .find(|a| {
            a.validator
                .is_some_and(|v| validator_address(&v) == address)
        })
        .map(|a| (a.id, a.key))
}

/// The checkpoint a vote extension signs after `outcome`: the head block's, while it awaits a
/// certificate; nothing once it has one.
fn expected_checkpoint(state: &State) -> Option<Checkpoint> {
    (!state.is_certified()).then(|| state.checkpoint())
}

/// Checks that `ext` is `authority`'s valid share over `cp`.
fn check_share(ext: &[u8], cp: &Checkpoint, authority: &(IdentityId, PublicKey)) -> bool {
    let Ok(text) = std::str::from_utf8(ext) else {
        return false;
    };
    let Ok(cert) = Certificate::parse(text) else {
        return false;
    };
    if cert.checkpoint != *cp || cert.signatures.len() != 1 {
        return false;
    }
    let one = std::collections::BTreeMap::from([(authority.0, authority.1.clone())]);
    cert.verify(&one).is_ok()
}

fn time_secs(t: Option<&tendermint_proto::google::protobuf::Timestamp>) -> u64 {
    t.map(|t| t.seconds.max(0) as u64).unwrap_or(0)
}

/// What `FinalizeBlock` computed, written by `Commit`.
struct Pending {
    /// CometBFT's hash of the block (what `storing` is keyed by).
    block_hash: Vec<u8>,
    comet_height: i64,
    outcome: Outcome,
    app_hash: Vec<u8>,
    before: State,
}

/// Work on the node's store done off the consensus path, in commit order: moving the store's
/// head (what readers of the store follow; the node itself restarts from its metadata), and
/// pinning new record versions (fetched over IPFS) and unpinning retired ones.
enum Job {
    Head {
        expected: Cid,
        new: Cid,
    },
    /// Protect a height's ledger objects from kubo's collector, then record that height.
    Keep {
        objects: Vec<Cid>,
        height: u64,
    },
    Pins {
        pin: Vec<Cid>,
        unpin: Vec<Cid>,
    },
}

fn background(store: Store) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("medshare-store".into())
        .spawn(move || {
            for job in rx {
                match job {
                    Job::Head { expected, new } => {
                        let moved = pollster::block_on(
                            store.compare_and_swap_head(Some(&expected), Some(&new)),
                        );
                        if let Err(e) = moved {
                            // Someone else moved it (an operator's repair): follow the node.
                            let current = pollster::block_on(store.head()).ok().flatten();
                            let again = pollster::block_on(
                                store.compare_and_swap_head(current.as_ref(), Some(&new)),
                            );
                            if let Err(e2) = again {
                                eprintln!(
                                    "medshare node: moving the store head to {new}: {e}; {e2}"
                                );
                            }
                        }
                    }
                    Job::Keep { objects, height } => {
                        match pollster::block_on(store.keep(&objects)) {
                            Ok(()) => {
                                let h = height.to_string();
                                if let Err(e) =
                                    pollster::block_on(store.put_meta(KEPT_KEY, Some(h.as_bytes())))
                                {
                                    eprintln!("medshare node: recording kept height {height}: {e}");
                                }
                            }
                            // Kept again at the next restart (everything above the record).
                            Err(e) => eprintln!("medshare node: keeping ledger objects: {e}"),
                        }
                    }
                    Job::Pins { pin, unpin } => {
                        for c in pin {
                            if let Err(e) = pollster::block_on(store.pin(&c)) {
                                eprintln!("medshare node: pinning {c}: {e}");
                            }
                        }
                        for c in unpin {
                            if let Err(e) = pollster::block_on(store.unpin(&c)) {
                                eprintln!("medshare node: unpinning {c}: {e}");
                            }
                        }
                    }
                }
            }
        })
        .ok();
    tx
}

/// What a node does with its authority's key share when a doctor breaks the glass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmergencyMode {
    /// Wait for the operator (`medshare emergency release`).
    #[default]
    Manual,
    /// Release it as soon as the request is certified (the hospital's policy decided it).
    Auto,
}

/// Signature checks remembered by a node (about 5 MiB): more than a full mempool (CometBFT's
/// default holds 5,000 transactions) and a few blocks.
const VERIFIED_CAPACITY: usize = 1 << 16;

/// Heights after which a release still due is sent again (it was lost or refused), or a
/// request the node declined is looked at again.
const RELEASE_RETRY_HEIGHTS: u64 = 10;
/// A request whose window ends sooner than this (seconds of block time) is left alone: the
/// release would arrive after it.
const RELEASE_MARGIN_SECS: u64 = 30;

/// The automatic releases of a node: what is in flight, and the thread that submits.
struct Releaser {
    /// Requests whose release was sent (or declined), with the certified height of that.
    inflight: Arc<Mutex<HashMap<Cid, u64>>>,
    /// The authorities whose doctors this node serves without its operator.
    trust: std::collections::HashSet<IdentityId>,
    /// The next sequence number to use (gaps are allowed, reuse is not).
    next_seq: u64,
    jobs: mpsc::Sender<(Vec<Cid>, Submission)>,
}

impl Releaser {
    fn start(rpc: String, trust: std::collections::HashSet<IdentityId>) -> Releaser {
        let inflight: Arc<Mutex<HashMap<Cid, u64>>> = Arc::default();
        let (tx, rx) = mpsc::channel::<(Vec<Cid>, Submission)>();
        let shared = inflight.clone();
        std::thread::Builder::new()
            .name("medshare-release".into())
            .spawn(move || {
                let seq = match CometSequencer::new(vec![rpc]) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("medshare node: emergency releases disabled: {e}");
                        return;
                    }
                };
                for (requests, sub) in rx {
                    match pollster::block_on(seq.submit(&sub)) {
                        Ok(c) => eprintln!(
                            "medshare node: released key shares for {} emergency request(s) at height {}",
                            requests.len(),
                            c.height
                        ),
                        Err(e) => {
                            eprintln!("medshare node: releasing key shares: {e}");
                            if let Ok(mut f) = shared.lock() {
                                for r in &requests {
                                    f.remove(r);
                                }
                            }
                        }
                    }
                }
            })
            .ok();
        Releaser {
            inflight,
            trust,
            next_seq: 0,
            jobs: tx,
        }
    }
}

/// The medshare ABCI application of one validator.
pub struct NodeApp {
    store: Store,
    genesis: Cid,
    authority: Identity,
    faults: Faults,
    /// The committed state (`None` before `InitChain`).
    state: Option<State>,
    /// The mempool's state: the committed one plus every submission admitted since.
    check: Option<State>,
    comet_height: i64,
    app_hash: Vec<u8>,
    certified: (Cid, u64),
    /// The state of the latest certified block and its certificate's note: what light
    /// clients are answered from.
    proven: Option<(State, String)>,
    index: HashMap<Cid, Place>,
    /// Vote-extension expectations by CometBFT block hash, for this height.
    expected: HashMap<Vec<u8>, Option<Checkpoint>>,
    /// Executions of this height's proposals by CometBFT block hash (ProcessProposal's, reused
    /// by ExtendVote and FinalizeBlock).
    outcomes: HashMap<Vec<u8>, Outcome>,
    pending: Option<Pending>,
    jobs: mpsc::Sender<Job>,
    releaser: Option<Releaser>,
    /// Signature checks that passed here before: each transaction's signatures are verified
    /// once, although `CheckTx`, the mempool's re-checks, `PrepareProposal` and
    /// `ProcessProposal` all meet it.
    verified: VerifiedSignatures,
    /// Threads storing the objects of this height's valid proposals, by CometBFT block hash,
    /// started by `ProcessProposal` so that `Commit` does not wait for kubo.
    storing: HashMap<Vec<u8>, std::thread::JoinHandle<Result<(), String>>>,
}

fn block_on<T>(f: impl std::future::Future<Output = medshare::Result<T>>) -> Result<T, String> {
    pollster::block_on(f).map_err(|e| e.to_string())
}

impl NodeApp {
    /// The application over `store` for the network `genesis`, signing with `authority`.
    /// Restores what the last `Commit` persisted, if anything.
    pub fn open(
        store: Store,
        genesis: Cid,
        authority: Identity,
        faults: Faults,
    ) -> Result<NodeApp, String> {
        let jobs = background(store.clone());
        let mut app = NodeApp {
            store,
            genesis,
            authority,
            faults,
            state: None,
            check: None,
            comet_height: 0,
            app_hash: Vec::new(),
            certified: (genesis, 0),
            proven: None,
            index: HashMap::new(),
            expected: HashMap::new(),
            outcomes: HashMap::new(),
            pending: None,
            jobs,
            releaser: None,
            verified: VerifiedSignatures::new(VERIFIED_CAPACITY),
            storing: HashMap::new(),
        };
        let meta = block_on(app.store.get_meta(META_KEY))?;
        if let Some(raw) = meta {
            let meta: NodeMeta = serde_json::from_slice(&raw)
                .map_err(|e| format!("the node's metadata is damaged: {e}"))?;
            app.restore(meta)?;
        }
        Ok(app)
    }

    /// Releases this authority's key share to every emergency request as soon as it is
    /// certified (`emergency: auto`), submitting through the validator's RPC at `rpc`, for
    /// doctors endorsed by this authority or one of `trust`; each request's justification must
    /// decrypt (the others wait for the operator).
    pub fn release_automatically(&mut self, rpc: String, trust: Vec<IdentityId>) {
        let mut trust: std::collections::HashSet<IdentityId> = trust.into_iter().collect();
        trust.insert(self.authority.id());
        self.releaser = Some(Releaser::start(rpc, trust));
    }

    /// Sends this authority's releases due on the certified `state` (not already in flight).
    fn release_due(&mut self, state: &State) {
        let Some(r) = self.releaser.as_mut() else {
            return;
        };
        let me = self.authority.id();
        let height = state.height();
        let due = state.releases_due(&me, state.time().saturating_add(RELEASE_MARGIN_SECS));
        let Ok(mut inflight) = r.inflight.lock() else {
            return;
        };
        let due: Vec<Cid> = due
            .into_iter()
            .map(|(c, _)| c)
            .filter(|c| {
                inflight
                    .get(c)
                    .is_none_or(|h| height > h + RELEASE_RETRY_HEIGHTS)
            })
            .collect();
        let mut seq = r.next_seq.max(state.last_seq(&me) + 1);
        for request in due {
            // Looked at now: not again before RELEASE_RETRY_HEIGHTS, whatever happens.
            inflight.insert(request, height);
            let Some(e) = state.emergency(&request) else {
                continue;
            };
            if !state
                .endorser(&e.doctor)
                .is_some_and(|a| r.trust.contains(&a))
            {
                eprintln!(
                    "medshare node: emergency request {request} by {} (endorsed by an authority this node does not trust): waiting for `medshare emergency release`",
                    e.doctor
                );
                continue;
            }
            match medshare::vault::emergency_justification(state, &self.authority, &request) {
                Ok(j) if !j.trim().is_empty() => {}
                Ok(_) | Err(_) => {
                    eprintln!(
                        "medshare node: emergency request {request} has no justification this authority can read: waiting for `medshare emergency release`"
                    );
                    continue;
                }
            }
            // One submission per release: a refused one takes no other with it.
            match release_share_tx(state, &self.authority, &request, seq, state.time()) {
                Ok(tx) => {
                    let _ = r.jobs.send((vec![request], Submission { txs: vec![tx] }));
                    seq += 1;
                }
                Err(e) => eprintln!("medshare node: cannot release a share to {request}: {e}"),
            }
        }
        r.next_seq = seq;
    }

    fn restore(&mut self, meta: NodeMeta) -> Result<(), String> {
        let (mut state, _) = block_on(chain::load(
            &self.store,
            &meta.certified,
            Some(&self.genesis),
        ))?;
        if let Some(c) = state.head_cert() {
            let raw = block_on(self.store.get(&c))?;
            let cert =
                CertificateObject::decode(&raw).map_err(|e| format!("certificate {c}: {e}"))?;
            self.proven = Some((state.clone(), cert.certificate.to_note()));
        }
        if meta.head != state.head() {
            // The latest block awaits its certificate: apply it on top.
            let raw = block_on(self.store.get(&meta.head))?;
            let block = Block::decode(&raw).map_err(|e| format!("block {}: {e}", meta.head))?;
            let mut txs = Vec::new();
            for c in &block.header.txs {
                let raw = block_on(self.store.get(c))?;
                txs.push(SignedTx::decode(&raw).map_err(|e| format!("transaction {c}: {e}"))?);
            }
            state
                .apply_block(&block, &txs)
                .map_err(|e| format!("the node's latest block: {e}"))?;
        }
        if app_hash(&state) != hex_decode(&meta.app_hash) {
            return Err("the node's metadata does not match its chain".into());
        }
        // A crash between the metadata and the head leaves the head behind: move it on.
        let head = block_on(self.store.head())?;
        if head != Some(meta.certified) {
            block_on(
                self.store
                    .compare_and_swap_head(head.as_ref(), Some(&meta.certified)),
            )?;
        }
        let kept = block_on(self.store.get_meta(KEPT_KEY))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let unkept = self.index_chain(&state, kept)?;
        if !unkept.is_empty() {
            let mut objects = unkept;
            objects.push(meta.certified);
            block_on(self.store.keep(&objects))?;
            let h = state.height().to_string();
            block_on(self.store.put_meta(KEPT_KEY, Some(h.as_bytes())))?;
        }
        self.comet_height = meta.comet_height;
        self.app_hash = app_hash(&state);
        self.certified = (meta.certified, meta.certified_height);
        self.check = Some(state.clone());
        self.state = Some(state);
        Ok(())
    }

    /// Rebuilds the transaction index by walking the chain back from the head block; returns
    /// the ledger objects of the blocks above height `kept`.
    fn index_chain(&mut self, state: &State, kept: u64) -> Result<Vec<Cid>, String> {
        let mut unkept = Vec::new();
        let mut at = state.head();
        let mut height = state.height();
        while height > 0 {
            let raw = block_on(self.store.get(&at))?;
            let block = Block::decode(&raw).map_err(|e| format!("block {at}: {e}"))?;
            for t in &block.header.txs {
                self.index
                    .insert(*t, Place::Committed { height, block: at });
            }
            if height > kept {
                unkept.push(at);
                unkept.extend(block.header.txs.iter().copied());
                unkept.extend(block.header.parent_cert);
            }
            at = block.header.parent;
            height -= 1;
        }
        Ok(unkept)
    }

    /// Starts storing a valid proposal's objects while consensus goes on (votes, precommits):
    /// they are content-addressed, so storing those of a proposal that is not decided leaves
    /// only unreferenced blocks, never kept. `Commit` waits for the thread, and stores them
    /// itself if it failed or could not start.
    fn store_ahead(&mut self, block_hash: Vec<u8>, outcome: &Outcome) {
        let objects = outcome.objects();
        if objects.is_empty() || self.storing.contains_key(&block_hash) {
            return;
        }
        let store = self.store.clone();
        let started = std::thread::Builder::new()
            .name("medshare-ahead".into())
            .spawn(move || block_on(store.put_many_unkept(&objects)));
        if let Ok(handle) = started {
            self.storing.insert(block_hash, handle);
        }
    }

    fn state(&self) -> Result<&State, String> {
        self.state
            .as_ref()
            .ok_or_else(|| "the chain is not initialised (no InitChain yet)".into())
    }

    /// This node's vote extension for a height whose outcome is `state`.
    fn share_for(&self, state: &State) -> Vec<u8> {
        let Some(mut cp) = expected_checkpoint(state) else {
            return Vec::new();
        };
        if self.faults.bad_share {
            cp.block = self.genesis;
        }
        match sign_share(&cp, &self.authority) {
            Ok(share) => Certificate {
                checkpoint: cp,
                signatures: vec![share],
            }
            .to_note()
            .into_bytes(),
            Err(e) => {
                eprintln!("medshare node: signing a certificate share: {e}");
                Vec::new()
            }
        }
    }

    /// The certificate of the state's head from the shares CometBFT collected, if they make a
    /// quorum (each share checked again here: late precommits are not verified by CometBFT).
    fn certificate(&self, state: &State, commit: Option<&ExtendedCommitInfo>) -> Option<Bytes> {
        let cp = expected_checkpoint(state)?;
        let mut signatures = Vec::new();
        let mut signers = Vec::new();
        for vote in commit.map(|c| c.votes.as_slice()).unwrap_or_default() {
            if vote.block_id_flag != BLOCK_ID_FLAG_COMMIT || vote.vote_extension.is_empty() {
                continue;
            }
            let Some(v) = &vote.validator else { continue };
            let Some(authority) = authority_at(state, &v.address) else {
                continue;
            };
            if signers.contains(&authority.0) || !check_share(&vote.vote_extension, &cp, &authority)
            {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&vote.vote_extension) else {
                continue;
            };
            if let Ok(c) = Certificate::parse(text) {
                signatures.extend(c.signatures);
                signers.push(authority.0);
            }
        }
        let n = state.authorities().len();
        if !medshare::ledger::checkpoint::is_quorum(signatures.len(), n) {
            return None;
        }
        let cert = CertificateObject::new(Certificate {
            checkpoint: cp,
            signatures,
        });
        let mut probe = state.clone();
        probe.apply_certificate(&cert).ok()?;
        Some(Bytes::from(cert.bytes))
    }

    /// `VerifyVoteExtension`'s decision.
    fn check_vote_extension(
        &self,
        req: &RequestVerifyVoteExtension,
    ) -> ResponseVerifyVoteExtension {
        let reject = ResponseVerifyVoteExtension { status: REJECT };
        let accept = ResponseVerifyVoteExtension { status: ACCEPT };
        let Ok(state) = self.state() else {
            return reject;
        };
        let Some(authority) = authority_at(state, &req.validator_address) else {
            // A validator that is no authority has nothing to sign.
            return if req.vote_extension.is_empty() {
                accept
            } else {
                reject
            };
        };
        match self.expected.get(req.hash.as_ref()) {
            Some(None) => {
                if req.vote_extension.is_empty() {
                    accept
                } else {
                    reject
                }
            }
            Some(Some(cp)) => {
                if check_share(&req.vote_extension, cp, &authority) {
                    accept
                } else {
                    reject
                }
            }
            // A block this node has not processed: check what can be checked (a share by
            // that authority over a checkpoint of this network); the proposer checks the
            // shares against the block again before any certificate is made.
            None => {
                if req.vote_extension.is_empty() {
                    return accept;
                }
                let parsed = std::str::from_utf8(&req.vote_extension)
                    .ok()
                    .and_then(|t| Certificate::parse(t).ok());
                match parsed {
                    Some(c)
                        if c.checkpoint.genesis == self.genesis
                            && check_share(&req.vote_extension, &c.checkpoint, &authority) =>
                    {
                        accept
                    }
                    _ => reject,
                }
            }
        }
    }

    /// A transaction with a forged signature (the `forge-proposal` fault).
    fn forged(&self, state: &State) -> Option<Bytes> {
        let tx = Tx {
            genesis: state.genesis_cid(),
            author: self.authority.id(),
            seq: state.last_seq(&self.authority.id()) + 1,
            time: state.time(),
            body: TxBody::AuthorityChange {
                change: medshare::ledger::AuthorityChangeKind::Remove {
                    authority: self.authority.id(),
                },
            },
        };
        let mut sig = self.authority.sign(&SignedTx::signing_bytes(&tx)).ok()?;
        sig[0] ^= 1;
        let forged = SignedTx::assemble(tx, sig, None);
        Some(Bytes::from(Submission { txs: vec![forged] }.encode()))
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER
        .decode(s.as_bytes())
        .unwrap_or_default()
}

fn query_answer(code: u32, log: String, value: Vec<u8>, height: i64) -> ResponseQuery {
    ResponseQuery {
        code,
        log,
        value: Bytes::from(value),
        height,
        codespace: if code == 0 {
            String::new()
        } else {
            CODESPACE.into()
        },
        ..Default::default()
    }
}

impl Application for NodeApp {
    fn info(&mut self, _req: RequestInfo) -> ResponseInfo {
        ResponseInfo {
            data: "medshare".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 1,
            last_block_height: self.comet_height,
            last_block_app_hash: Bytes::from(self.app_hash.clone()),
        }
    }

    fn init_chain(&mut self, req: RequestInitChain) -> Result<ResponseInitChain, String> {
        #[derive(serde::Deserialize)]
        struct AppState {
            genesis: String,
        }
        let app_state: AppState = serde_json::from_slice(&req.app_state_bytes)
            .map_err(|e| format!("app_state of the CometBFT genesis: {e}"))?;
        let raw = data_encoding::BASE64
            .decode(app_state.genesis.as_bytes())
            .map_err(|_| "app_state.genesis is not base64".to_owned())?;
        let genesis = GenesisBlock::decode(&raw).map_err(|e| format!("genesis block: {e}"))?;
        if genesis.cid != self.genesis {
            return Err(format!(
                "CometBFT's genesis carries medshare genesis {}, this node is configured for {}",
                genesis.cid, self.genesis
            ));
        }
        // Each genesis authority with a validator key must be a genesis validator.
        for a in &genesis.genesis.authorities {
            if let Some(v) = a.validator {
                let known = req.validators.iter().any(|u| {
                    matches!(&u.pub_key, Some(CometKey { sum: Some(Sum::Ed25519(k)) }) if k.as_slice() == v)
                });
                if !known {
                    return Err(format!(
                        "authority {} names a validator key CometBFT's genesis lacks",
                        a.key.id()
                    ));
                }
            }
        }
        let state = State::from_genesis(&genesis).map_err(|e| e.to_string())?;
        block_on(self.store.put(&genesis.cid, &genesis.bytes))?;
        let head = block_on(self.store.head())?;
        if head.is_none() {
            block_on(self.store.compare_and_swap_head(None, Some(&genesis.cid)))?;
        }
        self.app_hash = app_hash(&state);
        self.certified = (genesis.cid, 0);
        self.check = Some(state.clone());
        self.state = Some(state);
        Ok(ResponseInitChain {
            app_hash: Bytes::from(self.app_hash.clone()),
            ..Default::default()
        })
    }

    fn query(&mut self, req: RequestQuery) -> ResponseQuery {
        let Ok(state) = self.state() else {
            return query_answer(1, "no chain yet".into(), Vec::new(), 0);
        };
        match req.path.as_str() {
            QUERY_HEAD => {
                let a = HeadAnswer {
                    genesis: state.genesis_cid(),
                    head: self.certified.0,
                    height: self.certified.1,
                };
                query_answer(
                    0,
                    String::new(),
                    serde_json::to_vec(&a).unwrap_or_default(),
                    self.comet_height,
                )
            }
            QUERY_TX => {
                let cid = std::str::from_utf8(&req.data)
                    .ok()
                    .and_then(|t| t.trim().parse::<Cid>().ok());
                let Some(cid) = cid else {
                    return query_answer(1, "data must be a CID".into(), Vec::new(), 0);
                };
                let a = match self.index.get(&cid) {
                    None => TxAnswer {
                        status: "unknown".into(),
                        block: None,
                        height: None,
                        certified_head: None,
                        refused: None,
                    },
                    Some(Place::Committed { height, block }) => TxAnswer {
                        status: "committed".into(),
                        block: Some(*block),
                        height: Some(*height),
                        certified_head: (*height <= self.certified.1).then_some(self.certified.0),
                        refused: None,
                    },
                    Some(Place::Refused { log }) => TxAnswer {
                        status: "refused".into(),
                        block: None,
                        height: None,
                        certified_head: None,
                        refused: Some(log.clone()),
                    },
                };
                query_answer(
                    0,
                    String::new(),
                    serde_json::to_vec(&a).unwrap_or_default(),
                    self.comet_height,
                )
            }
            QUERY_GENESIS => query_answer(
                0,
                String::new(),
                state.genesis().bytes.clone(),
                self.comet_height,
            ),
            QUERY_STATE => {
                let Ok(q) = serde_json::from_slice::<StateQuery>(&req.data) else {
                    return query_answer(
                        1,
                        "data must be a state query: {\"record\": id} or {\"doctor\": id}".into(),
                        Vec::new(),
                        0,
                    );
                };
                let Some((proven, note)) = &self.proven else {
                    return query_answer(1, "no certified block yet".into(), Vec::new(), 0);
                };
                query_answer(
                    0,
                    String::new(),
                    proven.prove(&q, note).to_json().into_bytes(),
                    self.comet_height,
                )
            }
            other => query_answer(
                1,
                format!("unknown query path {}", medshare::text::escape(other)),
                Vec::new(),
                0,
            ),
        }
    }

    fn check_tx(&mut self, req: RequestCheckTx) -> ResponseCheckTx {
        let refuse = |e: &Error| ResponseCheckTx {
            code: CODE_REFUSED,
            log: refusal_log(e),
            codespace: CODESPACE.into(),
            ..Default::default()
        };
        let Some(check) = self.check.as_mut() else {
            return refuse(&Error::rejected(Rule::Genesis, "no chain yet"));
        };
        let sub = match decode_tx(&req.tx) {
            Ok(NetTx::Submission(s)) => s,
            Ok(NetTx::Certificate(_)) => {
                return refuse(&Error::rejected(
                    Rule::Certificate,
                    "certificates are made by the proposer, not submitted",
                ));
            }
            Err(e) => return refuse(&e),
        };
        let time = medshare::platform::now_secs().max(check.time());
        match check.accept_submission_with(&sub.txs, time, &mut self.verified) {
            Ok(()) => ResponseCheckTx::default(),
            Err(e) => refuse(&e),
        }
    }

    fn prepare_proposal(&mut self, req: RequestPrepareProposal) -> ResponsePrepareProposal {
        let Ok(state) = self.state() else {
            return ResponsePrepareProposal::default();
        };
        let mut txs = Vec::new();
        let mut base = state.clone();
        if !state.is_certified() {
            match self.certificate(state, req.local_last_commit.as_ref()) {
                Some(cert) => {
                    if let Ok(NetTx::Certificate(c)) = decode_tx(&cert) {
                        let _ = base.apply_certificate(&c);
                    }
                    txs.push(cert);
                }
                // No quorum of shares yet: nothing can be built on the head; wait.
                None => return ResponsePrepareProposal { txs },
            }
        }
        let time = time_secs(req.time.as_ref()).max(base.time());
        let max_txs = base.policy().max_txs_per_block as usize;
        let max_bytes = req.max_tx_bytes.max(0) as usize;
        let mut bytes: usize = txs.iter().map(|t| t.len() + 16).sum();
        let mut count = 0usize;
        for raw in req.txs {
            let Ok(NetTx::Submission(sub)) = decode_tx(&raw) else {
                continue;
            };
            if count + sub.txs.len() > max_txs || bytes + raw.len() + 16 > max_bytes {
                continue;
            }
            let mut next = base.clone();
            if next
                .accept_submission_with(&sub.txs, time, &mut self.verified)
                .is_ok()
            {
                base = next;
                count += sub.txs.len();
                bytes += raw.len() + 16;
                txs.push(raw);
            }
        }
        if self.faults.forge_proposal
            && base.is_certified()
            && let Some(f) = self.forged(&base)
        {
            txs.push(f);
        }
        ResponsePrepareProposal { txs }
    }

    fn process_proposal(&mut self, req: RequestProcessProposal) -> ResponseProcessProposal {
        let Some(state) = self.state.as_ref() else {
            return ResponseProcessProposal { status: REJECT };
        };
        let outcome = execute(
            state,
            &req.txs,
            time_secs(req.time.as_ref()),
            &mut self.verified,
        );
        let status = if outcome.all_valid {
            ACCEPT
        } else {
            let why: Vec<&str> = outcome
                .results
                .iter()
                .filter(|r| r.code != 0)
                .map(|r| r.log.as_str())
                .collect();
            eprintln!(
                "medshare node: rejected the proposal of height {} by {}: {}",
                req.height,
                data_encoding::HEXUPPER.encode(&req.proposer_address),
                why.join("; ")
            );
            REJECT
        };
        self.expected
            .insert(req.hash.to_vec(), expected_checkpoint(&outcome.state));
        if outcome.all_valid {
            self.store_ahead(req.hash.to_vec(), &outcome);
        }
        self.outcomes.insert(req.hash.to_vec(), outcome);
        ResponseProcessProposal { status }
    }

    fn extend_vote(&mut self, req: RequestExtendVote) -> ResponseExtendVote {
        let Some(state) = self.state.as_ref() else {
            return ResponseExtendVote::default();
        };
        if !self.outcomes.contains_key(req.hash.as_ref()) {
            let outcome = execute(
                state,
                &req.txs,
                time_secs(req.time.as_ref()),
                &mut self.verified,
            );
            self.expected
                .insert(req.hash.to_vec(), expected_checkpoint(&outcome.state));
            self.outcomes.insert(req.hash.to_vec(), outcome);
        }
        let share = self
            .outcomes
            .get(req.hash.as_ref())
            .map(|o| self.share_for(&o.state))
            .unwrap_or_default();
        ResponseExtendVote {
            vote_extension: Bytes::from(share),
        }
    }

    fn verify_vote_extension(
        &mut self,
        req: RequestVerifyVoteExtension,
    ) -> ResponseVerifyVoteExtension {
        let status = self.check_vote_extension(&req);
        if status.status == REJECT {
            eprintln!(
                "medshare node: rejected the certificate share of validator {} at height {}",
                data_encoding::HEXUPPER.encode(&req.validator_address),
                req.height
            );
        }
        status
    }

    fn finalize_block(
        &mut self,
        req: RequestFinalizeBlock,
    ) -> Result<ResponseFinalizeBlock, String> {
        let state = self.state()?.clone();
        // Executed already when the proposal was processed (same hash: same transactions and
        // time on the same state), unless this node is catching up.
        let outcome = match self.outcomes.remove(req.hash.as_ref()) {
            Some(o) => o,
            None => execute(
                &state,
                &req.txs,
                time_secs(req.time.as_ref()),
                &mut self.verified,
            ),
        };
        let validator_updates = if outcome.block.is_some() {
            outcome
                .state
                .validator_updates()
                .iter()
                .map(|u| ValidatorUpdate {
                    pub_key: Some(CometKey {
                        sum: Some(Sum::Ed25519(u.validator.to_vec())),
                    }),
                    power: u.power as i64,
                })
                .collect()
        } else {
            Vec::new()
        };
        let hash = app_hash(&outcome.state);
        let resp = ResponseFinalizeBlock {
            tx_results: outcome.results.clone(),
            validator_updates,
            app_hash: Bytes::from(hash.clone()),
            ..Default::default()
        };
        self.pending = Some(Pending {
            block_hash: req.hash.to_vec(),
            comet_height: req.height,
            outcome,
            app_hash: hash,
            before: state,
        });
        Ok(resp)
    }

    fn commit(&mut self) -> Result<ResponseCommit, String> {
        let Some(p) = self.pending.take() else {
            return Err("Commit without FinalizeBlock".into());
        };
        let o = &p.outcome;
        let objects: Vec<Cid> = o.object_refs().iter().map(|(cid, _)| *cid).collect();
        let mut pin = Vec::new();
        let mut unpin = Vec::new();
        if let Some((_, txs)) = &o.block {
            for t in txs {
                if let TxBody::PublishRecord {
                    record, content, ..
                } = &t.tx.body
                {
                    pin.push(*content);
                    if let Some(old) = p.before.contents(record).last() {
                        unpin.push(*old);
                    }
                }
            }
        }
        // Stored before the metadata below names them: by the thread ProcessProposal started
        // (see `store_ahead`), or now if it has not or it failed. Protected from kubo's
        // collector in the background (re-done at restart for anything not yet recorded as
        // kept).
        let ahead = self
            .storing
            .remove(&p.block_hash)
            .is_some_and(|h| matches!(h.join(), Ok(Ok(()))));
        if !ahead {
            block_on(self.store.put_many_unkept(&o.objects()))?;
        }
        let certified = match &o.cert {
            Some(c) => (c.cid, c.certificate.checkpoint.height),
            None => self.certified,
        };
        let meta = NodeMeta {
            comet_height: p.comet_height,
            app_hash: data_encoding::HEXLOWER.encode(&p.app_hash),
            certified: certified.0,
            certified_height: certified.1,
            head: o.state.head(),
        };
        let raw = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
        block_on(self.store.put_meta(META_KEY, Some(&raw)))?;
        if certified.0 != self.certified.0 {
            let _ = self.jobs.send(Job::Head {
                expected: self.certified.0,
                new: certified.0,
            });
        }
        if let Some((block, txs)) = &o.block {
            for t in txs {
                self.index.insert(
                    t.cid,
                    Place::Committed {
                        height: block.header.height,
                        block: block.cid,
                    },
                );
            }
        }
        for (cid, log) in &o.refused {
            self.index
                .entry(*cid)
                .or_insert_with(|| Place::Refused { log: log.clone() });
        }
        if !objects.is_empty() {
            let _ = self.jobs.send(Job::Keep {
                objects,
                height: o.state.height(),
            });
        }
        if !pin.is_empty() || !unpin.is_empty() {
            let _ = self.jobs.send(Job::Pins { pin, unpin });
        }
        if let (Some(c), Some(s)) = (&o.cert, &o.certified) {
            self.proven = Some((s.clone(), c.certificate.to_note()));
            let s = s.clone();
            self.release_due(&s);
        }
        self.certified = certified;
        self.comet_height = p.comet_height;
        self.app_hash = p.app_hash;
        self.check = Some(o.state.clone());
        self.state = Some(p.outcome.state);
        self.expected.clear();
        self.outcomes.clear();
        // Other proposals of this height (rounds that failed): their threads finish alone;
        // what they stored is unreferenced and never kept.
        self.storing.clear();
        Ok(ResponseCommit { retain_height: 0 })
    }
}

/// Shared handle to the application, for the ABCI server.
pub type SharedApp = Arc<std::sync::Mutex<NodeApp>>;
