//! Sequencers: where signed transactions go to become part of the chain.
//!
//! An author (a patient's phone, a doctor's browser, a hospital system) builds and signs its
//! transactions and stores any record content itself; it never holds an authority's key. It
//! hands the signed transactions to a [`Sequencer`], which returns once they are in a certified
//! block, or says which rule refused them. Two implementations:
//!
//! * [`LocalSequencer`]: one local authority orders, builds and certifies blocks in this
//!   process (the demo, tests, a single clinic). Its chain is the network format with one
//!   authority and certificates of one signature.
//! * [`comet::CometSequencer`]: a medshare network on CometBFT, reached over a validator's RPC.

pub mod comet;
pub mod light;

use std::sync::{Arc, Mutex};

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{Identity, Role};
use crate::ledger::checkpoint::{Certificate, share};
use crate::ledger::codec::{
    AuthorityKey, CertificateObject, Genesis, GenesisBlock, Policy, Submission,
};
use crate::ledger::{State, chain};
use crate::offload::Offload;
use crate::platform::MaybeSendSync;
use crate::store::{Block as StoredBlock, Store};

/// Unix time in seconds, as a vault or a sequencer sees it (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::platform::now_secs)
}

/// Where a submission landed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    /// Height of the block holding it.
    pub height: u64,
    /// That block.
    pub block: Cid,
    /// The head pointer once it was certified: the certificate of that block or of a later one.
    pub head: Cid,
}

/// Takes signed transactions and returns once they are in a certified block.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Sequencer: MaybeSendSync {
    /// The latest head pointer the sequencer knows (a certificate, or the genesis block).
    async fn head(&self) -> Result<Option<Cid>>;

    /// Submits `submission` (its transactions commit together, in order, or not at all) and
    /// waits until a certified block holds them. A refusal is [`Error::Rejected`] naming the
    /// rule; a network that does not commit in time is [`Error::Timeout`].
    async fn submit(&self, submission: &Submission) -> Result<Committed>;

    /// Offers a state a vault just verified over the same store, so a sequencer that keeps its
    /// own does not verify the chain again ([`LocalSequencer`]). Others ignore it.
    fn adopt(&self, state: &State) {
        let _ = state;
    }

    /// Where a sequencer that signs in this process signs ([`Offload::sign`]), if not by this
    /// crate's code ([`LocalSequencer`]). Others ignore it.
    fn set_offload(&self, offload: Option<Arc<dyn Offload>>) {
        let _ = offload;
    }
}

/// A sequencer in this process: one authority orders the transactions, builds each block and
/// certifies it alone. The authority must be the network's only authority (one signature is
/// then more than two thirds).
pub struct LocalSequencer {
    store: Store,
    authority: Identity,
    /// Other authorities whose keys this process holds, signing every certificate too.
    cosigners: Vec<Identity>,
    clock: Clock,
    state: Mutex<Option<State>>,
    offload: Mutex<Option<Arc<dyn Offload>>>,
}

impl std::fmt::Debug for LocalSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalSequencer({})", self.authority.id())
    }
}

impl LocalSequencer {
    /// A sequencer for the chain in `store`, certified by `authority`.
    pub fn new(store: Store, authority: Identity) -> Result<LocalSequencer> {
        if authority.role() != Role::Authority {
            return Err(Error::InvalidInput(format!(
                "a sequencer certifies blocks with an authority key, not a {}",
                authority.role()
            )));
        }
        Ok(LocalSequencer {
            store,
            authority,
            cosigners: Vec::new(),
            clock: system_clock(),
            state: Mutex::new(None),
            offload: Mutex::new(None),
        })
    }

    /// Replaces the clock (block times, and the future-time check of blocks it adopts).
    pub fn with_clock(mut self, clock: Clock) -> LocalSequencer {
        self.clock = clock;
        self
    }

    /// The certifying authority.
    pub fn authority(&self) -> &Identity {
        &self.authority
    }

    /// Starts a new network in the empty `store`: a genesis block naming `authority` (the only
    /// authority) and `policy`. Returns the sequencer and the genesis CID.
    pub async fn create(
        store: Store,
        network: &str,
        authority: Identity,
        policy: Policy,
    ) -> Result<(LocalSequencer, Cid)> {
        LocalSequencer::create_with(store, network, vec![authority], policy).await
    }

    /// Starts a new network of several authorities whose keys are all in this process, each
    /// signing every certificate: tests and demos of what needs several authorities
    /// (break-glass access). On a real network each authority keeps its key on its own node.
    pub async fn create_with(
        store: Store,
        network: &str,
        authorities: Vec<Identity>,
        policy: Policy,
    ) -> Result<(LocalSequencer, Cid)> {
        let mut authorities = authorities.into_iter();
        let first = authorities
            .next()
            .ok_or_else(|| Error::InvalidInput("a network needs an authority".into()))?;
        let mut seq = LocalSequencer::new(store, first)?;
        for a in authorities {
            if a.role() != Role::Authority {
                return Err(Error::InvalidInput(format!(
                    "a sequencer certifies blocks with authority keys, not a {}",
                    a.role()
                )));
            }
            seq.cosigners.push(a);
        }
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|_| Error::Rng)?;
        let genesis = GenesisBlock::new(Genesis {
            network: network.to_owned(),
            time: (seq.clock)(),
            nonce,
            authorities: std::iter::once(&seq.authority)
                .chain(&seq.cosigners)
                .map(|a| AuthorityKey {
                    key: a.public().clone(),
                    validator: None,
                })
                .collect(),
            policy,
        });
        let state = State::from_genesis(&genesis)?;
        seq.store.put(&genesis.cid, &genesis.bytes).await?;
        seq.store
            .compare_and_swap_head(None, Some(&genesis.cid))
            .await?;
        *seq.lock_state()? = Some(state);
        Ok((seq, genesis.cid))
    }

    fn lock_state(&self) -> Result<std::sync::MutexGuard<'_, Option<State>>> {
        self.state
            .lock()
            .map_err(|_| Error::Backend("sequencer state lock poisoned".into()))
    }

    /// The state at the store's head, verified (incrementally after the first call).
    async fn current(&self) -> Result<State> {
        let head = self.store.head().await?.ok_or(Error::NoChain)?;
        let known = self.lock_state()?.clone();
        let state = match known {
            Some(s) if s.head_pointer() == head => s,
            Some(s) => {
                chain::extend(&self.store, &s, &head, (self.clock)())
                    .await?
                    .0
            }
            None => chain::load(&self.store, &head, None).await?.0,
        };
        if !state
            .authorities()
            .iter()
            .any(|a| a.id == self.authority.id())
        {
            return Err(Error::Rejected {
                rule: crate::rule::Rule::Certificate,
                detail: format!(
                    "{} is not an authority of this network",
                    self.authority.id()
                ),
            });
        }
        Ok(state)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Sequencer for LocalSequencer {
    async fn head(&self) -> Result<Option<Cid>> {
        self.store.head().await
    }

    fn adopt(&self, state: &State) {
        if let Ok(mut known) = self.lock_state()
            && known.is_none()
        {
            *known = Some(state.clone());
        }
    }

    fn set_offload(&self, offload: Option<Arc<dyn Offload>>) {
        if let Ok(mut o) = self.offload.lock() {
            *o = offload;
        }
    }

    async fn submit(&self, submission: &Submission) -> Result<Committed> {
        let state = self.current().await?;
        let time = (self.clock)().max(state.time());
        // Every rule, signatures included, before anything is written.
        state.check_submission(&submission.txs, time)?;
        let block = state.next_block(&submission.txs, time);
        let mut next = state.clone();
        next.apply_block(&block, &submission.txs)
            .map_err(|e| match e {
                Error::InvalidChain { rule, detail, .. } => Error::Rejected { rule, detail },
                other => other,
            })?;
        let offload = self.offload.lock().ok().and_then(|o| o.clone());
        let body = next.checkpoint().body();
        let mut signatures = Vec::with_capacity(1 + self.cosigners.len());
        let signers = self
            .cosigners
            .iter()
            .filter(|a| next.authorities().iter().any(|x| x.id == a.id()));
        for a in std::iter::once(&self.authority).chain(signers) {
            let sig = crate::offload::sign(offload.as_deref(), a, body.as_bytes()).await?;
            signatures.push(share(a, sig));
        }
        let cert = CertificateObject::new(Certificate {
            checkpoint: next.checkpoint(),
            signatures,
        });
        next.apply_certificate(&cert).map_err(|e| match e {
            Error::InvalidChain { detail, .. } => Error::Rejected {
                rule: crate::rule::Rule::Certificate,
                detail: format!(
                    "this sequencer's authority alone cannot certify a block: {detail}"
                ),
            },
            other => other,
        })?;
        let mut objects: Vec<StoredBlock> = submission
            .txs
            .iter()
            .map(|t| StoredBlock {
                cid: t.cid,
                data: t.bytes.clone(),
            })
            .collect();
        objects.push(StoredBlock {
            cid: block.cid,
            data: block.bytes.clone(),
        });
        objects.push(StoredBlock {
            cid: cert.cid,
            data: cert.bytes.clone(),
        });
        self.store.put_many(&objects).await?;
        self.store
            .compare_and_swap_head(Some(&state.head_pointer()), Some(&cert.cid))
            .await?;
        let committed = Committed {
            height: next.height(),
            block: block.cid,
            head: cert.cid,
        };
        *self.lock_state()? = Some(next);
        Ok(committed)
    }
}

/// A vault's read-only "sequencer": the head is the store's, and nothing can be submitted.
#[derive(Debug)]
pub struct ReadOnly(pub Store);

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Sequencer for ReadOnly {
    async fn head(&self) -> Result<Option<Cid>> {
        self.0.head().await
    }

    async fn submit(&self, _submission: &Submission) -> Result<Committed> {
        Err(Error::ReadOnly)
    }
}
