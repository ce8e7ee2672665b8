//! RSA at 2048, 3072 and 4096 bits: PSS-SHA256 sign/verify and OAEP-SHA256 wrap/unwrap of a
//! data key, as medshare does them (the `rsa` crate, constant-time), side by side with ring's
//! RSA-PSS sign/verify of the same key and message in the same run. ring has no OAEP; for the
//! OAEP peer see `openssl speed rsa2048 ...` in benches/peers.sh.
//!
//! `cargo bench -p medshare-benches --bench rsa`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use medshare::{Identity, Role};
use medshare::{RecordId, envelope::DataKey};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, RsaKeyPair, UnparsedPublicKey};
use rsa::pkcs8::EncodePrivateKey;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsa");
    g.sample_size(20);
    let msg = [0x5au8; 512];
    let record = RecordId::random().unwrap();
    for bits in [2048usize, 3072, 4096] {
        // One key for both libraries: generated here, handed to each as PKCS#8 DER.
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let id = Identity::from_pkcs8_der(Role::Patient, "bench", der.as_bytes()).unwrap();
        let ring_key = RsaKeyPair::from_pkcs8(der.as_bytes()).unwrap();
        let rng = SystemRandom::new();

        g.bench_function(BenchmarkId::new("medshare_pss_sign", bits), |b| {
            b.iter(|| id.sign(&msg).unwrap())
        });
        let mut ring_sig = vec![0u8; ring_key.public().modulus_len()];
        g.bench_function(BenchmarkId::new("ring_pss_sign", bits), |b| {
            b.iter(|| {
                ring_key
                    .sign(&RSA_PSS_SHA256, &rng, &msg, &mut ring_sig)
                    .unwrap()
            })
        });
        let sig = id.sign(&msg).unwrap();
        g.bench_function(BenchmarkId::new("medshare_pss_verify", bits), |b| {
            b.iter(|| id.public().verify(&msg, &sig).unwrap())
        });
        let spki = UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, ring_key.public().as_ref());
        g.bench_function(BenchmarkId::new("ring_pss_verify", bits), |b| {
            b.iter(|| spki.verify(&msg, &sig).unwrap())
        });
        let dek = DataKey::generate().unwrap();
        g.bench_function(BenchmarkId::new("medshare_oaep_wrap", bits), |b| {
            b.iter(|| dek.wrap(id.public(), &record, 1).unwrap())
        });
        let wrapped = dek.wrap(id.public(), &record, 1).unwrap();
        g.bench_function(BenchmarkId::new("medshare_oaep_unwrap", bits), |b| {
            b.iter(|| DataKey::unwrap(&id, &wrapped, &record, 1).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
