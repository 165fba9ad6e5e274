//! Access control on the API (`trellis-access` decides, this module applies): an HTTP layer
//! ([`BearerLayer`]) finds the token a request presents, and an RPC layer ([`Guard`]) checks
//! every call, one by one or in a batch, before anything else answers it: the caller's token,
//! the permission the method needs against the caller's standing on chain, and the caller's
//! rate. Refusals are JSON-RPC errors naming the permission missing and why (4100,
//! EIP-1193's "unauthorized"), or -32005 with `retryAfterMs` for a caller over its rate.

mod bearer;
mod gate;
mod scope;

pub use bearer::{BearerLayer, Presented};
pub use gate::{Caller, CallerKey};
pub use scope::Scope;

use crate::metrics::{CallerClass, Known, RpcMetrics};
use gate::Gate;
use jsonrpsee::{
    MethodResponse,
    core::middleware::BatchEntryErr,
    server::middleware::rpc::{Batch, BatchEntry, Notification, Request, RpcServiceT},
    types::ErrorObjectOwned,
};
use std::sync::Arc;
use trellis_access::{Permission, Policy, Standing, TokenError};
use trellis_chain::{Chain, Runtime};

/// How a node controls access to its API.
#[derive(Clone)]
pub struct AccessConfig {
    pub policy: Policy,
    /// Calls a second each caller may make (callers without a token share one rate).
    pub rate: u32,
    /// Calls one caller may make at once.
    pub burst: u32,
    /// Who hears of refusals and reads (risk control, the audit log).
    pub watch: Option<Arc<dyn AccessWatch>>,
}

impl std::fmt::Debug for AccessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessConfig")
            .field("policy", &self.policy)
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

/// What the node hears of callers. Called on the API's tasks: implementations hand the news
/// on without waiting (a bounded channel's `try_send`).
pub trait AccessWatch: Send + Sync + 'static {
    /// A token was refused; `caller` is the account it claims, or "an unreadable token".
    fn authentication_failed(&self, caller: &str, error: &TokenError);
    /// A call was refused `permission`.
    fn refused(&self, caller: &str, method: &str, permission: Permission);
    /// A call of `method` needing `permission` was allowed.
    fn permitted(&self, caller: &str, method: &str, permission: Permission);
    /// `calls` calls by `caller` were let through.
    fn served(&self, caller: &str, calls: u64);
}

/// The RPC layer; `service` answers the calls it lets through.
pub struct Guard<S, E: Runtime> {
    service: S,
    guarding: Guarding<E>,
}

impl<S: Clone, E: Runtime> Clone for Guard<S, E> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            guarding: self.guarding.clone(),
        }
    }
}

/// What builds a [`Guard`] around each connection's service.
pub(crate) struct Guarding<E: Runtime> {
    /// `None`: anonymous access, every call let through.
    gate: Option<Arc<Gate<E>>>,
    known: Known,
    /// Where refused calls are counted.
    metrics: Option<RpcMetrics>,
}

impl<E: Runtime> Clone for Guarding<E> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
            known: self.known.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<E: Runtime> Guarding<E> {
    /// Guards calls to `chain` by `config`; `None`: anonymous access.
    pub fn new(
        chain: &Chain<E>,
        config: Option<AccessConfig>,
        known: Known,
        metrics: Option<RpcMetrics>,
    ) -> Self {
        Self {
            gate: config.map(|config| Arc::new(Gate::new(chain.clone(), config))),
            known,
            metrics,
        }
    }

    pub fn wrap<S>(&self, service: S) -> Guard<S, E> {
        Guard {
            service,
            guarding: self.clone(),
        }
    }

    /// Counts a refused call of `method`.
    fn refused(&self, method: &str, caller: &'static str, error: &ErrorObjectOwned) {
        if let Some(metrics) = &self.metrics {
            metrics.refused(self.known.label(method), caller, error.code());
        }
    }
}

/// The metrics' label of a caller.
fn class(caller: &Result<Caller, ErrorObjectOwned>) -> &'static str {
    match caller.as_ref().map(|caller| caller.standing) {
        Ok(Standing::Member) => "member",
        Ok(Standing::Auditor) => "auditor",
        Ok(Standing::Public) | Err(_) => "public",
    }
}

fn token(extensions: &jsonrpsee::Extensions) -> Option<String> {
    extensions.get::<Presented>().map(|p| p.0.clone())
}

/// The account the connection's client certificate names (the API over mutual TLS).
fn certified(extensions: &jsonrpsee::Extensions) -> Option<alloy_primitives::Address> {
    extensions
        .get::<crate::tls::CertifiedAccount>()
        .map(|certified| certified.0)
}

impl<S, E> RpcServiceT for Guard<S, E>
where
    S: crate::batch::Inner,
    E: Runtime,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        mut request: Request<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let guarding = &this.guarding;
            // An unknown method: jsonrpsee answers "method not found", nothing to guard.
            let Some(gate) = guarding
                .gate
                .as_ref()
                .filter(|_| guarding.known.contains(request.method_name()))
            else {
                return this.service.call(request).await;
            };
            let token = token(request.extensions());
            let certified = certified(request.extensions());
            let caller = gate.caller(token.as_deref(), certified).await;
            let class = class(&caller);
            let checked = caller.and_then(|caller| {
                gate.permit(&caller, request.method_name(), request.params().as_str())
                    .and_then(|()| gate.limit(&caller, 1))
                    .map(|()| Scope::for_caller(&caller))
            });
            match checked {
                Ok(scope) => {
                    request.extensions_mut().insert(CallerClass(class));
                    request.extensions_mut().insert(scope);
                    this.service.call(request).await
                }
                Err(error) => {
                    guarding.refused(request.method_name(), class, &error);
                    let extensions = request.extensions().clone();
                    MethodResponse::error(request.id, error).with_extensions(extensions)
                }
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let guarding = &this.guarding;
            let Some(gate) = guarding.gate.clone() else {
                return this.service.batch(batch).await;
            };
            let token = token(batch.extensions());
            let certified = certified(batch.extensions());
            let caller = gate.caller(token.as_deref(), certified).await;
            let class = class(&caller);
            let mut entries = Vec::with_capacity(batch.len());
            let mut allowed = 0u32;
            for entry in batch {
                let checked = match (&entry, &caller) {
                    (Ok(BatchEntry::Call(request)), _)
                        if !guarding.known.contains(request.method_name()) =>
                    {
                        Ok(())
                    }
                    (Ok(entry), Ok(caller)) => {
                        let params = entry.params().map(|params| params.get());
                        gate.permit(caller, entry.method_name(), params)
                    }
                    (Ok(_), Err(error)) => Err(error.clone()),
                    (Err(_), _) => Ok(()),
                };
                let entry = match (entry, checked) {
                    (Ok(BatchEntry::Call(mut request)), Ok(())) => {
                        allowed += 1;
                        request.extensions_mut().insert(CallerClass(class));
                        if let Ok(caller) = &caller {
                            request.extensions_mut().insert(Scope::for_caller(caller));
                        }
                        Ok(BatchEntry::Call(request))
                    }
                    (Ok(BatchEntry::Call(request)), Err(error)) => {
                        guarding.refused(request.method_name(), class, &error);
                        Err(BatchEntryErr::new(request.id, error))
                    }
                    // A refused notification is dropped: it has no answer to carry an error.
                    (Ok(BatchEntry::Notification(_)), Err(_)) => continue,
                    (entry, _) => entry,
                };
                entries.push(entry);
            }
            if let Ok(caller) = &caller
                && allowed > 0
                && let Err(error) = gate.limit(caller, allowed)
            {
                for entry in &mut entries {
                    if let Ok(BatchEntry::Call(request)) = entry {
                        guarding.refused(request.method_name(), class, &error);
                        let id = request.id.clone();
                        *entry = Err(BatchEntryErr::new(id, error.clone()));
                    }
                }
            }
            this.service.batch(Batch::from(entries)).await
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let Some(gate) = this.guarding.gate.clone() else {
                return this.service.notification(notification).await;
            };
            let token = token(notification.extensions());
            let certified = certified(notification.extensions());
            let allowed = match gate.caller(token.as_deref(), certified).await {
                Ok(caller) => gate
                    .permit(&caller, notification.method_name(), None)
                    .is_ok(),
                Err(_) => false,
            };
            if allowed {
                this.service.notification(notification).await
            } else {
                MethodResponse::notification()
            }
        }
    }
}
