//! The session's side of the transport: building DATA packets (ACKs, credit, stream data,
//! probes) and taking in the reliability frames.
//!
//! Packets with stream data are built on demand, when the driver polls for output
//! (`Endpoint::poll_output` → [`Session::poll_transmit`]): the congestion window, the pacer
//! and flow control decide then how much goes out, and nothing queues in between.

use bytes::{Bytes, BytesMut};
use core::net::SocketAddr;
use core::time::Duration;

use super::Conn;
use super::{Session, SessionPhase};
use crate::error::Error;
use crate::event::Event;
use crate::packet::{AckFrame, Frame, Header, PacketType, SESSION_SCOPE};
use crate::stream::{StateReason, StreamId};
use crate::time::Instant;
use crate::transport::ack;
use crate::transport::recovery::{Fate, Outcome, SentFrame, SentPacket};
use crate::transport::recv_stream::RecvError;
use crate::transport::send_stream::Payload;
use crate::transport::state::Transport;
use crate::transport::varint;
use crate::types::StreamState;

/// What else goes into a packet besides ACK, credit and (optionally) stream data.
pub(crate) struct Extra<'a> {
    pub(crate) frames: &'a [Frame<'a>],
    /// Fill the rest with stream data.
    pub(crate) stream_data: bool,
    /// Make the packet ack-eliciting even if nothing else is (a probe).
    pub(crate) ping: bool,
}

impl Session {
    /// Builds and queues one DATA packet if something is due now. Returns whether it did.
    pub(crate) fn poll_transmit(&mut self, conn: &mut Conn, now: Instant) -> bool {
        // Re-armed below if pacing still holds data back.
        self.transport.pacing_until = None;
        if self.phase != SessionPhase::Started || self.path.selected().is_none() {
            return false;
        }
        if let Some(size) = self.mtu_probe_due() {
            if self.send_mtu_probe(conn, now, size) {
                return true;
            }
        }
        if self.closing.is_some() {
            // A graceful close whose last CLOSE frames went out in the previous packet ends
            // now rather than when the next packet arrives.
            self.check_closing(conn, now);
            if self.phase != SessionPhase::Started {
                return !conn.transmits.is_empty();
            }
        }
        if self.poll_datagram(conn, now) {
            return true;
        }
        let mtu = self.mtu.current();
        self.process_channel_backlogs(conn, now);
        let blocked_due = self.blocked_frames_due();
        let t = &mut self.transport;
        let probe = t.probes > 0;
        let control = t.max_data_dirty
            || self.streams.iter().any(|s| s.close_pending.is_some())
            || self
                .streams
                .iter()
                .any(|s| s.reliable.as_ref().is_some_and(|r| r.credit_dirty))
            || self
                .streams
                .iter_mut()
                .any(|s| s.mux.as_mut().is_some_and(|m| m.has_control()));
        let credit = t.conn_credit();
        let has_data = self.streams.iter_mut().any(|s| {
            s.state == StreamState::Connected
                && (s
                    .reliable
                    .as_ref()
                    .is_some_and(|r| r.send.wants_to_send(credit))
                    || s.mux.as_mut().is_some_and(|m| m.wants_to_send()))
        });
        let has_data = has_data || self.early_copy(now);
        let t = &mut self.transport;
        let mut send_data = false;
        // A packet bigger than the whole window (after discovery raised the size) still
        // goes when nothing is in flight: the window is in bytes, never below one packet.
        let window_ok = t.window_allows(mtu) || t.recovery.bytes_in_flight == 0;
        if has_data && (probe || window_ok) {
            match t.pacing_delay(now, mtu) {
                Some(at) if !probe => t.pacing_until = Some(at),
                _ => {
                    t.pacing_until = None;
                    send_data = true;
                }
            }
        }
        if !(send_data || control || probe || t.ack_due(now) || blocked_due) {
            return false;
        }
        if probe {
            t.probes -= 1;
        }
        self.build_packet(
            conn,
            now,
            Extra {
                frames: &[],
                stream_data: send_data,
                ping: probe,
            },
        )
    }

    /// A path MTU probe to send now, if one is due (sessions with reliable streams only:
    /// datagrams keep the base size).
    fn mtu_probe_due(&self) -> Option<usize> {
        let reliable = self
            .streams
            .iter()
            .any(|s| s.state == StreamState::Connected && s.reliable.is_some());
        if reliable {
            self.mtu.next_probe()
        } else {
            None
        }
    }

    /// The selected pair's ends, the header of the next DATA packet on it (taking its
    /// packet number) and the bytes of packet number to send, if a path is selected.
    fn next_data_header(&mut self) -> Option<(SocketAddr, SocketAddr, Header, usize)> {
        let pair = self.path.selected()?;
        let (local, to) = (pair.local.address, pair.remote.address);
        let destination = self.remote.as_ref()?.id;
        let header = Header {
            packet_type: PacketType::Data,
            destination,
            packet_number: self.take_packet_number(),
        };
        Some((
            local,
            to,
            header,
            self.packet_number_len(header.packet_number),
        ))
    }

    /// Sends a PING padded to a UDP payload of `size` on the selected pair. It is tracked
    /// for its ACK (or loss) but not in flight: the congestion window neither waits for it
    /// nor shrinks when it is lost.
    fn send_mtu_probe(&mut self, conn: &mut Conn, now: Instant, size: usize) -> bool {
        let Some((local, to, header, pn_len)) = self.next_data_header() else {
            return false;
        };
        let body = size.saturating_sub(self.overhead_with(pn_len)).max(1);
        let seal = self.protection.as_deref_mut();
        let sent = conn.transmit(local, to, &header, pn_len, seal, size, |out| {
            Frame::Ping.emit(out);
            // PADDING frames are single zero bytes.
            out.resize(out.len() + body - 1, 0);
        });
        if sent == 0 {
            self.keys_exhausted(conn);
            return false;
        }
        self.last_tx = now;
        let mut record = SentPacket::new(now, sent, true, false);
        record.in_flight = false;
        record.push(SentFrame::MtuProbe(size.min(usize::from(u16::MAX)) as u16));
        self.transport
            .recovery
            .on_sent(header.packet_number, record);
        self.mtu.on_probe_sent(size);
        conn.stats.mtu_probes_sent += 1;
        true
    }

    /// Early retransmission (see `TransportConfig::early_retransmit`): with nothing new to
    /// send and room in the window, queue the data of the oldest recent packet that has
    /// waited `delay` for its ACK. Returns whether something was queued.
    fn early_copy(&mut self, now: Instant) -> bool {
        let Some(delay) = self.transport.config.early_retransmit else {
            return false;
        };
        if !self.transport.window_allows(1) {
            return false;
        }
        let Some(p) = self.transport.recovery.take_early_copy(now, delay) else {
            return false;
        };
        requeue_copy(&mut self.streams, p.frames())
    }

    /// Whether we owe the peer a BLOCKED frame (we have data, no credit, and have not said so
    /// at this limit).
    fn blocked_frames_due(&self) -> bool {
        let t = &self.transport;
        let conn_blocked = t.conn_credit() == 0
            && t.blocked_at != Some(t.peer_max_data)
            && self.streams.iter().any(|s| {
                s.reliable
                    .as_ref()
                    .is_some_and(|r| r.send.write_end() > r.send.max_data)
                    && s.state == StreamState::Connected
            });
        conn_blocked
            || self.streams.iter().any(|s| {
                s.state == StreamState::Connected
                    && s.reliable.as_ref().is_some_and(|r| {
                        r.send.blocked_by_peer() && r.blocked_at != Some(r.send.max_data)
                    })
            })
    }

    /// Builds one DATA packet on the selected pair: a pending ACK, credit updates, BLOCKED
    /// frames, `extra`, and stream data if asked. Tracks it for recovery if ack-eliciting.
    /// Returns false if there is no path.
    pub(crate) fn build_packet(&mut self, conn: &mut Conn, now: Instant, extra: Extra<'_>) -> bool {
        let Some((local, to, header, pn_len)) = self.next_data_header() else {
            return false;
        };
        let budget = self
            .mtu
            .current()
            .saturating_sub(self.overhead_with(pn_len));
        let mut record = SentPacket::new(now, 0, false, false);
        let mut eliciting = false;
        let t = &mut self.transport;
        let streams = &mut self.streams;
        let seal = self.protection.as_deref_mut();
        let size = conn.transmit(
            local,
            to,
            &header,
            pn_len,
            seal,
            self.mtu.current(),
            |out| {
                let base = out.len();
                let room = |out: &BytesMut| budget.saturating_sub(out.len() - base);
                if t.ack_pending {
                    let delay = t.ack_delay_micros(now);
                    let max = t.config.max_ack_ranges;
                    // The type byte, then the ranges.
                    if ack::encoded_len(&t.received, delay, max) < room(out) {
                        out.extend_from_slice(&[crate::packet::frame_type::ACK]);
                        ack::encode(out, &t.received, delay, max);
                        t.on_ack_sent();
                    }
                }
                for f in extra.frames {
                    if f.encoded_len() <= room(out) {
                        f.emit(out);
                        eliciting |= !matches!(f, Frame::Padding);
                        if let Frame::Close { scope, reason } = *f {
                            if scope != SESSION_SCOPE {
                                record.push(SentFrame::Close(scope, reason));
                            }
                        }
                    }
                }
                for s in streams.iter_mut() {
                    let Some(reason) = s.close_pending else {
                        continue;
                    };
                    let close = Frame::Close {
                        scope: s.id.0,
                        reason,
                    };
                    if close.encoded_len() <= room(out) {
                        close.emit(out);
                        record.push(SentFrame::Close(s.id.0, reason));
                        s.close_pending = None;
                        eliciting = true;
                    }
                }
                let max_data = Frame::MaxData(t.local_max_data);
                if t.max_data_dirty && max_data.encoded_len() <= room(out) {
                    max_data.emit(out);
                    record.push(SentFrame::MaxData);
                    t.max_data_dirty = false;
                    eliciting = true;
                }
                for s in streams.iter_mut() {
                    let Some(r) = s.reliable.as_mut() else {
                        continue;
                    };
                    let credit = Frame::MaxStreamData {
                        stream: s.id.0,
                        max: r.recv.max_data,
                    };
                    if r.credit_dirty && credit.encoded_len() <= room(out) {
                        credit.emit(out);
                        record.push(SentFrame::MaxStreamData(s.id.0));
                        r.credit_dirty = false;
                        eliciting = true;
                    }
                    let blocked = Frame::StreamDataBlocked {
                        stream: s.id.0,
                        limit: r.send.max_data,
                    };
                    if s.state == StreamState::Connected
                        && r.send.blocked_by_peer()
                        && r.blocked_at != Some(r.send.max_data)
                        && blocked.encoded_len() <= room(out)
                    {
                        blocked.emit(out);
                        r.blocked_at = Some(r.send.max_data);
                        eliciting = true;
                    }
                }
                for s in streams.iter_mut() {
                    if let Some(m) = s.mux.as_mut() {
                        eliciting |= m.emit_credit(out, room(out), &mut record);
                    }
                }
                if extra.stream_data {
                    eliciting |=
                        fill_stream_data(t, streams, out, budget - (out.len() - base), &mut record);
                }
                if t.conn_credit() == 0 && t.blocked_at != Some(t.peer_max_data) && 9 <= room(out) {
                    let waiting = streams
                        .iter()
                        .any(|s| s.reliable.as_ref().is_some_and(|r| r.send.wants_to_send(1)));
                    if waiting {
                        Frame::DataBlocked(t.peer_max_data).emit(out);
                        t.blocked_at = Some(t.peer_max_data);
                        eliciting = true;
                    }
                }
                if extra.ping && !eliciting {
                    Frame::Ping.emit(out);
                    eliciting = true;
                }
            },
        );
        self.last_tx = now;
        if size == 0 {
            self.keys_exhausted(conn);
            return false;
        }
        if eliciting {
            let app_limited = !self.streams.iter().any(|s| {
                s.reliable
                    .as_ref()
                    .is_some_and(|r| r.send.wants_to_send(self.transport.conn_credit()))
                    || s.mux.as_ref().is_some_and(|m| m.may_want_to_send())
            });
            record.size = size.min(u16::MAX as usize) as u16;
            record.ack_eliciting = true;
            record.in_flight = true;
            record.app_limited = app_limited;
            self.transport.cc.on_sent(now, size);
            self.transport.pacer.on_sent(now, size);
            self.transport
                .recovery
                .on_sent(header.packet_number, record);
        }
        true
    }

    /// A received ACK frame: acknowledges and declares lost, feeds the controller, and
    /// wakes writers and finishes closes.
    pub(crate) fn on_ack_frame(&mut self, conn: &mut Conn, now: Instant, frame: &AckFrame<'_>) {
        let delay = Duration::from_micros(frame.ack_delay_micros.min(u64::from(u32::MAX)));
        let rtt = self.transport.recovery.rtt;
        let mtu_before = self.mtu.current();
        let t = &mut self.transport;
        let streams = &mut self.streams;
        let cc = &mut t.cc;
        let mtu = &mut self.mtu;
        let mut max_data_dirty = false;
        let ranges = frame.ranges().map_while(Result::ok);
        let outcome = t.recovery.on_ack(now, ranges, delay, |p, fate| {
            if fate == Fate::Acked && p.in_flight {
                cc.on_ack(now, p.time_sent, usize::from(p.size), p.app_limited, &rtt);
            }
            for f in p.frames() {
                apply_fate(streams, mtu, &mut max_data_dirty, f, fate);
            }
        });
        t.max_data_dirty |= max_data_dirty;
        on_losses(t, now, &outcome);
        if let Some(sample) = &outcome.rate_sample {
            t.cc.on_rate_sample(now, sample);
        }
        if self.mtu.current() != mtu_before {
            // An acknowledged probe raised the packet size (only acks raise it).
            let max_datagram = self.mtu.current().saturating_sub(crate::packet::OVERHEAD);
            self.transport.on_mtu_update(max_datagram);
        }
        self.after_progress(conn, now);
    }

    /// The loss or probe timer: resend what was lost, owe probes, or give up on the path.
    pub(crate) fn on_recovery_timeout(&mut self, conn: &mut Conn, now: Instant) {
        let t = &mut self.transport;
        if t.recovery.timeout().is_none_or(|at| now < at) {
            return;
        }
        let streams = &mut self.streams;
        let mtu = &mut self.mtu;
        let mut max_data_dirty = false;
        let (outcome, probe) = t.recovery.on_timeout(now, |p, fate| {
            for f in p.frames() {
                apply_fate(streams, mtu, &mut max_data_dirty, f, fate);
            }
        });
        t.max_data_dirty |= max_data_dirty;
        on_losses(t, now, &outcome);
        if probe {
            t.probes = 2;
            if let Some(p) = t.recovery.oldest_data_packet() {
                requeue_copy(streams, p.frames());
            }
        }
        if t.recovery.path_dead() {
            conn.stats.dead_paths += 1;
            crate::trace::log_warn!("path dead: no acknowledgement after the probe timeouts");
            self.end(conn, StreamState::Failed, StateReason::PathDead);
        }
    }

    /// After acknowledgements: report room to blocked writers, and close streams whose both
    /// directions finished.
    fn after_progress(&mut self, conn: &mut Conn, now: Instant) {
        for i in 0..self.streams.len() {
            let id = self.id;
            if let Some(m) = self.streams[i].mux.as_mut() {
                let result = m.after_progress(conn, id, now);
                self.on_mux_result(conn, now, i, result);
            }
            let s = &mut self.streams[i];
            let Some(r) = s.reliable.as_mut() else {
                continue;
            };
            if r.want_writable && r.send.free() > 0 && s.state == StreamState::Connected {
                r.want_writable = false;
                conn.emit(Event::Writable {
                    session: self.id,
                    stream: s.id,
                });
            }
            self.check_stream_closed(conn, i);
        }
    }

    /// A STREAM frame. Returns false if the peer broke flow control or the final size (the
    /// frame is then ignored and counted).
    pub(crate) fn on_stream_frame(
        &mut self,
        conn: &mut Conn,
        stream: u8,
        offset: u64,
        data: Bytes,
        fin: bool,
    ) -> bool {
        let id = self.id;
        let t = &mut self.transport;
        let Some(s) = self.streams.get_mut(usize::from(stream)) else {
            return false;
        };
        let Some(r) = s
            .reliable
            .as_mut()
            .filter(|_| s.state == StreamState::Connected)
        else {
            // Late data for a closed stream, or data before we saw the path work.
            return true;
        };
        let end = offset + data.len() as u64;
        let new_bytes = end.saturating_sub(r.recv_high);
        if t.data_received + new_bytes > t.local_max_data {
            return false;
        }
        let sid = s.id;
        let result = r.recv.on_data(offset, data, fin, |bytes| {
            conn.emit(Event::StreamData {
                session: id,
                stream: sid,
                data: bytes,
            })
        });
        match result {
            Ok(finished) => {
                r.recv_high = r.recv_high.max(end);
                t.data_received += new_bytes;
                if finished {
                    // Half-close: the peer is done writing; our side writes on until it
                    // finishes too (or closes).
                    conn.emit(Event::StreamFinished {
                        session: id,
                        stream: sid,
                    });
                    self.check_stream_closed(conn, usize::from(stream));
                }
                true
            }
            Err(RecvError::FlowControl | RecvError::FinalSize) => false,
            Err(RecvError::Busy) => {
                self.refused_rx = true;
                true
            }
        }
    }

    /// MAX_DATA / MAX_STREAM_DATA / *_BLOCKED frames.
    pub(crate) fn on_credit_frame(&mut self, frame: &Frame<'_>) {
        let t = &mut self.transport;
        match *frame {
            Frame::MaxData(max) if max > t.peer_max_data => {
                t.peer_max_data = max;
                t.blocked_at = None;
            }
            Frame::MaxStreamData { stream, max } => {
                if let Some(r) = self
                    .streams
                    .get_mut(usize::from(stream))
                    .and_then(|s| s.reliable.as_mut())
                {
                    if max > r.send.max_data {
                        r.send.max_data = max;
                        r.blocked_at = None;
                    }
                }
            }
            // The peer thinks it is out of credit: repeat ours (a lost update is recovered
            // this way — it is our zero-window probe answer).
            Frame::DataBlocked(_) => t.max_data_dirty = true,
            Frame::StreamDataBlocked { stream, .. } => {
                if let Some(r) = self
                    .streams
                    .get_mut(usize::from(stream))
                    .and_then(|s| s.reliable.as_mut())
                {
                    r.credit_dirty = true;
                }
            }
            _ => {}
        }
    }

    /// The application took `n` bytes of stream data out of the event queue. Returns
    /// whether new credit is now due to the peer (a packet to send).
    pub(crate) fn on_consumed(&mut self, stream: StreamId, n: u64) -> bool {
        let Some(r) = self
            .streams
            .get_mut(stream.index())
            .and_then(|s| s.reliable.as_mut())
        else {
            return false;
        };
        let renewed = r.recv.on_consumed(n).is_some();
        if renewed {
            r.credit_dirty = true;
        }
        self.transport.on_consumed(n) || renewed
    }

    /// `write` on a reliable stream: takes what fits the send buffer.
    pub(crate) fn write_reliable(
        &mut self,
        stream: StreamId,
        data: Payload<'_>,
    ) -> Result<usize, Error> {
        let r = self
            .streams
            .get_mut(stream.index())
            .and_then(|s| s.reliable.as_mut())
            .ok_or(Error::UnknownStream)?;
        if r.send.is_finishing() {
            return Err(Error::Finished);
        }
        let len = data.len();
        let n = r.send.write_payload(data);
        if n < len {
            r.want_writable = true;
        }
        if n == 0 && len > 0 {
            return Err(Error::WouldBlock);
        }
        Ok(n)
    }

    /// Room in a reliable stream's send buffer.
    pub(crate) fn writable_bytes(&self, stream: StreamId) -> Result<usize, Error> {
        let s = self.stream(stream).ok_or(Error::UnknownStream)?;
        Ok(s.reliable.as_ref().map_or(0, |r| r.send.free()))
    }

    /// Control records that waited for room (in our control stream or the event queue):
    /// process what fits now.
    fn process_channel_backlogs(&mut self, conn: &mut Conn, now: Instant) {
        let id = self.id;
        for i in 0..self.streams.len() {
            if let Some(m) = self.streams[i].mux.as_mut().filter(|m| m.has_backlog()) {
                let result = m.process_backlog(conn, id, now);
                self.on_mux_result(conn, now, i, result);
            }
        }
    }

    /// The earliest transport timer: loss/probe, ACK deadline, pacing.
    pub(crate) fn transport_timeout(&self) -> Instant {
        let t = &self.transport;
        let mut at = t.recovery.timeout().unwrap_or(Instant::FAR_FUTURE);
        if t.ack_pending {
            at = at.min(t.ack_deadline.unwrap_or(Instant::FAR_FUTURE));
        }
        if let Some(p) = t.pacing_until {
            at = at.min(p);
        }
        // The early-copy timer only counts when a copy could go out (nothing else to send,
        // room in the window); otherwise a due copy would wake us for nothing, forever.
        if let Some(delay) = t.config.early_retransmit {
            let credit = t.conn_credit();
            let idle = !self.streams.iter().any(|s| {
                s.state == StreamState::Connected
                    && (s
                        .reliable
                        .as_ref()
                        .is_some_and(|r| r.send.wants_to_send(credit))
                        || s.mux.as_ref().is_some_and(|m| m.may_want_to_send()))
            });
            if idle && t.window_allows(1) {
                if let Some(e) = t.recovery.early_copy_time(delay) {
                    at = at.min(e);
                }
            }
        }
        at
    }
}

/// Queues the data of a packet still in flight to be sent again (an early copy, or a
/// probe's retransmission); the first acknowledgement of either copy counts. Returns
/// whether anything was queued.
fn requeue_copy(
    streams: &mut [crate::stream::Stream],
    frames: impl Iterator<Item = SentFrame>,
) -> bool {
    let mut queued = false;
    for f in frames {
        let Some(s) = (match f {
            SentFrame::Stream { stream, .. }
            | SentFrame::ChannelData { stream, .. }
            | SentFrame::Control { stream, .. } => streams.get_mut(usize::from(stream)),
            _ => None,
        }) else {
            continue;
        };
        match f {
            SentFrame::Stream {
                offset, len, fin, ..
            } => {
                if let Some(r) = s.reliable.as_mut() {
                    r.send.on_lost(offset, len as usize, fin);
                    queued = true;
                }
            }
            _ => {
                if let Some(m) = s.mux.as_mut() {
                    m.on_fate(f, Fate::Lost);
                    queued = true;
                }
            }
        }
    }
    queued
}

/// Applies an acknowledged or lost frame to the stream it belongs to.
fn apply_fate(
    streams: &mut [crate::stream::Stream],
    mtu: &mut super::mtu::MtuDiscovery,
    max_data_dirty: &mut bool,
    f: SentFrame,
    fate: Fate,
) {
    match (f, fate) {
        (SentFrame::MtuProbe(size), fate) => {
            mtu.on_probe_fate(usize::from(size), fate == Fate::Acked)
        }
        (
            SentFrame::Stream {
                stream,
                offset,
                len,
                fin,
            },
            fate,
        ) => {
            if let Some(r) = streams
                .get_mut(usize::from(stream))
                .and_then(|s| s.reliable.as_mut())
            {
                match fate {
                    Fate::Acked => r.send.on_acked(offset, len as usize, fin),
                    Fate::Lost => r.send.on_lost(offset, len as usize, fin),
                }
            }
        }
        (
            SentFrame::ChannelData { stream, .. }
            | SentFrame::Control { stream, .. }
            | SentFrame::MaxChannelData(stream, _)
            | SentFrame::MaxControlData(stream),
            fate,
        ) => {
            if let Some(m) = streams
                .get_mut(usize::from(stream))
                .and_then(|s| s.mux.as_mut())
            {
                m.on_fate(f, fate);
            }
        }
        (SentFrame::MaxData, Fate::Lost) => *max_data_dirty = true,
        (SentFrame::Close(stream, reason), Fate::Lost) => {
            if let Some(s) = streams.get_mut(usize::from(stream)) {
                s.close_pending = Some(reason);
            }
        }
        (SentFrame::MaxStreamData(stream), Fate::Lost) => {
            if let Some(r) = streams
                .get_mut(usize::from(stream))
                .and_then(|s| s.reliable.as_mut())
            {
                r.credit_dirty = true;
            }
        }
        _ => {}
    }
}

/// Fills up to `room` bytes with stream data, round-robin over streams with something to
/// send (one chunk per stream per turn, so one bulk stream cannot starve the others). A
/// multiplexing stream's turn alternates between its plain data and its channels (which
/// take their own round-robin turns). Returns whether anything was written.
fn fill_stream_data(
    t: &mut crate::transport::state::Transport,
    streams: &mut [crate::stream::Stream],
    out: &mut BytesMut,
    room: usize,
    record: &mut SentPacket,
) -> bool {
    let n = streams.len();
    if n == 0 {
        return false;
    }
    let end = out.len() + room;
    let mut wrote = false;
    let mut idle_turns = 0;
    let mut i = t.next_stream % n;
    while idle_turns < n {
        let left = end - out.len();
        let s = &mut streams[i];
        i = (i + 1) % n;
        if s.state != StreamState::Connected {
            idle_turns += 1;
            continue;
        }
        let plain_first = s.mux.as_mut().is_none_or(|m| m.take_plain_turn());
        let turn = if plain_first {
            plain_chunk(t, s, out, left, record)
                || s.mux
                    .as_mut()
                    .is_some_and(|m| m.emit_chunk(out, left, record))
        } else {
            s.mux
                .as_mut()
                .is_some_and(|m| m.emit_chunk(out, left, record))
                || plain_chunk(t, s, out, left, record)
        };
        if turn {
            wrote = true;
            idle_turns = 0;
            t.next_stream = i;
        } else {
            idle_turns += 1;
        }
    }
    wrote
}

/// One chunk of a reliable stream's plain data (channel 0) into at most `left` bytes.
fn plain_chunk(
    t: &mut crate::transport::state::Transport,
    s: &mut crate::stream::Stream,
    out: &mut BytesMut,
    left: usize,
    record: &mut SentPacket,
) -> bool {
    let Some(r) = s.reliable.as_mut() else {
        return false;
    };
    let overhead = 3 + varint::encoded_len(r.send.write_end()) + varint::encoded_len(left as u64);
    if left <= overhead {
        return false;
    }
    let Some(c) = r.send.next_chunk(left - overhead, t.conn_credit()) else {
        return false;
    };
    Frame::emit_stream_header(out, s.id.0, c.offset, c.len, c.fin);
    r.send.copy_chunk(c.offset, c.len, out);
    t.data_sent += c.new_bytes as u64;
    record.push(SentFrame::Stream {
        stream: s.id.0,
        offset: c.offset,
        len: c.len as u32,
        fin: c.fin,
    });
    true
}

/// Tells the congestion controller of the packets an ACK or a timer declared lost (one
/// congestion event per episode), and logs it.
fn on_losses(t: &mut Transport, now: Instant, outcome: &Outcome) {
    let Some(sent) = outcome.newest_lost_sent else {
        return;
    };
    let before = t.cc.window();
    t.cc.on_congestion_event(now, sent, outcome.lost_bytes, outcome.persistent);
    crate::trace::log_debug!(
        lost_bytes = outcome.lost_bytes,
        persistent = outcome.persistent,
        window_before = before,
        window = t.cc.window(),
        "loss: congestion event"
    );
    let _ = before;
}
