//! A reliable transfer over real loopback UDP through a user-space impairment relay (loss,
//! duplication, reordering, delay): every byte arrives, in order (hash compared).
//!
//! The relay sits between the peers because the signaling path (this test) rewrites each
//! description's candidate port to the relay's: Bob sends to "Alice" at relay port A, the
//! relay forwards to Alice from relay port B, which Alice knows as Bob — and back.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant as WallClock};

use carrier_mio::{Driver, Handler};
use carrier_proto::{
    Config, Endpoint, Event, PendingOffer, Reply, RequestOutcome, StreamOptions, StreamState,
    StreamType,
};
use mio::{Events, Poll, Token};

/// What the relay does to each datagram.
#[derive(Clone, Copy)]
struct Impairment {
    loss: f64,
    duplicate: f64,
    reorder: f64,
    delay: Duration,
}

/// Relay counters, for the test to check the impairment happened.
#[derive(Default)]
struct RelayStats {
    forwarded: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

/// Forwards between two relay sockets: what arrives at `a` goes to `to_a` from `b`, what
/// arrives at `b` goes to `to_b` from `a`, impaired.
fn relay(
    a: UdpSocket,
    b: UdpSocket,
    to_a: SocketAddr,
    to_b: SocketAddr,
    imp: Impairment,
    stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
) {
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut chance = move |p: f64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1_000_000) as f64 / 1e6 < p
    };
    // (due, out socket is b?, destination, bytes)
    let mut queue: VecDeque<(WallClock, bool, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut held: Option<(bool, SocketAddr, Vec<u8>)> = None;
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (from_a, sock) in [(true, &a), (false, &b)] {
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                idle = false;
                // Arrived at a: out of b to Alice; arrived at b: out of a to Bob.
                let (out_b, dest) = if from_a { (true, to_a) } else { (false, to_b) };
                if chance(imp.loss) {
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let due = WallClock::now() + imp.delay;
                let copies = if chance(imp.duplicate) {
                    stats.duplicated.fetch_add(1, Ordering::Relaxed);
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let packet = buf[..n].to_vec();
                    if held.is_none() && chance(imp.reorder) {
                        // Held back until the next datagram has gone: they swap.
                        stats.reordered.fetch_add(1, Ordering::Relaxed);
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
        let now = WallClock::now();
        while queue.front().is_some_and(|p| p.0 <= now) {
            let Some((_, out_b, dest, packet)) = queue.pop_front() else {
                break;
            };
            let sock = if out_b { &b } else { &a };
            let _ = sock.send_to(&packet, dest);
            stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        if idle {
            thread::sleep(Duration::from_micros(100));
        }
    }
}

fn config() -> Config {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    Config::default().with_seed(seed)
}

/// Points every candidate of `sdp` at `port` (the relay's side for this peer).
fn via(sdp: &str, from_port: u16, to_port: u16) -> String {
    sdp.replace(
        &format!(" {from_port} typ host"),
        &format!(" {to_port} typ host"),
    )
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct Peer {
    pending: Option<PendingOffer>,
    answer: Option<String>,
    connected: bool,
    received: Vec<u8>,
}

impl Handler for Peer {
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event) {
        let now = carrier_proto::Instant::ZERO;
        match event {
            Event::SessionRequest { offer, .. } => {
                let s = endpoint.new_session("alice").unwrap();
                endpoint
                    .session(s)
                    .unwrap()
                    .add_stream(StreamType::Application, StreamOptions::RELIABLE)
                    .unwrap();
                let answer = endpoint
                    .session(s)
                    .unwrap()
                    .reply(&offer, Reply::Accept)
                    .unwrap();
                endpoint.session(s).unwrap().start(now).unwrap();
                self.answer = Some(answer.to_sdp_string());
            }
            Event::RequestComplete {
                session,
                outcome: RequestOutcome::Accepted(answer),
            } => {
                let pending = self.pending.take().unwrap();
                endpoint
                    .session(session)
                    .unwrap()
                    .start_with(now, pending, answer)
                    .unwrap();
            }
            Event::StateChanged {
                state: StreamState::Connected,
                ..
            } => self.connected = true,
            Event::StreamData { data, .. } => self.received.extend_from_slice(&data),
            _ => {}
        }
    }
}

#[test]
fn twenty_mebibytes_through_five_percent_loss_arrive_intact() {
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    let (ra, rb) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let (ra_port, rb_port) = (
        ra.local_addr().unwrap().port(),
        rb.local_addr().unwrap().port(),
    );
    let stats = Arc::new(RelayStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let imp = Impairment {
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.01,
        delay: Duration::from_millis(2),
    };
    let relay_thread = {
        let (to_a, to_b) = (a.local_addr(), b.local_addr());
        let (stats, stop) = (stats.clone(), stop.clone());
        thread::spawn(move || relay(ra, rb, to_a, to_b, imp, stats, stop))
    };

    let mut poll = Poll::new().unwrap();
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let (mut alice, mut bob) = (Peer::default(), Peer::default());
    let now = a.now();
    let s = a.endpoint().new_session("bob").unwrap();
    let stream = a
        .endpoint()
        .session(s)
        .unwrap()
        .add_stream(StreamType::Application, StreamOptions::RELIABLE)
        .unwrap();
    let pending = a.endpoint().session(s).unwrap().request(now, "").unwrap();
    // Signaling: Bob learns Alice at relay port A, Alice learns Bob at relay port B.
    let offer = via(
        &pending.offer().to_sdp_string(),
        a.local_addr().port(),
        ra_port,
    );
    alice.pending = Some(pending);
    b.endpoint().handle_offer("alice", &offer).unwrap();
    b.flush(&mut bob).unwrap();
    let answer = via(&bob.answer.take().unwrap(), b.local_addr().port(), rb_port);
    a.endpoint().handle_answer(&answer).unwrap();
    a.flush(&mut alice).unwrap();

    let data: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut written = 0;
    let mut events = Events::with_capacity(128);
    let start = WallClock::now();
    while bob.received.len() < data.len() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stuck at {} of {} bytes",
            bob.received.len(),
            data.len()
        );
        carrier_mio::turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut alice), (&mut b, &mut bob)],
            Duration::from_millis(5),
        )
        .unwrap();
        if alice.connected && written < data.len() {
            let now = a.now();
            let end = (written + (256 << 10)).min(data.len());
            written += a
                .endpoint()
                .session(s)
                .unwrap()
                .write(now, stream, &data[written..end])
                .unwrap_or(0);
            a.flush(&mut alice).unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    relay_thread.join().unwrap();
    assert_eq!(bob.received.len(), data.len());
    assert_eq!(digest(&bob.received), digest(&data), "every byte, in order");
    let lost = stats.lost.load(Ordering::Relaxed);
    let forwarded = stats.forwarded.load(Ordering::Relaxed);
    assert!(
        lost * 100 > (lost + forwarded) * 3,
        "the relay really lost ~5%: {lost} of {}",
        lost + forwarded
    );
    assert!(
        stats.duplicated.load(Ordering::Relaxed) > 0 && stats.reordered.load(Ordering::Relaxed) > 0
    );
    println!(
        "20 MiB through 5% loss in {:.2} s ({} lost, {} forwarded)",
        start.elapsed().as_secs_f64(),
        lost,
        forwarded
    );
}
