//! What the mio tests and the goodput example share: a seeded config, and a peer that
//! answers requests with one reliable stream (or keeps them for the test), starts its
//! accepted request, and collects what arrives.

#![allow(dead_code)] // each test uses a part

use carrier_mio::{Driver, EventSink};
use carrier_proto::{
    Config, Endpoint, Event, Instant, Offer, PendingOffer, Reply, RequestOutcome, SessionId,
    StreamId, StreamOptions, StreamState, StreamType,
};

/// A config with a fresh random seed.
pub fn config() -> Config {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("entropy");
    Config::default().with_seed(seed)
}

/// On `driver`: a session with `peer` and one reliable stream, and its request for
/// `bundle` (the offer inside the returned `PendingOffer`).
pub fn request_one_stream(
    driver: &mut Driver,
    peer: &str,
    bundle: &str,
) -> (SessionId, StreamId, PendingOffer) {
    request_stream(driver, peer, bundle, StreamOptions::RELIABLE)
}

/// As [`request_one_stream`], with a stream of `options` (the answering [`Peer`] must
/// have the same in [`Peer::options`]).
pub fn request_stream(
    driver: &mut Driver,
    peer: &str,
    bundle: &str,
    options: StreamOptions,
) -> (SessionId, StreamId, PendingOffer) {
    let now = driver.now();
    let ep = driver.endpoint();
    let s = ep.new_session(peer).expect("session");
    let mut session = ep.session(s).expect("session");
    let stream = session
        .add_stream(StreamType::Application, options)
        .expect("stream");
    let pending = session.request(now, bundle).expect("request");
    (s, stream, pending)
}

/// One side of a one-stream session.
#[derive(Default)]
pub struct Peer {
    /// The request in flight (set by the test): started when accepted.
    pub pending: Option<PendingOffer>,
    /// Keep requests in `offers` for the test instead of answering them.
    pub defer_requests: bool,
    /// Requests seen, and (when deferred) the offers with their peers.
    pub requests: usize,
    pub offers: Vec<(String, Offer)>,
    /// The answer to the last request answered here (to carry back by hand).
    pub answer: Option<String>,
    pub connected: bool,
    /// Keep the bytes that arrive (else only count them).
    pub keep: bool,
    pub received: Vec<u8>,
    pub received_len: u64,
    /// The peer finished writing (StreamFinished): the data is complete.
    pub finished: bool,
    /// Writable events seen.
    pub writable: usize,
    /// The stream's terminal state and reason, once it ended.
    pub ended: Option<(StreamState, Option<carrier_proto::StateReason>)>,
    /// The options of the stream an answered request gets (default RELIABLE).
    pub options: Option<StreamOptions>,
    /// Data events (datagrams, on an unreliable stream).
    pub data_events: usize,
}

impl Peer {
    /// A peer that keeps the bytes it receives.
    pub fn keeping() -> Peer {
        Peer {
            keep: true,
            ..Peer::default()
        }
    }
}

impl EventSink for Peer {
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event) {
        let now = Instant::ZERO;
        match event {
            Event::SessionRequest { peer, offer, .. } => {
                self.requests += 1;
                if self.defer_requests {
                    self.offers.push((peer, offer));
                    return;
                }
                let s = endpoint.new_session(&peer).expect("session");
                let mut session = endpoint.session(s).expect("session");
                let options = self.options.unwrap_or(StreamOptions::RELIABLE);
                session
                    .add_stream(StreamType::Application, options)
                    .expect("stream");
                let answer = session.reply(&offer, Reply::Accept).expect("reply");
                session.start(now).expect("start");
                self.answer = Some(answer.to_sdp_string());
            }
            Event::RequestComplete {
                session,
                outcome: RequestOutcome::Accepted(answer),
            } => {
                let pending = self.pending.take().expect("a request in flight");
                endpoint
                    .session(session)
                    .expect("session")
                    .start_with(now, pending, answer)
                    .expect("start");
            }
            Event::StateChanged {
                state: StreamState::Connected,
                ..
            } => self.connected = true,
            Event::StateChanged { state, reason, .. } if state.is_terminal() => {
                self.ended = Some((state, reason));
            }
            Event::StreamFinished { .. } => self.finished = true,
            Event::Writable { .. } => self.writable += 1,
            Event::StreamData { data, .. } => {
                self.data_events += 1;
                self.received_len += data.len() as u64;
                if self.keep {
                    self.received.extend_from_slice(&data);
                }
            }
            _ => {}
        }
    }
}
