//! An alarm as it is recorded, served (`trellis_alarms`) and posted to a webhook: the rule
//! crossed, what was measured, and the evidence that traces it to its source.

use crate::event::Party;
use alloy_primitives::{TxHash, U256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An amount in a measure's unit (events, wei, percent), written as a decimal string in JSON
/// so no client rounds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(pub u128);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Self)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a decimal amount")))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an alarm rests on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The party's most recent transactions seen by this node, oldest first (at most
    /// [`crate::EVIDENCE`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<TxHash>,
    /// The value the party's transactions moved in the rule's window: the loss at stake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<U256>,
    /// The peers, validators or callers involved most recently (for measures over the whole
    /// network), oldest first, and what each did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// One alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// Its number in this node's alarm log, from 1.
    pub id: u64,
    /// When it was raised: milliseconds since the Unix epoch, by this node's clock.
    pub raised_at_ms: u64,
    /// The rule crossed, by name.
    pub rule: String,
    /// What the rule measures.
    pub measure: String,
    /// Who it is about.
    pub party: Party,
    /// What was measured over the window, this event included.
    pub observed: Amount,
    /// The rule's threshold, crossed when `observed` is above it.
    pub above: Amount,
    pub window_seconds: u64,
    /// What the node does besides raising the alarm (`throttle`, `propose_freeze`, `propose_removal`).
    pub actions: Vec<String>,
    pub evidence: Evidence,
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "alarm {} {}: {} {} = {} over {} s (above {})",
            self.id,
            self.rule,
            self.party,
            self.measure,
            self.observed,
            self.window_seconds,
            self.above
        )
    }
}
