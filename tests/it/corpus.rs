//! The fuzz targets' entry points over the committed seed corpus, on every
//! `cargo test`: a cheap guard that what `fuzz/smoke.sh` starts from still
//! passes every invariant (the fuzzer itself runs in `fuzz/`).

fn each_seed(target: &str, run: fn(&[u8])) -> usize {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} breaks an invariant",
            path.display()
        );
        n += 1;
    }
    n
}

#[test]
fn every_seed_of_every_fuzz_target_passes() {
    // Twice for `request`: the second round meets the wire cache the first filled.
    let mut seen = 0;
    for _ in 0..2 {
        seen += each_seed("request", edudns::fuzzing::request);
    }
    seen += each_seed("upstream_answer", edudns::fuzzing::upstream_answer);
    seen += each_seed("list_formats", edudns::fuzzing::list_formats);
    seen += each_seed("config", edudns::fuzzing::config);
    assert!(seen > 20, "{seen} seeds");
}
