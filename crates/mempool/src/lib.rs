//! Pending transactions, waiting for a leader to propose them.
//!
//! Admission checks everything that can be checked before execution: size, decoding, signature
//! (the sender is recovered once here and reused when the transaction comes back in a block),
//! chain id, fee floor, gas limit, nonce window and the sender's balance for all its pending
//! transactions. The pool is bounded: when full it refuses with [`AdmissionError::PoolFull`]
//! instead of dropping anything silently.
//!
//! Proposers take [`Mempool::candidates`]: per sender in nonce order, senders interleaved by
//! arrival. Transactions leave the pool when a finalized block includes them, or when the
//! sender's nonce has moved past them.

mod index;

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, TxHash, U256, keccak256};
use index::Inner;
use std::{
    collections::{BinaryHeap, HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};
use trellis_governance::{Intent, Refusal, RegistryError, Request, When};
use trellis_state::{StateError, StateReader};
use trellis_types::{Bytes, ChainId, RecoveredTx, TxError, transaction};

/// Pool limits and the chain rules admission applies.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub chain_id: ChainId,
    /// Most transactions held at once.
    pub capacity: usize,
    /// How far ahead of an account's nonce a transaction may be.
    pub nonce_window: u64,
    /// Largest accepted EIP-2718 envelope.
    pub max_transaction_bytes: usize,
    /// A transaction's gas limit may not exceed a block's.
    pub block_gas_limit: u64,
    /// The fee floor: the chain's base fee per gas.
    pub min_gas_price: u128,
}

impl PoolConfig {
    pub fn new(chain_id: ChainId, block_gas_limit: u64, min_gas_price: u128) -> Self {
        Self {
            chain_id,
            capacity: 50_000,
            nonce_window: 1_024,
            max_transaction_bytes: 128 * 1024,
            block_gas_limit,
            min_gas_price,
        }
    }
}

/// Why a transaction was refused. The messages follow the wording Ethereum clients and tools
/// recognise (geth's), so users see the familiar reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("oversized data: transaction is {size} bytes, the limit is {limit}")]
    Oversized { size: usize, limit: usize },
    #[error("malformed transaction: {0}")]
    Malformed(String),
    #[error("transaction type {0} not supported (send legacy, EIP-2930 or EIP-1559)")]
    UnsupportedType(u8),
    #[error("invalid sender: the signature does not recover to a public key")]
    InvalidSignature,
    #[error("invalid chain id: expected {expected}, got {}", got.map_or("none (pre-EIP-155)".to_string(), |id| id.to_string()))]
    WrongChainId {
        expected: ChainId,
        got: Option<ChainId>,
    },
    #[error("nonce too low: next nonce {expected}, tx nonce {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error(
        "nonce too high: tx nonce {got} is more than {window} ahead of the account's nonce {expected}"
    )]
    NonceTooHigh {
        expected: u64,
        got: u64,
        window: u64,
    },
    #[error("insufficient funds for gas * price + value: balance {balance}, cost {cost}")]
    InsufficientFunds { balance: U256, cost: U256 },
    #[error("exceeds block gas limit: gas limit {gas} above the block's {limit}")]
    GasLimitTooHigh { gas: u64, limit: u64 },
    #[error("intrinsic gas too low: gas limit {gas} is below the 21000 every transaction costs")]
    GasLimitTooLow { gas: u64 },
    #[error("max fee per gas less than block base fee: {got} < {min}")]
    FeeTooLow { got: u128, min: u128 },
    #[error("already known")]
    AlreadyKnown,
    #[error("replacement transaction underpriced: raise both fees by at least 10%")]
    ReplacementUnderpriced,
    #[error("txpool is full: {capacity} transactions pending, try again later")]
    PoolFull { capacity: usize },
    #[error("txpool is busy: {queue} transactions await sender recovery, try again later")]
    Busy { queue: usize },
    #[error(
        "throttled: this node's risk rules refuse transactions from {sender} for another {retry_after_ms} ms (too many, or too much value, in a short time); the node's operator sees the alarm"
    )]
    Throttled {
        sender: Address,
        retry_after_ms: u64,
    },
    #[error("state unavailable: {0}")]
    State(#[from] StateError),
    #[error("not permitted: {0}")]
    NotPermitted(#[from] Refusal),
    #[error("{0}")]
    Registry(#[from] RegistryError),
}

impl AdmissionError {
    /// The kind of refusal, as a metric label: stable, short, no values in it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "oversized",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedType(_) => "unsupported_type",
            Self::InvalidSignature => "invalid_signature",
            Self::WrongChainId { .. } => "wrong_chain_id",
            Self::NonceTooLow { .. } => "nonce_too_low",
            Self::NonceTooHigh { .. } => "nonce_too_high",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::GasLimitTooHigh { .. } => "gas_limit_too_high",
            Self::GasLimitTooLow { .. } => "gas_limit_too_low",
            Self::FeeTooLow { .. } => "fee_too_low",
            Self::AlreadyKnown => "already_known",
            Self::ReplacementUnderpriced => "replacement_underpriced",
            Self::PoolFull { .. } => "pool_full",
            Self::Busy { .. } => "busy",
            Self::Throttled { .. } => "throttled",
            Self::State(_) => "state_unavailable",
            Self::NotPermitted(_) => "not_permitted",
            Self::Registry(_) => "registry",
        }
    }
}

impl From<TxError> for AdmissionError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Malformed(detail) => Self::Malformed(detail),
            TxError::UnsupportedType(ty) => Self::UnsupportedType(ty),
            TxError::InvalidSignature => Self::InvalidSignature,
        }
    }
}

/// The gas every transaction pays before doing anything.
const BASE_GAS: u64 = 21_000;

/// A transaction that passed every check needing no state; [`Mempool::admit`] checks the rest.
#[derive(Debug)]
pub struct Prepared(RecoveredTx);

impl Prepared {
    /// The recovered sender, whose account admission needs.
    pub fn sender(&self) -> Address {
        self.0.sender()
    }

    /// The transaction's hash.
    pub fn hash(&self) -> TxHash {
        self.0.hash()
    }

    /// The value it sends.
    pub fn value(&self) -> U256 {
        self.0.envelope().value()
    }

    /// What it asks, as the consortium's rules see it (a creation needs the deployer role; a
    /// call of a restricted function, that function's role; its value, the sender's limits).
    pub fn request(&self) -> Request {
        let envelope = self.0.envelope();
        Request {
            sender: self.sender(),
            intent: Intent::of(envelope.to(), envelope.input()),
            value: envelope.value(),
        }
    }

    /// Refused if the consortium's rules in `state` (the latest final state) forbid it `when`
    /// (the next block).
    pub fn check_rules(
        &self,
        state: &(impl StateReader + ?Sized),
        when: When,
    ) -> Result<(), AdmissionError> {
        check_rules(state, &self.request(), when)
    }
}

/// Refused if the consortium's rules in `state` (the latest final state) forbid `request`
/// `when` (the next block; its day as of the latest block's time): the check block execution
/// makes (`trellis_governance::tx_refusal`), made early, so a transaction every node would leave
/// out of its blocks is never pooled.
pub fn check_rules(
    state: &(impl StateReader + ?Sized),
    request: &Request,
    when: When,
) -> Result<(), AdmissionError> {
    if !trellis_governance::governed(state)? {
        return Ok(());
    }
    check_governed(state, request, when)
}

/// [`check_rules`] for a caller that knows the chain is governed (it checked once for a batch).
pub fn check_governed(
    state: &(impl StateReader + ?Sized),
    request: &Request,
    when: When,
) -> Result<(), AdmissionError> {
    match trellis_governance::tx_refusal(state, request, when)? {
        Some(refusal) => Err(refusal.into()),
        None => Ok(()),
    }
}

/// A pending transaction.
#[derive(Debug)]
pub struct PooledTx {
    tx: RecoveredTx,
    /// Arrival order: earlier transactions are proposed first.
    seq: u64,
    /// gas limit × max fee + value: the most it can take from the sender.
    cost: U256,
}

impl PooledTx {
    pub fn tx(&self) -> &RecoveredTx {
        &self.tx
    }

    pub fn nonce(&self) -> u64 {
        self.tx.envelope().nonce()
    }

    pub fn gas_limit(&self) -> u64 {
        self.tx.envelope().gas_limit()
    }
}

/// The pool. Cheap to clone; clones share the same transactions.
#[derive(Clone)]
pub struct Mempool {
    config: Arc<PoolConfig>,
    /// The chain's current gas limit and fee floor (a consortium may change them): the
    /// configuration's until [`Mempool::set_params`].
    params: Arc<Params>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Params {
    block_gas_limit: AtomicU64,
    min_gas_price: AtomicU64,
}

/// Limits of one block's worth of candidates.
#[derive(Clone, Copy, Debug)]
pub struct BlockBudget {
    pub gas: u64,
    pub bytes: usize,
    pub transactions: usize,
}

impl Mempool {
    pub fn new(config: PoolConfig) -> Self {
        let params = Params {
            block_gas_limit: AtomicU64::new(config.block_gas_limit),
            min_gas_price: AtomicU64::new(u64::try_from(config.min_gas_price).unwrap_or(u64::MAX)),
        };
        Self {
            config: Arc::new(config),
            params: Arc::new(params),
            inner: Arc::default(),
        }
    }

    /// The gas limit and fee floor admission checks from now on (the chain's, after a block
    /// that changed them). Pending transactions that no longer fit are left to execution,
    /// which skips and evicts them.
    pub fn set_params(&self, block_gas_limit: u64, min_gas_price: u64) {
        self.params
            .block_gas_limit
            .store(block_gas_limit, Ordering::Relaxed);
        self.params
            .min_gas_price
            .store(min_gas_price, Ordering::Relaxed);
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("mempool lock poisoned")
    }

    pub fn len(&self) -> usize {
        self.lock().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().by_hash.is_empty()
    }

    pub fn contains(&self, hash: &TxHash) -> bool {
        self.lock().by_hash.contains_key(hash)
    }

    /// The decoded transaction with its recovered sender, if pending.
    pub fn get(&self, hash: &TxHash) -> Option<RecoveredTx> {
        self.lock().by_hash.get(hash).map(|p| p.tx.clone())
    }

    /// Admits a raw EIP-2718 transaction, checked against `state` (the latest final state) for
    /// inclusion in the next block, `next`.
    pub fn add(
        &self,
        raw: Bytes,
        state: &impl StateReader,
        next: When,
    ) -> Result<TxHash, AdmissionError> {
        let checked = self.prepare(raw)?;
        checked.check_rules(state, next)?;
        let account = state.account(&checked.sender())?.unwrap_or_default();
        self.admit(checked, account.nonce, account.balance)
    }

    /// The checks that need no state: size, decoding, sender recovery (the expensive part),
    /// chain id, gas and fee. Takes no lock across the recovery.
    pub fn prepare(&self, raw: Bytes) -> Result<Prepared, AdmissionError> {
        let limit = self.config.max_transaction_bytes;
        if raw.len() > limit {
            return Err(AdmissionError::Oversized {
                size: raw.len(),
                limit,
            });
        }
        // Both refusals come before the recovery, so duplicates (gossip) and a flood against a
        // full pool are shed for the price of a hash. While full, even a replacement waits
        // for room (its sender is not known before the recovery).
        let hash = keccak256(&raw);
        if self.contains(&hash) {
            return Err(AdmissionError::AlreadyKnown);
        }
        let capacity = self.config.capacity;
        if self.len() >= capacity {
            return Err(AdmissionError::PoolFull { capacity });
        }
        let tx = transaction::decode_hashed(raw, hash)?;
        self.check_static(&tx)?;
        Ok(Prepared(tx))
    }

    /// Admits a prepared transaction whose sender's latest final account has `account_nonce`
    /// and `balance`.
    pub fn admit(
        &self,
        prepared: Prepared,
        account_nonce: u64,
        balance: U256,
    ) -> Result<TxHash, AdmissionError> {
        let mut inner = self.lock();
        if inner.by_hash.contains_key(&prepared.0.hash()) {
            // Admitted by someone else since `prepare`.
            return Err(AdmissionError::AlreadyKnown);
        }
        let pooled = self.check_against(&inner, prepared.0, account_nonce, balance)?;
        let hash = pooled.tx.hash();
        let pooled = Arc::new(PooledTx {
            seq: inner.next_seq,
            ..pooled
        });
        inner.next_seq += 1;
        inner.insert(pooled);
        Ok(hash)
    }

    /// The rules that need no state.
    fn check_static(&self, tx: &RecoveredTx) -> Result<(), AdmissionError> {
        let expected = self.config.chain_id;
        if tx.chain_id() != Some(expected) {
            return Err(AdmissionError::WrongChainId {
                expected,
                got: tx.chain_id(),
            });
        }
        let envelope = tx.envelope();
        let gas = envelope.gas_limit();
        if gas < BASE_GAS {
            return Err(AdmissionError::GasLimitTooLow { gas });
        }
        let limit = self.params.block_gas_limit.load(Ordering::Relaxed);
        if gas > limit {
            return Err(AdmissionError::GasLimitTooHigh { gas, limit });
        }
        let fee = envelope.max_fee_per_gas();
        let min = u128::from(self.params.min_gas_price.load(Ordering::Relaxed));
        if fee < min {
            return Err(AdmissionError::FeeTooLow { got: fee, min });
        }
        Ok(())
    }

    /// The rules that depend on the sender's account and its other pending transactions.
    fn check_against(
        &self,
        inner: &Inner,
        tx: RecoveredTx,
        account_nonce: u64,
        balance: U256,
    ) -> Result<PooledTx, AdmissionError> {
        let nonce = tx.envelope().nonce();
        if nonce < account_nonce {
            return Err(AdmissionError::NonceTooLow {
                expected: account_nonce,
                got: nonce,
            });
        }
        let window = self.config.nonce_window;
        if nonce - account_nonce >= window {
            return Err(AdmissionError::NonceTooHigh {
                expected: account_nonce,
                got: nonce,
                window,
            });
        }
        let envelope = tx.envelope();
        let cost = U256::from(envelope.gas_limit()) * U256::from(envelope.max_fee_per_gas())
            + envelope.value();
        let queue = inner.by_sender.get(&tx.sender());
        let existing = queue.and_then(|q| q.get(&nonce));
        if let Some(old) = existing {
            check_replacement(old.tx(), &tx)?;
        } else if inner.by_hash.len() >= self.config.capacity {
            return Err(AdmissionError::PoolFull {
                capacity: self.config.capacity,
            });
        }
        // Everything the sender's earlier pending transactions may spend comes first (stale
        // ones below the account's nonce spend nothing more).
        let earlier = inner.cost_between(&tx.sender(), account_nonce, nonce);
        if earlier + cost > balance {
            return Err(AdmissionError::InsufficientFunds {
                balance,
                cost: earlier + cost,
            });
        }
        Ok(PooledTx { tx, seq: 0, cost })
    }

    /// The nonce `eth_getTransactionCount(…, "pending")` reports: past the pending transactions
    /// that follow the account's nonce without a gap.
    pub fn pending_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let inner = self.lock();
        let mut next = account_nonce;
        if let Some(queue) = inner.by_sender.get(sender) {
            while queue.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Transactions for a block, within `budget`: each sender's run of consecutive nonces from
    /// `nonce_of(sender)` (its nonce in the state the block builds on), senders interleaved by
    /// arrival. Transactions in `exclude` (already in unfinalized ancestors) are passed over.
    pub fn candidates(
        &self,
        budget: BlockBudget,
        exclude: &HashSet<TxHash>,
        mut nonce_of: impl FnMut(&Address) -> Option<u64>,
    ) -> Vec<RecoveredTx> {
        // The nonces are read from state (storage I/O) without the pool's lock held, so
        // admission never waits on a disk read.
        let senders: Vec<Address> = self.lock().by_sender.keys().copied().collect();
        let nonces: HashMap<Address, u64> = senders
            .into_iter()
            .filter_map(|sender| Some((sender, nonce_of(&sender)?)))
            .collect();
        let inner = self.lock();
        // One cursor per sender: the next nonce to take. Ordered by that transaction's arrival.
        let mut heap = BinaryHeap::new();
        for (sender, queue) in &inner.by_sender {
            let Some(mut nonce) = nonces.get(sender).copied() else {
                continue;
            };
            while queue
                .get(&nonce)
                .is_some_and(|p| exclude.contains(&p.tx.hash()))
            {
                nonce += 1;
            }
            if let Some(p) = queue.get(&nonce) {
                heap.push(std::cmp::Reverse((p.seq, *sender, nonce)));
            }
        }
        let (mut gas, mut bytes) = (0u64, 0usize);
        let mut picked = Vec::new();
        while let Some(std::cmp::Reverse((_, sender, nonce))) = heap.pop() {
            if picked.len() >= budget.transactions {
                break;
            }
            let queue = &inner.by_sender[&sender];
            let p = &queue[&nonce];
            let size = p.tx.raw().len();
            if gas + p.gas_limit() > budget.gas || bytes + size > budget.bytes {
                continue; // Too big for what is left; this sender waits for the next block.
            }
            gas += p.gas_limit();
            bytes += size;
            picked.push(p.tx.clone());
            if let Some(next) = queue.get(&(nonce + 1)) {
                heap.push(std::cmp::Reverse((next.seq, sender, nonce + 1)));
            }
        }
        picked
    }

    /// Removes transactions a finalized block included, and every pending transaction of
    /// `senders` whose nonce the state has moved past (`nonce_of` reads the new state).
    pub fn remove_finalized(
        &self,
        included: &[TxHash],
        senders: impl IntoIterator<Item = (Address, u64)>,
    ) {
        let mut inner = self.lock();
        for hash in included {
            inner.remove(hash);
        }
        for (sender, nonce) in senders {
            let stale: Vec<TxHash> = inner
                .by_sender
                .get(&sender)
                .map(|q| q.range(..nonce).map(|(_, p)| p.tx.hash()).collect())
                .unwrap_or_default();
            for hash in stale {
                inner.remove(&hash);
            }
        }
    }

    /// Every sender with a pending transaction.
    pub fn senders(&self) -> Vec<Address> {
        self.lock().by_sender.keys().copied().collect()
    }

    /// Drops every pending transaction of `senders` (the rules now refuse them); returns how
    /// many.
    pub fn remove_senders(&self, senders: &[Address]) -> usize {
        let mut inner = self.lock();
        let mut removed = 0;
        for sender in senders {
            let hashes: Vec<TxHash> = inner
                .by_sender
                .get(sender)
                .map(|q| q.values().map(|p| p.tx.hash()).collect())
                .unwrap_or_default();
            removed += hashes.len();
            for hash in hashes {
                inner.remove(&hash);
            }
        }
        removed
    }

    /// Drops transactions that can never be included (a proposer's execution refused them for
    /// good).
    pub fn evict(&self, hashes: &[TxHash]) {
        let mut inner = self.lock();
        for hash in hashes {
            inner.remove(hash);
        }
    }
}

/// A transaction may replace a pending one with the same nonce only by paying clearly more.
fn check_replacement(old: &RecoveredTx, new: &RecoveredTx) -> Result<(), AdmissionError> {
    let bumped = |old: u128, new: u128| new >= old.saturating_add(old / 10).max(old + 1);
    let (o, n) = (old.envelope(), new.envelope());
    let tip = |t: &alloy_consensus::TxEnvelope| {
        t.max_priority_fee_per_gas().unwrap_or(t.max_fee_per_gas())
    };
    if bumped(o.max_fee_per_gas(), n.max_fee_per_gas()) && bumped(tip(o), tip(n)) {
        Ok(())
    } else {
        Err(AdmissionError::ReplacementUnderpriced)
    }
}
