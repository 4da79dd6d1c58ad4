//! Tracking (OpenFeature's tracking section, spec §6): what the application's
//! users did, as [`TrackingEvent`](flagyard_core::TrackingEvent)s for the
//! sink; and what the provider's events went through.

use flagyard_core::{Context, Evaluator, TrackingDetails};

use super::FlagyardProvider;
use crate::recorder::EventStats;

impl<E: Evaluator> FlagyardProvider<E> {
    /// Records that the user in `ctx` did `name` — a purchase, a sign-up —
    /// with an optional value and custom fields, as a tracking event for the
    /// sink. Never blocks and never fails: without a sink it does nothing;
    /// a name over 100 characters is cut to 100, and details over 5,000 bytes
    /// as JSON are dropped, each reported once through `on_error` and counted
    /// in [`event_stats`](Self::event_stats). A bot's context (see
    /// [`filter_bots`](crate::FlagyardProviderBuilder::filter_bots)) records
    /// nothing.
    ///
    /// Only the context's targeting key is kept: put what the event needs
    /// beside it into `details`. (The OpenFeature 0.3 SDK has no tracking
    /// call; with OpenFeature, keep a clone of the provider and call this
    /// with the merged context — see the README.)
    ///
    /// # Example
    /// ```
    /// use flagyard::core::{EvaluationContext, TrackingDetails};
    /// use flagyard::{FlagyardProvider, MemorySink};
    ///
    /// let sink = MemorySink::new();
    /// let provider = FlagyardProvider::builder()
    ///     .bootstrap_document(r#"{"flags": {}}"#)
    ///     .sink(sink.clone())
    ///     .build()?;
    /// let user = EvaluationContext::new().with_targeting_key("user-42");
    /// provider.track("purchase", &user, TrackingDetails::new().value(49.9));
    /// provider.close();
    /// assert_eq!(sink.events().len(), 1);
    /// # Ok::<(), flagyard::BuildError>(())
    /// ```
    #[inline]
    pub fn track<C: Context + ?Sized>(&self, name: &str, ctx: &C, details: TrackingDetails) {
        if let Some(recorder) = &self.state.recorder {
            recorder.tracking(name, ctx, details);
        }
    }

    /// Counts of what the events went through: dropped because a thread's
    /// queue was full, bots filtered, tracking names truncated and details
    /// dropped, evaluations a summary could not count.
    pub fn event_stats(&self) -> EventStats {
        self.state
            .recorder
            .as_ref()
            .map(|r| r.stats())
            .unwrap_or_default()
    }
}
