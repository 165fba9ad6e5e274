//! A TCP relay that delays and drops, for tests of nodes on slow, lossy links (this machine's
//! kernel has no netem). Each accepted connection is forwarded to the target; every chunk read
//! in either direction is written out `delay ± jitter` later, in order; connections are cut
//! at random: a share of them at accept, and each open one with that chance every second it
//! carries traffic (p2p links live long, so a per-connection chance alone would rarely fire).

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

/// What the relay does to traffic.
#[derive(Clone, Copy, Debug)]
pub struct LinkFaults {
    pub delay: Duration,
    pub jitter: Duration,
    /// Chance a connection is cut at accept, and each second after, in [0, 1].
    pub reset: f64,
}

/// A running relay; stops accepting when dropped (open connections end with their peers).
pub struct Relay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Connections accepted and connections reset so far.
    pub accepted: Arc<AtomicU64>,
    pub resets: Arc<AtomicU64>,
}

/// A small xorshift generator: the relay needs no cryptographic randomness, and a seed per
/// relay keeps a failing run's pattern of faults reproducible in kind.
struct Rng(u64);

impl Rng {
    /// A generator whose first outputs are already well mixed, even from seeds like 1, 2, 3
    /// (splitmix64's finalizer).
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Relay {
    /// Listens on `listen` and forwards to `target`.
    pub fn start(listen: SocketAddr, target: SocketAddr, faults: LinkFaults, seed: u64) -> Self {
        let listener = TcpListener::bind(listen).expect("bind the relay");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let resets = Arc::new(AtomicU64::new(0));
        let (flag, count, reset_count) = (stop.clone(), accepted.clone(), resets.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            while !flag.load(Ordering::Relaxed) {
                let Ok((inbound, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                inbound.set_nonblocking(false).unwrap();
                if rng.unit() < faults.reset {
                    reset_count.fetch_add(1, Ordering::Relaxed);
                    reset(&inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(target) else {
                    reset(&inbound);
                    continue;
                };
                let cut = Arc::new(AtomicBool::new(false));
                let seeds = (rng.next(), rng.next());
                pump(
                    inbound.try_clone().unwrap(),
                    outbound.try_clone().unwrap(),
                    faults,
                    seeds.0,
                    true,
                    cut.clone(),
                    reset_count.clone(),
                );
                pump(
                    outbound,
                    inbound,
                    faults,
                    seeds.1,
                    false,
                    cut,
                    reset_count.clone(),
                );
            }
        });
        Self {
            addr,
            stop,
            accepted,
            resets,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Cuts a connection. A true reset needs SO_LINGER 0, which std does not offer; shutting both
/// halves ends the stream where it stands (mid-message, mid-handshake), which is the fault the
/// nodes must survive.
fn reset(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

/// Copies `from` → `to`, each chunk delayed; ends both when either side ends or when cut.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    faults: LinkFaults,
    seed: u64,
    // Whether this direction rolls the dice for cutting the connection (one of the two does).
    cuts: bool,
    cut: Arc<AtomicBool>,
    resets: Arc<AtomicU64>,
) {
    let (chunks, queued) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer_cut = cut.clone();
    let mut writer_side = to.try_clone().unwrap();
    std::thread::spawn(move || {
        for (due, chunk) in queued {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if writer_cut.load(Ordering::Relaxed) || writer_side.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = writer_side.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_due = Instant::now();
        let mut next_roll = Instant::now() + Duration::from_secs(1);
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if cut.load(Ordering::Relaxed) {
                break;
            }
            let mut cut_now = false;
            while cuts && Instant::now() >= next_roll {
                next_roll += Duration::from_secs(1);
                cut_now |= rng.unit() < faults.reset;
            }
            if cut_now {
                resets.fetch_add(1, Ordering::Relaxed);
                cut.store(true, Ordering::Relaxed);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                break;
            }
            let jitter = faults.jitter.as_secs_f64() * (2.0 * rng.unit() - 1.0);
            let delay = Duration::from_secs_f64((faults.delay.as_secs_f64() + jitter).max(0.0));
            // TCP keeps order: a chunk never overtakes the one before it.
            let due = (Instant::now() + delay).max(last_due);
            last_due = due;
            if chunks.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    });
}
