#![no_main]
//! `flagyard_conformance::fuzz::stream_message`, coverage-guided.

libfuzzer_sys::fuzz_target!(|data: &[u8]| flagyard_conformance::fuzz::stream_message(data));
