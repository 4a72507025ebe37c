//! A blocking, single-threaded driver of [`carrier_proto`] for programs that run their own
//! [`mio::Poll`].
//!
//! The driver owns one UDP socket and one [`Endpoint`]. Register it with your poll under a
//! token, call [`Driver::on_readable`] when that token is ready, [`Driver::on_timeout`] when
//! the poll returns after [`Driver::poll_timeout`], and [`Driver::flush`] after your own
//! calls on the endpoint. Events reach your [`EventSink`]; what the endpoint wants sent goes
//! out on the socket.
//!
//! ```
//! use carrier_mio::{Driver, EventSink};
//! use carrier_proto::{Config, Endpoint, Event};
//! use mio::{Events, Poll, Token};
//! use std::time::Duration;
//!
//! struct Print;
//! impl EventSink for Print {
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

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant as WallClock};

use carrier_proto::{Answer, Config, Endpoint, Event, Instant, Offer, PendingOffer};
use carrier_udp::{Engine, Socket, Step};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

pub use carrier_udp::{IoStats, SIGNAL_MAGIC};

/// What the application does with the endpoint's events (a callback, as the Carrier SDK's
/// handlers were).
pub trait EventSink {
    /// One event. `endpoint` is there for the calls an event usually leads to (reply to a
    /// request, accept a channel, write more); the driver sends what they produce.
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event);
}

impl<F: FnMut(&mut Endpoint, Event)> EventSink for F {
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
    sides: &mut [(&mut Driver, &mut dyn EventSink)],
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

/// One socket, one endpoint, driven from a `mio::Poll`.
#[derive(Debug)]
pub struct Driver {
    socket: UdpSocket,
    /// Batched IO (GSO/GRO) where the OS offers it.
    io: Socket,
    /// The endpoint, its clock, direct signaling and the send batch.
    engine: Engine,
}

impl Driver {
    /// Binds a UDP socket to `addr` and makes an endpoint with `config`, whose host
    /// candidate is the bound address.
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Driver> {
        let socket = UdpSocket::bind(addr)?;
        carrier_udp::tune_buffers(carrier_udp::socket2::SockRef::from(&socket));
        let io = Socket::new((&socket).into())?;
        let engine = Engine::new(config, socket.local_addr()?, io.max_gso_segments());
        Ok(Driver { socket, io, engine })
    }

    /// The socket's address (the endpoint's host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.engine.local_addr()
    }

    /// The endpoint, for the application's calls; call [`Driver::flush`] after them.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        self.engine.endpoint()
    }

    /// The endpoint's current time (the driver's clock, for calls that take `now`).
    pub fn now(&self) -> Instant {
        self.engine.now()
    }

    /// The socket-side counters: send calls, datagrams dropped because the socket's send
    /// buffer was full (as a network would drop them), signaling datagrams sent.
    pub fn io_stats(&self) -> IoStats {
        self.engine.stats()
    }

    /// Datagrams dropped because the socket's send buffer was full.
    pub fn send_drops(&self) -> u64 {
        self.engine.stats().send_drops
    }

    /// Turns batched sends (GSO) on or off; on by default where the OS offers it. Returns
    /// whether it is on now. (Receives always take what GRO coalesced.)
    pub fn set_batching(&mut self, on: bool) -> bool {
        let segments = if on { self.io.max_gso_segments() } else { 1 };
        self.engine.set_max_segments(segments);
        segments > 1
    }

    /// Send system calls made so far (a GSO batch of many datagrams counts once).
    pub fn send_calls(&self) -> u64 {
        self.engine.stats().send_calls
    }

    /// Signaling datagrams (offers, answers, repeats) sent so far.
    pub fn signals_sent(&self) -> u64 {
        self.engine.stats().signals_sent
    }

    /// Direct signaling: sends the request's offer to `to` over this socket (at the next
    /// flush), and again (250 ms, doubling to 2 s) until the answer comes back on the
    /// socket or the request completes otherwise. The peer's driver raises
    /// `Event::SessionRequest` with the sender's address as `peer`; its application
    /// answers with [`Driver::reply_direct`].
    pub fn request_direct(&mut self, to: SocketAddr, pending: &PendingOffer) {
        self.engine.request_direct(to, pending);
    }

    /// Direct signaling: sends `answer` to where `offer` came from (at the next flush, and
    /// again if the offer is repeated). Returns false if `offer` did not come over this
    /// socket.
    pub fn reply_direct(&mut self, offer: &Offer, answer: &Answer) -> bool {
        self.engine.reply_direct(offer, answer)
    }

    /// Registers the socket for readability under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// How long the poll may block before [`Driver::on_timeout`] is due (`None`: no
    /// timer is armed).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.engine
            .deadline()
            .map(|at| at.saturating_duration_since(WallClock::now()))
    }

    /// The socket is readable: feeds the endpoint every datagram waiting, then flushes.
    pub fn on_readable(&mut self, handler: &mut (impl EventSink + ?Sized)) -> io::Result<()> {
        loop {
            match self.io.recv((&self.socket).into(), &mut self.engine) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.flush(handler)
    }

    /// The poll timed out (or any time): fires the endpoint's timer if due, then flushes.
    pub fn on_timeout(&mut self, handler: &mut (impl EventSink + ?Sized)) -> io::Result<()> {
        self.engine.handle_timeout();
        self.flush(handler)
    }

    /// Drains the endpoint: datagrams to the socket, events to `handler` (whose calls may
    /// produce more), until it says when to come back. A datagram the socket's full send
    /// buffer refuses is dropped and counted, as a network would drop it.
    pub fn flush(&mut self, handler: &mut (impl EventSink + ?Sized)) -> io::Result<()> {
        loop {
            match self.engine.poll() {
                Step::Transmit(t) => match self.io.send((&self.socket).into(), &t) {
                    Ok(()) => self.engine.sent(),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.engine.dropped(),
                    Err(e) => {
                        self.engine.dropped();
                        return Err(e);
                    }
                },
                Step::Event(e) => handler.on_event(self.engine.endpoint(), e),
                Step::Idle => return Ok(()),
            }
        }
    }
}
