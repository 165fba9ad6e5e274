//! Where `trellis_keyActivity` reads the finalization certificates a node's consensus archived.
//! The node plugs its consensus in (`rpc` does not depend on consensus); a server without one
//! says so in its answers.

use alloy_primitives::{B256, Bytes};
use std::{future::Future, pin::Pin, sync::Arc};
use trellis_types::{Height, ValidatorId};

/// One block's finalization certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finalization {
    pub epoch: u64,
    pub view: u64,
    pub block: B256,
    /// The validators whose finalize votes it carries.
    pub signers: Vec<ValidatorId>,
    /// The certificate in consensus's canonical encoding.
    pub encoded: Bytes,
}

/// A reader of archived finalization certificates.
pub trait CertificateSource: Send + Sync + 'static {
    /// The certificate of the block at `height`, if one was archived (a block finalized only
    /// through a descendant's certificate has none of its own).
    fn finalization(
        &self,
        height: Height,
    ) -> Pin<Box<dyn Future<Output = Option<Finalization>> + Send + '_>>;
}

/// A shared [`CertificateSource`], as [`crate::RpcConfig`] holds it.
#[derive(Clone)]
pub struct Certificates(pub Arc<dyn CertificateSource>);

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certificates")
    }
}
