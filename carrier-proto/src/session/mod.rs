//! Sessions: the request / reply / start lifecycle and everything one peer-to-peer session
//! owns (its streams, the remote description, the connectivity path).
//!
//! A session is driven by the [`Endpoint`](crate::Endpoint) that holds it; applications
//! reach it through [`SessionMut`](crate::SessionMut). The concerns are split by file:
//! `lifecycle.rs` (offer/answer and starting), `path.rs` (connectivity checks over candidate
//! pairs), `io.rs` (packets in and out, timers, datagrams).

mod channels;
mod close;
mod conn;
mod datagrams;
mod io;
mod lifecycle;
mod mtu;
mod path;
mod receive;
mod reliable;

pub(crate) use conn::{Buffers, Conn};
pub(crate) use io::{Drop, Received};
pub(crate) use path::Path;

use alloc::string::String;
use alloc::vec::Vec;

use crate::event::Event;
use crate::stream::{StateReason, Stream, StreamId, transition_allowed};
use crate::time::Instant;
use crate::transport::state::Transport;
use crate::types::{Candidate, SessionId, StreamState};

/// The reason channels are closed with when their stream ends for `reason`.
fn channel_reason(reason: Option<StateReason>) -> crate::types::CloseReason {
    use crate::types::CloseReason;
    match reason {
        Some(StateReason::ClosedLocally) => CloseReason::Normal,
        Some(StateReason::ClosedByPeer(r)) => r,
        Some(
            StateReason::IdleTimeout | StateReason::ConnectTimeout | StateReason::CloseTimeout,
        ) => CloseReason::Timeout,
        _ => CloseReason::Error,
    }
}

/// Where a session is in the request / reply / start lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionPhase {
    /// Created; streams can be added.
    New,
    /// Offerer: request sent, waiting for the reply until `deadline`.
    Requested {
        /// When the request times out.
        deadline: Instant,
    },
    /// Offerer: the peer accepted; `start_with` is next.
    Accepted,
    /// Answerer: replied with Accept; `start` is next.
    Replied,
    /// Started: connectivity checks, then data.
    Started,
    /// Refused, timed out, or closed: nothing more happens.
    Ended,
}

impl SessionPhase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SessionPhase::New => "new",
            SessionPhase::Requested { .. } => "requested",
            SessionPhase::Accepted => "accepted",
            SessionPhase::Replied => "replied",
            SessionPhase::Started => "started",
            SessionPhase::Ended => "ended",
        }
    }
}

/// What the peer's description told us.
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    /// The peer's connection id: the destination of every packet we send it.
    pub(crate) id: u64,
    /// The peer's ICE ufrag: our checks carry it.
    pub(crate) ufrag: String,
    /// The peer's candidates, deduplicated across its media sections.
    pub(crate) candidates: Vec<Candidate>,
}

/// One session's state.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) peer: String,
    pub(crate) phase: SessionPhase,
    pub(crate) local_ufrag: String,
    pub(crate) local_pwd: String,
    pub(crate) streams: Vec<Stream>,
    pub(crate) remote: Option<Remote>,
    pub(crate) path: Path,
    pub(crate) transport: Transport,
    /// Path MTU discovery: the payload size of data packets.
    pub(crate) mtu: mtu::MtuDiscovery,
    next_packet_number: u64,
    /// The largest packet number taken from the peer: truncated packet numbers are
    /// restored against it.
    pub(crate) largest_rx: Option<u64>,
    pub(crate) last_rx: Instant,
    pub(crate) last_tx: Instant,
    /// Set while a packet's frames are processed if one had to be refused for lack of
    /// room: the packet is then not acknowledged, so the peer sends it again.
    pub(crate) refused_rx: bool,
    /// Our ephemeral key, from `request` or `reply` until the keys are derived.
    pub(crate) ephemeral: Option<crate::crypto::Ephemeral>,
    /// The packet keys of a protected session (every packet sealed), once derived.
    pub(crate) protection: Option<alloc::boxed::Box<crate::crypto::Protection>>,
    /// A graceful close is flushing until this deadline (`Config::close_linger`).
    pub(crate) closing: Option<Instant>,
    /// Datagrams waiting for the congestion window.
    pub(crate) datagrams: datagrams::DatagramQueue,
    /// The `session` span: every call into the session runs inside it.
    pub(crate) span: crate::trace::Span,
}

impl Session {
    pub(crate) fn new(id: SessionId, peer: String, conn: &mut Conn) -> Self {
        Session {
            span: crate::trace::session_span(id, &peer),
            id,
            peer,
            phase: SessionPhase::New,
            local_ufrag: conn.rng.ice_string(8),
            local_pwd: conn.rng.ice_string(24),
            streams: Vec::new(),
            remote: None,
            path: Path::default(),
            mtu: mtu::MtuDiscovery::new(
                conn.config.max_udp_payload,
                conn.config.mtu_ceiling.min(crate::config::MAX_UDP_PAYLOAD),
            ),
            transport: Transport::new(
                &conn.config.transport,
                conn.config
                    .max_udp_payload
                    .saturating_sub(crate::packet::OVERHEAD),
            ),
            next_packet_number: 0,
            largest_rx: None,
            last_rx: Instant::ZERO,
            last_tx: Instant::ZERO,
            refused_rx: false,
            ephemeral: None,
            protection: None,
            closing: None,
            datagrams: datagrams::DatagramQueue::default(),
        }
    }

    /// Bytes a packet adds around its frames: the header, and the tag of a protected
    /// session or the CRC trailer of a plain one.
    pub(crate) fn overhead(&self) -> usize {
        // The longest header (4-byte packet number): sizes hold whatever length is sent.
        if self.protection.is_some() {
            crate::packet::HEADER_LEN + crate::crypto::TAG_LEN
        } else {
            crate::packet::OVERHEAD
        }
    }

    /// What a packet with a `pn_len`-byte packet number adds around its frames.
    pub(crate) fn overhead_with(&self, pn_len: usize) -> usize {
        crate::packet::Header::len(pn_len)
            + if self.protection.is_some() {
                crate::crypto::TAG_LEN
            } else {
                crate::packet::TRAILER_LEN
            }
    }

    /// Whether the session must be protected: one of its live streams is not PLAIN.
    pub(crate) fn needs_protection(&self) -> bool {
        self.streams.iter().any(|s| {
            !s.options.contains(crate::types::StreamOptions::PLAIN)
                && !matches!(s.state, StreamState::Deactivated | StreamState::Raw)
        })
    }

    pub(crate) fn take_packet_number(&mut self) -> u64 {
        let pn = self.next_packet_number;
        self.next_packet_number += 1;
        pn
    }

    /// How many bytes of packet number `pn` to send: against the largest the peer has
    /// acknowledged (RFC 9000 §17.1).
    pub(crate) fn packet_number_len(&self, pn: u64) -> usize {
        crate::packet::packet_number_len(pn, self.transport.recovery.largest_acked())
    }

    pub(crate) fn stream(&self, id: StreamId) -> Option<&Stream> {
        self.streams.get(id.index())
    }

    /// Moves a stream to `to` and reports it. Edges the state machine lacks are skipped
    /// (debug builds assert), so a logic slip can never produce an impossible event.
    pub(crate) fn set_state(
        &mut self,
        conn: &mut Conn,
        index: usize,
        to: StreamState,
        reason: Option<StateReason>,
    ) {
        let Some(stream) = self.streams.get_mut(index) else {
            return;
        };
        let from = stream.state;
        if !transition_allowed(from, to) {
            debug_assert!(from.is_terminal(), "no transition {from:?} → {to:?}");
            return;
        }
        stream.state = to;
        crate::trace::log_debug!(parent: &stream.span, ?from, ?to, ?reason, "stream state");
        conn.emit(Event::StateChanged {
            session: self.id,
            stream: stream.id,
            state: to,
            reason,
        });
        if to.is_terminal() {
            self.datagrams.discard_stream(stream.id.0);
            // The stream's channels end with it, each with one ChannelClosed.
            if let Some(mut mux) = stream.mux.take() {
                mux.close_all(conn, self.id, channel_reason(reason));
            }
        }
    }

    /// Moves every stream in state `from` to `to`.
    pub(crate) fn set_states_from(
        &mut self,
        conn: &mut Conn,
        from: StreamState,
        to: StreamState,
        reason: Option<StateReason>,
    ) {
        for i in 0..self.streams.len() {
            if self.streams[i].state == from {
                self.set_state(conn, i, to, reason);
            }
        }
    }

    /// Ends every live stream with `state` and `reason`, and the session with them.
    pub(crate) fn end(&mut self, conn: &mut Conn, state: StreamState, reason: StateReason) {
        crate::trace::log_info!(?state, ?reason, "session ended");
        for i in 0..self.streams.len() {
            if !self.streams[i].state.is_terminal() {
                self.set_state(conn, i, state, Some(reason));
            }
        }
        self.phase = SessionPhase::Ended;
        self.closing = None;
        self.path.stop();
    }

    /// The keys are used up: stop, never reuse a nonce.
    pub(crate) fn keys_exhausted(&mut self, conn: &mut Conn) {
        if self.phase == SessionPhase::Ended {
            return;
        }
        conn.stats.keys_exhausted += 1;
        self.end(conn, StreamState::Failed, StateReason::KeysExhausted);
    }

    /// The earliest instant at which [`Session::handle_timeout`] has work to do.
    pub(crate) fn next_timeout(&self, conn: &Conn) -> Instant {
        match self.phase {
            SessionPhase::Requested { deadline } => deadline,
            SessionPhase::Started => {
                let mut at = self.path.next_timeout();
                if self.path.selected().is_some() {
                    at = at.min(self.transport_timeout());
                }
                if self.path.selected().is_some() && self.any_connected() {
                    at = at
                        .min(if self.transport.recovery.has_ack_eliciting_in_flight() {
                            Instant::FAR_FUTURE
                        } else {
                            self.last_tx + conn.config.keepalive_interval
                        })
                        .min(self.last_rx + conn.config.idle_timeout)
                        .min(self.channel_timeout());
                }
                if let Some(deadline) = self.closing {
                    at = at.min(deadline);
                }
                at
            }
            _ => Instant::FAR_FUTURE,
        }
    }

    pub(crate) fn any_connected(&self) -> bool {
        self.streams
            .iter()
            .any(|s| s.state == StreamState::Connected)
    }
}
