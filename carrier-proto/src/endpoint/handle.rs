//! [`SessionMut`]: the application's handle on one session.

use super::schedule::{Place, Schedule};
use crate::channel::{ChannelId, ChannelState, ControlCall};
use crate::error::Error;
use crate::negotiation::{Answer, Offer, PendingOffer, Reply};
use crate::session::{Buffers, Conn};
use crate::session::{Session, SessionPhase};
use crate::stream::StreamId;
use crate::time::Instant;
use crate::transport::send_stream::Payload;
use crate::types::Candidate;
use crate::types::SessionId;
use crate::types::{CloseReason, StreamOptions, StreamState, StreamType, TransportInfo};
use bytes::Bytes;

/// A session of an [`Endpoint`](crate::Endpoint), borrowed for the calls the application
/// makes on it. Get one from [`Endpoint::session`](crate::Endpoint::session); after any call
/// that can send or report something, drain [`Endpoint::poll_output`](crate::Endpoint::poll_output).
///
/// Each call that changes the session runs with the endpoint's packet buffers lent to it,
/// then puts the session in the endpoint's ready queue and its next deadline in the timer
/// heap.
#[derive(Debug)]
pub struct SessionMut<'a> {
    session: &'a mut Session,
    conn: &'a mut Conn,
    hosts: &'a [Candidate],
    buffers: &'a mut Buffers,
    schedule: &'a mut Schedule,
    place: Place,
    now: &'a mut Instant,
}

impl<'a> SessionMut<'a> {
    pub(super) fn new(
        session: &'a mut Session,
        conn: &'a mut Conn,
        hosts: &'a [Candidate],
        buffers: &'a mut Buffers,
        schedule: &'a mut Schedule,
        place: Place,
        now: &'a mut Instant,
    ) -> Self {
        SessionMut {
            session,
            conn,
            hosts,
            buffers,
            schedule,
            place,
            now,
        }
    }
}

impl SessionMut<'_> {
    /// Runs a call that changes the session (see the type's docs).
    fn call<R>(&mut self, f: impl FnOnce(&mut Session, &mut Conn, &[Candidate]) -> R) -> R {
        self.conn.lend(self.buffers);
        let (session, conn, hosts) = (&mut *self.session, &mut *self.conn, self.hosts);
        let span = crate::trace::active(&session.span);
        let r = crate::trace::within(span, || f(session, conn, hosts));
        self.conn.give_back(self.buffers);
        self.schedule.touch(self.place, self.conn);
        r
    }

    /// Records the time of an application call (packets built later carry it).
    fn at(&mut self, now: Instant) {
        *self.now = (*self.now).max(now);
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.session.id
    }

    /// The peer this session is with.
    pub fn peer(&self) -> &str {
        &self.session.peer
    }

    /// Where the session is in its lifecycle.
    pub fn phase(&self) -> SessionPhase {
        self.session.phase
    }

    /// Adds a stream (the Carrier SDK's `addStream`); it is Initialized at once. Only before
    /// `request` / `reply`. PORT_FORWARDING implies MULTIPLEXING.
    pub fn add_stream(
        &mut self,
        stream_type: StreamType,
        options: StreamOptions,
    ) -> Result<StreamId, Error> {
        self.call(|session, conn, _| session.add_stream(conn, stream_type, options))
    }

    /// The number of streams.
    pub fn stream_count(&self) -> usize {
        self.session.streams.len()
    }

    /// The stream at `index` (its position in the descriptions), if there is one.
    pub fn stream_at(&self, index: usize) -> Option<StreamId> {
        self.session.streams.get(index).map(|s| s.id)
    }

    /// A stream's state.
    pub fn stream_state(&self, stream: StreamId) -> Result<StreamState, Error> {
        Ok(self
            .session
            .stream(stream)
            .ok_or(Error::UnknownStream)?
            .state)
    }

    /// A stream's type and options (options normalized).
    pub fn stream_kind(&self, stream: StreamId) -> Result<(StreamType, StreamOptions), Error> {
        let s = self.session.stream(stream).ok_or(Error::UnknownStream)?;
        Ok((s.stream_type, s.options))
    }

    /// The largest UDP payload the session's data packets use now: the base
    /// ([`Config::max_udp_payload`](crate::Config::max_udp_payload)), or more once path MTU
    /// discovery found it ([`Config::mtu_ceiling`](crate::Config::mtu_ceiling)).
    pub fn path_mtu(&self) -> usize {
        self.session.mtu.current()
    }

    /// The path of a Connected stream: topology and both ends of the selected pair.
    pub fn transport_info(&self, stream: StreamId) -> Result<TransportInfo, Error> {
        let s = self.session.stream(stream).ok_or(Error::UnknownStream)?;
        if s.state != StreamState::Connected {
            return Err(Error::StreamState {
                op: "transport_info",
                state: s.state,
            });
        }
        self.session
            .path
            .transport_info()
            .ok_or(Error::StreamState {
                op: "transport_info",
                state: s.state,
            })
    }

    /// Offerer: makes the offer (streams become TransportReady) and starts the request
    /// timer. Carry `pending.offer().to_sdp_string()` to the peer; keep `pending` for
    /// [`start_with`](Self::start_with). `bundle` (visible ASCII, may be empty) routes the
    /// request on the other side.
    pub fn request(&mut self, now: Instant, bundle: &str) -> Result<PendingOffer, Error> {
        self.call(|session, conn, hosts| session.request(conn, hosts, now, bundle))
    }

    /// Answerer: accepts or refuses `offer` (the Carrier SDK's `replyRequest`). Accepting
    /// matches the session's streams to the offered ones by position: matching streams
    /// become TransportReady, the rest Deactivated. Carry the answer back to the offerer
    /// either way; a refusal ends the session.
    pub fn reply(&mut self, offer: &Offer, reply: Reply) -> Result<Answer, Error> {
        self.call(|session, conn, hosts| session.reply(conn, hosts, offer, reply))
    }

    /// Answerer: starts after an accepting reply (streams become Connecting).
    pub fn start(&mut self, now: Instant) -> Result<(), Error> {
        self.call(|session, conn, hosts| session.start(conn, hosts, now))
    }

    /// Offerer: starts with the peer's answer to `pending`. Streams the answer rejected or
    /// describes differently go Deactivated; the rest Connecting. If the answer was not yet
    /// handed to [`Endpoint::handle_answer`](crate::Endpoint::handle_answer), this completes
    /// the request first (and fails with a phase error if the answer is a refusal).
    pub fn start_with(
        &mut self,
        now: Instant,
        pending: PendingOffer,
        answer: Answer,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, hosts| session.start_with(conn, hosts, now, pending, answer))
    }

    /// The largest payload one [`write`](Self::write) on `stream` can carry on this path:
    /// the configured UDP payload less packet and frame overhead.
    pub fn max_datagram_size(&self, stream: StreamId) -> Result<usize, Error> {
        self.session.max_datagram_size(self.conn, stream)
    }

    /// Writes on a Connected stream (the Carrier SDK's `writeData`).
    ///
    /// - Unreliable: `data` goes out as one datagram; returns its length. Larger than
    ///   [`max_datagram_size`](Self::max_datagram_size) is an error and sends nothing. When
    ///   the congestion window is full the datagram waits in the session's send queue
    ///   (bounded by [`Config::datagram_send_buffer`](crate::Config::datagram_send_buffer))
    ///   and goes out at the controller's pace; with the queue full it is
    ///   [`Error::WouldBlock`] and an [`Event::Writable`](crate::Event::Writable) follows
    ///   (or, under [`DatagramPolicy::DropOldest`](crate::DatagramPolicy::DropOldest), the
    ///   oldest queued datagrams make room, counted and reported).
    /// - Reliable: takes as much as the send buffer has room for and returns how much
    ///   (possibly less than `data.len()`); with no room at all it is
    ///   [`Error::WouldBlock`], and an [`Event::Writable`](crate::Event::Writable) follows
    ///   when acknowledgements free space. The bytes go out as `poll_output` is drained.
    pub fn write(&mut self, now: Instant, stream: StreamId, data: &[u8]) -> Result<usize, Error> {
        self.at(now);
        self.call(|session, conn, _| session.write(conn, now, stream, Payload::Copy(data)))
    }

    /// [`write`](Self::write) without a copy: on a reliable stream the send buffer keeps
    /// (a slice of) `data` itself until the peer has it, and packets are filled straight
    /// from it. Takes what fits the send buffer, like `write`; the rest of `data` is the
    /// caller's to write again. On an unreliable stream it is `write`.
    pub fn write_bytes(
        &mut self,
        now: Instant,
        stream: StreamId,
        data: Bytes,
    ) -> Result<usize, Error> {
        self.at(now);
        self.call(|session, conn, _| session.write(conn, now, stream, Payload::Owned(data)))
    }

    /// Room in a reliable stream's send buffer (0 for unreliable streams).
    pub fn writable_bytes(&self, stream: StreamId) -> Result<usize, Error> {
        self.session.writable_bytes(stream)
    }

    /// Aborts a stream: the peer is told at once (its stream closes with
    /// `ClosedByPeer(CloseReason::Error)`, without [`Event::StreamFinished`](crate::Event::StreamFinished), so its reader
    /// knows the data was cut short); both sides drop what was not delivered, and this side
    /// closes with [`StateReason::AbortedLocally`](crate::StateReason::AbortedLocally).
    pub fn abort_stream(&mut self, now: Instant, stream: StreamId) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| session.abort_stream(conn, now, stream))
    }

    /// Half-closes a reliable stream: no more writes ([`Error::Finished`]); a FIN follows
    /// the data written so far. The peer reads every byte, then
    /// [`Event::StreamFinished`](crate::Event::StreamFinished), and may go on writing: this side keeps reading. Once the
    /// peer acknowledged everything, [`Event::StreamAcknowledged`](crate::Event::StreamAcknowledged) reports it; the stream
    /// is Closed when both directions are finished.
    ///
    /// ```
    /// # use carrier_proto::*;
    /// # let mut ep = Endpoint::new(Config::default().with_seed([1; 32]));
    /// # let s = ep.new_session("peer").unwrap();
    /// # let st = ep.session(s).unwrap().add_stream(StreamType::Text, StreamOptions::RELIABLE).unwrap();
    /// // Not Connected yet: there is nothing to finish.
    /// assert!(matches!(
    ///     ep.session(s).unwrap().finish_stream(Instant::ZERO, st),
    ///     Err(Error::StreamState { .. })
    /// ));
    /// ```
    pub fn finish_stream(&mut self, now: Instant, stream: StreamId) -> Result<(), Error> {
        self.at(now);
        self.call(|session, _, _| session.finish_stream(stream))
    }

    /// Closes one stream and tells the peer. A reliable stream closes gracefully: no more
    /// writes; queued data and a FIN go out first, and once the peer has acknowledged all
    /// of it the stream is Closed here and the peer is told (CLOSE Normal; its reader has
    /// every byte and [`Event::StreamFinished`](crate::Event::StreamFinished) by then). What the peer had still to send
    /// on it is discarded. An unreliable stream closes at once.
    pub fn close_stream(&mut self, now: Instant, stream: StreamId) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| session.close_stream(conn, now, stream))
    }

    /// Bytes of datagrams waiting in the session's send queue for the congestion window
    /// (at most [`Config::datagram_send_buffer`](crate::Config::datagram_send_buffer)).
    pub fn queued_datagram_bytes(&self) -> usize {
        self.session.datagrams.queued_bytes()
    }

    // ---- channels (MULTIPLEXING streams) ----

    /// Opens a channel on a Connected MULTIPLEXING stream (the Carrier SDK's `openChannel`).
    /// Returns the id at once, in state [`ChannelState::Opening`]; the peer gets
    /// [`Event::ChannelOpen`](crate::Event::ChannelOpen) with `cookie` and accepts
    /// ([`Event::ChannelOpened`](crate::Event::ChannelOpened) on both sides) or refuses
    /// ([`Event::ChannelClosed`](crate::Event::ChannelClosed) with reason Error here).
    ///
    /// Errors: [`ChannelError::NotMultiplexing`](crate::ChannelError::NotMultiplexing),
    /// a stream not Connected, a cookie over `max_cookie_len`, too many channels or opens
    /// in flight (all limits of [`ChannelConfig`](crate::ChannelConfig)).
    pub fn open_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        cookie: &[u8],
    ) -> Result<ChannelId, Error> {
        self.at(now);
        self.call(|session, conn, _| session.open_channel(conn, now, stream, cookie))
    }

    /// Accepts the peer's channel (after [`Event::ChannelOpen`](crate::Event::ChannelOpen));
    /// it is open on this side at once.
    pub fn accept_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| {
            session.channel_control(conn, now, stream, channel, ControlCall::Accept)
        })
    }

    /// Refuses the peer's channel: the peer sees it closed with reason Error.
    pub fn refuse_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| {
            session.channel_control(conn, now, stream, channel, ControlCall::Refuse)
        })
    }

    /// Writes on an open channel. On a reliable stream: takes what fits the channel's send
    /// buffer ([`Error::WouldBlock`] if nothing fits;
    /// [`Event::ChannelWritable`](crate::Event::ChannelWritable) follows). On an unreliable
    /// stream: sends `data` as one datagram (at most
    /// [`max_channel_datagram_size`](Self::max_channel_datagram_size)), queued like a
    /// stream datagram while the congestion window is full (see [`write`](Self::write)).
    ///
    /// While the peer has the channel paused (pend), nothing is taken: [`Error::WouldBlock`]
    /// until [`Event::ChannelResumed`](crate::Event::ChannelResumed).
    pub fn write_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
        data: &[u8],
    ) -> Result<usize, Error> {
        self.at(now);
        self.call(|session, conn, _| {
            session.write_channel(conn, now, stream, channel, Payload::Copy(data))
        })
    }

    /// [`write_channel`](Self::write_channel) without a copy (see
    /// [`write_bytes`](Self::write_bytes)): a reliable channel's send buffer keeps `data`
    /// itself until the peer has it.
    pub fn write_channel_bytes(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
        data: Bytes,
    ) -> Result<usize, Error> {
        self.at(now);
        self.call(|session, conn, _| {
            session.write_channel(conn, now, stream, channel, Payload::Owned(data))
        })
    }

    /// Half-closes a reliable channel: no more writes ([`Error::Finished`]); a FIN follows
    /// the data. The peer reads every byte, then
    /// [`Event::ChannelFinished`](crate::Event::ChannelFinished), and may go on writing; the
    /// channel closes Normal on both sides once both directions are finished.
    pub fn finish_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, _, _| session.finish_channel(stream, channel))
    }

    /// Closes a channel, in any state, with `reason`; the peer is told and both sides get
    /// [`Event::ChannelClosed`](crate::Event::ChannelClosed). On a reliable stream a
    /// Normal close delivers what was already written first. To refuse data the peer
    /// sends, close the channel with reason Error: the peer learns of it (the Carrier SDK
    /// left the peer's channel open).
    pub fn close_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
        reason: CloseReason,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| session.close_channel(conn, now, stream, channel, reason))
    }

    /// Asks the peer to stop sending on a channel (the peer's writes return
    /// [`Error::WouldBlock`]); data already in flight still arrives.
    pub fn pend_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| {
            session.channel_control(conn, now, stream, channel, ControlCall::Pend)
        })
    }

    /// Lets the peer send on a channel again after [`pend_channel`](Self::pend_channel).
    pub fn resume_channel(
        &mut self,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.at(now);
        self.call(|session, conn, _| {
            session.channel_control(conn, now, stream, channel, ControlCall::Resume)
        })
    }

    /// A live channel's state (a closed channel is [`ChannelError::UnknownChannel`](crate::ChannelError::UnknownChannel)).
    pub fn channel_state(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<ChannelState, Error> {
        self.session.channel_state(stream, channel)
    }

    /// With [`Config::manual_credit`](crate::Config::manual_credit): the application has
    /// used `bytes` more of a reliable stream's data, so the peer may send that much more.
    /// (Without it, credit returns by itself and this call would grant it twice: it is
    /// ignored.) Returns true when this made new credit due: something to send, so drain
    /// [`Endpoint::poll_output`](crate::Endpoint::poll_output).
    pub fn consume(&mut self, stream: StreamId, bytes: usize) -> bool {
        self.conn.config.manual_credit
            && self.call(|session, _, _| session.on_consumed(stream, bytes as u64))
    }

    /// With [`Config::manual_credit`](crate::Config::manual_credit): the application has
    /// used `bytes` more of a reliable channel's data (see [`consume`](Self::consume)).
    pub fn consume_channel(&mut self, stream: StreamId, channel: ChannelId, bytes: usize) -> bool {
        self.conn.config.manual_credit
            && self.call(|session, _, _| session.on_channel_consumed(stream, channel, bytes as u64))
    }

    /// Live channels on a stream.
    pub fn channel_count(&self, stream: StreamId) -> Result<usize, Error> {
        self.session.channel_count(stream)
    }

    /// Whether the peer has paused a live channel ([`Event::ChannelPending`](crate::Event::ChannelPending)
    /// until [`Event::ChannelResumed`](crate::Event::ChannelResumed)): while it has, writes
    /// of new data get no room.
    pub fn channel_paused_by_peer(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<bool, Error> {
        self.session.channel_paused_by_peer(stream, channel)
    }

    /// Room in a reliable channel's send buffer (0 while the peer has it paused).
    pub fn channel_writable_bytes(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<usize, Error> {
        self.session.channel_writable_bytes(stream, channel)
    }

    /// The largest datagram one `write_channel` on an unreliable stream's channel carries.
    pub fn max_channel_datagram_size(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<usize, Error> {
        self.session
            .max_channel_datagram_size(self.conn, stream, channel)
    }
}
