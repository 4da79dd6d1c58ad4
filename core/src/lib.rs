//! # flagyard-core
//!
//! The pure part of Flagyard: flagd flag documents, their validation, the compiled
//! targeting evaluator and the immutable [`Snapshot`] that evaluation runs on.
//! No network, no files, no async.
//!
//! ```
//! use flagyard_core::{EvaluationContext, Snapshot};
//!
//! let snapshot = Snapshot::parse(r#"{"flags": {"banner": {
//!     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#)?;
//! let on = snapshot.resolve("banner", false, &EvaluationContext::new()).value;
//! assert!(on);
//! # Ok::<(), flagyard_core::DocumentError>(())
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
mod error;
pub mod event_json;
mod lint;
pub(crate) mod logic;
mod options;
mod plugin;
mod requested;
mod resolution;
mod setters;
mod snapshot;
mod value;
mod walk;

pub use context::{
    AttrValue, Context, EvaluationContext, USER_AGENT_ATTRIBUTE, targeting_key_hash,
};
pub use error::{DocumentError, Problem};
pub use lint::lint;
pub use logic::FractionalVersion;
pub use logic::murmur3;
pub use options::{CompileOptions, Limits};
pub use plugin::{
    BoxError, BoxFuture, ErrorOrigin, ErrorReporter, Evaluator, Event, ExposureEvent, ExposureMode,
    ProviderError, Sink, SinkError, Source, SourceUpdates, Store, StoreError, SummaryCount,
    SummaryEvent, TrackingDetails, TrackingEvent,
};
pub use requested::{DefaultTypeError, RequestedType, UnknownType};
pub use resolution::{
    Details, ErrorCode, ErrorMessage, EvalError, Evaluation, FIXED_HASHER, FlagMetadata,
    MetadataValue, Reason, Resolution, Served, served_identity,
};
pub use snapshot::{CompiledFlag, Snapshot, type_mismatch};
pub use value::{FlagType, FlagValue, ValueKind};
