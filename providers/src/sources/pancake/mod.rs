//! [`PancakeSource`]: flask-pancake's switches, flags and samples in Redis,
//! mirrored locally and served as boolean flags.

mod document;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use flagyard_core::BoxFuture;
use flagyard_core::{ErrorOrigin, ProviderError, Source, SourceUpdates};
use flagyard_storage::pancake::{
    DEFAULT_EXTENSION, DEFAULT_GROUP, Kind, Pancake, PancakeError, PancakeState, validate_name,
};
use futures_util::StreamExt;

use super::network::{Connects, Link, ReconnectPolicy, SessionEnd, check_redis_url, follow};
use crate::BuildError;
use document::{Layout, to_document};

/// Serves flask-pancake's switches, flags and samples (in its Redis key
/// layout) as OpenFeature boolean flags, from a local mirror: reads never
/// touch Redis.
///
/// Needs the crate feature `pancake`.
///
/// - a **switch** is its stored value (reason `STATIC`);
/// - a **flag** checks the groups in order: the first group whose override
///   list names the context's value for that group's attribute wins
///   (`TARGETING_MATCH`), else the global value (`DEFAULT`); the `user` group
///   keys on the targeting key;
/// - a **sample** is on for its ratio of checks, drawn at random on every
///   check as flask-pancake does, or hashed on the targeting key with
///   [`sticky_samples`](PancakeSourceBuilder::sticky_samples) (reason `SPLIT` either way).
///
/// The mirror is refreshed at once on Flagyard's own writes (pub/sub), on
/// keyspace notifications where Redis sends them (writes by flask-pancake or
/// redis-cli), and by a periodic rescan as the fallback (default every 2 s).
/// Declared names get their default stored where nothing is (as flask-pancake
/// does on first use). A value that is not what its kind stores is reported
/// (origin Parser, naming the key) and the last good value stays.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use flagyard::{FlagyardProvider, PancakeSource};
/// use flagyard::core::EvaluationContext;
///
/// # async fn demo() -> Result<(), flagyard::BuildError> {
/// let provider = FlagyardProvider::builder()
///     .source(
///         PancakeSource::builder("redis://127.0.0.1:6379")
///             .switch("NEW_UI", false)
///             .flag("BETA", false)
///             .sample("ROLLOUT", 25.0)
///             .build()?,
///     )
///     .build()?;
/// provider.wait_until_ready(Duration::from_secs(2)).await;
/// let ada = EvaluationContext::new().with_targeting_key("ada");
/// let beta = provider.get_bool("BETA", false, &ada);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PancakeSource {
    url: String,
    ext: String,
    groups: Vec<(String, String)>,
    declared: BTreeMap<(Kind, String), f64>,
    sticky_samples: bool,
    lowercase_keys: bool,
    enable_keyspace_events: bool,
    rescan_every: Duration,
    reconnect: ReconnectPolicy,
}

/// Configures a [`PancakeSource`]; [`build`](Self::build) checks the URL and
/// the declared names.
#[derive(Debug)]
pub struct PancakeSourceBuilder {
    source: PancakeSource,
    invalid: Vec<PancakeError>,
}

impl PancakeSource {
    /// Mirrors the default extension (`pancake`) at `url`.
    pub fn builder(url: impl Into<String>) -> PancakeSourceBuilder {
        PancakeSourceBuilder {
            source: PancakeSource::new(url.into()),
            invalid: Vec::new(),
        }
    }

    fn new(url: String) -> Self {
        PancakeSource {
            url,
            ext: DEFAULT_EXTENSION.to_string(),
            groups: Vec::new(),
            declared: BTreeMap::new(),
            sticky_samples: false,
            lowercase_keys: false,
            enable_keyspace_events: false,
            rescan_every: Duration::from_secs(2),
            reconnect: ReconnectPolicy::default(),
        }
    }
}

impl PancakeSourceBuilder {
    flagyard_core::setters! {
        /// The flask-pancake extension name (its `FlaskPancake(name=…)`).
        extension(ext: impl Into<String>) => source.ext = ext.into();
    }

    /// Adds a group of flag overrides, keyed on the context attribute
    /// `attribute` (`targetingKey` for the targeting key). Groups are checked
    /// in the order added; without any, the one group is `user` on the
    /// targeting key.
    pub fn group(mut self, group: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.source.groups.push((group.into(), attribute.into()));
        self
    }

    fn declare(mut self, kind: Kind, name: &str, default: f64) -> Self {
        match validate_name(name) {
            Ok(upper) => {
                self.source.declared.insert((kind, upper), default);
            }
            Err(e) => self.invalid.push(e),
        }
        self
    }

    /// Declares a switch and its default.
    pub fn switch(self, name: &str, default: bool) -> Self {
        self.declare(Kind::Switch, name, f64::from(u8::from(default)))
    }

    /// Declares a flag and its global default.
    pub fn flag(self, name: &str, default: bool) -> Self {
        self.declare(Kind::Flag, name, f64::from(u8::from(default)))
    }

    /// Declares a sample and its default ratio (0–100).
    pub fn sample(self, name: &str, default_ratio: f64) -> Self {
        self.declare(Kind::Sample, name, default_ratio)
    }

    flagyard_core::setters! {
        /// Samples hash on the targeting key (the same user always gets the same
        /// answer for a ratio) instead of drawing at random on every check; a
        /// context without a targeting key still draws at random.
        sticky_samples(sticky: bool) => source.sticky_samples = sticky;

        /// Exposes each name lower-cased (`NEW_UI` → `new_ui`).
        lowercase_keys(lowercase: bool) => source.lowercase_keys = lowercase;

        /// Turns Redis's keyspace notifications on (`CONFIG SET
        /// notify-keyspace-events`, adding `K$g` to what is set) so writes by
        /// other programs are seen at once. Off by default: it changes the server's
        /// configuration, and some hosted Redis refuse `CONFIG`.
        enable_keyspace_events(enable: bool) => source.enable_keyspace_events = enable;

        /// How often the whole state is rescanned (default 2 s): the fallback
        /// for writes by other programs when keyspace notifications are off.
        rescan_every(interval: Duration) => source.rescan_every = interval;

        /// Reconnection timing.
        reconnect(policy: ReconnectPolicy) => source.reconnect = policy;
    }

    /// The source, or what is wrong with its URL or a declared name (a name
    /// flask-pancake would refuse). Nothing is connected yet.
    pub fn build(self) -> Result<PancakeSource, BuildError> {
        let what = self.source.describe();
        check_redis_url(&what, &self.source.url)?;
        match self.invalid.into_iter().next() {
            Some(e) => Err(BuildError::Config {
                what,
                cause: e.into(),
            }),
            None => Ok(self.source),
        }
    }
}

impl PancakeSource {
    fn layout(&self) -> Layout {
        let groups = if self.groups.is_empty() {
            vec![(DEFAULT_GROUP.to_string(), "targetingKey".to_string())]
        } else {
            self.groups.clone()
        };
        Layout {
            groups,
            declared: self.declared.clone(),
            sticky_samples: self.sticky_samples,
            lowercase_keys: self.lowercase_keys,
        }
    }

    /// One connection: declare, subscribe, load, follow. Returns why it ended.
    async fn mirror(&self, link: Link<'_, Mirror>) -> Result<Infallible, PancakeError> {
        let Link {
            updates,
            from,
            backoff,
            shared: mirror,
        } = link;
        let pancake = Pancake::open(&self.url, &self.ext).await?;
        for ((kind, name), default) in &self.declared {
            match pancake.declare(*kind, name, *default).await {
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => updates.error(ProviderError::new(
                    ErrorOrigin::Parser,
                    false,
                    format!("{from}: declared {kind} {name}: {e}"),
                )),
                Ok(_) => {}
            }
        }
        let keyspace = self.keyspace_events(&pancake, from).await;
        let mut pubsub = pancake.subscribe().await?;
        // Subscribed first, then loaded: nothing written in between is missed.
        mirror.load(&pancake, updates, from).await?;
        backoff.connected();
        let rescan = if keyspace {
            self.rescan_every.max(Duration::from_secs(10))
        } else {
            self.rescan_every
        };
        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(rescan);
        tick.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    if message.is_none() {
                        return Err(PancakeError::Closed { url: pancake.url().to_string() });
                    }
                    // A burst (clear_all_users, a script) arrives as many
                    // messages: take what follows within 2 ms, load once.
                    while let Ok(Some(_)) =
                        tokio::time::timeout(Duration::from_millis(2), messages.next()).await
                    {}
                    mirror.load(&pancake, updates, from).await?;
                }
                _ = tick.tick() => mirror.load(&pancake, updates, from).await?,
            }
        }
    }

    /// Whether Redis sends the keyspace notifications the mirror needs
    /// (turning them on first when asked to); logs why not.
    async fn keyspace_events(&self, pancake: &Pancake, from: &str) -> bool {
        match pancake
            .keyspace_notifications(self.enable_keyspace_events)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(
                    source = from,
                    "keyspace notifications off; rescanning every {:?}",
                    self.rescan_every
                );
                false
            }
            Err(e) => {
                tracing::warn!(source = from, error = %e, "keyspace notifications unavailable; rescanning instead");
                false
            }
        }
    }
}

/// The last good state and what was last delivered.
pub(crate) struct Mirror {
    layout: Layout,
    good: PancakeState,
    last_document: Option<String>,
    last_problems: Vec<String>,
}

impl Mirror {
    async fn load(
        &mut self,
        pancake: &Pancake,
        updates: &dyn SourceUpdates,
        from: &str,
    ) -> Result<(), PancakeError> {
        let mut state = pancake.list().await?;
        state.keep_good_values(pancake.extension(), &self.good);
        let (document, collisions) = to_document(&state, &self.layout);
        let mut problems: Vec<String> = state.problems.iter().map(|p| p.to_string()).collect();
        problems.extend(
            collisions
                .into_iter()
                .map(|c| format!("{c}: its name is already used by another kind (left out)")),
        );
        if problems != self.last_problems {
            for problem in problems.iter().filter(|p| !self.last_problems.contains(p)) {
                updates.error(ProviderError::new(
                    ErrorOrigin::Parser,
                    false,
                    format!("{from}: {problem}; the last good value stays"),
                ));
            }
            self.last_problems = problems;
        }
        state.problems.clear();
        self.good = state;
        if self.last_document.as_deref() == Some(document.as_str()) {
            updates.recovered();
        } else {
            self.last_document = Some(document.clone());
            updates.document(document);
        }
        Ok(())
    }
}

impl Connects for PancakeSource {
    /// The mirror: the last good state and what was last delivered.
    type Shared = Mirror;

    async fn connection(&self, link: Link<'_, Mirror>) -> SessionEnd {
        link.follow_until_lost(|link| self.mirror(link)).await
    }
}

impl Source for PancakeSource {
    fn describe(&self) -> String {
        format!("pancake:{} ({})", self.url, self.ext)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        let mirror = Mirror {
            layout: self.layout(),
            good: PancakeState::default(),
            last_document: None,
            last_problems: Vec::new(),
        };
        Box::pin(follow(self.reconnect.clone(), *self, updates, mirror))
    }
}
