//! Risk control: the operator's rules and what they watch.
//!
//! A rules file (TOML, `rules.rs`) names what each rule measures (a sender's transactions or
//! value in a window, refused transactions, failed authentication, new peers, consensus
//! faults, host load, a caller's reads through the API), the threshold, and what to do when
//! it is crossed: raise an alarm, throttle the caller, propose a freeze through governance.
//! A file that does not parse, or names something unknown, is refused whole with the line at
//! fault, so a node reloading it keeps the rules it had. Per-party measures are summed over
//! sliding windows in bounded memory (`tally.rs`).

mod rules;
mod tally;

pub use rules::{Action, Measure, Rule, RuleName, Rules, RulesError, Threshold, Window};
pub use tally::{BUCKETS, Observed, Tally};
