//! Peak resident memory of publish and of open for a large file, on the filesystem store (a
//! directory) or on a kubo node (`kubo=http://127.0.0.1:5001`, any store the CLI's `--store`
//! takes).
//! Each phase runs in its own process so the peak (VmHWM) is that phase's alone:
//!
//! ```sh
//! head -c 1G /dev/urandom > /tmp/big
//! target/release/medshare-rss publish /tmp/big /tmp/rss-store     # prints the record id
//! target/release/medshare-rss open /tmp/rss-store <record>          # plaintext to /dev/null
//! target/release/medshare-rss publish /tmp/big kubo=http://127.0.0.1:5001
//! ```
//! Keys come from core/testdata (PKCS#8, no key-file KDF), so the numbers are the streaming
//! path's own.

use medshare::RecordId;
use medshare::envelope::Metadata;
use medshare::ledger::Policy;
use medshare::{Identity, Role, Store, Vault};
use std::str::FromStr;

const AUTHORITY: &str = include_str!("../../../core/testdata/keys/authority-2048.pem");
const PATIENT: &str = include_str!("../../../core/testdata/keys/patient-2048.pem");

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let patient = Identity::from_pkcs8_pem(Role::Patient, "p", PATIENT)?;
    let authority = Identity::from_pkcs8_pem(Role::Authority, "a", AUTHORITY)?;
    let t = std::time::Instant::now();
    match args.get(1).map(String::as_str) {
        Some("publish") if args.len() == 4 => {
            let file = std::fs::File::open(&args[2])?;
            let size = file.metadata()?.len();
            let store = Store::open_spec(&args[3])?;
            let mut v =
                pollster::block_on(Vault::create(store, "rss", authority, Policy::default()))?;
            pollster::block_on(v.register(&patient, None))?;
            let meta = Metadata {
                name: "big".into(),
                media_type: "application/octet-stream".into(),
                size,
            };
            let record = pollster::block_on(v.publish(&patient, file, meta, &mut |_| {}))?;
            println!("{record}");
            eprintln!(
                "publish: {size} bytes in {:.2} s, peak RSS {} KiB",
                t.elapsed().as_secs_f64(),
                peak_rss_kib()
            );
        }
        Some("open") if args.len() == 4 => {
            let store = Store::open_spec(&args[2])?;
            let v = pollster::block_on(Vault::open(store, None, None))?;
            let record = RecordId::from_str(&args[3])?;
            let m = pollster::block_on(v.open_record(&patient, &record, std::io::sink()))?;
            eprintln!(
                "open: {} bytes in {:.2} s, peak RSS {} KiB",
                m.size,
                t.elapsed().as_secs_f64(),
                peak_rss_kib()
            );
        }
        _ => {
            eprintln!("usage: medshare-rss publish <file> <store> | open <store> <record>");
            std::process::exit(2);
        }
    }
    Ok(())
}
