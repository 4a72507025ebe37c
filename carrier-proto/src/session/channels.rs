//! The session's side of channels: the application's channel calls, routing channel and
//! control frames to their stream's [`Mux`], and the keepalive of unreliable channels.

use alloc::vec::Vec;
use bytes::Bytes;

use super::Conn;
use super::Session;
use crate::channel::{
    ChannelError, ChannelFrame, ChannelId, ChannelState, ControlCall, Mux, MuxError,
};
use crate::error::Error;
use crate::packet::Frame;
use crate::stream::StreamId;
use crate::time::Instant;
use crate::transport::send_stream::Payload;
use crate::types::{CloseReason, StreamState};

/// Most KEEPALIVE frames put in one packet (each is at most 11 bytes).
const KEEPALIVES_PER_PACKET: usize = 64;

impl Session {
    /// The stream's channels, for a call that needs a Connected MULTIPLEXING stream.
    fn mux_mut(&mut self, stream: StreamId, op: &'static str) -> Result<&mut Mux, Error> {
        let s = self
            .streams
            .get_mut(stream.index())
            .ok_or(Error::UnknownStream)?;
        if !s.is_multiplexing() {
            return Err(ChannelError::NotMultiplexing.into());
        }
        if s.state != StreamState::Connected {
            return Err(Error::StreamState { op, state: s.state });
        }
        s.mux
            .as_deref_mut()
            .ok_or(Error::StreamState { op, state: s.state })
    }

    fn mux_ref(&self, stream: StreamId) -> Result<&Mux, Error> {
        let s = self.stream(stream).ok_or(Error::UnknownStream)?;
        if !s.is_multiplexing() {
            return Err(ChannelError::NotMultiplexing.into());
        }
        s.mux.as_deref().ok_or(Error::StreamState {
            op: "channel",
            state: s.state,
        })
    }

    pub(crate) fn open_channel(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        cookie: &[u8],
    ) -> Result<ChannelId, Error> {
        let id = self.id;
        Ok(self
            .mux_mut(stream, "open_channel")?
            .open(conn, id, now, cookie)?)
    }

    /// Accept, refuse, pend or resume: the channel calls that send one control record.
    pub(crate) fn channel_control(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
        call: ControlCall,
    ) -> Result<(), Error> {
        let id = self.id;
        let op = match call {
            ControlCall::Accept => "accept_channel",
            ControlCall::Refuse => "refuse_channel",
            ControlCall::Pend => "pend_channel",
            ControlCall::Resume => "resume_channel",
        };
        Ok(self
            .mux_mut(stream, op)?
            .control(conn, id, now, channel, call)?)
    }

    pub(crate) fn close_channel(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
        reason: CloseReason,
    ) -> Result<(), Error> {
        let id = self.id;
        Ok(self
            .mux_mut(stream, "close_channel")?
            .close(conn, id, now, channel, reason)?)
    }

    pub(crate) fn finish_channel(
        &mut self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.mux_mut(stream, "finish_channel")?.finish(channel)
    }

    pub(crate) fn channel_state(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<ChannelState, Error> {
        Ok(self.mux_ref(stream)?.state(channel)?)
    }

    pub(crate) fn channel_count(&self, stream: StreamId) -> Result<usize, Error> {
        Ok(self.mux_ref(stream)?.len())
    }

    pub(crate) fn channel_paused_by_peer(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<bool, Error> {
        Ok(self.mux_ref(stream)?.paused_by_peer(channel)?)
    }

    pub(crate) fn channel_writable_bytes(
        &self,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<usize, Error> {
        Ok(self.mux_ref(stream)?.writable_bytes(channel)?)
    }

    /// The largest datagram one `write_channel` on an unreliable stream's channel carries.
    pub(crate) fn max_channel_datagram_size(
        &self,
        conn: &Conn,
        stream: StreamId,
        channel: ChannelId,
    ) -> Result<usize, Error> {
        let mux = self.mux_ref(stream)?;
        if mux.is_reliable() {
            return Err(ChannelError::WrongStreamKind.into());
        }
        Ok(mux.max_datagram(channel, self.max_datagram_size(conn, stream)?))
    }

    /// `write_channel`: bytes into a reliable channel's buffer, or one datagram on an
    /// unreliable stream's channel.
    pub(crate) fn write_channel(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        channel: ChannelId,
        payload: Payload<'_>,
    ) -> Result<usize, Error> {
        let mux = self.mux_mut(stream, "write_channel")?;
        if mux.is_reliable() {
            return mux.write(channel, payload);
        }
        let data = payload.as_slice();
        mux.check_send(channel)?;
        let max = self.max_channel_datagram_size(conn, stream, channel)?;
        if data.len() > max {
            return Err(Error::PayloadTooLarge {
                len: data.len(),
                max,
            });
        }
        self.send_datagram(conn, now, stream, Some(channel), data)
    }

    /// The application took `n` bytes of a channel's data out of the event queue.
    pub(crate) fn on_channel_consumed(
        &mut self,
        stream: StreamId,
        channel: ChannelId,
        n: u64,
    ) -> bool {
        self.streams
            .get_mut(stream.index())
            .and_then(|s| s.mux.as_deref_mut())
            .is_some_and(|m| m.on_consumed(channel, n))
    }

    // ---- frames from the peer ----

    /// A DATA, MAX_CHANNEL_DATA, DATAGRAM or KEEPALIVE frame.
    pub(crate) fn on_channel_frame(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        frame: &ChannelFrame<'_>,
        datagram: &Bytes,
    ) {
        let index = usize::from(frame.stream());
        let id = self.id;
        let Some(mux) = self.live_mux(index) else {
            conn.stats.channel_frames_ignored += 1;
            return;
        };
        let result = mux.on_frame(conn, id, now, frame, datagram);
        self.on_mux_result(conn, now, index, result);
    }

    /// A CONTROL frame: bytes of the stream's control stream.
    pub(crate) fn on_control_frame(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: u8,
        offset: u64,
        data: Bytes,
    ) {
        let index = usize::from(stream);
        let id = self.id;
        let Some(mux) = self.live_mux(index) else {
            conn.stats.channel_frames_ignored += 1;
            return;
        };
        let result = mux.on_control(conn, id, now, offset, data);
        self.on_mux_result(conn, now, index, result);
    }

    /// MAX_CONTROL_DATA.
    pub(crate) fn on_max_control_data(&mut self, stream: u8, max: u64) {
        if let Some(mux) = self.live_mux(usize::from(stream)) {
            mux.on_max_control_data(max);
        }
    }

    /// The mux of a Connected stream, if it has one.
    fn live_mux(&mut self, index: usize) -> Option<&mut Mux> {
        self.streams
            .get_mut(index)
            .filter(|s| s.state == StreamState::Connected)
            .and_then(|s| s.mux.as_deref_mut())
    }

    /// Counts a peer's channel violation; a broken control stream aborts the stream (the
    /// two sides could no longer agree on which channels exist).
    pub(crate) fn on_mux_result(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        index: usize,
        result: Result<(), MuxError>,
    ) {
        match result {
            Ok(()) => {}
            Err(MuxError::FlowControl) => {
                conn.stats.flow_control_violations += 1;
                crate::trace::log_debug!(
                    stream = index,
                    "channel data refused: breaks flow control"
                );
            }
            Err(MuxError::Busy) => self.refused_rx = true,
            Err(MuxError::BadControl) => {
                conn.stats.channel_violations += 1;
                crate::trace::log_warn!(
                    stream = index,
                    "malformed channel control stream: aborting the stream"
                );
                if let Some(s) = self.streams.get(index) {
                    let stream = s.id;
                    let _ = self.abort_stream(conn, now, stream);
                }
            }
        }
    }

    // ---- timers ----

    /// The earliest channel keepalive or idle deadline.
    pub(crate) fn channel_timeout(&self) -> Instant {
        self.streams
            .iter()
            .filter(|s| s.state == StreamState::Connected)
            .filter_map(|s| s.mux.as_deref())
            .map(Mux::next_timeout)
            .min()
            .unwrap_or(Instant::FAR_FUTURE)
    }

    /// Unreliable channels: send due keepalives, close the ones whose peer went silent.
    pub(crate) fn on_channel_timeout(&mut self, conn: &mut Conn, now: Instant) {
        let id = self.id;
        let mut keepalives = Vec::new();
        for i in 0..self.streams.len() {
            let s = &mut self.streams[i];
            let Some(mux) = s
                .mux
                .as_deref_mut()
                .filter(|_| s.state == StreamState::Connected)
            else {
                continue;
            };
            if now < mux.next_timeout() {
                continue;
            }
            keepalives.clear();
            mux.on_timeout(conn, id, now, &mut keepalives);
            let stream = s.id.0;
            for batch in keepalives.chunks(KEEPALIVES_PER_PACKET) {
                let frames: Vec<Frame<'_>> = batch
                    .iter()
                    .map(|&channel| Frame::Channel(ChannelFrame::KeepAlive { stream, channel }))
                    .collect();
                self.send_frames(conn, now, &frames);
            }
        }
    }
}
