//! Alarms POSTed to the webhooks rules name (http, or https checked against the system's
//! trusted roots), by a task of their own: a slow or absent receiver delays no alarm's record
//! and no event. At most [`QUEUE`] posts wait; beyond that one is
//! dropped and counted, and each post gives up after [`TIMEOUT`].

use commonware_runtime::{Spawner as _, telemetry::metrics::Counter, tokio};
use std::time::Duration;
use trellis_risk::Alarm;

/// Posts waiting to be sent, at most.
const QUEUE: usize = 256;
/// How long one post may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where alarms are posted from.
pub(crate) struct Webhooks {
    posts: ::tokio::sync::mpsc::Sender<(String, Alarm)>,
    dropped: Counter,
}

impl Webhooks {
    /// Starts the posting task under `context`; `failed` counts posts that did not reach their
    /// receiver (or were not made), `dropped` those for which there was no room.
    pub fn start(context: tokio::Context, failed: Counter, dropped: Counter) -> Self {
        let (posts, mut queue) = ::tokio::sync::mpsc::channel::<(String, Alarm)>(QUEUE);
        let client = reqwest::Client::builder().timeout(TIMEOUT).build();
        if let Err(error) = &client {
            tracing::warn!(%error, "alarm webhooks cannot be posted: no HTTP client (is the ca-certificates package installed?)");
        }
        context.spawn(move |_| async move {
            while let Some((url, alarm)) = queue.recv().await {
                let Ok(client) = &client else {
                    failed.inc();
                    tracing::warn!(%url, id = alarm.id, "alarm webhook not posted: no HTTP client");
                    continue;
                };
                let body = serde_json::to_vec(&alarm).expect("an alarm serializes");
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if let Err(error) = sent {
                    failed.inc();
                    tracing::warn!(%url, id = alarm.id, %error, "alarm webhook failed");
                }
            }
        });
        Self { posts, dropped }
    }

    /// Queues `alarm` for `url`, or drops it if the queue is full.
    pub fn post(&self, url: &str, alarm: &Alarm) {
        if self
            .posts
            .try_send((url.to_owned(), alarm.clone()))
            .is_err()
        {
            self.dropped.inc();
            tracing::warn!(%url, id = alarm.id, "alarm webhook queue full: post dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::log::tests::alarm;
    use commonware_runtime::{
        Clock as _, Runner as _, Supervisor as _, telemetry::metrics::MetricsExt as _,
    };
    use std::{io::Read as _, net::TcpListener};

    /// An https webhook is spoken to in TLS: the receiver's first byte is a TLS handshake
    /// record, and a receiver that does not answer in TLS counts as a failed post.
    #[test]
    fn an_https_webhook_is_posted_over_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let url = format!("https://{}/alarms", listener.local_addr().expect("addr"));
        let receiver = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("the node connects");
            let mut first = [0u8; 1];
            stream.read_exact(&mut first).expect("the node writes");
            first[0]
        });
        tokio::Runner::default().start(|context| async move {
            let failed = context.counter("failed", "posts that failed");
            let dropped = context.counter("dropped", "posts dropped");
            let hooks = Webhooks::start(context.child("webhooks"), failed.clone(), dropped);
            hooks.post(&url, &alarm(1));
            for _ in 0..1_000 {
                if receiver.is_finished() {
                    break;
                }
                context.sleep(Duration::from_millis(10)).await;
            }
            assert!(
                receiver.is_finished(),
                "the node never connected to the webhook"
            );
            assert_eq!(
                receiver.join().expect("receiver"),
                0x16,
                "not a TLS handshake"
            );
            for _ in 0..500 {
                if failed.get() == 1 {
                    return;
                }
                context.sleep(Duration::from_millis(10)).await;
            }
            panic!("a receiver without TLS did not count as a failed post");
        });
    }
}
