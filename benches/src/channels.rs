//! Channel fixtures for `benches/channels.rs`: a [`Pair`] with one RELIABLE | MULTIPLEXING
//! stream and N channels open on it (in memory, one thread, virtual time), the open + close
//! round trip and opening many channels on the simulator in virtual time, and
//! [`print_table`] with all the figures.

use std::collections::VecDeque;

use bytes::Bytes;
use std::time::{Duration, Instant as WallClock};

use carrier_proto::StreamId;
use carrier_proto::{
    ChannelConfig, ChannelError, ChannelId, CloseReason, Config, Error, Event, Input, Output,
    SessionMut, StreamOptions, StreamType,
};
use carrier_tests::netem::LinkConfig;
use carrier_tests::sim::{Handshake, Sim, stream_id};

use crate::pair::Pair;

/// The options of the benchmarked stream.
pub const MUX: StreamOptions = StreamOptions::RELIABLE.union(StreamOptions::MULTIPLEXING);

/// Virtual time per exchange round in memory (as in the reliable-stream bench).
pub const TICK: Duration = Duration::from_micros(1);

/// Two endpoints back to back with one multiplexing stream and its channels, opened by `a`
/// (the offerer) and accepted by `b`. Data flows from `a` to `b`.
pub struct ChannelPair {
    /// The endpoints, the stream and virtual time.
    pub pair: Pair,
    /// The open channels, in the order they were opened (ids increasing).
    pub channels: Vec<ChannelId>,
    /// Channel bytes `b` took out of its event queue.
    pub received: u64,
    /// Exchange rounds run (each moves everything `a` has, then everything `b` has).
    pub rounds: u64,
    /// `b`: opens not answered yet.
    incoming: Vec<ChannelId>,
    /// `a`: channels reported opened since last looked at.
    opened: Vec<ChannelId>,
    /// `b`: channels reported closed since last looked at.
    closed: Vec<ChannelId>,
    /// Per channel (by index in `channels`): bytes still to write.
    remaining: Vec<u64>,
    /// Per channel: in `writable`.
    queued: Vec<bool>,
    /// Channels whose writer may go on.
    writable: VecDeque<usize>,
    /// Write with `write_channel_bytes` (slices of the source, no copy into the send
    /// buffer) instead of `write_channel`.
    pub zero_copy: bool,
}

impl ChannelPair {
    /// Connects two endpoints with `config` and opens `n` channels from `a` (at most
    /// `max_pending_opens` waiting at a time, as the core requires).
    pub fn new(config: Config, n: usize) -> ChannelPair {
        let mut cp = ChannelPair {
            pair: Pair::connect(config, MUX),
            channels: Vec::new(),
            received: 0,
            rounds: 0,
            incoming: Vec::new(),
            opened: Vec::new(),
            closed: Vec::new(),
            remaining: Vec::new(),
            queued: Vec::new(),
            writable: VecDeque::new(),
            zero_copy: false,
        };
        cp.open(n);
        cp
    }

    /// The sender's session.
    pub fn a(&mut self) -> SessionMut<'_> {
        self.pair.a.session(self.pair.sa).expect("session a")
    }

    /// The receiver's session.
    pub fn b(&mut self) -> SessionMut<'_> {
        self.pair.b.session(self.pair.sb).expect("session b")
    }

    /// Opens `n` more channels and waits until all are open on both sides. Returns the
    /// exchange rounds it took.
    pub fn open(&mut self, n: usize) -> u64 {
        let rounds0 = self.rounds;
        let stream = self.pair.stream;
        let (mut issued, mut done) = (0, 0);
        while done < n {
            while issued < n {
                let now = self.pair.now;
                match self.a().open_channel(now, stream, b"bench") {
                    Ok(id) => {
                        self.channels.push(id);
                        self.remaining.push(0);
                        self.queued.push(false);
                        issued += 1;
                    }
                    Err(Error::Channel(
                        ChannelError::TooManyPendingOpens { .. } | ChannelError::ControlFull,
                    )) => break,
                    Err(e) => panic!("open_channel: {e}"),
                }
            }
            self.round();
            self.accept_incoming();
            done += self.opened.len();
            self.opened.clear();
        }
        self.rounds - rounds0
    }

    /// `b` accepts the opens it has seen (those refused for lack of control room stay).
    fn accept_incoming(&mut self) {
        let stream = self.pair.stream;
        let now = self.pair.now;
        let mut incoming = std::mem::take(&mut self.incoming);
        incoming.retain(|&id| match self.b().accept_channel(now, stream, id) {
            Ok(()) => false,
            Err(Error::Channel(ChannelError::ControlFull)) => true,
            Err(e) => panic!("accept_channel: {e}"),
        });
        self.incoming = incoming;
    }

    /// Index in `channels` of one of ours.
    fn slot(&self, id: ChannelId) -> Option<usize> {
        let first = self.channels.first()?.as_u64();
        let i = usize::try_from(id.as_u64().checked_sub(first)? / 2).ok()?;
        (self.channels.get(i) == Some(&id)).then_some(i)
    }

    /// Advances virtual time by [`TICK`], fires due timers and runs one exchange.
    pub fn round(&mut self) -> bool {
        self.pair.now += TICK;
        let now = self.pair.now;
        self.pair.a.handle_input(Input::Timeout(now));
        self.pair.b.handle_input(Input::Timeout(now));
        self.rounds += 1;
        self.exchange()
    }

    /// Moves everything `a` has to send to `b`, then everything `b` has to `a`; takes the
    /// events out as it goes. Returns whether any datagram moved.
    fn exchange(&mut self) -> bool {
        let now = self.pair.now;
        let mut moved = false;
        loop {
            match self.pair.a.poll_output() {
                Output::Transmit(t) => {
                    moved = true;
                    self.pair.packets += 1;
                    self.pair.b.handle_input(Input::Receive {
                        now,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents,
                    });
                }
                Output::Event(Event::ChannelOpened { channel, .. }) => self.opened.push(channel),
                Output::Event(Event::ChannelWritable { channel, .. }) => {
                    if let Some(i) = self.slot(channel) {
                        if self.remaining[i] > 0 && !self.queued[i] {
                            self.queued[i] = true;
                            self.writable.push_back(i);
                        }
                    }
                }
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        loop {
            match self.pair.b.poll_output() {
                Output::Transmit(t) => {
                    moved = true;
                    self.pair.packets += 1;
                    self.pair.a.handle_input(Input::Receive {
                        now,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents,
                    });
                }
                Output::Event(Event::ChannelData { data, .. }) => {
                    self.received += data.len() as u64;
                }
                Output::Event(Event::ChannelOpen { channel, .. }) => self.incoming.push(channel),
                Output::Event(Event::ChannelClosed { channel, .. }) => self.closed.push(channel),
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        moved
    }

    /// Sends `total` bytes from `a` to `b`, spread evenly over all channels (each writes
    /// slices of `source` until its buffer is full, and goes on at `ChannelWritable`).
    /// Returns the bytes received.
    pub fn transfer(&mut self, total: u64, source: &Bytes) -> u64 {
        let n = self.channels.len() as u64;
        assert!(n > 0, "no channels");
        for (i, r) in self.remaining.iter_mut().enumerate() {
            *r += total / n + u64::from((i as u64) < total % n);
        }
        for i in 0..self.channels.len() {
            if self.remaining[i] > 0 && !self.queued[i] {
                self.queued[i] = true;
                self.writable.push_back(i);
            }
        }
        let target = self.received + total;
        let start = self.received;
        let stream = self.pair.stream;
        while self.received < target {
            let now = self.pair.now;
            while let Some(i) = self.writable.pop_front() {
                self.queued[i] = false;
                let id = self.channels[i];
                while self.remaining[i] > 0 {
                    let len = (self.remaining[i] as usize).min(source.len());
                    let zero_copy = self.zero_copy;
                    let result = if zero_copy {
                        self.a()
                            .write_channel_bytes(now, stream, id, source.slice(..len))
                    } else {
                        self.a().write_channel(now, stream, id, &source[..len])
                    };
                    match result {
                        Ok(k) => self.remaining[i] -= k as u64,
                        Err(Error::WouldBlock) => break,
                        Err(e) => panic!("write_channel: {e}"),
                    }
                }
            }
            self.round();
        }
        debug_assert!(self.remaining.iter().all(|&r| r == 0));
        self.received - start
    }

    /// One open + close round trip on a new channel: `a` opens, `b` accepts at its
    /// `ChannelOpen`, `a` closes (Normal) at its `ChannelOpened`, until `b` sees
    /// `ChannelClosed`. Returns the exchange rounds it took.
    pub fn open_close(&mut self) -> u64 {
        let rounds0 = self.rounds;
        let stream = self.pair.stream;
        let now = self.pair.now;
        let id = self.a().open_channel(now, stream, b"bench").expect("open");
        while self.incoming.is_empty() {
            self.round();
        }
        self.accept_incoming();
        debug_assert!(self.incoming.is_empty());
        while !self.opened.contains(&id) {
            self.round();
        }
        self.opened.clear();
        let now = self.pair.now;
        self.a()
            .close_channel(now, stream, id, CloseReason::Normal)
            .expect("close");
        while !self.closed.contains(&id) {
            self.round();
        }
        self.closed.clear();
        self.rounds - rounds0
    }
}

/// Median of `v` (sorted in place); NaN if empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A goodput measurement: the median rate, and the datagrams (both ways) and exchange
/// rounds of one transfer.
#[derive(Clone, Copy, Debug)]
pub struct Goodput {
    /// Bytes per second of wall time (median over the runs).
    pub rate: f64,
    /// Datagrams moved (data and ACKs) in the last run.
    pub packets: u64,
    /// Exchange rounds in the last run.
    pub rounds: u64,
}

/// Goodput of one channel and of `many` channels on one stream, measured in the same
/// process: `runs` transfers of `total` bytes each, alternating between the two pairs.
pub fn goodput_pair(
    config: &Config,
    many: usize,
    total: u64,
    runs: usize,
    zero_copy: bool,
) -> (Goodput, Goodput) {
    let source = Bytes::from(vec![0x5Au8; 256 * 1024]);
    let mut one = ChannelPair::new(config.clone(), 1);
    let mut lots = ChannelPair::new(config.clone(), many);
    one.zero_copy = zero_copy;
    lots.zero_copy = zero_copy;
    // Warm up: slow start, buffers grown.
    one.transfer(total, &source);
    lots.transfer(total, &source);
    let mut out = [(Vec::new(), 0, 0), (Vec::new(), 0, 0)];
    for _ in 0..runs {
        for (cp, (rates, packets, rounds)) in [&mut one, &mut lots].into_iter().zip(&mut out) {
            let (p0, r0) = (cp.pair.packets, cp.rounds);
            let start = WallClock::now();
            let got = cp.transfer(total, &source);
            rates.push(got as f64 / start.elapsed().as_secs_f64());
            (*packets, *rounds) = (cp.pair.packets - p0, cp.rounds - r0);
        }
    }
    let [a, b] = out.map(|(mut rates, packets, rounds)| Goodput {
        rate: median(&mut rates),
        packets,
        rounds,
    });
    (a, b)
}

/// Goodput (median bytes per second over `runs` of `total` bytes, after one warm-up run)
/// for each channel count in `counts`, the runs interleaved across the counts.
pub fn goodput_sweep(config: &Config, counts: &[usize], total: u64, runs: usize) -> Vec<f64> {
    let source = Bytes::from(vec![0x5Au8; 256 * 1024]);
    let mut pairs: Vec<ChannelPair> = counts
        .iter()
        .map(|&n| {
            let mut cp = ChannelPair::new(config.clone(), n);
            cp.transfer(total, &source);
            cp
        })
        .collect();
    let mut rates = vec![Vec::new(); counts.len()];
    for _ in 0..runs {
        for (cp, r) in pairs.iter_mut().zip(&mut rates) {
            let start = WallClock::now();
            let got = cp.transfer(total, &source);
            r.push(got as f64 / start.elapsed().as_secs_f64());
        }
    }
    rates.iter_mut().map(|r| median(r)).collect()
}

/// Goodput of a plain reliable stream (no channels) for reference, same method.
pub fn plain_goodput(total: u64, runs: usize) -> f64 {
    let source = vec![0x5Au8; 256 * 1024];
    let mut pair = Pair::connect(Config::default(), StreamOptions::RELIABLE);
    pair.transfer(total, &source, TICK);
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let start = WallClock::now();
            let got = pair.transfer(total, &source, TICK);
            got as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut v)
}

/// Whether a peer logged an event matching `f` from index `from` on.
fn seen(sim: &Sim, peer: usize, from: usize, f: &dyn Fn(&Event) -> bool) -> bool {
    sim.peers[peer].events[from..].iter().any(|(_, e)| f(e))
}

/// One open + close round trip on the simulator, in virtual time.
#[derive(Clone, Copy, Debug)]
pub struct OpenCloseTimes {
    /// `open_channel` → the peer's `ChannelOpen`.
    pub open_seen: Duration,
    /// `open_channel` → the opener's `ChannelOpened` (the opener closes right then).
    pub opened: Duration,
    /// `open_channel` → the peer's `ChannelClosed`.
    pub closed: Duration,
}

/// Runs `samples` open + close round trips one after the other on one multiplexing stream
/// over `link` (after connecting on the simulator's default link), each after `gap` of
/// quiet. The peer accepts as soon as it sees the open; the opener closes with Normal as
/// soon as it sees the channel opened.
pub fn open_close_virtual(
    link: LinkConfig,
    seed: u64,
    samples: usize,
    gap: Duration,
) -> Vec<OpenCloseTimes> {
    let mut sim = Sim::new(seed);
    let (pa, pb) = (sim.add_peer("a"), sim.add_peer("b"));
    let hs = sim.handshake(pa, pb, &[(StreamType::Application, MUX)]);
    assert!(sim.run_until_connected(&hs, 1), "no connection");
    sim.set_link(pa, pb, link);
    let (sa, sb) = (hs.offerer, hs.answerer);
    let stream = stream_id(&mut sim, pa, sa, 0);
    let limit = Duration::from_secs(30);
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        sim.run_for(gap);
        let (ea, eb) = (sim.peers[pa].events.len(), sim.peers[pb].events.len());
        let t0 = sim.now;
        let id = sim
            .session(pa, sa)
            .open_channel(t0, stream, b"bench")
            .expect("open");
        sim.drain(pa);
        let is_open = |e: &Event| matches!(e, Event::ChannelOpen { channel, .. } if *channel == id);
        assert!(
            sim.run_until(t0 + limit, |sim| seen(sim, pb, eb, &is_open)),
            "no ChannelOpen"
        );
        let t1 = sim.now;
        sim.session(pb, sb)
            .accept_channel(t1, stream, id)
            .expect("accept");
        sim.drain(pb);
        let is_opened =
            |e: &Event| matches!(e, Event::ChannelOpened { channel, .. } if *channel == id);
        assert!(
            sim.run_until(t0 + limit, |sim| seen(sim, pa, ea, &is_opened)),
            "no ChannelOpened"
        );
        let t2 = sim.now;
        sim.session(pa, sa)
            .close_channel(t2, stream, id, CloseReason::Normal)
            .expect("close");
        sim.drain(pa);
        let is_closed =
            |e: &Event| matches!(e, Event::ChannelClosed { channel, .. } if *channel == id);
        assert!(
            sim.run_until(t0 + limit, |sim| seen(sim, pb, eb, &is_closed)),
            "no ChannelClosed"
        );
        let t3 = sim.now;
        out.push(OpenCloseTimes {
            open_seen: t1 - t0,
            opened: t2 - t0,
            closed: t3 - t0,
        });
    }
    out
}

/// Channels opened on the simulator: the sim, the sides, the stream and the channel ids.
pub struct SimChannels {
    /// The simulator.
    pub sim: Sim,
    /// The handshake (offerer `a` opened the channels, answerer `b` accepted them).
    pub hs: Handshake,
    /// The multiplexing stream (index 0 on both sides).
    pub stream: StreamId,
    /// The channels, as `a` knows them.
    pub ids: Vec<ChannelId>,
    /// Virtual time from the first open until all were open on `a`.
    pub took: Duration,
}

/// Opens `n` channels at once on the simulator over `link` (the peer accepts each at its
/// `ChannelOpen`; at most `max_pending_opens` wait for an answer, so the opener opens more
/// as `ChannelOpened` arrives).
pub fn open_on_sim(link: LinkConfig, seed: u64, n: usize) -> SimChannels {
    let mut sim = Sim::new(seed);
    let (pa, pb) = (sim.add_peer("a"), sim.add_peer("b"));
    let hs = sim.handshake(pa, pb, &[(StreamType::Application, MUX)]);
    assert!(sim.run_until_connected(&hs, 1), "no connection");
    sim.set_link(pa, pb, link);
    let (sa, sb) = (hs.offerer, hs.answerer);
    let stream = stream_id(&mut sim, pa, sa, 0);
    sim.run_for(Duration::from_secs(1));
    let (mut seen_a, mut seen_b) = (sim.peers[pa].events.len(), sim.peers[pb].events.len());
    let t0 = sim.now;
    let mut issued = 0;
    let mut ids = Vec::new();
    while ids.len() < n {
        let now = sim.now;
        while issued < n {
            match sim.session(pa, sa).open_channel(now, stream, b"bench") {
                Ok(_) => issued += 1,
                Err(Error::Channel(
                    ChannelError::TooManyPendingOpens { .. } | ChannelError::ControlFull,
                )) => break,
                Err(e) => panic!("open_channel: {e}"),
            }
        }
        sim.drain(pa);
        assert!(sim.step(), "stalled with {} of {n} open", ids.len());
        assert!(sim.now < t0 + Duration::from_secs(600), "too slow");
        let now = sim.now;
        let incoming: Vec<ChannelId> = sim.peers[pb].events[seen_b..]
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ChannelOpen { channel, .. } => Some(*channel),
                _ => None,
            })
            .collect();
        seen_b = sim.peers[pb].events.len();
        for id in incoming {
            sim.session(pb, sb)
                .accept_channel(now, stream, id)
                .expect("accept");
        }
        sim.drain(pb);
        ids.extend(
            sim.peers[pa].events[seen_a..]
                .iter()
                .filter_map(|(_, e)| match e {
                    Event::ChannelOpened { channel, .. } => Some(*channel),
                    _ => None,
                }),
        );
        seen_a = sim.peers[pa].events.len();
    }
    let took = sim.now - t0;
    SimChannels {
        sim,
        hs,
        stream,
        ids,
        took,
    }
}

/// Opens `n` channels at once on the simulator over `link`; returns the virtual time until
/// all are open on the opener (see [`open_on_sim`]).
pub fn open_many_virtual(link: LinkConfig, seed: u64, n: usize) -> Duration {
    open_on_sim(link, seed, n).took
}

/// Aggregate goodput (bytes per second of virtual time) of `n` bulk channels through a
/// simulated bottleneck `link`, measured over `measure` after `warmup`: every channel
/// always has data queued (its writer goes on at each `ChannelWritable`).
pub fn bottleneck_goodput(link: LinkConfig, n: usize, warmup: Duration, measure: Duration) -> f64 {
    let SimChannels {
        mut sim,
        hs,
        stream,
        ids,
        ..
    } = open_on_sim(link, 7, n);
    let (pa, pb, sa) = (hs.offerer_peer, hs.answerer_peer, hs.offerer);
    let chunk = vec![0x33u8; 16 * 1024];
    let mut waiting: VecDeque<ChannelId> = ids.iter().copied().collect();
    let mut seen_a = sim.peers[pa].events.len();
    let mut seen_b = sim.peers[pb].events.len();
    let start = sim.now;
    let (mut counting, mut bytes) = (false, 0u64);
    while sim.now < start + warmup + measure {
        let now = sim.now;
        while let Some(id) = waiting.pop_front() {
            loop {
                match sim.session(pa, sa).write_channel(now, stream, id, &chunk) {
                    Ok(_) => {}
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("write_channel: {e}"),
                }
            }
        }
        sim.drain(pa);
        assert!(sim.step(), "stalled");
        for (_, e) in &sim.peers[pa].events[seen_a..] {
            if let Event::ChannelWritable { channel, .. } = e {
                waiting.push_back(*channel);
            }
        }
        seen_a = sim.peers[pa].events.len();
        if !counting && sim.now >= start + warmup {
            counting = true;
            seen_b = sim.peers[pb].events.len();
        }
        if counting {
            for (_, e) in &sim.peers[pb].events[seen_b..] {
                if let Event::ChannelData { data, .. } = e {
                    bytes += data.len() as u64;
                }
            }
        }
        seen_b = sim.peers[pb].events.len();
        // The logs grow with every packet; old entries are not needed.
        if seen_b > 100_000 {
            sim.peers[pb].events.clear();
            seen_b = 0;
        }
        if seen_a > 100_000 {
            sim.peers[pa].events.clear();
            seen_a = 0;
        }
    }
    bytes as f64 / measure.as_secs_f64()
}

/// Prints the channel figures as a Markdown table: goodput of 1 and `many` channels and
/// their ratio, the plain stream for reference, CPU per open + close round trip in memory,
/// and the round trip in virtual time on three links.
pub fn print_table(many: usize) {
    let config = Config::default();
    let total = 64 * 1024 * 1024;
    let plain = plain_goodput(total, 5);
    println!();
    println!("| measurement (in memory, 64 MiB per run, median of 5) | value |");
    println!("|---|---|");
    println!(
        "| plain reliable stream (no channels), for reference | {:.2} GB/s |",
        plain / 1e9
    );
    for (zero_copy, how) in [
        (false, "write_channel (copied)"),
        (true, "write_channel_bytes (zero-copy)"),
    ] {
        let (one, lots) = goodput_pair(&config, many, total, 5, zero_copy);
        for (label, g) in [
            (format!("1 channel, {how}"), one),
            (
                format!("{many} channels (64 MiB spread evenly), {how}"),
                lots,
            ),
        ] {
            println!(
                "| {label} | {:.2} GB/s ({} datagrams, {} exchange rounds per run) |",
                g.rate / 1e9,
                g.packets,
                g.rounds
            );
        }
        println!(
            "| {many} channels / 1 channel, {how} | {:.3} |",
            lots.rate / one.rate
        );
    }

    // How goodput falls with the channel count; 8 MiB per run keeps the buffered bytes
    // small (8 KiB per channel at 1000), separating per-channel costs from cache misses.
    // The protocol's view: the same comparison through a simulated 100 Mbit/s bottleneck
    // (40 ms RTT, a one-BDP queue), in virtual time.
    let link = LinkConfig::ideal()
        .with_delay(Duration::from_millis(20))
        .with_bottleneck(100_000_000, 500_000);
    let (warmup, measure) = (Duration::from_secs(3), Duration::from_secs(10));
    let b1 = bottleneck_goodput(link, 1, warmup, measure);
    let bn = bottleneck_goodput(link, many, warmup, measure);
    println!(
        "| 100 Mbit/s bottleneck, 40 ms RTT (virtual time, 10 s after 3 s): 1 channel / {many} channels | {:.1} / {:.1} Mbit/s, ratio {:.3} |",
        b1 * 8.0 / 1e6,
        bn * 8.0 / 1e6,
        bn / b1
    );

    let counts = [1, 10, 100, many];
    for total in [64 << 20, 8 << 20] {
        let rates = goodput_sweep(&config, &counts, total, 3);
        let cells: Vec<String> = counts
            .iter()
            .zip(&rates)
            .map(|(n, r)| format!("N={n}: {:.2} GB/s ({:.2})", r / 1e9, r / rates[0]))
            .collect();
        println!(
            "| goodput by channel count, {} MiB per run (ratio to N=1) | {} |",
            total >> 20,
            cells.join(", ")
        );
    }

    // Opening many channels at once (64 opens may wait for an answer at a time).
    let mut cp = ChannelPair::new(config.clone(), 0);
    let start = WallClock::now();
    let rounds = cp.open(many);
    let open_many = start.elapsed();
    println!(
        "| open {many} channels (accepted at once), CPU | {:.2} ms ({rounds} exchange rounds) |",
        open_many.as_secs_f64() * 1e3
    );
    for (label, mut cp) in [
        (
            "idle stream".to_string(),
            ChannelPair::new(config.clone(), 0),
        ),
        (
            format!("{many} channels already open"),
            ChannelPair::new(config.clone(), many),
        ),
    ] {
        for _ in 0..1000 {
            cp.open_close();
        }
        let mut v: Vec<f64> = (0..5)
            .map(|_| {
                let n = 20_000;
                let start = WallClock::now();
                for _ in 0..n {
                    cp.open_close();
                }
                start.elapsed().as_secs_f64() / f64::from(n) * 1e6
            })
            .collect();
        let rounds = cp.open_close();
        println!(
            "| open + close round trip, CPU, {label} | {:.2} µs ({rounds} exchange rounds) |",
            median(&mut v)
        );
    }

    println!();
    println!(
        "| open + close round trip, virtual time (median of 20) | ChannelOpen at peer | ChannelOpened | peer's ChannelClosed | in mean RTTs |"
    );
    println!("|---|---|---|---|---|");
    let fixed = LinkConfig::ideal().with_delay(Duration::from_millis(25));
    for (name, link) in [
        ("fixed 25 ms one way (RTT 50 ms)", fixed),
        (
            "LinkConfig::lan (250 µs + 0–50 µs jitter)",
            LinkConfig::lan(),
        ),
        ("LinkConfig::wan (40 ms + 0–4 ms jitter)", LinkConfig::wan()),
    ] {
        let rtt = (link.delay + link.jitter / 2).as_secs_f64() * 2.0;
        let times = open_close_virtual(link, 7, 20, Duration::from_secs(1));
        let pick = |f: fn(&OpenCloseTimes) -> Duration| {
            let mut v: Vec<f64> = times.iter().map(|t| f(t).as_secs_f64()).collect();
            median(&mut v)
        };
        let (a, b, c) = (
            pick(|t| t.open_seen),
            pick(|t| t.opened),
            pick(|t| t.closed),
        );
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.3} ms | {:.2} / {:.2} / {:.2} |",
            a * 1e3,
            b * 1e3,
            c * 1e3,
            a / rtt,
            b / rtt,
            c / rtt
        );
    }
    let wan = LinkConfig::wan();
    let rtt = (wan.delay + wan.jitter / 2).as_secs_f64() * 2.0;
    let t = open_many_virtual(wan, 7, many).as_secs_f64();
    println!();
    println!(
        "| open {many} channels at once, LinkConfig::wan (at most {} opens pending) | {:.1} ms = {:.1} mean RTTs |",
        ChannelConfig::default().max_pending_opens,
        t * 1e3,
        t / rtt
    );
}
