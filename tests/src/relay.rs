//! A user-space impairment relay for real loopback UDP: loss, duplication, reordering and
//! delay between two peers, for tests of the socket drivers (carrier-mio, carrier-tokio,
//! carrier-async-std) that [`netem`](crate::netem)'s virtual time cannot reach.
//!
//! The relay stands in for each peer: it binds one socket per peer, and the signaling path
//! (the test) rewrites each description's candidate port to the relay's stand-in with
//! [`via`]. B sends to "A" at [`Relay::a_stand_in`], the relay forwards to A from
//! [`Relay::b_stand_in`], which A knows as B — and back.
//!
//! ```no_run
//! use carrier_tests::relay::{Impairment, Relay};
//! use std::time::Duration;
//!
//! let (a, b) = ("127.0.0.1:4000".parse()?, "127.0.0.1:5000".parse()?);
//! let relay = Relay::start(a, b, Impairment::loss(0.05).with_delay(Duration::from_millis(2)))?;
//! // A's offer goes to B with its candidate pointed at the relay:
//! let offer = "... 127.0.0.1 4000 typ host ...";
//! let offer_for_b = carrier_tests::relay::via(offer, a.port(), relay.a_stand_in().port());
//! # let _ = offer_for_b;
//! let counts = relay.stop();
//! println!("{} lost of {}", counts.lost, counts.lost + counts.forwarded);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The largest UDP payload of an Ethernet path under IPv4: 1500 less 28 bytes of headers.
pub const ETHERNET_MTU: usize = 1472;

/// What the relay does to each datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram (not dropped) is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back and sent after the next one (they swap).
    pub reorder: f64,
    /// Added to every datagram's way through the relay.
    pub delay: Duration,
    /// The largest datagram (UDP payload) the relay forwards; bigger ones are dropped, as a
    /// router drops a too-big packet that must not be fragmented. The relay runs on
    /// loopback, which carries 64 KiB, but stands in for a network path.
    pub mtu: usize,
    /// Seed of the relay's pseudo-random choices (non-zero; zero is replaced).
    pub seed: u64,
}

impl Impairment {
    /// No impairment: every datagram forwarded once, in order, at once.
    pub const NONE: Impairment = Impairment {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        delay: Duration::ZERO,
        mtu: ETHERNET_MTU,
        seed: 0x2545_f491_4f6c_dd1d,
    };

    /// Only `loss`.
    pub fn loss(loss: f64) -> Impairment {
        Impairment { loss, ..Self::NONE }
    }

    /// With `p` duplication.
    pub fn with_duplicate(self, p: f64) -> Impairment {
        Impairment {
            duplicate: p,
            ..self
        }
    }

    /// With `p` reordering.
    pub fn with_reorder(self, p: f64) -> Impairment {
        Impairment { reorder: p, ..self }
    }

    /// With `delay` on every datagram.
    pub fn with_delay(self, delay: Duration) -> Impairment {
        Impairment { delay, ..self }
    }

    /// With `mtu` as the largest datagram forwarded.
    pub fn with_mtu(self, mtu: usize) -> Impairment {
        Impairment { mtu, ..self }
    }

    /// With `seed` for the random choices.
    pub fn with_seed(self, seed: u64) -> Impairment {
        Impairment { seed, ..self }
    }
}

/// What the relay did so far (a snapshot of its counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Datagrams sent on (duplicates count twice).
    pub forwarded: u64,
    /// Datagrams dropped.
    pub lost: u64,
    /// Datagrams dropped as bigger than [`Impairment::mtu`] (not counted in `lost`).
    pub too_big: u64,
    /// Datagrams sent twice.
    pub duplicated: u64,
    /// Datagrams held back behind the next one.
    pub reordered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    lost: AtomicU64,
    too_big: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RelayCounts {
        RelayCounts {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            too_big: self.too_big.load(Ordering::Relaxed),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            reordered: self.reordered.load(Ordering::Relaxed),
        }
    }
}

/// A relay thread between peers A and B on loopback; it stops when [stopped](Relay::stop)
/// or dropped.
#[derive(Debug)]
pub struct Relay {
    a_stand_in: SocketAddr,
    b_stand_in: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Binds the two stand-in sockets on 127.0.0.1 and starts forwarding, impaired by
    /// `imp`, between the peers at `a` and `b`.
    pub fn start(a: SocketAddr, b: SocketAddr, imp: Impairment) -> io::Result<Relay> {
        let a_side = UdpSocket::bind("127.0.0.1:0")?;
        let b_side = UdpSocket::bind("127.0.0.1:0")?;
        a_side.set_nonblocking(true)?;
        b_side.set_nonblocking(true)?;
        let (a_stand_in, b_stand_in) = (a_side.local_addr()?, b_side.local_addr()?);
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counters, stop) = (counters.clone(), stop.clone());
            thread::Builder::new()
                .name("impairment-relay".into())
                .spawn(move || run(a_side, b_side, a, b, imp, &counters, &stop))?
        };
        Ok(Relay {
            a_stand_in,
            b_stand_in,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// Where B reaches A: put it (its port, with [`via`]) in A's description for B.
    pub fn a_stand_in(&self) -> SocketAddr {
        self.a_stand_in
    }

    /// Where A reaches B: put it (its port, with [`via`]) in B's description for A.
    pub fn b_stand_in(&self) -> SocketAddr {
        self.b_stand_in
    }

    /// The counters so far.
    pub fn counts(&self) -> RelayCounts {
        self.counters.snapshot()
    }

    /// Stops the relay thread and returns the final counters.
    pub fn stop(mut self) -> RelayCounts {
        self.halt();
        self.counters.snapshot()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic in the relay thread would only lose its counters.
            let _ = thread.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Points every host candidate of `sdp` on `from_port` at `to_port` (a relay stand-in's).
pub fn via(sdp: &str, from_port: u16, to_port: u16) -> String {
    sdp.replace(
        &format!(" {from_port} typ host"),
        &format!(" {to_port} typ host"),
    )
}

/// The relay loop: what arrives at the A stand-in (from B) goes to `a` out of the B stand-in;
/// what arrives at the B stand-in (from A) goes to `b` out of the A stand-in.
fn run(
    a_side: UdpSocket,
    b_side: UdpSocket,
    a: SocketAddr,
    b: SocketAddr,
    imp: Impairment,
    counters: &Counters,
    stop: &AtomicBool,
) {
    let mut x = if imp.seed == 0 {
        Impairment::NONE.seed
    } else {
        imp.seed
    };
    let mut chance = move |p: f64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1_000_000) as f64 / 1e6 < p
    };
    // (due, out of the B stand-in?, destination, bytes)
    let mut queue: VecDeque<(Instant, bool, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut held: Option<(bool, SocketAddr, Vec<u8>)> = None;
    // Room for the largest UDP datagram, so that nothing is truncated.
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (at_a_side, sock) in [(true, &a_side), (false, &b_side)] {
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                idle = false;
                // Arrived for A: out of the B stand-in to A; arrived for B: out of the A
                // stand-in to B.
                let (out_b, dest) = if at_a_side { (true, a) } else { (false, b) };
                if n > imp.mtu {
                    counters.too_big.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if chance(imp.loss) {
                    counters.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let due = Instant::now() + imp.delay;
                let copies = if chance(imp.duplicate) {
                    counters.duplicated.fetch_add(1, Ordering::Relaxed);
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let packet = buf[..n].to_vec();
                    if held.is_none() && chance(imp.reorder) {
                        // Held back until the next datagram has gone: they swap.
                        counters.reordered.fetch_add(1, Ordering::Relaxed);
                        held = Some((out_b, dest, packet));
                        continue;
                    }
                    queue.push_back((due, out_b, dest, packet));
                    if let Some((hb, hd, hp)) = held.take() {
                        queue.push_back((due, hb, hd, hp));
                    }
                }
            }
        }
        let now = Instant::now();
        while queue.front().is_some_and(|p| p.0 <= now) {
            let Some((_, out_b, dest, packet)) = queue.pop_front() else {
                break;
            };
            let sock = if out_b { &b_side } else { &a_side };
            // A full send buffer drops the datagram, as a network would.
            let _ = sock.send_to(&packet, dest);
            counters.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        if idle {
            thread::sleep(Duration::from_micros(100));
        }
    }
}
