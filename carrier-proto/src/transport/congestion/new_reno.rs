//! NewReno, as RFC 9002 §7 and Appendix B describe it for QUIC.
//!
//! Slow start until the first loss, then additive increase (one datagram per window of
//! acknowledged bytes) and multiplicative decrease (halving) once per recovery period.

use alloc::boxed::Box;

use super::{Controller, initial_window, minimum_window};
use crate::time::Instant;
use crate::transport::rtt::RttEstimator;

/// RFC 9002 §7.3.2 `kLossReductionFactor`, as a fraction (numerator, denominator) so the
/// reduction stays in integer math.
const LOSS_REDUCTION: (usize, usize) = (1, 2);

/// The RFC 9002 NewReno congestion controller.
#[derive(Clone, Debug)]
pub struct NewReno {
    max_datagram: usize,
    window: usize,
    /// `usize::MAX` until the first congestion event: slow start runs until then.
    ssthresh: usize,
    /// When the current recovery period began (RFC 9002 `congestion_recovery_start_time`).
    /// `None` before the first loss and after persistent congestion, so that no packet
    /// counts as "sent before the recovery started".
    recovery_start: Option<Instant>,
    /// Acknowledged bytes not yet turned into window growth in congestion avoidance. The
    /// RFC's `max_datagram·acked/window` rounds to zero for large windows in integer math;
    /// counting bytes until a whole window has been acked adds exactly one datagram per
    /// window, which is the same growth without the stall.
    bytes_acked: usize,
}

impl NewReno {
    /// A controller for datagrams of at most `max_datagram` bytes, starting at the initial
    /// window (RFC 9002 §7.2).
    pub fn new(max_datagram: usize) -> Self {
        NewReno {
            max_datagram,
            window: initial_window(max_datagram),
            ssthresh: usize::MAX,
            recovery_start: None,
            bytes_acked: 0,
        }
    }

    /// The slow-start threshold (`usize::MAX` before the first congestion event).
    // Inspection for tests and diagnostics; the send/receive paths do not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    /// RFC 9002 `InCongestionRecovery`: a packet sent no later than the start of the
    /// current recovery period belongs to the flight that caused it.
    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }
}

impl Controller for NewReno {
    fn on_sent(&mut self, _now: Instant, _bytes: usize) {
        // NewReno reacts to acks and losses only; bytes in flight are the recovery layer's.
    }

    fn on_ack(
        &mut self,
        _now: Instant,
        sent: Instant,
        bytes: usize,
        app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        // An ack for the flight that was already punished says nothing new about capacity,
        // and an ack of an app-limited packet proves nothing about the unused part of the
        // window (RFC 9002 §7.8).
        if self.in_recovery(sent) || app_limited {
            return;
        }
        if self.window < self.ssthresh {
            // Slow start: the window grows by what was acknowledged, doubling per RTT.
            self.window = self.window.saturating_add(bytes);
        } else {
            // Congestion avoidance: one datagram per window's worth of acknowledged bytes.
            self.bytes_acked = self.bytes_acked.saturating_add(bytes);
            if self.bytes_acked >= self.window {
                self.bytes_acked -= self.window;
                self.window = self.window.saturating_add(self.max_datagram);
            }
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        _lost_bytes: usize,
        persistent: bool,
    ) {
        // One reduction per recovery period: losses of packets sent before it started are
        // the same congestion signal (RFC 9002 §7.3.2, Appendix B.6).
        if !self.in_recovery(sent) {
            self.recovery_start = Some(now);
            self.ssthresh = self.window / LOSS_REDUCTION.1 * LOSS_REDUCTION.0;
            self.window = self.ssthresh.max(minimum_window(self.max_datagram));
            self.bytes_acked = 0;
        }
        if persistent {
            // RFC 9002 §7.6.2 / Appendix B.8: collapse to the minimum and forget the
            // recovery period, so that slow start resumes with the next ack.
            self.window = minimum_window(self.max_datagram);
            self.recovery_start = None;
            self.bytes_acked = 0;
        }
    }

    fn on_mtu_update(&mut self, max_datagram: usize) {
        self.max_datagram = max_datagram;
        self.window = self.window.max(minimum_window(max_datagram));
    }

    fn window(&self) -> usize {
        self.window
    }

    fn name(&self) -> &'static str {
        "NewReno"
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::sim;
    use super::*;

    const MSS: usize = 1200;
    const RTT: Duration = Duration::from_millis(100);

    fn rtt() -> RttEstimator {
        let mut r = RttEstimator::default();
        r.update(RTT, Duration::ZERO, Duration::ZERO);
        r
    }

    /// Acks `bytes` in datagram-sized pieces, each sent one RTT before `now`.
    fn ack(cc: &mut NewReno, now: Instant, bytes: usize, app_limited: bool) {
        let r = rtt();
        for _ in 0..bytes / MSS {
            cc.on_ack(
                now,
                Instant::from_nanos(now.as_nanos() - RTT.as_nanos() as u64),
                MSS,
                app_limited,
                &r,
            );
        }
    }

    #[test]
    fn starts_at_the_initial_window() {
        let cc = NewReno::new(MSS);
        assert_eq!(cc.window(), initial_window(MSS));
        assert_eq!(cc.window(), 12_000);
        assert_eq!(cc.ssthresh(), usize::MAX);
        assert_eq!(cc.name(), "NewReno");
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO + RTT;
        for round in 1..=5 {
            let w = cc.window();
            ack(&mut cc, now, w, false);
            assert_eq!(cc.window(), 2 * w, "round {round}");
            now += RTT;
        }
        assert_eq!(cc.window(), initial_window(MSS) * 32);
    }

    #[test]
    fn loss_halves_once_per_recovery_period() {
        let mut cc = NewReno::new(MSS);
        let t1 = Instant::ZERO + RTT;
        ack(&mut cc, t1, 100 * MSS, false);
        let w = cc.window();
        assert_eq!(w, 110 * MSS);

        let t2 = t1 + RTT;
        cc.on_congestion_event(t2, t1, MSS, false);
        assert_eq!(cc.window(), w / 2);
        assert_eq!(cc.ssthresh(), w / 2);

        // More losses from the same flight (sent before the recovery started): no change.
        cc.on_congestion_event(
            t2 + Duration::from_millis(5),
            t1 + Duration::from_millis(50),
            3 * MSS,
            false,
        );
        cc.on_congestion_event(t2 + Duration::from_millis(6), t2, MSS, false);
        assert_eq!(cc.window(), w / 2);

        // Acks of that flight don't grow the window either.
        cc.on_ack(t2 + Duration::from_millis(7), t2, MSS, false, &rtt());
        assert_eq!(cc.window(), w / 2);

        // A loss of a packet sent after the recovery started is a new congestion event.
        cc.on_congestion_event(t2 + RTT, t2 + Duration::from_millis(1), MSS, false);
        assert_eq!(cc.window(), w / 4);
    }

    #[test]
    fn never_below_the_minimum_window() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO;
        for _ in 0..10 {
            let sent = now;
            now += RTT;
            cc.on_congestion_event(now, sent + Duration::from_millis(1), MSS, false);
        }
        assert_eq!(cc.window(), minimum_window(MSS));
    }

    #[test]
    fn congestion_avoidance_adds_one_datagram_per_window() {
        let mut cc = NewReno::new(MSS);
        let t = Instant::ZERO + RTT;
        ack(&mut cc, t, 90 * MSS, false);
        cc.on_congestion_event(t, t, MSS, false);
        let w = cc.window();
        assert_eq!(w, 50 * MSS);
        // Acks of packets sent after the recovery start: one window of them adds one MSS,
        // and growth does not stall on integer division.
        let t = t + RTT;
        ack(&mut cc, t + RTT, w, false);
        assert_eq!(cc.window(), w + MSS);
        ack(&mut cc, t + RTT * 2, w, false);
        assert_eq!(cc.window(), w + MSS, "the remainder carries over");
        ack(&mut cc, t + RTT * 2, 2 * MSS, false);
        assert_eq!(cc.window(), w + 2 * MSS);
    }

    #[test]
    fn app_limited_acks_do_not_grow() {
        let mut cc = NewReno::new(MSS);
        let w = cc.window();
        ack(&mut cc, Instant::ZERO + RTT, 50 * MSS, true);
        assert_eq!(cc.window(), w);
        // In congestion avoidance too.
        cc.on_congestion_event(Instant::ZERO + RTT, Instant::ZERO, MSS, false);
        let w = cc.window();
        ack(&mut cc, Instant::ZERO + RTT * 3, 50 * w, true);
        assert_eq!(cc.window(), w);
    }

    #[test]
    fn persistent_congestion_collapses_and_restarts_slow_start() {
        let mut cc = NewReno::new(MSS);
        let t = Instant::ZERO + RTT;
        ack(&mut cc, t, 100 * MSS, false);
        cc.on_congestion_event(t + RTT, t, 10 * MSS, true);
        assert_eq!(cc.window(), minimum_window(MSS));
        assert_eq!(cc.ssthresh(), 55 * MSS);
        // Even within a recovery period, persistent congestion still collapses the window.
        let mut cc2 = NewReno::new(MSS);
        cc2.on_congestion_event(t, t, MSS, false);
        cc2.on_congestion_event(t + RTT, t, MSS, true);
        assert_eq!(cc2.window(), minimum_window(MSS));
        // The recovery period is forgotten: the next ack grows the window (slow start).
        ack(&mut cc, t + RTT * 3, 2 * MSS, false);
        assert_eq!(cc.window(), 2 * minimum_window(MSS));
    }

    #[test]
    fn clone_box_copies_state() {
        let mut cc = NewReno::new(MSS);
        ack(&mut cc, Instant::ZERO + RTT, 5 * MSS, false);
        let b = cc.clone_box();
        assert_eq!(b.window(), cc.window());
    }

    #[test]
    fn fills_a_pipe() {
        let u = sim::utilization(&mut NewReno::new(MSS));
        assert!(u >= 0.9, "utilization {u}");
    }
}

/// A deterministic packet-level "fluid" model of one bottleneck, shared by the controllers'
/// tests: can a controller keep a pipe full?
#[cfg(test)]
pub(super) mod sim {
    use alloc::collections::VecDeque;
    use core::time::Duration;

    use crate::time::Instant;
    use crate::transport::congestion::Controller;
    use crate::transport::rtt::RttEstimator;

    const MSS: usize = 1200;
    /// 100 Mbit/s: one 1200-byte datagram every 96 µs.
    const TX_NS: u64 = 96_000;
    /// 40 ms of propagation delay, all of it after the bottleneck (acks come back free).
    const RTT_NS: u64 = 40_000_000;
    /// Drop-tail queue of one bandwidth-delay product (100 Mbit/s · 40 ms = 500 kB).
    const QUEUE: u64 = 500_000;
    const END_NS: u64 = 30_000_000_000;

    struct Packet {
        sent: u64,
        /// When its ack reaches the sender, or `None` if the queue dropped it.
        acked_at: Option<u64>,
    }

    /// Runs `cc` as a greedy sender through the bottleneck for 30 s of virtual time and
    /// returns the fraction of the link's capacity it used.
    pub(in crate::transport::congestion) fn utilization(cc: &mut dyn Controller) -> f64 {
        let mut rtt = RttEstimator::default();
        let mut flight: VecDeque<Packet> = VecDeque::new();
        let mut in_flight = 0usize;
        // When the link has finished sending everything queued so far.
        let mut link_free = 0u64;
        let mut delivered = 0u64;
        let mut now = 0u64;
        let at = Instant::from_nanos;
        loop {
            while in_flight + MSS <= cc.window() {
                let queued = link_free.saturating_sub(now) * MSS as u64 / TX_NS;
                let acked_at = if queued + MSS as u64 > QUEUE {
                    None
                } else {
                    link_free = link_free.max(now) + TX_NS;
                    if link_free <= END_NS {
                        delivered += MSS as u64;
                    }
                    Some(link_free + RTT_NS)
                };
                cc.on_sent(at(now), MSS);
                in_flight += MSS;
                flight.push_back(Packet {
                    sent: now,
                    acked_at,
                });
            }
            // Dropped packets ahead of the next delivered one are declared lost when its
            // ack arrives (FIFO: acks come back in sending order).
            let (mut lost, mut newest_lost) = (0usize, 0u64);
            while flight.front().is_some_and(|p| p.acked_at.is_none()) {
                let Some(p) = flight.pop_front() else { break };
                lost += MSS;
                newest_lost = p.sent;
            }
            match flight.pop_front() {
                Some(Packet {
                    sent,
                    acked_at: Some(acked_at),
                }) => {
                    now = acked_at;
                    if now > END_NS + RTT_NS {
                        break;
                    }
                    in_flight -= MSS;
                    rtt.update(
                        Duration::from_nanos(now - sent),
                        Duration::ZERO,
                        Duration::ZERO,
                    );
                    cc.on_ack(at(now), at(sent), MSS, false, &rtt);
                }
                // Everything outstanding was dropped: no ack will come; a probe timeout
                // would declare it lost.
                _ => now = now.max(newest_lost + 2 * RTT_NS),
            }
            if lost > 0 {
                in_flight -= lost;
                cc.on_congestion_event(at(now), at(newest_lost), lost, false);
            }
        }
        delivered as f64 / (END_NS / TX_NS * MSS as u64) as f64
    }
}
