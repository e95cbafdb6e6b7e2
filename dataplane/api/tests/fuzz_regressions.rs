//! Inputs the fuzz targets (fuzz/) once failed on, kept as tests: each
//! runs the target's own property.

use xdpvs_api::admin::{apply_rules, save};
use xdpvs_api::config::Config;

/// The grammar target's property: whatever `-R` applies, `-S` writes back
/// text that applies to the same configuration.
fn save_is_a_fixed_point(text: &str) {
    let mut cfg = Config::default();
    let _ = apply_rules(&mut cfg, text);
    let saved = save(&cfg);
    let mut again = Config::default();
    let applied = apply_rules(&mut again, &saved);
    assert!(applied.errors.is_empty(), "-S text that -R refuses: {:?}\n{saved}", applied.errors);
    assert_eq!(save(&again), saved);
}

/// `-F-d1` took "-d1" as the interface, which `-S` wrote as `-F -d1`,
/// which reads back as the command -d (found by the grammar target).
#[test]
fn an_interface_name_that_reads_as_an_option_is_refused() {
    let text = "-A -t 198.18.0.10:80 -s rr\n-P -t 198.18.0.10:80 -z 198.19.5.250 -F-d1\n";
    save_is_a_fixed_point(text);
    let mut cfg = Config::default();
    let a = apply_rules(&mut cfg, text);
    assert!(a.errors[0].1.contains("invalid interface name '-d1'"), "{:?}", a.errors);
    // The fuzzer's own input (fuzz/regressions/), as its target reads it.
    let found = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/grammar/ifname-dash"));
    save_is_a_fixed_point(&String::from_utf8_lossy(&found.expect("the fuzzer's input is kept in fuzz/regressions")));
}
