//! Batches of `eth_sendRawTransaction`, admitted together.
//!
//! jsonrpsee answers a batch's calls one after another, so a client's batch of 1,000
//! transactions would go to the admission thread and to the state's owner 1,000 times, one
//! transaction in flight at a time: the thread hand-offs (wake-ups, context switches) cost
//! more than the admission, and a connection's throughput is one transaction per round trip.
//! This layer admits each run of consecutive `eth_sendRawTransaction` calls in a batch with one
//! [`Chain::submit_many`], in the batch's order, so the pool and the answers are those the
//! calls one by one would give. Every other call is answered as before, in its place.

use crate::{
    error::admission_error,
    metrics::{CallerClass, RpcMetrics},
    requests::{RawTransaction, Request as _},
};
use jsonrpsee::{
    ResponsePayload,
    server::{
        BatchResponseBuilder,
        middleware::rpc::{Batch, BatchEntry, MethodResponse, Notification, Request, RpcServiceT},
    },
    types::{ErrorObjectOwned, Id},
};
use std::time::Instant;
use trellis_chain::{Chain, Runtime};

const METHOD: &str = "eth_sendRawTransaction";

/// The service this layer wraps: jsonrpsee's, answering one call at a time.
pub trait Inner:
    RpcServiceT<
        MethodResponse = MethodResponse,
        BatchResponse = MethodResponse,
        NotificationResponse = MethodResponse,
    > + Send
    + Sync
    + Clone
    + 'static
{
}

impl<S> Inner for S where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static
{
}

/// The layer; `service` answers everything else.
pub struct TransactionBatches<S, E: Runtime> {
    pub service: S,
    pub chain: Chain<E>,
    pub max_response_bytes: usize,
    /// Where the transaction runs are counted (other calls are, by the layer inside).
    pub metrics: Option<RpcMetrics>,
}

// By hand: a derive would ask the runtime type `E` itself to be `Clone`.
impl<S: Clone, E: Runtime> Clone for TransactionBatches<S, E> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            chain: self.chain.clone(),
            max_response_bytes: self.max_response_bytes,
            metrics: self.metrics.clone(),
        }
    }
}

impl<S, E> RpcServiceT for TransactionBatches<S, E>
where
    S: Inner,
    E: Runtime,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.call(request)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move { this.answer(batch).await }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(notification)
    }
}

impl<S, E> TransactionBatches<S, E>
where
    S: Inner,
    E: Runtime,
{
    /// The batch's answers in its order, as jsonrpsee builds them (size limit, notifications).
    async fn answer(&self, batch: Batch<'_>) -> MethodResponse {
        let mut answers = BatchResponseBuilder::new_with_limit(self.max_response_bytes);
        let mut got_notification = false;
        let mut entries = batch.into_iter().peekable();
        while let Some(entry) = entries.next() {
            let responses = match entry {
                Ok(BatchEntry::Call(request)) if request.method_name() == METHOD => {
                    let mut run = vec![request];
                    while let Some(Ok(BatchEntry::Call(next))) = entries.peek()
                        && next.method_name() == METHOD
                    {
                        let Some(Ok(BatchEntry::Call(next))) = entries.next() else {
                            unreachable!("just peeked at it");
                        };
                        run.push(next);
                    }
                    self.submit(run).await
                }
                Ok(BatchEntry::Call(request)) => vec![self.service.call(request).await],
                Ok(BatchEntry::Notification(notification)) => {
                    got_notification = true;
                    self.service.notification(notification).await;
                    Vec::new()
                }
                Err(error) => {
                    let (error, id) = error.into_parts();
                    vec![MethodResponse::error(id, error)]
                }
            };
            for response in responses {
                if let Err(too_big) = answers.append(response) {
                    return too_big;
                }
            }
        }
        if answers.is_empty() && got_notification {
            MethodResponse::notification()
        } else {
            MethodResponse::from_batch(answers.finish())
        }
    }

    /// Admits a run of `eth_sendRawTransaction` calls together; a call whose parameters are
    /// wrong is answered with its own error and takes no part.
    async fn submit(&self, run: Vec<Request<'_>>) -> Vec<MethodResponse> {
        let parsed: Vec<_> = run
            .iter()
            .map(|request| RawTransaction::parse(&request.params()).map(|raw| raw.0))
            .collect();
        let caller = run
            .first()
            .map_or("open", |request| CallerClass::of(request.extensions()));
        let raws = parsed.iter().filter_map(|p| p.as_ref().ok()).cloned();
        let started = Instant::now();
        let mut admitted = self.chain.submit_many(raws.collect()).await.into_iter();
        let seconds = started.elapsed().as_secs_f64();
        let responses = run
            .into_iter()
            .zip(parsed)
            .map(|(request, parsed)| {
                let outcome: Result<String, ErrorObjectOwned> = parsed.and_then(|_| {
                    let result = admitted.next().expect("one result per transaction");
                    result
                        .map(|hash| format!("{hash:#x}"))
                        .map_err(admission_error)
                });
                self.respond(request, outcome)
            })
            .collect::<Vec<_>>();
        if let Some(metrics) = &self.metrics {
            // Each call of the run waited for the whole run to be answered.
            metrics.answered((METHOD, caller), &responses, seconds);
        }
        responses
    }

    fn respond(
        &self,
        request: Request<'_>,
        outcome: Result<String, ErrorObjectOwned>,
    ) -> MethodResponse {
        let id: Id<'_> = request.id;
        let response = match outcome {
            Ok(hash) => MethodResponse::response(
                id,
                ResponsePayload::success(hash),
                self.max_response_bytes,
            ),
            Err(error) => MethodResponse::error(id, error),
        };
        response.with_extensions(request.extensions)
    }
}
