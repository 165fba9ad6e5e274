//! The version of the state's layout (how entries map to keys and values, and which databases
//! hold them), recorded in a partition of its own.
//!
//! QMDB opens any log it can decode, so a data directory written with another layout would open
//! as if its state were empty, or read entries under keys nothing looks up any more, and the node
//! would go on to commit different roots than its peers. Open therefore refuses a directory
//! whose recorded layout is not this release's, and one that holds state without a record.

use crate::OpenError;
use crate::backend::Runtime;
use commonware_storage::metadata::{Config, Metadata};
use commonware_utils::sequence::U64;

/// The layout this release reads and writes: two QMDB `current` databases, accounts (accounts,
/// retired accounts, code: variable-size values) and storage (slots: 32-byte values), keys
/// under `trellis.state.v1` (a slot's over a padded 64-byte account block, see
/// [`crate::entry`]), the state root over both (`trellis.state-root.v2`). Layout 1 held
/// everything in one database.
pub(crate) const LAYOUT: u64 = 2;
const KEY: u64 = 0;

/// The recorded layout of one store.
pub(crate) struct LayoutRecord<E: Runtime> {
    metadata: Metadata<E, U64, u64>,
    partition: String,
}

impl<E: Runtime> LayoutRecord<E> {
    pub async fn open(context: E, prefix: &str) -> Result<Self, OpenError> {
        let partition = format!("{prefix}-state-layout");
        let config = Config {
            partition: partition.clone(),
            codec_config: (),
        };
        let metadata = Metadata::init(context, config)
            .await
            .map_err(|e| OpenError::Layout {
                partition: partition.clone(),
                source: e.into(),
            })?;
        Ok(Self {
            metadata,
            partition,
        })
    }

    /// Whether this release's layout is recorded (`false`: nothing is); refuses another layout.
    pub fn check(&self) -> Result<bool, OpenError> {
        match self.metadata.get(&U64::new(KEY)) {
            None => Ok(false),
            Some(&LAYOUT) => Ok(true),
            Some(&found) => Err(OpenError::OtherLayout {
                partition: self.partition.clone(),
                found,
                expected: LAYOUT,
            }),
        }
    }

    /// Refuses state that was written without a record (by a release before layouts were
    /// recorded), and records this release's layout on a new store.
    pub async fn settle(self, recorded: bool, holds_state: bool) -> Result<(), OpenError> {
        match (recorded, holds_state) {
            (true, _) => Ok(()),
            (false, true) => Err(OpenError::Unrecorded {
                partition: self.partition,
            }),
            (false, false) => {
                let partition = self.partition;
                self.metadata
                    .put_sync(U64::new(KEY), LAYOUT)
                    .await
                    .map(drop)
                    .map_err(|e| OpenError::Layout {
                        partition,
                        source: e.into(),
                    })
            }
        }
    }
}
