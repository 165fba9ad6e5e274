use super::*;
use alloy_primitives::{Address, TxHash};

fn engine(text: &str) -> Engine {
    Engine::new(Rules::parse(text).expect("rules parse"), 100, 1)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn offer(sender: u8, n: u8, value: u64, refused: Option<&'static str>) -> Offer {
    Offer {
        sender: Address::repeat_byte(sender),
        hash: TxHash::repeat_byte(n),
        value: U256::from(value),
        refused,
    }
}

const BURST: &str = r#"
[[rule]]
name = "burst"
measure = "sender_transactions"
window = "10s"
above = 3
actions = ["throttle"]
"#;

#[test]
fn a_burst_from_one_sender_raises_one_alarm_with_its_evidence_and_throttles_it() {
    let mut engine = engine(BURST);
    let batch: Vec<Offer> = (0..3).map(|n| offer(1, n, 10, None)).collect();
    let quiet = engine.observe(secs(100), &Event::Offered(batch));
    assert!(quiet.alarms.is_empty(), "3 is not above 3");
    let other: Vec<Offer> = (10..13).map(|n| offer(2, n, 1, None)).collect();
    assert!(
        engine
            .observe(secs(100), &Event::Offered(other))
            .alarms
            .is_empty()
    );

    let more = Event::Offered(vec![offer(1, 3, 10, None), offer(1, 4, 10, None)]);
    let outcome = engine.observe(secs(101), &more);
    assert_eq!(
        outcome.alarms.len(),
        1,
        "raised once per window, not per transaction"
    );
    let alarm = &outcome.alarms[0];
    assert_eq!(alarm.id, 1);
    assert_eq!(alarm.rule, "burst");
    assert_eq!(alarm.party, Party::Account(Address::repeat_byte(1)));
    assert_eq!(alarm.observed, Amount(4));
    assert_eq!(alarm.raised_at_ms, 101_000);
    assert_eq!(alarm.actions, vec!["throttle".to_owned()]);
    let hashes: Vec<TxHash> = (0..4).map(TxHash::repeat_byte).collect();
    assert_eq!(
        alarm.evidence.transactions, hashes,
        "the sender's own, in order"
    );
    assert_eq!(
        alarm.evidence.value,
        Some(U256::from(40)),
        "value moved in the window"
    );
    assert!(outcome.throttles_changed);
    let party = Party::Account(Address::repeat_byte(1));
    assert_eq!(engine.throttled().get(&party), Some(&secs(111)));
    assert_eq!(
        engine.throttled().len(),
        1,
        "the other sender is not throttled"
    );

    assert!(!engine.expire(secs(110)));
    assert!(engine.expire(secs(111)));
    // A window later the same sender can raise it again.
    let again: Vec<Offer> = (20..24).map(|n| offer(1, n, 1, None)).collect();
    let outcome = engine.observe(secs(112), &Event::Offered(again));
    assert_eq!(outcome.alarms.len(), 1);
    assert_eq!(outcome.alarms[0].id, 2);
}

#[test]
fn refusals_count_but_not_those_of_a_throttle() {
    let mut engine = engine(
        r#"
[[rule]]
name = "refused"
measure = "refused_transactions"
window = "1m"
above = 1
"#,
    );
    let throttled: Vec<Offer> = (0..5).map(|n| offer(1, n, 0, Some(THROTTLED))).collect();
    assert!(
        engine
            .observe(secs(0), &Event::Offered(throttled))
            .alarms
            .is_empty()
    );
    let admitted: Vec<Offer> = (5..9).map(|n| offer(1, n, 0, None)).collect();
    assert!(
        engine
            .observe(secs(0), &Event::Offered(admitted))
            .alarms
            .is_empty()
    );
    let refused = Event::Offered(vec![
        offer(1, 10, 0, Some("nonce_too_low")),
        offer(1, 11, 0, Some("insufficient_funds")),
    ]);
    let outcome = engine.observe(secs(1), &refused);
    assert_eq!(outcome.alarms.len(), 1);
    assert!(!outcome.throttles_changed, "no throttle action");
}

#[test]
fn value_is_summed_per_sender() {
    let mut engine = engine(
        r#"
[[rule]]
name = "big"
measure = "sender_value"
window = "1h"
above = "1 ether"
actions = ["propose_freeze"]
"#,
    );
    let half = 500_000_000_000_000_000u64;
    let first = Event::Offered(vec![offer(7, 1, half, None), offer(8, 2, half, None)]);
    assert!(engine.observe(secs(0), &first).alarms.is_empty());
    let outcome = engine.observe(secs(60), &Event::Offered(vec![offer(7, 3, half + 1, None)]));
    let alarm = &outcome.alarms[0];
    assert_eq!(alarm.observed, Amount(2 * u128::from(half) + 1));
    assert_eq!(
        alarm.evidence.value,
        Some(U256::from(2 * u128::from(half) + 1))
    );
    assert_eq!(alarm.actions, vec!["propose_freeze".to_owned()]);
    assert!(engine.throttled().is_empty());
}

#[test]
fn faults_and_unknown_peers_name_their_sources() {
    let mut engine = engine(
        r#"
[[rule]]
name = "equivocation"
measure = "consensus_faults"
window = "1h"
above = 0

[[rule]]
name = "strangers"
measure = "unknown_peers"
window = "1m"
above = 2
"#,
    );
    let fault = Event::ConsensusFault {
        validator: "ab12".into(),
        kind: "conflicting notarize".into(),
    };
    let outcome = engine.observe(secs(5), &fault);
    assert_eq!(outcome.alarms[0].party, Party::Validator("ab12".into()));
    assert_eq!(
        outcome.alarms[0].evidence.sources,
        vec!["ab12: conflicting notarize"]
    );
    for n in 0..2 {
        let peer = Event::UnknownPeer {
            peer: format!("10.0.0.{n}:9000"),
        };
        assert!(engine.observe(secs(6), &peer).alarms.is_empty());
    }
    let third = Event::UnknownPeer {
        peer: "10.0.0.9:9000".into(),
    };
    let outcome = engine.observe(secs(7), &third);
    assert_eq!(outcome.alarms[0].party, Party::Peer("10.0.0.9:9000".into()));
    assert_eq!(outcome.alarms[0].evidence.sources.len(), 3);
}

#[test]
fn cpu_must_stay_high_for_the_window_disk_alarms_at_once() {
    let mut engine = engine(
        r#"
[[rule]]
name = "cpu"
measure = "host_cpu_percent"
window = "30s"
above = 90

[[rule]]
name = "disk"
measure = "host_disk_percent"
window = "1h"
above = 95
"#,
    );
    let load = |cpu, disk| {
        Event::Host(HostLoad {
            cpu: Some(cpu),
            memory: None,
            disk: Some(disk),
        })
    };
    assert!(engine.observe(secs(0), &load(95, 50)).alarms.is_empty());
    assert!(
        engine.observe(secs(20), &load(50, 50)).alarms.is_empty(),
        "a dip resets"
    );
    assert!(engine.observe(secs(25), &load(95, 50)).alarms.is_empty());
    let outcome = engine.observe(secs(55), &load(99, 96));
    let rules: Vec<&str> = outcome.alarms.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules, vec!["cpu", "disk"]);
    assert_eq!(outcome.alarms[0].party, Party::Host);
}

#[test]
fn a_flood_of_new_senders_is_an_alarm_of_its_own() {
    let rules = Rules::parse(BURST).expect("rules parse");
    let mut engine = Engine::new(rules, 2, 1);
    let flood: Vec<Offer> = (1..=5).map(|n| offer(n, n, 1, None)).collect();
    let outcome = engine.observe(secs(0), &Event::Offered(flood));
    assert_eq!(outcome.alarms.len(), 1);
    assert_eq!(outcome.alarms[0].party, Party::Network);
    assert!(
        engine.throttled().is_empty(),
        "the network is not throttled"
    );
}

#[test]
fn reloading_keeps_what_an_unchanged_rule_has_seen() {
    let mut engine = engine(BURST);
    let batch: Vec<Offer> = (0..3).map(|n| offer(1, n, 1, None)).collect();
    engine.observe(secs(0), &Event::Offered(batch));
    engine.replace_rules(Rules::parse(&BURST.replace("above = 3", "above = 2")).unwrap());
    let outcome = engine.observe(secs(1), &Event::Offered(vec![offer(1, 9, 1, None)]));
    assert_eq!(
        outcome.alarms[0].observed,
        Amount(4),
        "the sum survived the reload"
    );
    assert_eq!(
        outcome.alarms[0].above,
        Amount(2),
        "the new threshold applies"
    );
}

#[test]
fn alarms_read_back_from_json() {
    let mut engine = engine(BURST);
    let batch: Vec<Offer> = (0..4).map(|n| offer(1, n, 1, None)).collect();
    let alarm = engine
        .observe(secs(0), &Event::Offered(batch))
        .alarms
        .remove(0);
    let json = serde_json::to_string(&alarm).expect("serializes");
    assert!(
        json.contains(r#""party":{"kind":"account","id":"0x0101"#),
        "{json}"
    );
    assert!(json.contains(r#""observed":"4""#), "{json}");
    let back: Alarm = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, alarm);
}

#[test]
fn the_shipped_example_reads() {
    let text = include_str!("../../../../deploy/risk/rules.toml");
    let rules = Rules::parse(text).expect("deploy/risk/rules.toml reads");
    assert_eq!(rules.rules.len(), 8);
}
