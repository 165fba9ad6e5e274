//! Reaching a node's API over TLS (its `[api_tls]` server): the authority that issued the
//! node's certificate, and, for mutual TLS, the caller's own certificate and key.

use crate::ClientError;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};
use tokio_rustls::rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

/// How a client authenticates the node, and itself, over TLS.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The authority that issued the node's certificate (PEM).
    pub ca: PathBuf,
    /// The caller's certificate chain and key (PEM): mutual TLS. `None`: the caller
    /// presents a token, if anything.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// The TLS settings of a client of a node.
    pub(crate) fn config(&self) -> Result<ClientConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        for authority in certificates(&self.ca)? {
            roots
                .add(authority)
                .map_err(|e| tls_error(&self.ca, e.to_string()))?;
        }
        // Named, not the process default: rustls picks none when two providers are linked.
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(&self.ca, e.to_string()))?
            .with_root_certificates(Arc::new(roots));
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = certificates(cert)?;
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| tls_error(key, e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error(cert, e.to_string()))
            }
        }
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let found = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(path, e.to_string()))?;
    if found.is_empty() {
        return Err(tls_error(
            path,
            "no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)".into(),
        ));
    }
    Ok(found)
}

fn tls_error(path: &Path, why: String) -> ClientError {
    ClientError::Tls {
        path: path.display().to_string(),
        why,
    }
}
