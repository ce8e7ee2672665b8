//! The conformance suite every [`BlockStore`](super::BlockStore) backend must pass.
//!
//! Written once, run against each backend: the memory and filesystem stores here, and the kubo
//! store and foreign (Python, JS, Kotlin) stores in their own crates. Each check gets a fresh,
//! empty store from the caller's factory.
//!
//! ```
//! # pollster::block_on(async {
//! medshare::store::testsuite::run_all(|| medshare::Store::memory()).await.unwrap();
//! # });
//! ```

use crate::cid::{Cid, DAG_PB, RAW};
use crate::error::Error;
use crate::limits;
use crate::store::Block;
use crate::store::Store;

/// A failed conformance check: which one, and why.
#[derive(Debug)]
pub struct Failure {
    /// The check's name.
    pub check: &'static str,
    /// What went wrong.
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store check `{}` failed: {}", self.check, self.reason)
    }
}

macro_rules! ensure {
    ($check:expr, $cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(Failure { check: $check, reason: format!($($why)*) });
        }
    };
}

fn block(codec: u64, data: &[u8]) -> (Cid, Vec<u8>) {
    (Cid::v1(codec, data), data.to_vec())
}

/// Runs every check, each on a fresh store from `fresh`. Stops at the first failure.
pub async fn run_all<F: FnMut() -> Store>(mut fresh: F) -> Result<(), Failure> {
    put_get_round_trip(&fresh()).await?;
    missing_block(&fresh()).await?;
    put_is_idempotent(&fresh()).await?;
    delete_removes(&fresh()).await?;
    v0_and_v1_share_a_block(&fresh()).await?;
    large_block(&fresh()).await?;
    get_into_replaces(&fresh()).await?;
    oversize_block_refused(&fresh()).await?;
    mismatched_put_refused(&fresh()).await?;
    put_many_stores_all(&fresh()).await?;
    head_compare_and_swap(&fresh()).await?;
    Ok(())
}

/// A stored block comes back identical.
pub async fn put_get_round_trip(store: &Store) -> Result<(), Failure> {
    const C: &str = "put_get_round_trip";
    let (cid, data) = block(RAW, b"a medical record block");
    store.put(&cid, &data).await.map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.has(&cid).await.map_err(|e| fail(C, e))?,
        "has() is false after put"
    );
    let back = store.get(&cid).await.map_err(|e| fail(C, e))?;
    ensure!(C, back == data, "get returned different bytes");
    let (cbor, cdata) = block(crate::cid::DAG_CBOR, &[0xa1, 0x61, 0x61, 0x01]);
    store.put(&cbor, &cdata).await.map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.get(&cbor).await.map_err(|e| fail(C, e))? == cdata,
        "dag-cbor block differs"
    );
    Ok(())
}

/// An absent block is `NotFound` / `None` / `has == false`.
pub async fn missing_block(store: &Store) -> Result<(), Failure> {
    const C: &str = "missing_block";
    let cid = Cid::v1(RAW, b"never stored");
    ensure!(
        C,
        !store.has(&cid).await.map_err(|e| fail(C, e))?,
        "has() true for a missing block"
    );
    ensure!(
        C,
        store.get_opt(&cid).await.map_err(|e| fail(C, e))?.is_none(),
        "get_opt returned data"
    );
    match store.get(&cid).await {
        Err(Error::NotFound(c)) if c == cid => Ok(()),
        other => Err(Failure {
            check: C,
            reason: format!("expected NotFound, got {other:?}"),
        }),
    }
}

/// Putting the same block twice is harmless.
pub async fn put_is_idempotent(store: &Store) -> Result<(), Failure> {
    const C: &str = "put_is_idempotent";
    let (cid, data) = block(RAW, b"twice");
    store.put(&cid, &data).await.map_err(|e| fail(C, e))?;
    store.put(&cid, &data).await.map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.get(&cid).await.map_err(|e| fail(C, e))? == data,
        "block changed"
    );
    Ok(())
}

/// Delete removes exactly one block, and deleting a missing block is fine.
pub async fn delete_removes(store: &Store) -> Result<(), Failure> {
    const C: &str = "delete_removes";
    let (a, da) = block(RAW, b"keep");
    let (b, db) = block(RAW, b"drop");
    store.put(&a, &da).await.map_err(|e| fail(C, e))?;
    store.put(&b, &db).await.map_err(|e| fail(C, e))?;
    store.delete(&b).await.map_err(|e| fail(C, e))?;
    ensure!(
        C,
        !store.has(&b).await.map_err(|e| fail(C, e))?,
        "deleted block still present"
    );
    ensure!(
        C,
        store.has(&a).await.map_err(|e| fail(C, e))?,
        "other block was removed"
    );
    store.delete(&b).await.map_err(|e| fail(C, e))?;
    Ok(())
}

/// CIDv0 and dag-pb CIDv1 of the same bytes address the same block (multihash keying).
pub async fn v0_and_v1_share_a_block(store: &Store) -> Result<(), Failure> {
    const C: &str = "v0_and_v1_share_a_block";
    let bytes = crate::unixfs::pb::encode_node(
        &[],
        &crate::unixfs::pb::encode_file_data(Some(b"x"), 1, &[]),
    );
    let v0 = Cid::v0(&bytes);
    let v1 = Cid::v1(DAG_PB, &bytes);
    store.put(&v0, &bytes).await.map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.get(&v1).await.map_err(|e| fail(C, e))? == bytes,
        "v1 lookup of a v0 block failed"
    );
    Ok(())
}

/// A full 1 MiB leaf (the default chunk) round-trips.
pub async fn large_block(store: &Store) -> Result<(), Failure> {
    const C: &str = "large_block";
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let cid = Cid::v1(RAW, &data);
    store.put(&cid, &data).await.map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.get(&cid).await.map_err(|e| fail(C, e))? == data,
        "1 MiB block differs"
    );
    Ok(())
}

/// Reading into a buffer that held another block (as a read reuses its leaf buffers) leaves
/// exactly the block asked for, smaller or larger than what was there; a missing block is
/// `NotFound`.
pub async fn get_into_replaces(store: &Store) -> Result<(), Failure> {
    const C: &str = "get_into_replaces";
    let large: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 249) as u8).collect();
    let (small_cid, small) = block(RAW, b"a small block");
    let large_cid = Cid::v1(RAW, &large);
    store
        .put(&small_cid, &small)
        .await
        .map_err(|e| fail(C, e))?;
    store
        .put(&large_cid, &large)
        .await
        .map_err(|e| fail(C, e))?;
    let mut buf = vec![0xEE; 4096];
    for (cid, data) in [
        (&small_cid, &small),
        (&large_cid, &large),
        (&small_cid, &small),
    ] {
        store
            .get_unchecked_into(cid, &mut buf)
            .await
            .map_err(|e| fail(C, e))?;
        ensure!(
            C,
            &buf == data,
            "read {} bytes into a used buffer, want {}",
            buf.len(),
            data.len()
        );
    }
    let missing = Cid::v1(RAW, b"never stored");
    match store.get_unchecked_into(&missing, &mut buf).await {
        Err(Error::NotFound(c)) if c == missing => Ok(()),
        other => Err(Failure {
            check: C,
            reason: format!("expected NotFound, got {other:?}"),
        }),
    }
}

/// Blocks over the limit are refused with `TooLarge` before reaching the backend.
pub async fn oversize_block_refused(store: &Store) -> Result<(), Failure> {
    const C: &str = "oversize_block_refused";
    let data = vec![7u8; limits::MAX_BLOCK_SIZE + 1];
    let cid = Cid::v1(RAW, &data);
    match store.put(&cid, &data).await {
        Err(Error::TooLarge { what: "block", .. }) => {}
        other => {
            return Err(Failure {
                check: C,
                reason: format!("expected TooLarge, got {other:?}"),
            });
        }
    }
    ensure!(
        C,
        !store.has(&cid).await.map_err(|e| fail(C, e))?,
        "oversize block was stored"
    );
    Ok(())
}

/// Bytes that do not hash to the CID are refused with `CidMismatch`.
pub async fn mismatched_put_refused(store: &Store) -> Result<(), Failure> {
    const C: &str = "mismatched_put_refused";
    let cid = Cid::v1(RAW, b"claimed");
    match store.put(&cid, b"actual").await {
        Err(Error::CidMismatch { expected, .. }) if expected == cid => {}
        other => {
            return Err(Failure {
                check: C,
                reason: format!("expected CidMismatch, got {other:?}"),
            });
        }
    }
    ensure!(
        C,
        !store.has(&cid).await.map_err(|e| fail(C, e))?,
        "mismatched block was stored"
    );
    Ok(())
}

/// `put_many` stores every block.
pub async fn put_many_stores_all(store: &Store) -> Result<(), Failure> {
    const C: &str = "put_many_stores_all";
    let blocks: Vec<Block> = (0..50u32)
        .map(|i| {
            let data = format!("block number {i}").into_bytes();
            Block {
                cid: Cid::v1(RAW, &data),
                data,
            }
        })
        .collect();
    store.put_many(&blocks).await.map_err(|e| fail(C, e))?;
    for b in &blocks {
        ensure!(
            C,
            store.get(&b.cid).await.map_err(|e| fail(C, e))? == b.data,
            "block {} missing",
            b.cid
        );
    }
    Ok(())
}

/// The head starts empty; compare-and-swap succeeds only from the expected value.
pub async fn head_compare_and_swap(store: &Store) -> Result<(), Failure> {
    const C: &str = "head_compare_and_swap";
    let a = Cid::dag_cbor(b"a");
    let b = Cid::dag_cbor(b"b");
    ensure!(
        C,
        store.head().await.map_err(|e| fail(C, e))?.is_none(),
        "fresh store has a head"
    );
    store
        .compare_and_swap_head(None, Some(&a))
        .await
        .map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.head().await.map_err(|e| fail(C, e))? == Some(a),
        "head not set"
    );
    match store.compare_and_swap_head(None, Some(&b)).await {
        Err(Error::HeadConflict {
            expected: None,
            found,
        }) if found == Some(a) => {}
        other => {
            return Err(Failure {
                check: C,
                reason: format!("stale CAS: expected HeadConflict, got {other:?}"),
            });
        }
    }
    match store.compare_and_swap_head(Some(&b), Some(&a)).await {
        Err(Error::HeadConflict { .. }) => {}
        other => {
            return Err(Failure {
                check: C,
                reason: format!("wrong CAS: expected HeadConflict, got {other:?}"),
            });
        }
    }
    ensure!(
        C,
        store.head().await.map_err(|e| fail(C, e))? == Some(a),
        "failed CAS changed the head"
    );
    store
        .compare_and_swap_head(Some(&a), Some(&b))
        .await
        .map_err(|e| fail(C, e))?;
    ensure!(
        C,
        store.head().await.map_err(|e| fail(C, e))? == Some(b),
        "head not moved"
    );
    Ok(())
}

fn fail(check: &'static str, e: Error) -> Failure {
    Failure {
        check,
        reason: format!("unexpected error: {e}"),
    }
}
