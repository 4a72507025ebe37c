//! [`Mux`]: the channels of one MULTIPLEXING stream, wired to the session's transport.
//!
//! The [`ChannelTable`] decides what is allowed; the mux moves the bytes:
//!
//! - **Control records** (OPEN, ACCEPT, CLOSE, PEND, RESUME) are written into the stream's
//!   *control stream*, a reliable ordered byte stream of its own (CONTROL frames, with
//!   MAX_CONTROL_DATA credit). The table relies on that order: a CLOSE can never overtake
//!   the OPEN it closes, and PEND/RESUME arrive in the order they were sent. Received
//!   records wait in a backlog bounded by the control window, and are only processed while
//!   our own control stream has room for an answer and the event queue is not full; until
//!   then their credit is not returned, so a peer flooding OPENs stalls itself, not us.
//! - **Channel data** of a reliable stream has its own send and receive stream per channel
//!   (own offsets, own credit), so a lost packet of one channel holds up only that
//!   channel. Channels with something to send wait in a round-robin `ready` queue: every
//!   turn gives one channel one chunk, so bulk channels share the path evenly, and finding
//!   the next sender is O(1) whatever the number of channels.
//! - **Unreliable streams** carry channel datagrams; an open channel idle for
//!   `keepalive_interval` sends a KEEPALIVE, and one that heard nothing from the peer for
//!   `idle_timeout` is closed with Timeout.
//!
//! A reliable channel closed with Normal *drains*: the application sees it closed at once,
//! but its CLOSE record is sent only when all its data has been acknowledged, so the peer
//! gets every byte before the close.
//!
//! Channel data has per-channel flow control only (it is not counted in the session's
//! connection window): the bytes a peer can make us hold for a stream are bounded by
//! `max_channels × receive_window`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

use super::config::{ChannelConfig, INITIAL_CHANNEL_CREDIT, INITIAL_CONTROL_CREDIT};
use super::frame::{ChannelFrame, MAX_CHANNEL_ID, is_control_record};
use super::state::{
    Action, ChannelError, ChannelEvent, ChannelId, ChannelState, ChannelTable, ControlKind,
    OwnedChannelFrame, Side,
};
use crate::error::Error;
use crate::event::Event;
use crate::packet::{Frame, PacketError};
use crate::session::Conn;
use crate::stream::StreamId;
use crate::time::Instant;
use crate::transport::recovery::{Fate, SentFrame, SentPacket};
use crate::transport::recv_stream::{RecvError, RecvStream};
use crate::transport::send_stream::{BlockPool, Payload, SendStream};
use crate::transport::varint;
use crate::types::CloseReason;
use crate::types::SessionId;

/// Most out-of-order segments the control stream holds (records are small and few).
const CONTROL_SEGMENTS: usize = 256;

/// Emptied send blocks the channels of a stream keep for reuse (1 MiB).
const POOL_BLOCKS: usize = 64;

/// Bytes a channel sends per turn of the round-robin (see [`Mux::emit_chunk`]).
const QUANTUM: usize = 16 * 1024;

/// One channel's transport state.
#[derive(Debug)]
struct ChannelIo {
    send: SendStream,
    recv: RecvStream,
    /// In the `ready` queue.
    queued: bool,
    /// In the `credit` queue.
    credit_queued: bool,
    /// A write was refused or cut short: report `ChannelWritable` when room frees up.
    want_writable: bool,
    /// Closed locally with Normal: the CLOSE record waits until our data is acknowledged.
    draining: bool,
    /// This side finished writing (half-close): a FIN follows the data; the channel closes
    /// Normal once the peer has finished too and our FIN is acknowledged.
    finished: bool,
    /// Unreliable streams: when we last heard from the peer on this channel.
    last_rx: Instant,
    /// Unreliable streams: when we last sent on this channel.
    last_tx: Instant,
}

impl ChannelIo {
    /// How much new data the channel may send now: none while the peer has it paused
    /// (`remote_paused`, the channel table's flag: only retransmissions go; a draining
    /// channel flushes regardless), else unlimited by this (its own credit still applies).
    fn new_data_allowance(&self, remote_paused: bool) -> u64 {
        if remote_paused && !self.draining {
            0
        } else {
            u64::MAX
        }
    }

    fn new(cfg: &ChannelConfig, reliable: bool, max_segments: usize, now: Instant) -> Self {
        let (buffer, window) = if reliable {
            (
                cfg.send_buffer,
                cfg.receive_window.max(INITIAL_CHANNEL_CREDIT),
            )
        } else {
            (0, 0)
        };
        ChannelIo {
            send: SendStream::new(buffer, INITIAL_CHANNEL_CREDIT),
            recv: RecvStream::new(window, max_segments),
            queued: false,
            credit_queued: false,
            want_writable: false,
            draining: false,
            finished: false,
            last_rx: now,
            last_tx: now,
        }
    }
}

/// An application call on a channel that sends one control record (see [`Mux::control`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ControlCall {
    /// Accept the peer's open.
    Accept,
    /// Refuse the peer's open.
    Refuse,
    /// Ask the peer to stop sending.
    Pend,
    /// Let the peer send again.
    Resume,
}

/// Why a peer's channel input was refused (the caller counts it; the stream may be
/// aborted for a broken control stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MuxError {
    /// Data beyond the credit we granted, or contradicting a final size.
    FlowControl,
    /// A control record that cannot be parsed, or a packet frame inside the control stream.
    BadControl,
    /// Out-of-order data with no room to hold it: the packet must not be acknowledged.
    Busy,
}

/// The channels of one MULTIPLEXING stream.
#[derive(Debug)]
pub(crate) struct Mux {
    stream: u8,
    reliable: bool,
    cfg: ChannelConfig,
    table: ChannelTable,
    /// The table's output, drained after every call.
    actions: VecDeque<Action>,
    /// Reused to encode one control record.
    scratch: BytesMut,
    ctl_send: SendStream,
    ctl_recv: RecvStream,
    /// In-order control bytes received and not yet processed, from `backlog_pos`.
    backlog: Vec<u8>,
    backlog_pos: usize,
    /// Send MAX_CONTROL_DATA.
    ctl_credit_dirty: bool,
    channels: super::IdMap<ChannelIo>,
    /// Channels that may have something to send, in round-robin order.
    ready: VecDeque<u64>,
    /// Channels whose credit update is due.
    credit: VecDeque<u64>,
    /// Channels whose writer waits for room (checked after acknowledgements).
    writable: Vec<u64>,
    /// Drained channels whose CLOSE record is due.
    drained: VecDeque<u64>,
    /// Channels finished in both directions, to close Normal when the control stream has
    /// room.
    half_closed: VecDeque<u64>,
    /// Unreliable streams: the earliest keepalive or idle deadline (never later than it).
    timer: Instant,
    /// See [`Self::take_plain_turn`].
    plain_turn: bool,
    /// Most out-of-order segments held across all channels (each pins a datagram).
    max_segments: usize,
    /// Bytes left in the current channel's round-robin turn.
    turn_left: usize,
    /// Channels draining (closed with data still unacknowledged).
    draining: usize,
    /// The stream is closing: no more writes, and its close waits until every channel's
    /// data is acknowledged (see [`Mux::is_flushed`]).
    closing: bool,
    /// Send-buffer blocks shared by the channels (the most recently freed is reused first).
    pool: BlockPool,
    /// Out-of-order segments held across all channels now.
    segments_held: usize,
}

impl Mux {
    /// The channels of stream `stream`, on `side` of the session. `max_segments` bounds the
    /// out-of-order segments held across all its channels; `seed` keys the hash maps.
    pub(crate) fn new(
        stream: u8,
        side: Side,
        reliable: bool,
        cfg: &ChannelConfig,
        max_segments: usize,
        seed: u64,
    ) -> Self {
        let window = cfg.control_window();
        Mux {
            stream,
            reliable,
            table: ChannelTable::with_seed(stream, side, cfg.limits(), seed),
            actions: VecDeque::new(),
            scratch: BytesMut::new(),
            ctl_send: SendStream::new(window as usize, INITIAL_CONTROL_CREDIT),
            ctl_recv: RecvStream::new(window, CONTROL_SEGMENTS),
            backlog: Vec::new(),
            backlog_pos: 0,
            // The peer assumes only the initial credit until we tell it our window.
            ctl_credit_dirty: window > INITIAL_CONTROL_CREDIT,
            channels: super::id_map(seed ^ 0x6d75_7800),
            ready: VecDeque::new(),
            credit: VecDeque::new(),
            writable: Vec::new(),
            drained: VecDeque::new(),
            half_closed: VecDeque::new(),
            timer: Instant::FAR_FUTURE,
            plain_turn: false,
            max_segments,
            segments_held: 0,
            turn_left: 0,
            draining: 0,
            closing: false,
            pool: BlockPool::new(POOL_BLOCKS),
            cfg: cfg.clone(),
        }
    }

    fn sid(&self) -> StreamId {
        StreamId(self.stream)
    }

    /// Live channels (in the table).
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn state(&self, id: ChannelId) -> Result<ChannelState, ChannelError> {
        self.table.state(id).ok_or(ChannelError::UnknownChannel)
    }

    // ---- application calls ----

    /// Our control stream must have room for one more record before a call that sends one.
    fn check_room(&self) -> Result<(), ChannelError> {
        if self.ctl_send.free() < self.cfg.max_record_len() {
            return Err(ChannelError::ControlFull);
        }
        Ok(())
    }

    pub(crate) fn open(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
        cookie: &[u8],
    ) -> Result<ChannelId, ChannelError> {
        self.check_room()?;
        let id = self.table.open(cookie, &mut self.actions)?;
        self.insert_channel(id.0, now);
        self.apply(conn, session, now);
        Ok(id)
    }

    /// Accepts or refuses the peer's open, or pends or resumes a channel: one control
    /// record each.
    pub(crate) fn control(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
        id: ChannelId,
        call: ControlCall,
    ) -> Result<(), ChannelError> {
        self.check_room()?;
        let out = &mut self.actions;
        match call {
            ControlCall::Accept => self.table.accept(id, out),
            ControlCall::Refuse => self.table.refuse(id, out),
            ControlCall::Pend => self.table.pend(id, out),
            ControlCall::Resume => self.table.resume(id, out),
        }?;
        self.apply(conn, session, now);
        Ok(())
    }

    /// Closes a channel. On a reliable stream, a Normal close of a channel with data not
    /// yet acknowledged drains first (see the module docs); the application sees
    /// `ChannelClosed` at once either way.
    pub(crate) fn close(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
        id: ChannelId,
        reason: CloseReason,
    ) -> Result<(), ChannelError> {
        self.check_room()?;
        let drain = self.reliable
            && reason == CloseReason::Normal
            && self
                .channels
                .get(&id.0)
                .is_some_and(|io| !io.send.all_acked());
        self.table.close(id, reason, &mut self.actions)?;
        if drain {
            // Hold the CLOSE record back until the data is through.
            self.actions.retain(|a| {
                !matches!(a, Action::Send(f) if f.channel == id && matches!(f.kind, ControlKind::Close(_)))
            });
            if let Some(io) = self.channels.get_mut(&id.0) {
                io.draining = true;
                io.want_writable = false;
                io.send.finish();
                self.draining += 1;
            }
            self.requeue(id.0);
        }
        self.apply(conn, session, now);
        Ok(())
    }

    /// Queues bytes on a reliable channel; returns how many fit the channel's buffer.
    pub(crate) fn write(&mut self, id: ChannelId, data: Payload<'_>) -> Result<usize, Error> {
        if !self.reliable {
            return Err(ChannelError::WrongStreamKind.into());
        }
        if self.closing || self.channels.get(&id.0).is_some_and(|io| io.finished) {
            return Err(Error::Finished);
        }
        self.check_send(id)?;
        let io = self
            .channels
            .get_mut(&id.0)
            .ok_or(ChannelError::UnknownChannel)?;
        let len = data.len();
        let n = io.send.write_pooled(data, &mut self.pool);
        if n < len {
            io.want_writable = true;
        }
        if n > 0 {
            self.requeue(id.0);
        }
        if n == 0 && len > 0 {
            return Err(Error::WouldBlock);
        }
        Ok(n)
    }

    /// Half-closes a reliable channel: no more writes; a FIN follows the data. The peer
    /// reads everything, then `ChannelFinished`, and may write on; the channel closes
    /// Normal on both sides once both directions are finished.
    pub(crate) fn finish(&mut self, id: ChannelId) -> Result<(), Error> {
        if !self.reliable {
            return Err(ChannelError::WrongStreamKind.into());
        }
        match self.table.state(id) {
            Some(ChannelState::Open) => {}
            Some(state) => {
                return Err(ChannelError::WrongState {
                    op: "finish_channel",
                    state,
                }
                .into());
            }
            None => return Err(ChannelError::UnknownChannel.into()),
        }
        let io = self
            .channels
            .get_mut(&id.0)
            .ok_or(ChannelError::UnknownChannel)?;
        if !io.finished {
            io.finished = true;
            io.want_writable = false;
            io.send.finish();
        }
        self.requeue(id.0);
        self.check_half_closed(id.0);
        Ok(())
    }

    /// Queues the channel for its Normal close if both directions are finished.
    fn check_half_closed(&mut self, id: u64) {
        let done = self.channels.get(&id).is_some_and(|io| {
            io.finished && !io.draining && io.send.is_done() && io.recv.is_finished()
        });
        if done && !self.half_closed.contains(&id) {
            self.half_closed.push_back(id);
        }
    }

    /// Closes (Normal) the channels finished both ways, as far as the control stream has
    /// room for their CLOSE records.
    fn close_half_closed(&mut self, conn: &mut Conn, session: SessionId, now: Instant) {
        while let Some(&id) = self.half_closed.front() {
            if self.check_room().is_err() {
                return;
            }
            self.half_closed.pop_front();
            if self
                .table
                .close(ChannelId(id), CloseReason::Normal, &mut self.actions)
                .is_ok()
            {
                self.apply(conn, session, now);
            }
        }
    }

    /// Whether we may send on the channel now; a channel the peer paused is WouldBlock.
    pub(crate) fn check_send(&self, id: ChannelId) -> Result<(), Error> {
        match self.table.check_send(id) {
            Err(ChannelError::RemotePaused) => Err(Error::WouldBlock),
            r => r.map_err(Error::from),
        }
    }

    /// Room in a reliable channel's send buffer (0 while the peer has it paused).
    /// Whether the peer has the channel paused (PEND): the one place this is kept.
    pub(crate) fn paused_by_peer(&self, id: ChannelId) -> Result<bool, ChannelError> {
        self.table
            .remote_paused(id)
            .ok_or(ChannelError::UnknownChannel)
    }

    pub(crate) fn writable_bytes(&self, id: ChannelId) -> Result<usize, ChannelError> {
        self.table.state(id).ok_or(ChannelError::UnknownChannel)?;
        if self.table.remote_paused(id) == Some(true) {
            return Ok(0);
        }
        Ok(self.channels.get(&id.0).map_or(0, |io| io.send.free()))
    }

    /// An unreliable channel's datagram went out.
    pub(crate) fn on_datagram_sent(&mut self, id: ChannelId, now: Instant) {
        if let Some(io) = self.channels.get_mut(&id.0) {
            io.last_tx = now;
        }
    }

    /// The stream ended: every channel is closed with `reason` and everything is dropped.
    pub(crate) fn close_all(&mut self, conn: &mut Conn, session: SessionId, reason: CloseReason) {
        self.table.close_all(reason, &mut self.actions);
        self.apply(conn, session, Instant::ZERO);
        self.channels.clear();
        self.segments_held = 0;
        self.draining = 0;
        self.turn_left = 0;
        self.ready.clear();
        self.credit.clear();
        self.writable.clear();
        self.drained.clear();
        self.half_closed.clear();
        self.backlog = Vec::new();
        self.backlog_pos = 0;
        self.timer = Instant::FAR_FUTURE;
    }

    fn insert_channel(&mut self, id: u64, now: Instant) {
        let io = ChannelIo::new(&self.cfg, self.reliable, self.max_segments, now);
        self.channels.insert(id, io);
    }

    /// Drops a channel's transport state. Returns whether it existed.
    fn remove_channel(&mut self, id: u64) -> bool {
        let Some(io) = self.channels.remove(&id) else {
            return false;
        };
        self.segments_held = self
            .segments_held
            .saturating_sub(io.recv.buffered_segments());
        if io.draining {
            self.draining -= 1;
        }
        true
    }

    // ---- the table's output ----

    /// Carries out the table's actions: records into the control stream, events to the
    /// application, channel state created or dropped.
    fn apply(&mut self, conn: &mut Conn, session: SessionId, now: Instant) {
        while let Some(action) = self.actions.pop_front() {
            match action {
                Action::Send(frame) => self.write_record(&frame),
                Action::Event(event) => self.on_event(conn, session, now, event),
            }
        }
    }

    fn write_record(&mut self, frame: &OwnedChannelFrame) {
        self.scratch.clear();
        frame.emit(&mut self.scratch);
        // Room was checked before the call (one record per call), so this always fits; a
        // record is never written in part (that would corrupt the control stream).
        if self.ctl_send.free() >= self.scratch.len() {
            self.ctl_send.write(&self.scratch);
        } else {
            debug_assert!(false, "control stream overflow");
        }
    }

    fn on_event(&mut self, conn: &mut Conn, session: SessionId, now: Instant, e: ChannelEvent) {
        let stream = self.sid();
        let event = match e {
            ChannelEvent::Open { id, cookie } => {
                self.insert_channel(id.0, now);
                Event::ChannelOpen {
                    session,
                    stream,
                    channel: id,
                    cookie: Bytes::from(cookie),
                }
            }
            ChannelEvent::Opened { id } => {
                if let Some(io) = self.channels.get_mut(&id.0) {
                    io.last_rx = now;
                    io.last_tx = now;
                }
                // Our full window goes out once the channel is open (earlier, the peer
                // could not place it).
                if self.reliable && self.cfg.receive_window > INITIAL_CHANNEL_CREDIT {
                    self.queue_credit(id.0);
                }
                self.requeue(id.0);
                if !self.reliable {
                    self.timer = self.timer.min(now + self.cfg.keepalive_interval);
                }
                Event::ChannelOpened {
                    session,
                    stream,
                    channel: id,
                }
            }
            ChannelEvent::Closed { id, reason } => {
                if self.channels.get(&id.0).is_some_and(|io| !io.draining) {
                    self.remove_channel(id.0);
                }
                Event::ChannelClosed {
                    session,
                    stream,
                    channel: id,
                    reason,
                }
            }
            ChannelEvent::Pending { id } => Event::ChannelPending {
                session,
                stream,
                channel: id,
            },
            ChannelEvent::Resumed { id } => {
                self.requeue(id.0);
                Event::ChannelResumed {
                    session,
                    stream,
                    channel: id,
                }
            }
        };
        conn.emit(event);
    }

    // ---- peer input ----

    /// A CONTROL frame: reassembles the control stream and processes what it can.
    pub(crate) fn on_control(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
        offset: u64,
        data: Bytes,
    ) -> Result<(), MuxError> {
        let backlog = &mut self.backlog;
        self.ctl_recv
            .on_data(offset, data, false, |bytes| {
                backlog.extend_from_slice(&bytes)
            })
            .map_err(|e| match e {
                RecvError::Busy => MuxError::Busy,
                _ => MuxError::FlowControl,
            })?;
        self.process_backlog(conn, session, now)
    }

    /// Processes received control records while we can answer them: our control stream
    /// has room and the event queue is not full. What is left waits, uncredited.
    pub(crate) fn process_backlog(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
    ) -> Result<(), MuxError> {
        self.close_half_closed(conn, session, now);
        let before = self.table.stats();
        let max_cookie = (self.cfg.control_window() as usize).saturating_sub(18);
        let mut result = Ok(());
        let mut used = 0;
        while self.backlog_pos < self.backlog.len()
            && self.check_room().is_ok()
            && conn.events.len() < conn.config.max_queued_events
        {
            let all = &self.backlog[self.backlog_pos..];
            let (&ty, mut body) = all.split_first().unwrap_or((&0, &[]));
            if !is_control_record(ty) {
                result = Err(MuxError::BadControl);
                break;
            }
            // Any cookie that fits our window is parsed (the table refuses one over
            // `max_cookie_len` with CLOSE(Error)); a longer one could never arrive whole.
            let frame = match ChannelFrame::parse(ty, &mut body, MAX_CHANNEL_ID, max_cookie) {
                Ok(f) => f,
                // The rest of the record has not arrived yet.
                Err(PacketError::TruncatedFrame(_)) => break,
                Err(_) => {
                    result = Err(MuxError::BadControl);
                    break;
                }
            };
            let n = all.len() - body.len();
            self.table.on_frame(&frame, &mut self.actions);
            self.backlog_pos += n;
            used += n;
            self.apply(conn, session, now);
        }
        if self.backlog_pos == self.backlog.len() {
            self.backlog.clear();
            self.backlog_pos = 0;
        } else if self.backlog_pos > self.backlog.len() / 2 {
            self.backlog.drain(..self.backlog_pos);
            self.backlog_pos = 0;
        }
        if used > 0 && self.ctl_recv.on_consumed(used as u64).is_some() {
            self.ctl_credit_dirty = true;
        }
        let after = self.table.stats();
        let refused = after.refused_opens - before.refused_opens;
        if refused > 0 {
            conn.stats.channel_opens_refused += refused;
            crate::trace::log_debug!(
                stream = self.stream,
                refused,
                "channel opens refused (over a limit or a reused id)"
            );
        }
        result
    }

    /// Whether received control records wait for room to be processed.
    pub(crate) fn has_backlog(&self) -> bool {
        self.backlog_pos < self.backlog.len() || !self.half_closed.is_empty()
    }

    /// A packet frame for one of this stream's channels.
    pub(crate) fn on_frame(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
        frame: &ChannelFrame<'_>,
        datagram: &Bytes,
    ) -> Result<(), MuxError> {
        let id = frame.channel();
        // The table may answer a frame with a record (CLOSE(Error) for an unknown channel,
        // a violation): with no room for one, the packet is refused and comes again later.
        // A peer that repeats such frames and never acknowledges our records stalls itself.
        if self.check_room().is_err() {
            return Err(MuxError::Busy);
        }
        // A draining channel is gone for the table but still sends: it needs the peer's
        // credit, and ignores the peer's data.
        if self.draining > 0 && self.channels.get(&id).is_some_and(|io| io.draining) {
            if let ChannelFrame::MaxChannelData { max, .. } = *frame {
                if let Some(io) = self
                    .channels
                    .get_mut(&id)
                    .filter(|io| max > io.send.max_data)
                {
                    io.send.max_data = max;
                    self.requeue(id);
                }
            }
            return Ok(());
        }
        let kind_ok = match frame {
            ChannelFrame::Data { .. } | ChannelFrame::MaxChannelData { .. } => self.reliable,
            ChannelFrame::Datagram { .. } | ChannelFrame::KeepAlive { .. } => !self.reliable,
            _ => false,
        };
        if !kind_ok {
            conn.stats.channel_frames_ignored += 1;
            return Ok(());
        }
        let live = self.table.on_frame(frame, &mut self.actions);
        self.apply(conn, session, now);
        if !live {
            conn.stats.channel_frames_ignored += 1;
            return Ok(());
        }
        let stream = self.sid();
        let Some(io) = self.channels.get_mut(&id) else {
            return Ok(());
        };
        match *frame {
            ChannelFrame::Data {
                offset, data, fin, ..
            } => {
                // Past the stream's segment budget, out-of-order data is dropped (the peer
                // sends it again), so a peer cannot pin datagrams across many channels.
                if self.segments_held >= self.max_segments && offset > io.recv.delivered() {
                    return Err(MuxError::Busy);
                }
                let before = io.recv.buffered_segments();
                let data = datagram.slice_ref(data);
                let result = io.recv.on_data(offset, data, fin, |bytes| {
                    conn.emit(Event::ChannelData {
                        session,
                        stream,
                        channel: ChannelId(id),
                        data: bytes,
                    })
                });
                self.segments_held =
                    (self.segments_held + io.recv.buffered_segments()).saturating_sub(before);
                match result {
                    Ok(true) => {
                        // The peer finished writing: every byte was delivered above.
                        conn.emit(Event::ChannelFinished {
                            session,
                            stream,
                            channel: ChannelId(id),
                        });
                        self.check_half_closed(id);
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(RecvError::FlowControl | RecvError::FinalSize) => {
                        Err(MuxError::FlowControl)
                    }
                    Err(RecvError::Busy) => Err(MuxError::Busy),
                }
            }
            ChannelFrame::MaxChannelData { max, .. } => {
                if max > io.send.max_data {
                    io.send.max_data = max;
                    self.requeue(id);
                }
                Ok(())
            }
            ChannelFrame::Datagram { data, .. } => {
                io.last_rx = now;
                let event = Event::ChannelData {
                    session,
                    stream,
                    channel: ChannelId(id),
                    data: datagram.slice_ref(data),
                };
                if !conn.emit_data(event) {
                    conn.stats.datagrams_dropped += 1;
                    crate::trace::log_debug!(
                        channel = id,
                        reason = "event queue full",
                        "channel datagram dropped"
                    );
                }
                Ok(())
            }
            ChannelFrame::KeepAlive { .. } => {
                io.last_rx = now;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The peer's control-stream credit.
    pub(crate) fn on_max_control_data(&mut self, max: u64) {
        if max > self.ctl_send.max_data {
            self.ctl_send.max_data = max;
        }
    }

    /// The application took `n` bytes of a channel's data: maybe renew its credit.
    pub(crate) fn on_consumed(&mut self, id: ChannelId, n: u64) -> bool {
        let renew = self
            .channels
            .get_mut(&id.0)
            .is_some_and(|io| io.recv.on_consumed(n).is_some());
        if renew {
            self.queue_credit(id.0);
        }
        renew
    }

    // ---- sending ----

    fn requeue(&mut self, id: u64) {
        if let Some(io) = self.channels.get_mut(&id) {
            if !io.queued {
                io.queued = true;
                self.ready.push_back(id);
            }
        }
    }

    fn queue_credit(&mut self, id: u64) {
        if let Some(io) = self.channels.get_mut(&id) {
            if !io.credit_queued {
                io.credit_queued = true;
                self.credit.push_back(id);
            }
        }
    }

    /// Drops channels that cannot send from the front of the ready queue; true if one
    /// that can is left (or control bytes wait).
    pub(crate) fn wants_to_send(&mut self) -> bool {
        if self.ctl_send.wants_to_send(u64::MAX) {
            return true;
        }
        while let Some(&id) = self.ready.front() {
            if let Some(io) = self.channels.get(&id) {
                let paused = self.table.remote_paused(ChannelId(id)) == Some(true);
                if io.send.wants_to_send(io.new_data_allowance(paused)) {
                    return true;
                }
            }
            self.ready.pop_front();
            self.turn_left = 0;
            if let Some(io) = self.channels.get_mut(&id) {
                io.queued = false;
            }
        }
        false
    }

    /// Like [`Self::wants_to_send`] without pruning: may be true for a channel that turns
    /// out to have nothing to send.
    pub(crate) fn may_want_to_send(&self) -> bool {
        self.ctl_send.wants_to_send(u64::MAX) || !self.ready.is_empty()
    }

    /// Whether the stream's plain data (channel 0) goes before the channels this turn;
    /// alternates, so neither starves the other.
    pub(crate) fn take_plain_turn(&mut self) -> bool {
        self.plain_turn = !self.plain_turn;
        self.plain_turn
    }

    /// Whether credit updates are due (they go even when the window is full).
    pub(crate) fn has_control(&mut self) -> bool {
        // Drop entries of channels closed since they were queued.
        while let Some(&id) = self.credit.front() {
            if self.channels.contains_key(&id) {
                break;
            }
            self.credit.pop_front();
        }
        self.ctl_credit_dirty || !self.credit.is_empty()
    }

    /// Writes due credit frames (MAX_CONTROL_DATA, MAX_CHANNEL_DATA) into `room` bytes.
    /// Returns whether it wrote any.
    pub(crate) fn emit_credit(
        &mut self,
        out: &mut BytesMut,
        mut room: usize,
        record: &mut SentPacket,
    ) -> bool {
        let mut wrote = false;
        if self.ctl_credit_dirty && room >= 11 {
            let frame = Frame::MaxControlData {
                stream: self.stream,
                max: self.ctl_recv.max_data,
            };
            room -= frame.encoded_len();
            frame.emit(out);
            record.push(SentFrame::MaxControlData(self.stream));
            self.ctl_credit_dirty = false;
            wrote = true;
        }
        // type, stream, two varints.
        while room >= 2 + 8 + 8 {
            let Some(id) = self.credit.pop_front() else {
                break;
            };
            let Some(io) = self.channels.get_mut(&id) else {
                continue;
            };
            io.credit_queued = false;
            let frame = ChannelFrame::MaxChannelData {
                stream: self.stream,
                channel: id,
                max: io.recv.max_data,
            };
            room -= frame.encoded_len();
            frame.emit(out);
            record.push(SentFrame::MaxChannelData(self.stream, id));
            wrote = true;
        }
        wrote
    }

    /// Writes one chunk into at most `room` bytes: control bytes first, else the channel
    /// whose turn it is. Returns whether it wrote anything.
    ///
    /// Channels take turns of [`QUANTUM`] bytes (deficit round-robin): long enough that
    /// consecutive packets copy from the same, cache-warm buffer, short enough that every
    /// channel with data gets its share within a few packets of each other's.
    pub(crate) fn emit_chunk(
        &mut self,
        out: &mut BytesMut,
        room: usize,
        record: &mut SentPacket,
    ) -> bool {
        if self.ctl_send.wants_to_send(u64::MAX) {
            let overhead = Frame::control_overhead(self.ctl_send.write_end(), room);
            if room <= overhead {
                return false;
            }
            if let Some(c) = self.ctl_send.next_chunk(room - overhead, u64::MAX) {
                Frame::emit_control_header(out, self.stream, c.offset, c.len);
                self.ctl_send.copy_chunk(c.offset, c.len, out);
                record.push(SentFrame::Control {
                    stream: self.stream,
                    offset: c.offset,
                    len: c.len as u32,
                });
                return true;
            }
        }
        while let Some(&id) = self.ready.front() {
            let Some(io) = self.channels.get_mut(&id) else {
                self.ready.pop_front();
                self.turn_left = 0;
                continue;
            };
            let paused = self.table.remote_paused(ChannelId(id)) == Some(true);
            let allowance = io.new_data_allowance(paused);
            if !io.send.wants_to_send(allowance) {
                io.queued = false;
                self.ready.pop_front();
                self.turn_left = 0;
                continue;
            }
            let overhead = ChannelFrame::data_overhead(id, io.send.write_end(), room);
            if room <= overhead {
                // No room in this packet: the turn goes on in the next one.
                return false;
            }
            let Some(c) = io.send.next_chunk(room - overhead, allowance) else {
                io.queued = false;
                self.ready.pop_front();
                self.turn_left = 0;
                continue;
            };
            ChannelFrame::emit_data_header(out, self.stream, id, c.offset, c.len, c.fin);
            io.send.copy_chunk(c.offset, c.len, out);
            record.push(SentFrame::ChannelData {
                stream: self.stream,
                channel: id,
                offset: c.offset,
                len: c.len as u32,
                fin: c.fin,
            });
            let more = io.send.wants_to_send(allowance);
            if self.turn_left == 0 {
                self.turn_left = QUANTUM;
            }
            self.turn_left = self.turn_left.saturating_sub(c.len.max(1));
            if !more {
                io.queued = false;
                self.ready.pop_front();
                self.turn_left = 0;
            } else if self.turn_left == 0 {
                // Turn over: to the back of the line.
                self.ready.pop_front();
                self.ready.push_back(id);
            }
            return true;
        }
        false
    }

    /// A sent frame of this stream was acknowledged or lost.
    pub(crate) fn on_fate(&mut self, frame: SentFrame, fate: Fate) {
        match (frame, fate) {
            (
                SentFrame::ChannelData {
                    channel,
                    offset,
                    len,
                    fin,
                    ..
                },
                fate,
            ) => {
                let Some(io) = self.channels.get_mut(&channel) else {
                    return;
                };
                match fate {
                    Fate::Acked => {
                        io.send
                            .on_acked_pooled(offset, len as usize, fin, &mut self.pool);
                        if io.draining && io.send.is_done() {
                            self.drained.push_back(channel);
                        } else if io.finished && io.send.is_done() {
                            self.check_half_closed(channel);
                        } else if io.want_writable && io.send.free() > 0 {
                            self.writable.push(channel);
                        }
                    }
                    Fate::Lost => {
                        io.send.on_lost(offset, len as usize, fin);
                        self.requeue(channel);
                    }
                }
            }
            (SentFrame::Control { offset, len, .. }, Fate::Acked) => {
                self.ctl_send.on_acked(offset, len as usize, false);
            }
            (SentFrame::Control { offset, len, .. }, Fate::Lost) => {
                self.ctl_send.on_lost(offset, len as usize, false);
            }
            (SentFrame::MaxChannelData(_, channel), Fate::Lost) => self.queue_credit(channel),
            (SentFrame::MaxControlData(_), Fate::Lost) => self.ctl_credit_dirty = true,
            _ => {}
        }
    }

    /// After acknowledgements: wake writers, send the CLOSE of drained channels, and
    /// process control records that waited for room.
    pub(crate) fn after_progress(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
    ) -> Result<(), MuxError> {
        for id in core::mem::take(&mut self.writable) {
            let Some(io) = self.channels.get_mut(&id) else {
                continue;
            };
            if io.want_writable && !io.draining {
                io.want_writable = false;
                conn.emit(Event::ChannelWritable {
                    session,
                    stream: self.sid(),
                    channel: ChannelId(id),
                });
            }
        }
        while let Some(&id) = self.drained.front() {
            if self.check_room().is_err() {
                break;
            }
            self.drained.pop_front();
            if self.remove_channel(id) {
                self.write_record(&OwnedChannelFrame {
                    stream: self.stream,
                    channel: ChannelId(id),
                    kind: ControlKind::Close(CloseReason::Normal),
                });
            }
        }
        if self.has_backlog() {
            return self.process_backlog(conn, session, now);
        }
        Ok(())
    }

    /// The stream is being closed: refuse new writes from now on; what was written still
    /// goes out (the stream's close waits for [`Mux::is_flushed`]).
    pub(crate) fn flush_for_close(&mut self) {
        self.closing = true;
    }

    /// Every channel's data, and every control record, has been acknowledged: the peer
    /// has all of it, so the stream may be closed (and its channels closed Normal) without
    /// cutting a transfer short.
    pub(crate) fn is_flushed(&self) -> bool {
        self.draining == 0
            && self.ctl_send.all_acked()
            && self.channels.values().all(|io| io.send.all_acked())
    }

    // ---- unreliable keepalive ----

    /// The earliest keepalive or idle deadline (unreliable streams).
    pub(crate) fn next_timeout(&self) -> Instant {
        self.timer
    }

    /// Keepalive and idle timers: returns the channels owing a KEEPALIVE in `keepalives`,
    /// and closes (with Timeout) the ones that heard nothing for `idle_timeout`.
    pub(crate) fn on_timeout(
        &mut self,
        conn: &mut Conn,
        session: SessionId,
        now: Instant,
        keepalives: &mut Vec<u64>,
    ) {
        if self.reliable || now < self.timer {
            return;
        }
        let (keepalive, idle) = (self.cfg.keepalive_interval, self.cfg.idle_timeout);
        let mut next = Instant::FAR_FUTURE;
        let mut timed_out = Vec::new();
        for (&id, io) in &mut self.channels {
            if self.table.state(ChannelId(id)) != Some(ChannelState::Open) {
                continue;
            }
            if now >= io.last_rx + idle {
                timed_out.push(id);
                continue;
            }
            if now >= io.last_tx + keepalive {
                keepalives.push(id);
                io.last_tx = now;
            }
            next = next.min(io.last_rx + idle).min(io.last_tx + keepalive);
        }
        for id in timed_out {
            if self
                .close(conn, session, now, ChannelId(id), CloseReason::Timeout)
                .is_err()
            {
                // No room for the CLOSE yet: try again shortly.
                next = next.min(now + keepalive / 8);
            } else {
                conn.stats.channel_timeouts += 1;
                crate::trace::log_debug!("unreliable channel silent: closed with Timeout");
            }
        }
        self.timer = next;
    }

    /// The largest datagram one `write_channel` can carry on an unreliable stream, given
    /// the largest payload of a stream datagram frame.
    pub(crate) fn max_datagram(&self, id: ChannelId, stream_max: usize) -> usize {
        // A stream DATAGRAM frame's overhead is 4; a channel DATAGRAM's is 2 + two varints.
        let overhead = 2 + varint::encoded_len(id.0) + varint::encoded_len(stream_max as u64);
        (stream_max + Frame::DATAGRAM_OVERHEAD).saturating_sub(overhead)
    }

    pub(crate) fn is_reliable(&self) -> bool {
        self.reliable
    }
}
