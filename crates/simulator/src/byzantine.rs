//! A byzantine validator, modelled on commonware's simplex mocks but on Trellis's own engine:
//! it runs the real node, with its outgoing consensus messages and its proposals twisted.
//!
//! - **Equivocation** (the mocks' conflicter): beside each notarize or finalize it signs, it
//!   signs one for another block in the same view and sends it to some of its peers, so they
//!   hold two votes of one view from one key: evidence.
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
use trellis_consensus::{Built, Ledger, Member, Path, Proposal as LedgerProposal, Scheme};
use trellis_types::{Block, BlockHash, Bytes, ClaimedSenders, Epoch, Height, StateRoot};

/// What the twisted node has done, for the end-of-run checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Misdeeds {
    /// Second votes sent for a view it had already voted in.
    pub equivocations: u64,
    pub invalid_blocks: u64,
    pub replays: u64,
}

/// Messages kept for replaying; older ones fall out.
const REPLAY_MEMORY: usize = 512;
/// A replayed message is at least this many sends old.
const REPLAY_AGE: usize = 64;

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
            }),
        })
    }

    pub fn misdeeds(&self) -> Misdeeds {
        self.state().misdeeds
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

    /// The messages to send beside `frame` (a vote or certificate, prefixed by its epoch),
    /// with their recipients chosen among `recipients`.
    fn extras<P: Clone>(
        &self,
        carries: Carries,
        frame: &IoBuf,
        recipients: &[P],
    ) -> Vec<(Vec<P>, IoBuf)> {
        let mut extras = Vec::new();
        if carries == Carries::Other {
            return extras;
        }
        if self.byzantine.equivocates
            && carries == Carries::Votes
            && let Some(forged) = self.forge(frame)
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
                extras.push((victims, forged));
            }
        }
        if self.byzantine.replays {
            let mut state = self.state();
            if state.sent.len() > REPLAY_AGE && state.draw.below(4) == 0 {
                let eligible = (state.sent.len() - REPLAY_AGE) as u64;
                let old = state.draw.below(eligible) as usize;
                let replayed = IoBuf::from(state.sent[old].clone());
                state.misdeeds.replays += 1;
                extras.push((recipients.to_vec(), replayed));
            }
            if state.sent.len() == REPLAY_MEMORY {
                state.sent.pop_front();
            }
            state.sent.push_back(frame.as_ref().to_vec());
        }
        extras
    }

    /// A vote for another block in the same view as the notarize or finalize in `frame`,
    /// signed with the validator's key; `None` for anything else.
    fn forge(&self, frame: &IoBuf) -> Option<IoBuf> {
        let mut buf = frame.clone();
        let epoch = UInt::<u64>::read(&mut buf).ok()?;
        let vote = Vote::<Scheme, BlockHash>::decode(buf).ok()?;
        let other = |proposal: &Proposal<BlockHash>| {
            let payload = BlockHash(self.noise());
            Proposal::new(proposal.round, proposal.parent, payload)
        };
        let forged = match vote {
            Vote::Notarize(n) => Vote::Notarize(Notarize::sign(&self.scheme, other(&n.proposal))?),
            Vote::Finalize(f) => Vote::Finalize(Finalize::sign(&self.scheme, other(&f.proposal))?),
            Vote::Nullify(_) => return None,
        };
        let mut out = epoch.encode().to_vec();
        out.extend_from_slice(&forged.encode());
        Some(IoBuf::from(out))
    }
}

/// What a twisted channel carries: votes are forged and replayed, certificates replayed,
/// the rest (blocks, fetches) left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carries {
    Votes,
    Certificates,
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
        let extras = self.twist.extras(self.carries, &frame, &recipients);
        let feedback = self.checked.send(frame, priority);
        for (to, extra) in extras {
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
        let built = self.inner.propose(path, proposal).await?;
        if !self.twist.byzantine.proposes_invalid_blocks {
            return Some(built);
        }
        let how = {
            let mut state = self.twist.state();
            let spoiled = state.draw.below(2) == 0;
            if spoiled {
                state.misdeeds.invalid_blocks += 1;
            }
            spoiled.then(|| state.draw.below(3))
        };
        Some(match how {
            Some(how) => spoil(built, how, self.twist.noise()),
            None => built,
        })
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
