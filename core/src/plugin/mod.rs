//! The four plug-in traits a provider is composed from: [`Source`], [`Store`],
//! [`Evaluator`] and [`Sink`], and the errors they report.
//!
//! They are deliberately small and runtime-agnostic (no tokio here): a source is a
//! future the runtime spawns, a store is synchronous and cheap to call, a sink
//! never blocks, an evaluator is a pure function of document, key and context.

mod error;
mod evaluator;
mod sink;
mod source;
mod store;

pub use error::{BoxError, ErrorOrigin, ProviderError};
pub use evaluator::Evaluator;
pub use sink::{
    ErrorReporter, Event, ExposureEvent, ExposureMode, Sink, SinkError, SummaryCount, SummaryEvent,
    TrackingDetails, TrackingEvent,
};
pub use source::{BoxFuture, Source, SourceUpdates};
pub use store::{Store, StoreError};
