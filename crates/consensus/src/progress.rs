//! What a node far behind the chain says while it catches up: where it is, how far the tip is,
//! and how fast it is applying history. Logs only; nothing here is agreed on.

use std::time::{Duration, SystemTime};
use tracing::info;
use trellis_types::Height;

/// A node this many blocks behind the finalized tip is catching up (rather than following).
const BEHIND: u64 = 64;
/// How often progress is logged while catching up.
const EVERY: Duration = Duration::from_secs(5);

/// Counts applied blocks against the tip marshal reports.
#[derive(Default)]
pub(crate) struct CatchUp {
    tip: u64,
    /// When catching up began, and the height and transaction count then.
    started: Option<(SystemTime, u64, u64)>,
    last_log: Option<SystemTime>,
    applied_transactions: u64,
}

impl CatchUp {
    /// A new finalized tip at `height`.
    pub fn tip(&mut self, height: u64) {
        self.tip = self.tip.max(height);
    }

    /// Block `height` with `transactions` was applied at `now`.
    pub fn applied(&mut self, height: Height, transactions: usize, now: SystemTime) {
        let height = height.get();
        self.applied_transactions += transactions as u64;
        let behind = self.tip.saturating_sub(height);
        match self.started {
            None if behind >= BEHIND => {
                info!(height, tip = self.tip, behind, "catching up with the chain");
                self.started = Some((now, height, self.applied_transactions));
                self.last_log = Some(now);
            }
            Some((since, from, transactions_then)) => {
                let elapsed = now.duration_since(since).unwrap_or_default();
                let rate = |n: u64| n as f64 / elapsed.as_secs_f64().max(1e-3);
                let blocks = height - from;
                let transactions = self.applied_transactions - transactions_then;
                if behind == 0 {
                    info!(
                        height,
                        blocks,
                        transactions,
                        seconds = (elapsed.as_secs_f64() * 10.0).round() / 10.0,
                        blocks_per_second = rate(blocks).round(),
                        transactions_per_second = rate(transactions).round(),
                        "caught up with the chain"
                    );
                    self.started = None;
                } else if self
                    .last_log
                    .is_none_or(|last| now.duration_since(last).unwrap_or_default() >= EVERY)
                {
                    info!(
                        height,
                        tip = self.tip,
                        behind,
                        blocks_per_second = rate(blocks).round(),
                        transactions_per_second = rate(transactions).round(),
                        "catching up"
                    );
                    self.last_log = Some(now);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_when_far_behind_and_ends_at_the_tip() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut progress = CatchUp::default();
        progress.applied(Height(1), 10, t0);
        assert!(progress.started.is_none(), "following, not catching up");
        progress.tip(1_000);
        progress.applied(Height(2), 10, t0);
        assert_eq!(progress.started.map(|s| s.1), Some(2));
        progress.applied(Height(500), 10, t0 + Duration::from_secs(6));
        assert!(progress.started.is_some());
        progress.applied(Height(1_000), 10, t0 + Duration::from_secs(10));
        assert!(progress.started.is_none(), "caught up");
    }
}
