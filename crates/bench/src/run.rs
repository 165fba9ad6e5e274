//! Running a benchmark on a runtime of its own in a fresh directory, and printing its report.

use crate::{
    BenchError,
    logs::{self, LogBenchConfig},
    rekey::{self, RekeyConfig},
    state::{self, BenchConfig},
};
use commonware_runtime::{Runner as _, tokio};
use std::{path::PathBuf, sync::Arc};
use trellis_vault::{DataKey, KeyId, Keyring, Protection, Vaulted};

/// Runs `benchmark` on one worker thread with its storage in `dir`, which must not exist yet
/// and is removed afterwards. Returns its report and the bytes it left on disk.
fn run_in<R, Fut, Error>(
    dir: &std::path::Path,
    benchmark: impl FnOnce(tokio::Context) -> Fut,
) -> Result<(R, u64), BenchError>
where
    Fut: Future<Output = Result<R, Error>>,
    BenchError: From<Error>,
{
    if dir.exists() {
        return Err(BenchError::DirExists {
            path: dir.display().to_string(),
        });
    }
    let runtime = tokio::Config::new()
        .with_worker_threads(1)
        .with_storage_directory(dir);
    let result = tokio::Runner::new(runtime).start(benchmark);
    let bytes = trellis_node::disk::usage(dir);
    let _ = std::fs::remove_dir_all(dir);
    Ok((result?, bytes))
}

/// Runs the state benchmark in `dir` (which must not exist yet, and is removed afterwards) on
/// one worker thread, printing progress and the figures. `encrypted`: the store is encrypted
/// at rest as a node's is (under a data key made for the run), to see what that costs.
pub fn state(dir: PathBuf, config: BenchConfig, encrypted: bool) -> Result<(), BenchError> {
    let settings = config.clone();
    let keys = if encrypted {
        let key = DataKey::generate().map_err(BenchError::Random)?;
        Protection::encrypted(Arc::new(Keyring::new(KeyId(1), key)))
    } else {
        Protection::Plain
    };
    let (report, bytes) = run_in(&dir, |context| async move {
        let context = Vaulted::with(context, keys);
        state::run(context, &settings, |line| eprintln!("  {line}")).await
    })?;
    let entries = 2 * config.accounts;
    println!(
        "state: {} accounts, each with a slot in one token contract ({entries} entries); page cache {} MiB; stored {}",
        config.accounts,
        config.page_cache_bytes >> 20,
        if encrypted { "encrypted" } else { "in clear" }
    );
    println!("populate: {:.1} s", report.populate.as_secs_f64());
    println!(
        "committed slot updates: {:.0} per second ({} blocks of {}, median block {:.1} ms: stage + durable commit)",
        report.updates_per_second(),
        report.blocks.len(),
        report.updates_per_block,
        report.median_block().as_secs_f64() * 1e3
    );
    if let (Some(rate), Some(cpu)) = (report.updates_per_cpu_second(), report.blocks_cpu) {
        println!(
            "per CPU second: {rate:.0} committed slot updates (all threads of the process used {:.0} ms of CPU staging, applying and syncing those blocks, which took {:.0} ms)",
            cpu.as_secs_f64() * 1e3,
            report
                .blocks
                .iter()
                .sum::<std::time::Duration>()
                .as_secs_f64()
                * 1e3
        );
    }
    let per_second = |d: std::time::Duration| report.proofs as f64 / d.as_secs_f64();
    println!(
        "proofs (a slot and its account): {:.0} generated per second, {:.0} verified per second ({} of each)",
        per_second(report.proving),
        per_second(report.verifying),
        report.proofs
    );
    println!(
        "histories (of the same slots, {} writes listed, each with 3 proofs): {:.0} read per second, {:.0} verified per second",
        report.history_entries,
        per_second(report.history_reading),
        per_second(report.history_verifying),
    );
    println!(
        "restart: the state reopened in {:.2} s (QMDB rebuilds its index from the log)",
        report.reopen.as_secs_f64()
    );
    println!(
        "disk: {:.1} MiB, {:.0} bytes per account (account and slot, every version kept, with the history index)",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / config.accounts as f64
    );
    Ok(())
}

/// Runs the re-encryption benchmark in `dir` (which must not exist yet, and is removed
/// afterwards) on one worker thread, printing progress and the figures.
pub fn rekey(dir: PathBuf, config: RekeyConfig) -> Result<(), BenchError> {
    let settings = config.clone();
    let old = DataKey::generate().map_err(BenchError::Random)?;
    let new = DataKey::generate().map_err(BenchError::Random)?;
    let keyring = Arc::new(Keyring::new(KeyId(1), old.clone()));
    let rotated = Keyring::from_keys(KeyId(2), [(KeyId(1), old), (KeyId(2), new)].into())
        .expect("key 2 is among them");
    let storage = dir.clone();
    let (report, bytes) = run_in(&dir, |context| async move {
        let context = Vaulted::with(context, Protection::encrypted(keyring.clone()));
        rekey::run(context, &storage, &keyring, rotated, &settings, |line| {
            eprintln!("  {line}")
        })
        .await
    })?;
    let median = |blocks: &[std::time::Duration]| {
        let mut sorted = blocks.to_vec();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let longest = report.during.iter().max().copied().unwrap_or_default();
    let seconds = report.pass.duration.as_secs_f64();
    println!(
        "rekey: a state of {} accounts ({:.1} MiB on disk at the end), encrypted; data key rotated, then the node's background pass",
        config.accounts,
        bytes as f64 / (1 << 20) as f64
    );
    println!(
        "moved: {} blobs, {:.1} MiB rewritten under the new key in {seconds:.1} s ({:.1} MiB/s, the node's pause between 1 MiB steps included)",
        report.pass.blobs,
        report.pass.bytes as f64 / (1 << 20) as f64,
        report.pass.bytes as f64 / (1 << 20) as f64 / seconds.max(1e-9)
    );
    println!(
        "blocks of {} slot updates committed meanwhile: {}, median {:.1} ms, longest {:.1} ms (before the rotation: median {:.1} ms over {})",
        config.updates_per_block,
        report.during.len(),
        ms(median(&report.during)),
        ms(longest),
        ms(median(&report.before)),
        report.before.len()
    );
    Ok(())
}

/// Runs the log query benchmark in `dir` (which must not exist yet, and is removed afterwards)
/// on one worker thread, printing progress and the figures.
pub fn logs(dir: PathBuf, config: LogBenchConfig) -> Result<(), BenchError> {
    let settings = config.clone();
    let (report, bytes) = run_in(&dir, |context| async move {
        logs::run(context, &settings, |line| eprintln!("  {line}")).await
    })?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "logs: {} blocks of {} transfer logs ({} contracts, {} recipients), stored in {:.1} s, {:.1} MiB on disk",
        config.blocks,
        config.logs_per_block,
        config.contracts,
        config.recipients,
        report.load.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64
    );
    println!(
        "eth_getLogs over all {} blocks, address + topic ({} queries, {:.1} logs and {:.1} candidate blocks each): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        config.blocks,
        report.queries.len(),
        report.logs_found as f64 / report.queries.len() as f64,
        report.candidates as f64 / report.queries.len() as f64,
        ms(report.quantile(0.5)),
        ms(report.quantile(0.99)),
        ms(report.quantile(1.0)),
    );
    println!(
        "restart: the block store and its log index reopened in {:.2} s",
        report.reopen.as_secs_f64()
    );
    Ok(())
}
