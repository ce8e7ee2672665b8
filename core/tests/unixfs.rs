//! UnixFS importer: pinned vectors from `ipfs add`, structure checks, reading back, and a live
//! cross-check against the real kubo binary on random inputs up to multi-level DAGs.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Rand, pattern, random_seed};
use medshare::Error;
use medshare::cid::{Cid, DAG_PB, RAW};
use medshare::unixfs::{self, Block, Importer, Profile, Walker, pb};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;

fn vectors() -> Vec<(Profile, usize, String)> {
    include_str!("../testdata/cid-public.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_owned(),
            )
        })
        .collect()
}

#[test]
fn pinned_ipfs_add_vectors() {
    for (profile, len, expected) in vectors() {
        let data = pattern(len);
        assert_eq!(
            unixfs::cid(&data, profile).to_string(),
            expected,
            "{profile} {len}"
        );
        // Streaming in odd pieces gives the same root, and emitting blocks does too.
        let mut imp = Importer::new(profile);
        let mut blocks = Vec::new();
        for piece in data.chunks(100_003) {
            imp.push(piece, &mut blocks);
        }
        let root = imp.finish(&mut blocks);
        assert_eq!(root.to_string(), expected, "{profile} {len} (streamed)");
        assert_eq!(blocks.last().map(|b| b.cid), Some(root));
        for b in &blocks {
            b.cid.verify(&b.data).unwrap();
        }
        assert_eq!(read_back(&blocks, root).unwrap(), data);
    }
}

fn read_back(blocks: &[Block], root: Cid) -> Result<Vec<u8>, Error> {
    let mut w = Walker::new(root);
    let mut out = Vec::new();
    while let Some(cid) = w.next_cid() {
        let b = blocks
            .iter()
            .find(|b| b.cid.multihash() == cid.multihash())
            .ok_or(Error::NotFound(cid))?;
        out.extend_from_slice(&w.visit(&b.data)?);
    }
    Ok(out)
}

#[test]
fn profiles_shape_the_dag() {
    // v1: one raw leaf per MiB; a 3 MiB file is a dag-pb root over 3 raw leaves.
    let mut blocks = Vec::new();
    let mut imp = Importer::new(Profile::UnixfsV1_2025);
    imp.push(&pattern(3 * MIB as usize), &mut blocks);
    let root = imp.finish(&mut blocks);
    assert_eq!(root.codec(), DAG_PB);
    assert!(root.to_string().starts_with("bafybei"));
    assert_eq!(blocks.iter().filter(|b| b.cid.codec() == RAW).count(), 3);
    let node = pb::decode_node(&blocks.last().unwrap().data).unwrap();
    assert_eq!(node.links.len(), 3);
    let fs = pb::decode_unixfs(node.data.as_ref().unwrap()).unwrap();
    assert_eq!((fs.filesize, fs.blocksizes), (Some(3 * MIB), vec![MIB; 3]));
    // v0: 256 KiB dag-pb leaves, CIDv0 everywhere.
    let data = pattern(600 * KIB as usize);
    let mut blocks = Vec::new();
    let mut imp = Importer::new(Profile::UnixfsV0_2015);
    imp.push(&data, &mut blocks);
    let root = imp.finish(&mut blocks);
    assert!(root.to_string().starts_with("Qm"));
    assert_eq!(blocks.len(), 4);
    assert!(
        blocks
            .iter()
            .all(|b| b.cid.version() == medshare::cid::Version::V0)
    );
}

#[test]
fn walker_rejects_bad_blocks() {
    let data = pattern(3 * MIB as usize);
    let mut blocks = Vec::new();
    let mut imp = Importer::new(Profile::UnixfsV1_2025);
    imp.push(&data, &mut blocks);
    let root = imp.finish(&mut blocks);
    // Bytes that do not match the CID.
    let mut bad = blocks.clone();
    bad[1].data[5] ^= 1;
    assert!(matches!(
        read_back(&bad, root),
        Err(Error::CidMismatch { .. })
    ));
    // A missing block.
    let missing: Vec<_> = blocks.iter().skip(1).cloned().collect();
    assert!(matches!(read_back(&missing, root), Err(Error::NotFound(_))));
    // A root whose blocksizes lie about its children.
    let node = pb::decode_node(&blocks.last().unwrap().data).unwrap();
    let links: Vec<(Cid, u64)> = node
        .links
        .iter()
        .map(|l| (l.cid, l.tsize.unwrap()))
        .collect();
    let lying = pb::encode_node(
        &links,
        &pb::encode_file_data(None, 3 * MIB + 3, &[MIB, MIB, MIB + 3]),
    );
    let lying_root = Cid::v1(DAG_PB, &lying);
    let mut with_lie = blocks.clone();
    with_lie.push(Block {
        cid: lying_root,
        data: lying,
    });
    assert!(matches!(
        read_back(&with_lie, lying_root),
        Err(Error::MalformedNode(_))
    ));
    // Garbage in a dag-pb block.
    let garbage = b"\xff\xff\xff".to_vec();
    let g = Cid::v1(DAG_PB, &garbage);
    assert!(matches!(
        read_back(
            &[Block {
                cid: g,
                data: garbage
            }],
            g
        ),
        Err(Error::MalformedNode(_))
    ));
}

#[test]
fn dag_pb_decoder_round_trips_encoder() {
    let links = vec![(Cid::v1(RAW, b"a"), 1), (Cid::v0(b"b"), 99)];
    let data = pb::encode_file_data(None, 100, &[1, 99]);
    let bytes = pb::encode_node(&links, &data);
    let node = pb::decode_node(&bytes).unwrap();
    assert_eq!(node.links.len(), 2);
    assert_eq!(node.links[1].cid, links[1].0);
    assert_eq!(node.links[1].name.as_deref(), Some(""));
    assert_eq!(node.data.as_deref(), Some(&data[..]));
    // Data before Links is not canonical dag-pb.
    let mut swapped = Vec::new();
    swapped.extend_from_slice(&[0x0a, 0x00]);
    swapped.extend_from_slice(&bytes[..bytes.len() - data.len() - 2]);
    assert!(matches!(
        pb::decode_node(&swapped),
        Err(Error::MalformedNode(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Chunking the input differently never changes the root; reading back gives the input.
    #[test]
    fn root_is_independent_of_write_sizes(len in 0usize..700_000, split in 1usize..300_000, v0 in any::<bool>()) {
        let profile = if v0 { Profile::UnixfsV0_2015 } else { Profile::UnixfsV1_2025 };
        let data = Rand::new(len as u64).bytes(len);
        let whole = unixfs::cid(&data, profile);
        let mut imp = Importer::new(profile);
        let mut blocks = Vec::new();
        for piece in data.chunks(split) {
            imp.push(piece, &mut blocks);
        }
        let root = imp.finish(&mut blocks);
        prop_assert_eq!(root, whole);
        prop_assert_eq!(read_back(&blocks, root).unwrap(), data);
    }
}

// ---------------------------------------------------------------------------------------------
// Live cross-check against kubo.

fn ipfs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MEDSHARE_IPFS") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/ipfs");
    assert!(
        p.exists(),
        "kubo not found at {} (scripts/test.sh installs it; or set MEDSHARE_IPFS)",
        p.display()
    );
    p
}

/// A throwaway kubo repository configured with `profile` (no daemon: `--only-hash` needs none).
struct KuboRepo {
    dir: tempfile::TempDir,
}

impl KuboRepo {
    fn new(profile: Profile) -> KuboRepo {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(ipfs_bin())
            .args([
                "init",
                "--empty-repo",
                &format!("--profile=test,{}", profile.as_str()),
            ])
            .env("IPFS_PATH", dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        KuboRepo { dir }
    }

    /// `ipfs add --only-hash` of `len` bytes streamed from the seeded generator into stdin.
    fn add_only_hash(&self, seed: u64, len: u64) -> String {
        let mut child = Command::new(ipfs_bin())
            .args(["add", "--only-hash", "-Q", "--pin=false"])
            .env("IPFS_PATH", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            Rand::new(seed).stream(len, |piece| stdin.write_all(piece).unwrap());
        });
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        feeder.join().unwrap();
        assert!(child.wait().unwrap().success());
        out.trim().to_owned()
    }
}

fn ours(profile: Profile, seed: u64, len: u64) -> String {
    let mut imp = Importer::hash_only(profile);
    let mut sink = Vec::new();
    Rand::new(seed).stream(len, |piece| imp.push(piece, &mut sink));
    imp.finish(&mut sink).to_string()
}

fn cross_check(profile: Profile, sizes: &[u64]) {
    let repo = KuboRepo::new(profile);
    for &len in sizes {
        let seed = random_seed();
        let (theirs, mine) = std::thread::scope(|s| {
            let mine = s.spawn(|| ours(profile, seed, len));
            (repo.add_only_hash(seed, len), mine.join().unwrap())
        });
        assert_eq!(
            mine, theirs,
            "{profile}: {len} bytes from seed {seed:#x} differ from kubo"
        );
        eprintln!("{profile} {len:>11} bytes: {mine} (matches kubo)");
    }
}

#[test]
fn matches_kubo_v1_small_and_chunk_boundaries() {
    let cs = MIB;
    cross_check(
        Profile::UnixfsV1_2025,
        &[
            0,
            1,
            2,
            cs - 1,
            cs,
            cs + 1,
            2 * cs - 1,
            2 * cs,
            2 * cs + 1,
            5 * cs + 12345,
        ],
    );
}

#[test]
fn matches_kubo_v0_small_and_chunk_boundaries() {
    let cs = 256 * KIB;
    cross_check(
        Profile::UnixfsV0_2015,
        &[
            0,
            1,
            2,
            cs - 1,
            cs,
            cs + 1,
            2 * cs - 1,
            2 * cs + 1,
            7 * cs + 999,
        ],
    );
}

#[test]
fn matches_kubo_v0_multi_level() {
    // 174 leaves fill one node; one byte more needs a second level.
    let cs = 256 * KIB;
    cross_check(
        Profile::UnixfsV0_2015,
        &[174 * cs - 1, 174 * cs, 174 * cs + 1, 349 * cs + 7],
    );
}

#[test]
fn matches_kubo_v1_multi_level() {
    // 1024 leaves of 1 MiB fill one node (1 GiB); past that the DAG grows a level.
    let cs = MIB;
    cross_check(Profile::UnixfsV1_2025, &[1024 * cs, 1024 * cs + 1]);
}
