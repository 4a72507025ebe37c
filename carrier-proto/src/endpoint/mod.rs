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
//! whose high 32 bits must match the slot's random tag. The session opens the packet with
//! its own keys; the endpoint only routes.
//!
//! Each session queues its own events and packets; `poll_output` visits only the sessions
//! in the ready queue (touched since they last had nothing to hand out) and `handle_input`
//! with a timeout only the sessions whose deadline in the timer heap has come (see
//! `schedule.rs`), so idle sessions cost nothing per event.

mod handle;
mod schedule;

pub use handle::SessionMut;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::SocketAddr;

use schedule::{Place, Schedule};

use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::negotiation::{Answer, Offer};
use crate::packet::{is_carrier_packet, peek_destination};
use crate::rng::Rng;
use crate::session::{Buffers, Conn, Session, SessionPhase};
use crate::time::Instant;
use crate::types::{Candidate, HandlerId, SessionId};

pub use crate::stats::EndpointStats;
pub use crate::types::Transmit;

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

/// A session table slot: a random tag (the id's high half) and maybe a session.
#[derive(Debug)]
struct Slot {
    tag: u32,
    live: Option<Live>,
    /// The application closed the session: the slot is freed as soon as it has ended (a
    /// graceful close keeps it while it flushes).
    release: bool,
}

/// A session and its connection state (kept apart so both can be borrowed at once).
#[derive(Debug)]
struct Live {
    session: Session,
    conn: Conn,
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
    config: Arc<Config>,
    /// Draws slot tags and seeds each session's own generator.
    rng: Rng,
    hosts: Vec<Candidate>,
    /// The endpoint's own events (session requests), and those a session left behind
    /// when it was freed.
    events: VecDeque<Event>,
    /// Packets a session left behind when it was freed (the copies of its CLOSE).
    transmits: VecDeque<Transmit>,
    /// What happened before a packet reached a session, and the counts of freed sessions.
    stats: EndpointStats,
    /// The latest time the driver told us (inputs and application calls), for the packets
    /// `poll_output` builds on demand.
    now: Instant,
    /// `SessionRequest` events in `events` (bounded by `Config::max_queued_requests`).
    queued_requests: usize,
    /// The packet buffers, lent to the session at work.
    buffers: Buffers,
    schedule: Schedule,
    /// Scratch list of the sessions whose timers are due (kept to reuse its memory).
    due: Vec<Place>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    handlers: Vec<(HandlerId, String)>,
    next_handler: u32,
}

impl Endpoint {
    /// An endpoint with no sessions.
    pub fn new(config: Config) -> Self {
        Endpoint {
            rng: Rng::from_seed(config.seed),
            config: Arc::new(config),
            hosts: Vec::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: EndpointStats::default(),
            now: Instant::ZERO,
            queued_requests: 0,
            buffers: Buffers::new(),
            schedule: Schedule::default(),
            due: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            handlers: Vec::new(),
            next_handler: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This peer's public identity (the Ed25519 public key of
    /// [`Config::identity`](crate::Config::identity)), to give to peers.
    pub fn identity(&self) -> Option<[u8; 32]> {
        self.config
            .identity
            .as_ref()
            .map(crate::crypto::identity::public_of)
    }

    /// Counters: the endpoint's own and every session's, ended ones included. (Sums over
    /// the live sessions: O(n), meant for reports, not for every packet.)
    pub fn stats(&self) -> EndpointStats {
        let mut total = self.stats;
        for live in self.slots.iter().filter_map(|s| s.live.as_ref()) {
            total.add(&live.conn.stats);
        }
        total
    }

    /// Adds a local host address; descriptions made after this list it as a candidate.
    /// Earlier-added addresses are preferred. Adding the same address twice does nothing.
    pub fn add_host_candidate(&mut self, address: SocketAddr) {
        if self.hosts.iter().any(|c| c.address == address) {
            return;
        }
        let preference = u16::MAX.saturating_sub(self.hosts.len() as u16);
        self.hosts.push(Candidate::host(address, preference));
    }

    /// The local candidates.
    pub fn local_candidates(&self) -> &[Candidate] {
        &self.hosts
    }

    /// Creates a session with `peer` (the seed's `newSession`).
    pub fn new_session(&mut self, peer: &str) -> Result<SessionId, Error> {
        if peer.len() > self.config.max_peer_id_len {
            return Err(Error::Limit {
                what: "peer id length",
                max: self.config.max_peer_id_len,
            });
        }
        if self.live >= self.config.max_sessions {
            return Err(Error::Limit {
                what: "sessions",
                max: self.config.max_sessions,
            });
        }
        let tag = loop {
            let t = self.rng.u32();
            if t != 0 {
                break t;
            }
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    tag: 0,
                    live: None,
                    release: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let id = SessionId((u64::from(tag) << 32) | u64::from(index));
        let mut seed = [0; 32];
        self.rng.fill(&mut seed);
        let mut conn = Conn::new(self.config.clone(), Rng::from_seed(seed));
        let session = Session::new(id, String::from(peer), &mut conn);
        self.slots[index as usize] = Slot {
            tag,
            live: Some(Live { session, conn }),
            release: false,
        };
        self.live += 1;
        Ok(id)
    }

    fn slot_of(&self, id: SessionId) -> Option<usize> {
        let i = id.slot();
        let slot = self.slots.get(i)?;
        (u64::from(slot.tag) == id.0 >> 32 && slot.live.is_some()).then_some(i)
    }

    fn place(&self, i: usize) -> Place {
        Place {
            index: i as u32,
            tag: self.slots[i].tag,
        }
    }

    /// Runs `f` on the session in slot `i` with the buffers lent to it, then puts the
    /// session in the ready queue and its next deadline in the timer heap, and frees the
    /// slot if the session ended after a close. `None`: no session there.
    fn with_session<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Session, &mut Conn, &[Candidate]) -> R,
    ) -> Option<R> {
        let place = self.place(i);
        let Live { session, conn } = self.slots.get_mut(i)?.live.as_mut()?;
        conn.lend(&mut self.buffers);
        let hosts = &self.hosts;
        let span = crate::trace::active(&session.span);
        let r = crate::trace::within(span, || f(session, conn, hosts));
        conn.give_back(&mut self.buffers);
        self.schedule.touch(place, conn);
        self.reap(i);
        Some(r)
    }

    /// A handle on a session, for the calls the application makes on it.
    pub fn session(&mut self, id: SessionId) -> Result<SessionMut<'_>, Error> {
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        let place = self.place(i);
        let Live { session, conn } = self.slots[i].live.as_mut().ok_or(Error::UnknownSession)?;
        Ok(SessionMut::new(
            session,
            conn,
            &self.hosts,
            &mut self.buffers,
            &mut self.schedule,
            place,
            &mut self.now,
        ))
    }

    /// Ids of all sessions, in table order.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.live.as_ref().map(|l| l.session.id))
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
        self.now = self.now.max(now);
        self.slots[i].release = true;
        self.with_session(i, |session, conn, _| session.close(conn, now));
        Ok(())
    }

    /// Aborts a session: the peer is told at once (CLOSE with reason Error, so its readers
    /// see an error, not a clean end), every stream closes with
    /// [`StateReason::AbortedLocally`](crate::StateReason::AbortedLocally), nothing queued
    /// is sent, and the id is freed. Also ends a graceful close still flushing.
    pub fn abort_session(&mut self, now: Instant, id: SessionId) -> Result<(), Error> {
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        self.now = self.now.max(now);
        self.slots[i].release = true;
        self.with_session(i, |session, conn, _| session.abort(conn, now));
        Ok(())
    }

    /// Frees slot `i` if its session was closed by the application and has ended. What
    /// the session still had queued (its last events, the copies of its CLOSE) moves to
    /// the endpoint's queues, and its counts to the endpoint's.
    fn reap(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let ended = slot
            .live
            .as_ref()
            .is_some_and(|l| l.session.phase == SessionPhase::Ended);
        if !(slot.release && ended) {
            return;
        }
        if let Some(Live { mut conn, .. }) = slot.live.take() {
            self.stats.add(&conn.stats);
            self.events.append(&mut conn.events);
            self.transmits.append(&mut conn.transmits);
        }
        slot.release = false;
        slot.tag = 0;
        self.free.push(i as u32);
        self.live -= 1;
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
        if peer.len() > self.config.max_peer_id_len {
            return Err(Error::Limit {
                what: "peer id length",
                max: self.config.max_peer_id_len,
            });
        }
        let max = self.config.max_queued_requests;
        if self.queued_requests >= max {
            self.stats.requests_refused += 1;
            crate::trace::log_warn!(peer, max, "session request refused: too many queued");
            return Err(Error::Limit {
                what: "queued session requests",
                max,
            });
        }
        let offer = Offer::parse(offer_sdp, &self.config.sdp)?;
        let handler = self.route_bundle(offer.bundle().unwrap_or(""));
        self.queued_requests += 1;
        self.events.push_back(Event::SessionRequest {
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
        let answer = Answer::parse(answer_sdp, &self.config.sdp)?;
        let id = SessionId(answer.reply_to().ok_or(Error::AnswerMismatch)?);
        let i = self.slot_of(id).ok_or(Error::UnknownSession)?;
        self.with_session(i, |session, conn, _| {
            session.complete_request(conn, &answer)
        })
        .ok_or(Error::UnknownSession)??;
        Ok(id)
    }

    /// Feeds the core a datagram or the passing of time. Never fails: bad datagrams are
    /// counted in [`Endpoint::stats`] and dropped.
    pub fn handle_input(&mut self, input: Input) {
        let now = match &input {
            Input::Receive { now, .. } | Input::Timeout(now) => *now,
        };
        self.now = self.now.max(now);
        match input {
            Input::Receive {
                now,
                source,
                destination,
                contents,
            } => self.handle_datagram(now, source, destination, contents),
            Input::Timeout(now) => self.handle_timeouts(now),
        }
        self.drop_stale_timers();
    }

    /// Runs the timers of every session whose deadline has come (and only those), each
    /// once: a session whose timer work leaves a deadline that is still due runs again at
    /// the next timeout, not in a loop here.
    fn handle_timeouts(&mut self, now: Instant) {
        self.arm_ready();
        let mut due = core::mem::take(&mut self.due);
        while let Some((at, place)) = self.schedule.peek_timer() {
            if at > now {
                break;
            }
            self.schedule.pop_timer();
            if self.is_current(at, place) {
                due.push(place);
            }
        }
        for place in due.drain(..) {
            self.with_session(place.index as usize, |session, conn, _| {
                // The heap's entry was consumed: whatever deadline comes next is armed anew.
                conn.deadline = Instant::FAR_FUTURE;
                if session.next_timeout(conn) <= now {
                    session.handle_timeout(conn, now);
                }
            });
        }
        self.due = due;
    }

    /// Arms the deadlines of the sessions waiting in the ready queue (touched since
    /// `poll_output` last settled them), so that a timeout fed before the queue is drained
    /// still finds them.
    fn arm_ready(&mut self) {
        for k in 0..self.schedule.ready_len() {
            let place = self.schedule.ready_at(k);
            let slot = &mut self.slots[place.index as usize];
            if slot.tag != place.tag {
                continue;
            }
            if let Some(Live { session, conn }) = slot.live.as_mut().filter(|l| l.conn.ready) {
                let at = session.next_timeout(conn);
                self.schedule.arm(place, conn, at);
            }
        }
    }

    /// Whether a timer heap entry is the current deadline of a live session.
    fn is_current(&self, at: Instant, place: Place) -> bool {
        is_current(&self.slots, at, place)
    }

    /// Drops stale entries from the top of the timer heap (so [`Endpoint::next_timeout`]
    /// is exact), and compacts the heap when stale entries outnumber live sessions.
    fn drop_stale_timers(&mut self) {
        while let Some((at, place)) = self.schedule.peek_timer() {
            if self.is_current(at, place) {
                break;
            }
            self.schedule.pop_timer();
        }
        if self.schedule.timer_entries() > 2 * self.live + 64 {
            let slots = &self.slots;
            self.schedule
                .compact(|at, place| is_current(slots, at, place));
        }
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        contents: Bytes,
    ) {
        self.stats.packets_received += 1;
        if !is_carrier_packet(&contents) {
            self.stats.dropped_not_carrier += 1;
            crate::trace::log_debug!(%source, len = contents.len(), reason = "not a carrier packet", "packet dropped");
            return;
        }
        let Some(slot) = peek_destination(&contents).and_then(|d| self.slot_of(SessionId(d)))
        else {
            self.stats.dropped_unknown_session += 1;
            crate::trace::log_debug!(%source, len = contents.len(), reason = "unknown session", "packet dropped");
            return;
        };
        self.with_session(slot, |session, conn, _| {
            session.handle_datagram(conn, now, source, local, contents)
        });
    }

    /// The next thing for the driver: a datagram to send, an event, or — when both queues
    /// are empty — the instant of the next timer.
    ///
    /// Packets carrying reliable stream data are built here, one per call, when the
    /// congestion window, the pacer and flow control allow (so nothing queues inside the
    /// core); they carry the time of the latest input or call. Sessions take turns, so one
    /// busy session cannot starve the others.
    pub fn poll_output(&mut self) -> Output {
        if let Some(t) = self.transmits.pop_front() {
            return Output::Transmit(t);
        }
        if let Some(e) = self.events.pop_front() {
            if let Event::SessionRequest { .. } = e {
                self.queued_requests -= 1;
            }
            return Output::Event(e);
        }
        while let Some(place) = self.schedule.front() {
            let i = place.index as usize;
            let manual_credit = self.config.manual_credit;
            let slot = &mut self.slots[i];
            let live = match slot.live.as_mut() {
                Some(live) if slot.tag == place.tag && live.conn.ready => live,
                _ => {
                    self.schedule.pop_front();
                    continue;
                }
            };
            let Live { session, conn } = live;
            if let Some(t) = conn.transmits.pop_front() {
                return Output::Transmit(t);
            }
            if let Some(e) = conn.events.pop_front() {
                // The application has the bytes now: their credit goes back to the peer
                // (unless the driver returns it itself, as its reader consumes them).
                if !manual_credit && give_credit(session, &e) {
                    conn.needs_poll = true;
                }
                return Output::Event(e);
            }
            if conn.needs_poll {
                conn.needs_poll = false;
                conn.lend(&mut self.buffers);
                let now = self.now;
                let span = crate::trace::active(&session.span);
                let sent = crate::trace::within(span, || session.poll_transmit(conn, now));
                conn.give_back(&mut self.buffers);
                if sent {
                    // Its turn is over: the others go next, then it is asked again.
                    conn.needs_poll = true;
                    self.schedule.rotate();
                }
                self.reap(i);
                continue;
            }
            // Nothing more from this session until something touches it: its deadline
            // goes into the timer heap now (once per stay in the queue, not per call).
            conn.ready = false;
            let at = session.next_timeout(conn);
            self.schedule.arm(place, conn, at);
            self.schedule.pop_front();
            self.reap(i);
        }
        if let Some(t) = self.transmits.pop_front() {
            return Output::Transmit(t);
        }
        if let Some(e) = self.events.pop_front() {
            return Output::Event(e);
        }
        self.drop_stale_timers();
        Output::Timeout(self.next_timeout())
    }

    /// The earliest timer over all sessions ([`Instant::FAR_FUTURE`] if none): the top of
    /// the timer heap, and the deadlines of sessions still waiting in the ready queue (none
    /// once [`Endpoint::poll_output`] has been drained, so then this is O(1)).
    pub fn next_timeout(&self) -> Instant {
        let mut at = self
            .schedule
            .peek_timer()
            .map_or(Instant::FAR_FUTURE, |(at, _)| at);
        for place in self.schedule.ready() {
            let slot = &self.slots[place.index as usize];
            if let Some(live) = slot.live.as_ref().filter(|_| slot.tag == place.tag) {
                at = at.min(live.session.next_timeout(&live.conn));
            }
        }
        at
    }
}

/// Whether a timer heap entry (`at` for the session at `place`) is that live session's
/// current deadline.
fn is_current(slots: &[Slot], at: Instant, place: Place) -> bool {
    slots.get(place.index as usize).is_some_and(|slot| {
        slot.tag == place.tag && slot.live.as_ref().is_some_and(|l| l.conn.deadline == at)
    })
}

/// Returns the credit of a data event the application has been handed; true when that
/// made a credit update due (something to send).
fn give_credit(session: &mut Session, event: &Event) -> bool {
    match event {
        Event::StreamData { stream, data, .. } => session.on_consumed(*stream, data.len() as u64),
        Event::ChannelData {
            stream,
            channel,
            data,
            ..
        } => session.on_channel_consumed(*stream, *channel, data.len() as u64),
        _ => false,
    }
}
