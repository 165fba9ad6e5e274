//! Log filters (`eth_getLogs`, `eth_newFilter`, `logs` subscriptions): parsing a filter object
//! and matching a block's logs against it.

use crate::{
    error::invalid,
    format,
    params::{BlockTag, parse_tag},
};
use alloy_primitives::B256;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use trellis_chain::{LogQuery, StoredBlock, matching_logs};
use trellis_types::BlockHash;

/// At most four indexed topics exist per log (LOG0 to LOG4).
const MAX_TOPIC_POSITIONS: usize = 4;

/// Which blocks a filter covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocks {
    Range { from: BlockTag, to: BlockTag },
    Hash(BlockHash),
}

/// A log filter: which blocks, and which logs of them (emitting addresses, topics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFilter {
    pub blocks: Blocks,
    pub query: LogQuery,
}

fn parse_list<T: serde::de::DeserializeOwned>(
    value: &Value,
    what: &str,
) -> Result<Vec<T>, ErrorObjectOwned> {
    let parse = |v: &Value| {
        serde_json::from_value::<T>(v.clone())
            .map_err(|e| invalid(format!("invalid {what} {v}: {e}")))
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(values) => values.iter().map(parse).collect(),
        single => Ok(vec![parse(single)?]),
    }
}

impl LogFilter {
    /// Reads a filter object: `fromBlock`, `toBlock`, `blockHash`, `address` (one or a list),
    /// `topics` (per position: null, one topic, or a list of alternatives).
    pub fn parse(value: &Value) -> Result<Self, ErrorObjectOwned> {
        let Value::Object(fields) = value else {
            return Err(invalid(format!("expected a filter object, got {value}")));
        };
        if let Some(unknown) = fields.keys().find(|key| {
            !matches!(
                key.as_str(),
                "fromBlock" | "toBlock" | "blockHash" | "address" | "topics"
            )
        }) {
            return Err(invalid(format!(
                "unknown filter field {unknown:?}: use fromBlock, toBlock, blockHash, address and topics"
            )));
        }
        let tag = |name: &str| -> Result<BlockTag, ErrorObjectOwned> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(BlockTag::Latest),
                Some(Value::String(text)) => parse_tag(Some(text)),
                Some(other) => Err(invalid(format!(
                    "invalid {name} {other}: use a tag or a 0x-prefixed hex number"
                ))),
            }
        };
        let blocks = match fields.get("blockHash") {
            Some(hash) if !hash.is_null() => {
                if fields.contains_key("fromBlock") || fields.contains_key("toBlock") {
                    return Err(invalid(
                        "a filter takes either blockHash or fromBlock/toBlock, not both",
                    ));
                }
                let hash: B256 = serde_json::from_value(hash.clone())
                    .map_err(|e| invalid(format!("invalid blockHash {hash}: {e}")))?;
                Blocks::Hash(BlockHash(hash))
            }
            _ => Blocks::Range {
                from: tag("fromBlock")?,
                to: tag("toBlock")?,
            },
        };
        let addresses = fields
            .get("address")
            .map_or(Ok(Vec::new()), |v| parse_list(v, "address"))?;
        let topics: Vec<Vec<B256>> = match fields.get("topics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(positions)) => positions
                .iter()
                .map(|position| parse_list(position, "topic"))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(invalid(format!(
                    "invalid topics {other}: expected an array"
                )));
            }
        };
        if topics.len() > MAX_TOPIC_POSITIONS {
            return Err(invalid(format!(
                "{} topic positions given: logs have at most {MAX_TOPIC_POSITIONS}",
                topics.len()
            )));
        }
        Ok(Self {
            blocks,
            query: LogQuery { addresses, topics },
        })
    }

    /// The logs of `stored` that match, appended to `out`.
    pub fn collect(&self, stored: &StoredBlock, out: &mut Vec<alloy_rpc_types_eth::Log>) {
        out.extend(matching_logs(stored, &self.query).iter().map(format::log));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, Log, LogData, address, b256};
    use serde_json::json;

    const TRANSFER: B256 =
        b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
    const TOKEN: Address = address!("00000000000000000000000000000000000000aa");

    fn log(address: Address, topics: Vec<B256>) -> Log {
        Log {
            address,
            data: LogData::new_unchecked(topics, Default::default()),
        }
    }

    #[test]
    fn addresses_and_topics_with_null_and_or_positions() {
        let other = B256::repeat_byte(7);
        let filter = LogFilter::parse(&json!({
            "address": [TOKEN, address!("00000000000000000000000000000000000000bb")],
            "topics": [TRANSFER, null, [other, B256::repeat_byte(8)]],
        }))
        .unwrap();
        assert!(
            filter
                .query
                .matches(&log(TOKEN, vec![TRANSFER, B256::ZERO, other]))
        );
        assert!(
            !filter
                .query
                .matches(&log(TOKEN, vec![TRANSFER, B256::ZERO])),
            "third topic missing"
        );
        assert!(
            !filter
                .query
                .matches(&log(TOKEN, vec![other, B256::ZERO, other]))
        );
        assert!(
            !filter
                .query
                .matches(&log(Address::ZERO, vec![TRANSFER, B256::ZERO, other]))
        );
        let any = LogFilter::parse(&json!({})).unwrap();
        assert!(any.query.matches(&log(Address::ZERO, vec![])));
    }

    #[test]
    fn bad_filters_are_refused_precisely() {
        let error = |v: Value| LogFilter::parse(&v).unwrap_err().message().to_string();
        assert!(error(json!({"fromBlock": "0x1", "blockHash": B256::ZERO})).contains("not both"));
        assert!(error(json!({"topics": [null, null, null, null, null]})).contains("at most 4"));
        assert!(error(json!({"address": "0x12"})).contains("invalid address"));
        assert!(error(json!({"fromBlock": 5})).contains("invalid fromBlock"));
        assert!(error(json!({"limit": 5})).contains("unknown filter field"));
        assert!(error(json!([])).contains("filter object"));
    }
}
