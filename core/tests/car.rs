//! CAR reading rejects malformed input with typed errors.

use medshare::Error;
use medshare::car::{CarReader, CarWriter};
use medshare::cid::{Cid, RAW};

fn car(blocks: &[(&Cid, &[u8])]) -> Vec<u8> {
    let mut w = CarWriter::new(Vec::new(), &[*blocks[0].0]).unwrap();
    for (c, d) in blocks {
        w.write_block(c, d).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn round_trip_including_cidv0() {
    let a = Cid::v1(RAW, b"a");
    let v0 = Cid::v0(b"\x0a\x00");
    let bytes = car(&[(&a, b"a"), (&v0, b"\x0a\x00")]);
    let mut r = CarReader::new(&bytes[..]).unwrap();
    assert_eq!(r.roots(), &[a]);
    assert_eq!(r.next_block().unwrap().unwrap().data, b"a");
    assert_eq!(r.next_block().unwrap().unwrap().cid, v0);
    assert!(r.next_block().unwrap().is_none());
}

#[test]
fn malformed_cars() {
    let a = Cid::v1(RAW, b"a");
    let good = car(&[(&a, b"a")]);
    assert!(matches!(
        CarReader::new(&b""[..]),
        Err(Error::MalformedCar(_))
    ));
    assert!(matches!(
        CarReader::new(&good[..5]),
        Err(Error::MalformedCar(_))
    ));
    // A block whose bytes do not match its CID.
    let lie = car(&[(&a, b"b")]);
    let mut r = CarReader::new(&lie[..]).unwrap();
    assert!(matches!(r.next_block(), Err(Error::CidMismatch { .. })));
    // A truncated section.
    let mut r = CarReader::new(&good[..good.len() - 1]).unwrap();
    assert!(matches!(r.next_block(), Err(Error::MalformedCar(_))));
    // An absurd section length.
    let mut huge = good[..good.len() - 38].to_vec();
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    let mut r = CarReader::new(&huge[..]).unwrap();
    assert!(matches!(
        r.next_block(),
        Err(Error::TooLarge {
            what: "CAR section",
            ..
        })
    ));
}
