#![no_main]
//! See `edudns::fuzzing::upstream_answer` for what this target feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edudns::fuzzing::upstream_answer(data));
