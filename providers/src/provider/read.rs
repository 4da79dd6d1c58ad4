//! The read path: typed getters over one generic implementation, overrides,
//! and every flag at once. Nothing here blocks, locks a mutex, awaits or
//! panics; the common reads allocate nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use flagyard_core::{
    Context, Details, ErrorCode, EvalError, Evaluator, FlagMetadata, FlagType, FlagValue, Reason,
    Resolution,
};
use serde_json::Value;

use super::FlagyardProvider;
use crate::recorder::is_bot;

/// The override table, loaded.
type OverridesGuard = arc_swap::Guard<Arc<HashMap<String, FlagValue>>>;

static EMPTY_METADATA: FlagMetadata = FlagMetadata::new();

const NOT_READY: EvalError = EvalError {
    code: ErrorCode::ProviderNotReady,
    message: flagyard_core::ErrorMessage::Static("no flag document has been loaded yet"),
};

/// The typed getters: each a value getter and its `*_details` twin, both
/// [`get`](FlagyardProvider::get) / [`get_details`](FlagyardProvider::get_details)
/// for one type, with the default converted into it.
macro_rules! typed_getters {
    ($($(#[$doc:meta])* $get:ident, $details:ident: $arg:ty => $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $get<C: Context + ?Sized>(&self, key: &str, default: $arg, ctx: &C) -> $ty {
            self.get(key, <$ty>::from(default), ctx)
        }
        /// The same flag's resolution details (value, variant, reason, error, metadata).
        pub fn $details<C: Context + ?Sized>(
            &self,
            key: &str,
            default: $arg,
            ctx: &C,
        ) -> Details<$ty> {
            self.get_details(key, <$ty>::from(default), ctx)
        }
    )*};
}

impl<E: Evaluator> FlagyardProvider<E> {
    /// The start of every read: starts the provider if it is lazy and not yet
    /// started, and loads the overrides when any are set.
    #[inline]
    fn begin_read(&self) -> Option<OverridesGuard> {
        self.ensure_started();
        self.state
            .has_overrides
            .load(Ordering::Acquire)
            .then(|| self.state.overrides.load())
    }

    /// Resolves a flag and hands the borrowed resolution to `finish`: the
    /// getters' path when details are wanted (`*_details`, OpenFeature) or
    /// exposures are recorded; otherwise they take [`with_value`](Self::with_value).
    /// Bots are served the code default here when the provider says so.
    /// Never blocks, never panics, never fails.
    #[inline]
    pub(crate) fn with_resolution<U, C, R>(
        &self,
        key: &str,
        default: U,
        ctx: &C,
        convert: impl FnOnce(&FlagValue) -> Option<U>,
        finish: impl FnOnce(Resolution<'_, U>) -> R,
    ) -> R
    where
        C: Context + ?Sized,
    {
        if let Some(value) = self.begin_read().as_deref().and_then(|o| o.get(key)) {
            return finish(override_resolution(value, default, convert));
        }
        if self.state.serve_bots_default && is_bot(ctx) {
            return finish(Resolution::served(
                default,
                None,
                flagyard_core::Reason::Default,
                &EMPTY_METADATA,
            ));
        }
        let guard = self.state.snapshot.load();
        let Some(snapshot) = guard.as_ref() else {
            return finish(Resolution::failed(default, NOT_READY, &EMPTY_METADATA));
        };
        let resolution = snapshot.evaluate(key, ctx).typed(default, convert);
        if self.state.records_exposures
            && let Some(recorder) = &self.state.recorder
        {
            let version = self.state.version.load(Ordering::Relaxed);
            let variant = resolution.variant();
            let identity = flagyard_core::served_identity(key, variant);
            recorder.exposure(key, variant, identity, resolution.reason, ctx, version);
        }
        finish(resolution)
    }

    /// Resolves a flag without its details, records the exposure and hands
    /// the converted value to `finish` (`None`: the code default applies) —
    /// the typed getters' path when exposures are recorded. A value of
    /// another type is recorded as `ERROR` with no variant, as
    /// [`with_resolution`](Self::with_resolution) reports it.
    #[inline]
    fn with_recorded<U, C, R>(
        &self,
        key: &str,
        ctx: &C,
        convert: impl FnOnce(&FlagValue) -> Option<U>,
        finish: impl FnOnce(Option<U>) -> R,
    ) -> R
    where
        C: Context + ?Sized,
    {
        if let Some(value) = self.begin_read().as_deref().and_then(|o| o.get(key)) {
            return finish(convert(value));
        }
        if self.state.serve_bots_default && is_bot(ctx) {
            return finish(None);
        }
        let guard = self.state.snapshot.load();
        let Some(snapshot) = guard.as_ref() else {
            return finish(None);
        };
        let served = snapshot.served(key, ctx);
        let converted = served.value.map(convert);
        if let Some(recorder) = &self.state.recorder {
            let version = self.state.version.load(Ordering::Relaxed);
            let (variant, identity, reason) = match converted {
                // A value of another type: recorded as an error, no variant.
                Some(None) => (
                    None,
                    flagyard_core::served_identity(key, None),
                    Reason::Error,
                ),
                _ => (served.variant.as_deref(), served.identity, served.reason),
            };
            recorder.exposure(key, variant, identity, reason, ctx, version);
        }
        finish(converted.flatten())
    }

    /// Resolves a flag and lends the served variant's value to `finish`
    /// (`None`: the code default applies): the getters' path when no
    /// exposures are recorded, so no details are built at all.
    #[inline]
    fn with_value<C, R>(
        &self,
        key: &str,
        ctx: &C,
        finish: impl FnOnce(Option<&FlagValue>) -> R,
    ) -> R
    where
        C: Context + ?Sized,
    {
        if let Some(value) = self.begin_read().as_deref().and_then(|o| o.get(key)) {
            return finish(Some(value));
        }
        if self.state.serve_bots_default && is_bot(ctx) {
            return finish(None);
        }
        let guard = self.state.snapshot.load();
        finish(guard.as_ref().and_then(|snapshot| snapshot.value(key, ctx)))
    }

    /// A flag's value as `T` (`bool`, `i64`, `f64`, `String`, `serde_json::Value`),
    /// or `default` when it cannot be served. The typed getters below are this.
    ///
    /// # Example
    /// ```
    /// use flagyard::FlagyardProvider;
    ///
    /// let provider = FlagyardProvider::from_document(
    ///     r#"{"flags": {"limit": {"state": "ENABLED", "variants": {"low": 10}, "defaultVariant": "low"}}}"#,
    /// ).unwrap();
    /// assert_eq!(provider.get("limit", 5_i64, &()), 10);
    /// assert_eq!(provider.get("missing", 5_i64, &()), 5);
    /// ```
    #[inline]
    pub fn get<T, C>(&self, key: &str, default: T, ctx: &C) -> T
    where
        T: for<'s> FlagType<'s>,
        C: Context + ?Sized,
    {
        if self.state.records_exposures {
            return self.with_recorded(
                key,
                ctx,
                |v| T::from_flag_value(v),
                |v| v.unwrap_or(default),
            );
        }
        self.with_value(key, ctx, |v| {
            v.and_then(T::from_flag_value).unwrap_or(default)
        })
    }

    /// A flag's value as `T` with every detail (variant, reason, error, metadata),
    /// owned so it can be kept.
    #[inline]
    pub fn get_details<T, C>(&self, key: &str, default: T, ctx: &C) -> Details<T>
    where
        T: for<'s> FlagType<'s>,
        C: Context + ?Sized,
    {
        self.with_resolution(
            key,
            default,
            ctx,
            |v| T::from_flag_value(v),
            |r| r.into_owned(),
        )
    }

    typed_getters! {
        /// A boolean flag's value, or `default`.
        get_bool, get_bool_details: bool => bool;
        /// An integer flag's value, or `default`.
        get_i64, get_i64_details: i64 => i64;
        /// A float flag's value, or `default`.
        get_f64, get_f64_details: f64 => f64;
        /// A string flag's value, or `default` (see [`with_str`](Self::with_str)
        /// for the form that copies nothing).
        get_string, get_string_details: &str => String;
        /// A structured (JSON object) flag's value, or `default`.
        get_json, get_json_details: Value => Value;
    }

    /// A string flag's value (or `default`) lent to `f`, without copying it:
    /// the zero-allocation form of [`get_string`](Self::get_string) for hot loops.
    ///
    /// # Example
    /// ```
    /// use flagyard::FlagyardProvider;
    ///
    /// let provider = FlagyardProvider::from_document(
    ///     r#"{"flags": {"color": {"state": "ENABLED", "variants": {"r": "red"}, "defaultVariant": "r"}}}"#,
    /// ).unwrap();
    /// assert_eq!(provider.with_str("color", "none", &(), |c| c.len()), 3);
    /// ```
    pub fn with_str<C: Context + ?Sized, R>(
        &self,
        key: &str,
        default: &str,
        ctx: &C,
        f: impl FnOnce(&str) -> R,
    ) -> R {
        if !self.state.records_exposures {
            return self.with_value(key, ctx, |v| {
                f(v.and_then(<&str>::from_flag_value).unwrap_or(default))
            });
        }
        // `f` runs exactly once: on the variant's string inside the snapshot
        // (borrowed, not copied) when the flag serves a string, else on
        // `default`. `convert` calls it only when it returns `Some`, and then
        // `finish` sees `Some` and does not call it; when `convert` returns
        // `None` (or is not called) `f` is still there for `finish`. So `call`
        // returns `Some` on the one call made, and the `expect` cannot fire.
        let f = std::cell::Cell::new(Some(f));
        let call = |s: &str| f.take().map(|f| f(s));
        self.with_recorded(
            key,
            ctx,
            |v| <&str>::from_flag_value(v).map(call),
            |r| match r.flatten() {
                Some(result) => Some(result),
                None => call(default),
            },
        )
        .expect("with_str calls its closure exactly once")
    }

    /// Every flag's resolution for one context, keyed by flag. The value is JSON,
    /// `null` where the code default would apply (disabled, no default variant).
    pub fn all_flags<C: Context + ?Sized>(&self, ctx: &C) -> BTreeMap<String, Details<Value>> {
        self.ensure_started();
        let guard = self.state.snapshot.load();
        let mut out = BTreeMap::new();
        let to_json = |v: &FlagValue| Some(v.to_json());
        if let Some(snapshot) = guard.as_ref() {
            for key in snapshot.flag_keys() {
                let details =
                    self.with_resolution(key, Value::Null, ctx, to_json, |r| r.into_owned());
                out.insert(key.to_string(), details);
            }
        }
        let overrides = self.state.overrides.load();
        for (key, value) in overrides.iter() {
            let details = override_resolution(value, Value::Null, to_json).into_owned();
            out.insert(key.clone(), details);
        }
        out
    }

    /// Forces a flag's value for every context (tests, local development). Both
    /// the synchronous getters and the OpenFeature path see it.
    pub fn set_override(&self, key: impl Into<String>, value: impl Into<FlagValue>) {
        let (key, value) = (key.into(), value.into());
        self.state.overrides.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(key.clone(), value.clone());
            next
        });
        self.state.has_overrides.store(true, Ordering::Release);
    }

    /// Removes one override.
    pub fn clear_override(&self, key: &str) {
        let next = self.state.overrides.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.remove(key);
            next
        });
        let empty = self.state.overrides.load().is_empty();
        drop(next);
        self.state.has_overrides.store(!empty, Ordering::Release);
    }

    /// Removes every override.
    pub fn clear_all_overrides(&self) {
        self.state.overrides.store(Arc::new(HashMap::new()));
        self.state.has_overrides.store(false, Ordering::Release);
    }
}

/// An override's resolution: reason `STATIC`, no variant; a value of another
/// type than asked is a `TYPE_MISMATCH`.
fn override_resolution<'m, U>(
    value: &FlagValue,
    default: U,
    convert: impl FnOnce(&FlagValue) -> Option<U>,
) -> Resolution<'m, U> {
    match convert(value) {
        Some(v) => Resolution::served(v, None, flagyard_core::Reason::Static, &EMPTY_METADATA),
        None => Resolution::failed(
            default,
            flagyard_core::type_mismatch(value),
            &EMPTY_METADATA,
        ),
    }
}
