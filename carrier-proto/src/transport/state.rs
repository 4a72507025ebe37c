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
use super::rtt::GRANULARITY;
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
    /// This side finished first (vs. the peer): decides the Closed reason.
    pub(crate) closed_locally: bool,
    /// The application closed the stream as a whole (not only its writing half): it is
    /// Closed once our data and FIN are acknowledged, and the peer is told with
    /// CLOSE(Normal), whatever it still had to send.
    pub(crate) closing: bool,
    /// `StreamAcknowledged` was reported.
    pub(crate) acknowledged: bool,
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
            closing: false,
            acknowledged: false,
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
    /// Bytes of those packets.
    eliciting_bytes_since_ack: usize,
    /// Acknowledge at once after this many ack-eliciting bytes: the packet threshold in
    /// base-size packets (so a large packet — an MTU probe, or data after discovery raised
    /// the size — counts as the several small ones it replaces, as TCP acknowledges every
    /// second full-sized segment by bytes). Without it, one jumbo packet that fills the
    /// sender's window waits out the whole ACK delay.
    ack_bytes_threshold: usize,
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
            eliciting_bytes_since_ack: 0,
            ack_bytes_threshold: (config.ack_eliciting_threshold as usize)
                .saturating_mul(max_datagram),
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

    /// Path MTU discovery raised the largest datagram (frames and overhead) to
    /// `max_datagram`: the controller and the pacer count in it from now on.
    pub(crate) fn on_mtu_update(&mut self, max_datagram: usize) {
        self.cc.on_mtu_update(max_datagram);
        self.pacer.on_mtu_update(max_datagram);
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

    /// A packet of `bytes` arrived: note it for acknowledgement. Returns false for a
    /// duplicate.
    pub(crate) fn on_packet_received(
        &mut self,
        now: Instant,
        pn: u64,
        ack_eliciting: bool,
        bytes: usize,
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
        self.eliciting_bytes_since_ack = self.eliciting_bytes_since_ack.saturating_add(bytes);
        let immediate = !new
            || !in_order
            || self.eliciting_since_ack >= self.config.ack_eliciting_threshold
            || self.eliciting_bytes_since_ack >= self.ack_bytes_threshold;
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
        self.eliciting_bytes_since_ack = 0;
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
        let rtt = &self.recovery.rtt;
        if rtt.has_sample() && rtt.min() < GRANULARITY {
            // A path shorter than the drivers' timer granularity (loopback, a LAN): a pacing
            // wait, typically microseconds here, becomes a ~1 ms sleep, so pacing would turn
            // each round trip into a millisecond stall (measured: the first 256 KiB over
            // loopback took 3.9 ms paced, 1.2 ms not). The window still bounds the burst,
            // and on such a path a window is a fraction of a millisecond of data.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::congestion::{CongestionAlgorithm, minimum_window};

    const BASE: usize = 1180;

    #[test]
    fn acks_wait_for_two_packets_or_two_packets_worth_of_bytes() {
        let t0 = Instant::ZERO + Duration::from_millis(1);
        let config = TransportConfig::default();
        let delay = config.recovery.max_ack_delay;
        // One base-size packet: the ACK may wait for a second.
        let mut t = Transport::new(&config, BASE);
        t.on_packet_received(t0, 0, true, BASE);
        assert!(!t.ack_due(t0));
        assert!(t.ack_due(t0 + delay));
        // A second one: at once.
        t.on_packet_received(t0, 1, true, BASE);
        assert!(t.ack_due(t0));
        // One packet as big as two (an MTU probe, a jumbo packet): at once too, or a sender
        // whose window it filled would wait out the delay.
        let mut t = Transport::new(&config, BASE);
        t.on_packet_received(t0, 0, true, 2 * BASE);
        assert!(t.ack_due(t0));
        // An ACK sent starts the count again.
        t.on_ack_sent();
        t.on_packet_received(t0, 1, true, BASE);
        assert!(!t.ack_due(t0));
    }

    #[test]
    fn paths_shorter_than_the_timer_granularity_are_not_paced() {
        let t0 = Instant::ZERO + Duration::from_millis(1);
        for algorithm in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Bbr] {
            for (rtt, paced) in [
                (Duration::from_micros(200), false),
                (Duration::from_millis(20), true),
            ] {
                let config = TransportConfig {
                    congestion: algorithm,
                    ..TransportConfig::default()
                };
                let mut t = Transport::new(&config, BASE);
                t.recovery
                    .rtt
                    .update(rtt, Duration::ZERO, config.recovery.max_ack_delay);
                // The bucket spent: a paced path waits, a short one sends.
                t.pacer.on_sent(t0, 1 << 30);
                assert_eq!(
                    t.pacing_delay(t0, BASE).is_some(),
                    paced,
                    "{algorithm:?} at {rtt:?}"
                );
            }
        }
    }

    #[test]
    fn a_raised_mtu_resizes_the_controllers_units() {
        let t0 = Instant::ZERO + Duration::from_millis(1);
        for algorithm in [
            CongestionAlgorithm::NewReno,
            CongestionAlgorithm::Cubic,
            CongestionAlgorithm::Bbr,
        ] {
            let config = TransportConfig {
                congestion: algorithm,
                ..TransportConfig::default()
            };
            let mut t = Transport::new(&config, BASE);
            t.on_mtu_update(9_000);
            assert!(t.cc.window() >= minimum_window(9_000), "{algorithm:?}");
            // Persistent congestion collapses the window to the minimum, in the new units.
            t.cc.on_sent(t0, 9_000);
            t.cc.on_congestion_event(t0 + Duration::from_secs(1), t0, 9_000, true);
            assert_eq!(t.cc.window(), minimum_window(9_000), "{algorithm:?}");
        }
    }
}
