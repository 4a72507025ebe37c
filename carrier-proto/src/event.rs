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
    /// Data arrived (the original's `onStreamData`): one datagram on an unreliable stream,
    /// or the next in-order bytes of a reliable stream (taking this event out of
    /// `poll_output` is what returns flow-control credit to the peer).
    StreamData {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Bytes,
    },
    /// A reliable stream whose `write` was refused or cut short has room again.
    Writable {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
    },
}
