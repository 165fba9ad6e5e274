//! The HTTP layer that finds a call's API token: `Authorization: Bearer <token>`, or a
//! `token=<token>` query parameter for clients that cannot set headers (a wallet's RPC URL, a
//! browser's WebSocket). jsonrpsee copies the HTTP request's extensions into every call made
//! over it, WebSocket calls included, where [`super::Guard`] reads the token.

use jsonrpsee::server::HttpRequest;
use std::task::{Context, Poll};

/// The token a request presented, unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented(pub String);

/// The layer, for jsonrpsee's HTTP middleware.
#[derive(Clone, Copy, Debug, Default)]
pub struct BearerLayer;

impl<S> tower::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Bearer<S>(S);

impl<S, B> tower::Service<HttpRequest<B>> for Bearer<S>
where
    S: tower::Service<HttpRequest<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        if let Some(token) = presented(&request) {
            request.extensions_mut().insert(Presented(token));
        }
        self.0.call(request)
    }
}

fn presented<B>(request: &HttpRequest<B>) -> Option<String> {
    let header = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        });
    if let Some(token) = header {
        return Some(token.trim().to_owned());
    }
    let query = request.uri().query()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, authorization: Option<&str>) -> HttpRequest<()> {
        let mut builder = HttpRequest::builder().uri(uri);
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(()).expect("a request")
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let header = request("/", Some("Bearer trellis-api-v1.x"));
        assert_eq!(presented(&header).as_deref(), Some("trellis-api-v1.x"));
        let query = request("/?a=1&token=trellis-api-v1.y", None);
        assert_eq!(presented(&query).as_deref(), Some("trellis-api-v1.y"));
        assert_eq!(presented(&request("/", Some("Basic abc"))), None);
        assert_eq!(presented(&request("/", None)), None);
    }
}
