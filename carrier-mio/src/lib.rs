//! A blocking, single-threaded driver of [`carrier_proto`] for programs that run their own
//! [`mio::Poll`].
//!
//! The driver owns one UDP socket and one [`Endpoint`]. Register it with your poll under a
//! token, call [`Driver::on_readable`] when that token is ready, [`Driver::on_timeout`] when
//! the poll returns after [`Driver::poll_timeout`], and [`Driver::flush`] after your own
//! calls on the endpoint. Events reach your [`Handler`]; what the endpoint wants sent goes
//! out on the socket.
//!
//! ```
//! use carrier_mio::{Driver, Handler};
//! use carrier_proto::{Config, Endpoint, Event};
//! use mio::{Events, Poll, Token};
//! use std::time::Duration;
//!
//! struct Print;
//! impl Handler for Print {
//!     fn on_event(&mut self, _endpoint: &mut Endpoint, event: Event) {
//!         println!("{event:?}");
//!     }
//! }
//!
//! let mut poll = Poll::new()?;
//! let seed = [7; 32]; // real entropy in production (e.g. getrandom)
//! let mut driver = Driver::bind("127.0.0.1:0".parse()?, Config::default().with_seed(seed))?;
//! driver.register(poll.registry(), Token(0))?;
//! let mut events = Events::with_capacity(64);
//! for _ in 0..3 {
//!     // A real loop blocks for `driver.poll_timeout()`; this one only looks.
//!     let wait = driver.poll_timeout().unwrap_or(Duration::ZERO).min(Duration::ZERO);
//!     poll.poll(&mut events, Some(wait))?;
//!     if events.is_empty() {
//!         driver.on_timeout(&mut Print)?;
//!     }
//!     for _ in events.iter() {
//!         driver.on_readable(&mut Print)?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod direct;

pub use direct::MAGIC as SIGNAL_MAGIC;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use carrier_proto::{Answer, Config, Endpoint, Event, Input, Instant, Offer, Output, PendingOffer};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

/// What the application does with the endpoint's events (a callback, as the original's
/// handlers were).
pub trait Handler {
    /// One event. `endpoint` is there for the calls an event usually leads to (reply to a
    /// request, accept a channel, write more); the driver sends what they produce.
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event);
}

impl<F: FnMut(&mut Endpoint, Event)> Handler for F {
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event) {
        self(endpoint, event)
    }
}

/// One round for several drivers registered on one poll under tokens `0..n` (their index
/// in `sides`): waits until a socket is readable, a timer is due, or `cap` passes; feeds the
/// readable ones; fires every driver's timer. The loop of a program with a few endpoints.
pub fn turn(
    poll: &mut mio::Poll,
    events: &mut mio::Events,
    sides: &mut [(&mut Driver, &mut dyn Handler)],
    cap: Duration,
) -> io::Result<()> {
    let wait = sides
        .iter()
        .filter_map(|(d, _)| d.poll_timeout())
        .min()
        .unwrap_or(cap)
        .min(cap);
    poll.poll(events, Some(wait))?;
    for ev in events.iter() {
        if let Some((driver, handler)) = sides.get_mut(ev.token().0) {
            driver.on_readable(*handler)?;
        }
    }
    for (driver, handler) in sides.iter_mut() {
        driver.on_timeout(*handler)?;
    }
    Ok(())
}

/// Largest datagram read from the socket (above any UDP payload the endpoint sends).
const RECV_BUF: usize = 2048;

/// The receive buffer with GRO: up to this many bytes of coalesced datagrams per read.
const GRO_BUF: usize = 64 * 1024;

/// One socket, one endpoint, driven from a `mio::Poll`.
#[derive(Debug)]
pub struct Driver {
    socket: UdpSocket,
    local: SocketAddr,
    endpoint: Endpoint,
    /// The endpoint's clock starts here.
    epoch: WallClock,
    /// When the endpoint wants `Input::Timeout`.
    timeout: Instant,
    buf: Box<[u8; RECV_BUF]>,
    /// Datagrams the socket refused (its buffer full): dropped, as the network would.
    send_drops: u64,
    /// Offers and answers carried on the socket (see [`Driver::request_direct`]).
    direct: direct::Direct,
    /// Batched IO (GSO/GRO) where the OS offers it.
    udp: quinn_udp::UdpSocketState,
    batching: bool,
    /// Consecutive packets to one destination, all of one size but the last, sent in one
    /// GSO call: (destination, segment size, bytes, segments).
    batch: (Option<SocketAddr>, usize, Vec<u8>, usize),
    gro_buf: Vec<u8>,
    /// Send calls made (a GSO batch counts once).
    send_calls: u64,
}

impl Driver {
    /// Binds a UDP socket to `addr` and makes an endpoint with `config`, whose host
    /// candidate is the bound address.
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Driver> {
        let socket = UdpSocket::bind(addr)?;
        let local = socket.local_addr()?;
        let udp = quinn_udp::UdpSocketState::new((&socket).into())?;
        let batching = udp.max_gso_segments() > 1 || udp.gro_segments() > 1;
        let mut endpoint = Endpoint::new(config);
        endpoint.add_host_candidate(local);
        Ok(Driver {
            socket,
            local,
            endpoint,
            epoch: WallClock::now(),
            timeout: Instant::ZERO,
            buf: Box::new([0; RECV_BUF]),
            send_drops: 0,
            direct: direct::Direct::default(),
            udp,
            batching,
            batch: (None, 0, Vec::new(), 0),
            gro_buf: vec![0; GRO_BUF],
            send_calls: 0,
        })
    }

    /// The socket's address (the endpoint's host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The endpoint, for the application's calls; call [`Driver::flush`] after them.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The endpoint's current time (the driver's clock, for calls that take `now`).
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Datagrams dropped because the socket's send buffer was full.
    pub fn send_drops(&self) -> u64 {
        self.send_drops
    }

    /// Turns batched socket IO (GSO on send, GRO on receive) on or off; it is on by
    /// default where the OS offers it. Returns whether it is on now.
    pub fn set_batching(&mut self, on: bool) -> bool {
        self.batching = on && (self.udp.max_gso_segments() > 1 || self.udp.gro_segments() > 1);
        self.batching
    }

    /// Send system calls made so far (a GSO batch of many datagrams counts once).
    pub fn send_calls(&self) -> u64 {
        self.send_calls
    }

    /// Signaling datagrams (offers, answers, repeats) sent so far.
    pub fn signals_sent(&self) -> u64 {
        self.direct.sent
    }

    /// Direct signaling: sends the request's offer to `to` over this socket, and again
    /// (250 ms, doubling to 2 s) until the answer comes back on the socket or the request
    /// completes otherwise. The peer's driver raises `Event::SessionRequest` with the
    /// sender's address as `peer`; its application answers with [`Driver::reply_direct`].
    pub fn request_direct(&mut self, to: SocketAddr, pending: &PendingOffer) -> io::Result<()> {
        let d = self.direct.request(pending.session(), to, pending.offer());
        self.send(to, &d)
    }

    /// Direct signaling: sends `answer` to where `offer` came from (and again if the offer
    /// is repeated). Returns false if `offer` did not come over this socket.
    pub fn reply_direct(&mut self, offer: &Offer, answer: &Answer) -> io::Result<bool> {
        match self.direct.reply(offer, answer) {
            Some((to, d)) => self.send(to, &d).map(|()| true),
            None => Ok(false),
        }
    }

    /// Queues a packet for sending: with batching, consecutive packets to one destination
    /// of one size go out in one GSO call; otherwise, or when the batch is full, at once.
    fn send_packet(&mut self, to: SocketAddr, datagram: &[u8]) -> io::Result<()> {
        if !self.batching || self.udp.max_gso_segments() <= 1 {
            return self.send(to, datagram);
        }
        let (dest, size, _, segments) = &self.batch;
        let fits = *dest == Some(to)
            && datagram.len() <= *size
            && *segments < self.udp.max_gso_segments()
            && self.batch.2.len() + datagram.len() <= GRO_BUF;
        if !fits {
            self.flush_batch()?;
            self.batch.0 = Some(to);
            self.batch.1 = datagram.len();
        }
        self.batch.2.extend_from_slice(datagram);
        self.batch.3 += 1;
        if datagram.len() < self.batch.1 {
            // A shorter datagram can only end a GSO batch.
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Sends the pending GSO batch, if any.
    fn flush_batch(&mut self) -> io::Result<()> {
        let Some(to) = self.batch.0.take() else {
            return Ok(());
        };
        let segments = std::mem::take(&mut self.batch.3);
        let size = self.batch.1;
        let transmit = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents: &self.batch.2,
            segment_size: (segments > 1).then_some(size),
            src_ip: None,
        };
        self.send_calls += 1;
        let result = match self.udp.send((&self.socket).into(), &transmit) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.send_drops += segments as u64;
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.batch.2.clear();
        result
    }

    /// Sends one datagram; a full socket buffer drops it (counted), as a network would.
    fn send(&mut self, to: SocketAddr, datagram: &[u8]) -> io::Result<()> {
        self.send_calls += 1;
        match self.socket.send_to(datagram, to) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.send_drops += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A signaling datagram from `from`.
    fn on_signal(&mut self, from: SocketAddr, datagram: &[u8]) -> io::Result<()> {
        let limits = self.endpoint.config().sdp.clone();
        match direct::parse(datagram) {
            Some(Some(direct::Signal::Offer(text))) => {
                // A malformed offer is dropped (the sender's problem, not ours).
                let Ok(offer) = Offer::parse(text, &limits) else {
                    return Ok(());
                };
                match self.direct.on_offer(&offer, from) {
                    Ok(true) => {
                        let _ = self.endpoint.handle_offer(&from.to_string(), text);
                    }
                    Ok(false) => {}
                    Err(answer) => self.send(from, &answer)?,
                }
            }
            Some(Some(direct::Signal::Answer(text))) => {
                // A repeat (or a stray) answer fails to match a pending request: dropped.
                if let Ok(session) = self.endpoint.handle_answer(text) {
                    self.direct.completed(session);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Registers the socket for readability under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// How long the poll may block before [`Driver::on_timeout`] is due (`None`: no
    /// timer is armed).
    pub fn poll_timeout(&self) -> Option<Duration> {
        let direct = self
            .direct
            .next_due()
            .map(|at| at.saturating_duration_since(WallClock::now()));
        if self.timeout == Instant::FAR_FUTURE {
            return direct;
        }
        let core = self.timeout.saturating_duration_since(self.now());
        Some(direct.map_or(core, |d| d.min(core)))
    }

    /// The socket is readable: feeds the endpoint every datagram waiting, then flushes.
    pub fn on_readable(&mut self, handler: &mut (impl Handler + ?Sized)) -> io::Result<()> {
        if self.batching && self.udp.gro_segments() > 1 {
            self.read_gro()?;
            return self.flush(handler);
        }
        loop {
            match self.socket.recv_from(&mut self.buf[..]) {
                Ok((n, source)) if self.buf[..n].starts_with(direct::MAGIC) => {
                    let datagram = self.buf[..n].to_vec();
                    self.on_signal(source, &datagram)?;
                }
                Ok((n, source)) => {
                    let now = self.now();
                    self.endpoint.handle_input(Input::Receive {
                        now,
                        source,
                        destination: self.local,
                        contents: Bytes::copy_from_slice(&self.buf[..n]),
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // An earlier datagram bounced (ICMP port unreachable): nothing to do.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
        self.flush(handler)
    }

    /// Reads with GRO: each read may return many datagrams of one sender coalesced, split
    /// at `stride`.
    fn read_gro(&mut self) -> io::Result<()> {
        loop {
            let mut meta = [quinn_udp::RecvMeta::default()];
            let n = {
                let mut bufs = [std::io::IoSliceMut::new(&mut self.gro_buf)];
                match self.udp.recv((&self.socket).into(), &mut bufs, &mut meta) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                return Ok(());
            }
            let m = meta[0];
            let stride = m.stride.max(1);
            let mut at = 0;
            while at < m.len {
                let end = (at + stride).min(m.len);
                let datagram = &self.gro_buf[at..end];
                if datagram.starts_with(direct::MAGIC) {
                    let d = datagram.to_vec();
                    self.on_signal(m.addr, &d)?;
                } else {
                    let now = self.now();
                    self.endpoint.handle_input(Input::Receive {
                        now,
                        source: m.addr,
                        destination: self.local,
                        contents: Bytes::copy_from_slice(datagram),
                    });
                }
                at = end;
            }
        }
    }

    /// The poll timed out (or any time): fires the endpoint's timer if due, then flushes.
    pub fn on_timeout(&mut self, handler: &mut (impl Handler + ?Sized)) -> io::Result<()> {
        let now = self.now();
        if now >= self.timeout {
            self.endpoint.handle_input(Input::Timeout(now));
        }
        for (to, d) in self.direct.due(WallClock::now()) {
            self.send(to, &d)?;
        }
        self.flush(handler)
    }

    /// Drains the endpoint: datagrams to the socket, events to `handler` (whose calls may
    /// produce more), until it says when to come back.
    pub fn flush(&mut self, handler: &mut (impl Handler + ?Sized)) -> io::Result<()> {
        loop {
            match self.endpoint.poll_output() {
                Output::Transmit(t) => self.send_packet(t.destination, &t.contents)?,
                Output::Event(e) => {
                    self.flush_batch()?;
                    if let Event::RequestComplete { session, .. } = &e {
                        // Answered, refused or timed out: no more repeats of its offer.
                        self.direct.completed(*session);
                    }
                    handler.on_event(&mut self.endpoint, e)
                }
                Output::Timeout(at) => {
                    self.timeout = at;
                    return self.flush_batch();
                }
            }
        }
    }
}
