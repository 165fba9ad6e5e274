//! Alarms POSTed to the webhooks rules name, by a task of their own: a slow or absent receiver
//! delays no alarm's record and no event. At most [`QUEUE`] posts wait; beyond that one is
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
        context.spawn(move |_| async move {
            let client = reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .expect("a plain HTTP client builds");
            while let Some((url, alarm)) = queue.recv().await {
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
