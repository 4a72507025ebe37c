//! # carrier-proto
//!
//! The sans-IO core of carrier-rs: Carrier's sessions and streams as pure state machines.
//! No sockets, no clock, no threads, no OS randomness: the driver (an adapter crate, a
//! simulator, your own event loop) feeds [`Input`]s with the time, and drains
//! [`Output`]s — datagrams to send, [`Event`]s for the application, and the next timeout.
//!
//! ## The loop
//! ```text
//! endpoint.handle_input(Input::Receive { now, source, destination, contents } | Input::Timeout(now));
//! loop { match endpoint.poll_output() {
//!     Output::Transmit(t) => socket.send_to(&t.contents, t.destination),
//!     Output::Event(e)    => app.on_event(e),
//!     Output::Timeout(at) => { sleep_until(at); break }
//! } }
//! ```
//! Application calls (`new_session`, `session(id)?.write(..)`, …) are mutations too: drain
//! after them.
//!
//! ## The handshake (offer / answer)
//! ```
//! use carrier_proto::*;
//! let now = Instant::ZERO;
//! let mut alice = Endpoint::new(Config::default().with_seed([1; 32]));
//! alice.add_host_candidate("192.0.2.1:7000".parse().unwrap());
//! let mut bob = Endpoint::new(Config::default().with_seed([2; 32]));
//! bob.add_host_candidate("192.0.2.2:7000".parse().unwrap());
//!
//! // Peer 1: new session, add streams, request → an offer to carry to the peer.
//! let s1 = alice.new_session("bob").unwrap();
//! let st = alice.session(s1).unwrap().add_stream(StreamType::Application, StreamOptions::empty()).unwrap();
//! let pending = alice.session(s1).unwrap().request(now, "chat").unwrap();
//! let offer_text = pending.offer().to_sdp_string();
//!
//! // Peer 2: the request arrives; new session, same streams, reply, start.
//! bob.handle_offer("alice", &offer_text).unwrap();
//! let Output::Event(Event::SessionRequest { offer, .. }) = bob.poll_output() else { panic!() };
//! let s2 = bob.new_session("alice").unwrap();
//! bob.session(s2).unwrap().add_stream(StreamType::Application, StreamOptions::empty()).unwrap();
//! let answer = bob.session(s2).unwrap().reply(&offer, Reply::Accept).unwrap();
//! bob.session(s2).unwrap().start(now).unwrap();
//!
//! // Peer 1: the answer arrives; start. Connectivity checks now run over the datagrams
//! // that poll_output hands out (see the `handshake` example for the whole loop).
//! let answer = Answer::parse(&answer.to_sdp_string(), &SdpLimits::default()).unwrap();
//! alice.session(s1).unwrap().start_with(now, pending, answer).unwrap();
//! assert_eq!(alice.session(s1).unwrap().stream_state(st).unwrap(), StreamState::Connecting);
//! ```
//!
//! ## Layout
//! - [`sdp`]: typed session descriptions, strict parser and serializer;
//! - `negotiation`: [`Offer`], [`Answer`], [`PendingOffer`], [`Reply`];
//! - `session`: lifecycle, connectivity checks, timers;
//! - `stream`: the stream state machine;
//! - [`packet`]: the wire format (docs/PROTOCOL.md);
//! - `endpoint`: routing, the output queues, [`SessionMut`].
#![no_std]
#![forbid(unsafe_code)]
// Peer input must never panic the core: no unwrap/expect outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod channel;
mod config;
mod crypto;
mod endpoint;
mod error;
mod event;
mod negotiation;
pub mod packet;
mod rng;
pub mod sdp;
mod session;
pub mod slab;
mod stats;
mod stream;
mod time;
mod trace;
mod transport;
mod types;

pub use channel::{
    ChannelConfig, ChannelError, ChannelId, ChannelState, INITIAL_CHANNEL_CREDIT,
    INITIAL_CONTROL_CREDIT,
};
pub use config::{Config, DatagramPolicy, MAX_UDP_PAYLOAD, SdpLimits};
pub use crypto::{KeySchedule, derive_schedule};
pub use endpoint::{Endpoint, EndpointStats, Input, Output, SessionMut, Transmit};
pub use error::Error;
pub use event::Event;
pub use negotiation::{Answer, Offer, PendingOffer, Reply, RequestOutcome};
pub use sdp::Refusal;
pub use session::SessionPhase;
pub use stream::{StateReason, StreamId, TransitionError};
pub use time::Instant;
pub use transport::TransportConfig;
pub use transport::config::{INITIAL_CONNECTION_CREDIT, INITIAL_STREAM_CREDIT};
pub use transport::congestion::CongestionAlgorithm;
pub use transport::recovery::RecoveryConfig;
pub use types::{
    AddressInfo, Candidate, CandidateType, CloseReason, HandlerId, NetworkTopology, SessionId,
    StreamOptions, StreamState, StreamType, TransportInfo,
};
