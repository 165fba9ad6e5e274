//! Reading each method's parameters, without a node: what is accepted and what each refusal says.

use super::*;
use serde_json::json;

/// `R` read from `params` (a JSON array or object), or the error's message.
fn read<R: Request>(params: Value) -> Result<R, String> {
    let text = params.to_string();
    R::parse(&Params::new(Some(&text))).map_err(|e| e.message().to_string())
}

fn refused<R: Request>(params: Value) -> String {
    match read::<R>(params) {
        Ok(_) => panic!("accepted"),
        Err(message) => message,
    }
}

const OWNER: &str = "0x00000000000000000000000000000000000000aa";

#[test]
fn an_account_query_names_a_wrong_parameter_and_its_position() {
    let request: AccountAt = read(json!([OWNER, "0x5"])).unwrap();
    assert_eq!(request.address, OWNER.parse::<Address>().unwrap());
    assert_eq!(
        request.block,
        BlockId::Tag(BlockTag::Number(trellis_types::Height(5)))
    );
    let request: AccountAt = read(json!([OWNER])).unwrap();
    assert_eq!(
        request.block,
        BlockId::Tag(BlockTag::Latest),
        "latest by default"
    );
    let message = refused::<AccountAt>(json!([123]));
    assert!(
        message.contains("expected an address as the first parameter"),
        "{message}"
    );
    let message = refused::<AccountAt>(json!([OWNER, "0x1", 5]));
    assert!(message.contains("too many parameters"), "{message}");
    let message = refused::<AccountAt>(json!({"address": OWNER}));
    assert!(message.contains("must be an array"), "{message}");
    let message = refused::<AccountAt>(json!([]));
    assert!(
        message.contains("missing the first parameter: an address"),
        "{message}"
    );
}

#[test]
fn blocks_by_number_or_hash_and_their_full_flag() {
    let BlockByNumber(request) = read(json!(["0x1"])).unwrap();
    assert!(!request.full, "hashes by default");
    let BlockByHash(request) = read(json!([format!("0x{}", "ab".repeat(32)), true])).unwrap();
    assert!(request.full);
    assert!(matches!(request.block, BlockId::Hash(_)));
    let message = refused::<BlockByNumber>(json!(["0x1", "yes"]));
    assert!(message.contains("true (full transactions)"), "{message}");
    let message = refused::<BlockByNumber>(json!(["0x1ffffffffffffffff", false]));
    assert!(message.contains("below 2^64"), "{message}");
    let message = refused::<BlockByHash>(json!(["0x1"]));
    assert!(message.contains("a block hash"), "{message}");
    let message = refused::<TransactionByNumber>(json!(["0x1", "0x1ffffffffffffffff"]));
    assert!(message.contains("transaction index"), "{message}");
}

#[test]
fn a_call_refuses_state_overrides() {
    let request: CallAt = read(json!([{"to": OWNER, "input": "0x01"}, "latest"])).unwrap();
    assert_eq!(request.call.to, Some(OWNER.parse().unwrap()));
    let message = refused::<CallAt>(json!([{"to": OWNER}, "latest", {}]));
    assert!(
        message.contains("state overrides are not supported"),
        "{message}"
    );
    let message = refused::<CallAt>(
        json!([{"value": "0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"}]),
    );
    assert!(message.contains("call object"), "{message}");
}

#[test]
fn fee_history_counts_and_percentiles_are_checked() {
    let request: FeeHistory = read(json!([4, "latest", [10.0, 90.0]])).unwrap();
    assert_eq!(request.count, 4, "a JSON number, as web3.py sends");
    let request: FeeHistory = read(json!(["0x4", "0x2"])).unwrap();
    assert_eq!(request.count, 4, "a hex quantity, as ethers sends");
    assert!(request.percentiles.is_none());
    let message = refused::<FeeHistory>(json!(["0x0", "latest"]));
    assert!(message.contains("out of range"), "{message}");
    let message = refused::<FeeHistory>(json!([1, "latest", [90.0, 10.0]]));
    assert!(message.contains("ascending"), "{message}");
    let message = refused::<FeeHistory>(json!([1, "latest", [101.0]]));
    assert!(message.contains("outside 0 to 100"), "{message}");
}

#[test]
fn proofs_and_histories_are_bounded() {
    let slots: Vec<String> = (0..=Proof::MAX_SLOTS).map(|i| format!("{i:#x}")).collect();
    let message = refused::<Proof>(json!([OWNER, slots]));
    assert!(message.contains("at most 1024 per call"), "{message}");
    let request: History = read(json!([OWNER])).unwrap();
    assert_eq!(
        (request.slot, request.limit),
        (None, History::DEFAULT_ENTRIES)
    );
    let message = refused::<History>(json!([OWNER, null, {"limit": 0}]));
    assert!(message.contains("out of range"), "{message}");
    let message = refused::<History>(json!([OWNER, null, {"limit": 5, "extra": 1}]));
    assert!(message.contains("{\"limit\": N}"), "{message}");
}

#[test]
fn simple_requests() {
    assert!(read::<NoParams>(json!([])).is_ok());
    assert!(read::<NoParams>(json!(null)).is_ok(), "absent parameters");
    assert!(refused::<NoParams>(json!([1])).contains("too many parameters"));
    let Sha3(data) = read(json!(["0x68656c6c6f"])).unwrap();
    assert_eq!(data.as_ref(), b"hello");
    let message = refused::<RawTransaction>(json!([5]));
    assert!(message.contains("one 0x-prefixed hex string"), "{message}");
    let FilterId(id) = read(json!(["0x1"])).unwrap();
    assert_eq!(id, "0x1");
    assert!(refused::<FilterId>(json!([5])).contains("filter id"));
    let message = refused::<Logs>(json!([{"topics": 5}]));
    assert!(message.contains("expected an array"), "{message}");
    assert!(refused::<Logs>(json!([])).contains("a filter object"));
}

#[test]
fn subscriptions_by_name_with_their_options() {
    assert!(matches!(
        read(json!(["newHeads"])),
        Ok(Subscription::NewHeads)
    ));
    assert!(matches!(
        read(json!(["newPendingTransactions", true])),
        Ok(Subscription::PendingTransactions { full: true })
    ));
    assert!(matches!(
        read(json!(["logs", {"address": OWNER}])),
        Ok(Subscription::Logs(_))
    ));
    let message = refused::<Subscription>(json!(["newHeads", {}]));
    assert!(message.contains("newHeads takes no options"), "{message}");
    let message = refused::<Subscription>(json!(["logs", {"fromBlock": "0x1"}]));
    assert!(message.contains("follows new blocks"), "{message}");
    let message = refused::<Subscription>(json!(["syncing"]));
    assert!(message.contains("unknown subscription"), "{message}");
}

#[test]
fn a_key_is_an_address_or_a_validator_key() {
    let request: KeyActivity = read(json!([OWNER])).unwrap();
    assert_eq!(request.key, KeyName::Account(OWNER.parse().unwrap()));
    assert_eq!((request.since, request.limit), (None, History::MAX_ENTRIES));
    let validator = format!("0x{}", "ab".repeat(32));
    let request: KeyActivity = read(json!([validator, {"since": "0x10"}])).unwrap();
    assert_eq!(
        request.key,
        KeyName::Validator(trellis_types::ValidatorId([0xab; 32]))
    );
    assert_eq!(request.since, Some(trellis_types::Height(16)));
    let message = refused::<KeyActivity>(json!(["0x1234"]));
    assert!(message.contains("2 bytes is neither"), "{message}");
    let message = refused::<KeyActivity>(json!(["ab"]));
    assert!(message.contains("is not a key"), "{message}");
    let message = refused::<KeyActivity>(json!([OWNER, {"limit": 1001}]));
    assert!(message.contains("out of range"), "{message}");
}
