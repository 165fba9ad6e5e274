//! One run: the cluster started, the plan's faults applied and lifted on time while the
//! workload sends, then, once every fault has healed, progress required within the plan's bound
//! and the end-of-run invariants checked.

use crate::{
    byzantine::{Fork, Misdeeds},
    cluster::{Cluster, Kept},
    invariants::{self, Tips, Violation},
    plan::{Fault, NodeId, Plan, PowerLoss, Seed},
    workload::Workload,
};
use commonware_runtime::{
    Clock as _, Runner as _,
    deterministic::{self, FaultConfig, PartialWriteMode, WriteConfig},
};
use commonware_utils::Probability;
use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, SystemTime},
};
use trellis_types::{BlockHash, Height};

/// The driver's step: faults start and end, transfers go out, on this grid.
const TICK: Duration = Duration::from_millis(50);
/// Receipts and tips are checked this often.
const POLL: Duration = Duration::from_secs(1);
/// Past the plan's deadline, the runtime itself stops the run (a hang the driver cannot see).
const BACKSTOP: Duration = Duration::from_secs(300);
/// Blocks every node must finalize after the faults heal (liveness).
const PROGRESS_AFTER_HEAL: u64 = 3;

/// What a passing run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: Seed,
    /// The height every node reached.
    pub height: Height,
    pub transfers: usize,
    pub faults: usize,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// What the byzantine validator did, if there was one.
    pub misdeeds: Option<Misdeeds>,
    /// How the byzantine validator's forks as leader ended, if it made any.
    pub forks: ForkOutcomes,
    /// Faults the nodes reported (all of them the byzantine validator's).
    pub accusations: usize,
    /// Every (blocker, blocked) pair of nodes seen in the run.
    pub blocks: Vec<(NodeId, NodeId)>,
    /// The evidence of each distinct conflict reported, as its bytes (what
    /// `trellis verify-evidence` checks).
    pub evidence: Vec<Vec<u8>>,
    /// The runtime's audit of every event: equal for two runs of one seed.
    pub audit: String,
}

/// Which block of each fork the chain kept: a fork's view finalizes one of its two blocks
/// (the first, or the second that some honest validators were led to vote for) or neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkOutcomes {
    pub first: usize,
    pub second: usize,
    pub neither: usize,
}

impl ForkOutcomes {
    fn of(forks: &[Fork], chain: &[BlockHash]) -> Self {
        let chain: std::collections::HashSet<&BlockHash> = chain.iter().collect();
        let mut outcomes = Self::default();
        for fork in forks {
            // One height: the chain holds one of them at most.
            if chain.contains(&fork.first) {
                outcomes.first += 1;
            } else if chain.contains(&fork.second) {
                outcomes.second += 1;
            } else {
                outcomes.neither += 1;
            }
        }
        outcomes
    }
}

/// Runs `plan`; a panic anywhere in the simulated nodes is a violation too. A power loss
/// ends the runtime there (its storage crashed as the plan says) and a second runtime, from
/// that storage, goes on.
pub fn run(plan: &Plan) -> Result<Report, Violation> {
    let mut config = deterministic::Config::new()
        .with_seed(plan.seed.0)
        .with_timeout(Some(plan.deadline() + BACKSTOP));
    if let Some(loss) = plan.power_loss {
        config = config.with_storage_fault_config(torn_writes(loss));
    }
    let runner = deterministic::Runner::new(config);
    let outcome = catch_unwind(AssertUnwindSafe(|| match plan.power_loss {
        None => runner.start(|context| drive(context, plan.clone(), None)),
        Some(loss) => {
            let (first, storage) = runner.start_and_recover(|context| {
                drive_until(context, plan.clone(), None, Some(loss.at))
            });
            match first? {
                Segment::PoweredOff(carried) => deterministic::Runner::from(storage)
                    .start(|context| drive(context, plan.clone(), Some(carried))),
                done => Ok(done),
            }
        }
    }));
    match outcome {
        Ok(Ok(Segment::Done(report))) => Ok(*report),
        Ok(Ok(Segment::PoweredOff(_))) => unreachable!("the second runtime runs to the end"),
        Ok(Err(violation)) => Err(violation),
        Err(payload) => Err(Violation::Panic(panic_message(payload.as_ref()))),
    }
}

/// Disks that keep all that was synced and, of each write that was not, `kept_percent` of
/// its bytes; no write fails while the nodes run.
fn torn_writes(loss: PowerLoss) -> FaultConfig {
    FaultConfig {
        write_rate: Some(WriteConfig {
            failure_rate: Probability::new(0, 100).expect("zero is a probability"),
            retention_rate: Probability::new(u64::from(loss.kept_percent), 100)
                .expect("a percentage is a probability"),
            mode: if loss.prefix {
                PartialWriteMode::Prefix
            } else {
                PartialWriteMode::Subset
            },
        }),
        ..FaultConfig::default()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into())
}

/// Where the run stands: which faults have started and ended.
pub(crate) struct Progress {
    started: Vec<bool>,
    ended: Vec<bool>,
}

impl Progress {
    fn active<'a>(&self, plan: &'a Plan) -> Vec<&'a Fault> {
        plan.injections
            .iter()
            .enumerate()
            .filter(|(i, _)| self.started[*i] && !self.ended[*i])
            .map(|(_, injection)| &injection.fault)
            .collect()
    }

    /// Marks the faults that start or end by `now`; whether any did.
    fn advance(&mut self, plan: &Plan, now: Duration) -> bool {
        let mut changed = false;
        for (i, injection) in plan.injections.iter().enumerate() {
            if !self.started[i] && injection.from <= now {
                self.started[i] = true;
                changed = true;
            }
            if self.started[i] && !self.ended[i] && injection.until <= now {
                self.ended[i] = true;
                changed = true;
            }
        }
        changed
    }
}

/// What the driver carries across a power loss: everything but the nodes.
pub(crate) struct Carried {
    began: SystemTime,
    workload: Workload,
    tips: Tips,
    progress: Progress,
    kept: Kept,
    next_send: Duration,
    next_poll: Duration,
    polls: usize,
    height_at_heal: Option<Height>,
}

/// How one runtime's part of a run ended.
enum Segment {
    Done(Box<Report>),
    /// Power was lost: this runtime ends, the next starts from its storage.
    PoweredOff(Box<Carried>),
}

/// Drives one runtime's part of the run: from the start (`Carried` is `None`) or from where a
/// power loss left it, until the end or `power_off_at`.
async fn drive(
    context: deterministic::Context,
    plan: Plan,
    from: Option<Box<Carried>>,
) -> Result<Segment, Violation> {
    drive_until(context, plan, from, None).await
}

async fn drive_until(
    context: deterministic::Context,
    plan: Plan,
    from: Option<Box<Carried>>,
    power_off_at: Option<Duration>,
) -> Result<Segment, Violation> {
    let mut run = from.unwrap_or_else(|| {
        Box::new(Carried {
            began: context.current(),
            workload: Workload::new(plan.seed),
            tips: Tips::default(),
            progress: Progress {
                started: vec![false; plan.injections.len()],
                ended: vec![false; plan.injections.len()],
            },
            kept: Kept::new(&plan),
            next_send: Duration::ZERO,
            next_poll: POLL,
            polls: 0,
            height_at_heal: None,
        })
    });
    let began = run.began;
    let elapsed = |context: &deterministic::Context| since(began, context.current());
    let mut cluster = Cluster::start(&context, &plan, &run.kept).await;
    // After a power loss, the nodes a fault holds down stay down.
    apply(&mut cluster, &run.progress.active(&plan)).await;
    loop {
        let now = elapsed(&context);
        if power_off_at.is_some_and(|at| now >= at) {
            return Ok(Segment::PoweredOff(run));
        }
        if run.progress.advance(&plan, now) {
            apply(&mut cluster, &run.progress.active(&plan)).await;
        }
        while now < plan.sending_until && run.next_send <= now {
            run.workload.send(&cluster, now).await;
            run.next_send += plan.send_every;
        }
        if run.next_poll <= now {
            run.next_poll += POLL;
            run.polls += 1;
            run.tips.observe(&cluster)?;
            cluster.lift_blocks(now).await;
            // Each poll asks another honest node, so every one's index is read.
            let honest: Vec<NodeId> = cluster.honest().map(|(n, _)| n).collect();
            if !honest.is_empty() {
                let asked = honest[run.polls % honest.len()];
                run.workload.poll(&cluster, asked, now).await?;
            }
            if now >= plan.healed_at {
                let floor = *run.height_at_heal.get_or_insert_with(|| top(&cluster));
                if settled(&cluster, &run.workload, &plan, now, floor) {
                    break;
                }
                if now >= plan.deadline() {
                    return Err(Violation::Stalled {
                        bound: plan.recovery_bound,
                        outstanding: run.workload.outstanding(),
                        heights: invariants::heights(&cluster),
                    });
                }
            }
        }
        context.sleep(TICK).await;
    }
    let chain = invariants::check_settled(&cluster, &run.workload).await?;
    let forks = cluster.twist().map_or_else(Vec::new, |t| t.forks());
    Ok(Segment::Done(Box::new(Report {
        seed: plan.seed,
        height: top(&cluster),
        transfers: run.workload.receipted().len(),
        faults: plan.injections.len(),
        simulated: elapsed(&context),
        misdeeds: cluster.twist().map(|t| t.misdeeds()),
        forks: ForkOutcomes::of(&forks, &chain),
        accusations: cluster.accusations().all().len(),
        blocks: cluster.accusations().blocks(),
        evidence: cluster
            .accusations()
            .all()
            .into_iter()
            .map(|a| a.evidence)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        audit: context.auditor().state(),
    })))
}

fn since(began: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(began)
        .expect("simulated time never goes back")
}

/// Crashes the nodes an active fault stops and restarts the others, then sets the links.
async fn apply(cluster: &mut Cluster, active: &[&Fault]) {
    for node in NodeId::all() {
        let down = active.iter().any(|f| **f == Fault::Crash(node));
        match (down, cluster.is_running(node)) {
            (true, true) => cluster.crash(node),
            (false, false) => cluster.restart(node).await,
            _ => {}
        }
    }
    cluster.reconcile(active).await;
}

/// The highest finalized height among the nodes.
fn top(cluster: &Cluster) -> Height {
    invariants::heights(cluster)
        .into_iter()
        .map(|(_, h)| h)
        .max()
        .unwrap_or_default()
}

/// Whether the run is done: sending is over, every transfer has a receipt, and every node
/// has finalized past both the receipts and a few blocks beyond the heal.
fn settled(
    cluster: &Cluster,
    workload: &Workload,
    plan: &Plan,
    now: Duration,
    height_at_heal: Height,
) -> bool {
    let last_receipt = workload
        .receipted()
        .values()
        .map(|r| r.location.height)
        .max()
        .unwrap_or_default();
    let needed = last_receipt.max(Height(height_at_heal.0 + PROGRESS_AFTER_HEAL));
    now >= plan.sending_until
        && workload.outstanding() == 0
        && invariants::heights(cluster)
            .iter()
            .all(|(_, h)| *h >= needed)
        && NodeId::all().all(|n| cluster.is_running(n))
}
