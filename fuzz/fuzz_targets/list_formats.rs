#![no_main]
//! See `edudns::fuzzing::list_formats` for what this target feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edudns::fuzzing::list_formats(data));
