//! Loading and verifying a chain from a store: from its genesis (a full verification) or from a
//! state already verified (incrementally, as a replica syncs).
//!
//! A store's head pointer names either the genesis block (a chain with no block yet) or the
//! certificate of the latest block. Walking back, each certificate names its block, and each
//! block names its parent and its parent's certificate, down to the genesis block. Replaying
//! forwards checks every rule of every block and every certificate; the transactions' signature
//! checks of one batch of blocks run on the other cores while the rules of the next batch are
//! checked on this one. If anything fails, the blocks are replayed one check at a time so that
//! the error reported is exactly the first one in chain order.

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::ledger::apply::{SigCheck, verify_checks};
use crate::ledger::codec::{Block, CertificateObject, GenesisBlock, SignedTx, object_type};
use crate::ledger::state::State;
use crate::platform::batch;
use crate::rule::Rule;
use crate::store::Store;

/// What a verification checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// The network's genesis block.
    pub genesis: Cid,
    /// The network's name.
    pub network: String,
    /// Blocks verified, genesis included.
    pub blocks: u64,
    /// Transactions verified.
    pub transactions: u64,
    /// Height of the head block.
    pub height: u64,
    /// The head pointer: the head block's certificate (or the genesis block).
    pub head: Cid,
    /// Authorities in effect at the head.
    pub authorities: usize,
}

/// A block with its certificate, as found walking back from a head.
struct Link {
    block: Block,
    cert: CertificateObject,
}

fn chain_error(height: Option<u64>, rule: Rule, detail: String) -> Error {
    Error::InvalidChain {
        height,
        tx: None,
        rule,
        detail,
    }
}

/// Fetches a ledger object, turning a hash mismatch into a chain error.
async fn fetch(store: &Store, cid: &Cid, height: Option<u64>) -> Result<Vec<u8>> {
    store.get(cid).await.map_err(|e| match e {
        Error::CidMismatch { expected, actual } => chain_error(
            height,
            Rule::Cid,
            format!("object {expected} has the bytes of {actual}"),
        ),
        other => other,
    })
}

/// Fetches and decodes the genesis block `cid`.
pub async fn fetch_genesis(store: &Store, cid: &Cid) -> Result<GenesisBlock> {
    let raw = fetch(store, cid, Some(0)).await?;
    GenesisBlock::decode(&raw)
        .map_err(|d| chain_error(Some(0), Rule::Genesis, format!("{cid}: {d}")))
}

async fn fetch_block(store: &Store, cid: &Cid, height: Option<u64>) -> Result<Block> {
    let raw = fetch(store, cid, height).await?;
    Block::decode(&raw)
        .map_err(|d| chain_error(height, Rule::Encoding, format!("block {cid}: {d}")))
}

async fn fetch_cert(store: &Store, cid: &Cid, height: Option<u64>) -> Result<CertificateObject> {
    let raw = fetch(store, cid, height).await?;
    CertificateObject::decode(&raw)
        .map_err(|d| chain_error(height, Rule::Certificate, format!("certificate {cid}: {d}")))
}

async fn fetch_txs(store: &Store, block: &Block) -> Result<Vec<SignedTx>> {
    let h = block.header.height;
    let mut txs = Vec::with_capacity(block.header.txs.len());
    for (i, cid) in block.header.txs.iter().enumerate() {
        let raw = fetch(store, cid, Some(h)).await.map_err(|e| match e {
            Error::InvalidChain {
                height,
                rule,
                detail,
                ..
            } => Error::InvalidChain {
                height,
                tx: Some(i),
                rule,
                detail,
            },
            other => other,
        })?;
        txs.push(
            SignedTx::decode(&raw).map_err(|detail| Error::InvalidChain {
                height: Some(h),
                tx: Some(i),
                rule: Rule::Encoding,
                detail,
            })?,
        );
    }
    Ok(txs)
}

/// What a head pointer names.
pub enum Head {
    /// The genesis block: no block yet.
    Genesis(GenesisBlock),
    /// The certificate of the latest block.
    Certified(CertificateObject),
}

/// Fetches what a head pointer names.
pub async fn fetch_head(store: &Store, head: &Cid) -> Result<Head> {
    let raw = fetch(store, head, None).await?;
    match object_type(&raw).as_deref() {
        Some("genesis") => GenesisBlock::decode(&raw)
            .map(Head::Genesis)
            .map_err(|d| chain_error(Some(0), Rule::Genesis, d)),
        Some("certificate") => CertificateObject::decode(&raw)
            .map(Head::Certified)
            .map_err(|d| chain_error(None, Rule::Certificate, format!("head {head}: {d}"))),
        _ => Err(chain_error(
            None,
            Rule::Encoding,
            format!("the head {head} is neither a genesis block nor a certificate"),
        )),
    }
}

/// The genesis CID the chain ending at `head` belongs to (read from the head object itself).
pub async fn genesis_of(store: &Store, head: &Cid) -> Result<Cid> {
    Ok(match fetch_head(store, head).await? {
        Head::Genesis(_) => *head,
        Head::Certified(c) => c.certificate.checkpoint.genesis,
    })
}

/// Walks back from the certificate `head` to the block `stop` (exclusive; the genesis block
/// or a block already verified), returning the links oldest first.
async fn walk_back(
    store: &Store,
    head: CertificateObject,
    stop: &Cid,
    stop_height: u64,
) -> Result<Vec<Link>> {
    let mut links: Vec<Link> = Vec::new();
    let mut cert = head;
    loop {
        let cp = cert.certificate.checkpoint.clone();
        if cp.height <= stop_height {
            return Err(chain_error(
                Some(cp.height),
                Rule::Parent,
                format!("the chain does not descend from block {stop_height} ({stop})"),
            ));
        }
        if let Some(last) = links.last()
            && cp.height + 1 != last.block.header.height
        {
            return Err(chain_error(
                Some(cp.height),
                Rule::Height,
                "a certificate's height does not precede its child's".into(),
            ));
        }
        let block = fetch_block(store, &cp.block, Some(cp.height)).await?;
        if block.header.height != cp.height {
            return Err(chain_error(
                Some(cp.height),
                Rule::Certificate,
                format!(
                    "the certificate names block {}, which has height {}",
                    cp.height, block.header.height
                ),
            ));
        }
        let parent = block.header.parent;
        let parent_cert = block.header.parent_cert;
        links.push(Link { block, cert });
        if parent == *stop {
            break;
        }
        let Some(pc) = parent_cert else {
            return Err(chain_error(
                Some(cp.height),
                Rule::Parent,
                format!("the chain does not descend from {stop}"),
            ));
        };
        cert = fetch_cert(store, &pc, Some(cp.height - 1)).await?;
    }
    links.reverse();
    Ok(links)
}

/// Applies `links` (oldest first) to `state`, with parallel signature checks; on any failure
/// replays one check at a time to report exactly the first error. Returns the transactions.
async fn replay(store: &Store, state: &mut State, links: &[Link]) -> Result<u64> {
    let base = state.clone();
    let mut work = state.clone();
    let mut pending: Vec<SigCheck> = Vec::new();
    let mut transactions = 0u64;
    let mut clean = true;
    'batches: for batch in links.chunks(batch::VERIFY) {
        // Only the fetching is async; checking the objects' hashes and decoding them happen
        // below, on this thread, while another worker verifies the previous batch's signatures.
        let mut fetched = Vec::with_capacity(batch.len());
        for link in batch {
            let mut raw = Vec::with_capacity(link.block.header.txs.len());
            for cid in &link.block.header.txs {
                match store.get_unchecked(cid).await {
                    Ok(bytes) => raw.push(bytes),
                    Err(_) => {
                        clean = false;
                        break 'batches;
                    }
                }
            }
            fetched.push(raw);
        }
        let mut checks = Vec::new();
        let (applied, previous_ok) = crate::platform::join(
            || -> Result<u64> {
                let mut n = 0u64;
                for (link, raw) in batch.iter().zip(&fetched) {
                    let mut txs = Vec::with_capacity(raw.len());
                    let mut messages = Vec::with_capacity(raw.len());
                    for (cid, bytes) in link.block.header.txs.iter().zip(raw) {
                        let (tx, message) =
                            SignedTx::decode_with_message(bytes).map_err(Error::MalformedNode)?;
                        // Decoding hashed the bytes for the transaction's CID: this is the
                        // check a fetch makes (a mismatch is reported exactly by the replay
                        // one check at a time below).
                        if tx.cid != *cid {
                            return Err(Error::MalformedNode(format!("{cid}: other bytes")));
                        }
                        txs.push(tx);
                        messages.push(message);
                    }
                    work.apply_block_deferred(&link.block, &txs, Some(&messages), &mut checks)?;
                    work.apply_certificate(&link.cert)?;
                    n += txs.len() as u64;
                }
                Ok(n)
            },
            || verify_checks(&pending),
        );
        match (applied, previous_ok) {
            (Ok(n), true) => transactions += n,
            _ => {
                clean = false;
                break;
            }
        }
        pending = checks;
    }
    if clean && verify_checks(&pending) {
        *state = work;
        return Ok(transactions);
    }
    // Something failed: find exactly what, in order.
    let mut work = base;
    let mut transactions = 0u64;
    for link in links {
        let txs = fetch_txs(store, &link.block).await?;
        transactions += txs.len() as u64;
        work.apply_block(&link.block, &txs)?;
        work.apply_certificate(&link.cert)?;
    }
    *state = work;
    Ok(transactions)
}

/// Loads and fully verifies the chain whose head pointer is `head`, from its genesis. With
/// `expected`, the chain must belong to that network ([`Error::WrongGenesis`] otherwise).
pub async fn load(
    store: &Store,
    head: &Cid,
    expected: Option<&Cid>,
) -> Result<(State, VerifyReport)> {
    let (genesis, tip) = match fetch_head(store, head).await? {
        Head::Genesis(g) => (g, None),
        Head::Certified(c) => {
            let g = fetch_genesis(store, &c.certificate.checkpoint.genesis).await?;
            (g, Some(c))
        }
    };
    if let Some(e) = expected
        && *e != genesis.cid
    {
        return Err(Error::WrongGenesis {
            expected: *e,
            found: genesis.cid,
        });
    }
    let mut state = State::from_genesis(&genesis)?;
    let links = match tip {
        None => Vec::new(),
        Some(c) => walk_back(store, c, &genesis.cid, 0).await?,
    };
    let transactions = replay(store, &mut state, &links).await?;
    let report = VerifyReport {
        genesis: genesis.cid,
        network: state.network().to_owned(),
        blocks: state.height() + 1,
        transactions,
        height: state.height(),
        head: state.head_pointer(),
        authorities: state.authorities().len(),
    };
    Ok((state, report))
}

/// The state after the blocks between `base`'s head and the head pointer `head` (which must
/// descend from it), each verified; the newest block's time must not be ahead of `now` (the
/// accepting party's clock) beyond the policy's skew. Returns the new state and how many blocks
/// were applied. `base` itself is not changed.
pub async fn extend(store: &Store, base: &State, head: &Cid, now: u64) -> Result<(State, u64)> {
    if *head == base.head_pointer() {
        return Ok((base.clone(), 0));
    }
    let cert = match fetch_head(store, head).await? {
        Head::Genesis(g) if g.cid == base.genesis_cid() => {
            return Err(Error::InvalidChain {
                height: Some(0),
                tx: None,
                rule: Rule::Parent,
                detail: format!(
                    "offered the bare genesis block, this replica is at block {}",
                    base.height()
                ),
            });
        }
        Head::Genesis(g) => {
            return Err(Error::WrongGenesis {
                expected: base.genesis_cid(),
                found: g.cid,
            });
        }
        Head::Certified(c) => c,
    };
    if cert.certificate.checkpoint.genesis != base.genesis_cid() {
        return Err(Error::WrongGenesis {
            expected: base.genesis_cid(),
            found: cert.certificate.checkpoint.genesis,
        });
    }
    let mut state = base.clone();
    // A base whose head block is not certified yet (a node between blocks) takes that block's
    // certificate.
    if cert.certificate.checkpoint.block == base.head() && !base.is_certified() {
        state.apply_certificate(&cert)?;
        return Ok((state, 0));
    }
    let links = walk_back(store, cert, &base.head(), base.height()).await?;
    if !state.is_certified()
        && let Some(pc) = links.first().and_then(|l| l.block.header.parent_cert)
    {
        let c = fetch_cert(store, &pc, Some(state.height())).await?;
        state.apply_certificate(&c)?;
    }
    if let Some(newest) = links.last() {
        state.check_not_future(newest.block.header.height, newest.block.header.time, now)?;
    }
    replay(store, &mut state, &links).await?;
    Ok((state, links.len() as u64))
}

/// Every transaction CID of the chain ending at `state`'s head block, in log order (the leaves
/// of the transaction log): the blocks are walked back from the head.
pub async fn log_cids(store: &Store, state: &State) -> Result<Vec<Cid>> {
    let mut blocks = Vec::with_capacity(state.height() as usize);
    let mut at = state.head();
    let mut height = state.height();
    while height > 0 {
        let block = fetch_block(store, &at, Some(height)).await?;
        at = block.header.parent;
        blocks.push(block.header.txs);
        height -= 1;
    }
    Ok(blocks.into_iter().rev().flatten().collect())
}

/// The block at `height` of the chain ending at `state`'s head block (walked back from it).
pub async fn block_at(store: &Store, state: &State, height: u64) -> Result<Block> {
    if height == 0 || height > state.height() {
        return Err(Error::InvalidInput(format!(
            "no block {height} in a chain of {} blocks",
            state.height()
        )));
    }
    let mut at = state.head();
    let mut h = state.height();
    loop {
        let block = fetch_block(store, &at, Some(h)).await?;
        if h == height {
            return Ok(block);
        }
        at = block.header.parent;
        h -= 1;
    }
}

/// Finds the newest chain of the network `genesis` among the blocks of a store that can list
/// them: the certificate of the highest block whose chain verifies from genesis (or the genesis
/// block itself). What `medshare repair` sets a damaged head pointer to.
pub async fn find_tip(store: &Store, genesis: &Cid) -> Result<Option<Cid>> {
    let Some(all) = store.list().await? else {
        return Err(Error::Backend("this store cannot list its blocks".into()));
    };
    let mut certs: Vec<(u64, Cid)> = Vec::new();
    let mut has_genesis = false;
    for listed in all {
        // Listing may not know codecs: ledger objects are DAG-CBOR.
        let cid = Cid::v1_from_digest(crate::cid::DAG_CBOR, *listed.digest());
        if cid == *genesis {
            has_genesis = true;
            continue;
        }
        let Ok(Some(raw)) = store.get_opt(&cid).await else {
            continue;
        };
        if object_type(&raw).as_deref() != Some("certificate") {
            continue;
        }
        if let Ok(c) = CertificateObject::decode(&raw)
            && c.certificate.checkpoint.genesis == *genesis
        {
            certs.push((c.certificate.checkpoint.height, cid));
        }
    }
    certs.sort();
    while let Some((_, cid)) = certs.pop() {
        if load(store, &cid, Some(genesis)).await.is_ok() {
            return Ok(Some(cid));
        }
    }
    Ok(has_genesis.then_some(*genesis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::checkpoint::{Certificate, sign_share};
    use crate::ledger::codec::{AuthorityKey, Genesis, Policy, Tx, TxBody};
    use crate::{DataKey, Identity, RecordId, Role};

    fn key(role: Role, pem: &str) -> Identity {
        Identity::from_pkcs8_pem(role, "k", pem).unwrap()
    }

    /// A chain of 40 certified blocks (more than two verification batches), one transaction
    /// each, with the transactions' signatures forged at the heights `forged_txs` and the
    /// certificates' at `forged_certs`. Returns its store and head.
    fn forged_chain(forged_txs: &[u64], forged_certs: &[u64]) -> (Store, Cid) {
        let auth = key(
            Role::Authority,
            include_str!("../../testdata/keys/authority-2048.pem"),
        );
        let p = key(
            Role::Patient,
            include_str!("../../testdata/keys/patient-2048.pem"),
        );
        let genesis = GenesisBlock::new(Genesis {
            network: "t".into(),
            time: 1,
            nonce: [0; 16],
            authorities: vec![AuthorityKey {
                key: auth.public().clone(),
                validator: None,
            }],
            policy: Policy::default(),
        });
        let store = Store::memory();
        let mut state = State::from_genesis(&genesis).unwrap();
        let put = |cid: Cid, bytes: Vec<u8>| pollster::block_on(store.put(&cid, &bytes)).unwrap();
        put(genesis.cid, genesis.bytes.clone());
        for h in 1..=40u64 {
            let body = if h == 1 {
                TxBody::RegisterPatient {
                    key: p.public().clone(),
                }
            } else {
                let record = RecordId::from_bytes([h as u8; 16]);
                let dek = DataKey::from_bytes([1; 32]);
                TxBody::PublishRecord {
                    record,
                    version: 1,
                    content: Cid::dag_cbor(&[h as u8]),
                    size: 1,
                    commitment: [0; 32],
                    owner_key: dek.wrap(p.public(), &record, 1).unwrap(),
                }
            };
            let tx = Tx {
                genesis: genesis.cid,
                author: p.id(),
                seq: h,
                time: h,
                body,
            };
            let mut stx = crate::ledger::SignedTx::sign(tx, &p).unwrap();
            if forged_txs.contains(&h) {
                stx.sig[7] ^= 1;
                stx = crate::ledger::SignedTx::assemble(stx.tx, stx.sig, None);
            }
            let block = state.next_block(std::slice::from_ref(&stx), h);
            state
                .apply_block_unsigned(&block, std::slice::from_ref(&stx))
                .unwrap();
            let cp = state.checkpoint();
            let mut share = sign_share(&cp, &auth).unwrap();
            if forged_certs.contains(&h) {
                share.sig[7] ^= 1;
            }
            let cert = CertificateObject::new(Certificate {
                signatures: vec![share],
                checkpoint: cp,
            });
            if forged_certs.contains(&h) {
                // Taken as the head's certificate without its check (what a forger's chain
                // builder does).
                state.head_cert = Some(cert.cid);
            } else {
                state.apply_certificate(&cert).unwrap();
            }
            put(stx.cid, stx.bytes.clone());
            put(block.cid, block.bytes.clone());
            put(cert.cid, cert.bytes.clone());
        }
        let head = state.head_pointer();
        (store, head)
    }

    fn first_error(forged_txs: &[u64], forged_certs: &[u64]) -> Error {
        let (store, head) = forged_chain(forged_txs, forged_certs);
        match pollster::block_on(load(&store, &head, None)) {
            Err(e) => e,
            Ok(_) => panic!("a forged chain loaded"),
        }
    }

    #[test]
    fn parallel_verification_reports_the_first_error_in_chain_order() {
        // Forged transaction signatures in blocks 23 and 31: the error names block 23,
        // transaction 0.
        match first_error(&[23, 31], &[]) {
            Error::InvalidChain {
                height: Some(23),
                tx: Some(0),
                rule: Rule::TxSignature,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_forged_certificate_is_reported_in_chain_order_too() {
        // A forged certificate among forged transactions (checked on another core in
        // batches): whichever comes first in the chain is the error.
        for (txs, certs, height, rule, tx) in [
            (&[][..], &[27][..], 27, Rule::Certificate, None),
            (&[23], &[17], 17, Rule::Certificate, None),
            (&[12], &[20], 12, Rule::TxSignature, Some(0)),
        ] {
            match first_error(txs, certs) {
                Error::InvalidChain {
                    height: Some(h),
                    tx: t,
                    rule: r,
                    detail,
                } => {
                    assert_eq!((h, r, t), (height, rule, tx), "{detail}");
                    if rule == Rule::Certificate {
                        assert!(detail.contains("does not verify"), "{detail}");
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
