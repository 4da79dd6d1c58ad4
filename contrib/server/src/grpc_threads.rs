//! Where flagd's gRPC services run: one single-threaded tokio runtime per
//! core, each on a thread of its own, with every accepted connection handed
//! to one of them in turn, so that a connection and the task hyper spawns for
//! each of its streams stay on one thread.
//!
//! On the server's multi-threaded runtime each call's stream task could be
//! stolen by the other worker, woken for it (a futex call and a context
//! switch): a flagd RPC-mode client at 16 concurrent calls used 23.5–26.7 µs
//! of server CPU per resolution there, 15.7–18.9 µs here in the same run
//! (docs/BENCHMARKS.md). A thread's runtime does nothing else, so a stream's
//! deliveries are not delayed by the HTTP side's work either.

use std::io;
use std::thread;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::connections::accept;

/// flagd's gRPC services, served on one thread per core.
pub(crate) struct GrpcThreads {
    /// Each thread's queue of accepted connections.
    queues: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    /// Each thread's end: its runtime has stopped serving.
    ended: Vec<oneshot::Receiver<()>>,
    /// Dropped (with `serve`, when it ends or is aborted past the shutdown
    /// deadline): each thread then drops its connections and ends.
    _abandon: Vec<oneshot::Sender<()>>,
}

impl GrpcThreads {
    /// Starts one thread per core serving `router` until `shutdown` turns
    /// true (then each finishes its open calls and ends its streams, tonic's
    /// graceful shutdown).
    pub(crate) fn start(
        router: &tonic::transport::server::Router,
        shutdown: &watch::Receiver<bool>,
    ) -> io::Result<GrpcThreads> {
        let threads = thread::available_parallelism().map_or(1, usize::from);
        let mut queues = Vec::new();
        let mut ended = Vec::new();
        let mut abandon = Vec::new();
        for i in 0..threads {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (queue, mut accepted) = mpsc::unbounded_channel::<std::net::TcpStream>();
            let (end, end_seen) = oneshot::channel();
            let (abandoned, mut abandoned_seen) = oneshot::channel::<()>();
            let (router, mut shutdown) = (router.clone(), shutdown.clone());
            thread::Builder::new()
                .name(format!("flagyard-grpc-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        // Registered with this thread's runtime; one that
                        // cannot be is logged and skipped.
                        let incoming = futures_util::stream::poll_fn(move |cx| {
                            accepted.poll_recv(cx)
                        })
                        .filter_map(|stream| async move {
                            match tokio::net::TcpStream::from_std(stream) {
                                Ok(stream) => Some(Ok::<_, io::Error>(stream)),
                                Err(e) => {
                                    tracing::warn!(error = %e, "a gRPC connection could not be served");
                                    None
                                }
                            }
                        });
                        let stopped = async move {
                            let _ = shutdown.wait_for(|stop| *stop).await;
                        };
                        tokio::select! {
                            served = router.serve_with_incoming_shutdown(incoming, stopped) => {
                                if let Err(e) = served {
                                    tracing::error!(error = %e, "the gRPC server failed");
                                }
                            }
                            _ = &mut abandoned_seen => {}
                        }
                    });
                    // Dropping the runtime drops what it still runs.
                    let _ = end.send(());
                })?;
            queues.push(queue);
            ended.push(end_seen);
            abandon.push(abandoned);
        }
        Ok(GrpcThreads {
            queues,
            ended,
            _abandon: abandon,
        })
    }

    /// Accepts connections on `listener` and hands them to the threads in
    /// turn until `shutdown` turns true, then waits for every thread to end.
    pub(crate) async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let GrpcThreads {
            queues,
            ended,
            _abandon,
        } = self;
        let mut last_warning = None;
        let mut next = 0;
        loop {
            let (stream, addr) = tokio::select! {
                accepted = accept(&listener, &mut last_warning) => accepted,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            // Leaves the main runtime's I/O driver, to join the thread's.
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(client = %addr, error = %e, "a gRPC connection could not be served");
                    continue;
                }
            };
            // A thread's queue closes only when its runtime stopped: then
            // the connection is dropped (closed), as no thread can serve it.
            if queues[next % queues.len()].send(stream).is_err() {
                tracing::error!(client = %addr, "a gRPC thread has stopped; connection closed");
            }
            next = next.wrapping_add(1);
        }
        drop(listener);
        drop(queues);
        for end in ended {
            let _ = end.await;
        }
    }
}
