//! Whole runs of the simulator: a seed replays exactly, and the checks catch a chain that
//! stops.

use std::time::Duration;
use trellis_simulator::{
    Plan, Seed, Violation,
    plan::{Fault, Injection, NodeId},
    run,
};

/// A seed with crashes, partitions and bad links across epochs of ten blocks, and a power
/// loss of every node with torn unsynced writes.
const BUSY_SEED: Seed = Seed(3);

#[test]
fn a_seed_replays_to_the_same_audit_of_every_event() {
    let plan = Plan::draw(BUSY_SEED);
    assert!(
        plan.injections
            .iter()
            .any(|i| matches!(i.fault, Fault::Crash(_))),
        "the seed crashes a node:\n{plan}"
    );
    assert!(plan.power_loss.is_some(), "the seed loses power:\n{plan}");
    let first = run(&plan).unwrap_or_else(|v| panic!("seed {BUSY_SEED}: {v}"));
    let again = run(&plan).unwrap_or_else(|v| panic!("seed {BUSY_SEED} replayed: {v}"));
    assert_eq!(first.audit, again.audit, "the replay took another course");
    assert_eq!(first.height, again.height);
    assert!(first.transfers > 20, "{first:?}");
}

/// Two of four validators down for good: no quorum, so the run must end in a stall naming
/// every node's height, not pass.
#[test]
fn a_chain_without_a_quorum_fails_as_stalled() {
    let mut plan = Plan::draw(Seed(1));
    let down = |node| Injection {
        fault: Fault::Crash(NodeId(node)),
        from: Duration::from_secs(2),
        until: Duration::from_secs(3_600),
    };
    plan.injections = vec![down(1), down(2)];
    plan.healed_at = Duration::from_secs(5);
    plan.sending_until = Duration::from_secs(6);
    plan.recovery_bound = Duration::from_secs(10);
    match run(&plan) {
        Err(Violation::Stalled { heights, .. }) => {
            assert!(!heights.is_empty());
        }
        other => panic!("expected a stall, got {other:?}"),
    }
}

/// A seed whose byzantine validator equivocates and proposes invalid blocks: the honest nodes
/// agree, keep finalizing, and report it (and only it).
const BYZANTINE_SEED: Seed = Seed(20);

#[test]
fn a_byzantine_validator_is_reported_while_the_honest_agree() {
    let plan = Plan::draw(BYZANTINE_SEED);
    let byzantine = plan.byzantine.expect("the seed has a byzantine validator");
    assert!(
        byzantine.equivocates && byzantine.proposes_invalid_blocks,
        "{plan}"
    );
    let report = run(&plan).unwrap_or_else(|v| panic!("seed {BYZANTINE_SEED}: {v}"));
    let misdeeds = report.misdeeds.expect("misdeeds are counted");
    assert!(misdeeds.equivocations > 0, "{report:?}");
    assert!(misdeeds.invalid_blocks > 0, "{report:?}");
    assert!(report.accusations > 0, "{report:?}");
    assert!(report.transfers > 20, "{report:?}");
}

/// A seed whose byzantine validator, as leader, proposes two valid blocks for one view and
/// leads some honest validators to the second: the chain finalizes that second block, and the
/// honest nodes still agree block by block.
const FORK_SEED: Seed = Seed(33);

#[test]
fn a_leaders_second_block_for_one_view_can_be_finalized_and_the_honest_agree() {
    let plan = Plan::draw(FORK_SEED);
    assert!(plan.byzantine.is_some_and(|b| b.equivocates), "{plan}");
    let report = run(&plan).unwrap_or_else(|v| panic!("seed {FORK_SEED}: {v}"));
    let misdeeds = report.misdeeds.expect("misdeeds are counted");
    assert!(misdeeds.forks >= 1, "{report:?}");
    assert!(report.forks.second >= 1, "{:?}", report.forks);
    assert!(report.accusations > 0, "{report:?}");
}
