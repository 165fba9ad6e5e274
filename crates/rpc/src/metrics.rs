//! The API's metrics, in the runtime's registry: calls by method, status and caller, and how
//! long each method takes to answer.
//!
//! A method label is one of this server's method names, or `unknown`: a client naming methods
//! at random must not grow the registry without bound.

use commonware_runtime::{
    Metrics,
    telemetry::metrics::{EncodeLabelSet, Registered, raw},
};
use jsonrpsee::{
    MethodResponse,
    server::middleware::rpc::{Batch, Notification, Request, RpcServiceT},
};
use std::{collections::HashSet, sync::Arc, time::Instant};

/// Seconds; from a cached read to a call that waits for the chain's owner under load.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// What a call was and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    method: String,
    /// `ok`, or the JSON-RPC error code (`-32602`, `-32000`, …).
    status: String,
    /// What the caller is to the API: [`CallerClass`].
    caller: &'static str,
}

/// What a call's caller is to the API, as the access layer found it (in the call's
/// extensions): `public`, `member` or `auditor`; `open` on a node without access control. A
/// class, not an account: the label's values stay few.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallerClass(pub &'static str);

impl CallerClass {
    /// The caller of a call whose extensions are `extensions`.
    pub fn of(extensions: &jsonrpsee::Extensions) -> &'static str {
        extensions.get::<Self>().map_or("open", |class| class.0)
    }
}

/// One method's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

type Latency = Registered<raw::Family<Method, raw::Histogram, fn() -> raw::Histogram>>;

fn latency_histogram() -> raw::Histogram {
    raw::Histogram::new(LATENCY_BUCKETS)
}

/// The registered metrics; cheap to clone.
#[derive(Clone)]
pub struct RpcMetrics {
    calls: Registered<raw::Family<Call, raw::Counter>>,
    latency: Latency,
}

impl std::fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RpcMetrics")
    }
}

impl RpcMetrics {
    pub fn register(context: &impl Metrics) -> Self {
        Self {
            calls: context.register(
                "calls",
                "JSON-RPC calls answered, by method, status (ok, or the error code) and caller (open, public, member, auditor)",
                raw::Family::default(),
            ),
            latency: context.register(
                "call_seconds",
                "Seconds a JSON-RPC call took to answer, by method",
                raw::Family::new_with_constructor(latency_histogram as fn() -> raw::Histogram),
            ),
        }
    }

    /// Calls of `method` by a `caller` answered with `responses`, each after `seconds`; one
    /// registry lookup per distinct status, as batches of transactions are large.
    pub(crate) fn answered(
        &self,
        (method, caller): (&str, &'static str),
        responses: &[MethodResponse],
        seconds: f64,
    ) {
        let mut statuses: Vec<(Option<i32>, u64)> = Vec::new();
        for response in responses {
            let code = response.as_error_code();
            match statuses.iter_mut().find(|(seen, _)| *seen == code) {
                Some((_, n)) => *n += 1,
                None => statuses.push((code, 1)),
            }
        }
        for (code, n) in statuses {
            let call = Call {
                method: method.to_owned(),
                status: code.map_or_else(|| "ok".to_owned(), |code| code.to_string()),
                caller,
            };
            self.calls.get_or_create(&call).inc_by(n);
        }
        let method = Method {
            method: method.to_owned(),
        };
        let latency = self.latency.get_or_create(&method);
        for _ in responses {
            latency.observe(seconds);
        }
    }
}

impl RpcMetrics {
    /// A call of `method` by a `caller` that access control refused with `code`: counted, not
    /// timed (nothing ran).
    pub(crate) fn refused(&self, method: &str, caller: &'static str, code: i32) {
        let call = Call {
            method: method.to_owned(),
            status: code.to_string(),
            caller,
        };
        self.calls.get_or_create(&call).inc();
    }
}

/// The server's method names, to tell a method from a client's invention.
#[derive(Clone)]
pub(crate) struct Known(pub Arc<HashSet<&'static str>>);

impl Known {
    pub fn contains(&self, method: &str) -> bool {
        self.0.contains(method)
    }

    pub fn label<'a>(&self, method: &'a str) -> &'a str {
        if self.0.contains(method) {
            method
        } else {
            "unknown"
        }
    }
}

/// The layer that measures every call it passes on (single calls, and the calls of a batch
/// other than the transaction runs [`crate::batch`] admits and counts itself).
#[derive(Clone)]
pub(crate) struct Measured<S> {
    pub service: S,
    pub metrics: Option<(RpcMetrics, Known)>,
}

impl<S> RpcServiceT for Measured<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        async move {
            let Some((metrics, known)) = metrics else {
                return service.call(request).await;
            };
            let method = known.label(request.method_name()).to_owned();
            let caller = CallerClass::of(request.extensions());
            let started = Instant::now();
            let response = service.call(request).await;
            let seconds = started.elapsed().as_secs_f64();
            metrics.answered((&method, caller), std::slice::from_ref(&response), seconds);
            response
        }
    }

    fn batch<'a>(
        &self,
        requests: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        self.service.batch(requests)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(notification)
    }
}
