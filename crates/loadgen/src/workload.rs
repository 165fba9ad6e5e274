//! The transactions of a run, signed before it starts so that signing costs nothing while the
//! node is measured: native transfers, or ERC-20 transfers of a token deployed and shared out
//! among the senders first.

use crate::client::{Client, ClientError, quantity};
use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::{SolCall as _, SolValue as _, sol};
use serde_json::{Value, json};
use std::{collections::HashMap, time::Duration};
use trellis_crypto::AccountKey;

sol! {
    function transfer(address to, uint256 value) external returns (bool);
}

/// The token's compiled artifact (solc-js output, checked in under `contracts/`).
const TOKEN_ARTIFACT: &str = include_str!("../../../contracts/artifacts/TrellisToken.json");

/// Gas for one ERC-20 transfer (it uses ~34,000 to an existing holder, ~51,000 to a new one).
const ERC20_TRANSFER_GAS: u64 = 60_000;
/// Gas for the token's deployment.
const DEPLOY_GAS: u64 = 2_000_000;
/// Tokens each sender is given before the run: enough for any number of 1-token transfers.
pub(crate) const TOKENS_PER_SENDER: U256 = U256::from_limbs([1 << 40, 0, 0, 0]);

/// What each transaction of the run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// A native value transfer (21,000 gas).
    Transfer,
    /// An ERC-20 `transfer` of one token unit (two storage slots and a log).
    Erc20,
}

/// Why the workload could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the run needs at least 2 funded accounts, the node has {0}")]
    TooFewAccounts(usize),
    #[error("the token artifact is unreadable: {0}")]
    Artifact(String),
    #[error("setup transaction {hash} failed: {detail}")]
    Setup { hash: B256, detail: String },
}

/// One signed transaction of the run.
#[derive(Clone, Debug)]
pub struct SignedTx {
    /// `"0x…"`, ready for `eth_sendRawTransaction`.
    pub hex: String,
    pub hash: B256,
    /// The EIP-2718 envelope.
    pub raw: Bytes,
}

/// The chain's parameters a signer needs.
#[derive(Clone, Copy, Debug)]
pub struct ChainParams {
    pub chain_id: u64,
    pub gas_price: u128,
}

impl ChainParams {
    pub async fn read(client: &mut Client) -> Result<Self, ClientError> {
        let chain_id = client.call("eth_chainId", json!([])).await?;
        let gas_price = client.call("eth_gasPrice", json!([])).await?;
        Ok(Self {
            chain_id: quantity(&chain_id).unwrap_or_default(),
            gas_price: quantity(&gas_price).unwrap_or_default().into(),
        })
    }
}

/// The run's transactions: `per_sender` from each sender, in rounds (every sender's next nonce
/// per round), split into one queue per connection by sender.
pub struct Prepared {
    pub queues: Vec<Vec<SignedTx>>,
    /// Each transaction's index in `0..total`, by hash.
    pub index: HashMap<B256, usize>,
    pub total: usize,
}

/// Prepares the run: for ERC-20, deploys the token from the first account and gives every
/// sender tokens (waiting for those blocks); then signs every transaction on all cores.
pub async fn prepare(
    client: &mut Client,
    keys: &[AccountKey],
    workload: Workload,
    per_sender: usize,
    connections: usize,
) -> Result<Prepared, WorkloadError> {
    if keys.len() < 2 {
        return Err(WorkloadError::TooFewAccounts(keys.len()));
    }
    let params = ChainParams::read(client).await?;
    let mut nonces = Vec::with_capacity(keys.len());
    for key in keys {
        let count = client
            .call("eth_getTransactionCount", json!([key.address(), "latest"]))
            .await?;
        nonces.push(quantity(&count).unwrap_or_default());
    }
    let token = match workload {
        Workload::Transfer => None,
        Workload::Erc20 => Some(deploy_and_share(client, keys, &mut nonces, params).await?),
    };
    let plan = Plan {
        keys,
        nonces: &nonces,
        token,
        params,
    };
    Ok(plan.sign(per_sender, connections))
}

/// What signing needs.
pub(crate) struct Plan<'a> {
    pub keys: &'a [AccountKey],
    /// Each sender's first nonce.
    pub nonces: &'a [u64],
    pub token: Option<Address>,
    pub params: ChainParams,
}

impl Plan<'_> {
    /// Sender `s`'s transaction of round `round`: to the next senders in turn, so every
    /// recipient is an existing account (and holder).
    pub(crate) fn transaction(&self, s: usize, round: usize) -> SignedTx {
        let n = self.keys.len();
        let to = self.keys[(s + 1 + round % (n - 1)) % n].address();
        let (kind, input, value, gas) = match self.token {
            None => (TxKind::Call(to), Bytes::new(), U256::from(1), 21_000),
            Some(token) => (
                TxKind::Call(token),
                transferCall {
                    to,
                    value: U256::from(1),
                }
                .abi_encode()
                .into(),
                U256::ZERO,
                ERC20_TRANSFER_GAS,
            ),
        };
        sign(
            &self.keys[s],
            self.params,
            self.nonces[s] + round as u64,
            kind,
            input,
            value,
            gas,
        )
    }

    /// Every transaction, signed on all cores, queued per connection in rounds.
    fn sign(&self, per_sender: usize, connections: usize) -> Prepared {
        let connections = connections.max(1);
        let queues: Vec<Vec<SignedTx>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..connections)
                .map(|c| {
                    scope.spawn(move || {
                        let senders: Vec<usize> =
                            (c..self.keys.len()).step_by(connections).collect();
                        let mut queue = Vec::with_capacity(senders.len() * per_sender);
                        for round in 0..per_sender {
                            for &s in &senders {
                                queue.push(self.transaction(s, round));
                            }
                        }
                        queue
                    })
                })
                .collect();
            // One signing thread per connection's queue; more than the cores only queue up.
            workers
                .into_iter()
                .map(|w| w.join().expect("signing does not panic"))
                .collect()
        });
        let mut index = HashMap::new();
        for tx in queues.iter().flatten() {
            let next = index.len();
            index.insert(tx.hash, next);
        }
        let total = index.len();
        Prepared {
            queues,
            index,
            total,
        }
    }
}

fn sign(
    key: &AccountKey,
    params: ChainParams,
    nonce: u64,
    to: TxKind,
    input: Bytes,
    value: U256,
    gas_limit: u64,
) -> SignedTx {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: params.chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: params.gas_price,
        max_priority_fee_per_gas: 0,
        to,
        value,
        input,
        access_list: Default::default(),
    });
    SignedTx {
        hash: keccak256(&raw),
        hex: raw.to_string(),
        raw,
    }
}

/// The token's deployment from `owner`, minting `supply` to it.
pub(crate) fn deploy(
    owner: &AccountKey,
    params: ChainParams,
    nonce: u64,
    supply: U256,
) -> Result<SignedTx, WorkloadError> {
    Ok(sign(
        owner,
        params,
        nonce,
        TxKind::Create,
        token_creation_code(supply)?,
        U256::ZERO,
        DEPLOY_GAS,
    ))
}

/// A sender's share of the token, from its owner.
pub(crate) fn share(
    owner: &AccountKey,
    params: ChainParams,
    nonce: u64,
    token: Address,
    to: Address,
) -> SignedTx {
    let input = transferCall {
        to,
        value: TOKENS_PER_SENDER,
    }
    .abi_encode()
    .into();
    sign(
        owner,
        params,
        nonce,
        TxKind::Call(token),
        input,
        U256::ZERO,
        ERC20_TRANSFER_GAS,
    )
}

/// Deploys the token from the first account and sends every other sender its share; returns
/// the token's address once all of it is final. Moves the nonces on.
async fn deploy_and_share(
    client: &mut Client,
    keys: &[AccountKey],
    nonces: &mut [u64],
    params: ChainParams,
) -> Result<Address, WorkloadError> {
    let owner = &keys[0];
    let supply = TOKENS_PER_SENDER * U256::from(keys.len());
    let deploy = deploy(owner, params, nonces[0], supply)?;
    nonces[0] += 1;
    let receipt = submit_and_wait(client, &deploy).await?;
    let token: Address =
        serde_json::from_value(receipt["contractAddress"].clone()).map_err(|_| {
            WorkloadError::Setup {
                hash: deploy.hash,
                detail: format!("no contract address in the receipt {receipt}"),
            }
        })?;
    let mut shares = Vec::new();
    for key in &keys[1..] {
        let share = share(owner, params, nonces[0], token, key.address());
        nonces[0] += 1;
        client
            .call("eth_sendRawTransaction", json!([share.hex]))
            .await?;
        shares.push(share);
    }
    for share in &shares {
        wait_for_receipt(client, share).await?;
    }
    Ok(token)
}

/// The token's creation code with its constructor arguments (name, symbol, supply).
fn token_creation_code(supply: U256) -> Result<Bytes, WorkloadError> {
    let artifact: Value =
        serde_json::from_str(TOKEN_ARTIFACT).map_err(|e| WorkloadError::Artifact(e.to_string()))?;
    let bytecode = artifact["bytecode"]
        .as_str()
        .ok_or_else(|| WorkloadError::Artifact("no \"bytecode\" field".into()))?;
    let mut code: Vec<u8> = bytecode
        .parse::<Bytes>()
        .map_err(|e| WorkloadError::Artifact(e.to_string()))?
        .into();
    code.extend(("Load Token".to_string(), "LOAD".to_string(), supply).abi_encode_params());
    Ok(code.into())
}

async fn submit_and_wait(client: &mut Client, tx: &SignedTx) -> Result<Value, WorkloadError> {
    client
        .call("eth_sendRawTransaction", json!([tx.hex]))
        .await?;
    wait_for_receipt(client, tx).await
}

/// Waits for a setup transaction's receipt, which must show success.
async fn wait_for_receipt(client: &mut Client, tx: &SignedTx) -> Result<Value, WorkloadError> {
    for _ in 0..3_000 {
        let receipt = client
            .call("eth_getTransactionReceipt", json!([tx.hash]))
            .await?;
        if !receipt.is_null() {
            if receipt["status"] != "0x1" {
                return Err(WorkloadError::Setup {
                    hash: tx.hash,
                    detail: format!("it reverted: {receipt}"),
                });
            }
            return Ok(receipt);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(WorkloadError::Setup {
        hash: tx.hash,
        detail: "no receipt within 30 s".into(),
    })
}
