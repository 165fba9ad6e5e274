//! The p2p handshake, watched: every handshake that fails is counted
//! (`trellis_p2p_handshake_failures_total{direction,reason}`), and an inbound peer whose key the
//! network does not know is reported to risk control (`unknown_peers`), key included.
//!
//! commonware's lookup network refuses connections from addresses outside the peer set before
//! any handshake (`trellis_p2p_listener_handshakes_blocked_total`) and only debug-logs a
//! handshake that fails; this wrapper sees what reaches the handshake: a key it refuses (the
//! bouncer's verdict), or a handshake that breaks (wrong chain, bad signature, timeout, a
//! dropped connection).

use crate::risk::Risk;
use commonware_runtime::{
    Clock, Sink, Stream,
    telemetry::metrics::{CounterFamily, EncodeLabelSet},
};
use commonware_stream::Upgrader;
use rand_core::CryptoRng;
use std::{fmt::Display, future::Future, sync::Arc};
use trellis_risk::Event;

/// Which side failed, and how.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Failure {
    /// `dial` (this node connecting) or `listen` (a peer connecting to it).
    direction: String,
    /// `unknown_peer` (a key outside the network's set) or `failed` (the handshake broke).
    reason: String,
}

/// An upgrader that counts what `U` refuses.
#[derive(Clone)]
pub(crate) struct Watched<U> {
    pub inner: U,
    pub failures: CounterFamily<Failure>,
    pub risk: Option<Risk>,
}

impl<U> Watched<U> {
    fn count(failures: &CounterFamily<Failure>, direction: &str, reason: &str) {
        let failure = Failure {
            direction: direction.to_owned(),
            reason: reason.to_owned(),
        };
        failures.get_or_create(&failure).inc();
    }
}

impl<U> Upgrader for Watched<U>
where
    U: Upgrader,
    U::PublicKey: Display + Clone + Send + 'static,
{
    const MAX_SIZE: u32 = U::MAX_SIZE;
    type PublicKey = U::PublicKey;
    type Error = U::Error;
    type Sender<I: Stream, O: Sink> = U::Sender<I, O>;
    type Receiver<I: Stream, O: Sink> = U::Receiver<I, O>;

    fn public_key(&self) -> Self::PublicKey {
        self.inner.public_key()
    }

    #[allow(clippy::type_complexity)]
    fn dial<C, I, O>(
        self,
        context: C,
        namespace: &[u8],
        max_message_size: u32,
        peer: Self::PublicKey,
        stream: I,
        sink: O,
    ) -> impl Future<Output = Result<(Self::Sender<I, O>, Self::Receiver<I, O>), Self::Error>> + Send
    where
        C: Clock + CryptoRng,
        I: Stream,
        O: Sink,
    {
        let Self {
            inner, failures, ..
        } = self;
        let dialed = inner.dial(context, namespace, max_message_size, peer, stream, sink);
        async move {
            let dialed = dialed.await;
            if dialed.is_err() {
                Self::count(&failures, "dial", "failed");
            }
            dialed
        }
    }

    #[allow(clippy::type_complexity)]
    fn listen<C, I, O, B, F>(
        self,
        context: C,
        namespace: &[u8],
        max_message_size: u32,
        bouncer: B,
        stream: I,
        sink: O,
    ) -> impl Future<
        Output = Result<(Self::PublicKey, Self::Sender<I, O>, Self::Receiver<I, O>), Self::Error>,
    > + Send
    where
        C: Clock + CryptoRng,
        I: Stream,
        O: Sink,
        B: FnOnce(Self::PublicKey) -> F + Send,
        F: Future<Output = bool> + Send,
    {
        let Self {
            inner,
            failures,
            risk,
        } = self;
        let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watched_bouncer = {
            let (refused, failures) = (refused.clone(), failures.clone());
            move |key: Self::PublicKey| {
                let verdict = bouncer(key.clone());
                async move {
                    let admitted = verdict.await;
                    if !admitted {
                        refused.store(true, std::sync::atomic::Ordering::Relaxed);
                        Self::count(&failures, "listen", "unknown_peer");
                        if let Some(risk) = &risk {
                            risk.report(Event::UnknownPeer {
                                peer: key.to_string(),
                            });
                        }
                    }
                    admitted
                }
            }
        };
        let listened = inner.listen(
            context,
            namespace,
            max_message_size,
            watched_bouncer,
            stream,
            sink,
        );
        async move {
            let listened = listened.await;
            if listened.is_err() && !refused.load(std::sync::atomic::Ordering::Relaxed) {
                Self::count(&failures, "listen", "failed");
            }
            listened
        }
    }
}
