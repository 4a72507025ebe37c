//! [`Transport`]: one session's reliability state — packet-number space, ACKs to send,
//! loss recovery, congestion control, pacing and connection-level flow control. The
//! per-stream halves live in [`Reliable`].

use alloc::boxed::Box;
use core::time::Duration;

use super::ack::AckRanges;
use super::config::{INITIAL_CONNECTION_CREDIT, INITIAL_STREAM_CREDIT, TransportConfig};
use super::congestion::Controller;
use super::pacing::Pacer;
use super::recovery::Recovery;
use super::recv_stream::RecvStream;
use super::send_stream::SendStream;
use crate::time::Instant;

/// A reliable stream's two halves and what it owes the peer.
#[derive(Debug)]
pub(crate) struct Reliable {
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
    /// Our stream credit changed (or the peer is blocked): send MAX_STREAM_DATA.
    pub(crate) credit_dirty: bool,
    /// We told the peer we are blocked at this limit.
    pub(crate) blocked_at: Option<u64>,
    /// A write was refused or cut short: report `Writable` when room frees up.
    pub(crate) want_writable: bool,
    /// Highest offset received (connection flow control counts new bytes by it).
    pub(crate) recv_high: u64,
    /// The application closed it (vs. the peer): decides the Closed reason.
    pub(crate) closed_locally: bool,
}

impl Reliable {
    pub(crate) fn new(config: &TransportConfig) -> Self {
        let window = config.stream_receive_window.max(INITIAL_STREAM_CREDIT);
        let mut recv = RecvStream::new(window, config.max_reassembly_segments);
        // The full window is granted (and enforced) from the start; the peer assumes only the
        // initial credit until our first MAX_STREAM_DATA tells it more.
        recv.max_data = window;
        Reliable {
            send: SendStream::new(config.send_buffer, INITIAL_STREAM_CREDIT),
            recv,
            credit_dirty: window > INITIAL_STREAM_CREDIT,
            blocked_at: None,
            want_writable: false,
            recv_high: 0,
            closed_locally: false,
        }
    }

    /// Both directions finished: our FIN acknowledged and the peer's delivered.
    pub(crate) fn is_closed(&self) -> bool {
        self.send.is_done() && self.recv.is_finished()
    }
}

/// One session's transport state.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) config: TransportConfig,
    pub(crate) recovery: Recovery,
    pub(crate) cc: Box<dyn Controller>,
    pub(crate) pacer: Pacer,
    /// Packet numbers received.
    pub(crate) received: AckRanges,
    /// Recent packets refused for lack of room (not acknowledged; their data comes again in
    /// new packets): a network copy of one is dropped, not processed twice.
    refused: alloc::collections::VecDeque<u64>,
    /// When the largest received packet arrived (for the ACK delay field).
    pub(crate) largest_received_at: Instant,
    /// Something arrived that we have not acknowledged.
    pub(crate) ack_pending: bool,
    /// Ack-eliciting packets since our last ACK.
    pub(crate) eliciting_since_ack: u32,
    /// When the pending ACK must go out at the latest.
    pub(crate) ack_deadline: Option<Instant>,
    /// Connection credit the peer granted us (new stream bytes in total).
    pub(crate) peer_max_data: u64,
    /// New stream bytes we sent in total.
    pub(crate) data_sent: u64,
    /// Connection credit we granted.
    pub(crate) local_max_data: u64,
    /// New stream bytes received in total (by highest offsets).
    pub(crate) data_received: u64,
    /// Delivered bytes the application has taken.
    pub(crate) data_consumed: u64,
    /// Send MAX_DATA.
    pub(crate) max_data_dirty: bool,
    /// We told the peer we are blocked at this connection limit.
    pub(crate) blocked_at: Option<u64>,
    /// Probe packets owed after a probe timeout.
    pub(crate) probes: u8,
    /// Round-robin position among streams with data.
    pub(crate) next_stream: usize,
    /// Data waits for the pacer until then.
    pub(crate) pacing_until: Option<Instant>,
}

impl Transport {
    pub(crate) fn new(config: &TransportConfig, max_datagram: usize) -> Self {
        let window = config.receive_window.max(INITIAL_CONNECTION_CREDIT);
        Transport {
            recovery: Recovery::new(config.recovery, config.initial_rtt),
            cc: config.congestion.build(max_datagram),
            pacer: Pacer::new(max_datagram),
            received: AckRanges::new(config.max_ack_ranges),
            refused: alloc::collections::VecDeque::new(),
            largest_received_at: Instant::ZERO,
            ack_pending: false,
            eliciting_since_ack: 0,
            ack_deadline: None,
            peer_max_data: INITIAL_CONNECTION_CREDIT,
            data_sent: 0,
            local_max_data: window,
            data_received: 0,
            data_consumed: 0,
            max_data_dirty: window > INITIAL_CONNECTION_CREDIT,
            blocked_at: None,
            probes: 0,
            next_stream: 0,
            pacing_until: None,
            config: config.clone(),
        }
    }

    /// Connection credit left for new stream bytes.
    pub(crate) fn conn_credit(&self) -> u64 {
        self.peer_max_data.saturating_sub(self.data_sent)
    }

    /// Whether packet `pn` was received (and processed) before.
    pub(crate) fn is_duplicate(&self, pn: u64) -> bool {
        pn < self.received.floor() || self.received.contains(pn) || self.was_refused(pn)
    }

    /// Whether packet `pn` was refused for lack of room (see [`Self::on_packet_refused`]).
    pub(crate) fn was_refused(&self, pn: u64) -> bool {
        self.refused.contains(&pn)
    }

    /// Packet `pn` was processed but refused: remember it (the newest 64) so that a copy is
    /// not processed again (its datagrams would be delivered twice).
    pub(crate) fn on_packet_refused(&mut self, pn: u64) {
        if self.refused.len() >= 64 {
            self.refused.pop_front();
        }
        self.refused.push_back(pn);
    }

    /// A packet arrived: note it for acknowledgement. Returns false for a duplicate.
    pub(crate) fn on_packet_received(
        &mut self,
        now: Instant,
        pn: u64,
        ack_eliciting: bool,
    ) -> bool {
        let in_order = self.received.largest().is_none_or(|l| pn == l + 1);
        let new = self.received.insert(pn);
        if self.received.largest() == Some(pn) {
            self.largest_received_at = now;
        }
        if !ack_eliciting {
            return new;
        }
        // Duplicates are acknowledged again (our earlier ACK may have been lost).
        self.ack_pending = true;
        self.eliciting_since_ack += 1;
        let immediate =
            !new || !in_order || self.eliciting_since_ack >= self.config.ack_eliciting_threshold;
        let deadline = if immediate {
            now
        } else {
            now + self.config.recovery.max_ack_delay
        };
        self.ack_deadline = Some(self.ack_deadline.map_or(deadline, |d| d.min(deadline)));
        new
    }

    /// The ACK delay to report, in microseconds.
    pub(crate) fn ack_delay_micros(&self, now: Instant) -> u64 {
        u64::try_from((now - self.largest_received_at).as_micros()).unwrap_or(u64::MAX)
    }

    /// An ACK went out.
    pub(crate) fn on_ack_sent(&mut self) {
        self.ack_pending = false;
        self.eliciting_since_ack = 0;
        self.ack_deadline = None;
    }

    /// Whether an ACK must go out now (alone if nothing else is to be sent).
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.ack_pending && self.ack_deadline.is_some_and(|d| now >= d)
    }

    /// The application took `n` bytes: renew connection credit at half a window. Returns
    /// whether it did.
    pub(crate) fn on_consumed(&mut self, n: u64) -> bool {
        self.data_consumed = (self.data_consumed + n).min(self.data_received);
        let window = self.config.receive_window.max(INITIAL_CONNECTION_CREDIT);
        let target = self.data_consumed + window;
        if target.saturating_sub(self.local_max_data) >= window / 2 {
            self.local_max_data = target;
            self.max_data_dirty = true;
            return true;
        }
        false
    }

    /// Whether the congestion window has room for a packet of `bytes`.
    pub(crate) fn window_allows(&self, bytes: usize) -> bool {
        self.recovery.bytes_in_flight + bytes <= self.cc.window()
    }

    /// When the pacer lets a packet of `bytes` out (None: now).
    pub(crate) fn pacing_delay(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        if !self.config.pacing {
            return None;
        }
        if let Some(rate) = self.cc.pacing_rate() {
            // The pacer's rate is 5/4 · window / rtt: this window over one second is `rate`.
            let window = usize::try_from(rate.saturating_mul(4) / 5).unwrap_or(usize::MAX);
            return self
                .pacer
                .delay(now, bytes, window.max(1), Duration::from_secs(1));
        }
        let rtt = if self.recovery.rtt.has_sample() {
            self.recovery.rtt.smoothed()
        } else {
            Duration::ZERO
        };
        self.pacer.delay(now, bytes, self.cc.window(), rtt)
    }
}
