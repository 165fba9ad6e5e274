//! One open encrypted blob, shared by every handle to it (the node's and the re-encryption's):
//! the inner blob, its length, which keys encrypt which bytes, and the fence that keeps the
//! node's reads and writes out of a chunk while it is re-encrypted.
//!
//! Each read, write or resize enters the range it touches: it waits while a fence covers that
//! range and, once in, keeps a fence from being raised over it until it leaves. So a chunk
//! being re-encrypted is never read half-rewritten nor written to, and everything else of the
//! blob goes on meanwhile.

use crate::{BlobCipher, BlobHeader, record::RekeyRecord};
use commonware_runtime::{BlobVersion, Error};
use futures::channel::oneshot;
use std::{
    collections::BTreeMap,
    ops::Range,
    sync::{Arc, Mutex, MutexGuard},
};

/// What encrypts each byte of a blob.
#[derive(Clone, Debug)]
pub(crate) enum Keys {
    /// One keystream for the whole blob.
    Fixed(Arc<BlobCipher>),
    /// Moving to a new key: bytes below the watermark are under `new`, the rest under `old`.
    Moving {
        old: Arc<BlobCipher>,
        new: Arc<BlobCipher>,
        watermark: u64,
    },
}

impl Keys {
    /// Encrypts (or decrypts) `bytes`, which sit at `offset` in the blob.
    pub fn apply(&self, offset: u64, bytes: &mut [u8]) {
        match self {
            Self::Fixed(cipher) => cipher.apply(offset, bytes),
            Self::Moving {
                old,
                new,
                watermark,
            } => {
                let split = watermark.saturating_sub(offset).min(bytes.len() as u64) as usize;
                let (below, above) = bytes.split_at_mut(split);
                new.apply(offset, below);
                old.apply(offset + split as u64, above);
            }
        }
    }
}

/// The blob's state; the lock is held only to read or change it, never across I/O.
#[derive(Debug)]
pub(crate) struct State {
    /// The data's length (the header left out).
    pub len: u64,
    pub keys: Keys,
    /// The header on disk.
    pub header: BlobHeader,
    /// The latest durable re-encryption record, while the blob moves to a new key.
    pub record: Option<RekeyRecord>,
    /// The highest record number in its header page, so a new move's records outrank them.
    pub last_seq: u64,
    /// Whether a re-encryption is moving it (one at a time).
    pub moving: bool,
    /// Set once the blob is removed: a re-encryption of it stops.
    pub removed: bool,
    fence: Option<Range<u64>>,
    /// A chunk whose move stopped midway (an I/O error, or the move dropped): which key its
    /// bytes are under is known only to the records on disk, so operations on it fail until
    /// the blob is opened again (which finishes the chunk).
    poisoned: Option<Range<u64>>,
    inside: BTreeMap<u64, Range<u64>>,
    next_ticket: u64,
    /// Operations waiting for the fence to come down.
    waiting: Vec<oneshot::Sender<()>>,
    /// The re-encryption waiting for the operations inside its fence to leave.
    draining: Option<oneshot::Sender<()>>,
}

fn overlap(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

impl State {
    /// Whether a move stopped midway through some of the blob.
    pub fn poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    fn blocks(&self, range: &Range<u64>) -> bool {
        self.fence
            .as_ref()
            .is_some_and(|fence| overlap(fence, range))
    }

    fn drained(&self) -> bool {
        let Some(fence) = &self.fence else {
            return true;
        };
        !self.inside.values().any(|range| overlap(range, fence))
    }
}

/// An open encrypted blob, shared by its handles.
pub(crate) struct SharedBlob<B> {
    pub inner: B,
    pub version: BlobVersion,
    state: Mutex<State>,
}

/// An operation inside a range of the blob: the keys it uses, and the blob's length when it
/// entered. Leaves when dropped (also when the operation's future is dropped midway).
pub(crate) struct Entry<'a, B> {
    blob: &'a SharedBlob<B>,
    ticket: u64,
    pub keys: Keys,
    pub len: u64,
}

impl<B> SharedBlob<B> {
    pub fn new(inner: B, version: BlobVersion, len: u64, keys: Keys, header: BlobHeader) -> Self {
        Self {
            inner,
            version,
            state: Mutex::new(State {
                len,
                keys,
                header,
                record: None,
                last_seq: 0,
                moving: false,
                removed: false,
                fence: None,
                poisoned: None,
                inside: BTreeMap::new(),
                next_ticket: 0,
                waiting: Vec::new(),
                draining: None,
            }),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("the blob state lock is never held across a panic")
    }

    /// Enters the range `range(len)` names, once no fence covers it.
    pub async fn enter(&self, range: impl Fn(u64) -> Range<u64>) -> Result<Entry<'_, B>, Error> {
        loop {
            let wait = {
                let mut state = self.state();
                let range = range(state.len);
                if state.poisoned.as_ref().is_some_and(|p| overlap(p, &range)) {
                    return Err(Error::Io(Arc::new(std::io::Error::other(
                        "these bytes were being moved to a new data key when the move stopped: reopen the blob (restart the node) to finish the move",
                    ))));
                }
                if !state.blocks(&range) {
                    let ticket = state.next_ticket;
                    state.next_ticket += 1;
                    state.inside.insert(ticket, range);
                    return Ok(Entry {
                        blob: self,
                        ticket,
                        keys: state.keys.clone(),
                        len: state.len,
                    });
                }
                let (tx, rx) = oneshot::channel();
                state.waiting.push(tx);
                rx
            };
            // A cancelled sender (the fence's owner gone) also ends the wait.
            let _ = wait.await;
        }
    }

    /// Raises a fence over `range`; what to wait on for the operations inside it to leave.
    /// Only one fence stands at a time (one re-encryption per blob).
    fn raise(&self, range: Range<u64>) -> Option<oneshot::Receiver<()>> {
        let mut state = self.state();
        assert!(state.fence.is_none(), "one fence at a time");
        state.fence = Some(range);
        if state.drained() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        state.draining = Some(tx);
        Some(rx)
    }

    /// Takes the fence down after `change` (made while no operation is inside it).
    fn lift(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state();
        change(&mut state);
        state.fence = None;
        state.draining = None;
        for waiter in state.waiting.drain(..) {
            let _ = waiter.send(());
        }
    }
}

impl<B> Entry<'_, B> {
    /// Records that the blob now reaches `end` (after a write).
    pub fn grew_to(&self, end: u64) {
        let mut state = self.blob.state();
        state.len = state.len.max(end);
    }

    /// Records the blob's new length (after a resize).
    pub fn resized_to(&self, len: u64) {
        self.blob.state().len = len;
    }
}

impl<B> Drop for Entry<'_, B> {
    fn drop(&mut self) {
        let mut state = self.blob.state();
        state.inside.remove(&self.ticket);
        if state.draining.is_some() && state.drained() {
            let _ = state.draining.take().expect("checked").send(());
        }
    }
}

/// A fence that comes down if its owner's future is dropped before lifting it.
pub(crate) struct Fence<B> {
    blob: Arc<SharedBlob<B>>,
    lifted: bool,
}

impl<B> Fence<B> {
    /// Raises a fence over `range` of `blob` once every operation inside it has left.
    pub async fn raise(blob: Arc<SharedBlob<B>>, range: Range<u64>) -> Self {
        let wait = blob.raise(range);
        let fence = Self {
            blob,
            lifted: false,
        };
        if let Some(wait) = wait {
            let _ = wait.await;
        }
        fence
    }

    pub fn lift(mut self, change: impl FnOnce(&mut State)) {
        self.lifted = true;
        self.blob.lift(change);
    }
}

impl<B> Drop for Fence<B> {
    /// A fence dropped without being lifted: its owner stopped midway.
    fn drop(&mut self) {
        if !self.lifted {
            let mut state = self.blob.state();
            state.poisoned = state.fence.take();
            state.draining = None;
            for waiter in state.waiting.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}
