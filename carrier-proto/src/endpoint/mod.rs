//! The endpoint: one socket's worth of sessions, and the one loop that drives them.
//!
//! ```text
//! handle_input(Input::Receive | Input::Timeout)   ─┐
//! app calls (new_session, session(id)?.write, …)  ─┼─► then drain poll_output() until
//!                                                   │   Output::Timeout(at): Transmit | Event
//! ```
//!
//! Incoming datagrams are routed to their session in O(1): the destination id in the packet
//! header is the session's [`SessionId`], whose low 32 bits index the session table and
//! whose high 32 bits must match the slot's random tag.

mod context;
mod handle;

pub(crate) use context::Context;
pub use handle::SessionMut;

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::SocketAddr;

use crate::config::Config;
use crate::crypto::OpenError;
use crate::error::Error;
use crate::event::Event;
use crate::negotiation::{Answer, Offer};
use crate::packet::{Header, PacketError, is_carrier_packet, peek_destination};
use crate::session::{Incoming, Session, SessionId};
use crate::time::Instant;
use crate::types::Candidate;

/// Something for the core to process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A datagram arrived.
    Receive {
        /// When it arrived.
        now: Instant,
        /// Who sent it.
        source: SocketAddr,
        /// The local address it arrived on.
        destination: SocketAddr,
        /// The bytes (the payload of a data event is a zero-copy slice of these).
        contents: Bytes,
    },
    /// Time has passed: run whatever timers are due.
    Timeout(Instant),
}

/// A datagram for the driver to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Bytes,
}

/// What [`Endpoint::poll_output`] hands back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Tell the application this.
    Event(Event),
    /// Nothing more to do until this instant (or the next input); then feed
    /// [`Input::Timeout`]. [`Instant::FAR_FUTURE`] means no timer is armed.
    Timeout(Instant),
}

/// A registered handler for session requests whose bundle starts with its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerId(u32);

/// Counters for everything the endpoint did or dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams handed in.
    pub packets_received: u64,
    /// Datagrams handed out.
    pub packets_sent: u64,
    /// Bytes handed out.
    pub bytes_sent: u64,
    /// Dropped: not a Carrier packet (first byte), e.g. stray STUN or garbage.
    pub dropped_not_carrier: u64,
    /// Dropped: no session has the destination id.
    pub dropped_unknown_session: u64,
    /// Dropped: checksum mismatch (corrupted on the way; or, before `start_with`, a sealed
    /// packet from a peer that already has the session's keys).
    pub dropped_bad_checksum: u64,
    /// Dropped: malformed header, payload or frame, or an unknown version or type.
    pub dropped_malformed: u64,
    /// Dropped: valid, but not expected in the session's state or from that address.
    pub dropped_unexpected: u64,
    /// Datagrams sent on unreliable streams.
    pub datagrams_sent: u64,
    /// Incoming datagrams not delivered (stream not Connected, unknown, or reliable; or the
    /// event queue was full).
    pub datagrams_dropped: u64,
    /// Data events dropped because the application did not drain events.
    pub events_dropped: u64,
    /// Sessions ended by the idle timeout.
    pub idle_timeouts: u64,
    /// Sessions whose path died (no ACK after the configured probe timeouts).
    pub dead_paths: u64,
    /// Packets received twice (by packet number) and not processed again.
    pub dropped_duplicate: u64,
    /// Stream frames refused for breaking flow control or the final size.
    pub flow_control_violations: u64,
    /// Datagrams not sent because the congestion window was full.
    pub datagrams_congestion_dropped: u64,
    /// Channel opens from peers refused (over a limit, or a reused id) with CLOSE(Error).
    pub channel_opens_refused: u64,
    /// Channel frames dropped: for a closed or unknown channel, or the wrong stream kind.
    pub channel_frames_ignored: u64,
    /// Streams aborted because the peer's channel control stream was malformed.
    pub channel_violations: u64,
    /// Unreliable channels closed with Timeout because the peer went silent.
    pub channel_timeouts: u64,
    /// Packets left unacknowledged because out-of-order data in them had no room (the
    /// peer sends them again; nothing is lost).
    pub packets_refused_busy: u64,
    /// Packets of a protected session whose authentication tag did not verify: corrupted,
    /// forged, or sealed with another key (another session's, a spoofer's).
    pub dropped_bad_tag: u64,
    /// Packets of a protected session whose packet number was accepted before (a replay or
    /// a network duplicate) or is too old to tell.
    pub dropped_replay: u64,
    /// Sessions stopped because their keys were used up (packet numbers or forgeries).
    pub keys_exhausted: u64,
    /// Path MTU probes sent (see [`Config::mtu_ceiling`](crate::Config::mtu_ceiling)).
    pub mtu_probes_sent: u64,
    /// Datagrams queued because the congestion window was full (sent later, at the
    /// controller's pace).
    pub datagrams_queued: u64,
    /// Queued datagrams dropped to make room under
    /// [`DatagramPolicy::DropOldest`](crate::DatagramPolicy::DropOldest).
    pub datagrams_dropped_oldest: u64,
    /// Offers refused by [`Endpoint::handle_offer`] because
    /// [`Config::max_queued_requests`](crate::Config::max_queued_requests) requests were
    /// already waiting for the application.
    pub requests_refused: u64,
    /// Graceful session closes that ran out of
    /// [`Config::close_linger`](crate::Config::close_linger) before the peer acknowledged
    /// everything.
    pub close_lingers_expired: u64,
    /// Packets for a session that has ended but is still in the table (late packets; the
    /// extra copies of the peer's session CLOSE, which goes out in three packets).
    pub dropped_after_end: u64,
    /// Authenticated packets dropped without effect (from an address that is not the
    /// peer's, or not expected now); their packet numbers stay open in the replay window,
    /// so a racing copy cannot shadow the original.
    pub dropped_authenticated: u64,
}

/// A session table slot: a random tag (the id's high half) and maybe a session.
#[derive(Debug)]
struct Slot {
    tag: u32,
    session: Option<Session>,
    /// The application closed the session: the slot is freed as soon as it has ended (a
    /// graceful close keeps it while it flushes).
    release: bool,
}

/// One socket's worth of sessions: routes datagrams, runs timers, queues outputs.
///
/// ```
/// use carrier_proto::{Config, Endpoint, Instant, Output};
/// let mut ep = Endpoint::new(Config::default().with_seed([1; 32]));
/// ep.add_host_candidate("192.0.2.1:4000".parse().unwrap());
/// let s = ep.new_session("peer-2").unwrap();
/// assert_eq!(ep.session(s).unwrap().peer(), "peer-2");
/// assert_eq!(ep.poll_output(), Output::Timeout(Instant::FAR_FUTURE));
/// ```
#[derive(Debug)]
pub struct Endpoint {
    ctx: Context,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    handlers: Vec<(HandlerId, String)>,
    next_handler: u32,
    /// The session `poll_output` asks for a packet first (round-robin, so one busy session
    /// cannot starve the others).
    tx_cursor: usize,
}

impl Endpoint {
    /// An endpoint with no sessions.
    pub fn new(config: Config) -> Self {
        Endpoint {
            ctx: Context::new(config),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            handlers: Vec::new(),
            next_handler: 0,
            tx_cursor: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// This peer's public identity (the Ed25519 public key of
    /// [`Config::identity`](crate::Config::identity)), to give to peers.
    pub fn identity(&self) -> Option<[u8; 32]> {
        self.ctx
            .config
            .identity
            .as_ref()
            .map(crate::crypto::identity::public_of)
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.ctx.stats
    }

    /// Adds a local host address; descriptions made after this list it as a candidate.
    /// Earlier-added addresses are preferred. Adding the same address twice does nothing.
    pub fn add_host_candidate(&mut self, address: SocketAddr) {
        if self.ctx.hosts.iter().any(|c| c.address == address) {
            return;
        }
        let preference = u16::MAX.saturating_sub(self.ctx.hosts.len() as u16);
        self.ctx.hosts.push(Candidate::host(address, preference));
    }

    /// The local candidates.
    pub fn local_candidates(&self) -> &[Candidate] {
        &self.ctx.hosts
    }

    /// Creates a session with `peer` (the original's `newSession`).
    pub fn new_session(&mut self, peer: &str) -> Result<SessionId, Error> {
        if peer.len() > self.ctx.config.max_peer_id_len {
            return Err(Error::Limit {
                what: "peer id length",
                max: self.ctx.config.max_peer_id_len,
            });
        }
        if self.live >= self.ctx.config.max_sessions {
            return Err(Error::Limit {
                what: "sessions",
                max: self.ctx.config.max_sessions,
            });
        }
        let tag = loop {
            let t = self.ctx.rng.u32();
            if t != 0 {
                break t;
            }
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    tag: 0,
                    session: None,
                    release: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let id = SessionId((u64::from(tag) << 32) | u64::from(index));
        let session = Session::new(id, String::from(peer), &mut self.ctx);
        self.slots[index as usize] = Slot {
            tag,
            session: Some(session),
            release: false,
        };
        self.live += 1;
        Ok(id)
    }

    fn session_state(&mut self, id: SessionId) -> Option<&mut Session> {
        let i = self.slot_of(id)?;
        self.slots[i].session.as_mut()
    }

    fn slot_of(&self, id: SessionId) -> Option<usize> {
        let i = id.slot();
        let slot = self.slots.get(i)?;
        (u64::from(slot.tag) == id.0 >> 32 && slot.session.is_some()).then_some(i)
    }

    /// A handle on a session, for the calls the application makes on it.
    pub fn session(&mut self, id: SessionId) -> Result<SessionMut<'_>, Error> {
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        let session = self.slots[i]
            .session
            .as_mut()
            .ok_or(Error::UnknownSession)?;
        Ok(SessionMut {
            session,
            ctx: &mut self.ctx,
        })
    }

    /// Ids of all sessions, in table order.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.session.as_ref().map(|s| s.id))
    }

    /// Closes a session gracefully (the seed's `close`): every reliable stream delivers
    /// what was written (data, then FIN, all acknowledged), queued datagrams go out, and
    /// only then is the peer told (CLOSE Normal) and the session ended — each stream
    /// reports Closed as it finishes. If the peer has not acknowledged everything within
    /// [`Config::close_linger`](crate::Config::close_linger), the session ends anyway: the
    /// peer is told with reason Timeout and the streams close with
    /// [`StateReason::CloseTimeout`](crate::StateReason::CloseTimeout). New writes are
    /// refused from now on; the id is freed once the session has ended. Closing a session
    /// that is already closing does nothing. Events already queued are still delivered.
    pub fn close_session(&mut self, now: Instant, id: SessionId) -> Result<(), Error> {
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        self.ctx.now = self.ctx.now.max(now);
        if let Some(session) = self.slots[i].session.as_mut() {
            session.close(&mut self.ctx, now);
        }
        self.slots[i].release = true;
        self.reap(i);
        Ok(())
    }

    /// Aborts a session: the peer is told at once (CLOSE with reason Error, so its readers
    /// see an error, not a clean end), every stream closes with
    /// [`StateReason::AbortedLocally`](crate::StateReason::AbortedLocally), nothing queued
    /// is sent, and the id is freed. Also ends a graceful close still flushing.
    pub fn abort_session(&mut self, now: Instant, id: SessionId) -> Result<(), Error> {
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        self.ctx.now = self.ctx.now.max(now);
        if let Some(session) = self.slots[i].session.as_mut() {
            session.abort(&mut self.ctx, now);
        }
        self.slots[i].release = true;
        self.reap(i);
        Ok(())
    }

    /// Frees slot `i` if its session was closed by the application and has ended.
    fn reap(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let ended = slot
            .session
            .as_ref()
            .is_some_and(|s| s.phase == crate::session::SessionPhase::Ended);
        if slot.release && ended {
            slot.session = None;
            slot.release = false;
            slot.tag = 0;
            self.free.push(i as u32);
            self.live -= 1;
        }
    }

    /// Routes requests whose bundle starts with `prefix` to a new handler id (the longest
    /// matching prefix wins; requests matching none go to the default handler, `None`).
    pub fn add_request_handler(&mut self, prefix: &str) -> HandlerId {
        let id = HandlerId(self.next_handler);
        self.next_handler += 1;
        self.handlers.push((id, String::from(prefix)));
        id
    }

    /// Removes a handler; its requests go to the next-longest prefix or the default.
    pub fn remove_request_handler(&mut self, id: HandlerId) {
        self.handlers.retain(|(h, _)| *h != id);
    }

    /// The handler a bundle string routes to: longest matching prefix, ties to the earlier
    /// registration; `None` for the default handler.
    pub fn route_bundle(&self, bundle: &str) -> Option<HandlerId> {
        let mut best: Option<(usize, HandlerId)> = None;
        for (id, prefix) in &self.handlers {
            if bundle.starts_with(prefix.as_str()) && best.is_none_or(|(len, _)| prefix.len() > len)
            {
                best = Some((prefix.len(), *id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// An offer arrived from `peer` over signaling: parses it (within the configured limits)
    /// and reports [`Event::SessionRequest`] to the handler its bundle routes to.
    pub fn handle_offer(&mut self, peer: &str, offer_sdp: &str) -> Result<(), Error> {
        if peer.len() > self.ctx.config.max_peer_id_len {
            return Err(Error::Limit {
                what: "peer id length",
                max: self.ctx.config.max_peer_id_len,
            });
        }
        let max = self.ctx.config.max_queued_requests;
        if self.ctx.queued_requests >= max {
            self.ctx.stats.requests_refused += 1;
            return Err(Error::Limit {
                what: "queued session requests",
                max,
            });
        }
        let offer = Offer::parse(offer_sdp, &self.ctx.config.sdp)?;
        let handler = self.route_bundle(offer.bundle().unwrap_or(""));
        self.ctx.queued_requests += 1;
        self.ctx.emit(Event::SessionRequest {
            handler,
            peer: String::from(peer),
            offer,
        });
        Ok(())
    }

    /// An answer arrived over signaling: parses it, finds the session whose offer it
    /// answers, and completes that request with [`Event::RequestComplete`]. Returns the
    /// session; if accepted, call [`SessionMut::start_with`] next.
    pub fn handle_answer(&mut self, answer_sdp: &str) -> Result<SessionId, Error> {
        let answer = Answer::parse(answer_sdp, &self.ctx.config.sdp)?;
        let id = SessionId(answer.reply_to().ok_or(Error::AnswerMismatch)?);
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        let session = self.slots[i]
            .session
            .as_mut()
            .ok_or(Error::UnknownSession)?;
        session.complete_request(&mut self.ctx, &answer)?;
        Ok(id)
    }

    /// Feeds the core a datagram or the passing of time. Never fails: bad datagrams are
    /// counted in [`Endpoint::stats`] and dropped.
    pub fn handle_input(&mut self, input: Input) {
        let now = match &input {
            Input::Receive { now, .. } | Input::Timeout(now) => *now,
        };
        self.ctx.now = self.ctx.now.max(now);
        match input {
            Input::Receive {
                now,
                source,
                destination,
                contents,
            } => self.handle_datagram(now, source, destination, contents),
            Input::Timeout(now) => {
                for i in 0..self.slots.len() {
                    if let Some(s) = self.slots[i].session.as_mut() {
                        if s.next_timeout(&self.ctx) <= now {
                            s.handle_timeout(&mut self.ctx, now);
                            self.reap(i);
                        }
                    }
                }
            }
        }
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        contents: Bytes,
    ) {
        self.ctx.stats.packets_received += 1;
        if !is_carrier_packet(&contents) {
            self.ctx.stats.dropped_not_carrier += 1;
            return;
        }
        let Some(slot) = peek_destination(&contents).and_then(|d| self.slot_of(SessionId(d)))
        else {
            self.ctx.stats.dropped_unknown_session += 1;
            return;
        };
        let Some(session) = self.slots[slot].session.as_mut() else {
            return;
        };
        // A protected session's packets are authenticated and decrypted with its keys; a
        // plain one's are checked against their CRC.
        let header;
        let payload;
        let datagram;
        if let Some(protection) = session.protection.as_deref_mut() {
            header = match Header::parse_protected(&contents, crate::crypto::TAG_LEN) {
                Ok(h) => h,
                Err(_) => {
                    self.ctx.stats.dropped_malformed += 1;
                    return;
                }
            };
            datagram = match self.ctx.open(protection, &header, contents) {
                Ok(plain) => plain,
                Err(e) => {
                    let stats = &mut self.ctx.stats;
                    match e {
                        OpenError::BadTag => stats.dropped_bad_tag += 1,
                        OpenError::Replay => stats.dropped_replay += 1,
                        OpenError::Exhausted => {
                            stats.dropped_bad_tag += 1;
                            session.keys_exhausted(&mut self.ctx);
                        }
                    }
                    return;
                }
            };
            payload = &datagram[..];
        } else {
            let stats = &mut self.ctx.stats;
            (header, payload) = match Header::parse(&contents) {
                Ok(parsed) => parsed,
                Err(PacketError::BadChecksum) => {
                    stats.dropped_bad_checksum += 1;
                    return;
                }
                Err(_) => {
                    stats.dropped_malformed += 1;
                    return;
                }
            };
            datagram = contents.clone();
        }
        let packet = Incoming {
            now,
            local,
            remote: source,
            header: &header,
            payload,
            datagram: &datagram,
        };
        let result = session.handle_packet(&mut self.ctx, packet);
        // Only a packet the session took marks the replay window: a dropped one (a copy
        // raced in from another address, say) must leave its number open for the original.
        if let Some(p) = session.protection.as_deref_mut() {
            match result {
                Ok(()) => p.accept(header.packet_number),
                Err(crate::session::Drop::Ended) => {}
                Err(_) => self.ctx.stats.dropped_authenticated += 1,
            }
        }
        if let Err(drop) = result {
            match drop {
                crate::session::Drop::Malformed => self.ctx.stats.dropped_malformed += 1,
                crate::session::Drop::Unexpected => self.ctx.stats.dropped_unexpected += 1,
                crate::session::Drop::Ended => self.ctx.stats.dropped_after_end += 1,
            }
        }
        self.reap(slot);
    }

    /// The next thing for the driver: a datagram to send, an event, or — when both queues
    /// are empty — the instant of the next timer.
    ///
    /// Packets carrying reliable stream data are built here, one per call, when the
    /// congestion window, the pacer and flow control allow (so nothing queues inside the
    /// core); they carry the time of the latest input or call.
    pub fn poll_output(&mut self) -> Output {
        if let Some(t) = self.ctx.transmits.pop_front() {
            return Output::Transmit(t);
        }
        if let Some(e) = self.ctx.events.pop_front() {
            if let Event::SessionRequest { .. } = e {
                self.ctx.queued_requests -= 1;
            }
            // The application has the bytes now: their credit goes back to the peer (unless
            // the driver returns it itself, as its reader consumes them).
            match &e {
                _ if self.ctx.config.manual_credit => {}
                Event::StreamData {
                    session,
                    stream,
                    data,
                } => {
                    if let Some(s) = self.session_state(*session) {
                        s.on_consumed(*stream, data.len() as u64);
                    }
                }
                Event::ChannelData {
                    session,
                    stream,
                    channel,
                    data,
                } => {
                    if let Some(s) = self.session_state(*session) {
                        s.on_channel_consumed(*stream, *channel, data.len() as u64);
                    }
                }
                _ => {}
            }
            return Output::Event(e);
        }
        let n = self.slots.len();
        let now = self.ctx.now;
        for k in 0..n {
            let i = (self.tx_cursor + k) % n;
            let Some(s) = self.slots[i].session.as_mut() else {
                continue;
            };
            let sent = s.poll_transmit(&mut self.ctx, now);
            self.reap(i);
            if sent {
                self.tx_cursor = (i + 1) % n;
                if let Some(t) = self.ctx.transmits.pop_front() {
                    return Output::Transmit(t);
                }
            }
        }
        Output::Timeout(self.next_timeout())
    }

    /// The earliest timer over all sessions ([`Instant::FAR_FUTURE`] if none).
    pub fn next_timeout(&self) -> Instant {
        self.slots
            .iter()
            .filter_map(|s| s.session.as_ref())
            .map(|s| s.next_timeout(&self.ctx))
            .min()
            .unwrap_or(Instant::FAR_FUTURE)
    }
}
