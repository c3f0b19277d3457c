//! Replays the seed corpus of every cargo-fuzz target (`fuzz/corpus/<target>/`) through the same
//! target functions (`fuzz/src/lib.rs`) on stable Rust, so that `cargo test --workspace` runs
//! what the fuzzers start from and every finding added to the corpus stays fixed.

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_seed_of_every_fuzz_target_replays() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in targets::TARGETS {
        let mut seeds: Vec<_> = std::fs::read_dir(corpus.join(name))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
            .map(|entry| entry.unwrap().path())
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 5, "fuzz/corpus/{name} holds a handful of seeds: {seeds:?}");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            eprintln!("{name}: {}", seed.display());
            target(&data);
        }
    }
}
