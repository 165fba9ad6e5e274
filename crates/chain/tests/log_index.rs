//! The log index on a real block store: across section boundaries, for addresses, topics at
//! their positions, OR lists and no condition at all, it names exactly the blocks with matching
//! logs, before and after the store is reopened (the open section rebuilt from the blocks).

mod common;

use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use std::time::Duration;
use trellis_bench::logs::{
    contract, recipient_topic, synthetic_block, transfer_log, transfer_topic,
};
use trellis_chain::{BlockStore, LogQuery, LogsError, StoredBlock, log_index::SECTION_BLOCKS};
use trellis_types::{BlockHash, BlockLimits, Height};

/// Block `h` holds a transfer of contract `h % 3` to recipient `h % 50`; every 100th block also
/// one of contract 9 to recipient 0.
fn block(height: u64, parent: BlockHash) -> StoredBlock {
    let mut logs = vec![transfer_log(
        contract(height % 3),
        recipient_topic(height % 50),
        height,
    )];
    if height.is_multiple_of(100) {
        logs.push(transfer_log(contract(9), recipient_topic(0), height));
    }
    synthetic_block(Height(height), parent, logs)
}

async fn store_blocks(store: &BlockStore<deterministic::Context>, heights: std::ops::Range<u64>) {
    let mut parent = common::parent_at(store, heights.start).await;
    let mut batch = Vec::new();
    for height in heights {
        let stored = block(height, parent);
        parent = stored.block.hash();
        batch.push(stored);
        // Mostly in batches, some one by one, as catching up and finalizing do.
        if batch.len() == 97 || height % 7 == 0 {
            store.put_many(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.put_many(&batch).await.unwrap();
}

/// Which heights a query must name.
type Expected = Box<dyn Fn(u64) -> bool>;

fn queries() -> Vec<(LogQuery, Expected)> {
    let transfer = vec![transfer_topic()];
    vec![
        (
            LogQuery {
                addresses: vec![contract(1)],
                topics: vec![transfer.clone(), vec![], vec![recipient_topic(7)]],
            },
            Box::new(|h| h % 3 == 1 && h % 50 == 7),
        ),
        (
            LogQuery {
                addresses: vec![contract(9), contract(8)],
                topics: vec![],
            },
            Box::new(|h| h.is_multiple_of(100)),
        ),
        (
            LogQuery {
                addresses: vec![],
                topics: vec![vec![], vec![], vec![recipient_topic(7), recipient_topic(8)]],
            },
            Box::new(|h| h % 50 == 7 || h % 50 == 8),
        ),
        (
            // A recipient topic asked at the sender's position matches nothing.
            LogQuery {
                addresses: vec![],
                topics: vec![vec![], vec![recipient_topic(7)]],
            },
            Box::new(|_| false),
        ),
        (LogQuery::default(), Box::new(|_| true)),
    ]
}

async fn check(store: &BlockStore<deterministic::Context>, last: u64) {
    let ranges = [
        (0, last),
        (SECTION_BLOCKS - 10, SECTION_BLOCKS + 10),
        (2 * SECTION_BLOCKS - 1, last),
        (last, last),
    ];
    for (query, matches) in queries() {
        for (from, to) in ranges {
            let candidates = store
                .log_candidates(&query, Height(from), Height(to))
                .await
                .unwrap();
            let expected: Vec<Height> = (from..=to).filter(|h| matches(*h)).map(Height).collect();
            assert_eq!(candidates, expected, "{query:?} over {from}..={to}");
            let found = store
                .logs(&query, Height(from), Height(to), usize::MAX)
                .await
                .unwrap();
            assert!(found.iter().all(|f| query.matches(&f.log)));
            let heights: Vec<Height> = found.iter().map(|f| f.height).collect();
            let mut distinct = heights.clone();
            distinct.dedup();
            assert_eq!(distinct, expected, "{query:?} over {from}..={to}");
        }
    }
}

fn runner() -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(3)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

#[test]
fn the_log_index_names_exactly_the_matching_blocks_across_sections_and_restarts() {
    let last = 2 * SECTION_BLOCKS + 300;
    let (_, checkpoint) = runner().start_and_recover(|context| async move {
        let store = BlockStore::open(context.child("store"), "t", BlockLimits::default())
            .await
            .unwrap();
        store_blocks(&store, 0..last + 1).await;
        check(&store, last).await;
        // Where each log is: the second log of every 100th block has index 1.
        let query = LogQuery {
            addresses: vec![contract(9)],
            topics: vec![],
        };
        let found = store
            .logs(&query, Height(100), Height(100), 10)
            .await
            .unwrap();
        assert_eq!(
            (found.len(), found[0].tx_index, found[0].log_index),
            (1, 1, 1)
        );
        let too_many = store.logs(&query, Height(0), Height(last), 10).await;
        assert!(matches!(too_many, Err(LogsError::TooMany { max: 10 })));
    });
    runner_from(checkpoint, last);
}

/// Reopens the store: same answers, then more blocks complete the open section.
fn runner_from(checkpoint: deterministic::Checkpoint, last: u64) {
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let store = BlockStore::open(context.child("store"), "t", BlockLimits::default())
            .await
            .unwrap();
        check(&store, last).await;
        let more = 3 * SECTION_BLOCKS + 5;
        store_blocks(&store, last + 1..more + 1).await;
        check(&store, more).await;
    });
}
