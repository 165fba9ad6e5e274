//! `trellis-simulate`: runs one seed (`--seed S`), or many (`--seeds N`), each in a process of
//! its own, as many at once as there are cores; prints what passed and, for each failure, the
//! seed, what broke and the command that replays it. `RUST_LOG` shows the simulated nodes'
//! own logs on stderr.

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use std::{
    process::{Command, ExitCode},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::Instant,
};
use trellis_simulator::{Plan, Seed, run};

/// The command that replays a seed in the build this one is.
const REPLAY: &str = if cfg!(debug_assertions) {
    "SIMULATE_PROFILE=debug scripts/simulate --seed "
} else {
    "scripts/simulate --seed "
};

#[derive(Parser)]
#[command(about = "Deterministic simulation of a Trellis consortium under faults")]
struct Args {
    /// Run this seed alone, here, and show its plan.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds, from `--from` on.
    #[arg(long)]
    seeds: Option<u64>,
    /// The first of the `--seeds`.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Seeds run at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// With `--seed`: run it twice and require the same audit of every event.
    #[arg(long, requires = "seed")]
    twice: bool,
    /// With `--seed`: write the evidence of the conflicting votes the nodes reported to FILE,
    /// one piece a line in hex (`trellis verify-evidence FILE` checks it).
    #[arg(long, value_name = "FILE", requires = "seed")]
    evidence_out: Option<std::path::PathBuf>,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    // The nodes' own logs, on stderr, when RUST_LOG asks for them (off by default).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match (args.seed, args.seeds) {
        (Some(seed), _) => one(Seed(seed), args.twice, args.evidence_out.as_deref()),
        (None, Some(count)) => {
            let jobs = args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            many(args.from, count, jobs.max(1))
        }
        (None, None) => bail!("say which seeds to run: --seed S, or --seeds N [--from F]"),
    }
}

/// The line a child prints last: `PASS …` or `FAIL …`, read by [`many`].
fn one(seed: Seed, twice: bool, evidence_out: Option<&std::path::Path>) -> Result<ExitCode> {
    let plan = Plan::draw(seed);
    print!("{plan}");
    let started = Instant::now();
    let first = run(&plan);
    if twice && let Ok(report) = &first {
        let again = run(&plan).map_err(|v| anyhow::anyhow!("the replay failed: {v}"))?;
        if again.audit != report.audit {
            println!(
                "FAIL seed {seed}: not deterministic: the replay's audit {} differs from {}",
                again.audit, report.audit
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if let (Ok(report), Some(path)) = (&first, evidence_out) {
        let lines: String = report
            .evidence
            .iter()
            .map(|bytes| format!("0x{}\n", hex(bytes)))
            .collect();
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    match first {
        Ok(report) => {
            let byzantine = report.misdeeds.map_or(String::new(), |m| {
                let kept = report.forks;
                format!(
                    ", byzantine: {} equivocations, {} forks as leader (finalized: {} first, {} \
                     second, {} neither), {} invalid blocks, {} replays, {} reports",
                    m.equivocations,
                    m.forks,
                    kept.first,
                    kept.second,
                    kept.neither,
                    m.invalid_blocks,
                    m.replays,
                    report.accusations
                )
            });
            let blocks: Vec<String> = report
                .blocks
                .iter()
                .map(|(by, peer)| format!("{by} blocked {peer}"))
                .collect();
            let blocks = if blocks.is_empty() {
                String::new()
            } else {
                format!(" ({})", blocks.join(", "))
            };
            let power = plan.power_loss.map_or(String::new(), |loss| {
                format!(", power lost at {:.1?}", loss.at)
            });
            println!(
                "PASS seed {seed}: height {}, {} transfers, {} faults{byzantine}{blocks}{power}, {:.0?} simulated in {:.1?}, audit {}",
                report.height,
                report.transfers,
                report.faults,
                report.simulated,
                started.elapsed(),
                report.audit
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(violation) => {
            println!("FAIL seed {seed}: {violation}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs seeds `from..from + count` in `jobs` child processes at a time.
fn many(from: u64, count: u64, jobs: usize) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("find this program to run its seeds")?;
    let next = Arc::new(AtomicU64::new(from));
    let end = from + count;
    let (done, results) = mpsc::channel::<(u64, bool, String)>();
    let started = Instant::now();
    println!("running seeds {from}..{end}, {jobs} at a time");
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (exe, next, done) = (exe.clone(), next.clone(), done.clone());
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end {
                        return;
                    }
                    let (passed, line) = match Command::new(&exe)
                        .args(["--seed", &seed.to_string()])
                        .output()
                    {
                        Ok(output) => (output.status.success(), last_line(&output)),
                        Err(e) => (false, format!("FAIL seed {seed}: could not start: {e}")),
                    };
                    if done.send((seed, passed, line)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(done);
    let mut failures = Vec::new();
    let (mut passed, mut byzantine, mut power_lost) = (0u64, 0u64, 0u64);
    for (seed, ok, line) in results {
        println!("{line}");
        if ok {
            // The plan is the seed's alone, so the parent draws it again to count.
            let plan = Plan::draw(Seed(seed));
            passed += 1;
            byzantine += u64::from(plan.byzantine.is_some());
            power_lost += u64::from(plan.power_loss.is_some());
        } else {
            failures.push((seed, line));
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{passed} of {count} seeds passed in {:.1?} ({:.1} seeds per minute, {jobs} at a time); \
         of those passed, {byzantine} had a byzantine validator and {power_lost} a power loss",
        started.elapsed(),
        count as f64 / minutes.max(f64::EPSILON)
    );
    failures.sort();
    for (seed, line) in &failures {
        println!("{line}\n  replay: {REPLAY}{seed}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A child's verdict: its last `PASS`/`FAIL` line, or what it printed when it died.
fn last_line(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(line) = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
    {
        return line.to_owned();
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    format!(
        "FAIL (the process died, {}): {}",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
