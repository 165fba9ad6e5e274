//! The transaction index on a real block store: a transaction is found the moment its block is
//! stored (its entries become durable later, behind the chain), and still after a crash cut the
//! index's writes short, or after the store was closed and opened again in the same process.

mod common;

use alloy_primitives::{TxHash, keccak256};
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use std::time::Duration;
use trellis_bench::logs::{contract, recipient_topic, synthetic_block, transfer_log};
use trellis_chain::{BlockStore, StoredBlock, TxLocation};
use trellis_types::{BlockHash, BlockLimits, Height};

/// Block `h` holds `h % 4` transactions: every fourth block is empty.
fn block(height: u64, parent: BlockHash) -> StoredBlock {
    let logs = (0..height % 4)
        .map(|i| transfer_log(contract(i), recipient_topic(height), i))
        .collect();
    synthetic_block(Height(height), parent, logs)
}

async fn open(
    context: &deterministic::Context,
    label: &'static str,
) -> BlockStore<deterministic::Context> {
    BlockStore::open(context.child(label), "t", BlockLimits::default())
        .await
        .unwrap()
}

/// Stores blocks `heights` one call at a time (as finalizing does), each checked to be found
/// as soon as `put` returns.
async fn store_blocks(store: &BlockStore<deterministic::Context>, heights: std::ops::Range<u64>) {
    let mut parent = common::parent_at(store, heights.start).await;
    for height in heights {
        let stored = block(height, parent);
        parent = stored.block.hash();
        store.put(&stored).await.unwrap();
        check_block(store, &stored).await;
    }
}

async fn check_block(store: &BlockStore<deterministic::Context>, stored: &StoredBlock) {
    for (i, receipt) in stored.receipts.iter().enumerate() {
        let found = store.transaction(&receipt.tx_hash).await.unwrap();
        let expected = TxLocation {
            height: stored.block.height(),
            index: i as u32,
        };
        assert_eq!(
            found,
            Some(expected),
            "transaction {i} of block {}",
            stored.block.height()
        );
    }
}

/// Every transaction of blocks `0..=last` is found where it is; one never stored is not.
async fn check_all(store: &BlockStore<deterministic::Context>, last: u64) {
    for height in 0..=last {
        let stored = store.block(Height(height)).await.unwrap().unwrap();
        check_block(store, &stored).await;
    }
    let unknown = TxHash::from(keccak256(b"never finalized"));
    assert_eq!(store.transaction(&unknown).await.unwrap(), None);
}

fn runner() -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(5)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

#[test]
fn transactions_are_found_once_stored_and_after_a_crash_or_a_reopen() {
    let last = 300;
    // The run ends (a crash: unsynced writes resolved as a crash would) right after the last
    // block is stored, so its entries, at least, were never written by the index's writer.
    let (_, checkpoint) = runner().start_and_recover(|context| async move {
        let store = open(&context, "first").await;
        store_blocks(&store, 0..last + 1).await;
        check_all(&store, last).await;
    });
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let store = open(&context, "after_crash").await;
        check_all(&store, last).await;
        let more = last + 50;
        store_blocks(&store, last + 1..more + 1).await;
        check_all(&store, more).await;
        // Closed and opened again in the same process, as `bench logs` does.
        store.close().await.unwrap();
        let store = open(&context, "reopened").await;
        check_all(&store, more).await;
    });
}
