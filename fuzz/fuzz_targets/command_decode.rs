//! The daemon's command decoder against any bytes a local process could
//! put in a command slot: it never panics, and a request it accepts
//! encodes again to bytes that decode to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpvs_api::msg::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let again = Request::decode(&r.encode()).expect("a re-encoded request decodes");
        assert_eq!(again, r);
    }
});
