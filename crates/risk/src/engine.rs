//! The engine: events in, alarms out, and who is throttled until when.
//!
//! Time is given by the caller (a duration since the Unix epoch, by the node's clock), so the
//! engine is deterministic and its tests need no clock. Nothing it keeps grows without bound:
//! per-party sums live in [`Tally`]s of fixed capacity, evidence in a bounded record, and an
//! alarm for one party under one rule is raised at most once per window (the last raise of
//! each is forgotten once a window has passed).

use crate::{
    alarm::{Alarm, Amount, Evidence},
    event::{Event, HostLoad, Offer, Party, THROTTLED},
    recent::{EVIDENCE, Recent},
    rules::{Action, Measure, Rule, Rules},
    tally::{Observed, Tally},
};
use alloy_primitives::U256;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::Duration,
};

/// One rule and what it has seen.
struct Watched {
    rule: Rule,
    tally: Tally<Party>,
    /// For counts of an account's transactions: the value those transactions moved.
    values: Option<Tally<Party>>,
    /// When each party last raised this rule's alarm.
    raised: HashMap<Party, Duration>,
    /// For host measures: since when the load has been above the threshold.
    above_since: Option<Duration>,
    /// For network-wide measures: the last sources, for the evidence.
    sources: VecDeque<String>,
}

impl Watched {
    fn new(rule: Rule, capacity: usize) -> Self {
        let window = rule.window.0;
        let values = matches!(
            rule.measure,
            Measure::SenderTransactions | Measure::RefusedTransactions
        )
        .then(|| Tally::new(window, capacity));
        Self {
            tally: Tally::new(window, capacity),
            values,
            raised: HashMap::new(),
            above_since: None,
            sources: VecDeque::new(),
            rule,
        }
    }

    fn window(&self) -> Duration {
        self.rule.window.0
    }

    /// Whether `party` may raise this rule's alarm at `now` (once per window), noting it if so.
    fn may_raise(&mut self, now: Duration, party: &Party, capacity: usize) -> bool {
        let window = self.window();
        if self
            .raised
            .get(party)
            .is_some_and(|last| now < *last + window)
        {
            return false;
        }
        if self.raised.len() >= capacity {
            self.raised.retain(|_, last| now < *last + window);
        }
        self.raised.insert(party.clone(), now);
        true
    }

    fn remember_source(&mut self, source: String) {
        if self.sources.len() == EVIDENCE {
            self.sources.pop_front();
        }
        self.sources.push_back(source);
    }
}

/// What the engine decided about one event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Alarms raised, in order.
    pub alarms: Vec<Alarm>,
    /// Whether the throttled parties changed.
    pub throttles_changed: bool,
}

/// The rules in force and what they have seen.
pub struct Engine {
    watched: Vec<Watched>,
    recent: Recent,
    throttled: BTreeMap<Party, Duration>,
    capacity: usize,
    next_id: u64,
}

impl Engine {
    /// An engine for `rules`, tracking at most `capacity` parties per rule, numbering its
    /// alarms from `next_id` (the alarm log's next number).
    pub fn new(rules: Rules, capacity: usize, next_id: u64) -> Self {
        Self {
            watched: rules
                .rules
                .into_iter()
                .map(|rule| Watched::new(rule, capacity))
                .collect(),
            recent: Recent::new(capacity),
            throttled: BTreeMap::new(),
            capacity,
            next_id: next_id.max(1),
        }
    }

    /// Puts `rules` in force: a rule kept unchanged (same name, measure, window) keeps what
    /// it has seen; throttles already imposed run their course.
    pub fn replace_rules(&mut self, rules: Rules) {
        let mut old: Vec<Watched> = std::mem::take(&mut self.watched);
        self.watched = rules
            .rules
            .into_iter()
            .map(|rule| {
                match old.iter().position(|w| {
                    w.rule.name == rule.name
                        && w.rule.measure == rule.measure
                        && w.rule.window == rule.window
                }) {
                    Some(at) => {
                        let mut kept = old.swap_remove(at);
                        kept.rule = rule;
                        kept
                    }
                    None => Watched::new(rule, self.capacity),
                }
            })
            .collect();
    }

    /// The rules in force.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.watched.iter().map(|w| &w.rule)
    }

    /// Who is throttled, and until when.
    pub fn throttled(&self) -> &BTreeMap<Party, Duration> {
        &self.throttled
    }

    /// Lifts the throttles that ended by `now`; whether any did.
    pub fn expire(&mut self, now: Duration) -> bool {
        let before = self.throttled.len();
        self.throttled.retain(|_, until| *until > now);
        self.throttled.len() != before
    }

    /// Weighs `event`, seen at `now`, against every rule.
    pub fn observe(&mut self, now: Duration, event: &Event) -> Outcome {
        let mut outcome = Outcome::default();
        match event {
            Event::Offered(offers) => {
                for offer in offers {
                    self.recent.push(offer.sender, offer.hash);
                    self.offered(now, offer, &mut outcome);
                }
            }
            Event::FailedAuthentication { caller } => {
                let party = Party::Caller(caller.clone());
                self.count(now, Measure::FailedAuthentication, &party, 1, &mut outcome);
            }
            Event::Reads { caller, records } => {
                let party = Party::Caller(caller.clone());
                self.count(
                    now,
                    Measure::CallerReads,
                    &party,
                    u128::from(*records),
                    &mut outcome,
                );
            }
            Event::UnknownPeer { peer } => {
                let party = Party::Peer(peer.clone());
                self.network(
                    now,
                    Measure::UnknownPeers,
                    party,
                    peer.clone(),
                    &mut outcome,
                );
            }
            Event::ConsensusFault { validator, kind } => {
                let party = Party::Validator(validator.clone());
                let source = format!("{validator}: {kind}");
                self.network(now, Measure::ConsensusFaults, party, source, &mut outcome);
            }
            Event::Host(load) => self.host(now, *load, &mut outcome),
        }
        outcome
    }

    fn offered(&mut self, now: Duration, offer: &Offer, outcome: &mut Outcome) {
        let party = Party::Account(offer.sender);
        let value = u128::try_from(offer.value).unwrap_or(u128::MAX);
        let refused = offer.refused.is_some_and(|reason| reason != THROTTLED);
        for at in 0..self.watched.len() {
            let amount = match self.watched[at].rule.measure {
                Measure::SenderTransactions => 1,
                Measure::SenderValue => value,
                Measure::RefusedTransactions if refused => 1,
                _ => continue,
            };
            let watched = &mut self.watched[at];
            let moved = watched
                .values
                .as_mut()
                .map(|values| values.add(now, &party, value));
            let observed = watched.tally.add(now, &party, amount);
            let value_in_window = match (watched.rule.measure, moved, observed) {
                (Measure::SenderValue, _, Observed::Sum(sum)) => Some(U256::from(sum)),
                (_, Some(Observed::Sum(sum)), _) => Some(U256::from(sum)),
                _ => None,
            };
            let sender = offer.sender;
            let evidence = move |recent: &Recent| Evidence {
                transactions: recent.of(&sender),
                value: value_in_window,
                sources: Vec::new(),
            };
            self.crossed(now, at, &party, observed, evidence, outcome);
        }
    }

    /// A per-party count or sum (callers).
    fn count(
        &mut self,
        now: Duration,
        measure: Measure,
        party: &Party,
        amount: u128,
        outcome: &mut Outcome,
    ) {
        for at in 0..self.watched.len() {
            if self.watched[at].rule.measure != measure {
                continue;
            }
            let observed = self.watched[at].tally.add(now, party, amount);
            self.crossed(now, at, party, observed, |_| Evidence::default(), outcome);
        }
    }

    /// A count over the whole network; the alarm names the party whose event crossed it.
    fn network(
        &mut self,
        now: Duration,
        measure: Measure,
        party: Party,
        source: String,
        outcome: &mut Outcome,
    ) {
        for at in 0..self.watched.len() {
            let watched = &mut self.watched[at];
            if watched.rule.measure != measure {
                continue;
            }
            watched.remember_source(source.clone());
            let observed = watched.tally.add(now, &Party::Network, 1);
            let sources: Vec<String> = watched.sources.iter().cloned().collect();
            let evidence = |_: &Recent| Evidence {
                sources,
                ..Evidence::default()
            };
            self.crossed(now, at, &party, observed, evidence, outcome);
        }
    }

    fn host(&mut self, now: Duration, load: HostLoad, outcome: &mut Outcome) {
        for at in 0..self.watched.len() {
            let watched = &mut self.watched[at];
            let percent = match watched.rule.measure {
                Measure::HostCpuPercent => load.cpu,
                Measure::HostMemoryPercent => load.memory,
                Measure::HostDiskPercent => load.disk,
                _ => continue,
            };
            let Some(percent) = percent else { continue };
            if u128::from(percent) <= watched.rule.above.amount() {
                watched.above_since = None;
                continue;
            }
            let since = *watched.above_since.get_or_insert(now);
            // Disk use is a level, not a load: it alarms at once. CPU and memory must stay
            // above the threshold for the whole window.
            let sustained = watched.rule.measure == Measure::HostDiskPercent
                || now.saturating_sub(since) >= watched.window();
            if sustained {
                let observed = Observed::Sum(u128::from(percent));
                let nothing = |_: &Recent| Evidence::default();
                self.crossed(now, at, &Party::Host, observed, nothing, outcome);
            }
        }
    }

    /// Raises rule `at`'s alarm for `party` if `observed` is above its threshold (or the
    /// tally could not track the party) and it was not raised for them in this window.
    fn crossed(
        &mut self,
        now: Duration,
        at: usize,
        party: &Party,
        observed: Observed,
        evidence: impl FnOnce(&Recent) -> Evidence,
        outcome: &mut Outcome,
    ) {
        let capacity = self.capacity;
        let watched = &mut self.watched[at];
        let (party, observed, evidence) = match observed {
            Observed::Sum(sum) if sum > watched.rule.above.amount() => {
                (party.clone(), sum, evidence(&self.recent))
            }
            Observed::Sum(_) => return,
            // More parties active in the window than the engine tracks: a flood of newcomers,
            // raised once per window for the network as a whole.
            Observed::Untracked => (
                Party::Network,
                capacity as u128,
                Evidence {
                    sources: vec![format!(
                        "more than {capacity} parties active in the window; {party} and later ones not counted"
                    )],
                    ..Evidence::default()
                },
            ),
        };
        if !watched.may_raise(now, &party, capacity) {
            return;
        }
        let rule = &watched.rule;
        if rule.actions.contains(&Action::Throttle) && party != Party::Network {
            self.throttled.insert(party.clone(), now + rule.window.0);
            outcome.throttles_changed = true;
        }
        outcome.alarms.push(Alarm {
            id: self.next_id,
            raised_at_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            rule: rule.name.0.clone(),
            measure: rule.measure.name().to_owned(),
            party,
            observed: Amount(observed),
            above: Amount(rule.above.amount()),
            window_seconds: rule.window.0.as_secs(),
            actions: rule.actions.iter().map(|a| a.name().to_owned()).collect(),
            evidence,
        });
        self.next_id += 1;
    }
}

#[cfg(test)]
mod tests;
