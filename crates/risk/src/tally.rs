//! Per-party sums over a sliding window: how many transactions (or how much value, or how many
//! refusals or reads) each sender or caller has had in the last `window`.
//!
//! The window is cut into [`BUCKETS`] buckets, so a sum is exact to one bucket's width. Time is
//! given by the caller (a duration since any fixed start), which keeps this deterministic and
//! testable. Memory is bounded: at most `capacity` parties are tracked; when a new party finds
//! the tally full, parties with nothing left in the window are swept (at most once per bucket
//! width, so a flood of new parties costs one sweep per bucket, not one per party), and if none
//! left, the newcomer is reported [`Observed::Untracked`]: a flood of new senders is itself
//! something to raise an alarm about.

use std::{collections::HashMap, collections::VecDeque, hash::Hash, time::Duration};

/// Buckets per window.
pub const BUCKETS: u64 = 10;

/// What adding to a party's sum found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The party's sum over the window, this addition included.
    Sum(u128),
    /// The tally is full of parties active in the window; this one was not counted.
    Untracked,
}

/// One party's buckets: (bucket number, sum), oldest first.
#[derive(Default)]
struct Ring(VecDeque<(u64, u128)>);

impl Ring {
    fn forget_before(&mut self, first: u64) {
        while self.0.front().is_some_and(|(bucket, _)| *bucket < first) {
            self.0.pop_front();
        }
    }

    fn add(&mut self, bucket: u64, amount: u128) {
        match self.0.back_mut() {
            Some((last, sum)) if *last == bucket => *sum = sum.saturating_add(amount),
            _ => self.0.push_back((bucket, amount)),
        }
    }

    fn sum(&self) -> u128 {
        self.0
            .iter()
            .fold(0u128, |sum, (_, n)| sum.saturating_add(*n))
    }
}

/// Sums per party `K` over a sliding window.
pub struct Tally<K> {
    width: Duration,
    capacity: usize,
    parties: HashMap<K, Ring>,
    swept: Option<u64>,
}

impl<K: Hash + Eq + Clone> Tally<K> {
    /// A tally over `window`, tracking at most `capacity` parties.
    pub fn new(window: Duration, capacity: usize) -> Self {
        let width = (window / BUCKETS as u32).max(Duration::from_millis(1));
        Self {
            width,
            capacity,
            parties: HashMap::new(),
            swept: None,
        }
    }

    fn bucket(&self, now: Duration) -> u64 {
        (now.as_millis() / self.width.as_millis()) as u64
    }

    /// Adds `amount` to `party`'s sum at time `now` (never earlier than a previous call's).
    pub fn add(&mut self, now: Duration, party: &K, amount: u128) -> Observed {
        let bucket = self.bucket(now);
        let first = (bucket + 1).saturating_sub(BUCKETS);
        if !self.parties.contains_key(party) && self.parties.len() >= self.capacity {
            self.sweep(bucket, first);
            if self.parties.len() >= self.capacity {
                return Observed::Untracked;
            }
        }
        let ring = self.parties.entry(party.clone()).or_default();
        ring.forget_before(first);
        ring.add(bucket, amount);
        Observed::Sum(ring.sum())
    }

    /// Drops parties with nothing left in the window, once per bucket at most.
    fn sweep(&mut self, bucket: u64, first: u64) {
        if self.swept == Some(bucket) {
            return;
        }
        self.swept = Some(bucket);
        self.parties.retain(|_, ring| {
            ring.forget_before(first);
            !ring.0.is_empty()
        });
    }

    /// Parties tracked now.
    pub fn tracked(&self) -> usize {
        self.parties.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_sum_covers_the_window_and_forgets_what_left_it() {
        let mut tally = Tally::new(secs(60), 10);
        assert_eq!(tally.add(secs(0), &"a", 5), Observed::Sum(5));
        assert_eq!(tally.add(secs(30), &"a", 5), Observed::Sum(10));
        assert_eq!(tally.add(secs(30), &"b", 1), Observed::Sum(1), "per party");
        assert_eq!(tally.add(secs(59), &"a", 1), Observed::Sum(11));
        // At 65 s the first bucket (0–6 s) has left the window; the others have not.
        assert_eq!(tally.add(secs(65), &"a", 0), Observed::Sum(6));
        assert_eq!(tally.add(secs(200), &"a", 2), Observed::Sum(2));
    }

    #[test]
    fn a_full_tally_sweeps_idle_parties_and_reports_a_flood() {
        let mut tally = Tally::new(secs(10), 2);
        tally.add(secs(0), &1, 1);
        tally.add(secs(0), &2, 1);
        assert_eq!(
            tally.add(secs(1), &3, 1),
            Observed::Untracked,
            "both active"
        );
        assert_eq!(
            tally.add(secs(1), &1, 1),
            Observed::Sum(2),
            "known parties count"
        );
        // Party 2 went idle for a whole window; party 1 did too. Both are swept.
        assert_eq!(tally.add(secs(12), &3, 1), Observed::Sum(1));
        assert_eq!(tally.tracked(), 1);
        // A sweep happens once per bucket: a flood within one bucket does not rescan.
        tally.add(secs(12), &4, 1);
        assert_eq!(tally.add(secs(12), &5, 1), Observed::Untracked);
    }
}
