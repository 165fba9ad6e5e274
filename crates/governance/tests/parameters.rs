//! The chain's gas limit and base fee are the consortium's to change, within bounds a chain
//! can run under.

mod common;

use common::{Chain, pass};
use trellis_governance::{ChainParams, Registry, RegistryWriter, contracts::Action};

#[test]
fn chain_parameters_change_by_vote_within_their_bounds() {
    let mut chain = Chain::new(3);
    assert_eq!(
        Registry::new(&chain.state).chain_params().unwrap(),
        None,
        "this harness's genesis sets none"
    );
    let params = ChainParams {
        block_gas_limit: 10_000_000,
        base_fee_per_gas: 1_000_000_000,
    };
    assert_eq!(pass(&mut chain, &Action::SetChainParams(params)), None);
    assert_eq!(
        Registry::new(&chain.state).chain_params().unwrap(),
        Some(params)
    );
    for bad in [
        ChainParams {
            block_gas_limit: 20_999,
            ..params
        },
        ChainParams {
            block_gas_limit: 1_000_000_001,
            ..params
        },
        ChainParams {
            base_fee_per_gas: u64::MAX,
            ..params
        },
    ] {
        let reason = pass(&mut chain, &Action::SetChainParams(bad)).unwrap();
        assert!(reason.contains("is out of range"), "{reason}");
    }
    // A genesis writes them with checks too.
    let mut writer = RegistryWriter::new(&chain.state);
    let error = writer
        .set_chain_params(ChainParams {
            block_gas_limit: 0,
            base_fee_per_gas: 0,
        })
        .unwrap_err();
    assert!(error.to_string().contains("21000"), "{error}");
}
