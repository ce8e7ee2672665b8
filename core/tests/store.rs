//! Store backends: the shared conformance suite on each, filesystem crash safety (a child
//! process killed mid-write, in a loop), locking between processes, and corrupt backends.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Rand, random_seed};
use medshare::cid::{Cid, RAW};
use medshare::store::fs::FsStore;
use medshare::store::memory::MemoryStore;
use medshare::store::{BlockStore, testsuite};
use medshare::{Error, Store};
use pollster::block_on;

#[test]
fn memory_store_passes_the_suite() {
    block_on(testsuite::run_all(Store::memory)).unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn fs_store_passes_the_suite() {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    block_on(testsuite::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        dirs.borrow_mut().push(dir);
        store
    }))
    .unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn fs_store_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cid = Cid::v1(RAW, b"persist me");
    {
        let s = Store::open_dir(dir.path()).unwrap();
        block_on(s.put(&cid, b"persist me")).unwrap();
        block_on(s.compare_and_swap_head(None, Some(&cid))).unwrap();
    }
    let s = Store::open_dir(dir.path()).unwrap();
    assert_eq!(block_on(s.get(&cid)).unwrap(), b"persist me");
    assert_eq!(block_on(s.head()).unwrap(), Some(cid));
}

#[test]
fn second_handle_in_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = FsStore::open(dir.path()).unwrap();
    match FsStore::open(dir.path()) {
        Err(Error::StoreLocked(p)) => assert!(p.contains(&dir.path().display().to_string())),
        other => panic!("expected StoreLocked, got {other:?}"),
    }
    drop(first);
    FsStore::open(dir.path()).unwrap();
}

/// Re-runs this test binary as a child executing the ignored test `name`.
fn child(name: &str, dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("MEDSHARE_STORE_CHILD_DIR", dir)
    .stdin(Stdio::null());
    c
}

#[test]
#[ignore = "child process of another_process_is_refused"]
fn child_try_open() {
    let Some(dir) = std::env::var_os("MEDSHARE_STORE_CHILD_DIR") else {
        return;
    };
    match FsStore::open(&dir) {
        Ok(_) => println!("RESULT opened"),
        Err(e) => println!("RESULT {} {e}", e.code()),
    }
}

#[test]
fn another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let held = FsStore::open(dir.path()).unwrap();
    let out = child("child_try_open", dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("RESULT StoreLocked store is locked by another process"),
        "{text}"
    );
    drop(held);
    let out = child("child_try_open", dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("RESULT opened"));
}

#[test]
#[ignore = "child process of crash_at_any_point_loses_nothing"]
fn child_writer() {
    let Some(dir) = std::env::var_os("MEDSHARE_STORE_CHILD_DIR") else {
        return;
    };
    let store = Store::open_dir(&dir).unwrap();
    let mut rng = Rand::new(random_seed());
    let mut head = block_on(store.head()).unwrap();
    let stdout = std::io::stdout();
    let mut unflushed = Vec::new();
    for i in 0u64.. {
        let mut len = [0u8; 4];
        rng.fill(&mut len);
        let len = (u32::from_le_bytes(len) % (1 << 17)) as usize + 1;
        let data = rng.bytes(len);
        let cid = Cid::v1(RAW, &data);
        block_on(store.put(&cid, &data)).unwrap();
        unflushed.push(cid);
        // A put is acknowledged at the next durability point: an explicit flush, or a head
        // change (which flushes first).
        if i % 5 == 4 {
            block_on(store.flush()).unwrap();
            for c in unflushed.drain(..) {
                writeln!(stdout.lock(), "B {c}").unwrap();
            }
        }
        if i % 3 == 0 {
            let node = Cid::dag_cbor(cid.to_string().as_bytes());
            block_on(store.put(&node, cid.to_string().as_bytes())).unwrap();
            block_on(store.compare_and_swap_head(head.as_ref(), Some(&node))).unwrap();
            for c in unflushed.drain(..) {
                writeln!(stdout.lock(), "B {c}").unwrap();
            }
            head = Some(node);
            writeln!(stdout.lock(), "H {node}").unwrap();
        }
    }
}

/// Every block file under `blocks/` and every row of `blocks.db` must hash to its key: no
/// partial or foreign block is ever visible. Read directly, with the store closed. Returns how
/// many blocks are held (files, rows).
fn check_every_block(root: &Path) -> (usize, usize) {
    let matches = |key: &[u8], data: &[u8]| {
        [Cid::v1(RAW, data), Cid::dag_cbor(data)]
            .iter()
            .any(|c| c.multihash()[..] == *key)
    };
    let mut files = 0;
    for shard in std::fs::read_dir(root.join("blocks")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let key = data_encoding::BASE32_NOPAD
                .decode(name.to_ascii_uppercase().as_bytes())
                .unwrap();
            assert!(
                matches(&key, &data),
                "block file {name} does not match its content ({} bytes)",
                data.len()
            );
            assert!(
                data.len() > medshare::store::fs::SMALL_BLOCK,
                "a small block as a file"
            );
            files += 1;
        }
    }
    let db = rusqlite::Connection::open(root.join("blocks.db")).unwrap();
    let mut rows = 0;
    let mut all = db.prepare("SELECT key, data FROM blocks").unwrap();
    for row in all
        .query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap()
    {
        let (key, data) = row.unwrap();
        assert!(
            matches(&key, &data),
            "a database row does not match its key"
        );
        assert!(
            data.len() <= medshare::store::fs::SMALL_BLOCK,
            "a large block in the database"
        );
        rows += 1;
    }
    (files, rows)
}

#[test]
fn crash_at_any_point_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut committed: Vec<Cid> = Vec::new();
    let mut last_head: Option<Cid> = None;
    let mut rng = Rand::new(random_seed());
    for round in 0..25 {
        let mut proc = child("child_writer", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = proc.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        let mut wait = [0u8; 2];
        rng.fill(&mut wait);
        std::thread::sleep(Duration::from_millis(
            30 + u64::from(u16::from_le_bytes(wait)) % 400,
        ));
        proc.kill().unwrap(); // SIGKILL: no destructor, no flush, mid-write
        proc.wait().unwrap();
        let lines = reader.join().unwrap();
        for l in &lines {
            match l.split_once(' ') {
                Some(("B", c)) => committed.push(c.parse().unwrap()),
                Some(("H", c)) => last_head = Some(c.parse().unwrap()),
                _ => {}
            }
        }
        // Reopen: the lock died with the process; SQLite recovers its log; tmp/ is swept;
        // nothing acknowledged is lost.
        let store = Store::open_dir(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        for cid in &committed {
            block_on(store.get(cid))
                .unwrap_or_else(|e| panic!("round {round}: acknowledged block {cid} lost: {e}"));
        }
        let head = block_on(store.head()).unwrap();
        if let Some(h) = last_head {
            let head = head.expect("head vanished");
            // The head is the last acknowledged one or a newer one written just before the kill.
            block_on(store.get(&head)).unwrap();
            if head != h {
                assert!(!committed.contains(&head));
            }
        }
        // Closed again, every block held hashes to its key.
        drop(store);
        check_every_block(dir.path());
    }
    assert!(
        committed.len() > 25,
        "child wrote too little to exercise crashes ({})",
        committed.len()
    );
    eprintln!(
        "{} acknowledged blocks survived 25 SIGKILLs",
        committed.len()
    );
}

/// A backend that returns altered bytes.
struct Lying(MemoryStore);

#[async_trait::async_trait]
impl BlockStore for Lying {
    async fn put(&self, cid: &Cid, data: &[u8]) -> medshare::Result<()> {
        self.0.put(cid, data).await
    }
    async fn get(&self, cid: &Cid) -> medshare::Result<Option<Vec<u8>>> {
        Ok(self.0.get(cid).await?.map(|mut d| {
            d[0] ^= 1;
            d
        }))
    }
    async fn has(&self, cid: &Cid) -> medshare::Result<bool> {
        self.0.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> medshare::Result<()> {
        self.0.delete(cid).await
    }
    async fn head(&self) -> medshare::Result<Option<Cid>> {
        self.0.head().await
    }
    async fn compare_and_swap_head(
        &self,
        e: Option<&Cid>,
        n: Option<&Cid>,
    ) -> medshare::Result<()> {
        self.0.compare_and_swap_head(e, n).await
    }
}

#[test]
fn a_store_returning_wrong_bytes_is_caught() {
    let store = Store::new(Lying(MemoryStore::default()));
    let cid = Cid::v1(RAW, b"true bytes");
    block_on(store.put(&cid, b"true bytes")).unwrap();
    match block_on(store.get(&cid)) {
        Err(Error::CidMismatch { expected, actual }) => {
            assert_eq!(expected, cid);
            assert_ne!(actual, cid);
        }
        other => panic!("expected CidMismatch, got {other:?}"),
    }
}

#[test]
fn a_block_file_altered_on_disk_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    // Large: kept as a file.
    let mut good = vec![0x42u8; medshare::store::fs::SMALL_BLOCK + 1];
    let cid = Cid::v1(RAW, &good);
    block_on(store.put(&cid, &good)).unwrap();
    block_on(store.flush()).unwrap();
    let key = cid.storage_key();
    let path = dir
        .path()
        .join("blocks")
        .join(&key[key.len() - 3..key.len() - 1])
        .join(&key);
    good[7] ^= 1;
    std::fs::write(&path, &good).unwrap();
    good[7] ^= 1;
    assert!(matches!(
        block_on(store.get(&cid)),
        Err(Error::CidMismatch { .. })
    ));
    // Putting the good bytes again repairs the file (a put over a damaged file replaces it).
    block_on(store.put(&cid, &good)).unwrap();
    assert_eq!(block_on(store.get(&cid)).unwrap(), good);
    // A file of the other length is replaced too.
    std::fs::write(&path, b"short").unwrap();
    block_on(store.put_many(&[medshare::store::Block {
        cid,
        data: good.clone(),
    }]))
    .unwrap();
    assert_eq!(block_on(store.get(&cid)).unwrap(), good);
    block_on(store.flush()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), good);
}

#[test]
fn a_block_altered_in_the_database_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cid = Cid::v1(RAW, b"in the database");
    {
        let store = Store::open_dir(dir.path()).unwrap();
        block_on(store.put(&cid, b"in the database")).unwrap();
        block_on(store.flush()).unwrap();
    }
    let damage = |bytes: &[u8]| {
        let db = rusqlite::Connection::open(dir.path().join("blocks.db")).unwrap();
        let n = db
            .execute(
                "UPDATE blocks SET data = ?1 WHERE key = ?2",
                rusqlite::params![bytes, &cid.multihash()[..]],
            )
            .unwrap();
        assert_eq!(n, 1);
    };
    damage(b"in the databasE");
    let store = Store::open_dir(dir.path()).unwrap();
    assert!(matches!(
        block_on(store.get(&cid)),
        Err(Error::CidMismatch { .. })
    ));
    // Putting the good bytes again repairs it, durably.
    block_on(store.put(&cid, b"in the database")).unwrap();
    assert_eq!(block_on(store.get(&cid)).unwrap(), b"in the database");
    block_on(store.flush()).unwrap();
    drop(store);
    damage(b"short");
    let store = Store::open_dir(dir.path()).unwrap();
    block_on(store.put(&cid, b"in the database")).unwrap();
    drop(store);
    // Not flushed: the repair was rolled back with the handle, as a crash would.
    let store = Store::open_dir(dir.path()).unwrap();
    assert!(matches!(
        block_on(store.get(&cid)),
        Err(Error::CidMismatch { .. })
    ));
    block_on(store.put(&cid, b"in the database")).unwrap();
    block_on(store.flush()).unwrap();
    drop(store);
    assert_eq!(check_every_block(dir.path()), (0, 1));
}

#[test]
fn a_damaged_database_is_store_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    drop(FsStore::open(dir.path()).unwrap());
    std::fs::write(dir.path().join("blocks.db"), vec![0x55u8; 8192]).unwrap();
    match FsStore::open(dir.path()) {
        Err(Error::StoreCorrupt(m)) => assert!(m.contains("blocks.db"), "{m}"),
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
}

#[test]
#[ignore = "child process of writes_lost_to_a_full_disk_are_never_acknowledged"]
fn child_fills_the_disk() {
    let Some(dir) = std::env::var_os("MEDSHARE_STORE_CHILD_DIR") else {
        return;
    };
    let store = Store::open_dir(&dir).unwrap();
    let first = Cid::v1(RAW, b"acknowledged");
    block_on(store.put(&first, b"acknowledged")).unwrap();
    block_on(store.compare_and_swap_head(None, Some(&first))).unwrap();
    // Small blocks until a write fails (the file size limit stands in for a full disk).
    let mut put = Vec::new();
    let failure = (0u32..2000).find_map(|i| {
        let data = vec![(i % 251) as u8; 60_000 + i as usize];
        let cid = Cid::v1(RAW, &data);
        match block_on(store.put(&cid, &data)) {
            Ok(()) => {
                put.push(cid);
                None
            }
            Err(e) => Some(e),
        }
    });
    println!(
        "RESULT put {} then {:?}",
        put.len(),
        failure.map(|e| e.to_string())
    );
    // The puts that returned Ok were rolled back with the transaction: no durability point may
    // now pass as if they were on disk.
    match block_on(store.compare_and_swap_head(Some(&first), put.last())) {
        Ok(()) => println!("RESULT head moved"),
        Err(e) => println!("RESULT head refused: {e}"),
    }
    match block_on(store.flush()) {
        Ok(()) => println!("RESULT flushed"),
        Err(e) => println!("RESULT flush refused: {e}"),
    }
}

#[test]
fn writes_lost_to_a_full_disk_are_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    drop(FsStore::open(dir.path()).unwrap());
    // A child whose files may not grow past 4 MiB (SIGXFSZ ignored: the write fails instead).
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "trap '' XFSZ; ulimit -f 8192; exec \"$0\" child_fills_the_disk --exact --ignored \
             --nocapture --test-threads=1",
        )
        .arg(&exe)
        .env("MEDSHARE_STORE_CHILD_DIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let put_line = text
        .lines()
        .find(|l| l.contains("RESULT put"))
        .unwrap_or_else(|| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(put_line.contains("Some("), "no write failed: {put_line}");
    assert!(
        text.contains("RESULT head refused: ") && text.contains("RESULT flush refused: "),
        "{text}"
    );
    assert!(
        text.contains("they are not stored: reopen the store"),
        "{text}"
    );
    // Reopened without the limit: the acknowledged head and block are there, and nothing else.
    let store = Store::open_dir(dir.path()).unwrap();
    let first = Cid::v1(RAW, b"acknowledged");
    assert_eq!(block_on(store.head()).unwrap(), Some(first));
    assert_eq!(block_on(store.get(&first)).unwrap(), b"acknowledged");
    assert_eq!(block_on(store.list()).unwrap().unwrap().len(), 1);
}

#[test]
fn damaged_rows_are_caught_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let good = Cid::v1(RAW, b"good");
    let text = Cid::v1(RAW, b"text");
    let huge = Cid::v1(RAW, b"huge");
    {
        let store = Store::open_dir(dir.path()).unwrap();
        for (cid, data) in [(good, &b"good"[..]), (text, b"text"), (huge, b"huge")] {
            block_on(store.put(&cid, data)).unwrap();
        }
        block_on(store.flush()).unwrap();
    }
    {
        let db = rusqlite::Connection::open(dir.path().join("blocks.db")).unwrap();
        // A value of another type, a row over the block size limit, a key that is no multihash.
        db.execute(
            "UPDATE blocks SET data = 'txet' WHERE key = ?1",
            [&text.multihash()[..]],
        )
        .unwrap();
        db.execute(
            "UPDATE blocks SET data = zeroblob(?2) WHERE key = ?1",
            rusqlite::params![
                &huge.multihash()[..],
                medshare::limits::MAX_BLOCK_SIZE as i64 + 1
            ],
        )
        .unwrap();
        db.execute("INSERT INTO blocks (key, data) VALUES (x'0102', x'00')", [])
            .unwrap();
    }
    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(block_on(store.get(&good)).unwrap(), b"good");
    assert!(matches!(
        block_on(store.get(&text)),
        Err(Error::CidMismatch { .. })
    ));
    match block_on(store.get(&huge)) {
        Err(Error::TooLarge { what: "block", .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The damaged key is skipped (gc and repair still list the rest).
    assert_eq!(block_on(store.list()).unwrap().unwrap().len(), 3);
    // Good bytes repair both.
    block_on(store.put(&text, b"text")).unwrap();
    block_on(store.put(&huge, b"huge")).unwrap();
    assert_eq!(block_on(store.get(&text)).unwrap(), b"text");
    assert_eq!(block_on(store.get(&huge)).unwrap(), b"huge");
}

#[test]
fn a_missing_database_is_not_recreated_empty() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_dir(dir.path()).unwrap();
        let cid = Cid::v1(RAW, b"kept");
        block_on(store.put(&cid, b"kept")).unwrap();
        block_on(store.compare_and_swap_head(None, Some(&cid))).unwrap();
    }
    std::fs::remove_file(dir.path().join("blocks.db")).unwrap();
    match FsStore::open(dir.path()) {
        Err(Error::StoreCorrupt(m)) => assert!(m.contains("blocks.db is missing"), "{m}"),
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
}

#[test]
fn a_format_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A store as format 1 left it: every block a file, the marker saying 1.
    let small: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
    let large = vec![9u8; medshare::store::fs::SMALL_BLOCK + 10];
    let mut cids = Vec::new();
    for data in small.iter().chain(std::iter::once(&large)) {
        let cid = Cid::v1(RAW, data);
        let key = cid.storage_key();
        let shard = root.join("blocks").join(&key[key.len() - 3..key.len() - 1]);
        std::fs::create_dir_all(&shard).unwrap();
        std::fs::write(shard.join(&key), data).unwrap();
        cids.push(cid);
    }
    std::fs::write(root.join("STORE"), "medshare-fs-store 1\n").unwrap();
    std::fs::write(root.join("HEAD"), format!("{}\n", cids[0])).unwrap();
    {
        let store = Store::open_dir(root).unwrap();
        for (cid, data) in cids.iter().zip(small.iter().chain(std::iter::once(&large))) {
            assert_eq!(&block_on(store.get(cid)).unwrap(), data);
        }
        assert_eq!(block_on(store.head()).unwrap(), Some(cids[0]));
        assert_eq!(block_on(store.list()).unwrap().unwrap().len(), 41);
    }
    assert_eq!(
        std::fs::read_to_string(root.join("STORE")).unwrap(),
        "medshare-fs-store 2\n"
    );
    // The small ones moved into the database; the large one stayed a file.
    assert_eq!(check_every_block(root), (1, 40));
    // An interrupted upgrade (a chunk copied, its files not yet deleted) carries on.
    let key = cids[3].storage_key();
    let shard = root.join("blocks").join(&key[key.len() - 3..key.len() - 1]);
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join(&key), &small[3]).unwrap();
    std::fs::write(
        root.join("STORE"),
        "medshare-fs-store 2 (upgrading from 1)\n",
    )
    .unwrap();
    drop(Store::open_dir(root).unwrap());
    assert_eq!(check_every_block(root), (1, 40));
    assert_eq!(
        std::fs::read_to_string(root.join("STORE")).unwrap(),
        "medshare-fs-store 2\n"
    );
    // An unknown format is refused, not guessed at.
    std::fs::write(root.join("STORE"), "medshare-fs-store 3\n").unwrap();
    match FsStore::open(root) {
        Err(Error::StoreCorrupt(m)) => assert!(m.contains("unknown store format"), "{m}"),
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
}

#[test]
fn a_directory_left_in_tmp_does_not_stop_the_store() {
    let dir = tempfile::tempdir().unwrap();
    drop(FsStore::open(dir.path()).unwrap());
    std::fs::create_dir_all(dir.path().join("tmp/stray/deeper")).unwrap();
    std::fs::write(dir.path().join("tmp/stray/deeper/file"), b"x").unwrap();
    std::fs::write(dir.path().join("tmp/partial"), b"x").unwrap();
    // Interrupted atomic writes of HEAD and of a metadata value.
    std::fs::write(dir.path().join(".HEAD.0123abcd.tmp"), b"bafy").unwrap();
    std::fs::write(dir.path().join("meta/.pending-deletions.99ff.tmp"), b"[").unwrap();
    FsStore::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    assert!(!dir.path().join(".HEAD.0123abcd.tmp").exists());
    assert!(!dir.path().join("meta/.pending-deletions.99ff.tmp").exists());
    assert!(dir.path().join("STORE").exists());
}

#[test]
fn metadata_keys_are_names_not_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = medshare::Store::open_dir(dir.path()).unwrap();
    for key in ["../HEAD", "a/b", "", ".hidden", &"k".repeat(65)] {
        assert!(
            matches!(
                block_on(store.put_meta(key, Some(b"x"))),
                Err(Error::InvalidInput(_))
            ),
            "{key}"
        );
        assert!(matches!(
            block_on(store.get_meta(key)),
            Err(Error::InvalidInput(_))
        ));
    }
    block_on(store.put_meta("node-kept", Some(b"7"))).unwrap();
    assert_eq!(
        block_on(store.get_meta("node-kept")).unwrap().unwrap(),
        b"7"
    );
}

#[test]
fn damaged_head_is_reported_and_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    drop(FsStore::open(dir.path()).unwrap());
    for damage in [&b"not a cid\n"[..], b"bafyrei", b"\xff\xfe"] {
        std::fs::write(dir.path().join("HEAD"), damage).unwrap();
        // The store still opens (so that it can be repaired); reading the head says what to do.
        let store = FsStore::open(dir.path()).unwrap();
        match block_on(BlockStore::head(&store)) {
            Err(Error::StoreCorrupt(m)) => assert!(m.contains("medshare repair"), "{m}"),
            other => panic!("{other:?}"),
        }
        let cid = Cid::dag_cbor(b"a head");
        store.reset_head(&cid).unwrap();
        assert_eq!(block_on(BlockStore::head(&store)).unwrap(), Some(cid));
    }
}
