//! Receipts (`docs/FORMAT.md` §11) over logs of 10^4 and 10^6 transactions: the proof's size
//! (printed) and the time to verify a whole receipt offline, next to its floor, the RSA-PSS
//! verifications it needs (the transaction's signature and the certificate's, with a 1- and a
//! 4-authority network), and next to the inclusion proof alone.
//!
//! `cargo bench -p medshare-benches --bench receipt`
//! The logs are random leaves with the proven transaction's leaf in the middle; the certificate
//! is signed for real over their RFC 6962 root, so the receipt is exactly what a chain of that
//! size would give (a receipt does not depend on the other transactions' contents).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use medshare::cid::Cid;
use medshare::ledger::checkpoint::{Certificate, Checkpoint, sign_share};
use medshare::ledger::merkle::{Frontier, Hash, inclusion_proof, verify_inclusion};
use medshare::ledger::receipt::{ProofHash, ProvenTx, RECEIPT_FORMAT, Receipt, tx_leaf};
use medshare::ledger::{AuthorityKey, Genesis, GenesisBlock, Policy, SignedTx, Tx, TxBody};
use medshare::{Identity, Purpose, RecordId, Role};
use sha2::{Digest, Sha256};

const BITS: usize = 2048;

struct Fixture {
    receipt: Receipt,
    genesis: Cid,
    tx: Cid,
    index: u64,
}

fn fixture(size: u64, authorities: &[Identity], patient: &Identity, doctor: &Identity) -> Fixture {
    let g = GenesisBlock::new(Genesis {
        network: "bench".into(),
        time: 1_700_000_000,
        nonce: [0; 16],
        authorities: authorities
            .iter()
            .map(|a| AuthorityKey {
                key: a.public().clone(),
                validator: None,
            })
            .collect(),
        policy: Policy::default(),
    });
    let tx = SignedTx::sign(
        Tx {
            genesis: g.cid,
            author: patient.id(),
            seq: 7,
            time: 1_700_000_100,
            body: TxBody::Grant {
                record: RecordId::from_bytes([3; 16]),
                version: 1,
                doctor: doctor.id(),
                purpose: Purpose::Treatment,
                expires: None,
                wrapped_key: medshare::envelope::DataKey::from_bytes([9; 32])
                    .wrap(doctor.public(), &RecordId::from_bytes([3; 16]), 1)
                    .unwrap(),
                note: None,
            },
        },
        patient,
    )
    .unwrap();
    let index = size / 2;
    let leaves: Vec<Hash> = (0..size)
        .map(|i| {
            if i == index {
                tx_leaf(&tx.cid)
            } else {
                Sha256::digest(i.to_be_bytes()).into()
            }
        })
        .collect();
    let mut f = Frontier::new();
    for l in &leaves {
        f.push(*l);
    }
    let cp = Checkpoint {
        genesis: g.cid,
        size,
        root: f.root(),
        height: size / 10,
        block: Cid::dag_cbor(b"head"),
        state: [7; 32],
    };
    let cert = Certificate {
        signatures: authorities
            .iter()
            .map(|a| sign_share(&cp, a).unwrap())
            .collect(),
        checkpoint: cp,
    };
    let proof = inclusion_proof(&leaves, index, size).unwrap();
    let receipt = Receipt {
        format: RECEIPT_FORMAT.into(),
        genesis: g.cid,
        genesis_block: g.bytes.clone(),
        authority_votes: vec![],
        transaction: ProvenTx {
            tx: tx.bytes.clone(),
            index,
            proof: proof.into_iter().map(ProofHash).collect(),
        },
        certificate: cert.to_note(),
    };
    Fixture {
        receipt,
        genesis: g.cid,
        tx: tx.cid,
        index,
    }
}

fn bench(c: &mut Criterion) {
    let patient = Identity::generate(Role::Patient, "p", BITS).unwrap();
    let doctor = Identity::generate(Role::Doctor, "d", BITS).unwrap();
    let all: Vec<Identity> = (0..4)
        .map(|i| Identity::generate(Role::Authority, &format!("a{i}"), BITS).unwrap())
        .collect();
    let mut g = c.benchmark_group("receipt");
    g.sample_size(20);
    let sig = patient.sign(b"message").unwrap();
    for n_auth in [1usize, 4] {
        for size in [10_000u64, 1_000_000] {
            let fx = fixture(size, &all[..n_auth], &patient, &doctor);
            let json = fx.receipt.to_json();
            let facts = Receipt::from_json(&json)
                .unwrap()
                .verify(&fx.genesis)
                .unwrap();
            assert_eq!(facts.log_size, size);
            println!(
                "receipt: {size} txs, {n_auth} authorities: {} bytes ({} proof hashes)",
                json.len(),
                fx.receipt.transaction.proof.len()
            );
            let id = format!("{n_auth}auth");
            g.bench_with_input(
                BenchmarkId::new(format!("verify_{id}"), size),
                &json,
                |b, j| b.iter(|| Receipt::from_json(j).unwrap().verify(&fx.genesis).unwrap()),
            );
            let root = Certificate::parse(&fx.receipt.certificate)
                .unwrap()
                .checkpoint
                .root;
            let path: Vec<Hash> = fx.receipt.transaction.proof.iter().map(|h| h.0).collect();
            let cid = fx.tx.to_bytes();
            if n_auth == 1 {
                g.bench_with_input(BenchmarkId::new("inclusion_only", size), &path, |b, p| {
                    b.iter(|| verify_inclusion(&cid, fx.index, size, &root, p).unwrap())
                });
            }
            // The floor: one RSA-PSS verification per signature the receipt carries, plus the
            // transaction's.
            g.bench_with_input(
                BenchmarkId::new(format!("peer_rsa_verifications_{id}"), size),
                &(n_auth + 1),
                |b, &k| {
                    b.iter(|| {
                        for _ in 0..k {
                            patient.public().verify(b"message", &sig).unwrap();
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
