//! The simulator: carrier-proto endpoints talking over a [`Netem`] in virtual time.
//!
//! [`Sim`] owns the network and every peer's [`Endpoint`]. [`Sim::step`] advances virtual
//! time to the next thing that happens (a datagram landing or a peer's timer), feeds it to
//! the core, and drains the core's outputs: transmits go into the network, events into the
//! peer's log. Everything is seeded from one `u64`, so a failing run is reproduced by its
//! seed alone.
//!
//! ```
//! use carrier_tests::sim::Sim;
//! use carrier_proto::{StreamOptions, StreamState, StreamType};
//! let mut sim = Sim::new(1);
//! let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
//! let hs = sim.handshake(a, b, &[(StreamType::Application, StreamOptions::empty())]);
//! assert!(sim.run_until_connected(&hs, 1));
//! assert_eq!(sim.stream_state(b, hs.answerer, 0), StreamState::Connected);
//! ```

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use carrier_proto::{
    Answer, Config, Endpoint, Event, Input, Instant, Offer, Output, Reply, SessionId, SessionMut,
    StreamId, StreamOptions, StreamState, StreamType,
};

use crate::netem::{Datagram, LinkConfig, Netem};

/// A peer's index in the simulation.
pub type PeerIdx = usize;

/// One simulated host: an endpoint on one address, and everything it reported.
#[derive(Debug)]
pub struct Peer {
    /// For messages.
    pub name: String,
    /// Its (virtual) address.
    pub addr: SocketAddr,
    /// The core under test.
    pub endpoint: Endpoint,
    /// Every event, with the time it was reported.
    pub events: Vec<(Instant, Event)>,
    /// The instant the endpoint last asked to be woken at.
    timeout: Instant,
}

/// The two sessions of a completed offer/answer exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The offering peer.
    pub offerer_peer: PeerIdx,
    /// The answering peer.
    pub answerer_peer: PeerIdx,
    /// The offerer's session.
    pub offerer: SessionId,
    /// The answerer's session.
    pub answerer: SessionId,
}

/// Endpoints, a network, and virtual time.
pub struct Sim {
    /// Current virtual time.
    pub now: Instant,
    /// The network between the peers.
    pub net: Netem,
    /// The peers, by [`PeerIdx`].
    pub peers: Vec<Peer>,
    seed: u64,
    /// Steps taken (a bound on it turns a livelock into a test failure, not a hang).
    pub steps: u64,
    /// Scripted loss: called for every datagram a peer sends (with its running index);
    /// returning true drops it before it reaches the network.
    pub drop_filter: Option<DropFilter>,
    /// Datagrams handed to the network so far (the index the filter sees).
    pub sent_count: u64,
}

/// A scripted-loss predicate (see [`Sim::drop_filter`]).
pub type DropFilter = Box<dyn FnMut(u64, &Datagram) -> bool>;

/// A peer's config seed, derived from the simulation seed and its index.
fn peer_seed(seed: u64, idx: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..16].copy_from_slice(&(idx as u64).to_le_bytes());
    out[16..24].copy_from_slice(b"carrier!");
    out
}

impl Sim {
    /// An empty simulation; the network's default link is [`LinkConfig::lan`].
    pub fn new(seed: u64) -> Self {
        let mut net = Netem::new(seed ^ 0x5eed_0f4e_7e00);
        net.set_default_link(LinkConfig::lan());
        Sim {
            now: Instant::ZERO,
            net,
            peers: Vec::new(),
            seed,
            steps: 0,
            drop_filter: None,
            sent_count: 0,
        }
    }

    /// The seed this simulation was made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a peer with the default config at the next free address (192.0.2.x:7000).
    pub fn add_peer(&mut self, name: &str) -> PeerIdx {
        self.add_peer_with(name, Config::default())
    }

    /// Adds a peer with `config` (its seed is replaced by one derived from the sim's).
    pub fn add_peer_with(&mut self, name: &str, config: Config) -> PeerIdx {
        let idx = self.peers.len();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + idx as u8)), 7000);
        let mut endpoint = Endpoint::new(config.with_seed(peer_seed(self.seed, idx)));
        endpoint.add_host_candidate(addr);
        self.peers.push(Peer {
            name: name.to_owned(),
            addr,
            endpoint,
            events: Vec::new(),
            timeout: Instant::FAR_FUTURE,
        });
        idx
    }

    /// Adds a peer on the given addresses (all host candidates, in preference order). The
    /// first address is [`Peer::addr`]; datagrams to any of them reach this peer.
    pub fn add_peer_at(&mut self, name: &str, addrs: &[SocketAddr]) -> PeerIdx {
        self.add_peer_at_with(name, addrs, Config::default())
    }

    /// [`Sim::add_peer_at`] with `config` (its seed is replaced by one derived from the
    /// sim's).
    pub fn add_peer_at_with(
        &mut self,
        name: &str,
        addrs: &[SocketAddr],
        config: Config,
    ) -> PeerIdx {
        let idx = self.peers.len();
        let mut endpoint = Endpoint::new(config.with_seed(peer_seed(self.seed, idx)));
        for &a in addrs {
            endpoint.add_host_candidate(a);
        }
        self.peers.push(Peer {
            name: name.to_owned(),
            addr: addrs[0],
            endpoint,
            events: Vec::new(),
            timeout: Instant::FAR_FUTURE,
        });
        idx
    }

    /// The endpoint of a peer.
    pub fn ep(&mut self, peer: PeerIdx) -> &mut Endpoint {
        &mut self.peers[peer].endpoint
    }

    /// A peer's session (panics if it does not exist: tests use this on sessions they made).
    pub fn session(&mut self, peer: PeerIdx, id: SessionId) -> SessionMut<'_> {
        self.peers[peer]
            .endpoint
            .session(id)
            .expect("the session exists")
    }

    /// Sets the link in both directions between two peers.
    pub fn set_link(&mut self, a: PeerIdx, b: PeerIdx, cfg: LinkConfig) {
        let (aa, ba) = (self.peers[a].addr, self.peers[b].addr);
        self.net.set_link_both(aa, ba, cfg);
    }

    /// Cuts (or restores) the path between two peers.
    pub fn partition(&mut self, a: PeerIdx, b: PeerIdx, on: bool) {
        let (aa, ba) = (self.peers[a].addr, self.peers[b].addr);
        self.net.partition(aa, ba, on);
    }

    /// Drains a peer's outputs: transmits into the network, events into its log. Call after
    /// any application call on the peer's endpoint.
    pub fn drain(&mut self, peer: PeerIdx) {
        let now = self.now;
        let p = &mut self.peers[peer];
        loop {
            match p.endpoint.poll_output() {
                Output::Transmit(t) => {
                    let d = Datagram::new(t.source, t.destination, t.contents);
                    let index = self.sent_count;
                    self.sent_count += 1;
                    if !self.drop_filter.as_mut().is_some_and(|f| f(index, &d)) {
                        self.net.send(now, d);
                    }
                }
                Output::Event(e) => p.events.push((now, e)),
                Output::Timeout(at) => {
                    p.timeout = at;
                    return;
                }
            }
        }
    }

    /// When the next thing happens, if anything is pending.
    pub fn next_event_time(&self) -> Option<Instant> {
        let timer = self
            .peers
            .iter()
            .map(|p| p.timeout)
            .min()
            .unwrap_or(Instant::FAR_FUTURE);
        let next = self.net.next_delivery().map_or(timer, |d| d.min(timer));
        (next != Instant::FAR_FUTURE).then_some(next)
    }

    /// Advances to the next delivery or timer and processes everything due then. Returns
    /// false if nothing is pending (the simulation is quiescent).
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_event_time() else {
            return false;
        };
        self.steps += 1;
        self.now = self.now.max(next);
        let now = self.now;
        while let Some(d) = self.net.pop_due(now) {
            let owner = self.peers.iter().position(|p| {
                p.addr == d.destination
                    || p.endpoint
                        .local_candidates()
                        .iter()
                        .any(|c| c.address == d.destination)
            });
            if let Some(idx) = owner {
                self.peers[idx].endpoint.handle_input(Input::Receive {
                    now,
                    source: d.source,
                    destination: d.destination,
                    contents: d.contents,
                });
                self.drain(idx);
            }
        }
        for idx in 0..self.peers.len() {
            if self.peers[idx].timeout <= now {
                self.peers[idx].endpoint.handle_input(Input::Timeout(now));
                self.drain(idx);
            }
        }
        true
    }

    /// Steps until `done` holds, nothing is pending, or virtual time passes `deadline`.
    /// Returns whether `done` held. At most `max_steps` steps: a livelock fails, not hangs.
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        const MAX_STEPS: u64 = 5_000_000;
        let start = self.steps;
        loop {
            if done(self) {
                return true;
            }
            match self.next_event_time() {
                Some(t) if t <= deadline => {}
                _ => {
                    self.now = self
                        .now
                        .max(deadline.min(self.now + Duration::from_secs(3600)));
                    return done(self);
                }
            }
            assert!(
                self.steps - start < MAX_STEPS,
                "seed {}: no progress after {MAX_STEPS} steps (livelock?)",
                self.seed
            );
            self.step();
        }
    }

    /// Runs for `d` of virtual time, processing everything due in it.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(deadline, |_| false);
    }

    /// Does the seed's offer/answer between `a` (offerer) and `b` (answerer) with the same
    /// streams on both sides, signaling in zero time, and starts both. Panics on any error:
    /// it is the happy path other tests build on.
    pub fn handshake(
        &mut self,
        a: PeerIdx,
        b: PeerIdx,
        streams: &[(StreamType, StreamOptions)],
    ) -> Handshake {
        self.handshake_with(a, b, streams, streams)
    }

    /// [`Sim::handshake`] with different streams on each side.
    pub fn handshake_with(
        &mut self,
        a: PeerIdx,
        b: PeerIdx,
        offered: &[(StreamType, StreamOptions)],
        answered: &[(StreamType, StreamOptions)],
    ) -> Handshake {
        self.handshake_tampered(a, b, offered, answered, |answer| answer.to_string())
    }

    /// [`Sim::handshake_with`] where the signaling path rewrites the answer's text with
    /// `tamper` on its way to the offerer (an attacker on the signaling path).
    pub fn handshake_tampered(
        &mut self,
        a: PeerIdx,
        b: PeerIdx,
        offered: &[(StreamType, StreamOptions)],
        answered: &[(StreamType, StreamOptions)],
        tamper: impl FnOnce(&str) -> String,
    ) -> Handshake {
        let now = self.now;
        let (an, bn) = (self.peers[a].name.clone(), self.peers[b].name.clone());
        let s1 = self.ep(a).new_session(&bn).expect("new_session");
        for &(t, o) in offered {
            self.session(a, s1).add_stream(t, o).expect("add_stream");
        }
        let pending = self.session(a, s1).request(now, "sim").expect("request");
        self.drain(a);
        let offer = self.deliver_offer(b, &an, &pending.offer().to_sdp_string());
        let s2 = self.ep(b).new_session(&an).expect("new_session");
        for &(t, o) in answered {
            self.session(b, s2).add_stream(t, o).expect("add_stream");
        }
        let answer = self
            .session(b, s2)
            .reply(&offer, Reply::Accept)
            .expect("reply");
        self.session(b, s2).start(now).expect("start");
        self.drain(b);
        // Through text and the endpoint, as signaling would carry it.
        let limits = self.peers[a].endpoint.config().sdp.clone();
        let answer =
            Answer::parse(&tamper(&answer.to_sdp_string()), &limits).expect("answer parses");
        self.ep(a)
            .handle_answer(&answer.to_sdp_string())
            .expect("handle_answer");
        self.session(a, s1)
            .start_with(now, pending, answer)
            .expect("start_with");
        self.drain(a);
        Handshake {
            offerer_peer: a,
            answerer_peer: b,
            offerer: s1,
            answerer: s2,
        }
    }

    /// Hands an offer to peer `to` as its signaling would, and returns the offer from the
    /// resulting [`Event::SessionRequest`].
    pub fn deliver_offer(&mut self, to: PeerIdx, from_name: &str, sdp: &str) -> Offer {
        self.ep(to)
            .handle_offer(from_name, sdp)
            .expect("handle_offer");
        self.drain(to);
        self.peers[to]
            .events
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                Event::SessionRequest { offer, .. } => Some(offer.clone()),
                _ => None,
            })
            .expect("a SessionRequest event")
    }

    /// A stream's state; once the session was closed and freed, the last one reported
    /// (panics if there is none).
    pub fn stream_state(
        &mut self,
        peer: PeerIdx,
        session: SessionId,
        stream: usize,
    ) -> StreamState {
        let live = self.ep(peer).session(session).ok().and_then(|s| {
            let id = s.stream_at(stream)?;
            s.stream_state(id).ok()
        });
        // A session the application closed is gone once it ended: its last reported state.
        live.or_else(|| {
            self.state_log(peer, session, stream)
                .last()
                .map(|(s, _)| *s)
        })
        .expect("stream exists")
    }

    /// Whether every stream that is not Deactivated has reached a terminal or Connected
    /// state on both sides.
    pub fn settled(&mut self, hs: &Handshake) -> bool {
        [
            (hs.offerer_peer, hs.offerer),
            (hs.answerer_peer, hs.answerer),
        ]
        .into_iter()
        .all(|(p, s)| {
            let n = self.ep(p).session(s).map(|s| s.stream_count()).unwrap_or(0);
            (0..n).all(|i| {
                let st = self.stream_state(p, s, i);
                st == StreamState::Connected || st.is_terminal()
            })
        })
    }

    /// Runs until stream `stream` is Connected on both sides, or for at most a minute of
    /// virtual time. Returns whether it connected.
    pub fn run_until_connected(&mut self, hs: &Handshake, streams: usize) -> bool {
        let deadline = self.now + Duration::from_secs(60);
        let hs = *hs;
        self.run_until(deadline, |sim| {
            (0..streams).all(|i| {
                sim.stream_state(hs.offerer_peer, hs.offerer, i) == StreamState::Connected
                    && sim.stream_state(hs.answerer_peer, hs.answerer, i) == StreamState::Connected
            })
        })
    }

    /// The data events a peer received on a session's stream, in order.
    pub fn received(&self, peer: PeerIdx, session: SessionId, stream: usize) -> Vec<bytes::Bytes> {
        self.peers[peer]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StreamData {
                    session: s,
                    stream: st,
                    data,
                } if *s == session && st.index() == stream => Some(data.clone()),
                _ => None,
            })
            .collect()
    }

    /// When a peer's stream last entered `state`, if it did.
    pub fn state_time(
        &self,
        peer: PeerIdx,
        session: SessionId,
        stream: usize,
        state: StreamState,
    ) -> Option<Instant> {
        self.peers[peer]
            .events
            .iter()
            .rev()
            .find_map(|(t, e)| match e {
                Event::StateChanged {
                    session: s,
                    stream: st,
                    state: st8,
                    ..
                } if *s == session && st.index() == stream && *st8 == state => Some(*t),
                _ => None,
            })
    }

    /// Every state a peer's stream went through, with the reason, in order.
    pub fn state_log(
        &self,
        peer: PeerIdx,
        session: SessionId,
        stream: usize,
    ) -> Vec<(StreamState, Option<carrier_proto::StateReason>)> {
        self.peers[peer]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StateChanged {
                    session: s,
                    stream: st,
                    state,
                    reason,
                } if *s == session && st.index() == stream => Some((*state, *reason)),
                _ => None,
            })
            .collect()
    }
}

/// The `StreamId` of a stream by index (panics if there is none).
pub fn stream_id(sim: &mut Sim, peer: PeerIdx, session: SessionId, index: usize) -> StreamId {
    sim.ep(peer)
        .session(session)
        .ok()
        .and_then(|s| s.stream_at(index))
        .expect("the stream exists")
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("seed", &self.seed)
            .field("steps", &self.steps)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// How a [`Sim::transfer`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The bytes the receiver got, in order.
    pub received: Vec<u8>,
    /// Virtual time from the first write to the last byte received.
    pub elapsed: Duration,
    /// Whether every byte arrived before the deadline.
    pub complete: bool,
}

impl Sim {
    /// Sends `data` on a reliable stream from one side of `hs` to the other, as an
    /// application would: write what the send buffer takes, run the network, write more
    /// when there is room. `chunk` bounds each write. Stops when the receiver has every byte
    /// or after `limit` of virtual time.
    pub fn transfer(
        &mut self,
        hs: &Handshake,
        from_offerer: bool,
        stream: usize,
        data: &[u8],
        chunk: usize,
        limit: Duration,
    ) -> Transfer {
        let (sp, ss, rp, rs) = if from_offerer {
            (hs.offerer_peer, hs.offerer, hs.answerer_peer, hs.answerer)
        } else {
            (hs.answerer_peer, hs.answerer, hs.offerer_peer, hs.offerer)
        };
        let id = stream_id(self, sp, ss, stream);
        let start = self.now;
        let deadline = start + limit;
        let first_event = self.peers[rp].events.len();
        let mut written = 0;
        let mut received = 0;
        let mut scanned = first_event;
        let mut last_rx = start;
        loop {
            while written < data.len() {
                let now = self.now;
                let end = (written + chunk).min(data.len());
                match self.session(sp, ss).write(now, id, &data[written..end]) {
                    Ok(n) => written += n,
                    Err(carrier_proto::Error::WouldBlock) => break,
                    Err(e) => panic!("write failed: {e}"),
                }
            }
            self.drain(sp);
            let events = &self.peers[rp].events;
            for (_, e) in &events[scanned..] {
                if let Event::StreamData {
                    session,
                    stream: st,
                    data,
                } = e
                {
                    if *session == rs && st.index() == stream {
                        received += data.len();
                        last_rx = self.now;
                    }
                }
            }
            scanned = events.len();
            if received >= data.len() || self.now >= deadline {
                break;
            }
            if !self.step() {
                break;
            }
        }
        let mut out = Vec::with_capacity(received);
        for (_, e) in &self.peers[rp].events[first_event..] {
            if let Event::StreamData {
                session,
                stream: st,
                data,
            } = e
            {
                if *session == rs && st.index() == stream {
                    out.extend_from_slice(data);
                }
            }
        }
        Transfer {
            complete: out.len() == data.len(),
            received: out,
            elapsed: last_rx - start,
        }
    }
}
