//! What the core tells the application.

use alloc::string::String;
use bytes::Bytes;

use crate::channel::ChannelId;
use crate::negotiation::{Offer, RequestOutcome};
use crate::stream::{StateReason, StreamId};
use crate::types::HandlerId;
use crate::types::SessionId;
use crate::types::{CloseReason, StreamState};

/// Something happened that the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer asks for a session (the Carrier SDK's `onSessionRequest`). Create a session with
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
    /// A request this side made has completed (the Carrier SDK's `onCompletion`).
    RequestComplete {
        /// The requesting session.
        session: SessionId,
        /// Accepted with an answer, refused, or timed out.
        outcome: RequestOutcome,
    },
    /// A stream changed state (the Carrier SDK's `onStateChanged`); one event per transition.
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
    /// Data arrived (the Carrier SDK's `onStreamData`): one datagram on an unreliable stream,
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
    /// The peer finished its side of a reliable stream (its FIN arrived): every byte it
    /// wrote was delivered, in the `StreamData` events before this one. Reading is over;
    /// writing goes on until this side finishes too (half-close) — or closes. A stream
    /// that ends without this event (Closed or Failed) was cut short: its reader must not
    /// take the end for a complete transfer.
    StreamFinished {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
    },
    /// Everything this side wrote on a reliable stream, and its FIN, was acknowledged by
    /// the peer (after [`finish_stream`](crate::SessionMut::finish_stream) or
    /// [`close_stream`](crate::SessionMut::close_stream)).
    StreamAcknowledged {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
    },
    /// Under [`DatagramPolicy::DropOldest`](crate::DatagramPolicy::DropOldest), the
    /// session's datagram send queue was full and queued datagrams were dropped to make
    /// room. Once per episode: the next drop after the queue drained reports again.
    DatagramsDropped {
        /// The session.
        session: SessionId,
    },
    /// A reliable stream whose `write` was refused or cut short has room again; or, on an
    /// unreliable stream, the session's datagram queue has room after a `WouldBlock`.
    Writable {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
    },
    /// The peer opens a channel on a MULTIPLEXING stream (the Carrier SDK's `onChannelOpen`):
    /// [`accept_channel`](crate::SessionMut::accept_channel) or
    /// [`refuse_channel`](crate::SessionMut::refuse_channel) it.
    ChannelOpen {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The new channel.
        channel: ChannelId,
        /// The peer's cookie (at most `ChannelConfig::max_cookie_len` bytes).
        cookie: Bytes,
    },
    /// A channel is open on both sides (fires on both: for the opener when the peer accepted,
    /// for the acceptor at once).
    ChannelOpened {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
    },
    /// Data on a channel: the next in-order bytes (reliable streams; taking the event out of
    /// `poll_output` returns the channel's credit) or one datagram (unreliable streams).
    ChannelData {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
        /// The bytes.
        data: Bytes,
    },
    /// A channel is closed (the Carrier SDK's `onChannelClose`): by us, by the peer, refused
    /// (reason Error), timed out, or because its stream or session ended. Every channel the
    /// application learned of ends with exactly one of these.
    ChannelClosed {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
        /// Why.
        reason: CloseReason,
    },
    /// The peer finished writing on a reliable channel (half-close): every byte it wrote
    /// was delivered, in the `ChannelData` events before this one. The channel stays open
    /// for our writes; it closes Normal once we finish too.
    ChannelFinished {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
    },
    /// The peer asks us to stop sending on a channel: writes return
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) until [`Event::ChannelResumed`].
    ChannelPending {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
    },
    /// The peer lets us send on a channel again.
    ChannelResumed {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
    },
    /// A channel whose `write_channel` was refused or cut short for lack of buffer room has
    /// room again.
    ChannelWritable {
        /// The stream's session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// The channel.
        channel: ChannelId,
    },
}
