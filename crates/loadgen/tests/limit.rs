//! `trellis bench limit` on a real on-disk state: every phase is measured, the transactions
//! all run (a failed one is an error, not a faster figure), and the ceiling divides as it
//! should among validators.

use trellis_loadgen::{LimitConfig, LimitError, Workload, limit};

fn measured(workload: Workload) -> trellis_loadgen::Limit {
    let dir = tempfile::tempdir().unwrap();
    let config = LimitConfig {
        workload,
        senders: 20,
        block_transactions: 100,
        blocks: 2,
    };
    limit::measure(&dir.path().join("state"), &config).expect("the measurement runs")
}

#[test]
fn erc20_transfers_cost_recovery_evm_and_state() {
    let limit = measured(Workload::Erc20);
    let costs = limit.costs;
    println!("{limit}");
    assert!(costs.recovery_us > 1.0, "sender recovery is measured");
    assert!(costs.evm_us > 0.5, "the EVM is measured");
    assert!(costs.state_us > 0.0, "the state commit is measured");
    assert!(
        costs.block_hashing_us > 0.0,
        "the block's hashing is measured"
    );
    let sum = costs.decode_us
        + costs.hash_us
        + costs.recovery_us
        + costs.evm_us
        + costs.state_us
        + costs.block_hashing_us;
    assert!((costs.total_us() - sum).abs() < 1e-9);
    let one = limit.ceiling_tps(1);
    assert!((one / limit.ceiling_tps(4) - 4.0).abs() < 1e-9);
    assert!((one - limit.cores as f64 * 1e6 / sum).abs() < 1e-6);
}

#[test]
fn native_transfers_are_measured_too() {
    let limit = measured(Workload::Transfer);
    assert!(limit.costs.recovery_us > 1.0 && limit.costs.evm_us > 0.0);
    assert!(limit.ceiling_tps(1).is_finite());
}

#[test]
fn an_existing_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep"), b"data").unwrap();
    let err = limit::measure(dir.path(), &LimitConfig::default()).unwrap_err();
    assert!(matches!(err, LimitError::DirExists(_)), "{err}");
    assert!(err.to_string().contains("fresh directory"));
    assert!(dir.path().join("keep").exists());
}
