#![no_main]
//! `flagyard_conformance::fuzz::admin_body`, coverage-guided.

libfuzzer_sys::fuzz_target!(|data: &[u8]| flagyard_conformance::fuzz::admin_body(data));
