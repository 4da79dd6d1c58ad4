//! [`setters!`](crate::setters): the plain builder setter, written once.

/// Writes builder setters that set one field and hand the builder back, in
/// the manner of `reqwest::ClientBuilder`: each entry is the setter's docs,
/// its name and argument, and the assignment it makes.
///
/// ```
/// # use std::time::Duration;
/// #[derive(Default)]
/// pub struct PollerBuilder {
///     every: Duration,
///     name: Option<String>,
/// }
///
/// impl PollerBuilder {
///     flagyard_core::setters! {
///         /// How often to poll.
///         every(every: Duration) => every = every;
///         /// A name for the logs.
///         name(name: impl Into<String>) => name = Some(name.into());
///     }
/// }
///
/// let built = PollerBuilder::default().every(Duration::from_secs(2)).name("main");
/// assert_eq!(built.every, Duration::from_secs(2));
/// assert_eq!(built.name.as_deref(), Some("main"));
/// ```
///
/// A setter that does more than assign one field (pushes, validates,
/// records an error) is written out by hand.
#[doc(hidden)]
#[macro_export]
macro_rules! setters {
    ($($(#[$attr:meta])* $name:ident($arg:ident: $ty:ty) => $($field:ident).+ = $value:expr;)*) => {
        $(
            $(#[$attr])*
            pub fn $name(mut self, $arg: $ty) -> Self {
                self.$($field).+ = $value;
                self
            }
        )*
    };
}
