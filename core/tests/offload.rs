//! Content sealed, opened and hashed, transactions signed and keys unwrapped through an
//! [`Offload`] (what the npm package does with WebCrypto): the same envelope bytes and CIDs as this crate's own code, interchangeable both
//! ways, and every fault of the platform's code reported exactly, with nothing committed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Rand, identity};
use medshare::envelope::{Chunk, DataKey, Decryptor, Encryptor, Header, Metadata, Stanza};
use medshare::ledger::Policy;
use medshare::offload::{Offload, Portable};
use medshare::unixfs::{Block, Importer};
use medshare::{Error, Identity, Profile, RecordId, Result, Store, Vault};
use pollster::block_on;
use proptest::prelude::*;

/// [`Portable`], counting its calls (so a test knows the offload path ran) and failing on demand.
#[derive(Default)]
struct Probe {
    seals: AtomicUsize,
    opens: AtomicUsize,
    hashes: AtomicUsize,
    /// Fail the n-th (1-based) seal call with a backend error.
    fail_seal_at: usize,
    /// Report this position of the first open call's chunks as not authenticating.
    reject_open: Option<usize>,
    /// Answer seal calls without encrypting anything.
    lazy_seal: bool,
    /// Answer open calls without decrypting anything.
    lazy_open: bool,
    /// Sign with another key.
    wrong_signer: Option<Identity>,
    /// Answer unwraps with this key.
    wrong_key: Option<[u8; 32]>,
    signs: AtomicUsize,
    unwraps: AtomicUsize,
}

#[async_trait::async_trait]
impl Offload for Probe {
    async fn seal_chunks(&self, key: &[u8; 32], buf: &mut [u8], chunks: &[Chunk]) -> Result<()> {
        let n = self.seals.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_seal_at {
            return Err(Error::Backend("the platform's AES-GCM failed".into()));
        }
        if self.lazy_seal {
            return Ok(());
        }
        Portable.seal_chunks(key, buf, chunks).await
    }

    async fn open_chunks(
        &self,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[Chunk],
    ) -> Result<Option<usize>> {
        let first = self.opens.fetch_add(1, Ordering::SeqCst) == 0;
        if self.lazy_open {
            return Ok(None);
        }
        match self.reject_open {
            Some(i) if first && i < chunks.len() => Ok(Some(i)),
            _ => Portable.open_chunks(key, buf, chunks).await,
        }
    }

    async fn sha256_many(&self, items: &[&[u8]]) -> Result<Vec<[u8; 32]>> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        Portable.sha256_many(items).await
    }

    async fn sign(&self, identity: &Identity, message: &[u8]) -> Result<Option<Vec<u8>>> {
        self.signs.fetch_add(1, Ordering::SeqCst);
        Portable
            .sign(self.wrong_signer.as_ref().unwrap_or(identity), message)
            .await
    }

    async fn oaep_unwrap(
        &self,
        identity: &Identity,
        wrapped: &[u8],
        label: &[u8],
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        if let Some(k) = self.wrong_key {
            return Ok(Some(zeroize::Zeroizing::new(k.to_vec())));
        }
        Portable.oaep_unwrap(identity, wrapped, label).await
    }
}

fn header(size: u64, chunk_exp: u8) -> (DataKey, Header) {
    let owner = identity("patient");
    let record = RecordId::from_bytes([7; 16]);
    let dek = DataKey::from_bytes([9; 32]);
    let stanza = Stanza {
        recipient: owner.key_id(),
        wrapped_key: dek.wrap(owner.public(), &record, 1).unwrap(),
    };
    let meta = Metadata {
        name: "scan.dcm".into(),
        media_type: "application/dicom".into(),
        size,
    };
    let h = Header::build(&dek, [3; 32], chunk_exp, vec![stanza], &record, 1, &meta).unwrap();
    (dek, h)
}

/// `data` cut at `cuts` (positions taken modulo its length), in order.
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

fn seal_here(dek: &DataKey, h: &Header, parts: &[&[u8]]) -> Vec<u8> {
    let (mut enc, mut out) = Encryptor::from_header(dek.clone(), h).unwrap();
    for p in parts {
        enc.update(p, &mut out).unwrap();
    }
    enc.finish(&mut out).unwrap();
    out
}

fn seal_through(dek: &DataKey, h: &Header, parts: &[&[u8]]) -> Vec<u8> {
    let (mut enc, mut out) = Encryptor::from_header(dek.clone(), h).unwrap();
    let key = *enc.payload_key();
    let mut jobs = Vec::new();
    for p in parts {
        enc.update_deferred(p, &mut out, &mut jobs).unwrap();
        block_on(Portable.seal_chunks(&key, &mut out, &jobs)).unwrap();
        jobs.clear();
    }
    enc.finish_deferred(&mut out, &mut jobs).unwrap();
    block_on(Portable.seal_chunks(&key, &mut out, &jobs)).unwrap();
    out
}

/// Opens `payload` (the envelope after its header) fed in `parts`, through [`Portable`].
fn open_through(
    dek: &DataKey,
    h: &Header,
    parts: &[&[u8]],
    offload: &dyn Offload,
) -> Result<Vec<u8>> {
    let mut dec = Decryptor::new(h, dek)?;
    let key = *dec.payload_key();
    let mut all = Vec::new();
    let mut jobs = Vec::new();
    for p in parts {
        let mut out = Vec::new();
        jobs.clear();
        dec.update_deferred(p, &mut out, &mut jobs)?;
        let failed = block_on(offload.open_chunks(&key, &mut out, &jobs))?;
        let done = dec.complete(&mut out, 0, &jobs, failed);
        if done.is_err() {
            assert!(out.is_empty(), "nothing of a failed group is handed out");
        }
        done?;
        all.extend_from_slice(&out);
    }
    dec.finish()?;
    Ok(all)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any plaintext, fed in any pieces, seals to the same bytes through either path, and
    /// opens through the deferred path to what went in.
    #[test]
    fn deferred_chunks_are_the_same_envelope(
        len in 0usize..40_000,
        exp in 12u8..14,
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        open_cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let data = Rand::new(len as u64).bytes(len);
        let (dek, h) = header(len as u64, exp);
        let parts = pieces(&data, &cuts);
        let here = seal_here(&dek, &h, &parts);
        let through = seal_through(&dek, &h, &parts);
        prop_assert_eq!(&here, &through);
        let payload = &here[h.len()..];
        let opened = open_through(&dek, &h, &pieces(payload, &open_cuts), &Portable).unwrap();
        prop_assert_eq!(opened, data);
    }

    /// Leaves cut and hashed by the caller give the same blocks and root as the importer's
    /// own hashing, under both profiles and any feeding.
    #[test]
    fn leaves_hashed_elsewhere_are_the_same_dag(
        len in 0usize..700_000,
        legacy in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let profile = if legacy { Profile::UnixfsV0_2015 } else { Profile::UnixfsV1_2025 };
        let data = Rand::new(len as u64 + 1).bytes(len);
        let parts = pieces(&data, &cuts);
        let mut own = Importer::new(profile);
        let mut own_blocks = Vec::new();
        let mut cut = Importer::new(profile);
        let mut cut_blocks = Vec::new();
        for p in &parts {
            own.push(p, &mut own_blocks);
            let leaves = cut.cut(p);
            link(&mut cut, leaves, &mut cut_blocks);
        }
        let last = cut.cut_last();
        link(&mut cut, last, &mut cut_blocks);
        prop_assert_eq!(own.len(), cut.len());
        let own_root = own.finish(&mut own_blocks);
        let cut_root = cut.finish(&mut cut_blocks);
        prop_assert_eq!(own_root, cut_root);
        prop_assert_eq!(own_root, medshare::unixfs::cid(&data, profile));
        let ids = |b: &[Block]| b.iter().map(|b| (b.cid, b.data.len())).collect::<Vec<_>>();
        prop_assert_eq!(ids(&own_blocks), ids(&cut_blocks));
    }
}

fn link(imp: &mut Importer, leaves: Vec<Vec<u8>>, out: &mut Vec<Block>) {
    let items: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    let digests = block_on(Portable.sha256_many(&items)).unwrap();
    imp.link_hashed(leaves, &digests, out).unwrap();
}

#[test]
fn the_importer_refuses_a_digest_count_that_does_not_match_its_leaves() {
    let mut imp = Importer::new(Profile::default());
    let leaves = imp.cut(&vec![1u8; 1 << 20]);
    assert_eq!(leaves.len(), 1);
    let err = imp.link_hashed(leaves, &[], &mut Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: 1 leaves and 0 digests for 1 leaves cut"
    );
    // Leaves cut and never linked are not in the DAG (and finishing does not fail).
    let mut imp = Importer::new(Profile::default());
    let _ = imp.cut(&[5u8; 1000]);
    let _ = imp.cut_last();
    assert_eq!(
        imp.finish(&mut Vec::new()),
        medshare::unixfs::cid(b"", Profile::default())
    );
}

#[test]
fn padding_over_many_chunks_is_the_same_either_way() {
    // 1 MiB + 1 byte pads to 1 MiB + 32 KiB: eight 4 KiB chunks of nothing but padding.
    let data = Rand::new(11).bytes((1 << 20) + 1);
    let (dek, h) = header(data.len() as u64, 12);
    let here = seal_here(&dek, &h, &[&data]);
    assert_eq!(
        seal_through(&dek, &h, &[&data[..5000], &data[5000..]]),
        here
    );
    let payload = &here[h.len()..];
    let (a, b) = payload.split_at(payload.len() - 20_000);
    assert_eq!(open_through(&dek, &h, &[a, b], &Portable).unwrap(), data);
}

#[test]
fn chunks_laid_out_must_be_completed_in_order_before_finishing() {
    let data = Rand::new(6).bytes(10_000);
    let (dek, h) = header(data.len() as u64, 12);
    let env = seal_here(&dek, &h, &[&data]);
    let payload = &env[h.len()..];
    let invalid = |e: Error, what: &str| {
        assert!(matches!(&e, Error::InvalidInput(m) if m == what), "{e:?}");
    };
    // Laid out, opened, never completed: finishing is refused.
    let mut dec = Decryptor::new(&h, &dek).unwrap();
    let mut out = Vec::new();
    let mut jobs = Vec::new();
    dec.update_deferred(payload, &mut out, &mut jobs).unwrap();
    invalid(
        dec.finish().unwrap_err(),
        "chunks laid out for the caller to open are not completed",
    );
    // Completed out of order: refused, and nothing is handed out.
    let mut dec = Decryptor::new(&h, &dek).unwrap();
    let mut out = Vec::new();
    let mut jobs = Vec::new();
    dec.update_deferred(payload, &mut out, &mut jobs).unwrap();
    jobs.swap(0, 1);
    invalid(
        dec.complete(&mut out, 0, &jobs, None).unwrap_err(),
        "chunks completed out of the order they were laid out in",
    );
    assert!(out.is_empty());
    // Mixing: the synchronous path does not run past chunks still pending.
    let mut dec = Decryptor::new(&h, &dek).unwrap();
    let mut jobs = Vec::new();
    dec.update_deferred(&payload[..5000], &mut Vec::new(), &mut jobs)
        .unwrap();
    invalid(
        dec.update(&payload[5000..], &mut Vec::new()).unwrap_err(),
        "chunks laid out for the caller to open are not completed",
    );
}

#[test]
fn a_chunk_the_platform_does_not_authenticate_is_reported_by_index() {
    let data = Rand::new(5).bytes(20_000);
    let (dek, h) = header(data.len() as u64, 12);
    let env = seal_here(&dek, &h, &[&data]);
    let payload = &env[h.len()..];
    // The second chunk's job (index 1) fails: nothing is handed out, and the error names it.
    let probe = Probe {
        reject_open: Some(1),
        ..Probe::default()
    };
    let err = open_through(&dek, &h, &[payload], &probe).unwrap_err();
    assert!(
        matches!(err, Error::ChunkAuthentication { chunk: Some(1) }),
        "{err:?}"
    );
    // A flipped byte in chunk 3 is found by the platform's AES-GCM too.
    let mut bad = payload.to_vec();
    bad[3 * (4096 + 16) + 10] ^= 1;
    let err = open_through(&dek, &h, &[&bad], &Portable).unwrap_err();
    assert!(
        matches!(err, Error::ChunkAuthentication { chunk: Some(3) }),
        "{err:?}"
    );
}

#[test]
fn non_zero_padding_is_refused_on_the_deferred_path() {
    // An envelope declaring 10 bytes whose padding is not zero.
    let (dek, h10) = header(10, 12);
    let mut body = Vec::new();
    let (mut enc10, _) = Encryptor::from_header(dek.clone(), &h10).unwrap();
    let key = *enc10.payload_key();
    let mut jobs = Vec::new();
    enc10
        .update_deferred(&[0x41; 10], &mut body, &mut jobs)
        .unwrap();
    enc10.finish_deferred(&mut body, &mut jobs).unwrap();
    // Overwrite the padding (still plaintext here) with non-zero bytes, then seal.
    assert_eq!(jobs.len(), 1);
    for b in &mut body[10..jobs[0].len] {
        *b = 0x41;
    }
    block_on(Portable.seal_chunks(&key, &mut body, &jobs)).unwrap();
    let err = open_through(&dek, &h10, &[&body], &Portable).unwrap_err();
    assert!(
        matches!(&err, Error::MalformedEnvelope(m) if m == "non-zero payload padding"),
        "{err:?}"
    );
}

async fn vault() -> (Vault, Identity, Identity) {
    let mut v = Vault::create(
        Store::memory(),
        "offload-net",
        identity("authority"),
        Policy::default(),
    )
    .await
    .unwrap();
    let (p, d) = (identity("patient"), identity("doctor"));
    v.register(&p, None).await.unwrap();
    let e =
        medshare::ledger::Endorsement::sign(&identity("authority"), &v.genesis(), &d.id(), "GMC-9")
            .unwrap();
    v.register(&d, Some(&e)).await.unwrap();
    (v, p, d)
}

async fn open(v: &Vault, who: &Identity, r: &RecordId) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    v.open_record(who, r, &mut out).await?;
    Ok(out)
}

#[test]
fn records_published_through_the_platform_open_without_it_and_back() {
    block_on(async {
        let (mut v, p, d) = vault().await;
        let probe = Arc::new(Probe::default());
        for profile in [Profile::UnixfsV1_2025, Profile::UnixfsV0_2015] {
            v.set_profile(profile);
            // Sizes around the leaf, the piece and the open group (4 leaves).
            for len in [
                0usize,
                1,
                300_000,
                1 << 20,
                (1 << 20) + 1,
                5 * (1 << 20) + 12_345,
            ] {
                let data = Rand::new(len as u64).bytes(len);
                v.set_offload(Some(probe.clone()));
                let through = v.publish_bytes(&p, &data, "x", "text/plain").await.unwrap();
                v.grant(&p, &through, &d.id(), Default::default())
                    .await
                    .unwrap();
                let opened_through = open(&v, &d, &through).await.unwrap();
                v.set_offload(None);
                let here = v.publish_bytes(&p, &data, "x", "text/plain").await.unwrap();
                assert_eq!(
                    open(&v, &p, &through).await.unwrap(),
                    data,
                    "{profile} {len}"
                );
                assert_eq!(opened_through, data, "{profile} {len}");
                v.set_offload(Some(probe.clone()));
                assert_eq!(open(&v, &p, &here).await.unwrap(), data, "{profile} {len}");
                // Same size of content either way (the layout is the same; the bytes differ
                // only by key and salt).
                assert_eq!(
                    v.record(&through).unwrap().size,
                    v.record(&here).unwrap().size
                );
                v.set_offload(None);
            }
        }
        assert!(probe.seals.load(Ordering::SeqCst) > 0);
        assert!(probe.opens.load(Ordering::SeqCst) > 0);
        assert!(probe.hashes.load(Ordering::SeqCst) > 0);
        // Every transaction while it was set was signed through it, every key it opened with
        // was unwrapped through it, and the chain (signatures checked here) verifies.
        assert!(probe.signs.load(Ordering::SeqCst) >= 24);
        assert!(probe.unwraps.load(Ordering::SeqCst) >= 24);
        v.verify().await.unwrap();
    });
}

#[test]
fn a_failing_platform_commits_nothing_and_a_damaged_leaf_is_found() {
    block_on(async {
        let mem = Arc::new(medshare::store::memory::MemoryStore::default());
        let mut v = Vault::create(
            Store::from_arc(mem.clone()),
            "offload-net",
            identity("authority"),
            Policy::default(),
        )
        .await
        .unwrap();
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        let data = Rand::new(3).bytes(3 << 20);
        // The platform fails on the second (the last) piece: the publish fails with its error, and the
        // chain does not move.
        let height = v.height();
        v.set_offload(Some(Arc::new(Probe {
            fail_seal_at: 2,
            ..Probe::default()
        })));
        let err = v.publish_bytes(&p, &data, "", "").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "store backend error: the platform's AES-GCM failed"
        );
        assert_eq!(v.height(), height);
        assert!(v.records_for(&p.id()).unwrap().is_empty());
        // A leaf damaged in the store is found by the digest the platform computed.
        v.set_offload(Some(Arc::new(Probe::default())));
        let r = v.publish_bytes(&p, &data, "", "").await.unwrap();
        let root = v.record(&r).unwrap().content;
        let leaf = {
            let bytes = v.store().get(&root).await.unwrap();
            medshare::unixfs::pb::decode_node(&bytes).unwrap().links[2].cid
        };
        mem.corrupt(&leaf, b"damaged");
        let err = open(&v, &p, &r).await.unwrap_err();
        assert!(
            matches!(&err, Error::CidMismatch { expected, .. } if *expected == leaf),
            "{err:?}"
        );
        // A chunk the platform does not authenticate stops the read at that chunk.
        let r2 = v.publish_bytes(&p, &data, "", "").await.unwrap();
        v.set_offload(Some(Arc::new(Probe {
            reject_open: Some(0),
            ..Probe::default()
        })));
        let err = open(&v, &p, &r2).await.unwrap_err();
        assert!(
            matches!(err, Error::ChunkAuthentication { chunk: Some(0) }),
            "{err:?}"
        );
        // A platform that does not encrypt is caught before anything is stored or committed.
        let height = v.height();
        v.set_offload(Some(Arc::new(Probe {
            lazy_seal: true,
            ..Probe::default()
        })));
        let err = v.publish_bytes(&p, &data, "", "").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "store backend error: the platform's AES-GCM sealed chunk 0 wrongly"
        );
        assert_eq!(v.height(), height);
        // A signature by another key is refused before it is submitted.
        v.set_offload(Some(Arc::new(Probe {
            wrong_signer: Some(identity("patient2")),
            ..Probe::default()
        })));
        let err = v.publish_bytes(&p, b"x", "", "").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "store backend error: the platform's RSA-PSS signature does not verify"
        );
        assert_eq!(v.height(), height);
        // A wrong data key is caught by the key commitment before it decrypts anything.
        v.set_offload(Some(Arc::new(Probe {
            wrong_key: Some([1; 32]),
            ..Probe::default()
        })));
        let err = open(&v, &p, &r2).await.unwrap_err();
        assert!(matches!(err, Error::KeyCommitment), "{err:?}");
        // ... and before it is wrapped to a doctor: the grant fails and commits nothing.
        let d = identity("doctor");
        v.set_offload(None);
        let e = medshare::ledger::Endorsement::sign(
            &identity("authority"),
            &v.genesis(),
            &d.id(),
            "GMC-3",
        )
        .unwrap();
        v.register(&d, Some(&e)).await.unwrap();
        let height = v.height();
        v.set_offload(Some(Arc::new(Probe {
            wrong_key: Some([1; 32]),
            ..Probe::default()
        })));
        let err = v
            .grant(&p, &r2, &d.id(), Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::KeyCommitment), "{err:?}");
        assert_eq!(v.height(), height);
        // A platform that does not decrypt is caught before anything is handed out.
        v.set_offload(Some(Arc::new(Probe {
            lazy_open: true,
            ..Probe::default()
        })));
        let mut out = Vec::new();
        let err = v.open_record(&p, &r2, &mut out).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "store backend error: the platform's AES-GCM opened chunk 0 wrongly"
        );
        assert!(out.is_empty());
        // A vault that made its sequencer has it sign certificates through the platform too:
        // one publish is two signatures (the transaction, the block's certificate).
        let probe = Arc::new(Probe::default());
        v.set_offload(Some(probe.clone()));
        v.publish_bytes(&p, b"signed twice", "", "").await.unwrap();
        assert_eq!(probe.signs.load(Ordering::SeqCst), 2);
        v.set_offload(None);
        assert_eq!(open(&v, &p, &r2).await.unwrap(), data);
    });
}

#[test]
fn a_key_rotation_is_signed_and_rewrapped_through_the_platform() {
    block_on(async {
        let (mut v, p, d) = vault().await;
        let data = Rand::new(8).bytes(300_000);
        let r = v.publish_bytes(&p, &data, "", "").await.unwrap();
        v.grant(&p, &r, &d.id(), Default::default()).await.unwrap();
        let probe = Arc::new(Probe::default());
        v.set_offload(Some(probe.clone()));
        let new = p.rotated().unwrap();
        let before = probe.signs.load(Ordering::SeqCst);
        v.rotate_key(&p, &new).await.unwrap();
        // The rotation (old key and new key), its re-key, and the blocks' certificates.
        assert!(probe.signs.load(Ordering::SeqCst) >= before + 3);
        assert!(probe.unwraps.load(Ordering::SeqCst) >= 1);
        v.set_offload(None);
        v.verify().await.unwrap();
        assert_eq!(open(&v, &new, &r).await.unwrap(), data);
        assert_eq!(open(&v, &d, &r).await.unwrap(), data);
        let err = open(&v, &p, &r).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid key: key {} of account {} was retired by a key rotation; use its current key {}",
                p.key_id(),
                p.id(),
                new.key_id()
            )
        );
    });
}
