//! The consortium changes the chain's gas limit and base fee by vote: every block after the
//! one the proposal passed in runs under them, admission checks them, and the chain reports
//! them. Real ledgers, simulated network, deterministic runtime.

mod sim;

use alloy_consensus::TxEip1559;
use alloy_primitives::{TxKind, U256};
use commonware_runtime::{Clock as _, Runner as _};
use sim::*;
use trellis_governance::{ChainParams, contracts::Action};
use trellis_mempool::AdmissionError;
use trellis_types::Height;

#[test]
fn a_passed_proposal_sets_the_gas_limit_and_base_fee_of_the_blocks_after_it() {
    runner(23).start(|context| async move {
        let chains = start_chains(&context, &[0, 1, 2, 3], &[]).await;
        let genesis = chains[0].genesis().clone();
        let before = chains[0].params_for(Height(1)).await;
        assert_eq!(before.block_gas_limit, genesis.block_gas_limit);
        let params = ChainParams {
            block_gas_limit: 5_000_000,
            base_fee_per_gas: 7,
        };
        let passed = pass(&context, &chains, Action::SetChainParams(params), 0).await;
        wait_for_height(&context, &chains, passed + 3).await;
        for chain in &chains {
            let block = chain.block(Height(passed)).await.unwrap().unwrap();
            assert_eq!(block.block.header().gas_limit, genesis.block_gas_limit);
            let after = chain.block(Height(passed + 1)).await.unwrap().unwrap();
            assert_eq!(after.block.header().gas_limit, 5_000_000);
            assert_eq!(chain.params_for(Height(passed + 1)).await, params);
            assert_eq!(chain.params_for(Height(passed)).await, before);
        }

        // Admission checks the new parameters; a transfer paying the base fee goes through.
        let sender = &senders()[5];
        let tx = |gas_limit, max_fee_per_gas| {
            sender.sign_transaction(TxEip1559 {
                chain_id: CHAIN_ID,
                nonce: 0,
                gas_limit,
                max_fee_per_gas,
                to: TxKind::Call(recipient(1)),
                value: U256::from(1),
                ..TxEip1559::default()
            })
        };
        assert_eq!(
            chains[2].submit(tx(6_000_000, 7)).await,
            Err(AdmissionError::GasLimitTooHigh {
                gas: 6_000_000,
                limit: 5_000_000
            })
        );
        assert_eq!(
            chains[2].submit(tx(21_000, 6)).await,
            Err(AdmissionError::FeeTooLow { got: 6, min: 7 })
        );
        let hash = chains[2].submit(tx(21_000, 7)).await.unwrap();
        loop {
            if let Some(at) = chains[2].transaction_location(&hash).await.unwrap() {
                let block = chains[2].block(at.height).await.unwrap().unwrap();
                let receipt = &block.receipts[at.index as usize];
                assert_eq!(receipt.effective_gas_price, 7);
                break;
            }
            context.sleep(std::time::Duration::from_millis(50)).await;
        }
    });
}
