//! Risk control: the operator's rules and what they watch.
//!
//! A rules file (TOML, `rules.rs`) names what each rule measures (a sender's transactions or
//! value in a window, refused transactions, failed authentication, new peers, consensus
//! faults, host load, a caller's reads through the API), the threshold, and what to do when
//! it is crossed: raise an alarm, throttle the caller, propose a freeze through governance.
//! A file that does not parse, or names something unknown, is refused whole with the line at
//! fault, so a node reloading it keeps the rules it had. Per-party measures are summed over
//! sliding windows in bounded memory (`tally.rs`). The engine (`engine.rs`) weighs the node's
//! events (`event.rs`) against the rules and raises alarms (`alarm.rs`) that carry their
//! evidence: who, which transactions (`recent.rs`), how much value.

mod alarm;
mod engine;
mod event;
mod recent;
mod rules;
mod tally;

pub use alarm::{Alarm, Amount, Evidence};
pub use engine::{Engine, Outcome};
pub use event::{Event, HostLoad, Offer, Party, THROTTLED};
pub use recent::EVIDENCE;
pub use rules::{Action, Measure, Rule, RuleName, Rules, RulesError, Threshold, Window};
pub use tally::{BUCKETS, Observed, Tally};
