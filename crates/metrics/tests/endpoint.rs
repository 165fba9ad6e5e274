//! The endpoint over a real socket: a scrape sees the runtime's metrics as they are at that
//! moment, another path is told where the metrics are, and a busy address is named.

use commonware_runtime::{
    Metrics as _, Runner as _, Supervisor as _, telemetry::metrics::MetricsExt as _,
    tokio as runtime,
};
use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
};

/// Runs blocking `f` (a client's request) off the runtime's workers.
async fn tokio_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// `GET path` over HTTP/1.1: the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn a_scrape_sees_the_registered_metrics_as_they_are_now() {
    runtime::Runner::default().start(|context| async move {
        let height = context
            .child("chain")
            .gauge("height", "the finalized height");
        let metrics = context.child("metrics");
        let server =
            trellis_metrics::serve("127.0.0.1:0".parse().unwrap(), move || metrics.encode())
                .await
                .unwrap();
        let addr = server.local_addr();
        assert_eq!(server.url(), format!("http://{addr}/metrics"));

        height.set(41);
        let (status, body) = tokio_blocking(move || get(addr, "/metrics")).await;
        assert!(status.contains("200"), "{status}");
        assert!(body.contains("chain_height 41"), "{body}");
        height.set(42);
        let (_, body) = tokio_blocking(move || get(addr, "/metrics")).await;
        assert!(body.contains("chain_height 42"), "{body}");

        let (status, body) = tokio_blocking(move || get(addr, "/")).await;
        assert!(status.contains("404"), "{status}");
        assert!(body.contains("GET /metrics"), "{body}");

        let busy = trellis_metrics::serve(addr, String::new).await;
        let error = busy.err().expect("the address is taken");
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    });
}
