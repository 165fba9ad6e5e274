//! Each method's parameters as one type, read from the positional array the Ethereum API uses.
//!
//! jsonrpsee's `#[rpc]` macros would deserialize them too, but refuse bad input with a generic
//! "Invalid params"; reading through [`Args`] names the parameter, its position and what was
//! expected ("expected an address as the first parameter"), which is what a user needs to fix
//! the call. Handlers take these types, so a method's inputs are checked in one place and can be
//! tested without a node.

use crate::{
    error::invalid,
    log_filter::{Blocks, LogFilter},
    params::{Args, BlockId, BlockTag, CallArgs, parse_tag},
};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::Value;
use trellis_types::BlockHash;

/// A method's parameters.
pub trait Request: Sized {
    /// The most positional parameters the method takes.
    const MAX: usize;

    /// Reads the parameters, each checked.
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned>;

    /// Reads a request's `params`.
    fn parse(params: &Params<'_>) -> Result<Self, ErrorObjectOwned> {
        Self::read(&Args::parse(params, Self::MAX)?)
    }
}

/// A method without parameters.
pub struct NoParams;

impl Request for NoParams {
    const MAX: usize = 0;
    fn read(_: &Args) -> Result<Self, ErrorObjectOwned> {
        Ok(Self)
    }
}

/// `web3_sha3(data)`.
pub struct Sha3(pub Bytes);

impl Request for Sha3 {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        args.required(0, "0x-prefixed hex data").map(Self)
    }
}

/// `eth_sendRawTransaction(signed)`.
pub struct RawTransaction(pub Bytes);

impl Request for RawTransaction {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let what = "the signed transaction as one 0x-prefixed hex string";
        args.required(0, what).map(Self)
    }
}

/// `(address, block?)`: `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode`.
pub struct AccountAt {
    pub address: Address,
    pub block: BlockId,
}

impl Request for AccountAt {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        Ok(Self {
            address: args.required(0, "an address")?,
            block: args.block(1)?,
        })
    }
}

/// `eth_getStorageAt(address, slot, block?)`.
pub struct SlotAt {
    pub address: Address,
    pub slot: U256,
    pub block: BlockId,
}

impl Request for SlotAt {
    const MAX: usize = 3;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        Ok(Self {
            address: args.required(0, "an address")?,
            slot: args.required(1, "a storage slot (hex quantity)")?,
            block: args.block(2)?,
        })
    }
}

/// `eth_call` and `eth_estimateGas`: `(call, block?, overrides?)`; state overrides are refused.
pub struct CallAt {
    pub call: CallArgs,
    pub block: BlockId,
}

impl Request for CallAt {
    const MAX: usize = 3;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let call = args.required(0, "a call object")?;
        let block = args.block(1)?;
        let overrides: Option<Value> = args.optional(2, "state overrides")?;
        if overrides.is_some() {
            return Err(invalid("state overrides are not supported"));
        }
        Ok(Self { call, block })
    }
}

/// The first parameter naming a block by number or tag (`eth_*ByNumber*`).
fn by_number(args: &Args) -> Result<BlockId, ErrorObjectOwned> {
    let tag: String = args.required(0, "a block number or tag")?;
    Ok(BlockId::Tag(parse_tag(Some(&tag))?))
}

/// The first parameter naming a block by hash (`eth_*ByHash*`).
fn by_hash(args: &Args) -> Result<BlockId, ErrorObjectOwned> {
    let hash: B256 = args.required(0, "a block hash")?;
    Ok(BlockId::Hash(BlockHash(hash)))
}

/// `(block, full?)`: `eth_getBlockByNumber` and `eth_getBlockByHash`.
pub struct GetBlock {
    pub block: BlockId,
    /// Whole transactions (`true`) or their hashes.
    pub full: bool,
}

fn get_block(args: &Args, block: BlockId) -> Result<GetBlock, ErrorObjectOwned> {
    let full: Option<bool> = args.optional(1, "true (full transactions) or false (hashes)")?;
    Ok(GetBlock {
        block,
        full: full.unwrap_or(false),
    })
}

/// `eth_getBlockByNumber`.
pub struct BlockByNumber(pub GetBlock);
/// `eth_getBlockByHash`.
pub struct BlockByHash(pub GetBlock);

impl Request for BlockByNumber {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        get_block(args, by_number(args)?).map(Self)
    }
}

impl Request for BlockByHash {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        get_block(args, by_hash(args)?).map(Self)
    }
}

/// `eth_getBlockTransactionCountByNumber(block)`.
pub struct CountByNumber(pub BlockId);
/// `eth_getBlockTransactionCountByHash(hash)`.
pub struct CountByHash(pub BlockId);

impl Request for CountByNumber {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        by_number(args).map(Self)
    }
}

impl Request for CountByHash {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        by_hash(args).map(Self)
    }
}

/// `(block, index)`: `eth_getTransactionByBlock{Number,Hash}AndIndex`.
pub struct TransactionAt {
    pub block: BlockId,
    pub index: u64,
}

fn transaction_at(args: &Args, block: BlockId) -> Result<TransactionAt, ErrorObjectOwned> {
    let index: U64 = args.required(1, "a transaction index (hex)")?;
    Ok(TransactionAt {
        block,
        index: index.to(),
    })
}

/// `eth_getTransactionByBlockNumberAndIndex`.
pub struct TransactionByNumber(pub TransactionAt);
/// `eth_getTransactionByBlockHashAndIndex`.
pub struct TransactionByHash(pub TransactionAt);

impl Request for TransactionByNumber {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        transaction_at(args, by_number(args)?).map(Self)
    }
}

impl Request for TransactionByHash {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        transaction_at(args, by_hash(args)?).map(Self)
    }
}

/// `(hash)`: `eth_getTransactionByHash` and `eth_getTransactionReceipt`.
pub struct TxHash(pub B256);

impl Request for TxHash {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        args.required(0, "a transaction hash").map(Self)
    }
}

/// `eth_getBlockReceipts(block)`: a tag, number, hash or EIP-1898 object.
pub struct AnyBlock(pub BlockId);

impl Request for AnyBlock {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        args.block(0).map(Self)
    }
}

/// `(filter)`: `eth_getLogs` and `eth_newFilter`.
pub struct Logs(pub LogFilter);

impl Request for Logs {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let value: Value = args.required(0, "a filter object")?;
        LogFilter::parse(&value).map(Self)
    }
}

/// `(id)`: `eth_getFilterChanges`, `eth_getFilterLogs`, `eth_uninstallFilter`.
pub struct FilterId(pub String);

impl Request for FilterId {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        args.required(0, "a filter id").map(Self)
    }
}

/// `eth_feeHistory(blockCount, newestBlock, rewardPercentiles?)`, each checked.
pub struct FeeHistory {
    /// 1 to [`FeeHistory::MAX_BLOCKS`].
    pub count: u64,
    pub newest: BlockTag,
    /// Ascending, each within 0 to 100.
    pub percentiles: Option<Vec<f64>>,
}

impl FeeHistory {
    /// Most blocks one call covers (geth's limit).
    pub const MAX_BLOCKS: u64 = 1_024;
    /// Most reward percentiles one call asks for.
    pub const MAX_PERCENTILES: usize = 100;
}

impl Request for FeeHistory {
    const MAX: usize = 3;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let count = block_count(args)?;
        let newest: String = args.required(1, "the newest block (number or tag)")?;
        let percentiles: Option<Vec<f64>> =
            args.optional(2, "an array of reward percentiles (0 to 100)")?;
        check_percentiles(percentiles.as_deref())?;
        Ok(Self {
            count,
            newest: parse_tag(Some(&newest))?,
            percentiles,
        })
    }
}

/// A block count given as a hex quantity (ethers) or a JSON number (web3.py).
fn block_count(args: &Args) -> Result<u64, ErrorObjectOwned> {
    let value: Value = args.required(0, "a block count")?;
    let count = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text
            .strip_prefix("0x")
            .and_then(|digits| u64::from_str_radix(digits, 16).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(format!(
            "invalid block count {value}: use a number or a 0x-prefixed hex quantity"
        ))
    })?;
    let max = FeeHistory::MAX_BLOCKS;
    if count == 0 || count > max {
        return Err(invalid(format!(
            "block count {count} is out of range: ask for 1 to {max} blocks"
        )));
    }
    Ok(count)
}

fn check_percentiles(percentiles: Option<&[f64]>) -> Result<(), ErrorObjectOwned> {
    let Some(percentiles) = percentiles else {
        return Ok(());
    };
    let max = FeeHistory::MAX_PERCENTILES;
    if percentiles.len() > max {
        return Err(invalid(format!(
            "{} reward percentiles asked: at most {max}",
            percentiles.len()
        )));
    }
    for pair in percentiles.windows(2) {
        if pair[0] > pair[1] {
            return Err(invalid("reward percentiles must be in ascending order"));
        }
    }
    if let Some(bad) = percentiles.iter().find(|p| !(0.0..=100.0).contains(*p)) {
        return Err(invalid(format!(
            "reward percentile {bad} is outside 0 to 100"
        )));
    }
    Ok(())
}

/// `trellis_getProof(address, [slots], block?)`.
pub struct Proof {
    pub address: Address,
    /// At most [`Proof::MAX_SLOTS`].
    pub slots: Vec<U256>,
    pub block: BlockId,
}

impl Proof {
    /// Most storage slots one call proves.
    pub const MAX_SLOTS: usize = 1_024;
}

impl Request for Proof {
    const MAX: usize = 3;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let address = args.required(0, "an address")?;
        let slots: Vec<U256> = args.required(1, "an array of storage slots (hex)")?;
        let block = args.block(2)?;
        if slots.len() > Self::MAX_SLOTS {
            return Err(invalid(format!(
                "{} storage slots asked: at most {} per call",
                slots.len(),
                Self::MAX_SLOTS
            )));
        }
        Ok(Self {
            address,
            slots,
            block,
        })
    }
}

/// `trellis_getHistory(address, slot?, {limit}?)`.
pub struct History {
    pub address: Address,
    /// `None`: the account's own history.
    pub slot: Option<U256>,
    /// 1 to [`History::MAX_ENTRIES`], [`History::DEFAULT_ENTRIES`] if not given.
    pub limit: usize,
}

impl History {
    /// Most writes one call returns (the newest; `truncated` says if older ones exist).
    pub const MAX_ENTRIES: usize = 1_000;
    pub const DEFAULT_ENTRIES: usize = 100;

    /// `limit`, or `default` if not given: 1 to [`History::MAX_ENTRIES`].
    fn check_limit(limit: Option<usize>, default: usize) -> Result<usize, ErrorObjectOwned> {
        let limit = limit.unwrap_or(default);
        if limit == 0 || limit > Self::MAX_ENTRIES {
            return Err(invalid(format!(
                "limit {limit} is out of range: ask for 1 to {} entries",
                Self::MAX_ENTRIES
            )));
        }
        Ok(limit)
    }
}

/// The options of `trellis_getHistory`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryOptions {
    limit: Option<usize>,
}

impl Request for History {
    const MAX: usize = 3;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let address = args.required(0, "an address")?;
        let slot = args.optional(1, "a storage slot (hex) or null")?;
        let options: Option<HistoryOptions> = args.optional(2, "{\"limit\": N}")?;
        let limit = History::check_limit(options.and_then(|o| o.limit), Self::DEFAULT_ENTRIES)?;
        Ok(Self {
            address,
            slot,
            limit,
        })
    }
}

/// A key `trellis_keyActivity` is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyName {
    /// An account key, by its address.
    Account(Address),
    /// A validator (or full-node) key, by its ed25519 public key.
    Validator(trellis_types::ValidatorId),
}

/// `trellis_keyActivity(key, {since, limit}?)`.
pub struct KeyActivity {
    pub key: KeyName,
    /// The block the key is suspected of misuse from, when the chain records none (or to
    /// split at another block).
    pub since: Option<trellis_types::Height>,
    /// Most of the account's writes to read (1 to [`History::MAX_ENTRIES`]).
    pub limit: usize,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyActivityOptions {
    since: Option<U64>,
    limit: Option<usize>,
}

impl Request for KeyActivity {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let what = "a key: an account address (20 bytes) or a validator's ed25519 public key (32 bytes), 0x-hex";
        let text: String = args.required(0, what)?;
        let bytes = text
            .strip_prefix("0x")
            .and_then(|digits| alloy_primitives::hex::decode(digits).ok())
            .ok_or_else(|| invalid(format!("{text:?} is not {what}")))?;
        let key = match bytes.len() {
            20 => KeyName::Account(Address::from_slice(&bytes)),
            32 => KeyName::Validator(trellis_types::ValidatorId(
                bytes.try_into().expect("32 bytes"),
            )),
            n => return Err(invalid(format!("{n} bytes is neither {what}"))),
        };
        let options: Option<KeyActivityOptions> =
            args.optional(1, "{\"since\": BLOCK, \"limit\": N}")?;
        let (since, limit) = options.map_or((None, None), |o| (o.since, o.limit));
        let limit = History::check_limit(limit, History::MAX_ENTRIES)?;
        Ok(Self {
            key,
            since: since.map(|block| trellis_types::Height(block.to())),
            limit,
        })
    }
}

/// `eth_subscribe(name, options?)`: what a subscription sends.
pub enum Subscription {
    NewHeads,
    Logs(LogFilter),
    /// Transaction hashes, or whole transactions when `full`.
    PendingTransactions {
        full: bool,
    },
}

impl Request for Subscription {
    const MAX: usize = 2;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let name: String = args.required(
            0,
            "a subscription name (newHeads, logs, newPendingTransactions)",
        )?;
        match name.as_str() {
            "newHeads" => {
                args.optional::<Value>(1, "nothing")?
                    .map_or(Ok(()), |_| Err(invalid("newHeads takes no options")))?;
                Ok(Self::NewHeads)
            }
            "logs" => {
                let value = args.optional::<Value>(1, "a filter object")?;
                let filter = LogFilter::parse(&value.unwrap_or_else(|| serde_json::json!({})))?;
                if !matches!(filter.blocks, Blocks::Range { .. })
                    || filter.blocks
                        != (Blocks::Range {
                            from: crate::params::BlockTag::Latest,
                            to: crate::params::BlockTag::Latest,
                        })
                {
                    return Err(invalid(
                        "a logs subscription follows new blocks: give address and topics only",
                    ));
                }
                Ok(Self::Logs(filter))
            }
            "newPendingTransactions" => {
                let full =
                    args.optional::<bool>(1, "true (whole transactions) or false (hashes)")?;
                Ok(Self::PendingTransactions {
                    full: full.unwrap_or(false),
                })
            }
            other => Err(invalid(format!(
                "unknown subscription {other:?}: use newHeads, logs or newPendingTransactions"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;

/// `trellis_alarms({after, limit}?)`.
pub struct AlarmsAfter {
    /// Alarms with ids above this (0: from the first kept).
    pub after: u64,
    pub limit: usize,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmsOptions {
    after: Option<u64>,
    limit: Option<usize>,
}

impl Request for AlarmsAfter {
    const MAX: usize = 1;
    fn read(args: &Args) -> Result<Self, ErrorObjectOwned> {
        let options: Option<AlarmsOptions> =
            args.optional(0, "{\"after\": ALARM_ID, \"limit\": N}")?;
        let (after, limit) = options.map_or((None, None), |o| (o.after, o.limit));
        let max = crate::alarms::MAX_ALARMS;
        let limit = match limit {
            None => max,
            Some(n) if (1..=max).contains(&n) => n,
            Some(n) => {
                return Err(invalid(format!(
                    "limit {n} is out of range: give 1 to {max}"
                )));
            }
        };
        Ok(Self {
            after: after.unwrap_or(0),
            limit,
        })
    }
}
