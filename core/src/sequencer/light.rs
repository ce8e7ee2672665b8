//! A light client of a medshare network: asks a node about the access state and believes only
//! what [`Verifier`] proves, holding nothing but the genesis CID and its trust (the
//! authorities and the largest checkpoint it verified), which the caller keeps between
//! sessions with [`LightClient::trust`].

use std::sync::Mutex;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::IdentityId;
use crate::ledger::GenesisBlock;
use crate::ledger::checkpoint::Checkpoint;
use crate::ledger::light::{
    DoctorRecord, LightAnswer, RecordAccess, StateAnswer, StateQuery, Verifier,
};
use crate::record::RecordId;
use crate::sequencer::comet::{CometSequencer, QUERY_GENESIS, QUERY_STATE};

/// A client that reads proven access answers from a node (see the module docs).
#[derive(Debug)]
pub struct LightClient {
    node: CometSequencer,
    verifier: Mutex<Verifier>,
}

impl LightClient {
    /// Connects through `node` to the network `genesis`. With `trust` (what
    /// [`LightClient::trust`] returned in an earlier session) the client starts from it, so a
    /// node can never take it back to an older state; without, from the genesis block, which
    /// is fetched from the node and checked against `genesis`.
    pub async fn connect(
        node: CometSequencer,
        genesis: &Cid,
        trust: Option<&str>,
    ) -> Result<LightClient> {
        let verifier = match trust {
            Some(t) => Verifier::from_json(t, genesis)?,
            None => {
                let raw = node
                    .query(QUERY_GENESIS, &[])
                    .await?
                    .ok_or_else(|| Error::Unavailable("the node sent no genesis block".into()))?;
                let found = Cid::dag_cbor(&raw);
                if found != *genesis {
                    return Err(Error::WrongGenesis {
                        expected: *genesis,
                        found,
                    });
                }
                let block = GenesisBlock::decode(&raw).map_err(|e| Error::InvalidChain {
                    height: Some(0),
                    tx: None,
                    rule: crate::rule::Rule::Encoding,
                    detail: e,
                })?;
                Verifier::new(&block)?
            }
        };
        Ok(LightClient {
            node,
            verifier: Mutex::new(verifier),
        })
    }

    /// Asks `query`; the answer is verified (and the trust moved forward) before it is
    /// returned.
    pub async fn ask(&self, query: StateQuery) -> Result<LightAnswer> {
        let data = serde_json::to_vec(&query).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let raw = self
            .node
            .query(QUERY_STATE, &data)
            .await?
            .ok_or_else(|| Error::Unavailable("the node sent no state answer".into()))?;
        let answer = StateAnswer::from_json(&raw)?;
        self.verifier
            .lock()
            .map_err(|_| Error::Backend("light client lock poisoned".into()))?
            .verify(&query, &answer)
    }

    /// `record`'s owner, latest version and the grants on it (`None`: no such record).
    pub async fn access_list(&self, record: &RecordId) -> Result<Option<RecordAccess>> {
        match self.ask(StateQuery::Record(*record)).await? {
            LightAnswer::Record(r) => Ok(r),
            LightAnswer::Doctor(_) => Err(Error::InvalidProof("answer of the wrong kind".into())),
        }
    }

    /// The records whose latest version `doctor` holds a grant on (expired ones included,
    /// with their expiry), sorted by record id.
    pub async fn records_of(&self, doctor: &IdentityId) -> Result<Vec<DoctorRecord>> {
        match self.ask(StateQuery::Doctor(*doctor)).await? {
            LightAnswer::Doctor(r) => Ok(r),
            LightAnswer::Record(_) => Err(Error::InvalidProof("answer of the wrong kind".into())),
        }
    }

    /// The largest checkpoint verified so far.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.verifier
            .lock()
            .ok()
            .and_then(|v| v.checkpoint().cloned())
    }

    /// The trust to keep for the next session (JSON).
    pub fn trust(&self) -> String {
        self.verifier
            .lock()
            .map(|v| v.to_json())
            .unwrap_or_default()
    }
}
