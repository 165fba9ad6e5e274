//! What one run does, drawn from its seed alone before anything starts: the chain's epoch
//! length, the rate of transactions, and the faults (crashes, partitions, slow and lossy links)
//! with when each begins and ends. The runtime's own randomness (task order, message latency
//! and loss) comes from the same seed, so a seed replays its run exactly.

use std::{fmt, time::Duration};

/// The number that fixes a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed(pub u64);

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A node of the simulated consortium: validators first, then the full node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < VALIDATORS {
            write!(f, "validator {}", self.0)
        } else {
            write!(f, "full node {}", self.0 - VALIDATORS)
        }
    }
}

/// Validators of the simulated chain: one may fail without stopping it.
pub const VALIDATORS: usize = 4;
/// Validators and the one full node.
pub const NODES: usize = VALIDATORS + 1;

impl NodeId {
    pub fn all() -> impl Iterator<Item = NodeId> {
        (0..NODES).map(NodeId)
    }

    pub fn validators() -> impl Iterator<Item = NodeId> {
        (0..VALIDATORS).map(NodeId)
    }

    pub fn is_validator(self) -> bool {
        self.0 < VALIDATORS
    }
}

/// How a link behaves while degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkQuality {
    pub latency: Duration,
    /// Spread of the latency; more than the gap between two messages reorders them.
    pub jitter: Duration,
    /// Messages delivered, in percent.
    pub delivered_percent: u8,
}

impl LinkQuality {
    /// A healthy link on a LAN between members' hosts.
    pub const HEALTHY: Self = Self {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        delivered_percent: 100,
    };
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The node's process stops (its tasks aborted; what it wrote stays) and starts again
    /// from its storage when the fault ends.
    Crash(NodeId),
    /// These nodes are cut off from the others (both directions), then reconnected.
    Partition(Vec<NodeId>),
    /// Every link to and from these nodes is slow, jittery (reordering) and lossy.
    Degrade(Vec<NodeId>, LinkQuality),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |nodes: &[NodeId]| {
            nodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Fault::Crash(node) => write!(f, "{node} crashes"),
            Fault::Partition(side) => write!(f, "{} cut off", list(side)),
            Fault::Degrade(nodes, q) => write!(
                f,
                "links of {} at {:?} ± {:?}, {}% delivered",
                list(nodes),
                q.latency,
                q.jitter,
                q.delivered_percent
            ),
        }
    }
}

/// What the byzantine validator does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Byzantine {
    pub node: NodeId,
    pub equivocates: bool,
    pub proposes_invalid_blocks: bool,
    pub replays: bool,
}

impl std::fmt::Display for Byzantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut wrongs = Vec::new();
        if self.equivocates {
            wrongs.push("equivocates (votes, and two blocks as leader)");
        }
        if self.proposes_invalid_blocks {
            wrongs.push("proposes invalid blocks");
        }
        if self.replays {
            wrongs.push("replays old messages");
        }
        write!(f, "{} is byzantine: {}", self.node, wrongs.join(", "))
    }
}

/// All nodes lose power at once, then start again from what their storage kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLoss {
    pub at: Duration,
    /// Of each write not yet synced, the share of bytes the disk kept (torn writes).
    pub kept_percent: u8,
    /// Kept bytes are a prefix of each write (`true`) or scattered through it.
    pub prefix: bool,
}

/// A fault and the span of simulated time it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    pub fault: Fault,
    pub from: Duration,
    pub until: Duration,
}

impl Injection {
    pub fn active_at(&self, now: Duration) -> bool {
        self.from <= now && now < self.until
    }
}

/// Everything a run does that is not the runtime's own randomness.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: Seed,
    /// Blocks per epoch: short ones make the run cross epoch boundaries.
    pub epoch_length: u64,
    /// A transfer is sent every this often while the workload runs.
    pub send_every: Duration,
    /// Faults, by start time; every one has ended by [`Plan::healed_at`].
    pub injections: Vec<Injection>,
    /// The validator that breaks the protocol, if any (it stays byzantine all run).
    pub byzantine: Option<Byzantine>,
    /// When every node loses power at once, if it does: their storage keeps what was synced
    /// and a part of what was not, as [`PowerLoss::kept_percent`] says.
    pub power_loss: Option<PowerLoss>,
    /// When the last fault ends: from here on the chain must make progress.
    pub healed_at: Duration,
    /// When the workload stops sending.
    pub sending_until: Duration,
    /// How long after [`Plan::healed_at`] every node must have every receipt.
    pub recovery_bound: Duration,
}

/// Faults start within this span of simulated time.
const FAULT_WINDOW: Duration = Duration::from_secs(40);
/// The quiet start: the chain runs its first blocks before any fault.
const QUIET_START: Duration = Duration::from_secs(3);

impl Plan {
    /// The plan of `seed`.
    pub fn draw(seed: Seed) -> Self {
        let mut draw = Draw::new(seed.0);
        let epoch_length = [10, 25, 1_000][draw.below(3) as usize];
        let send_every = Duration::from_millis(draw.between(40, 400));
        let count = draw.between(2, 8);
        let mut injections: Vec<Injection> = (0..count)
            .map(|_| {
                let from = QUIET_START + draw.duration_below(FAULT_WINDOW);
                let lasting = Duration::from_millis(draw.between(1_000, 15_000));
                Injection {
                    fault: draw.fault(),
                    from,
                    until: from + lasting,
                }
            })
            .collect();
        injections.sort_by_key(|i| i.from);
        let healed_at = injections
            .iter()
            .map(|i| i.until)
            .max()
            .unwrap_or(QUIET_START);
        let byzantine = draw.byzantine();
        let power_loss = draw.power_loss();
        let healed_at = healed_at.max(power_loss.map_or(Duration::ZERO, |p| p.at));
        Self {
            seed,
            epoch_length,
            send_every,
            injections,
            byzantine,
            power_loss,
            healed_at,
            sending_until: healed_at + Duration::from_secs(5),
            recovery_bound: Duration::from_secs(60),
        }
    }

    /// When the run must be over.
    pub fn deadline(&self) -> Duration {
        self.healed_at + self.recovery_bound
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: epochs of {} blocks, a transfer every {:?}, healed at {:?}",
            self.seed, self.epoch_length, self.send_every, self.healed_at
        )?;
        if let Some(byzantine) = &self.byzantine {
            writeln!(f, "  all run:             {byzantine}")?;
        }
        if let Some(p) = &self.power_loss {
            let how = if p.prefix {
                "a prefix"
            } else {
                "scattered bytes"
            };
            writeln!(
                f,
                "  {:>7.1?}             every node loses power; of unsynced writes the disks keep {}% ({how})",
                p.at, p.kept_percent
            )?;
        }
        for i in &self.injections {
            writeln!(f, "  {:>7.1?} – {:>7.1?}  {}", i.from, i.until, i.fault)?;
        }
        Ok(())
    }
}

/// SplitMix64: the plan depends on the seed and nothing else (not on a library's algorithm
/// choice, which a dependency update could change and so silently change every seed's run).
pub(crate) struct Draw(u64);

impl Draw {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant at these sizes).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn duration_below(&mut self, limit: Duration) -> Duration {
        Duration::from_millis(self.below(limit.as_millis() as u64))
    }

    fn node(&mut self) -> NodeId {
        NodeId(self.below(NODES as u64) as usize)
    }

    /// One to two distinct nodes, in order.
    fn nodes(&mut self) -> Vec<NodeId> {
        let first = self.node();
        let mut nodes = vec![first];
        if self.below(2) == 0 {
            let second = self.node();
            if second != first {
                nodes.push(second);
            }
        }
        nodes.sort();
        nodes
    }

    /// One run in three loses power, within the fault window.
    fn power_loss(&mut self) -> Option<PowerLoss> {
        if self.below(3) != 0 {
            return None;
        }
        Some(PowerLoss {
            at: QUIET_START + self.duration_below(FAULT_WINDOW),
            kept_percent: self.below(101) as u8,
            prefix: self.below(2) == 0,
        })
    }

    /// Every other run has a byzantine validator doing one to three wrongs.
    fn byzantine(&mut self) -> Option<Byzantine> {
        if self.below(2) == 0 {
            return None;
        }
        let node = NodeId(self.below(VALIDATORS as u64) as usize);
        let wrongs = self.between(1, 7);
        Some(Byzantine {
            node,
            equivocates: wrongs & 1 != 0,
            proposes_invalid_blocks: wrongs & 2 != 0,
            replays: wrongs & 4 != 0,
        })
    }

    fn fault(&mut self) -> Fault {
        match self.below(3) {
            0 => Fault::Crash(self.node()),
            1 => Fault::Partition(self.nodes()),
            _ => {
                let quality = LinkQuality {
                    latency: Duration::from_millis(self.between(5, 400)),
                    jitter: Duration::from_millis(self.between(0, 200)),
                    delivered_percent: self.between(60, 100) as u8,
                };
                Fault::Degrade(self.nodes(), quality)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_plan_every_time() {
        let a = Plan::draw(Seed(7));
        let b = Plan::draw(Seed(7));
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(a.to_string(), Plan::draw(Seed(8)).to_string());
    }

    #[test]
    fn every_fault_ends_by_the_heal_time() {
        for seed in 0..500 {
            let plan = Plan::draw(Seed(seed));
            assert!(!plan.injections.is_empty());
            for i in &plan.injections {
                assert!(i.from >= QUIET_START && i.from < i.until, "{plan}");
                assert!(i.until <= plan.healed_at, "{plan}");
            }
            assert!(plan.injections.windows(2).all(|w| w[0].from <= w[1].from));
        }
    }
}
