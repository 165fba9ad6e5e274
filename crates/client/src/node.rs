//! One node's JSON-RPC: the few Ethereum methods a tool needs to send and read.

use crate::ClientError;
use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, Bytes, TxHash, TxKind, U64, U256};
use alloy_rpc_types_eth::TransactionReceipt;
use jsonrpsee_core::{
    client::{ClientT, Error as RpcError},
    rpc_params,
};
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::time::{Duration, Instant};
use trellis_crypto::TxSigner;

/// Gas asked for above the estimate: state can change between estimate and inclusion.
const GAS_MARGIN_PERCENT: u64 = 25;
/// How often a sent transaction's receipt is asked for.
const POLL: Duration = Duration::from_millis(100);

/// A node, reached over HTTP JSON-RPC.
pub struct Node {
    http: HttpClient,
    url: String,
}

/// A transaction in a block.
#[derive(Debug)]
pub struct Sent {
    pub receipt: TransactionReceipt,
}

impl Node {
    /// A client of the node at `url` (`http://host:port`); nothing is sent yet.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Self::with_token(url, None)
    }

    /// A client presenting API token `token` (`trellis api token`) with every call, for a
    /// node that asks callers for one.
    pub fn with_token(url: &str, token: Option<&str>) -> Result<Self, ClientError> {
        Self::with_credentials(url, token, None)
    }

    /// A client presenting `token`, if any, and reaching an `https://` node with `tls`: the
    /// node's authority and, for mutual TLS, the caller's certificate.
    pub fn with_credentials(
        url: &str,
        token: Option<&str>,
        tls: Option<&crate::ClientTls>,
    ) -> Result<Self, ClientError> {
        let bad_url = |source| ClientError::BadUrl {
            url: url.to_owned(),
            source,
        };
        let mut headers = jsonrpsee_http_client::HeaderMap::new();
        if let Some(token) = token {
            let value = format!("Bearer {}", token.trim())
                .parse()
                .map_err(|_| ClientError::BadToken)?;
            headers.insert("authorization", value);
        }
        let mut builder = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .set_headers(headers);
        if let Some(tls) = tls {
            builder = builder.with_custom_cert_store(tls.config()?);
        }
        let http = builder.build(url).map_err(bad_url)?;
        Ok(Self {
            http,
            url: url.to_owned(),
        })
    }

    pub(crate) async fn request<R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: jsonrpsee_core::params::ArrayParams,
    ) -> Result<R, ClientError> {
        self.http
            .request(method, params)
            .await
            .map_err(|source| match source {
                // The node's own refusal (a revert, a rule): its message is the reason.
                RpcError::Call(error) => ClientError::Refused(error.message().to_owned()),
                source => ClientError::Rpc {
                    url: self.url.clone(),
                    method,
                    source,
                },
            })
    }

    pub async fn chain_id(&self) -> Result<u64, ClientError> {
        let id: U64 = self.request("eth_chainId", rpc_params![]).await?;
        Ok(id.to())
    }

    pub async fn block_number(&self) -> Result<u64, ClientError> {
        let number: U64 = self.request("eth_blockNumber", rpc_params![]).await?;
        Ok(number.to())
    }

    /// `trellis_keyActivity`: what `key` (an address or a validator's public key, 0x-hex) is
    /// on chain and every record tied to it, split at `since` (else at the compromise the
    /// chain records).
    pub async fn key_activity(
        &self,
        key: &str,
        since: Option<u64>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut options = serde_json::Map::new();
        if let Some(since) = since {
            options.insert("since".into(), json!(U64::from(since)));
        }
        self.request("trellis_keyActivity", rpc_params![key, options])
            .await
    }

    /// `trellis_alarms`: up to `limit` alarms the node's risk rules raised with ids above
    /// `after`, oldest first.
    pub async fn alarms(
        &self,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<trellis_risk::Alarm>, ClientError> {
        let mut options = serde_json::Map::new();
        options.insert("after".into(), json!(after));
        if let Some(limit) = limit {
            options.insert("limit".into(), json!(limit));
        }
        self.request("trellis_alarms", rpc_params![options]).await
    }

    /// The evidence of equivocation the node kept (`trellis_getEvidence`), as it answered: a
    /// JSON array of records, which the caller verifies for itself.
    pub async fn evidence(&self) -> Result<serde_json::Value, ClientError> {
        self.request("trellis_getEvidence", rpc_params![]).await
    }

    /// A read-only call on the latest block; a revert is [`ClientError::Refused`] with its
    /// reason.
    pub async fn call(&self, to: Address, data: Bytes) -> Result<Bytes, ClientError> {
        let request = json!({ "to": to, "data": data });
        self.request("eth_call", rpc_params![request, "latest"])
            .await
    }

    /// Signs a call of `to` with `data` by `key`, sends it and waits up to `wait` for its
    /// receipt. Estimated first, so a call that would revert is refused with the reason
    /// before anything is sent.
    pub async fn send(
        &self,
        key: &dyn TxSigner,
        to: Address,
        data: Bytes,
        wait: Duration,
    ) -> Result<Sent, ClientError> {
        self.send_value(key, to, U256::ZERO, data, wait).await
    }

    /// [`Self::send`] with `value` wei attached.
    pub async fn send_value(
        &self,
        key: &dyn TxSigner,
        to: Address,
        value: U256,
        data: Bytes,
        wait: Duration,
    ) -> Result<Sent, ClientError> {
        let from = key.address();
        let estimate_request = json!({ "from": from, "to": to, "value": value, "data": data });
        let estimate: U64 = self
            .request("eth_estimateGas", rpc_params![estimate_request])
            .await?;
        let gas_limit = estimate.to::<u64>() * (100 + GAS_MARGIN_PERCENT) / 100;
        let nonce: U64 = self
            .request("eth_getTransactionCount", rpc_params![from, "pending"])
            .await?;
        let gas_price: U256 = self.request("eth_gasPrice", rpc_params![]).await?;
        let tx = TxEip1559 {
            chain_id: self.chain_id().await?,
            nonce: nonce.to(),
            gas_limit,
            max_fee_per_gas: gas_price.saturating_to(),
            max_priority_fee_per_gas: 0,
            to: TxKind::Call(to),
            value,
            input: data,
            ..TxEip1559::default()
        };
        let raw = trellis_crypto::sign_transaction(key, tx).map_err(ClientError::Signing)?;
        let hash: TxHash = self
            .request("eth_sendRawTransaction", rpc_params![raw])
            .await?;
        let receipt = self.wait(hash, wait).await?;
        if !receipt.status() {
            return Err(ClientError::Failed {
                tx: hash,
                block: receipt.block_number.unwrap_or_default(),
            });
        }
        Ok(Sent { receipt })
    }

    async fn wait(&self, tx: TxHash, wait: Duration) -> Result<TransactionReceipt, ClientError> {
        let start = Instant::now();
        loop {
            let receipt: Option<TransactionReceipt> = self
                .request("eth_getTransactionReceipt", rpc_params![tx])
                .await?;
            if let Some(receipt) = receipt {
                return Ok(receipt);
            }
            if start.elapsed() >= wait {
                return Err(ClientError::NotIncluded {
                    tx,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
