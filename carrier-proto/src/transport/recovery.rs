//! Loss recovery (RFC 9002 §6): what we sent and not yet saw acknowledged, loss detection
//! by packet and time thresholds, and the probe timeout.
//!
//! Sent packets sit in a deque indexed by `pn − first` (packet numbers are consecutive per
//! session), so an ACK marks each packet in O(1). What a lost packet carried is handed back
//! frame by frame for retransmission as *new* frames in new packets (QUIC style): a packet is
//! never resent as is.

use alloc::collections::VecDeque;
use core::time::Duration;

use super::congestion::RateSample;
use super::rtt::RttEstimator;
use crate::time::Instant;

/// Something a packet carried that must be sent again if the packet is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SentFrame {
    /// Bytes of a reliable stream.
    Stream {
        stream: u8,
        offset: u64,
        len: u32,
        fin: bool,
    },
    /// A connection credit update (resend the current value).
    MaxData,
    /// A stream credit update (resend the current value).
    MaxStreamData(u8),
    /// A CLOSE of a stream, with its reason (sent again if lost, so the peer always learns
    /// of it). A session CLOSE is not tracked: the session is gone once it is sent.
    Close(u8, crate::types::CloseReason),
    /// Bytes of a channel of a reliable multiplexing stream.
    ChannelData {
        stream: u8,
        channel: u64,
        offset: u64,
        len: u32,
        fin: bool,
    },
    /// Bytes of a stream's channel control stream.
    Control { stream: u8, offset: u64, len: u32 },
    /// A channel credit update (resend the current value).
    MaxChannelData(u8, u64),
    /// A control-stream credit update (resend the current value).
    MaxControlData(u8),
    /// A path MTU probe of this UDP payload size (only PING and PADDING).
    MtuProbe(u16),
}

impl SentFrame {
    /// Stream, channel or control bytes (what early retransmission copies).
    pub(crate) fn is_data(&self) -> bool {
        matches!(
            self,
            SentFrame::Stream { .. } | SentFrame::ChannelData { .. } | SentFrame::Control { .. }
        )
    }
}

/// How many of the newest packets early retransmission looks at (it is for the tail of
/// sparse traffic, so the scan stays short).
const EARLY_WINDOW: usize = 16;

/// Frames per packet kept inline: a full packet usually carries one or two.
const INLINE_FRAMES: usize = 4;

/// A sent packet awaiting acknowledgement.
#[derive(Clone, Debug)]
pub(crate) struct SentPacket {
    pub(crate) time_sent: Instant,
    pub(crate) size: u16,
    /// Elicits an ACK (anything but a pure ACK).
    pub(crate) ack_eliciting: bool,
    /// Counts against the congestion window.
    pub(crate) in_flight: bool,
    /// Sent while the sender had less to send than the window allowed.
    pub(crate) app_limited: bool,
    /// Its stream data was already sent once more by early retransmission.
    pub(crate) copied: bool,
    /// Delivery-rate state when it was sent: bytes delivered so far, when the last of them
    /// was acknowledged, and when the flight it belongs to started.
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    frames: [Option<SentFrame>; INLINE_FRAMES],
    /// More frames than fit inline were in the packet: the rest are in `overflow`.
    overflow: alloc::vec::Vec<SentFrame>,
}

impl SentPacket {
    pub(crate) fn new(
        time_sent: Instant,
        size: usize,
        ack_eliciting: bool,
        app_limited: bool,
    ) -> Self {
        SentPacket {
            time_sent,
            size: size.min(u16::MAX as usize) as u16,
            ack_eliciting,
            in_flight: ack_eliciting,
            app_limited,
            copied: false,
            delivered: 0,
            delivered_time: time_sent,
            first_sent_time: time_sent,
            frames: [None; INLINE_FRAMES],
            overflow: alloc::vec::Vec::new(),
        }
    }

    /// Records a retransmittable frame.
    pub(crate) fn push(&mut self, f: SentFrame) {
        match self.frames.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(f),
            None => self.overflow.push(f),
        }
    }

    /// The retransmittable frames.
    pub(crate) fn frames(&self) -> impl Iterator<Item = SentFrame> + '_ {
        self.frames
            .iter()
            .flatten()
            .copied()
            .chain(self.overflow.iter().copied())
    }
}

/// What became of a sent packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The peer acknowledged it.
    Acked,
    /// It is declared lost: resend what it carried.
    Lost,
}

/// What an ACK or a timer found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Newly acknowledged packets' bytes in flight.
    pub(crate) acked_bytes: usize,
    /// Newly lost packets' bytes in flight.
    pub(crate) lost_bytes: usize,
    /// Send time of the newest lost packet.
    pub(crate) newest_lost_sent: Option<Instant>,
    /// The loss spanned longer than the persistent-congestion duration.
    pub(crate) persistent: bool,
    /// A delivery-rate sample from the newest acknowledged packet, if the ACK yielded one.
    pub(crate) rate_sample: Option<RateSample>,
}

/// Loss detection tuning (RFC 9002 constants, or KCP-style low-latency ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// A packet is lost once a packet this many numbers later is acknowledged (RFC: 3).
    pub packet_threshold: u64,
    /// A packet is lost once a later one is acked and this fraction of an RTT passed, in
    /// eighths (RFC: 9 = 9/8).
    pub time_threshold_eighths: u32,
    /// Probe timeout backoff per consecutive timeout, in tenths (RFC: 20 = ×2; KCP's fast
    /// mode: 15 = ×1.5).
    pub backoff_tenths: u32,
    /// Smallest probe timeout.
    pub min_pto: Duration,
    /// Largest probe timeout.
    pub max_pto: Duration,
    /// After this many consecutive probe timeouts without an ACK the path is dead (7 with
    /// ×2 backoff: about 30 s on a 100 ms path, before the 60 s idle timeout).
    pub max_ptos: u32,
    /// How long we may hold an ACK back (and what we tell the peer to expect of us).
    pub max_ack_delay: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            packet_threshold: 3,
            time_threshold_eighths: 9,
            backoff_tenths: 20,
            min_pto: Duration::from_millis(10),
            max_pto: Duration::from_secs(60),
            max_ptos: 7,
            max_ack_delay: Duration::from_millis(25),
        }
    }
}

impl RecoveryConfig {
    /// KCP "fast" mode ideas, still congestion controlled: immediate ACKs, retransmit after
    /// 2 later packets, 1.5× backoff, a lower probe floor.
    pub fn low_latency() -> Self {
        RecoveryConfig {
            packet_threshold: 2,
            time_threshold_eighths: 8,
            backoff_tenths: 15,
            min_pto: Duration::from_millis(5),
            max_ack_delay: Duration::from_millis(2),
            ..RecoveryConfig::default()
        }
    }
}

/// Sent-packet tracking and the loss/probe timers.
#[derive(Debug)]
pub(crate) struct Recovery {
    pub(crate) config: RecoveryConfig,
    pub(crate) rtt: RttEstimator,
    /// Packet number of `sent[0]`.
    first: u64,
    sent: VecDeque<Option<SentPacket>>,
    largest_acked: Option<u64>,
    /// Bytes of in-flight packets not yet acknowledged or lost.
    pub(crate) bytes_in_flight: usize,
    /// Ack-eliciting packets outstanding (for the probe timer).
    ack_eliciting_in_flight: usize,
    time_of_last_ack_eliciting: Option<Instant>,
    /// When the earliest not-yet-lost packet below `largest_acked` becomes lost by time.
    loss_time: Option<Instant>,
    /// Consecutive probe timeouts without an ACK.
    pub(crate) pto_count: u32,
    /// Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation): bytes
    /// acknowledged in total, when the last of them was, and when the current flight began.
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
}

impl Recovery {
    /// The largest packet number the peer has acknowledged.
    pub(crate) fn largest_acked(&self) -> Option<u64> {
        self.largest_acked
    }

    pub(crate) fn new(config: RecoveryConfig, initial_rtt: Duration) -> Self {
        Recovery {
            config,
            rtt: RttEstimator::new(initial_rtt),
            first: 0,
            sent: VecDeque::new(),
            largest_acked: None,
            bytes_in_flight: 0,
            ack_eliciting_in_flight: 0,
            time_of_last_ack_eliciting: None,
            loss_time: None,
            pto_count: 0,
            delivered: 0,
            delivered_time: Instant::ZERO,
            first_sent_time: Instant::ZERO,
        }
    }

    /// Records a sent packet. Packet numbers must be given in increasing order; gaps (packets
    /// that carried nothing to track, like checks) are filled with empty slots.
    pub(crate) fn on_sent(&mut self, pn: u64, mut packet: SentPacket) {
        if packet.in_flight {
            if self.bytes_in_flight == 0 {
                // A new flight after idle: rates are measured from here.
                self.first_sent_time = packet.time_sent;
                self.delivered_time = packet.time_sent;
            }
            packet.delivered = self.delivered;
            packet.delivered_time = self.delivered_time;
            packet.first_sent_time = self.first_sent_time;
        }
        if self.sent.is_empty() {
            self.first = pn;
        }
        while self.first + (self.sent.len() as u64) < pn {
            self.sent.push_back(None);
        }
        if packet.in_flight {
            self.bytes_in_flight += usize::from(packet.size);
        }
        if packet.ack_eliciting {
            self.ack_eliciting_in_flight += 1;
            self.time_of_last_ack_eliciting = Some(packet.time_sent);
        }
        self.sent.push_back(Some(packet));
    }

    fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let i = usize::try_from(pn.checked_sub(self.first)?).ok()?;
        let p = self.sent.get_mut(i)?.take()?;
        if p.in_flight {
            self.bytes_in_flight -= usize::from(p.size);
        }
        if p.ack_eliciting {
            self.ack_eliciting_in_flight -= 1;
        }
        Some(p)
    }

    fn trim(&mut self) {
        while let Some(None) = self.sent.front() {
            self.sent.pop_front();
            self.first += 1;
        }
    }

    /// The lowest and highest packet number we track.
    fn span(&self) -> (u64, u64) {
        (self.first, self.first + self.sent.len() as u64)
    }

    /// Processes acknowledged ranges (highest first). `on_acked` is called with each newly
    /// acknowledged packet; `on_lost` with each packet then found lost.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        ranges: impl Iterator<Item = core::ops::RangeInclusive<u64>>,
        ack_delay: Duration,
        mut on_packet: impl FnMut(&SentPacket, Fate),
    ) -> Outcome {
        let mut out = Outcome::default();
        let (lo, hi) = self.span();
        let mut largest_newly_acked: Option<(u64, Instant, bool)> = None;
        // The newest acknowledged in-flight packet's delivery-rate snapshot.
        let mut newest: Option<(u64, Instant, Instant, Instant, bool)> = None;
        for r in ranges {
            let (start, end) = ((*r.start()).max(lo), (*r.end()).min(hi.saturating_sub(1)));
            if start > end || hi == 0 {
                continue;
            }
            for pn in (start..=end).rev() {
                if let Some(p) = self.take(pn) {
                    if largest_newly_acked.is_none_or(|(l, _, _)| pn > l) {
                        largest_newly_acked = Some((pn, p.time_sent, p.ack_eliciting));
                    }
                    if p.in_flight {
                        out.acked_bytes += usize::from(p.size);
                        self.delivered += u64::from(p.size);
                        self.delivered_time = now;
                        if newest.is_none() {
                            // Ranges come highest first, so this is the newest packet.
                            newest = Some((
                                p.delivered,
                                p.delivered_time,
                                p.first_sent_time,
                                p.time_sent,
                                p.app_limited,
                            ));
                        }
                    }
                    on_packet(&p, Fate::Acked);
                }
            }
        }
        let Some((largest, sent_time, eliciting)) = largest_newly_acked else {
            return out;
        };
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        if self.largest_acked == Some(largest) && eliciting {
            self.rtt
                .update(now - sent_time, ack_delay, self.config.max_ack_delay);
        }
        self.pto_count = 0;
        self.detect_lost(now, &mut out, on_packet);
        self.trim();
        if let Some((prior_delivered, prior_time, first_sent, sent, app_limited)) = newest {
            self.first_sent_time = sent;
            let send_elapsed = sent - first_sent;
            let ack_elapsed = now - prior_time;
            let interval = send_elapsed.max(ack_elapsed);
            let delivered = self.delivered - prior_delivered;
            // Samples over less than the minimum RTT overstate the rate (ACK compression).
            if !interval.is_zero() && interval >= self.rtt.min() {
                let rate = u128::from(delivered) * 1_000_000_000 / interval.as_nanos().max(1);
                out.rate_sample = Some(RateSample {
                    delivery_rate: u64::try_from(rate).unwrap_or(u64::MAX),
                    delivered,
                    interval,
                    total_delivered: self.delivered,
                    prior_delivered,
                    app_limited,
                    rtt: self.rtt.latest(),
                    bytes_in_flight: self.bytes_in_flight,
                    lost: out.lost_bytes,
                });
            }
        }
        out
    }

    /// Declares lost what the thresholds say is lost, and arms the loss timer for the rest.
    fn detect_lost(
        &mut self,
        now: Instant,
        out: &mut Outcome,
        mut on_packet: impl FnMut(&SentPacket, Fate),
    ) {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else {
            return;
        };
        let delay = self.rtt.loss_delay() * self.config.time_threshold_eighths / 9;
        let delay = delay.max(super::rtt::GRANULARITY);
        let mut first_lost: Option<Instant> = None;
        for i in 0..self.sent.len() {
            let pn = self.first + i as u64;
            if pn >= largest {
                break;
            }
            let Some(p) = &self.sent[i] else { continue };
            let by_count = largest - pn >= self.config.packet_threshold;
            let by_time = now >= p.time_sent + delay;
            if by_count || by_time {
                if let Some(p) = self.take(pn) {
                    if p.in_flight {
                        out.lost_bytes += usize::from(p.size);
                        out.newest_lost_sent = Some(
                            out.newest_lost_sent
                                .map_or(p.time_sent, |t| t.max(p.time_sent)),
                        );
                        first_lost = Some(first_lost.map_or(p.time_sent, |t| t.min(p.time_sent)));
                    }
                    on_packet(&p, Fate::Lost);
                }
            } else {
                let at = p.time_sent + delay;
                self.loss_time = Some(self.loss_time.map_or(at, |t| t.min(at)));
            }
        }
        // Persistent congestion (RFC 9002 §7.6, simplified): the lost packets span more
        // than three probe timeouts and nothing in between was acknowledged.
        if let (Some(a), Some(b)) = (first_lost, out.newest_lost_sent) {
            let pc = self.rtt.pto_base(self.config.max_ack_delay) * 3;
            out.persistent = self.rtt.has_sample() && b - a > pc && self.bytes_in_flight == 0;
        }
    }

    /// The probe timeout, with backoff.
    fn pto(&self) -> Duration {
        let base = self
            .rtt
            .pto_base(self.config.max_ack_delay)
            .max(self.config.min_pto);
        let mut d = base;
        for _ in 0..self.pto_count.min(32) {
            d = d * self.config.backoff_tenths / 10;
            if d >= self.config.max_pto {
                break;
            }
        }
        d.min(self.config.max_pto)
    }

    /// When the loss or probe timer fires, if armed.
    pub(crate) fn timeout(&self) -> Option<Instant> {
        if let Some(t) = self.loss_time {
            return Some(t);
        }
        if self.ack_eliciting_in_flight == 0 {
            return None;
        }
        self.time_of_last_ack_eliciting.map(|t| t + self.pto())
    }

    /// The loss or probe timer fired. Returns what was lost and whether a probe is due.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        on_packet: impl FnMut(&SentPacket, Fate),
    ) -> (Outcome, bool) {
        let mut out = Outcome::default();
        if self.loss_time.is_some_and(|t| now >= t) {
            self.detect_lost(now, &mut out, on_packet);
            self.trim();
            return (out, false);
        }
        if self.timeout().is_some_and(|t| now >= t) {
            self.pto_count += 1;
            // The probe goes out now; the next timeout counts from it.
            self.time_of_last_ack_eliciting = Some(now);
            return (out, true);
        }
        (out, false)
    }

    /// Too many probe timeouts in a row: the peer is gone.
    pub(crate) fn path_dead(&self) -> bool {
        self.pto_count >= self.config.max_ptos
    }

    /// Whether anything ack-eliciting awaits acknowledgement (then the probe timer, not a
    /// keepalive, watches the path).
    pub(crate) fn has_ack_eliciting_in_flight(&self) -> bool {
        self.ack_eliciting_in_flight > 0
    }

    /// Early retransmission: the newest packets (at most `EARLY_WINDOW`) whose stream data
    /// has gone unacknowledged for `delay` and was not copied yet. Marks and returns the
    /// oldest such packet's frames.
    pub(crate) fn take_early_copy(&mut self, now: Instant, delay: Duration) -> Option<&SentPacket> {
        let start = self.sent.len().saturating_sub(EARLY_WINDOW);
        let i = (start..self.sent.len()).find(|&i| {
            self.sent[i].as_ref().is_some_and(|p| {
                !p.copied && now >= p.time_sent + delay && p.frames().any(|f| f.is_data())
            })
        })?;
        let p = self.sent[i].as_mut()?;
        p.copied = true;
        Some(p)
    }

    /// The oldest packet in flight that carries stream, channel or control bytes: a probe
    /// timeout sends its data again (as TCP's retransmission timeout does), so a peer that
    /// refused out-of-order data gets the bytes it is missing, not more new ones.
    pub(crate) fn oldest_data_packet(&self) -> Option<&SentPacket> {
        self.sent
            .iter()
            .flatten()
            .find(|p| p.frames().any(|f| f.is_data()))
    }

    /// When the next early copy is due (see [`Recovery::take_early_copy`]).
    pub(crate) fn early_copy_time(&self, delay: Duration) -> Option<Instant> {
        let start = self.sent.len().saturating_sub(EARLY_WINDOW);
        self.sent
            .range(start..)
            .flatten()
            .filter(|p| !p.copied && p.frames().any(|f| f.is_data()))
            .map(|p| p.time_sent + delay)
            .min()
    }

    /// Packets tracked (for tests and stats).
    // Inspection for tests and diagnostics; the send/receive paths do not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn tracked(&self) -> usize {
        self.sent.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const MS: Duration = Duration::from_millis(1);

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    fn send(r: &mut Recovery, pn: u64, ms: u64) {
        let mut p = SentPacket::new(at(ms), 1000, true, false);
        p.push(SentFrame::Stream {
            stream: 0,
            offset: pn * 1000,
            len: 1000,
            fin: false,
        });
        r.on_sent(pn, p);
    }

    #[test]
    fn ack_samples_rtt_and_packet_threshold_finds_loss() {
        let mut r = Recovery::new(RecoveryConfig::default(), 100 * MS);
        for pn in 0..6 {
            send(&mut r, pn, pn);
        }
        assert_eq!(r.bytes_in_flight, 6000);
        let mut lost = Vec::new();
        // Packets 1, 3, 4, 5 acked; 0 is 5 behind (lost by count), 2 is 3 behind (lost).
        let out = r.on_ack(
            at(50),
            [3..=5, 1..=1].into_iter(),
            Duration::ZERO,
            |p, fate| {
                if fate == Fate::Lost {
                    lost.push(p.time_sent)
                }
            },
        );
        assert_eq!(out.acked_bytes, 4000);
        assert_eq!(out.lost_bytes, 2000);
        assert_eq!(lost, [at(0), at(2)]);
        assert_eq!(r.rtt.latest(), 45 * MS);
        assert_eq!(r.bytes_in_flight, 0);
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn time_threshold_arms_the_loss_timer() {
        let mut r = Recovery::new(RecoveryConfig::default(), 100 * MS);
        send(&mut r, 0, 0);
        send(&mut r, 1, 1);
        r.on_ack(at(101), [1..=1].into_iter(), Duration::ZERO, |_, fate| {
            assert_eq!(fate, Fate::Acked, "not lost yet")
        });
        let t = r.timeout().unwrap();
        assert_eq!(t, at(0) + r.rtt.loss_delay());
        let mut lost = 0;
        let (out, probe) = r.on_timeout(t, |_, _| lost += 1);
        assert_eq!((lost, out.lost_bytes, probe), (1, 1000, false));
    }

    #[test]
    fn probe_timeout_backs_off_and_declares_the_path_dead() {
        let cfg = RecoveryConfig {
            max_ptos: 3,
            ..RecoveryConfig::default()
        };
        let mut r = Recovery::new(cfg, 100 * MS);
        send(&mut r, 0, 0);
        let mut now = at(0);
        let mut gaps = Vec::new();
        while !r.path_dead() {
            let t = r.timeout().unwrap();
            gaps.push(t - now);
            now = t;
            assert!(r.on_timeout(now, |_, _| {}).1);
        }
        // 100 ms + 4·50 ms + 25 ms = 325 ms, doubling.
        assert_eq!(gaps, [325 * MS, 650 * MS, 1300 * MS]);
        let fast = RecoveryConfig {
            max_ptos: 1,
            ..RecoveryConfig::low_latency()
        };
        let mut r = Recovery::new(fast, 100 * MS);
        send(&mut r, 0, 0);
        let t1 = r.timeout().unwrap();
        r.on_timeout(t1, |_, _| {});
        assert_eq!(r.timeout().unwrap() - t1, (t1 - at(0)) * 15 / 10);
    }

    #[test]
    fn delivery_rate_samples_follow_the_acks() {
        let mut r = Recovery::new(RecoveryConfig::default(), 100 * MS);
        for pn in 0..10 {
            send(&mut r, pn, pn);
        }
        // All ten (10 000 bytes) acked at 60 ms: over max(send 9 ms, ack 60 ms) = 60 ms.
        let out = r.on_ack(at(60), [0..=9].into_iter(), Duration::ZERO, |_, _| {});
        let s = out.rate_sample.unwrap();
        assert_eq!(
            (s.delivered, s.interval, s.total_delivered),
            (10_000, 60 * MS, 10_000)
        );
        assert_eq!(s.delivery_rate, 10_000 * 1000 / 60);
        // The next flight starts when the pipe was empty: measured from its own start.
        for pn in 10..20 {
            send(&mut r, pn, 60 + pn - 10);
        }
        let out = r.on_ack(at(120), [10..=19].into_iter(), Duration::ZERO, |_, _| {});
        let s = out.rate_sample.unwrap();
        assert_eq!(
            (s.delivered, s.prior_delivered, s.interval),
            (10_000, 10_000, 60 * MS)
        );
    }

    #[test]
    fn gaps_in_packet_numbers_are_fine() {
        let mut r = Recovery::new(RecoveryConfig::default(), 100 * MS);
        send(&mut r, 5, 0);
        send(&mut r, 9, 1);
        let out = r.on_ack(at(10), [0..=100].into_iter(), Duration::ZERO, |_, _| {});
        assert_eq!(out.acked_bytes, 2000);
        assert_eq!(r.tracked(), 0);
    }
}
