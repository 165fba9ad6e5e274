//! The API over TLS (HTTPS and WSS), optionally mutual: the node presents its certificate, and
//! with a members' certificate authority configured a caller may present a certificate that
//! authority issued. Such a certificate names the caller's account in a subjectAltName URI,
//! `trellis:account:0x…`; the connection's calls are then that account's without an API token
//! (a token, if one is sent as well, must name the same account). Whether the account may
//! call is still decided by its standing on chain, as for a token.

use alloy_primitives::Address;
use std::{path::Path, sync::Arc, time::Duration};
use tokio_rustls::rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use x509_cert::{
    Certificate,
    der::Decode as _,
    ext::pkix::{SubjectAltName, name::GeneralName},
};

/// How a certificate names its account.
pub const ACCOUNT_URI_PREFIX: &str = "trellis:account:";
/// Longest a client may take over its TLS handshake before the connection is dropped.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The node's TLS settings, loaded.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub(crate) server: Arc<ServerConfig>,
}

/// The account a verified client certificate names: in the calls' extensions of its
/// connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertifiedAccount(pub Address);

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    #[error("{what} {path} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate { what: &'static str, path: String },
    #[error("the members' certificate authority {path} is not usable: {why}")]
    BadAuthority { path: String, why: String },
    #[error("the node's certificate and key do not make a TLS server: {0}")]
    Server(tokio_rustls::rustls::Error),
}

/// Why a client certificate names no account.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the client certificate is not readable X.509: {0}")]
    Unreadable(String),
    #[error(
        "the client certificate names no account: expected a subjectAltName URI {ACCOUNT_URI_PREFIX}0x<address>"
    )]
    NoAccount,
    #[error("the client certificate's account URI {0:?} does not hold an address")]
    BadAccount(String),
}

impl TlsConfig {
    /// The node's certificate chain `cert` and key `key` (PEM files); with `client_ca`,
    /// callers may present a certificate that authority issued (PEM). Callers without one
    /// still connect and authenticate by token.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        let chain = certificates(cert, "the node's certificate")?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
            what: "the node's key",
            path: key.display().to_string(),
            source,
        })?;
        // Named, not the process default: the build links two providers (ring comes with the
        // CLI's HTTP client), and rustls picks none when two are linked.
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Server)?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let bad = |why: String| TlsError::BadAuthority {
                    path: path.display().to_string(),
                    why,
                };
                let mut roots = RootCertStore::empty();
                for authority in certificates(path, "the members' certificate authority")? {
                    roots.add(authority).map_err(|e| bad(e.to_string()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| bad(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder
            .with_single_cert(chain, key)
            .map_err(TlsError::Server)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            server: Arc::new(server),
        })
    }
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    };
    let found = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if found.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(found)
}

/// The account a client certificate (DER) names in its subjectAltName.
pub fn account_of(certificate: &[u8]) -> Result<Address, CertificateError> {
    let unreadable = |e: x509_cert::der::Error| CertificateError::Unreadable(e.to_string());
    let certificate = Certificate::from_der(certificate).map_err(unreadable)?;
    let names = certificate
        .tbs_certificate
        .get::<SubjectAltName>()
        .map_err(unreadable)?
        .map(|(_, names)| names.0)
        .unwrap_or_default();
    let uri = names
        .iter()
        .find_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => {
                uri.as_str().strip_prefix(ACCOUNT_URI_PREFIX)
            }
            _ => None,
        })
        .ok_or(CertificateError::NoAccount)?;
    uri.parse()
        .map_err(|_| CertificateError::BadAccount(format!("{ACCOUNT_URI_PREFIX}{uri}")))
}

/// Accepts connections on `listener` until `stop` fires: each one's TLS handshake (bounded by
/// [`HANDSHAKE_TIMEOUT`]), then `serve` with the TLS stream and the account its client
/// certificate names, if any (`serve` spawns the connection's task and hands back its handle). A failed handshake, or a certificate that
/// names no account, closes that connection only; beyond `max_connections` at once, a new
/// connection is closed at once.
pub(crate) async fn accept<F>(
    listener: tokio::net::TcpListener,
    tls: TlsConfig,
    stop: jsonrpsee::server::StopHandle,
    max_connections: u32,
    serve: F,
) where
    F: Fn(TlsStream, Option<CertifiedAccount>) -> tokio::task::JoinHandle<()>
        + Clone
        + Send
        + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections as usize));
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "the API could not accept a connection");
                    continue;
                }
            },
            () = stop.clone().shutdown() => return,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max_connections, "API connections at their limit: closed");
            continue;
        };
        let acceptor = acceptor.clone();
        let serve = serve.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let presented = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| account_of(leaf));
            let certified = match presented {
                None => None,
                Some(Ok(account)) => Some(CertifiedAccount(account)),
                Some(Err(error)) => {
                    tracing::warn!(%peer, %error, "a client certificate was refused");
                    return;
                }
            };
            // The permit is held until the connection ends.
            let _ = serve(stream, certified).await;
        });
    }
}

/// A client's connection once its TLS handshake is done.
pub(crate) type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_that_is_not_x509_names_no_account() {
        assert!(matches!(
            account_of(b"not a certificate"),
            Err(CertificateError::Unreadable(_))
        ));
    }
}
