//! Experiments: a flag and the metrics it is judged by, and the tallies the
//! collector keeps for it as events arrive ([`Tally`]), so that its results
//! never need a rescan of the events.
//!
//! Attribution, in the order the events happened (their `at`), whatever the
//! order they arrive in:
//! - a user (targeting key) belongs to the variant of their first exposure
//!   to the flag inside the experiment's window;
//! - a user exposed to more than one variant is excluded, and counted apart;
//! - a tracking event of one of the experiment's metrics counts for the
//!   user's variant when it happened at or after that first exposure and
//!   before the experiment stopped; a user converts once per metric, and a
//!   value metric sums the user's values (0 for a user who did not convert).
//!
//! Each user's part (their first exposure, per metric the count and sum of
//! the tracking events that count, and the ones before the first exposure,
//! which may count if an earlier exposure arrives) is kept as a
//! `Participant`; a batch of events changes the tally by what it changed in
//! its participants' parts, so an exposure that arrives after its user's
//! conversion still counts that conversion.

#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::collections::{BTreeMap, HashMap};

use flagyard_core::event_json::WireEvent;
use serde::{Deserialize, Serialize};

/// An experiment on one flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experiment {
    /// The flag whose variants are compared (one experiment per flag).
    pub flag: String,
    /// What it is judged by: tracking event names.
    pub metrics: Vec<Metric>,
    /// The variant the others are compared with (absent: the first variant
    /// seen in alphabetical order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// The environment whose flag definition gives the configured split.
    pub environment: String,
    /// Exposures count from here (ms since the epoch).
    pub start: u64,
    /// Exposures and conversions count until here (ms since the epoch);
    /// absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<u64>,
    /// Who created it (the admin token's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl Experiment {
    /// Whether a time falls inside the window.
    pub fn covers(&self, at: u64) -> bool {
        at >= self.start && self.stop.is_none_or(|stop| at < stop)
    }

    fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// One metric of an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metric {
    /// The tracking event's name.
    pub name: String,
    /// Counted (converted or not) or summed (the events' values).
    pub kind: MetricKind,
}

/// How a metric is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Whether a user tracked the event at least once.
    Conversion,
    /// The sum of the values a user tracked (0 without any).
    Value,
}

/// An experiment's aggregates: what its results are computed from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Counted users per variant.
    pub variants: BTreeMap<String, VariantTally>,
    /// Users exposed to more than one variant (not counted for any).
    pub excluded: u64,
}

/// One variant's aggregates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantTally {
    /// Users counted for this variant.
    pub users: u64,
    /// Per metric name.
    pub metrics: BTreeMap<String, MetricTally>,
}

/// One metric's aggregates for one variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTally {
    /// Users who tracked it at least once.
    pub converted: u64,
    /// The sum over users of each user's total value.
    pub total: f64,
    /// The sum over users of each user's total value squared.
    pub total_squares: f64,
}

/// Tracking events kept per user that happened before the user's first
/// exposure (or with no exposure yet): they count if an earlier exposure
/// arrives later. Beyond this many, the oldest go.
pub(crate) const MAX_PENDING_TRACKS: usize = 100;

/// One user's part in one experiment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Participant {
    /// The earliest exposure inside the window: variant and time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first: Option<(String, u64)>,
    /// An exposure to another variant was seen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    mixed: bool,
    /// Per metric name, the tracking events at or after the first exposure:
    /// how many and the sum of their values. (The first exposure only moves
    /// earlier, so what counts once always counts.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    counted: Vec<(String, u64, f64)>,
    /// Tracking events before the first exposure (or before any): metric
    /// name, time and value; at most [`MAX_PENDING_TRACKS`], the newest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<(String, u64, Option<f64>)>,
}

/// What a participant adds to a tally.
enum Part<'a> {
    Nothing,
    Excluded,
    Counted {
        variant: &'a str,
        /// Per metric: (name, converted, total value).
        metrics: Vec<(&'a str, bool, f64)>,
    },
}

impl Participant {
    fn part<'a>(&'a self, experiment: &'a Experiment) -> Part<'a> {
        let Some((variant, _)) = &self.first else {
            return Part::Nothing;
        };
        if self.mixed {
            return Part::Excluded;
        }
        let metrics = self
            .counted
            .iter()
            .filter(|(name, n, _)| *n > 0 && experiment.metric(name).is_some())
            .map(|(name, _, total)| (name.as_str(), true, *total))
            .collect();
        Part::Counted { variant, metrics }
    }

    /// Counts a tracking event for its metric.
    fn count(&mut self, name: &str, value: Option<f64>) {
        match self.counted.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, n, total)) => {
                *n += 1;
                *total += value.unwrap_or(0.0);
            }
            None => self
                .counted
                .push((name.to_string(), 1, value.unwrap_or(0.0))),
        }
    }

    /// Takes a tracking event: counted when it happened at or after the
    /// first exposure, else kept pending.
    fn track(&mut self, name: &str, at: u64, value: Option<f64>) {
        match &self.first {
            Some((_, exposed_at)) if at >= *exposed_at => self.count(name, value),
            _ => {
                if self.pending.len() >= MAX_PENDING_TRACKS {
                    let oldest = self
                        .pending
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, at, _))| *at)
                        .map_or(0, |(i, _)| i);
                    self.pending.swap_remove(oldest);
                }
                self.pending.push((name.to_string(), at, value));
            }
        }
    }

    /// Takes an exposure: the earliest is the user's; pending events from
    /// its time on now count.
    fn expose(&mut self, variant: &str, at: u64) {
        if let Some((first, first_at)) = &self.first {
            if first != variant {
                self.mixed = true;
            }
            if at >= *first_at {
                return;
            }
        }
        self.first = Some((variant.to_string(), at));
        let (now_counted, still_pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, t, _)| *t >= at);
        self.pending = still_pending;
        for (name, _, value) in now_counted {
            self.count(&name, value);
        }
    }
}

impl Tally {
    /// Adds (`sign` 1.0) or takes away (`sign` -1.0) a participant's part.
    fn apply(&mut self, part: Part<'_>, experiment: &Experiment, sign: f64) {
        let step = |n: &mut u64| {
            *n = if sign > 0.0 {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            }
        };
        match part {
            Part::Nothing => {}
            Part::Excluded => step(&mut self.excluded),
            Part::Counted { variant, metrics } => {
                let tally = self.variants.entry(variant.to_string()).or_default();
                step(&mut tally.users);
                for (name, converted, total) in metrics {
                    let m = tally.metrics.entry(name.to_string()).or_default();
                    if converted {
                        step(&mut m.converted);
                    }
                    if experiment
                        .metric(name)
                        .is_some_and(|m| m.kind == MetricKind::Value)
                    {
                        m.total += sign * total;
                        m.total_squares += sign * total * total;
                    }
                }
            }
        }
    }
}

/// One experiment's state during a step: its tally and the participants the
/// step's events touch.
pub(crate) struct Working {
    pub(crate) experiment: Experiment,
    pub(crate) tally: Tally,
    /// Participants by targeting key: those the store held for the step's
    /// keys (a key without one is new), and any the step adds.
    pub(crate) participants: HashMap<String, Participant>,
    /// Keys whose participant changed.
    pub(crate) changed: Vec<String>,
}

/// A step's events by the environment they were collected in: an experiment
/// counts only its own environment's.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    by_environment: HashMap<String, Vec<WireEvent>>,
}

impl Collected {
    /// One event, collected in `environment`.
    pub(crate) fn push(&mut self, environment: String, event: WireEvent) {
        self.by_environment
            .entry(environment)
            .or_default()
            .push(event);
    }

    /// Each experiment the events concern: the targeting keys they touch in
    /// it, and the events of its environment.
    pub(crate) fn touching<'a>(
        &'a self,
        experiments: &'a [Experiment],
    ) -> Vec<(&'a Experiment, Vec<&'a str>, &'a [WireEvent])> {
        let mut out = Vec::new();
        for experiment in experiments {
            let Some(events) = self.by_environment.get(&experiment.environment) else {
                continue;
            };
            let keys = touched(experiment, events);
            if !keys.is_empty() {
                out.push((experiment, keys, events.as_slice()));
            }
        }
        out
    }
}

/// The targeting keys `events` touch in `experiment`, sorted, each once.
fn touched<'a>(experiment: &Experiment, events: &'a [WireEvent]) -> Vec<&'a str> {
    let mut keys: Vec<&'a str> = events
        .iter()
        .filter_map(|event| relevant(experiment, event))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The targeting key an event concerns in an experiment, if it counts there.
fn relevant<'a>(experiment: &Experiment, event: &'a WireEvent) -> Option<&'a str> {
    match event {
        WireEvent::Exposure {
            flag,
            variant: Some(_),
            targeting_key: Some(key),
            at,
            ..
        } if *flag == experiment.flag && experiment.covers(*at) => Some(key),
        WireEvent::Tracking {
            name,
            targeting_key: Some(key),
            at,
            ..
        } if experiment.metric(name).is_some() && experiment.covers(*at) => Some(key),
        _ => None,
    }
}

impl Working {
    /// Applies a batch's events (the participants they touch loaded).
    pub(crate) fn apply(&mut self, events: &[WireEvent]) {
        let experiment = &self.experiment;
        let mut before: HashMap<String, Participant> = HashMap::new();
        for event in events {
            let Some(key) = relevant(experiment, event) else {
                continue;
            };
            let participant = self.participants.entry(key.to_string()).or_default();
            if !before.contains_key(key) {
                before.insert(key.to_string(), participant.clone());
            }
            match event {
                WireEvent::Exposure {
                    variant: Some(variant),
                    at,
                    ..
                } => participant.expose(variant, *at),
                WireEvent::Tracking {
                    name, at, value, ..
                } => participant.track(name, *at, *value),
                _ => {}
            }
        }
        for (key, old) in before {
            let Some(new) = self.participants.get(&key) else {
                continue;
            };
            if *new == old {
                continue;
            }
            self.tally.apply(old.part(experiment), experiment, -1.0);
            self.tally.apply(new.part(experiment), experiment, 1.0);
            self.changed.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment() -> Experiment {
        Experiment {
            flag: "checkout".into(),
            metrics: vec![
                Metric {
                    name: "purchase".into(),
                    kind: MetricKind::Conversion,
                },
                Metric {
                    name: "revenue".into(),
                    kind: MetricKind::Value,
                },
            ],
            control: Some("a".into()),
            environment: "default".into(),
            start: 100,
            stop: None,
            created_by: None,
        }
    }

    fn exposure(key: &str, variant: &str, at: u64) -> WireEvent {
        WireEvent::Exposure {
            flag: "checkout".into(),
            variant: Some(variant.into()),
            reason: "TARGETING_MATCH".into(),
            targeting_key: Some(key.into()),
            version: None,
            set_id: None,
            at,
        }
    }

    fn track(key: &str, name: &str, at: u64, value: Option<f64>) -> WireEvent {
        WireEvent::Tracking {
            name: name.into(),
            targeting_key: Some(key.into()),
            value,
            fields: Default::default(),
            at,
        }
    }

    /// Runs batches through one working state, each batch on its own (as
    /// steps do), keeping the participants between them.
    fn run(batches: &[Vec<WireEvent>]) -> Tally {
        let mut working = Working {
            experiment: experiment(),
            tally: Tally::default(),
            participants: HashMap::new(),
            changed: Vec::new(),
        };
        for batch in batches {
            working.apply(batch);
        }
        working.tally
    }

    #[test]
    fn conversions_count_for_the_first_variant_after_the_exposure() {
        let tally = run(&[vec![
            exposure("u1", "a", 200),
            track("u1", "purchase", 300, None),
            track("u1", "purchase", 400, None),
            exposure("u2", "b", 200),
            // Before u2's exposure: does not count.
            track("u2", "purchase", 150, None),
            track("u2", "revenue", 250, Some(5.0)),
            track("u2", "revenue", 260, Some(2.0)),
            // Before the experiment started: not an exposure.
            exposure("u3", "a", 50),
        ]]);
        assert_eq!(tally.variants["a"].users, 1);
        assert_eq!(tally.variants["a"].metrics["purchase"].converted, 1);
        assert_eq!(tally.variants["b"].users, 1);
        assert!(!tally.variants["b"].metrics.contains_key("purchase"));
        let revenue = &tally.variants["b"].metrics["revenue"];
        assert_eq!(
            (revenue.converted, revenue.total, revenue.total_squares),
            (1, 7.0, 49.0)
        );
        assert_eq!(tally.excluded, 0);
    }

    #[test]
    fn the_order_of_arrival_does_not_change_the_tally() {
        let events = vec![
            exposure("u1", "a", 200),
            track("u1", "purchase", 300, None),
            exposure("u2", "b", 210),
            exposure("u2", "a", 220),
            track("u3", "revenue", 500, Some(3.0)),
            exposure("u3", "b", 400),
            exposure("u4", "b", 300),
            track("u4", "purchase", 250, None),
        ];
        let in_order = run(std::slice::from_ref(&events));
        let mut reversed = events.clone();
        reversed.reverse();
        let one_by_one: Vec<Vec<WireEvent>> = reversed.into_iter().map(|e| vec![e]).collect();
        assert_eq!(run(&one_by_one), in_order);
        assert_eq!(in_order.excluded, 1, "u2 saw both variants");
        assert_eq!(in_order.variants["b"].users, 2);
        assert_eq!(in_order.variants["b"].metrics["revenue"].total, 3.0);
        assert!(!in_order.variants["b"].metrics.contains_key("purchase"));
    }

    #[test]
    fn a_late_earlier_exposure_moves_the_user_and_their_conversions() {
        let tally = run(&[
            vec![exposure("u1", "a", 500), track("u1", "purchase", 300, None)],
            // Arrives later, happened earlier: the conversion now counts.
            vec![exposure("u1", "a", 200)],
        ]);
        assert_eq!(tally.variants["a"].users, 1);
        assert_eq!(tally.variants["a"].metrics["purchase"].converted, 1);
    }

    #[test]
    fn a_heavy_user_keeps_a_small_part() {
        let mut events = vec![exposure("u1", "b", 1000)];
        // Many purchases after the exposure fold into one count and sum...
        events.extend((0..5000).map(|i| track("u1", "revenue", 2000 + i, Some(1.0))));
        // ...and many before it keep only the newest hundred.
        events.extend((0..5000).map(|i| track("u1", "revenue", 200 + i % 700, Some(1.0))));
        let mut working = Working {
            experiment: experiment(),
            tally: Tally::default(),
            participants: HashMap::new(),
            changed: Vec::new(),
        };
        working.apply(&events);
        assert_eq!(working.tally.variants["b"].metrics["revenue"].total, 5000.0);
        let part = &working.participants["u1"];
        assert_eq!(part.counted.len(), 1);
        assert_eq!(part.pending.len(), MAX_PENDING_TRACKS);
        assert!(serde_json::to_string(part).expect("JSON").len() < 4000);
        // An earlier exposure arrives: the pending events from its time on count.
        working.apply(&[exposure("u1", "b", 850)]);
        let counted_late = part_total(&working);
        assert!(
            counted_late > 5000.0 && counted_late <= 5100.0,
            "{counted_late}"
        );
    }

    fn part_total(working: &Working) -> f64 {
        working.tally.variants["b"].metrics["revenue"].total
    }

    #[test]
    fn a_stopped_experiment_ignores_what_happened_after_the_stop() {
        let mut stopped = experiment();
        stopped.stop = Some(1000);
        let mut working = Working {
            experiment: stopped,
            tally: Tally::default(),
            participants: HashMap::new(),
            changed: Vec::new(),
        };
        working.apply(&[
            exposure("u1", "a", 900),
            track("u1", "purchase", 1000, None),
            exposure("u2", "a", 1001),
        ]);
        assert_eq!(working.tally.variants["a"].users, 1);
        assert!(working.tally.variants["a"].metrics.is_empty());
    }
}
