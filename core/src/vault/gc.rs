//! Housekeeping: deleting retired record versions (resumably), collecting garbage left by
//! interrupted writes, and checking that every current version's content is present.
//!
//! Deleting a retired version first records its root in the store's `pending-deletions` value,
//! then deletes its blocks leaves first and the root last, then clears the record. A process
//! killed half-way leaves the root (and the record) in place, and the next writable open
//! finishes the job; [`Vault::gc`] removes whatever is reachable from nothing the chain needs.

use std::collections::HashSet;

use crate::cid::{Cid, DAG_PB};
use crate::error::{Error, Result};
use crate::ledger::chain::{self, Head};
use crate::record::RecordId;
use crate::unixfs::pb;
use crate::vault::Vault;

const PENDING: &str = "pending-deletions";
/// Most blocks one record version's DAG may have when walked for deletion, export or pinning
/// (a 1 TiB record of 1 MiB leaves has about 2^20 + 2^10).
const MAX_DAG_BLOCKS: usize = 1 << 21;
/// Deepest DAG walked.
const MAX_DAG_DEPTH: usize = 8;

/// What [`Vault::gc`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GcReport {
    /// Blocks the chain and the current record versions need.
    pub live: usize,
    /// Blocks deleted.
    pub deleted: usize,
}

/// What [`Vault::verify_content`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContentReport {
    /// Current record versions checked.
    pub records: usize,
    /// Blocks checked (each fetched and hash-checked).
    pub blocks: usize,
    /// Records whose current content is missing or damaged, with the reason.
    pub missing: Vec<(RecordId, String)>,
}

impl Vault {
    /// Every block of the UnixFS DAG under `root` that is present, internal nodes after their
    /// children (so deleting in this order removes leaves first and the root last). A visited
    /// set and limits on count and depth bound the walk whatever the DAG links.
    pub(crate) async fn dag_cids(&self, root: Cid) -> Result<Vec<Cid>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        // (cid, depth, children pushed?)
        let mut stack = vec![(root, 0usize, false)];
        while let Some((cid, depth, expanded)) = stack.pop() {
            if expanded {
                out.push(cid);
                continue;
            }
            if !seen.insert(cid.multihash()) {
                continue;
            }
            if seen.len() > MAX_DAG_BLOCKS {
                return Err(Error::MalformedNode(format!(
                    "the DAG under {root} has more than {MAX_DAG_BLOCKS} blocks"
                )));
            }
            if cid.codec() == DAG_PB {
                let Some(bytes) = self.store.get_opt(&cid).await? else {
                    continue;
                };
                if depth >= MAX_DAG_DEPTH {
                    return Err(Error::MalformedNode(format!(
                        "the DAG under {root} is too deep"
                    )));
                }
                stack.push((cid, depth, true));
                for l in pb::decode_node(&bytes)?.links.into_iter().rev() {
                    stack.push((l.cid, depth + 1, false));
                }
            } else if self.store.has(&cid).await? {
                out.push(cid);
            }
        }
        Ok(out)
    }

    /// Deletes the content of retired versions (roots), resumably.
    pub(crate) async fn retire(&self, roots: Vec<Cid>) -> Result<usize> {
        if roots.is_empty() {
            return Ok(0);
        }
        let mut pending = self.pending_deletions().await?;
        pending.extend(roots.iter().copied());
        self.save_pending(&pending).await?;
        let mut deleted = 0;
        for root in &roots {
            self.store.unpin(root).await?;
            for cid in self.dag_cids(*root).await? {
                self.store.delete(&cid).await?;
                deleted += 1;
            }
        }
        let left: Vec<Cid> = self
            .pending_deletions()
            .await?
            .into_iter()
            .filter(|c| !roots.contains(c))
            .collect();
        self.save_pending(&left).await?;
        Ok(deleted)
    }

    async fn pending_deletions(&self) -> Result<Vec<Cid>> {
        let Some(raw) = self.store.get_meta(PENDING).await? else {
            return Ok(Vec::new());
        };
        String::from_utf8_lossy(&raw)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.parse::<Cid>()
                    .map_err(|e| Error::StoreCorrupt(format!("pending deletions list: {e}")))
            })
            .collect()
    }

    async fn save_pending(&self, roots: &[Cid]) -> Result<()> {
        if roots.is_empty() {
            return self.store.put_meta(PENDING, None).await;
        }
        let text: String = roots.iter().map(|c| format!("{c}\n")).collect();
        self.store.put_meta(PENDING, Some(text.as_bytes())).await
    }

    /// Finishes deletions an interrupted process left (run when a writable vault opens). Only
    /// roots of versions the chain has retired are deleted, whatever the list says.
    pub(crate) async fn finish_pending_deletions(&self) -> Result<usize> {
        let pending = self.pending_deletions().await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let retired: HashSet<Cid> = self.state.retired_contents().into_iter().collect();
        let mut deleted = 0;
        for root in &pending {
            if retired.contains(root) {
                self.store.unpin(root).await?;
                for cid in self.dag_cids(*root).await? {
                    self.store.delete(&cid).await?;
                    deleted += 1;
                }
            }
        }
        self.save_pending(&[]).await?;
        Ok(deleted)
    }

    /// The ledger objects of the verified chain: the genesis block, every block, transaction
    /// and certificate.
    pub(crate) async fn chain_cids(&self) -> Result<Vec<Cid>> {
        let mut out = vec![self.state.genesis_cid()];
        let mut pointer = Some(self.state.head_pointer());
        while let Some(p) = pointer {
            match chain::fetch_head(&self.store, &p).await? {
                Head::Genesis(_) => break,
                Head::Certified(c) => {
                    out.push(p);
                    let bytes = self.store.get(&c.certificate.checkpoint.block).await?;
                    let block =
                        crate::ledger::Block::decode(&bytes).map_err(Error::MalformedNode)?;
                    out.push(block.cid);
                    out.extend(block.header.txs.iter().copied());
                    pointer = block.header.parent_cert;
                }
            }
        }
        Ok(out)
    }

    /// Deletes every block that neither the chain nor a current record version needs: what
    /// interrupted publishes, refused imports and interrupted revocations left. Needs a store
    /// that can list its blocks (memory, filesystem); others are [`Error::Backend`].
    pub async fn gc(&self) -> Result<GcReport> {
        let Some(all) = self.store.list().await? else {
            return Err(Error::Backend(
                "this store cannot list its blocks; use its own garbage collector (kubo: `ipfs repo gc` keeps exactly what medshare pinned)".into(),
            ));
        };
        let mut live: HashSet<[u8; 34]> = HashSet::new();
        for c in self.chain_cids().await? {
            live.insert(c.multihash());
        }
        for info in self.state.all_records() {
            for c in self.dag_cids(info.content).await? {
                live.insert(c.multihash());
            }
        }
        let mut deleted = 0;
        for c in all {
            if !live.contains(&c.multihash()) {
                self.store.delete(&c).await?;
                deleted += 1;
            }
        }
        self.save_pending(&[]).await?;
        Ok(GcReport {
            live: live.len(),
            deleted,
        })
    }

    /// Checks that the content of every current record version is present and intact: every
    /// block fetched and hash-checked, every DAG node decoded (nothing is decrypted).
    pub async fn verify_content(&self) -> Result<ContentReport> {
        let mut report = ContentReport::default();
        for info in self.state.all_records() {
            report.records += 1;
            let mut walker = crate::unixfs::Walker::with_limit(info.content, info.size);
            let result: Result<()> = async {
                while let Some(cid) = walker.next_cid() {
                    let bytes = self.store.get(&cid).await?;
                    walker.visit_verified(&bytes)?;
                    report.blocks += 1;
                }
                if walker.position() != info.size {
                    return Err(Error::SizeMismatch {
                        expected: info.size,
                        actual: walker.position(),
                    });
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                report.missing.push((info.record, e.to_string()));
            }
        }
        Ok(report)
    }
}
