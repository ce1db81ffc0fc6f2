#![no_main]
//! See `edudns::fuzzing::request` for what this target feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edudns::fuzzing::request(data));
