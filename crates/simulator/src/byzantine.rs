//! A byzantine validator, modelled on commonware's simplex mocks but on Trellis's own engine:
//! it runs the real node, with its outgoing consensus messages and its proposals twisted.
//!
//! - **Equivocation** (the mocks' conflicter): beside each notarize or finalize it signs, it
//!   signs one for another block in the same view and sends it to some of its peers, so they
//!   hold two votes of one view from one key: evidence.
//! - **Forks as leader**: for some of the valid blocks it proposes, it builds a second valid
//!   block of the same view (its timestamp a millisecond later), pushes both blocks to every
//!   peer, and sends some peers its notarize for the second one ahead of the one for the first,
//!   so honest validators split their votes between two real blocks of one view.
//! - **Invalid blocks**: some blocks it proposes carry a wrong state root, name a wrong parent,
//!   or hold a transaction that does not decode; honest validators must refuse them.
//! - **Replays** (the mocks' outdated): it sends again votes and certificates it sent long ago.
//!
//! Its choices come from its own [`Draw`], seeded from the run's seed, so they replay too.

use crate::plan::{Byzantine, Draw};
use alloy_primitives::{B256, U256};
use commonware_actor::{Feedback, Unreliable};
use commonware_codec::{DecodeExt as _, Encode as _, ReadExt as _, varint::UInt};
use commonware_consensus::simplex::types::{Finalize, Notarize, Proposal, Vote};
use commonware_p2p::{CheckedSender, LimitedSender, Recipients, Sender};
use commonware_runtime::{IoBuf, IoBufs};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::SystemTime,
};
use trellis_consensus::{
    Built, ConsensusBlock, Ledger, Member, Path, Proposal as LedgerProposal, Scheme,
};
use trellis_types::{Block, BlockHash, Bytes, ClaimedSenders, Epoch, Height, StateRoot, Timestamp};

/// What the twisted node has done, for the end-of-run checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Misdeeds {
    /// Second votes sent for a view it had already voted in.
    pub equivocations: u64,
    pub invalid_blocks: u64,
    pub replays: u64,
    /// Views it proposed two valid blocks in (forks as leader).
    pub forks: u64,
}

/// Two valid blocks it proposed for one view: the one its consensus proposed, and a second.
#[derive(Clone, Debug)]
pub struct Fork {
    pub first: BlockHash,
    pub second: BlockHash,
    /// Both blocks as the block channel carries them.
    first_bytes: Vec<u8>,
    second_bytes: Vec<u8>,
}

/// Messages kept for replaying; older ones fall out.
const REPLAY_MEMORY: usize = 512;
/// A replayed message is at least this many sends old.
const REPLAY_AGE: usize = 64;
/// Forks still matched against what is sent; a block is pushed and voted on soon after it is
/// proposed.
const FORK_MEMORY: usize = 8;

/// The byzantine validator's twisted state, shared by its senders and its ledger.
pub struct Twist {
    byzantine: Byzantine,
    /// Signs the forged votes: the validator's own key, for the simulation's one epoch set.
    scheme: Scheme,
    inner: Mutex<TwistState>,
}

struct TwistState {
    draw: Draw,
    /// Copies, not the runtime's buffers: the twist outlives a power loss's runtime.
    sent: VecDeque<Vec<u8>>,
    misdeeds: Misdeeds,
    /// Every fork made, oldest first; only the last `FORK_MEMORY` are matched against sends.
    forks: Vec<Fork>,
}

/// What to send beside a message: some before it, some after, each to its recipients.
struct Extras<P> {
    before: Vec<(Vec<P>, IoBuf)>,
    after: Vec<(Vec<P>, IoBuf)>,
}

impl Twist {
    pub fn new(byzantine: Byzantine, scheme: Scheme, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            byzantine,
            scheme,
            inner: Mutex::new(TwistState {
                draw: Draw::new(seed ^ 0xb12a_0717_e000_0001),
                sent: VecDeque::new(),
                misdeeds: Misdeeds::default(),
                forks: Vec::new(),
            }),
        })
    }

    pub fn misdeeds(&self) -> Misdeeds {
        self.state().misdeeds
    }

    /// Every fork it made as leader.
    pub fn forks(&self) -> Vec<Fork> {
        self.state().forks.clone()
    }

    /// The most recent of the last `FORK_MEMORY` forks that `matches`.
    fn fork_of(&self, matches: impl Fn(&Fork) -> bool) -> Option<Fork> {
        let state = self.state();
        let recent = state.forks.len().saturating_sub(FORK_MEMORY);
        state.forks[recent..]
            .iter()
            .rev()
            .find(|f| matches(f))
            .cloned()
    }

    /// Records a fork: `first`, the block its consensus proposed, and `second`.
    fn fork(&self, first: &Built, second: Built) {
        let bytes = |built: Built| {
            ConsensusBlock::with_senders(built.block, built.senders)
                .expect("the node's own block claims one sender per transaction")
                .encode()
                .to_vec()
        };
        let fork = Fork {
            first: first.block.hash(),
            second: second.block.hash(),
            first_bytes: bytes(first.clone()),
            second_bytes: bytes(second),
        };
        let mut state = self.state();
        state.misdeeds.forks += 1;
        state.forks.push(fork);
    }

    /// A hash that names no block.
    fn noise(&self) -> B256 {
        B256::from(U256::from(self.state().draw.below(u64::MAX)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TwistState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The messages to send beside `frame` (a block, or a vote or certificate prefixed by its
    /// epoch), with their recipients chosen among `recipients`.
    fn extras<P: Clone>(&self, carries: Carries, frame: &IoBuf, recipients: &[P]) -> Extras<P> {
        let mut extras = Extras {
            before: Vec::new(),
            after: Vec::new(),
        };
        match carries {
            Carries::Other => return extras,
            // The second block of a fork goes wherever its first goes.
            Carries::Blocks => {
                if let Some(fork) = self.fork_of(|f| f.first_bytes == frame.as_ref()) {
                    let second = IoBuf::from(fork.second_bytes);
                    extras.after.push((recipients.to_vec(), second));
                }
                return extras;
            }
            Carries::Votes | Carries::Certificates => {}
        }
        if self.byzantine.equivocates
            && carries == Carries::Votes
            && let Some((forged, fork)) = self.forge(frame)
        {
            let mut state = self.state();
            // Some peers get both votes (they can prove the fault), the others only one.
            let victims: Vec<P> = recipients
                .iter()
                .filter(|_| state.draw.below(2) == 0)
                .cloned()
                .collect();
            if !victims.is_empty() {
                state.misdeeds.equivocations += 1;
                // A fork's second notarize goes first, so its victims vote for the second
                // block.
                let to = if fork {
                    &mut extras.before
                } else {
                    &mut extras.after
                };
                to.push((victims, forged));
            }
        }
        if self.byzantine.replays {
            let mut state = self.state();
            if state.sent.len() > REPLAY_AGE && state.draw.below(4) == 0 {
                let eligible = (state.sent.len() - REPLAY_AGE) as u64;
                let old = state.draw.below(eligible) as usize;
                let replayed = IoBuf::from(state.sent[old].clone());
                state.misdeeds.replays += 1;
                extras.after.push((recipients.to_vec(), replayed));
            }
            if state.sent.len() == REPLAY_MEMORY {
                state.sent.pop_front();
            }
            state.sent.push_back(frame.as_ref().to_vec());
        }
        extras
    }

    /// A vote for another block in the same view as the notarize or finalize in `frame`,
    /// signed with the validator's key, and whether it is a fork's second notarize (for a real
    /// block; otherwise the other block is noise); `None` for anything else.
    fn forge(&self, frame: &IoBuf) -> Option<(IoBuf, bool)> {
        let mut buf = frame.clone();
        let epoch = UInt::<u64>::read(&mut buf).ok()?;
        let vote = Vote::<Scheme, BlockHash>::decode(buf).ok()?;
        let other = |proposal: &Proposal<BlockHash>, payload: BlockHash| {
            Proposal::new(proposal.round, proposal.parent, payload)
        };
        let (forged, fork) = match vote {
            Vote::Notarize(n) => {
                let fork = self.fork_of(|f| f.first == n.proposal.payload);
                let payload = fork
                    .as_ref()
                    .map_or_else(|| BlockHash(self.noise()), |f| f.second);
                let forged = Notarize::sign(&self.scheme, other(&n.proposal, payload))?;
                (Vote::Notarize(forged), fork.is_some())
            }
            Vote::Finalize(f) => {
                let payload = BlockHash(self.noise());
                let forged = Finalize::sign(&self.scheme, other(&f.proposal, payload))?;
                (Vote::Finalize(forged), false)
            }
            Vote::Nullify(_) => return None,
        };
        let mut out = epoch.encode().to_vec();
        out.extend_from_slice(&forged.encode());
        Some((IoBuf::from(out), fork))
    }
}

/// What a twisted channel carries: votes are forged and replayed, certificates replayed,
/// blocks joined by a fork's second block, the rest (fetches) left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carries {
    Votes,
    Certificates,
    Blocks,
    Other,
}

/// A consensus channel's sender, twisted.
#[derive(Clone)]
pub struct Twisted<S> {
    inner: S,
    /// Sends the extras: the checked sender of `inner` is spent on the original.
    extra: S,
    twist: Arc<Twist>,
    carries: Carries,
}

impl<S: Clone> Twisted<S> {
    pub fn new(inner: S, twist: Arc<Twist>, carries: Carries) -> Self {
        Self {
            extra: inner.clone(),
            inner,
            twist,
            carries,
        }
    }
}

impl<S: Sender> LimitedSender for Twisted<S> {
    type PublicKey = S::PublicKey;
    type Checked<'a>
        = TwistedChecked<'a, S>
    where
        Self: 'a;

    fn check(
        &mut self,
        recipients: Recipients<Self::PublicKey>,
    ) -> Result<Self::Checked<'_>, SystemTime> {
        let checked = self.inner.check(recipients)?;
        Ok(TwistedChecked {
            checked,
            extra: &mut self.extra,
            twist: &self.twist,
            carries: self.carries,
        })
    }
}

pub struct TwistedChecked<'a, S: Sender + 'a> {
    checked: S::Checked<'a>,
    extra: &'a mut S,
    twist: &'a Twist,
    carries: Carries,
}

impl<'a, S: Sender + 'a> CheckedSender for TwistedChecked<'a, S> {
    type PublicKey = S::PublicKey;

    fn recipients(&self) -> Vec<Self::PublicKey> {
        self.checked.recipients()
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let frame = message.into().coalesce();
        let recipients = self.checked.recipients();
        let Extras { before, after } = self.twist.extras(self.carries, &frame, &recipients);
        for (to, extra) in before {
            let _ = self.extra.send(Recipients::Some(to), extra, priority);
        }
        let feedback = self.checked.send(frame, priority);
        for (to, extra) in after {
            let _ = self.extra.send(Recipients::Some(to), extra, priority);
        }
        feedback
    }
}

/// The chain under a byzantine validator: some of its proposals are spoiled.
#[derive(Clone)]
pub struct Spoiling<L> {
    inner: L,
    twist: Arc<Twist>,
}

impl<L> Spoiling<L> {
    pub fn new(inner: L, twist: Arc<Twist>) -> Self {
        Self { inner, twist }
    }
}

/// One way to spoil a block.
fn spoil(built: Built, how: u64, noise: B256) -> Built {
    let mut header = built.block.header().clone();
    let mut transactions = built.block.transactions().to_vec();
    match how {
        0 => header.state_root = StateRoot(noise),
        1 => header.parent = BlockHash(noise),
        _ => {
            transactions.push(Bytes::from_static(b"\x02not a transaction"));
            header.transactions_root = trellis_types::transactions_root(&transactions);
        }
    }
    let block = Block::new(header, transactions).expect("the transactions root was recomputed");
    Built {
        block,
        senders: ClaimedSenders::none(),
    }
}

impl<L: Ledger> Ledger for Spoiling<L> {
    type Error = L::Error;
    type Prepared = L::Prepared;

    fn knows(&self, block: &BlockHash) -> bool {
        self.inner.knows(block)
    }

    fn has_pending_transactions(&self) -> bool {
        self.inner.has_pending_transactions()
    }

    fn applied_height(&self) -> Height {
        self.inner.applied_height()
    }

    async fn propose(&self, path: Path, proposal: LedgerProposal) -> Option<Built> {
        let built = self.inner.propose(path.clone(), proposal).await?;
        let (spoiled, forked) = {
            let byzantine = self.twist.byzantine;
            let mut state = self.twist.state();
            let spoiled = (byzantine.proposes_invalid_blocks && state.draw.below(2) == 0)
                .then(|| state.draw.below(3));
            if spoiled.is_some() {
                state.misdeeds.invalid_blocks += 1;
            }
            let forked = spoiled.is_none() && byzantine.equivocates && state.draw.below(2) == 0;
            (spoiled, forked)
        };
        if let Some(how) = spoiled {
            return Some(spoil(built, how, self.twist.noise()));
        }
        if forked {
            // As valid as the first: the same view, parent and pool, a millisecond later.
            let later = LedgerProposal {
                timestamp: Timestamp(proposal.timestamp.millis() + 1),
                ..proposal
            };
            if let Some(second) = self.inner.propose(path, later).await {
                self.twist.fork(&built, second);
            }
        }
        Some(built)
    }

    async fn verify(&self, path: Path) -> Result<(), Self::Error> {
        self.inner.verify(path).await
    }

    async fn prepare(&self, block: &Block, senders: &ClaimedSenders) -> Self::Prepared {
        self.inner.prepare(block, senders).await
    }

    async fn finalize(&self, block: Block, prepared: Self::Prepared) {
        self.inner.finalize(block, prepared).await
    }

    async fn validators(&self, epoch: Epoch) -> Option<Vec<Member>> {
        self.inner.validators(epoch).await
    }

    async fn full_nodes(&self, epoch: Epoch) -> Vec<Member> {
        self.inner.full_nodes(epoch).await
    }
}
