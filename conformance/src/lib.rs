//! # flagyard-conformance
//!
//! Conformance checks shared by every Flagyard composition. This first part runs
//! the flagd-testbed evaluation cases (`flagd-eval-cases.jsonl`, see
//! `../shared/conformance-data/SOURCES.md`) through the evaluator, for both
//! `fractional` profiles.

#![warn(missing_docs)]

pub mod data;
pub mod testbed;
