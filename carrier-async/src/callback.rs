//! The callback style, for code ported from the Carrier SDK: one handler object whose
//! methods the driver task calls as things happen (`onStateChanged`, `onStreamData`,
//! `onChannelOpen`, ...), with a [`CallbackScope`] for the calls they lead to.
//!
//! Install it with [`Manager::with_handler`](crate::Manager::with_handler); reach the
//! endpoint from outside with [`Manager::call`](crate::Manager::call).

use std::net::SocketAddr;

use bytes::Bytes;
use carrier_proto::{
    Answer, ChannelId, CloseReason, Endpoint, Event, HandlerId, Instant, Offer, PendingOffer,
    RequestOutcome, SessionId, StateReason, StreamId, StreamState,
};
use carrier_udp::Engine;

/// The endpoint, lent to a callback for the calls it makes (reply, accept, write, ...);
/// the driver sends what they produce when the callback returns.
#[derive(Debug)]
pub struct CallbackScope<'a> {
    pub(crate) engine: &'a mut Engine,
}

impl CallbackScope<'_> {
    /// The endpoint.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        self.engine.endpoint()
    }

    /// The endpoint's clock, for the calls that take `now`.
    pub fn now(&self) -> Instant {
        self.engine.now()
    }

    /// Direct signaling: sends a request's offer to `to` on the socket until answered.
    pub fn request_direct(&mut self, to: SocketAddr, pending: &PendingOffer) {
        self.engine.request_direct(to, pending);
    }

    /// Direct signaling: sends `answer` to where `offer` came from; false if it did not
    /// come over the socket.
    pub fn reply_direct(&mut self, offer: &Offer, answer: &Answer) -> bool {
        self.engine.reply_direct(offer, answer)
    }
}

/// The Carrier SDK's callbacks. Every method has an empty default: implement the ones you
/// need. They run on the driver task: keep them short (queue heavy work elsewhere).
#[allow(unused_variables)]
pub trait Callbacks: Send + 'static {
    /// A peer asks for a session (`onSessionRequest`): create a session, add streams,
    /// reply (and [`CallbackScope::reply_direct`] if it came over the socket), start.
    fn on_session_request(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        handler: Option<HandlerId>,
        peer: &str,
        offer: Offer,
    ) {
    }
    /// A request of ours completed (`onCompletion`): accepted (call `start_with`),
    /// refused or timed out.
    fn on_request_complete(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        outcome: RequestOutcome,
    ) {
    }
    /// A stream changed state (`onStateChanged`).
    fn on_state_changed(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        state: StreamState,
        reason: Option<StateReason>,
    ) {
    }
    /// Data on a stream (`onStreamData`): a datagram, or the next bytes of a reliable
    /// stream.
    fn on_stream_data(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        data: Bytes,
    ) {
    }
    /// A reliable stream has room to write again.
    fn on_writable(&mut self, ctx: &mut CallbackScope<'_>, session: SessionId, stream: StreamId) {}
    /// The peer opens a channel (`onChannelOpen`): accept or refuse it.
    fn on_channel_open(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
        cookie: Bytes,
    ) {
    }
    /// A channel is open on both sides (`onChannelOpened`).
    fn on_channel_opened(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
    ) {
    }
    /// Data on a channel (`onChannelData`).
    fn on_channel_data(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
        data: Bytes,
    ) {
    }
    /// A channel closed (`onChannelClose`), with why.
    fn on_channel_close(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
        reason: CloseReason,
    ) {
    }
    /// The peer asks us to stop sending on a channel (`onChannelPending`).
    fn on_channel_pending(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
    ) {
    }
    /// The peer lets us send on a channel again (`onChannelResume`).
    fn on_channel_resume(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
    ) {
    }
    /// A channel has room to write again.
    fn on_channel_writable(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: ChannelId,
    ) {
    }
}

/// Calls the handler's method for `event`.
pub(crate) fn dispatch(h: &mut dyn Callbacks, ctx: &mut CallbackScope<'_>, event: Event) {
    match event {
        Event::SessionRequest {
            handler,
            peer,
            offer,
        } => h.on_session_request(ctx, handler, &peer, offer),
        Event::RequestComplete { session, outcome } => h.on_request_complete(ctx, session, outcome),
        Event::StateChanged {
            session,
            stream,
            state,
            reason,
        } => h.on_state_changed(ctx, session, stream, state, reason),
        Event::StreamData {
            session,
            stream,
            data,
        } => h.on_stream_data(ctx, session, stream, data),
        Event::Writable { session, stream } => h.on_writable(ctx, session, stream),
        Event::ChannelOpen {
            session,
            stream,
            channel,
            cookie,
        } => h.on_channel_open(ctx, session, stream, channel, cookie),
        Event::ChannelOpened {
            session,
            stream,
            channel,
        } => h.on_channel_opened(ctx, session, stream, channel),
        Event::ChannelData {
            session,
            stream,
            channel,
            data,
        } => h.on_channel_data(ctx, session, stream, channel, data),
        Event::ChannelClosed {
            session,
            stream,
            channel,
            reason,
        } => h.on_channel_close(ctx, session, stream, channel, reason),
        Event::ChannelPending {
            session,
            stream,
            channel,
        } => h.on_channel_pending(ctx, session, stream, channel),
        Event::ChannelResumed {
            session,
            stream,
            channel,
        } => h.on_channel_resume(ctx, session, stream, channel),
        Event::ChannelWritable {
            session,
            stream,
            channel,
        } => h.on_channel_writable(ctx, session, stream, channel),
        _ => {}
    }
}
