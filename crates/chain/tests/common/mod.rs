//! Helpers the block-store tests share.

use trellis_chain::BlockStore;
use trellis_types::{BlockHash, Height};

/// The hash a block at `height` names as its parent: the stored block below it (the default
/// hash for genesis).
pub async fn parent_at(
    store: &BlockStore<commonware_runtime::deterministic::Context>,
    height: u64,
) -> BlockHash {
    match height {
        0 => BlockHash::default(),
        h => store
            .block(Height(h - 1))
            .await
            .unwrap()
            .expect("the block below is stored")
            .block
            .hash(),
    }
}
