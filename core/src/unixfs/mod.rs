//! UnixFS files: an importer whose root CID is byte-for-byte what `ipfs add` prints, and a
//! walker that reads a file back block by block, checking every block against its CID.
//!
//! Both are executor-free state machines: the importer is fed bytes and hands out finished
//! blocks; the walker says which block it needs next and is handed its bytes. The caller moves
//! blocks to and from whatever (possibly asynchronous) store it uses.
//!
//! Layout is kubo's balanced DAG: fixed-size chunks become leaves, which are grouped left to
//! right under internal nodes of at most `max_links` children, all leaves at the same depth.
//! A file of one chunk is its own root.

pub mod pb;

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::cid::{Cid, DAG_PB, RAW};
use crate::error::{Error, Result};
use crate::limits;
use crate::platform::MaybeSend;
pub use crate::store::Block;

/// How a file is cut and linked; each profile reproduces one `ipfs add` configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// IPIP-499 `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links per node.
    #[default]
    UnixfsV1_2025,
    /// Legacy kubo default `unixfs-v0-2015`: CIDv0, dag-pb leaves, 256 KiB chunks, 174 links per node.
    UnixfsV0_2015,
}

impl Profile {
    /// Bytes of file data per leaf.
    pub fn chunk_size(self) -> usize {
        match self {
            Profile::UnixfsV1_2025 => 1 << 20,
            Profile::UnixfsV0_2015 => 256 << 10,
        }
    }

    /// Most links per internal node.
    pub fn max_links(self) -> usize {
        match self {
            Profile::UnixfsV1_2025 => 1024,
            Profile::UnixfsV0_2015 => 174,
        }
    }

    /// Whether leaves are raw blocks (else dag-pb UnixFS nodes).
    pub fn raw_leaves(self) -> bool {
        matches!(self, Profile::UnixfsV1_2025)
    }

    /// The profile's name as kubo spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::UnixfsV1_2025 => "unixfs-v1-2025",
            Profile::UnixfsV0_2015 => "unixfs-v0-2015",
        }
    }

    fn node_cid(self, bytes: &[u8]) -> Cid {
        match self {
            Profile::UnixfsV1_2025 => Cid::v1(DAG_PB, bytes),
            Profile::UnixfsV0_2015 => Cid::v0(bytes),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Profile> {
        match s {
            "unixfs-v1-2025" => Ok(Profile::UnixfsV1_2025),
            "unixfs-v0-2015" | "legacy-cid-v0" => Ok(Profile::UnixfsV0_2015),
            _ => Err(Error::InvalidInput(format!(
                "unknown profile `{}` (unixfs-v1-2025 or unixfs-v0-2015)",
                crate::text::escape(s)
            ))),
        }
    }
}

#[derive(Clone, Copy)]
struct Link {
    cid: Cid,
    tsize: u64,
    filesize: u64,
}

/// Streaming UnixFS importer.
pub struct Importer {
    profile: Profile,
    emit: bool,
    leaf: Vec<u8>,
    /// Pending links per level (0 = leaves).
    levels: Vec<Vec<Link>>,
    total: u64,
    /// Whether [`Importer::cut_last`] took the last leaf.
    last_cut: bool,
    /// File bytes of each leaf cut and not yet linked, in order.
    cut_sizes: std::collections::VecDeque<u64>,
}

impl Importer {
    /// An importer that hands out every block (leaves and nodes) through `push`/`finish`.
    pub fn new(profile: Profile) -> Importer {
        Importer::build(profile, true)
    }

    /// An importer that only computes the root CID (no block is materialised).
    pub fn hash_only(profile: Profile) -> Importer {
        Importer::build(profile, false)
    }

    fn build(profile: Profile, emit: bool) -> Importer {
        Importer {
            profile,
            emit,
            leaf: Vec::with_capacity(if emit { profile.chunk_size() } else { 0 }),
            levels: vec![Vec::new()],
            total: 0,
            last_cut: false,
            cut_sizes: std::collections::VecDeque::new(),
        }
    }

    /// Bytes imported so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was imported yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Feeds file bytes; finished blocks are appended to `out` (nothing, in hash-only mode).
    /// Every leaf this call completes is hashed in parallel (on every core where there are
    /// threads), then linked in order. A full leaf is the same block whether or not more data
    /// follows, so nothing is held back.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Block>) {
        let cs = self.profile.chunk_size();
        self.total += data.len() as u64;
        // Complete a pending partial leaf first.
        let mut pending = None;
        if !self.leaf.is_empty() {
            let n = (cs - self.leaf.len()).min(data.len());
            self.leaf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.leaf.len() < cs {
                return;
            }
            pending = Some(std::mem::replace(
                &mut self.leaf,
                Vec::with_capacity(if self.emit { cs } else { 0 }),
            ));
        }
        // Whole chunks go straight from the input (no copy).
        let (chunks, rest) = data.split_at(data.len() / cs * cs);
        if pending.is_some() || !chunks.is_empty() {
            for (link, block) in leaves(self.profile, self.emit, pending, chunks) {
                out.extend(block);
                self.add_link(0, link, out);
            }
        }
        self.leaf.extend_from_slice(rest);
    }

    /// Like [`Importer::push`], for a caller that hashes leaves itself (for instance on the
    /// platform's SHA-256, see [`crate::offload::Offload`]): returns the bytes of each leaf
    /// block this call completes, in order, to be handed back with their SHA-256 digests to
    /// [`Importer::link_hashed`] before the next call.
    pub fn cut(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let cs = self.profile.chunk_size();
        self.total += data.len() as u64;
        let mut done = Vec::new();
        while !data.is_empty() {
            let n = (cs - self.leaf.len()).min(data.len());
            if self.leaf.is_empty() && n == cs {
                done.push(self.cut_leaf(data[..n].to_vec()));
            } else {
                self.leaf.extend_from_slice(&data[..n]);
                if self.leaf.len() == cs {
                    let full = std::mem::replace(&mut self.leaf, Vec::with_capacity(cs));
                    done.push(self.cut_leaf(full));
                }
            }
            data = &data[n..];
        }
        done
    }

    /// The last leaf, after the last [`Importer::cut`] (an empty file's one empty leaf
    /// included), to be linked by [`Importer::link_hashed`] before [`Importer::finish`].
    pub fn cut_last(&mut self) -> Vec<Vec<u8>> {
        if self.leaf.is_empty() && (self.total != 0 || self.last_cut) {
            return Vec::new();
        }
        self.last_cut = true;
        let last = std::mem::take(&mut self.leaf);
        vec![self.cut_leaf(last)]
    }

    fn cut_leaf(&mut self, chunk: Vec<u8>) -> Vec<u8> {
        self.cut_sizes.push_back(chunk.len() as u64);
        leaf_bytes(self.profile, chunk)
    }

    /// Links the leaves [`Importer::cut`] returned, given the SHA-256 digest of each; their
    /// blocks, and any node they complete, are appended to `out`.
    pub fn link_hashed(
        &mut self,
        leaves: Vec<Vec<u8>>,
        digests: &[[u8; 32]],
        out: &mut Vec<Block>,
    ) -> Result<()> {
        if leaves.len() != digests.len() || leaves.len() > self.cut_sizes.len() {
            return Err(Error::InvalidInput(format!(
                "{} leaves and {} digests for {} leaves cut",
                leaves.len(),
                digests.len(),
                self.cut_sizes.len()
            )));
        }
        for (data, digest) in leaves.into_iter().zip(digests) {
            let cid = if self.profile.raw_leaves() {
                Cid::v1_from_digest(RAW, *digest)
            } else {
                Cid::v0_from_digest(*digest)
            };
            let filesize = self.cut_sizes.pop_front().unwrap_or_default();
            let link = Link {
                cid,
                tsize: data.len() as u64,
                filesize,
            };
            if self.emit {
                out.push(Block { cid, data });
            }
            self.add_link(0, link, out);
        }
        Ok(())
    }

    fn add_leaf(&mut self, chunk: &[u8], out: &mut Vec<Block>) {
        let (link, block) = leaf(self.profile, self.emit, chunk);
        out.extend(block);
        self.add_link(0, link, out);
    }

    fn add_link(&mut self, level: usize, link: Link, out: &mut Vec<Block>) {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(link);
        if self.levels[level].len() == self.profile.max_links() {
            let links = std::mem::take(&mut self.levels[level]);
            let parent = self.make_node(&links, out);
            self.add_link(level + 1, parent, out);
        }
    }

    fn make_node(&self, links: &[Link], out: &mut Vec<Block>) -> Link {
        let filesize: u64 = links.iter().map(|l| l.filesize).sum();
        let sizes: Vec<u64> = links.iter().map(|l| l.filesize).collect();
        let data = pb::encode_file_data(None, filesize, &sizes);
        let pairs: Vec<(Cid, u64)> = links.iter().map(|l| (l.cid, l.tsize)).collect();
        let bytes = pb::encode_node(&pairs, &data);
        let cid = self.profile.node_cid(&bytes);
        let tsize = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
        if self.emit {
            out.push(Block { cid, data: bytes });
        }
        Link {
            cid,
            tsize,
            filesize,
        }
    }

    /// Flushes the last leaf and the pending nodes; returns the root CID. (Leaves
    /// [`Importer::cut`] handed out are in the DAG once [`Importer::link_hashed`] linked them; if
    /// none was ever linked, the root is the empty file's.)
    pub fn finish(mut self, out: &mut Vec<Block>) -> Cid {
        let leaf = std::mem::take(&mut self.leaf);
        let linked = self.levels.iter().any(|l| !l.is_empty());
        if !leaf.is_empty() || (self.total == 0 && !self.last_cut) || !linked {
            self.add_leaf(&leaf, out);
        }
        // Close every level bottom-up; a level's pending links become one node as long as any
        // level above holds links (so all leaves end at the same depth).
        let mut level = 0;
        loop {
            let above = self
                .levels
                .get(level + 1..)
                .is_some_and(|ls| ls.iter().any(|l| !l.is_empty()));
            let pending = std::mem::take(&mut self.levels[level]);
            if !above {
                match pending.len() {
                    0 => {
                        level += 1;
                        continue;
                    }
                    1 => return pending[0].cid,
                    _ => {}
                }
            }
            if !pending.is_empty() {
                let node = self.make_node(&pending, out);
                if self.levels.len() <= level + 1 {
                    self.levels.push(Vec::new());
                }
                self.levels[level + 1].push(node);
            }
            level += 1;
        }
    }
}

/// The block bytes of a leaf holding `chunk`: the chunk itself (raw leaves), or the chunk in
/// its dag-pb UnixFS frame.
fn leaf_bytes(profile: Profile, chunk: Vec<u8>) -> Vec<u8> {
    if profile.raw_leaves() {
        return chunk;
    }
    let (head, tail) = pb::leaf_frame(chunk.len());
    let mut data = Vec::with_capacity(head.len() + chunk.len() + tail.len());
    data.extend_from_slice(&head);
    data.extend_from_slice(&chunk);
    data.extend_from_slice(&tail);
    data
}

/// One leaf: its link, and its block when blocks are emitted.
fn leaf(profile: Profile, emit: bool, chunk: &[u8]) -> (Link, Option<Block>) {
    if profile.raw_leaves() {
        let cid = Cid::v1(RAW, chunk);
        let link = Link {
            cid,
            tsize: chunk.len() as u64,
            filesize: chunk.len() as u64,
        };
        let block = emit.then(|| Block {
            cid,
            data: chunk.to_vec(),
        });
        (link, block)
    } else {
        let (head, tail) = pb::leaf_frame(chunk.len());
        let mut h = Sha256::new();
        h.update(&head);
        h.update(chunk);
        h.update(&tail);
        let cid = Cid::v0_from_digest(h.finalize().into());
        let size = head.len() + chunk.len() + tail.len();
        let block = emit.then(|| {
            let mut data = Vec::with_capacity(size);
            data.extend_from_slice(&head);
            data.extend_from_slice(chunk);
            data.extend_from_slice(&tail);
            Block { cid, data }
        });
        let link = Link {
            cid,
            tsize: size as u64,
            filesize: chunk.len() as u64,
        };
        (link, block)
    }
}

/// The leaves of `first` (one whole chunk, owned) and then of `chunks` (whole chunks of
/// `profile`), in order, hashed on every core where there are threads.
fn leaves(
    profile: Profile,
    emit: bool,
    first: Option<Vec<u8>>,
    chunks: &[u8],
) -> Vec<(Link, Option<Block>)> {
    let cs = profile.chunk_size();
    // An owned raw leaf becomes its block as it is (no copy), so only its link is computed.
    let move_first = emit && profile.raw_leaves();
    let pieces: Vec<(&[u8], bool)> = first
        .as_deref()
        .map(|f| (f, emit && !move_first))
        .into_iter()
        .chain(chunks.chunks_exact(cs).map(|c| (c, emit)))
        .collect();
    let mut done: Vec<(Link, Option<Block>)> =
        crate::platform::par_map(&pieces, |(piece, emit)| leaf(profile, *emit, piece));
    if let (true, Some(data), Some(slot)) = (move_first, first, done.first_mut()) {
        slot.1 = Some(Block {
            cid: slot.0.cid,
            data,
        });
    }
    done
}

/// The root CID `ipfs add` gives `data` under `profile`.
pub fn cid(data: &[u8], profile: Profile) -> Cid {
    let mut imp = Importer::hash_only(profile);
    let mut sink = Vec::new();
    imp.push(data, &mut sink);
    imp.finish(&mut sink)
}

/// The root CID of everything `input` yields, in constant memory. Reading the next buffer
/// overlaps hashing the current one, whose leaves are hashed on every core.
pub fn cid_of_reader<R: Read + MaybeSend>(mut input: R, profile: Profile) -> Result<Cid> {
    let mut imp = Importer::hash_only(profile);
    let mut sink = Vec::new();
    // Whole buffers, so that every read hands the importer several whole chunks.
    let mut current = vec![0u8; 8 << 20];
    let mut next = vec![0u8; 8 << 20];
    let mut n = read_full(&mut input, &mut current)?;
    while n > 0 {
        let (read, ()) = crate::platform::join(
            || read_full(&mut input, &mut next),
            || imp.push(&current[..n], &mut sink),
        );
        n = read?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok(imp.finish(&mut sink))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(n)
}

/// Largest DAG depth the walker follows (1024^6 MiB is far beyond any record).
const MAX_DEPTH: usize = 6;

/// Reads a UnixFS file back: asks for blocks in file order, verifies each against its CID,
/// checks the declared sizes, and yields the file bytes. A file larger than the walker's
/// limit is refused as soon as a node declares it, before its blocks are fetched: a DAG that
/// links one child many times cannot make a reader walk more than the limit.
pub struct Walker {
    /// Blocks still to visit, last = next, with the file size the parent declared and depth.
    stack: Vec<(Cid, Option<u64>, usize)>,
    total: u64,
    limit: u64,
}

impl Walker {
    /// Starts at `root`, for a file of at most [`limits::MAX_RECORD_SIZE`] bytes plus overhead.
    pub fn new(root: Cid) -> Walker {
        Walker::with_limit(root, limits::MAX_RECORD_SIZE + (1 << 30))
    }

    /// Starts at `root`, for a file of at most `limit` bytes (the envelope size the ledger
    /// records, for a record version).
    pub fn with_limit(root: Cid, limit: u64) -> Walker {
        Walker {
            stack: vec![(root, None, 0)],
            total: 0,
            limit,
        }
    }

    /// The next block to fetch, or `None` when the file is complete.
    pub fn next_cid(&self) -> Option<Cid> {
        self.stack.last().map(|(c, _, _)| *c)
    }

    /// Up to `n` blocks to fetch from [`Walker::next_cid`] on, as long as they are raw leaves
    /// (whose visits cannot add blocks to the walk): what a reader may fetch ahead. Empty if the
    /// next block is not a raw leaf.
    pub fn upcoming_raw(&self, n: usize) -> Vec<Cid> {
        self.stack
            .iter()
            .rev()
            .take(n)
            .map(|(c, _, _)| *c)
            .take_while(|c| c.codec() == crate::cid::RAW)
            .collect()
    }

    /// File bytes yielded so far.
    pub fn position(&self) -> u64 {
        self.total
    }

    /// Hands the walker the bytes of [`Walker::next_cid`], which it checks against the CID.
    /// Returns the file bytes this block holds (empty for internal nodes), borrowed from `bytes` for raw leaves.
    pub fn visit<'a>(&mut self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        let cid = self
            .next_cid()
            .ok_or_else(|| Error::MalformedNode("walk already finished".into()))?;
        cid.verify(bytes)?;
        self.visit_verified(bytes)
    }

    /// Like [`Walker::visit`], for bytes already checked against [`Walker::next_cid`] — as
    /// [`crate::Store`] does for every block it returns.
    pub fn visit_verified<'a>(&mut self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        let (cid, expected, depth) = self
            .stack
            .pop()
            .ok_or_else(|| Error::MalformedNode("walk already finished".into()))?;
        if bytes.len() > limits::MAX_BLOCK_SIZE {
            return Err(Error::TooLarge {
                what: "block",
                size: bytes.len() as u64,
                limit: limits::MAX_BLOCK_SIZE as u64,
            });
        }
        let check = |actual: u64| match expected {
            Some(e) if e != actual => Err(Error::MalformedNode(format!(
                "block {cid} holds {actual} bytes of file data, its parent says {e}"
            ))),
            _ => Ok(()),
        };
        match cid.codec() {
            RAW => {
                check(bytes.len() as u64)?;
                if expected.is_none() && bytes.len() as u64 > self.limit {
                    return Err(Error::MalformedNode("file larger than expected".into()));
                }
                self.total += bytes.len() as u64;
                Ok(Cow::Borrowed(bytes))
            }
            DAG_PB => {
                let node = pb::decode_node(bytes)?;
                let data = node
                    .data
                    .as_deref()
                    .ok_or_else(|| Error::MalformedNode("dag-pb node without Data".into()))?;
                let fs = pb::decode_unixfs(data)?;
                if fs.kind != pb::TYPE_FILE && fs.kind != pb::TYPE_RAW {
                    return Err(Error::MalformedNode(format!(
                        "UnixFS type {} is not a file",
                        fs.kind
                    )));
                }
                let inline = fs.data.unwrap_or_default();
                if node.links.is_empty() {
                    if fs.filesize.is_some_and(|size| size != inline.len() as u64) {
                        return Err(Error::MalformedNode(
                            "leaf filesize differs from its data".into(),
                        ));
                    }
                    check(inline.len() as u64)?;
                    self.total += inline.len() as u64;
                    return Ok(Cow::Owned(inline));
                }
                if !inline.is_empty() {
                    return Err(Error::MalformedNode(
                        "file node with both data and links".into(),
                    ));
                }
                if fs.blocksizes.len() != node.links.len() {
                    return Err(Error::MalformedNode("blocksizes do not match links".into()));
                }
                let sum = fs
                    .blocksizes
                    .iter()
                    .try_fold(0u64, |a, &b| a.checked_add(b));
                let sum = sum.ok_or_else(|| Error::MalformedNode("blocksizes overflow".into()))?;
                if fs.filesize.is_some_and(|f| f != sum) {
                    return Err(Error::MalformedNode(
                        "filesize differs from the sum of blocksizes".into(),
                    ));
                }
                check(sum)?;
                if expected.is_none() && sum > self.limit {
                    return Err(Error::MalformedNode(format!(
                        "file of {sum} bytes is larger than the {} expected",
                        self.limit
                    )));
                }
                if depth >= MAX_DEPTH {
                    return Err(Error::MalformedNode("DAG too deep".into()));
                }
                for (link, size) in node.links.iter().zip(&fs.blocksizes).rev() {
                    self.stack.push((link.cid, Some(*size), depth + 1));
                }
                Ok(Cow::Borrowed(&[]))
            }
            other => Err(Error::MalformedNode(format!(
                "codec 0x{other:x} is not a UnixFS file block"
            ))),
        }
    }
}
