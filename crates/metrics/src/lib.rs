//! A node's metrics over HTTP: `GET /metrics` answers with every metric registered in the
//! node's runtime (commonware-runtime's registry: consensus, p2p, storage and Trellis's own),
//! encoded in Prometheus's text format when asked, so a scrape sees the values of that moment.
//!
//! It listens on its own address, apart from the JSON-RPC server: an operator exposes it to
//! the monitoring network only.

use axum::{
    Router,
    http::{StatusCode, header},
    routing::get,
};
use std::{net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;

/// Prometheus's text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for metrics on {addr} (in use, or not an address of this host)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The running endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Where it listens (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a Prometheus scrapes.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `GET /metrics` on `addr`, each answer made by `encode` (which must not block: it
/// runs on the runtime's worker threads). Must be called within a tokio runtime.
pub async fn serve(
    addr: SocketAddr,
    encode: impl Fn() -> String + Send + Sync + 'static,
) -> Result<MetricsServer, MetricsError> {
    let bind = |source| MetricsError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let encode = Arc::new(encode);
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let encode = encode.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], encode()) }
            }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: the metrics are at GET /metrics\n",
            )
        });
    let task = tokio::spawn(async move {
        // Ends only if the listener fails; the node goes on without its metrics then.
        let _ = axum::serve(listener, app).await;
    });
    Ok(MetricsServer { addr: local, task })
}
