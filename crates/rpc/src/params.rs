//! Reading request parameters: block tags and numbers, block hashes, call arguments.

use crate::error::invalid;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;
use trellis_types::{BlockHash, Height};

/// A block named by tag or number. Every finalized block is final in BFT, so `safe` and
/// `finalized` are `latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockTag {
    Latest,
    Pending,
    Earliest,
    Number(Height),
}

impl BlockTag {
    /// The height it names when the latest block is `latest`.
    pub fn height(self, latest: Height) -> Height {
        match self {
            Self::Latest | Self::Pending => latest,
            Self::Earliest => Height::GENESIS,
            Self::Number(height) => height,
        }
    }
}

/// A block named by tag, number or hash (EIP-1898).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    Tag(BlockTag),
    Hash(BlockHash),
}

pub fn parse_tag(tag: Option<&str>) -> Result<BlockTag, ErrorObjectOwned> {
    match tag {
        None | Some("latest" | "safe" | "finalized") => Ok(BlockTag::Latest),
        Some("pending") => Ok(BlockTag::Pending),
        Some("earliest") => Ok(BlockTag::Earliest),
        Some(text) => parse_quantity(text).map(|n| BlockTag::Number(Height(n))).ok_or_else(|| {
            invalid(format!(
                "invalid block number or tag {text:?}: use latest, pending, safe, finalized, earliest or a 0x-prefixed hex number below 2^64"
            ))
        }),
    }
}

/// A `0x`-prefixed hex quantity that fits 64 bits.
fn parse_quantity(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// A block tag, number, hash, or EIP-1898 object (`{"blockNumber": …}` or `{"blockHash": …}`).
pub fn parse_block_id(value: &serde_json::Value) -> Result<BlockId, ErrorObjectOwned> {
    match value {
        serde_json::Value::String(text) if text.len() == 66 => {
            let hash: B256 = text
                .parse()
                .map_err(|e| invalid(format!("invalid block hash {text:?}: {e}")))?;
            Ok(BlockId::Hash(BlockHash(hash)))
        }
        serde_json::Value::String(text) => Ok(BlockId::Tag(parse_tag(Some(text))?)),
        serde_json::Value::Object(fields) => {
            if let Some(hash) = fields.get("blockHash") {
                let hash: B256 = serde_json::from_value(hash.clone())
                    .map_err(|e| invalid(format!("invalid blockHash: {e}")))?;
                return Ok(BlockId::Hash(BlockHash(hash)));
            }
            match fields.get("blockNumber").and_then(|n| n.as_str()) {
                Some(number) => Ok(BlockId::Tag(parse_tag(Some(number))?)),
                None => Err(invalid(
                    "a block object needs \"blockNumber\" or \"blockHash\"",
                )),
            }
        }
        other => Err(invalid(format!(
            "invalid block {other}: use a tag, a 0x-prefixed hex number or a block hash"
        ))),
    }
}

/// A method's positional parameters.
pub struct Args(Vec<serde_json::Value>);

const POSITIONS: [&str; 4] = ["first", "second", "third", "fourth"];

impl Args {
    /// The parameters, which must be an array (or absent) of at most `max` values.
    pub fn parse(params: &Params<'_>, max: usize) -> Result<Self, ErrorObjectOwned> {
        let values: Option<Vec<serde_json::Value>> = params
            .parse()
            .map_err(|e| invalid(format!("parameters must be an array: {e}")))?;
        let values = values.unwrap_or_default();
        if values.len() > max {
            return Err(invalid(format!(
                "too many parameters: {} given, this method takes at most {max}",
                values.len()
            )));
        }
        Ok(Self(values))
    }

    fn position(index: usize) -> &'static str {
        POSITIONS.get(index).copied().unwrap_or("next")
    }

    /// Parameter `index`, which must be present.
    pub fn required<T: DeserializeOwned>(
        &self,
        index: usize,
        what: &str,
    ) -> Result<T, ErrorObjectOwned> {
        let position = Self::position(index);
        let value = self
            .0
            .get(index)
            .ok_or_else(|| invalid(format!("missing the {position} parameter: {what}")))?;
        serde_json::from_value(value.clone())
            .map_err(|e| invalid(format!("expected {what} as the {position} parameter: {e}")))
    }

    /// Parameter `index`; `None` if absent or null.
    pub fn optional<T: DeserializeOwned>(
        &self,
        index: usize,
        what: &str,
    ) -> Result<Option<T>, ErrorObjectOwned> {
        match self.0.get(index) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(_) => self.required(index, what).map(Some),
        }
    }

    /// Block parameter `index` (default `latest`).
    pub fn block(&self, index: usize) -> Result<BlockId, ErrorObjectOwned> {
        match self.0.get(index) {
            None | Some(serde_json::Value::Null) => Ok(BlockId::Tag(BlockTag::Latest)),
            Some(value) => parse_block_id(value),
        }
    }
}

/// The arguments of `eth_call` and `eth_estimateGas` (geth's transaction arguments). Fee fields
/// are accepted and ignored: calls do not pay for gas.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallArgs {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub gas: Option<U64>,
    // Fee fields and the nonce are parsed (a malformed one is refused) but do not apply.
    #[allow(dead_code)]
    pub gas_price: Option<U256>,
    #[allow(dead_code)]
    pub max_fee_per_gas: Option<U256>,
    #[allow(dead_code)]
    pub max_priority_fee_per_gas: Option<U256>,
    pub value: Option<U256>,
    #[allow(dead_code)]
    pub nonce: Option<U64>,
    pub data: Option<Bytes>,
    pub input: Option<Bytes>,
    pub chain_id: Option<U64>,
}

impl CallArgs {
    /// The request to execute, with gas capped at `gas_cap`.
    pub fn request(
        &self,
        chain_id: u64,
        gas_cap: u64,
    ) -> Result<trellis_execution::CallRequest, ErrorObjectOwned> {
        let data = match (&self.input, &self.data) {
            (Some(input), Some(data)) if input != data => {
                return Err(invalid(
                    "both \"data\" and \"input\" are set and differ: pass the call data once, in \"input\"",
                ));
            }
            (Some(bytes), _) | (None, Some(bytes)) => bytes.clone(),
            (None, None) => Bytes::new(),
        };
        if let Some(id) = self.chain_id
            && id.to::<u64>() != chain_id
        {
            return Err(invalid(format!(
                "chainId {id} is not this chain's ({chain_id})"
            )));
        }
        Ok(trellis_execution::CallRequest {
            from: self.from,
            to: self.to,
            data,
            value: self.value.unwrap_or_default(),
            gas: Some(self.gas.map_or(gas_cap, |gas| gas.to::<u64>().min(gas_cap))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_numbers_and_hashes() {
        assert_eq!(parse_tag(Some("safe")).unwrap(), BlockTag::Latest);
        assert_eq!(
            parse_tag(Some("0x10")).unwrap(),
            BlockTag::Number(Height(16))
        );
        assert!(parse_tag(Some("0x")).is_err());
        assert!(parse_tag(Some("16")).is_err());
        assert!(parse_tag(Some("0x10000000000000000")).is_err());
        let hash = format!("0x{}", "ab".repeat(32));
        assert_eq!(
            parse_block_id(&serde_json::json!(hash)).unwrap(),
            BlockId::Hash(BlockHash(hash.parse().unwrap()))
        );
        assert_eq!(
            parse_block_id(&serde_json::json!({"blockNumber": "earliest"})).unwrap(),
            BlockId::Tag(BlockTag::Earliest)
        );
        assert!(parse_block_id(&serde_json::json!(5)).is_err());
        assert!(parse_block_id(&serde_json::json!({})).is_err());
    }

    #[test]
    fn call_data_in_input_or_data_but_not_both_differently() {
        let args: CallArgs = serde_json::from_value(serde_json::json!({
            "input": "0x01", "data": "0x02"
        }))
        .unwrap();
        assert!(args.request(1, 100).is_err());
        let args: CallArgs =
            serde_json::from_value(serde_json::json!({"data": "0x01", "gas": "0xffff"})).unwrap();
        let request = args.request(1, 100).unwrap();
        assert_eq!(request.data.as_ref(), &[1]);
        assert_eq!(request.gas, Some(100), "gas is capped");
    }
}
