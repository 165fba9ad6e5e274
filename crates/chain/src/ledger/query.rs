//! What clients ask of the chain besides blocks: admission of their transactions, the state
//! after any finalized block (the latest directly, earlier ones through the history index),
//! read-only calls on it, proofs and histories, and notifications of new blocks and admitted
//! transactions.
//!
//! Every state read is a job on the state's owner in the clients' lane (see [`super::owner`]):
//! it sees one state throughout, and waits behind consensus's jobs, never in front of them.

use super::{Chain, Inner, admission::WhenFull, context_of, owner::Lane};
use crate::Runtime;
use crate::watch::{AdmissionWatch, Offer};
use alloy_primitives::{Address, Bytes, TxHash, U256};
use trellis_execution::{CallOutcome, CallRequest, ExecutionError};
use trellis_governance::{ChainParams, Day, Registry, Request, When};
use trellis_mempool::{AdmissionError, Prepared};
use trellis_state::{Account, History, StateError, StateProof, StateReader};
use trellis_types::{BlockHash, Header, Height};

impl<E: Runtime> Inner<E> {
    /// Runs `read` on the state after block `height` (at most the latest).
    fn read_at<T>(
        &self,
        height: Height,
        read: impl FnOnce(&dyn StateReader) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let finalized = &self.finalized;
        if height == finalized.tip.height {
            read(&finalized.state)
        } else {
            read(&finalized.state.at(height))
        }
    }
}

impl<E: Runtime> Chain<E> {
    /// Admits a transaction from a client to the pool, checked against the latest finalized
    /// state, and queues it for gossip to the other validators.
    pub async fn submit(&self, raw: trellis_types::Bytes) -> Result<TxHash, AdmissionError> {
        self.submit_many(vec![raw])
            .await
            .pop()
            .expect("one result per transaction")
    }

    /// Admits a client's batch in order (as [`Chain::submit`] would one after another), with
    /// one recovery job and one account read for all of it: per-transaction hand-offs between
    /// threads cost more than admitting the transaction. Refused whole with
    /// [`AdmissionError::Busy`] when recovery is backed up.
    pub async fn submit_many(
        &self,
        batch: Vec<trellis_types::Bytes>,
    ) -> Vec<Result<TxHash, AdmissionError>> {
        let admitted = self
            .admit_batch(batch.clone(), crate::metrics::Source::Client)
            .await;
        let feed = self.shared.gossip.lock().expect("gossip lock poisoned");
        if let Some(feed) = feed.as_ref() {
            let gossiped: Vec<_> = batch
                .into_iter()
                .zip(&admitted)
                .filter(|(_, a)| a.is_ok())
                .map(|(raw, _)| raw)
                .collect();
            if !gossiped.is_empty() {
                // Unbounded, but fed only by admitted transactions: the pool's capacity
                // bounds it.
                let _ = feed.unbounded_send(gossiped);
            }
        }
        admitted
    }

    /// Admits a batch of gossiped transactions (not gossiped again: every validator is
    /// connected to every other). A peer's batch waits for room in the recovery queue: its
    /// sender keeps it meanwhile.
    pub async fn admit_many(
        &self,
        batch: Vec<trellis_types::Bytes>,
    ) -> Vec<Result<TxHash, AdmissionError>> {
        self.admit_batch(batch, crate::metrics::Source::Peer).await
    }

    /// Sets risk control's view of admission (once; later calls are ignored): it sees every
    /// batch offered and throttles clients' senders.
    pub fn watch_admissions(&self, watch: std::sync::Arc<dyn AdmissionWatch>) {
        let _ = self.shared.watch.set(watch);
    }

    /// Admits `batch` from `source`, counts what became of it, and tells risk control.
    async fn admit_batch(
        &self,
        batch: Vec<trellis_types::Bytes>,
        source: crate::metrics::Source,
    ) -> Vec<Result<TxHash, AdmissionError>> {
        let watch = self.shared.watch.get();
        let when_full = match source {
            crate::metrics::Source::Client => WhenFull::Refuse,
            crate::metrics::Source::Peer => WhenFull::Wait,
        };
        let mut prepared = self.shared.admission.prepare(batch, when_full).await;
        let Some(watch) = watch else {
            let admitted = self.admit_prepared(prepared).await;
            self.shared.metrics.offered(source, &admitted);
            return admitted;
        };
        let facts: Vec<Option<(Address, TxHash, U256)>> = prepared
            .iter()
            .map(|slot| {
                slot.as_ref()
                    .ok()
                    .map(|p| (p.sender(), p.hash(), p.value()))
            })
            .collect();
        // A throttle refuses a client's transactions, not a peer's gossip: the node the
        // client reached applies its own rules.
        if matches!(source, crate::metrics::Source::Client) {
            for (slot, fact) in prepared.iter_mut().zip(&facts) {
                if let Some((sender, ..)) = fact
                    && let Some(left) = watch.throttled(sender)
                {
                    *slot = Err(crate::watch::throttled(*sender, left));
                }
            }
        }
        let admitted = self.admit_prepared(prepared).await;
        self.shared.metrics.offered(source, &admitted);
        let offers = facts
            .into_iter()
            .zip(&admitted)
            .filter_map(|(fact, outcome)| {
                let (sender, hash, value) = fact?;
                Some(Offer {
                    sender,
                    hash,
                    value,
                    refused: outcome.as_ref().err().map(AdmissionError::reason),
                })
            })
            .collect();
        watch.offered(offers);
        admitted
    }

    /// All the senders' accounts in one job on the state's owner, then the pool, in the
    /// batch's order.
    async fn admit_prepared(
        &self,
        prepared: Vec<Result<Prepared, AdmissionError>>,
    ) -> Vec<Result<TxHash, AdmissionError>> {
        let senders: Vec<Request> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok().map(Prepared::request))
            .collect();
        if senders.is_empty() {
            // Nothing recovered (refused as busy, or all malformed): no state to read.
            return prepared
                .into_iter()
                .map(|p| match p {
                    Err(error) => Err(error),
                    Ok(_) => unreachable!("every recovered transaction has a sender"),
                })
                .collect();
        }
        // The account of each sender, and whether the consortium's rules refuse it, read on
        // the owner from the latest final state (as the next block will execute on it).
        let mut checked = self
            .ask(Lane::Clients, move |inner| {
                let tip = &inner.finalized.tip;
                let when = When {
                    height: tip.height.next(),
                    day: Day::of(tip.timestamp),
                };
                let state = &inner.finalized.state;
                // Once per batch: on an ungoverned chain admission reads nothing more.
                let governed = trellis_governance::governed(state).map_err(AdmissionError::from);
                let rules = inner.system_slots.over(state, tip.height);
                senders
                    .iter()
                    .map(|request| {
                        if governed.clone()? {
                            trellis_mempool::check_governed(&rules, request, when)?;
                        }
                        Ok(state.account(&request.sender)?)
                    })
                    .collect::<Vec<Result<_, AdmissionError>>>()
            })
            .await
            .into_iter();
        prepared
            .into_iter()
            .map(|prepared| {
                let prepared = prepared?;
                let account = checked.next().expect("one check per sender")?;
                self.pooled(prepared, account.unwrap_or_default())
            })
            .collect()
    }

    /// Puts a prepared transaction in the pool against its sender's account.
    fn pooled(&self, prepared: Prepared, account: Account) -> Result<TxHash, AdmissionError> {
        let mempool = &self.shared.rules.mempool;
        let hash = mempool.admit(prepared, account.nonce, account.balance)?;
        // No receiver is not an error: nobody subscribed.
        let _ = self.shared.admitted.send(hash);
        Ok(hash)
    }

    /// The transactions clients submit from now on, for gossip, a client's batch at a time.
    /// Replaces any earlier feed.
    pub fn gossip_feed(
        &self,
    ) -> futures::channel::mpsc::UnboundedReceiver<Vec<trellis_types::Bytes>> {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        *self.shared.gossip.lock().expect("gossip lock poisoned") = Some(sender);
        receiver
    }

    /// An account in the latest finalized state.
    pub async fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        let address = *address;
        self.ask(Lane::Clients, move |inner| {
            inner.finalized.state.account(&address)
        })
        .await
    }

    /// The nonce `eth_getTransactionCount(…, "pending")` reports: the latest finalized nonce,
    /// past the sender's pooled transactions that follow it. One job, so the state and the pool
    /// are read on the same side of a finalization (which commits the state on the owner before
    /// it takes the block's transactions out of the pool).
    pub async fn pending_nonce(&self, address: &Address) -> Result<u64, StateError> {
        let address = *address;
        self.ask(Lane::Clients, move |inner| {
            let nonce = inner
                .finalized
                .state
                .account(&address)?
                .map_or(0, |a| a.nonce);
            Ok(inner.rules.mempool.pending_nonce(&address, nonce))
        })
        .await
    }

    /// The gas limit and base fee block `height` runs under: those of its parent's state (a
    /// chain without a registry keeps its genesis's). Above the tip, the latest. A block older
    /// than the state history the node keeps is answered with the oldest parameters it still
    /// has, the latest state's.
    pub async fn params_for(&self, height: Height) -> ChainParams {
        let genesis = self.genesis();
        let fixed = ChainParams {
            block_gas_limit: genesis.block_gas_limit,
            base_fee_per_gas: genesis.gas_price,
        };
        if genesis.epochs().is_none() {
            return fixed;
        }
        let tip = self.latest().0.height;
        let parent = height.parent().unwrap_or(Height::GENESIS).min(tip);
        self.ask(Lane::Clients, move |inner| {
            let read = |state: &dyn StateReader| {
                let params = Registry::new(state).chain_params();
                Ok(params.ok().flatten())
            };
            let at = inner.read_at(parent, read).ok().flatten();
            at.or_else(|| read(&inner.finalized.state).ok().flatten())
        })
        .await
        .unwrap_or(fixed)
    }

    /// An account after block `height`.
    pub async fn account_at(
        &self,
        address: &Address,
        height: Height,
    ) -> Result<Option<Account>, StateError> {
        let address = *address;
        self.ask(Lane::Clients, move |inner| {
            inner.read_at(height, |state| state.account(&address))
        })
        .await
    }

    /// A storage slot after block `height` (zero if never written).
    pub async fn storage_at(
        &self,
        address: &Address,
        slot: &U256,
        height: Height,
    ) -> Result<U256, StateError> {
        let (address, slot) = (*address, *slot);
        self.ask(Lane::Clients, move |inner| {
            inner.read_at(height, |state| state.storage(&address, &slot))
        })
        .await
    }

    /// The code of an account after block `height` (empty without code).
    pub async fn code_at(&self, address: &Address, height: Height) -> Result<Bytes, StateError> {
        let address = *address;
        self.ask(Lane::Clients, move |inner| {
            inner.read_at(height, |state| {
                let Some(account) = state.account(&address)? else {
                    return Ok(Bytes::new());
                };
                Ok(state.code(&account.code_hash)?.unwrap_or_default())
            })
        })
        .await
    }

    /// Runs a read-only call on the state after the block `header` heads, in that block's
    /// context. Nothing is committed. `BLOCKHASH` sees the finalized blocks of the last 256
    /// (the window the chain keeps in memory) below the block.
    ///
    /// The call runs on the state's owner, so it reads one consistent state; it is bounded by
    /// its gas (at most the block gas limit).
    pub async fn call_at(
        &self,
        request: CallRequest,
        header: Header,
    ) -> Result<CallOutcome, ExecutionError> {
        self.ask(Lane::Clients, move |inner| {
            let finalized = &inner.finalized;
            let ancestors = finalized
                .recent
                .range(..header.height)
                .map(|(height, hash)| (*height, *hash))
                .collect();
            let context = context_of(&header, &ancestors);
            let executor = &inner.rules.executor;
            if header.height == finalized.tip.height {
                executor.call(&context, &finalized.state, &request)
            } else {
                executor.call(&context, &finalized.state.at(header.height), &request)
            }
        })
        .await
    }

    /// Proofs of an account and some of its slots in the latest finalized state, with the
    /// header whose state root they verify against (read together).
    pub async fn prove(
        &self,
        address: &Address,
        slots: &[U256],
    ) -> Result<(Header, BlockHash, StateProof), StateError> {
        let (address, slots) = (*address, slots.to_vec());
        self.ask(Lane::Clients, move |inner| {
            let finalized = &inner.finalized;
            // On the owner's dedicated thread, not a runtime worker; the proof's reads wait
            // only on storage (see ARCHITECTURE.md, "Concurrency").
            let proof = trellis_state::block_on(finalized.state.prove(&address, &slots))?;
            Ok((finalized.tip.clone(), finalized.tip_hash, proof))
        })
        .await
    }

    /// The history of an account (`slot` = `None`) or one of its storage slots, proven against
    /// the latest finalized state root, with that block's header (read together). Transaction
    /// hashes are not filled in (see the block store).
    pub async fn history(
        &self,
        address: &Address,
        slot: Option<U256>,
        limit: usize,
    ) -> Result<(Header, BlockHash, History), StateError> {
        let address = *address;
        self.ask(Lane::Clients, move |inner| {
            let finalized = &inner.finalized;
            // On the owner's dedicated thread, as `prove` above.
            let history = trellis_state::block_on(finalized.state.history(&address, slot, limit))?;
            Ok((finalized.tip.clone(), finalized.tip_hash, history))
        })
        .await
    }

    /// The height of the latest finalized block, stored and committed; it changes each time a
    /// block is finalized (skipped heights are never skipped blocks: read from the last seen).
    pub fn heads(&self) -> tokio::sync::watch::Receiver<Height> {
        self.shared.heads.subscribe()
    }

    /// The hashes of transactions the pool admits from now on (from clients and from other
    /// validators). A receiver that falls behind by more than the backlog is told how many it
    /// missed.
    pub fn admitted(&self) -> tokio::sync::broadcast::Receiver<TxHash> {
        self.shared.admitted.subscribe()
    }
}
