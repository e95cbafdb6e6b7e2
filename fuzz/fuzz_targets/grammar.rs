//! ipvsadm's grammar against any text: `-R` input (as lines) and a single
//! command line (as words) never panic; whatever `-R` applies, `-S` writes
//! back text that applies to the same configuration (the save is a fixed
//! point), as an operator's save → restore must be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpvs_api::admin::{apply_rules, save};
use xdpvs_api::config::Config;
use xdpvs_api::grammar::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let _ = parse(&words);
    let mut cfg = Config::default();
    let _ = apply_rules(&mut cfg, &text);
    let saved = save(&cfg);
    let mut again = Config::default();
    let applied = apply_rules(&mut again, &saved);
    assert!(applied.errors.is_empty(), "-S text that -R refuses: {:?}\n{saved}", applied.errors);
    assert_eq!(save(&again), saved, "save → restore → save differs");
});
