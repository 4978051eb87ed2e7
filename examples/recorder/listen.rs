//! The HTTP server of the real mode: hyper, with the bounds a public webhook needs and `axum::serve` leaves open.
//!
//! - A request's headers must arrive within 10 s of the connection (or of the previous answer) being ready for
//!   them: an idle or slowloris connection is closed, not kept for ever.
//! - Headers are bounded to 100 fields and 64 KiB in all (431 past either), a body by the webhook layer (1 MiB,
//!   413) and its arrival by the layer's body timeout (10 s here, 408).
//! - At most `max_connections` connections at once; one more waits in the kernel's backlog until a slot frees, so
//!   that a flood of idle connections costs bounded memory and, once their header timeout passes, nothing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a connection may take to send a request's headers.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request body may take once its headers are in (the webhook layer answers 408 after it).
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest header section, in bytes (hyper's read buffer).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most header fields in one request.
const MAX_HEADERS: usize = 100;
/// How long open connections get to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` completes, then lets open connections finish (for up to 10 s).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // HTTP/1.1 only, which is what Event Grid speaks: hyper-util's auto builder first waits for the bytes that tell
    // HTTP/1 from HTTP/2, with no timeout, so a connection that sends nothing would be kept for ever.
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stop.as_mut() => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before accept: wait a moment, keep serving.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.as_mut() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
    Ok(())
}
