#![no_main]
//! `flagyard_conformance::fuzz::evaluate`, coverage-guided.

libfuzzer_sys::fuzz_target!(|data: &[u8]| flagyard_conformance::fuzz::evaluate(data));
