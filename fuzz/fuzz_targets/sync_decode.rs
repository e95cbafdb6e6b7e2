//! The IPVS sync decoder against any datagram: it never panics, a message
//! it accepts never yields more records than its count says, and every
//! record it accepts encodes again to bytes that decode to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpvs_api::sync::{parse, Builder, Item, Message};

fuzz_target!(|data: &[u8]| {
    let syncid = data.first().copied().unwrap_or(0);
    let Ok(Message::Conns(records)) = parse(data, syncid) else { return };
    let count = usize::from(data[4]);
    let mut n = 0;
    for item in records {
        n += 1;
        assert!(n <= count, "more records than the header's count");
        if let Item::Conn(r) = item {
            let mut b = Builder::new(syncid, 65507);
            assert!(b.push(&r), "an accepted record always fits an empty message");
            match parse(b.bytes(), syncid) {
                Ok(Message::Conns(mut again)) => assert_eq!(again.next(), Some(Item::Conn(r))),
                other => panic!("a re-encoded record did not decode: {other:?}"),
            }
        }
    }
});
