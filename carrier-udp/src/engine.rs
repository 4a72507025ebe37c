//! The engine: one [`Endpoint`] with its clock, direct signaling and a GSO batch —
//! everything a driver does except touching a socket or sleeping.
//!
//! A driver (mio, tokio, async-io) owns a socket and a timer and runs this loop:
//!
//! ```text
//! socket readable → engine.receive(source, datagram)     (or receive_segments for GRO)
//! timer fired     → engine.handle_timeout()
//! then, until Step::Idle:
//!     match engine.poll() {
//!         Step::Transmit(t) → send t on the socket; engine.sent()  (or wait for writable)
//!         Step::Event(e)    → hand e to the application
//!         Step::Idle        → sleep until engine.deadline() or the socket is readable
//!     }
//! ```
//!
//! So every driver shares one implementation of direct signaling, batching and the clock,
//! and differs only in how it waits.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use carrier_proto::slab::Slab;
use carrier_proto::{
    Answer, Config, Endpoint, Event, Input, Instant, Offer, Output, PendingOffer, Transmit,
};

use crate::direct::{self, Direct, Signal};

/// Most bytes in one GSO batch: one UDP send carries at most 65,507 bytes over IPv4 (a
/// 64 KiB batch is refused whole with EMSGSIZE).
pub const MAX_BATCH_BYTES: usize = 65_000;

/// Bytes allocated at a time for received datagrams: one GRO read's worth.
const RX_SLAB: usize = 64 * 1024;
/// Used-up receive slabs kept for reuse (16 MiB): the oldest is reused once the
/// application has taken what it held, so the pool must span the receive windows' worth
/// of data a reader may leave queued.
const RX_POOL: usize = 256;

/// Signaling datagrams queued for sending at most (more are dropped: the offer repeats).
const MAX_QUEUED_SIGNALS: usize = 1024;

/// What the driver does next.
#[derive(Debug)]
pub enum Step<'a> {
    /// Send this (one datagram, or many of one size to one destination with
    /// `segment_size` set: a GSO batch), then call [`Engine::sent`]; if the socket refuses
    /// for now, wait until it is writable and poll again (the same transmit comes back), or
    /// give up on it with [`Engine::dropped`].
    Transmit(quinn_udp::Transmit<'a>),
    /// Tell the application.
    Event(Event),
    /// Nothing to do until a datagram arrives or [`Engine::deadline`] passes.
    Idle,
}

/// A transmit taken out of the engine ([`Engine::poll_owned`]), so that it can be sent
/// without holding whatever guards the engine. Give it back with [`Engine::finish`].
#[derive(Debug)]
pub struct OwnedTransmit {
    destination: SocketAddr,
    contents: Contents,
    segment_size: Option<usize>,
    segments: usize,
}

impl OwnedTransmit {
    /// The transmit, for the socket.
    pub fn as_transmit(&self) -> quinn_udp::Transmit<'_> {
        quinn_udp::Transmit {
            destination: self.destination,
            ecn: None,
            contents: match &self.contents {
                Contents::Batch(v) => v,
                Contents::Single(b) => b,
            },
            segment_size: self.segment_size,
            src_ip: None,
        }
    }
}

/// The bytes of an [`OwnedTransmit`].
#[derive(Debug)]
enum Contents {
    /// Several datagrams copied back to back (a GSO batch); the buffer is reused.
    Batch(Vec<u8>),
    /// One datagram, as the endpoint made it (not copied).
    Single(Bytes),
}

/// What the driver does next, with the transmit owned ([`Engine::poll_owned`]).
#[derive(Debug)]
pub enum OwnedStep {
    /// Send this, then [`Engine::finish`] it.
    Transmit(OwnedTransmit),
    /// Tell the application.
    Event(Event),
    /// Nothing to do until a datagram arrives or [`Engine::deadline`] passes.
    Idle,
}

/// Counters of the socket side (the endpoint's own are in [`Endpoint::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Send calls made (a GSO batch of many datagrams counts once).
    pub send_calls: u64,
    /// Datagrams given up on because the socket could not take them.
    pub send_drops: u64,
    /// Signaling datagrams (offers, answers, repeats) sent.
    pub signals_sent: u64,
}

/// Consecutive packets to one destination, all of one size but the last: one GSO send.
#[derive(Debug, Default)]
struct Batch {
    to: Option<SocketAddr>,
    size: usize,
    /// The first datagram, as the endpoint made it: a batch of one (every datagram when
    /// they are too big to batch, as on a loopback path) is sent from it, not copied.
    first: Bytes,
    /// Two or more datagrams back to back (the first is copied in when a second joins).
    buf: Vec<u8>,
    /// Bytes in the batch.
    bytes: usize,
    segments: usize,
    /// Full (or ended by a short datagram, or nothing more to add): send before adding.
    closed: bool,
}

impl Batch {
    /// Adds a datagram if it fits the batch; false if the batch must go first.
    fn push(&mut self, to: SocketAddr, datagram: &Bytes, max_segments: usize) -> bool {
        if self.segments > 0
            && (self.to != Some(to)
                || datagram.len() > self.size
                || self.bytes + datagram.len() > MAX_BATCH_BYTES)
        {
            self.closed = true;
            return false;
        }
        if self.segments == 0 {
            self.to = Some(to);
            self.size = datagram.len();
            self.first = datagram.clone();
        } else {
            if self.segments == 1 {
                self.buf.extend_from_slice(&self.first);
            }
            self.buf.extend_from_slice(datagram);
        }
        self.bytes += datagram.len();
        self.segments += 1;
        // A shorter datagram can only end a batch.
        self.closed = self.segments >= max_segments || datagram.len() < self.size;
        true
    }

    fn transmit(&self) -> Option<quinn_udp::Transmit<'_>> {
        Some(quinn_udp::Transmit {
            destination: self.to?,
            ecn: None,
            contents: self.contents(),
            segment_size: (self.segments > 1).then_some(self.size),
            src_ip: None,
        })
    }

    /// The batch's bytes: the one datagram, or the copies back to back.
    fn contents(&self) -> &[u8] {
        if self.segments == 1 {
            &self.first
        } else {
            &self.buf
        }
    }

    fn clear(&mut self) -> usize {
        self.buf.clear();
        self.first = Bytes::new();
        self.bytes = 0;
        self.to = None;
        self.closed = false;
        std::mem::take(&mut self.segments)
    }
}

/// What [`Engine::poll`] handed out last and is waiting for [`Engine::sent`] on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Batch,
    Signal,
}

/// One endpoint, driven from a socket the caller owns.
#[derive(Debug)]
pub struct Engine {
    endpoint: Endpoint,
    local: SocketAddr,
    /// The endpoint's clock starts here.
    epoch: WallClock,
    /// When the endpoint wants `Input::Timeout`.
    timeout: Instant,
    direct: Direct,
    signals: VecDeque<(SocketAddr, Bytes)>,
    batch: Batch,
    /// A packet that did not fit the batch: the first of the next one.
    held: Option<Transmit>,
    max_segments: usize,
    pending: Pending,
    stats: IoStats,
    /// Batch buffers handed back by [`Engine::finish`], for reuse.
    spare: Vec<Vec<u8>>,
    /// Received datagrams are copied here (the socket's buffer is reused for the next
    /// read) and handed to the endpoint as slices of it.
    rx: Slab,
}

impl Engine {
    /// An endpoint made with `config`, whose host candidate is `local` (the socket's
    /// address). `max_segments` is how many datagrams one send may carry (the socket's
    /// GSO limit; 1 turns batching off).
    pub fn new(config: Config, local: SocketAddr, max_segments: usize) -> Engine {
        let mut endpoint = Endpoint::new(config);
        endpoint.add_host_candidate(local);
        Engine {
            endpoint,
            local,
            epoch: WallClock::now(),
            timeout: Instant::ZERO,
            direct: Direct::default(),
            signals: VecDeque::new(),
            batch: Batch::default(),
            held: None,
            max_segments: max_segments.max(1),
            pending: Pending::None,
            stats: IoStats::default(),
            spare: Vec::new(),
            rx: Slab::new(RX_SLAB, RX_POOL),
        }
    }

    /// The endpoint, for the application's calls (poll again after them).
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The endpoint's current time, by the wall clock.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The socket-side counters.
    pub fn stats(&self) -> IoStats {
        let mut s = self.stats;
        s.signals_sent = self.direct.sent;
        s
    }

    /// How many datagrams one send may carry (1: no batching).
    pub fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// Changes how many datagrams one send may carry (1 turns batching off).
    pub fn set_max_segments(&mut self, max: usize) {
        self.max_segments = max.max(1);
    }

    /// A datagram arrived from `source`.
    pub fn receive(&mut self, source: SocketAddr, datagram: &[u8]) {
        self.receive_segments(source, datagram, datagram.len());
    }

    /// Datagrams from `source` coalesced by GRO: `buf` cut every `stride` bytes.
    pub fn receive_segments(&mut self, source: SocketAddr, buf: &[u8], stride: usize) {
        // One copy of the whole read into the receive slab, then a slice per datagram.
        self.rx.reserve(buf.len());
        self.rx.buf().extend_from_slice(buf);
        let read = self.rx.split();
        self.receive_bytes(source, read, stride);
    }

    /// [`Engine::receive_segments`] of bytes the caller already owns as `Bytes` (as
    /// [`Socket`](crate::socket::Socket) reads them): sliced per datagram, not copied.
    pub fn receive_bytes(&mut self, source: SocketAddr, read: Bytes, stride: usize) {
        let stride = stride.max(1);
        for start in (0..read.len()).step_by(stride) {
            let datagram = read.slice(start..read.len().min(start + stride));
            if datagram.starts_with(direct::MAGIC) {
                self.on_signal(source, &datagram);
                continue;
            }
            let now = self.now();
            self.endpoint.handle_input(Input::Receive {
                now,
                source,
                destination: self.local,
                contents: datagram,
            });
        }
    }

    /// When the driver must call [`Engine::handle_timeout`] (`None`: no timer armed).
    pub fn deadline(&self) -> Option<WallClock> {
        let core = (self.timeout != Instant::FAR_FUTURE)
            .then(|| self.epoch + Duration::from_nanos(self.timeout.as_nanos()));
        match (core, self.direct.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: fires the endpoint's timer if due and queues offers due again.
    pub fn handle_timeout(&mut self) {
        let now = self.now();
        if now >= self.timeout {
            self.endpoint.handle_input(Input::Timeout(now));
            // Until poll says otherwise, do not fire again.
            self.timeout = Instant::FAR_FUTURE;
        }
        for signal in self.direct.due(WallClock::now()) {
            self.queue_signal(signal);
        }
    }

    /// Direct signaling: sends the request's offer to `to` on the socket, and again (250
    /// ms, doubling to 2 s) until the answer comes back on the socket or the request
    /// completes otherwise. The peer's engine raises `Event::SessionRequest` with the
    /// sender's address as `peer`; it answers with [`Engine::reply_direct`].
    pub fn request_direct(&mut self, to: SocketAddr, pending: &PendingOffer) {
        let d = self
            .direct
            .request(pending.session(), to, pending.offer(), WallClock::now());
        self.queue_signal((to, d));
    }

    /// Direct signaling: sends `answer` to where `offer` came from (and again if the offer
    /// is repeated). Returns false if `offer` did not come over this socket.
    pub fn reply_direct(&mut self, offer: &Offer, answer: &Answer) -> bool {
        match self.direct.reply(offer, answer) {
            Some(signal) => {
                self.queue_signal(signal);
                true
            }
            None => false,
        }
    }

    fn queue_signal(&mut self, signal: (SocketAddr, Bytes)) {
        if self.signals.len() < MAX_QUEUED_SIGNALS {
            self.signals.push_back(signal);
        }
    }

    /// A signaling datagram from `from`.
    fn on_signal(&mut self, from: SocketAddr, datagram: &[u8]) {
        let limits = &self.endpoint.config().sdp;
        match direct::parse(datagram) {
            Some(Some(Signal::Offer(text))) => {
                // A malformed offer is dropped (the sender's problem, not ours).
                let Ok(offer) = Offer::parse(text, limits) else {
                    return;
                };
                match self.direct.on_offer(&offer, from) {
                    Ok(true) => {
                        let _ = self.endpoint.handle_offer(&from.to_string(), text);
                    }
                    Ok(false) => {}
                    Err(answer) => self.queue_signal((from, answer)),
                }
            }
            Some(Some(Signal::Answer(text))) => {
                // A repeat (or a stray) answer fails to match a pending request: dropped.
                if let Ok(session) = self.endpoint.handle_answer(text) {
                    self.direct.completed(session);
                }
            }
            _ => {}
        }
    }

    /// The next thing to do. After a [`Step::Transmit`], call [`Engine::sent`] (or
    /// [`Engine::dropped`]) before polling again, or the same transmit comes back.
    pub fn poll(&mut self) -> Step<'_> {
        loop {
            if self.batch.closed {
                self.pending = Pending::Batch;
                return self.batch.transmit().map_or(Step::Idle, Step::Transmit);
            }
            if let Some(t) = self.held.take() {
                self.batch
                    .push(t.destination, &t.contents, self.max_segments);
                continue;
            }
            if !self.signals.is_empty() {
                self.pending = Pending::Signal;
                let (to, d) = &self.signals[0];
                return Step::Transmit(quinn_udp::Transmit {
                    destination: *to,
                    ecn: None,
                    contents: d,
                    segment_size: None,
                    src_ip: None,
                });
            }
            match self.endpoint.poll_output() {
                Output::Transmit(t) => {
                    if !self
                        .batch
                        .push(t.destination, &t.contents, self.max_segments)
                    {
                        self.held = Some(t);
                    }
                }
                Output::Event(e) => {
                    if let Event::RequestComplete { session, .. } = &e {
                        // Answered, refused or timed out: no more repeats of its offer.
                        self.direct.completed(*session);
                    }
                    return Step::Event(e);
                }
                Output::Timeout(at) => {
                    self.timeout = at;
                    if self.batch.segments == 0 {
                        return Step::Idle;
                    }
                    // Nothing more to add now: send what is batched.
                    self.batch.closed = true;
                }
            }
        }
    }

    /// As [`Engine::poll`], but a transmit comes out owned: send it without the engine
    /// (and whatever lock guards it), then hand it back with [`Engine::finish`].
    pub fn poll_owned(&mut self) -> OwnedStep {
        match self.poll() {
            Step::Event(e) => return OwnedStep::Event(e),
            Step::Idle => return OwnedStep::Idle,
            Step::Transmit(_) => {}
        }
        let t = match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Batch => {
                let Some(destination) = self.batch.to else {
                    return OwnedStep::Idle;
                };
                let segment_size = (self.batch.segments > 1).then_some(self.batch.size);
                let contents = if self.batch.segments == 1 {
                    Contents::Single(self.batch.first.clone())
                } else {
                    let spare = self.spare.pop().unwrap_or_default();
                    Contents::Batch(std::mem::replace(&mut self.batch.buf, spare))
                };
                let segments = self.batch.clear();
                OwnedTransmit {
                    destination,
                    contents,
                    segment_size,
                    segments,
                }
            }
            Pending::Signal => {
                let Some((destination, d)) = self.signals.pop_front() else {
                    return OwnedStep::Idle;
                };
                OwnedTransmit {
                    destination,
                    contents: Contents::Single(d),
                    segment_size: None,
                    segments: 1,
                }
            }
            Pending::None => return OwnedStep::Idle,
        };
        OwnedStep::Transmit(t)
    }

    /// An owned transmit went out (`sent`) or was given up; its buffer is reused.
    pub fn finish(&mut self, t: OwnedTransmit, sent: bool) {
        if sent {
            self.stats.send_calls += 1;
        } else {
            self.stats.send_drops += t.segments as u64;
        }
        if let Contents::Batch(mut buf) = t.contents {
            if self.spare.len() < 4 && buf.capacity() >= MAX_BATCH_BYTES / 2 {
                buf.clear();
                self.spare.push(buf);
            }
        }
    }

    /// The last [`Step::Transmit`] went out.
    pub fn sent(&mut self) {
        self.finish_pending();
        self.stats.send_calls += 1;
    }

    /// The last [`Step::Transmit`] could not go out and is given up (as a network would
    /// lose it; reliable data is sent again).
    pub fn dropped(&mut self) {
        self.stats.send_drops += self.finish_pending() as u64;
    }

    /// Forgets the pending transmit; returns how many datagrams it held.
    fn finish_pending(&mut self) -> usize {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Batch => self.batch.clear(),
            Pending::Signal => usize::from(self.signals.pop_front().is_some()),
            Pending::None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(len: usize) -> Bytes {
        Bytes::from(vec![0; len])
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_batch_holds_one_destination_and_one_size_and_a_short_datagram_ends_it() {
        let mut b = Batch::default();
        assert!(b.push(addr(1), &zeros(100), 10));
        assert!(b.push(addr(1), &zeros(100), 10));
        assert!(!b.closed);
        assert!(b.push(addr(1), &zeros(40), 10));
        assert!(b.closed, "a short datagram ends the batch");
        let t = b.transmit().unwrap();
        assert_eq!((t.contents.len(), t.segment_size), (240, Some(100)));
        assert_eq!(b.clear(), 3);

        assert!(b.push(addr(1), &zeros(100), 10));
        assert!(!b.push(addr(2), &zeros(100), 10), "another destination");
        assert!(b.closed);
        b.clear();
        assert!(b.push(addr(1), &zeros(100), 10));
        assert!(!b.push(addr(1), &zeros(101), 10), "a longer datagram");
        b.clear();
        let one = zeros(100);
        assert!(b.push(addr(1), &one, 1));
        assert!(b.closed, "one segment per send: every datagram alone");
        let t = b.transmit().unwrap();
        assert_eq!(t.segment_size, None);
        assert_eq!(
            t.contents.as_ptr(),
            one.as_ptr(),
            "a batch of one is not copied"
        );
    }

    #[test]
    fn a_batch_never_exceeds_the_send_limit() {
        let mut b = Batch::default();
        let mut n = 0;
        while b.push(addr(1), &zeros(1200), 1000) {
            n += 1;
        }
        assert_eq!(n, MAX_BATCH_BYTES / 1200);
        assert!(b.contents().len() <= MAX_BATCH_BYTES);
    }

    #[test]
    fn two_engines_connect_by_direct_signaling_without_a_socket() {
        use carrier_proto::{Reply, StreamOptions, StreamState, StreamType};
        let mut a = Engine::new(Config::default().with_seed([1; 32]), addr(1), 8);
        let mut b = Engine::new(Config::default().with_seed([2; 32]), addr(2), 8);
        let s = a.endpoint().new_session("b").unwrap();
        let mut session = a.endpoint().session(s).unwrap();
        session
            .add_stream(StreamType::Application, StreamOptions::RELIABLE)
            .unwrap();
        let now = a.now();
        let pending = a.endpoint().session(s).unwrap().request(now, "").unwrap();
        a.request_direct(addr(2), &pending);
        let mut pending = Some(pending);
        let mut connected = 0;
        // Shuttle datagrams between the two engines as a lossless wire would.
        for _ in 0..200 {
            for turn in 0..2 {
                let (me, other, from) = if turn == 0 {
                    (&mut a, &mut b, addr(1))
                } else {
                    (&mut b, &mut a, addr(2))
                };
                let mut wire = Vec::new();
                let mut events = Vec::new();
                loop {
                    match me.poll() {
                        Step::Transmit(t) => {
                            let stride = t.segment_size.unwrap_or(t.contents.len());
                            wire.push((t.contents.to_vec(), stride));
                            me.sent();
                        }
                        Step::Event(e) => events.push(e),
                        Step::Idle => break,
                    }
                }
                for e in events {
                    match e {
                        Event::SessionRequest { offer, .. } => {
                            let ep = me.endpoint();
                            let s = ep.new_session("a").unwrap();
                            let mut sm = ep.session(s).unwrap();
                            sm.add_stream(StreamType::Application, StreamOptions::RELIABLE)
                                .unwrap();
                            let answer = sm.reply(&offer, Reply::Accept).unwrap();
                            let now = me.now();
                            me.endpoint().session(s).unwrap().start(now).unwrap();
                            assert!(me.reply_direct(&offer, &answer));
                        }
                        Event::RequestComplete { session, outcome } => {
                            let carrier_proto::RequestOutcome::Accepted(answer) = outcome else {
                                panic!("refused: {outcome:?}");
                            };
                            let now = me.now();
                            me.endpoint()
                                .session(session)
                                .unwrap()
                                .start_with(now, pending.take().unwrap(), answer)
                                .unwrap();
                        }
                        Event::StateChanged {
                            state: StreamState::Connected,
                            ..
                        } => connected += 1,
                        _ => {}
                    }
                }
                for (d, stride) in wire {
                    other.receive_segments(from, &d, stride);
                }
                me.handle_timeout();
            }
            if connected == 2 {
                break;
            }
        }
        assert_eq!(connected, 2, "both sides connected");
        assert_eq!(a.stats().signals_sent, 1, "one offer, answered at once");
        assert_eq!(b.stats().signals_sent, 1, "one answer");
    }
}
