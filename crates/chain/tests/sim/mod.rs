//! The real ledger under consensus in the deterministic runtime: a governed genesis, chains on
//! simulated storage, validators on commonware's simulated network. Shared by the consensus
//! and validator-set tests.
#![allow(dead_code)]

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use alloy_sol_types::SolCall as _;
use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{Clock as _, Handle, Supervisor as _, deterministic};
use std::time::Duration;
use trellis_chain::{Chain, ChainConfig, Genesis};
use trellis_consensus::{
    Config, ConsensusBlock, PublicKey, Timeouts,
    engine::channel,
    simulation::{self, SimControl, SimOracle},
    validator_id,
};
use trellis_crypto::AccountKey;
use trellis_governance::{
    EpochLength, Founders, FoundingIdentity, FoundingOrganisation, IdentityId, OrgId, Role, Window,
    contracts::{Action, GOVERNANCE_ADDRESS, abi::ITrellisGovernance as Gov},
};
use trellis_types::{BlockLimits, Bytes, Height};

pub const N: usize = 4;
/// A small state page cache: the test state is tiny, and four validators share the process.
pub const STATE_CACHE_BYTES: usize = 2 << 20;
pub const CHAIN_ID: u64 = 31_337;
pub const SENDERS: u64 = 10;
pub const ETH: u128 = 1_000_000_000_000_000_000;

pub type TestChain = Chain<deterministic::Context>;

pub fn validator_keys() -> Vec<ed25519::PrivateKey> {
    (0..N as u64).map(ed25519::PrivateKey::from_seed).collect()
}

pub fn senders() -> Vec<AccountKey> {
    (1..=SENDERS).map(AccountKey::from_seed).collect()
}

pub fn recipient(i: u64) -> Address {
    Address::with_last_byte(0xa0 + i as u8)
}

/// One organisation; identity `i + 1` for sender `i`, a transactor; senders 0–2 also governors.
pub fn founders() -> Founders {
    let identities = senders()
        .iter()
        .enumerate()
        .map(|(i, key)| FoundingIdentity {
            id: IdentityId(i as u64 + 1),
            roles: if i < 3 {
                vec![Role::transactor(), Role::governor()]
            } else {
                vec![Role::transactor()]
            },
            accounts: vec![key.address()],
            window: Window::ALWAYS,
        })
        .collect();
    Founders(vec![FoundingOrganisation {
        id: OrgId(1),
        name: "Test consortium".into(),
        identities,
    }])
}

/// The genesis of the simulated chains: a governed one, epochs of the default length.
pub fn genesis() -> Genesis {
    genesis_with(EpochLength::DEFAULT)
}

pub fn genesis_with(epoch_length: EpochLength) -> Genesis {
    Genesis {
        founders: founders(),
        epoch_length,
        chain_id: CHAIN_ID,
        timestamp: 0,
        block_gas_limit: 30_000_000,
        gas_price: 0,
        validators: validator_keys()
            .iter()
            .map(|k| validator_id(&k.public_key()))
            .collect(),
        full_nodes: vec![],
        alloc: senders()
            .iter()
            .map(|k| (k.address(), U256::from(ETH)))
            .collect(),
    }
}

/// `per_sender` transfers of 1,000 wei from each sender, in nonce order, to one of ten
/// recipients.
pub fn transfers(per_sender: u64) -> Vec<Bytes> {
    let mut txs = Vec::new();
    for nonce in 0..per_sender {
        for (i, key) in senders().iter().enumerate() {
            txs.push(key.sign_transaction(TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: 21_000,
                to: TxKind::Call(recipient((i as u64 + nonce) % 10)),
                value: U256::from(1_000),
                ..TxEip1559::default()
            }));
        }
    }
    txs
}

pub async fn open_chain(context: &deterministic::Context, index: usize) -> TestChain {
    open_chain_on(context, index, genesis()).await
}

/// Validator `index`'s chain (its own storage partitions) from `genesis`.
pub async fn open_chain_on(
    context: &deterministic::Context,
    index: usize,
    genesis: Genesis,
) -> TestChain {
    Chain::open(
        context.child("chain").with_attribute("validator", index),
        ChainConfig {
            genesis,
            limits: BlockLimits::default(),
            partition_prefix: format!("v{index}-chain"),
            state_cache_bytes: STATE_CACHE_BYTES,
            faults: Default::default(),
            state_keep_blocks: None,
        },
    )
    .await
    .expect("open the chain")
}

/// Starts validator `index`'s transaction gossip for `chain`; returns its network control.
pub async fn start_gossip(
    context: &deterministic::Context,
    oracle: &SimOracle,
    index: usize,
    chain: &TestChain,
) -> SimControl {
    let key = ed25519::PrivateKey::from_seed(index as u64);
    let control = oracle.control(key.public_key());
    let transactions = simulation::register(&control, channel::TRANSACTIONS).await;
    trellis_chain::gossip::start(
        context.child("gossip"),
        chain.clone(),
        transactions,
        control.clone(),
    );
    control
}

pub async fn spawn_validator(
    context: &deterministic::Context,
    oracle: &SimOracle,
    index: usize,
    chain: TestChain,
) -> Handle<()> {
    let signer = ed25519::PrivateKey::from_seed(index as u64);
    let control = start_gossip(context, oracle, index, &chain).await;
    let channels = simulation::channels(&control).await;
    let config = Config {
        signer: trellis_crypto::ValidatorSigner::memory(signer),
        epoch_length: chain.epoch_length(),
        namespace: b"TRELLIS-CHAIN-TEST".to_vec(),
        partition_prefix: format!("v{index}"),
        genesis: ConsensusBlock::new(chain.genesis_block()).unwrap(),
        limits: BlockLimits::default(),
        timeouts: Timeouts::default(),
        timing: simulation::timing(),
        ledger: chain,
        fault_sink: None,
    };
    simulation::spawn(context, oracle, control, channels, config)
}

/// The simulated network of the genesis validators and one newcomer (key `N`), of which
/// those in `online` are linked to each other.
pub async fn network(context: &deterministic::Context, online: &[usize]) -> SimOracle {
    let keys: Vec<PublicKey> = (0..=N as u64)
        .map(|seed| ed25519::PrivateKey::from_seed(seed).public_key())
        .collect();
    simulation::network(context, &keys, online).await
}

/// Opens the chains of the validators in `online` (the others are down), gives every pool
/// `txs`, and starts their consensus and gossip.
pub async fn start_chains(
    context: &deterministic::Context,
    online: &[usize],
    txs: &[Bytes],
) -> Vec<TestChain> {
    let oracle = network(context, online).await;
    let mut chains = Vec::new();
    for &i in online {
        let chain = open_chain(context, i).await;
        submit_all(&chain, txs).await;
        chains.push(chain);
    }
    for (chain, &i) in chains.iter().zip(online) {
        spawn_validator(context, &oracle, i, chain.clone()).await;
    }
    chains
}

pub fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

pub async fn submit_all(chain: &TestChain, txs: &[Bytes]) {
    for tx in txs {
        chain
            .submit(tx.clone())
            .await
            .expect("a valid transfer is admitted");
    }
}

pub async fn wait_for_height(context: &deterministic::Context, chains: &[TestChain], height: u64) {
    while chains.iter().any(|c| c.latest().0.height < Height(height)) {
        context.sleep(Duration::from_millis(50)).await;
    }
}

/// The stored blocks of every chain agree up to `height`; returns how many transactions they
/// carry.
pub async fn assert_same_blocks(chains: &[TestChain], height: u64) -> usize {
    let mut transactions = 0;
    for h in 0..=height {
        let reference = chains[0].block(Height(h)).await.unwrap().unwrap();
        for (i, chain) in chains.iter().enumerate().skip(1) {
            let stored = chain.block(Height(h)).await.unwrap().unwrap();
            assert_eq!(stored, reference, "validator {i} stored another block {h}");
        }
        assert_eq!(
            reference.receipts.len(),
            reference.block.transactions().len()
        );
        assert!(reference.receipts.iter().all(|r| r.envelope.status()));
        transactions += reference.block.transactions().len();
    }
    transactions
}

/// Every transfer landed: each sender paid exactly its transfers, the recipients got them all.
pub async fn assert_balances(chain: &TestChain, per_sender: u64) {
    for key in senders() {
        let account = chain.account(&key.address()).await.unwrap().unwrap();
        assert_eq!(account.nonce, per_sender);
        assert_eq!(
            account.balance,
            U256::from(ETH - u128::from(per_sender) * 1_000)
        );
    }
    let mut received = U256::ZERO;
    for i in 0..10 {
        let account = chain.account(&recipient(i)).await.unwrap();
        received += account.map_or(U256::ZERO, |a| a.balance);
    }
    assert_eq!(received, U256::from(SENDERS * per_sender * 1_000));
}

/// A call of the governance contract by `key`.
pub fn governance_tx(key: &AccountKey, nonce: u64, input: Vec<u8>) -> Bytes {
    key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 1_000_000,
        to: TxKind::Call(GOVERNANCE_ADDRESS),
        input: input.into(),
        ..TxEip1559::default()
    })
}

/// The height of the first block (from `from`) in which a proposal passed.
pub async fn block_passing_a_proposal(
    context: &deterministic::Context,
    chain: &TestChain,
    from: u64,
) -> u64 {
    let mut height = from;
    loop {
        while chain.latest().0.height < Height(height) {
            context.sleep(Duration::from_millis(50)).await;
        }
        let stored = chain.block(Height(height)).await.unwrap().unwrap();
        let logs = stored.receipts.iter().flat_map(|r| r.envelope.logs());
        if logs.into_iter().any(trellis_governance::changes_rules) {
            return height;
        }
        height += 1;
    }
}

/// Passes `action`: governor 0 proposes it (its nonce-th transaction) through `chains[0]`,
/// governor 1 approves it once the proposal is final; returns the height of the block it
/// passed in. Proposal ids count from 1, so this is proposal `nonce + 1`.
pub async fn pass(
    context: &commonware_runtime::deterministic::Context,
    chains: &[TestChain],
    action: Action,
    nonce: u64,
) -> u64 {
    let governors = senders();
    let propose = Gov::proposeCall {
        action: action.encode(),
        votingBlocks: 1_000,
    };
    let tx = governance_tx(&governors[0], nonce, propose.abi_encode());
    let hash = chains[0]
        .submit(tx)
        .await
        .expect("the proposal is admitted");
    let proposed = loop {
        if let Some(at) = chains[0].transaction_location(&hash).await.unwrap() {
            break at.height.get();
        }
        context.sleep(Duration::from_millis(50)).await;
    };
    let vote = Gov::voteCall {
        id: nonce + 1,
        approve: true,
    };
    let tx = governance_tx(&governors[1], nonce, vote.abi_encode());
    chains[1].submit(tx).await.expect("the vote is admitted");
    block_passing_a_proposal(context, &chains[1], proposed + 1).await
}
