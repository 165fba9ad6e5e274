//! Access control on the API (`trellis-access` decides, this module applies): an HTTP layer
//! ([`BearerLayer`]) finds the token a request presents, and an RPC layer ([`Guard`]) checks
//! every call, one by one or in a batch, before anything else answers it: the caller's token,
//! the permission the method needs against the caller's standing on chain, and the caller's
//! rate. Refusals are JSON-RPC errors naming the permission missing and why (4100,
//! EIP-1193's "unauthorized"), or -32005 with `retryAfterMs` for a caller over its rate.

mod bearer;
mod gate;

pub use bearer::{BearerLayer, Presented};
pub use gate::{Caller, CallerKey};

use gate::Gate;
use jsonrpsee::{
    MethodResponse,
    core::middleware::BatchEntryErr,
    server::middleware::rpc::{Batch, BatchEntry, Notification, Request, RpcServiceT},
};
use std::sync::Arc;
use trellis_access::{Permission, Policy, TokenError};
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
    /// `calls` calls by `caller` were let through.
    fn served(&self, caller: &str, calls: u64);
}

/// The RPC layer; `service` answers the calls it lets through.
pub struct Guard<S, E: Runtime> {
    service: S,
    /// `None`: anonymous access, every call let through.
    gate: Option<Arc<Gate<E>>>,
    known: crate::metrics::Known,
}

impl<S: Clone, E: Runtime> Clone for Guard<S, E> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            gate: self.gate.clone(),
            known: self.known.clone(),
        }
    }
}

/// What builds a [`Guard`] around each connection's service.
pub(crate) struct Guarding<E: Runtime> {
    gate: Option<Arc<Gate<E>>>,
    known: crate::metrics::Known,
}

impl<E: Runtime> Clone for Guarding<E> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
            known: self.known.clone(),
        }
    }
}

impl<E: Runtime> Guarding<E> {
    /// Guards calls to `chain` by `config`; `None`: anonymous access.
    pub fn new(
        chain: &Chain<E>,
        config: Option<AccessConfig>,
        known: crate::metrics::Known,
    ) -> Self {
        Self {
            gate: config.map(|config| Arc::new(Gate::new(chain.clone(), config))),
            known,
        }
    }

    pub fn wrap<S>(&self, service: S) -> Guard<S, E> {
        Guard {
            service,
            gate: self.gate.clone(),
            known: self.known.clone(),
        }
    }
}

fn token(extensions: &jsonrpsee::Extensions) -> Option<String> {
    extensions.get::<Presented>().map(|p| p.0.clone())
}

impl<S, E> RpcServiceT for Guard<S, E>
where
    S: crate::batch::Inner,
    E: Runtime,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            // An unknown method: jsonrpsee answers "method not found", nothing to guard.
            let Some(gate) = this
                .gate
                .as_ref()
                .filter(|_| this.known.contains(request.method_name()))
            else {
                return this.service.call(request).await;
            };
            let token = token(request.extensions());
            let checked = match gate.caller(token.as_deref()).await {
                Ok(caller) => gate
                    .permit(&caller, request.method_name(), request.params().as_str())
                    .and_then(|()| gate.limit(&caller, 1)),
                Err(error) => Err(error),
            };
            match checked {
                Ok(()) => this.service.call(request).await,
                Err(error) => {
                    let extensions = request.extensions().clone();
                    MethodResponse::error(request.id, error).with_extensions(extensions)
                }
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let Some(gate) = this.gate.clone() else {
                return this.service.batch(batch).await;
            };
            let token = token(batch.extensions());
            let caller = gate.caller(token.as_deref()).await;
            let mut entries = Vec::with_capacity(batch.len());
            let mut allowed = 0u32;
            for entry in batch {
                let entry = match (entry, &caller) {
                    (Ok(BatchEntry::Call(request)), _)
                        if !this.known.contains(request.method_name()) =>
                    {
                        Ok(BatchEntry::Call(request))
                    }
                    (Ok(BatchEntry::Call(request)), Ok(caller)) => {
                        match gate.permit(caller, request.method_name(), request.params().as_str())
                        {
                            Ok(()) => {
                                allowed += 1;
                                Ok(BatchEntry::Call(request))
                            }
                            Err(error) => Err(BatchEntryErr::new(request.id, error)),
                        }
                    }
                    (Ok(BatchEntry::Call(request)), Err(error)) => {
                        Err(BatchEntryErr::new(request.id, error.clone()))
                    }
                    (Ok(BatchEntry::Notification(notification)), Ok(caller)) => {
                        // A refused notification is dropped: it has no answer to carry an error.
                        match gate.permit(caller, notification.method_name(), None) {
                            Ok(()) => Ok(BatchEntry::Notification(notification)),
                            Err(_) => continue,
                        }
                    }
                    (Ok(BatchEntry::Notification(_)), Err(_)) => continue,
                    (Err(error), _) => Err(error),
                };
                entries.push(entry);
            }
            if let Ok(caller) = &caller
                && allowed > 0
                && let Err(error) = gate.limit(caller, allowed)
            {
                for entry in &mut entries {
                    if let Ok(BatchEntry::Call(request)) = entry {
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
            let Some(gate) = this.gate.clone() else {
                return this.service.notification(notification).await;
            };
            let token = token(notification.extensions());
            let allowed = match gate.caller(token.as_deref()).await {
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
