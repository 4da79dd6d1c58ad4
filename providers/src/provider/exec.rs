//! Where the provider's background tasks run: the caller's tokio runtime when
//! there is one, else a small runtime of the provider's own.

use std::future::Future;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

pub(crate) enum Exec {
    Borrowed(Handle),
    Owned(Runtime),
}

impl Exec {
    /// The current runtime, or a new one-worker runtime.
    pub(crate) fn obtain() -> std::io::Result<Exec> {
        match Handle::try_current() {
            Ok(handle) => Ok(Exec::Borrowed(handle)),
            Err(_) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("flagyard")
                .enable_time()
                .build()
                .map(Exec::Owned),
        }
    }

    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self {
            Exec::Borrowed(handle) => handle.spawn(future),
            Exec::Owned(runtime) => runtime.spawn(future),
        }
    }

    /// Stops an owned runtime without waiting (safe inside async code).
    pub(crate) fn shutdown(self) {
        if let Exec::Owned(runtime) = self {
            runtime.shutdown_background();
        }
    }
}
