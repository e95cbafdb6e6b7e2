//! keepalived.conf's reader (words, blocks, the model, the checks across
//! blocks) against any file: it never panics, and every diagnostic names a
//! place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    // A directory of its own: relative includes and globs see only this file.
    let dir = std::env::temp_dir().join(format!("xdpvs-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir(&dir);
    let path = dir.join("keepalived.conf");
    let mut f = std::fs::File::create(&path).expect("a temporary file");
    f.write_all(data).expect("written");
    drop(f);
    let loaded = xdpvs_checker::conf::load_as(&path, "fuzz");
    for (at, msg, _) in &loaded.diags {
        assert!(!at.is_empty() && !msg.is_empty());
    }
});
