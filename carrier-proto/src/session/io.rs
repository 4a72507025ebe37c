//! Packets in and out of a session: checks and acks, data frames, keepalive, idle timeout.

use bytes::Bytes;
use core::net::SocketAddr;

use super::Conn;
use super::reliable::Extra;
use super::{Session, SessionPhase};
use crate::error::Error;
use crate::event::Event;
use crate::packet::{
    Check, CheckAck, Frame, FrameIter, Header, PacketType, SESSION_SCOPE, TRANSACTION_ID_LEN,
};
use crate::stream::{StateReason, StreamId};
use crate::time::Instant;
use crate::transport::send_stream::Payload;
use crate::types::{CloseReason, StreamState};

/// A datagram routed to this session, checksum verified, with where it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received<'a> {
    pub(crate) now: Instant,
    /// Our address it arrived on.
    pub(crate) local: SocketAddr,
    /// The sender's address.
    pub(crate) remote: SocketAddr,
    pub(crate) header: &'a Header,
    /// Between header and trailer.
    pub(crate) payload: &'a [u8],
    /// The whole datagram, for zero-copy slices of it.
    pub(crate) datagram: &'a Bytes,
}

/// Why the endpoint dropped a packet after routing it to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drop {
    /// Malformed payload or frame.
    Malformed,
    /// Valid but not expected now, or from an address that is not the peer's.
    Unexpected,
    /// For a session that has ended (late packets, the extra copies of a CLOSE).
    Ended,
}

impl Session {
    /// Sends one packet on the selected pair (or the given addresses).
    fn send(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        (local, remote): (SocketAddr, SocketAddr),
        destination: u64,
        packet_type: PacketType,
        payload: impl FnOnce(&mut bytes::BytesMut),
    ) {
        let header = Header {
            packet_type,
            destination,
            packet_number: self.take_packet_number(),
        };
        let pn_len = self.packet_number_len(header.packet_number);
        let size = conn.transmit(
            local,
            remote,
            &header,
            pn_len,
            self.protection.as_deref_mut(),
            conn.config.max_udp_payload,
            payload,
        );
        if size == 0 {
            self.keys_exhausted(conn);
        }
        self.last_tx = now;
    }

    fn send_check(&mut self, conn: &mut Conn, now: Instant, pair: usize) {
        let (Some(p), Some(remote)) = (self.path.pairs.get(pair), self.remote.as_ref()) else {
            return;
        };
        let addrs = (p.local.address, p.remote.address);
        let transaction = p.transaction;
        let destination = remote.id;
        let ufrag = remote.ufrag.clone();
        let source = self.id.0;
        self.send(conn, now, addrs, destination, PacketType::Check, |out| {
            Check {
                source,
                transaction,
                ufrag: &ufrag,
            }
            .emit(out)
        });
    }

    /// Sends frames at once on the selected pair (with a pending ACK, if any); false if
    /// there is no path yet.
    pub(super) fn send_frames(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        frames: &[Frame<'_>],
    ) -> bool {
        self.build_packet(
            conn,
            now,
            Extra {
                frames,
                stream_data: false,
                ping: false,
            },
        )
    }

    /// Timers: request timeout, check retransmission, connect timeout, keepalive, idle.
    pub(crate) fn handle_timeout(&mut self, conn: &mut Conn, now: Instant) {
        match self.phase {
            SessionPhase::Requested { deadline } if now >= deadline => {
                self.request_timed_out(conn);
            }
            SessionPhase::Started => {
                if self.path.timed_out(now) {
                    self.path.stop();
                    self.set_states_from(
                        conn,
                        StreamState::Connecting,
                        StreamState::Failed,
                        Some(StateReason::ConnectTimeout),
                    );
                    return;
                }
                for pair in self.path.due_checks(now, conn.config.check_interval_max) {
                    self.send_check(conn, now, pair);
                }
                if self.path.selected().is_some() {
                    self.on_recovery_timeout(conn, now);
                    if self.phase == SessionPhase::Ended {
                        return;
                    }
                }
                if self.path.selected().is_some() && self.any_connected() {
                    if now >= self.last_rx + conn.config.idle_timeout {
                        conn.stats.idle_timeouts += 1;
                        crate::trace::log_info!(idle = ?conn.config.idle_timeout, "session idle: closing with Timeout");
                        let frame = Frame::Close {
                            scope: SESSION_SCOPE,
                            reason: CloseReason::Timeout,
                        };
                        self.send_frames(conn, now, &[frame]);
                        self.closing = None;
                        self.end(conn, StreamState::Closed, StateReason::IdleTimeout);
                        return;
                    } else if now >= self.last_tx + conn.config.keepalive_interval
                        && !self.transport.recovery.has_ack_eliciting_in_flight()
                    {
                        self.send_frames(conn, now, &[Frame::Ping]);
                    }
                    if self.phase == SessionPhase::Started {
                        self.on_channel_timeout(conn, now);
                    }
                }
                self.check_closing(conn, now);
            }
            _ => {}
        }
    }

    /// A packet for this session, already routed and checksum-verified.
    pub(crate) fn handle_packet(
        &mut self,
        conn: &mut Conn,
        packet: Received<'_>,
    ) -> Result<(), Drop> {
        if self.phase == SessionPhase::Ended {
            return Err(Drop::Ended);
        }
        let Received {
            now,
            local,
            remote,
            payload,
            datagram,
            ..
        } = packet;
        match packet.header.packet_type {
            PacketType::Check => self.on_check(conn, now, local, remote, payload),
            PacketType::CheckAck => self.on_check_ack(conn, now, remote, payload),
            PacketType::Data => {
                self.select_on_authenticated_data(conn, local, remote);
                self.on_data(
                    conn,
                    now,
                    remote,
                    packet.header.packet_number,
                    payload,
                    datagram,
                )
            }
        }
    }

    /// The peer's check on this pair succeeded before ours did: with the packet
    /// authenticated by the session's keys, that is proof enough that the pair works (an
    /// unprotected packet is not: it waits for our own check).
    fn select_on_authenticated_data(
        &mut self,
        conn: &mut Conn,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        if self.phase == SessionPhase::Started
            && self.protection.is_some()
            && self.path.on_authenticated_data(local, remote)
        {
            self.on_path_selected(conn);
        }
    }

    /// A pair was just selected: size the path MTU search for it, and the streams are
    /// Connected.
    fn on_path_selected(&mut self, conn: &mut Conn) {
        if let Some(p) = self.path.selected() {
            crate::trace::log_info!(
                local = %p.local.address,
                remote = %p.remote.address,
                local_kind = ?p.local.kind,
                remote_kind = ?p.remote.kind,
                "path selected"
            );
            let _ = p;
        }
        if self.path.selected().is_some_and(|p| p.is_loopback()) {
            self.mtu.raise_ceiling(
                conn.config
                    .loopback_mtu_ceiling
                    .min(crate::config::MAX_UDP_PAYLOAD),
            );
        }
        self.set_states_from(conn, StreamState::Connecting, StreamState::Connected, None);
    }

    fn on_check(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        payload: &[u8],
    ) -> Result<(), Drop> {
        let check = Check::parse(payload).map_err(|_| Drop::Malformed)?;
        // The ufrag proves the sender read our description; the source id must be the
        // peer's once we know it.
        if check.ufrag != self.local_ufrag
            || self.remote.as_ref().is_some_and(|r| r.id != check.source)
        {
            return Err(Drop::Unexpected);
        }
        let ack = CheckAck {
            transaction: check.transaction,
            observed: remote,
        };
        self.send(
            conn,
            now,
            (local, remote),
            check.source,
            PacketType::CheckAck,
            |out| ack.emit(out),
        );
        if self.phase == SessionPhase::Started {
            self.last_rx = now;
            let rng = &mut conn.rng;
            let triggered = self.path.on_check(local, remote, || {
                let mut t = [0; TRANSACTION_ID_LEN];
                rng.fill(&mut t);
                t
            });
            if let Some(pair) = triggered {
                self.send_check(conn, now, pair);
            }
        }
        Ok(())
    }

    fn on_check_ack(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        remote: SocketAddr,
        payload: &[u8],
    ) -> Result<(), Drop> {
        let ack = CheckAck::parse(payload).map_err(|_| Drop::Malformed)?;
        if self.phase != SessionPhase::Started {
            return Err(Drop::Unexpected);
        }
        self.last_rx = now;
        if self.path.on_ack(&ack.transaction, remote) {
            self.on_path_selected(conn);
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        remote: SocketAddr,
        packet_number: u64,
        payload: &[u8],
        datagram: &Bytes,
    ) -> Result<(), Drop> {
        // Until a path is selected we could not answer (or acknowledge): the peer
        // retransmits.
        if self.phase != SessionPhase::Started
            || !self.path.is_known_source(remote)
            || self.path.selected().is_none()
        {
            return Err(Drop::Unexpected);
        }
        // Validate every frame before acting on any, so a bad packet changes nothing.
        let mut eliciting = false;
        for f in FrameIter::new(payload) {
            match f {
                Err(_) => return Err(Drop::Malformed),
                Ok(Frame::Ack(_) | Frame::Padding) => {}
                Ok(_) => eliciting = true,
            }
        }
        self.last_rx = now;
        if self.transport.is_duplicate(packet_number) {
            // Seen before: acknowledged again (unless we refused it), not processed again
            // (so a duplicated datagram is not delivered twice).
            if !self.transport.was_refused(packet_number) {
                self.transport
                    .on_packet_received(now, packet_number, eliciting, payload.len());
            }
            conn.stats.dropped_duplicate += 1;
            crate::trace::log_trace!(packet_number, reason = "duplicate", "packet dropped");
            return Ok(());
        }
        self.refused_rx = false;
        for frame in FrameIter::new(payload).flatten() {
            match frame {
                Frame::Padding | Frame::Ping => {}
                Frame::Datagram { stream, data } => self.on_datagram(conn, stream, data, datagram),
                Frame::Close { scope, reason } => self.on_close(conn, scope, reason),
                Frame::Ack(ack) => self.on_ack_frame(conn, now, &ack),
                Frame::Channel(c) => self.on_channel_frame(conn, now, &c, datagram),
                Frame::Control {
                    stream,
                    offset,
                    data,
                } => self.on_control_frame(conn, now, stream, offset, datagram.slice_ref(data)),
                Frame::MaxControlData { stream, max } => self.on_max_control_data(stream, max),
                Frame::Stream {
                    stream,
                    offset,
                    data,
                    fin,
                } => {
                    if !self.on_stream_frame(conn, stream, offset, datagram.slice_ref(data), fin) {
                        conn.stats.flow_control_violations += 1;
                        crate::trace::log_debug!(
                            stream,
                            offset,
                            reason = "breaks flow control or final size",
                            "stream frame refused"
                        );
                    }
                }
                credit => self.on_credit_frame(&credit),
            }
            if self.phase == SessionPhase::Ended {
                break;
            }
        }
        if self.refused_rx {
            // Some data had no room: leave the packet unacknowledged, so the peer declares
            // it lost and sends its data again (what we did take is deduplicated then).
            conn.stats.packets_refused_busy += 1;
            crate::trace::log_debug!(
                packet_number,
                "no room for out-of-order data: packet left unacknowledged"
            );
            self.transport.on_packet_refused(packet_number);
        } else {
            self.transport
                .on_packet_received(now, packet_number, eliciting, payload.len());
        }
        self.check_closing(conn, now);
        Ok(())
    }

    fn on_datagram(&mut self, conn: &mut Conn, stream: u8, data: &[u8], datagram: &Bytes) {
        let deliverable = self
            .streams
            .get(usize::from(stream))
            .is_some_and(|s| s.state == StreamState::Connected && !s.is_reliable());
        if !deliverable {
            conn.stats.datagrams_dropped += 1;
            crate::trace::log_debug!(
                stream,
                len = data.len(),
                reason = "stream not Connected, unknown or reliable",
                "datagram dropped"
            );
            return;
        }
        // Zero-copy: the event's bytes are a slice of the received datagram.
        let data = datagram.slice_ref(data);
        if !conn.emit_data(Event::StreamData {
            session: self.id,
            stream: StreamId(stream),
            data,
        }) {
            conn.stats.datagrams_dropped += 1;
            crate::trace::log_debug!(stream, reason = "event queue full", "datagram dropped");
        }
    }

    /// The largest payload one `write` on `stream` can carry on this path.
    pub(crate) fn max_datagram_size(&self, conn: &Conn, stream: StreamId) -> Result<usize, Error> {
        self.stream(stream).ok_or(Error::UnknownStream)?;
        Ok(conn
            .config
            .max_udp_payload
            .saturating_sub(self.overhead() + Frame::DATAGRAM_OVERHEAD)
            .min(u16::MAX as usize))
    }

    /// Sends `data` as one datagram on a Connected unreliable stream.
    pub(crate) fn write(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        payload: Payload<'_>,
    ) -> Result<usize, Error> {
        let s = self.stream(stream).ok_or(Error::UnknownStream)?;
        if s.state != StreamState::Connected {
            return Err(Error::StreamState {
                op: "write",
                state: s.state,
            });
        }
        if s.is_reliable() {
            return self.write_reliable(stream, payload);
        }
        let data = payload.as_slice();
        let max = self.max_datagram_size(conn, stream)?;
        if data.len() > max {
            return Err(Error::PayloadTooLarge {
                len: data.len(),
                max,
            });
        }
        self.send_datagram(conn, now, stream, None, data)
    }
}
