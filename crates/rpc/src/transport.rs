//! What depends on the transport a call came over.

use jsonrpsee::{
    server::middleware::rpc::{Batch, MethodResponse, Notification, Request, RpcServiceT},
    types::{ErrorObjectOwned, error::INTERNAL_ERROR_CODE},
};

/// jsonrpsee answers a subscription asked over HTTP with a bare "Internal error"; this layer
/// says what is wrong and what to do. (Over WebSocket, subscribing never answers -32603.)
#[derive(Clone)]
pub struct SubscriptionsNeedWebSocket<S>(pub S);

impl<S> RpcServiceT for SubscriptionsNeedWebSocket<S>
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
        let service = self.0.clone();
        let method = request.method_name().to_string();
        let id = request.id().into_owned();
        async move {
            let response = service.call(request).await;
            let pubsub = matches!(method.as_str(), "eth_subscribe" | "eth_unsubscribe");
            if !pubsub || response.as_error_code() != Some(INTERNAL_ERROR_CODE) {
                return response;
            }
            let error = ErrorObjectOwned::owned(
                jsonrpsee::types::error::METHOD_NOT_FOUND_CODE,
                format!(
                    "{method} is available over WebSocket only: connect to ws:// on this same address"
                ),
                None::<()>,
            );
            let extensions = response.extensions().clone();
            MethodResponse::error(id, error).with_extensions(extensions)
        }
    }

    fn batch<'a>(
        &self,
        requests: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        self.0.batch(requests)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.0.notification(notification)
    }
}
