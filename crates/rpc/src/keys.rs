//! `trellis_keyActivity(key, {since, limit}?)`: what a key is on chain and every record tied to
//! it, split at the block it is suspected of misuse from, with what can be done about it.
//!
//! - An account key: the transactions it signed, found through the state's history of the
//!   account (a transaction its key signs always writes its nonce), each with its block; the
//!   writes themselves come proven against the latest state root (`signed`, a history).
//! - A validator key: its term, successor and reported compromise, the blocks it proposed
//!   (their headers name it) and the finalize votes it cast (in the archived finalization
//!   certificates, each the proof), within its term.
//!
//! What the node does not record yet is named in `notRecorded` rather than left out silently.

use crate::{
    error::{Answer, internal},
    requests::{KeyActivity, KeyName},
};
use alloy_primitives::{Address, B256, U64};
use serde::Serialize;
use std::sync::Arc;
use trellis_chain::Runtime;
use trellis_governance::{
    AccountRecord, AccountStatus, NodeRole, ValidatorLifecycle, reporter, status_setter,
};
use trellis_state::HistoryValue;
use trellis_types::{Epoch, Height, ValidatorId};

/// Most blocks of a validator's term one call reads (the newest).
pub const MAX_SCANNED_BLOCKS: u64 = 5_000;

/// The answer.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    key: String,
    /// "account", "validator" or "full node".
    kind: &'static str,
    /// What the registry records of it; `None`: nothing.
    record: Option<Record>,
    /// Records from before this block are `before`, the rest `after`; `None`: no compromise
    /// known or asked, all are `before`.
    split_at: Option<U64>,
    before: Records,
    after: Records,
    /// Older records exist than the ones listed (the limit, or the blocks scanned).
    truncated: bool,
    /// An account's writes made by the transactions it signed (both sides), each proven
    /// against `stateRoot`: what `trellis verify history` checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    signed: Option<trellis_state::History>,
    /// Kinds of record the node does not keep yet, and why.
    not_recorded: Vec<&'static str>,
    /// What can be done, given its status.
    measures: Vec<String>,
    block_number: U64,
    block_hash: B256,
    state_root: B256,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    status: String,
    /// The block its status holds from (an account's), or the first epoch of its term.
    since: U64,
    /// The epoch its term ends before (a validator's); `None`: open.
    #[serde(skip_serializing_if = "Option::is_none")]
    until_epoch: Option<U64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compromised_since: Option<U64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    successor: Option<String>,
    /// Who set the status (an account's).
    #[serde(skip_serializing_if = "Option::is_none")]
    set: Option<String>,
    /// The first block an account's registration no longer covers; `None`: no end.
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<U64>,
}

#[derive(Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Records {
    transactions: Vec<SignedTransaction>,
    blocks: Vec<ProposedBlock>,
    votes: Vec<Vote>,
}

/// A finalize vote of a validator key, inside a block's finalization certificate (the proof:
/// its signatures verify under the chain's namespace for the epoch's validators).
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Vote {
    block_number: U64,
    block_hash: B256,
    epoch: U64,
    view: U64,
    certificate: alloy_primitives::Bytes,
}

/// A transaction the account key signed (its write to the account is proven in `signed`).
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedTransaction {
    block_number: U64,
    block_hash: B256,
    transaction_index: U64,
    transaction_hash: B256,
    nonce: U64,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProposedBlock {
    block_number: U64,
    block_hash: B256,
    view: U64,
}

const NO_AUDIT_LOG: &str = "p2p sessions it opened: nodes keep no audit log of their links yet";
const NO_DATA_KEYS: &str =
    "data keys it wrapped: none; data at rest is not encrypted under node keys yet";
const NO_CERTIFICATES: &str = "votes it signed in finalization certificates: this node serves no certificates (a full node's follower does not archive them for JSON-RPC); ask a validator";

pub async fn key_activity<E: Runtime>(
    rpc: Arc<crate::Rpc<E>>,
    request: KeyActivity,
) -> Answer<Activity> {
    match request.key {
        KeyName::Account(address) => account(&rpc, address, request.since, request.limit).await,
        KeyName::Validator(key) => validator(&rpc, key, request.since).await,
    }
}

async fn account<E: Runtime>(
    rpc: &crate::Rpc<E>,
    address: Address,
    since: Option<Height>,
    limit: usize,
) -> Answer<Activity> {
    let chain = &rpc.chain;
    let record = chain.account_record(&address).await.map_err(internal)?;
    let split = since.or(record.as_ref().and_then(|r| r.compromised_since));
    let (header, hash, mut history) = chain
        .history(&address, None, limit)
        .await
        .map_err(internal)?;
    let mut activity = Activity {
        key: address.to_checksum(None),
        kind: "account",
        record: record.as_ref().map(account_record),
        split_at: split.map(|h| U64::from(h.get())),
        before: Records::default(),
        after: Records::default(),
        truncated: history.truncated,
        signed: None,
        not_recorded: Vec::new(),
        measures: account_measures(&address, record.as_ref(), split),
        block_number: U64::from(header.height.get()),
        block_hash: hash.0,
        state_root: header.state_root.0,
    };
    let mut signed_entries = Vec::new();
    for mut entry in std::mem::take(&mut history.entries) {
        let (Some(index), HistoryValue::Account { nonce, .. }) =
            (entry.transaction_index, &entry.value)
        else {
            continue;
        };
        let nonce = *nonce;
        let height = Height(entry.block_number.to());
        let (stored, receipt) = crate::proofs::written_by(chain, height, index.to()).await?;
        // A write by someone else's transaction (a transfer to it, a call): not signed by it.
        if receipt.from != address {
            continue;
        }
        let signed = SignedTransaction {
            block_number: entry.block_number,
            block_hash: stored.block.hash().0,
            transaction_index: index,
            transaction_hash: receipt.tx_hash,
            // The write left the nonce one past the transaction's.
            nonce: nonce.saturating_sub(U64::from(1)),
        };
        side(&mut activity, split, height).transactions.push(signed);
        entry.transaction_hash = Some(receipt.tx_hash);
        signed_entries.push(entry);
    }
    history.entries = signed_entries;
    activity.signed = Some(history);
    Ok(activity)
}

fn side(activity: &mut Activity, split: Option<Height>, height: Height) -> &mut Records {
    match split {
        Some(split) if height >= split => &mut activity.after,
        _ => &mut activity.before,
    }
}

fn account_record(record: &AccountRecord) -> Record {
    Record {
        status: record.status.to_string(),
        since: U64::from(record.status_since.get()),
        until_epoch: None,
        compromised_since: record.compromised_since.map(|h| U64::from(h.get())),
        successor: record.successor.map(|a| a.to_checksum(None)),
        set: Some(status_setter(record.status_by)),
        valid_until: record.window.until.map(|h| U64::from(h.get())),
    }
}

fn account_measures(
    address: &Address,
    record: Option<&AccountRecord>,
    split: Option<Height>,
) -> Vec<String> {
    let from = split.map_or("BLOCK".to_string(), |h| h.get().to_string());
    let Some(record) = record else {
        return vec![format!(
            "{address} is not registered: on a governed chain it cannot transact; on an open chain, move its funds to a new key"
        )];
    };
    let mut measures = Vec::new();
    match record.status {
        AccountStatus::Normal | AccountStatus::Frozen => {
            measures.push(format!(
                "its holder reports it leaked: `trellis keys revoke --key KEY --compromised-since {from}`; or the council: `trellis gov propose retire-account {address} --compromised-since {from}`"
            ));
            measures.push(format!(
                "stop it at once while deciding: `trellis gov propose freeze {address}`"
            ));
            measures.push(format!(
                "hand its identity's roles to a new key: `trellis keys rotate --new NEW`, or the council: `trellis gov propose rotate-account {address} NEW PROOF`"
            ));
        }
        status => {
            measures.push(format!(
                "it is {status} since block {} ({}): every node refuses its transactions, at admission and in execution",
                record.status_since.get(),
                status_setter(record.status_by)
            ));
            if let Some(successor) = record.successor {
                measures.push(format!(
                    "its registration moved to {successor}; check that key's activity too"
                ));
            }
        }
    }
    if split.is_some() {
        measures.push(
            "review the transactions listed under `after`: each names its block and proves the write to the account against the state root returned".into(),
        );
    }
    measures
}

async fn validator<E: Runtime>(
    rpc: &crate::Rpc<E>,
    key: ValidatorId,
    since: Option<Height>,
) -> Answer<Activity> {
    let chain = &rpc.chain;
    let length = chain.epoch_length();
    let (header, hash) = chain.latest();
    let recorded = chain.validator_lifecycle(&key).await.map_err(internal)?;
    let genesis_validator = chain.genesis().validators.contains(&key);
    // A chain without a registry keeps its genesis validators for ever.
    let term = match &recorded {
        Some(lifecycle) => Some((lifecycle.record.term.from, lifecycle.record.term.until)),
        None if genesis_validator => Some((Epoch(0), None)),
        None => None,
    };
    let compromised_since = recorded
        .and_then(|lifecycle| lifecycle.compromise)
        .map(|compromise| compromise.since);
    let since = since.or(compromised_since);
    let running = length.epoch_of(header.height);
    let record = recorded
        .as_ref()
        .map(|lifecycle| validator_record(lifecycle, running));
    let mut activity = Activity {
        key: format!("0x{}", alloy_primitives::hex::encode(key.0)),
        kind: match recorded.map(|lifecycle| lifecycle.record.role) {
            Some(NodeRole::FullNode) => "full node",
            _ => "validator",
        },
        record,
        split_at: since.map(|h| U64::from(h.get())),
        before: Records::default(),
        after: Records::default(),
        truncated: false,
        signed: None,
        not_recorded: match rpc.certificates {
            Some(_) => vec![NO_AUDIT_LOG, NO_DATA_KEYS],
            None => vec![NO_CERTIFICATES, NO_AUDIT_LOG, NO_DATA_KEYS],
        },
        measures: validator_measures(&key, recorded.as_ref()),
        block_number: U64::from(header.height.get()),
        block_hash: hash.0,
        state_root: header.state_root.0,
    };
    let Some((from, until)) = term else {
        return Ok(activity);
    };
    let first = length.last_before(from).map_or(Height(1), Height::next);
    let last = until
        .and_then(|until| length.last_before(until))
        .map_or(header.height, |end| end.min(header.height));
    let lowest = Height(last.get().saturating_sub(MAX_SCANNED_BLOCKS - 1)).max(first);
    activity.truncated = lowest > first;
    let mut height = lowest;
    while height <= last {
        let stored = chain.block(height).await.map_err(internal)?;
        if let Some(stored) = stored.filter(|s| s.block.header().proposer == key) {
            let proposed = ProposedBlock {
                block_number: U64::from(height.get()),
                block_hash: stored.block.hash().0,
                view: U64::from(stored.block.header().view.0),
            };
            side(&mut activity, since, height).blocks.push(proposed);
        }
        if let Some(vote) = vote_of(rpc, &key, height).await {
            side(&mut activity, since, height).votes.push(vote);
        }
        height = height.next();
    }
    Ok(activity)
}

/// `key`'s finalize vote in the certificate of the block at `height`, if it is there.
async fn vote_of<E: Runtime>(
    rpc: &crate::Rpc<E>,
    key: &ValidatorId,
    height: Height,
) -> Option<Vote> {
    let certificates = rpc.certificates.as_ref()?;
    let finalization = certificates.0.finalization(height).await?;
    finalization.signers.contains(key).then(|| Vote {
        block_number: U64::from(height.get()),
        block_hash: finalization.block,
        epoch: U64::from(finalization.epoch),
        view: U64::from(finalization.view),
        certificate: finalization.encoded,
    })
}

/// `lifecycle` as the answer shows it, as of epoch `running`.
fn validator_record(lifecycle: &ValidatorLifecycle, running: Epoch) -> Record {
    let ValidatorLifecycle {
        record,
        successor,
        compromise,
    } = lifecycle;
    let status = match (record.term.until, compromise, successor) {
        (_, Some(_), _) => "reported compromised",
        (Some(_), None, Some(_)) => "rotated",
        // Its term ends at an epoch still to come (removed by vote, or set to expire).
        (Some(until), None, None) if until > running => "expiring",
        (Some(_), None, None) => "removed",
        (None, None, _) => "active",
    };
    Record {
        status: status.into(),
        since: U64::from(record.term.from.0),
        until_epoch: record.term.until.map(|e| U64::from(e.0)),
        compromised_since: compromise.map(|c| U64::from(c.since.get())),
        successor: successor.map(|s| format!("0x{}", alloy_primitives::hex::encode(s.0))),
        set: compromise.map(|c| format!("in block {} {}", c.reported, reporter(c.by))),
        valid_until: None,
    }
}

fn validator_measures(key: &ValidatorId, lifecycle: Option<&ValidatorLifecycle>) -> Vec<String> {
    let hex = format!("0x{}", alloy_primitives::hex::encode(key.0));
    let mut measures = Vec::new();
    match lifecycle.and_then(|l| l.record.term.until) {
        Some(epoch) => measures.push(format!(
            "it leaves (or left) the validator set before epoch {}: no node accepts its votes or links from then on",
            epoch.0
        )),
        None => measures.extend([
            "its operator moves the seat to a new key at the next epoch: `trellis keys rotate-validator --validator KEY --new NEW --p2p ADDR`".to_string(),
            format!(
                "if it leaked: its operator reports it (`trellis keys report-validator --validator {hex} --compromised-since BLOCK [--new NEW --p2p ADDR]`), or the council (`trellis gov propose compromise-validator {hex} --compromised-since BLOCK`); it leaves the set at the next epoch"
            ),
            format!(
                "or the council removes it from the next epoch: `trellis gov propose remove-validator {hex}`"
            ),
        ]),
    }
    if lifecycle.is_some_and(|l| l.compromise.is_some()) {
        measures.push(
            "until it leaves, its votes still count in its epochs' quorums: the chain stays safe while fewer than a third of the validators are faulty; the votes and blocks listed `after` are the ones to examine".into(),
        );
    }
    measures
}
