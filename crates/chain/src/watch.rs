//! What admission tells a watcher (the node's risk engine) and asks it: each batch offered to
//! the pool with what became of it, and whether a client's sender is throttled.
//!
//! The watcher must answer at once: `offered` hands the batch over without waiting (a full
//! watcher drops it and counts the loss), `throttled` reads a published snapshot. Admission
//! never waits on risk control.

use alloy_primitives::Address;
use std::time::Duration;
use trellis_mempool::AdmissionError;
pub use trellis_risk::Offer;

/// Risk control's side of admission.
pub trait AdmissionWatch: Send + Sync + 'static {
    /// A batch offered to the pool: the transactions whose senders were recovered, each with
    /// its refusal's reason if it was refused.
    fn offered(&self, offers: Vec<Offer>);

    /// How much longer a client's transactions from `sender` are refused, if they are.
    fn throttled(&self, sender: &Address) -> Option<Duration>;
}

/// The refusal of a throttled sender.
pub(crate) fn throttled(sender: Address, left: Duration) -> AdmissionError {
    AdmissionError::Throttled {
        sender,
        retry_after_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_throttle_refusal_is_not_counted_as_a_refusal_again() {
        let refusal = super::throttled(Default::default(), std::time::Duration::from_secs(1));
        assert_eq!(refusal.reason(), trellis_risk::THROTTLED);
    }
}
