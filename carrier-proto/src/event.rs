//! What the core tells the application.

use alloc::string::String;
use bytes::Bytes;

use crate::endpoint::HandlerId;
use crate::negotiation::{Offer, RequestOutcome};
use crate::session::SessionId;
use crate::stream::{StateReason, StreamId};
use crate::types::StreamState;

/// Something happened that the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer asks for a session (the original's `onSessionRequest`). Create a session with
    /// [`Endpoint::new_session`](crate::Endpoint::new_session), add streams and
    /// [`reply`](crate::SessionMut::reply).
    SessionRequest {
        /// The handler whose bundle prefix matched (longest wins); `None` for the default.
        handler: Option<HandlerId>,
        /// Who asks, as the signaling layer named them.
        peer: String,
        /// The offer, with its bundle string.
        offer: Offer,
    },
    /// A request this side made has completed (the original's `onCompletion`).
    RequestComplete {
        /// The requesting session.
        session: SessionId,
        /// Accepted with an answer, refused, or timed out.
        outcome: RequestOutcome,
    },
    /// A stream changed state (the original's `onStateChanged`); one event per transition.
    StateChanged {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The new state.
        state: StreamState,
        /// Why, for Deactivated, Closed and Failed.
        reason: Option<StateReason>,
    },
    /// A datagram arrived on an unreliable stream (the original's `onStreamData`).
    StreamData {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The bytes the peer wrote, as one datagram.
        data: Bytes,
    },
}
