//! The API over TLS for other hosts, beside the plain server on `rpc_addr` (which stays on
//! loopback for the host's own tools and the node's own tasks):
//!
//! ```toml
//! [api_tls]
//! addr = "0.0.0.0:8443"           # HTTPS and WSS here
//! cert = "api-cert.pem"           # the node's certificate chain (PEM)
//! key = "api-key.pem"             # its private key (PEM, PKCS#8)
//! client_ca = "members-ca.pem"    # optional: callers may present a certificate this
//! #                               # authority issued, naming their account in a
//! #                               # subjectAltName URI trellis:account:0x… (mutual TLS)
//! ```
//!
//! Callers of this server always authenticate, by API token or client certificate, and are
//! held to `api_public` and `api_rate` as a token-asking `rpc_addr` would hold them: it serves
//! other hosts, so a chain without a registry of accounts cannot have one.

use crate::{
    FileProblem,
    api_access::{ApiFile, ApiSettings, DEFAULT_RATE, PublicMode},
};
use serde::Deserialize;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use trellis_access::{Policy, PublicReads};
use trellis_rpc::tls::TlsConfig;

/// `[api_tls]`, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsFile {
    addr: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    #[serde(default)]
    client_ca: Option<PathBuf>,
}

/// The TLS server, loaded and checked.
#[derive(Clone, Debug)]
pub struct ApiTls {
    pub addr: SocketAddr,
    pub config: TlsConfig,
    pub settings: ApiSettings,
}

impl ApiTlsFile {
    /// Loads the certificates (paths relative to `base`, node.toml's directory) for a chain
    /// that has a registry of accounts (`governed`) or not.
    pub fn load(&self, base: &Path, api: ApiFile, governed: bool) -> Result<ApiTls, FileProblem> {
        if !governed {
            return Err(FileProblem::TokensWithoutRegistry(self.addr));
        }
        if api.rate == Some(0) {
            return Err(FileProblem::ZeroApiRate);
        }
        let client_ca = self.client_ca.as_ref().map(|path| base.join(path));
        let config = TlsConfig::load(
            &base.join(&self.cert),
            &base.join(&self.key),
            client_ca.as_deref(),
        )?;
        let public = match api.public {
            Some(PublicMode::Blocks) => PublicReads::Blocks,
            Some(PublicMode::Nothing) | None => PublicReads::Nothing,
        };
        Ok(ApiTls {
            addr: self.addr,
            config,
            settings: ApiSettings {
                policy: Policy { public },
                rate: api.rate.unwrap_or(DEFAULT_RATE),
            },
        })
    }
}
