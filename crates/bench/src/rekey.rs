//! `trellis bench rekey`: a data key rotated under an encrypted state store that keeps
//! committing blocks. How fast the node's own background pass (`trellis_node::reencrypt`,
//! pauses included) moves the data to the new key, and what each block's commit costs while it
//! does, against before.

use crate::state::{Random, StateBenchError, commit, populate, updates};
use commonware_runtime::{Spawner as _, Supervisor as _, tokio};
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use trellis_node::reencrypt::Pass;
use trellis_state::{QmdbConfig, QmdbStore, StateStore as _};
use trellis_vault::{KeyId, Keyring, Vaulted};

#[derive(Debug, Clone)]
pub struct RekeyConfig {
    pub accounts: u64,
    pub updates_per_block: usize,
    pub page_cache_bytes: usize,
    /// Blocks committed before the rotation, for the comparison.
    pub blocks_before: usize,
}

#[derive(Debug)]
pub struct RekeyReport {
    pub pass: Pass,
    /// Each block's commit (stage, apply, sync) before the rotation.
    pub before: Vec<Duration>,
    /// Each block's commit while the pass ran.
    pub during: Vec<Duration>,
}

/// Populates an encrypted store in `dir` (the storage of `context`), commits blocks, then
/// rotates to `rotated` (the keyring's key 1 and a new current key 2) and runs a re-encryption
/// pass while blocks keep being committed; fails if any blob is left under key 1.
pub async fn run(
    context: Vaulted<tokio::Context>,
    dir: &Path,
    keyring: &Keyring,
    rotated: Keyring,
    config: &RekeyConfig,
    mut progress: impl FnMut(&str),
) -> Result<RekeyReport, StateBenchError> {
    let mut state_config = QmdbConfig::new("bench");
    state_config.page_cache_bytes = config.page_cache_bytes;
    let mut store = QmdbStore::open(context.child("state"), &state_config).await?;
    if store.committed().is_some() {
        return Err(StateBenchError::NotEmpty);
    }
    populate(&mut store, config.accounts, &mut progress).await?;
    let (accounts, per_block) = (config.accounts, config.updates_per_block);
    let mut random = Random(7);
    let mut before = Vec::with_capacity(config.blocks_before);
    for _ in 0..config.blocks_before {
        let changes = updates(&mut random, accounts, per_block);
        let start = Instant::now();
        commit(&mut store, &changes).await?;
        before.push(start.elapsed());
    }
    progress(&format!(
        "committed {} blocks; rotating the data key",
        before.len()
    ));

    keyring.update(rotated);
    let moved = Arc::new(AtomicBool::new(false));
    let committer = context.child("committer").spawn({
        let moved = moved.clone();
        move |_| async move {
            let mut during = Vec::new();
            while !moved.load(Ordering::Acquire) {
                let changes = updates(&mut random, accounts, per_block);
                let start = Instant::now();
                commit(&mut store, &changes).await?;
                during.push(start.elapsed());
            }
            Ok::<_, StateBenchError>(during)
        }
    });
    let pass = trellis_node::reencrypt::pass(&context, dir).await;
    moved.store(true, Ordering::Release);
    let during = committer.await.map_err(|_| StateBenchError::Stopped)??;
    // Nothing is left under the old key (blobs made meanwhile are under the new one).
    let census = trellis_vault::census(dir).map_err(StateBenchError::Census)?;
    let left: usize = census
        .by_key
        .iter()
        .filter(|(key, _)| **key != Some(KeyId(2)))
        .map(|(_, tally)| tally.blobs)
        .sum();
    if left > 0 || census.moving.blobs > 0 {
        return Err(StateBenchError::NotMoved { left });
    }
    Ok(RekeyReport {
        pass,
        before,
        during,
    })
}
