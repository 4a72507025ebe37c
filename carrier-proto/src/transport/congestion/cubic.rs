//! CUBIC (RFC 9438), with QUIC's recovery-period and app-limited rules (RFC 9002).
//!
//! After a congestion event the window follows `W_cubic(t) = C·(t−K)³ + W_max` (in
//! segments, `t` in seconds since the congestion-avoidance epoch began): concave up to the
//! window where the last loss happened, flat around it, then convex as it probes for more.
//! On short-RTT, low-BDP paths, where that curve is slower than Reno, the Reno-friendly
//! estimate `W_est` takes over.

use alloc::boxed::Box;

use super::{Controller, initial_window, minimum_window};
use crate::time::Instant;
use crate::transport::rtt::RttEstimator;

/// RFC 9438 §5: `C`, in segments per second³.
const C: f64 = 0.4;
/// RFC 9438 §4.6: `β_cubic`, the multiplicative decrease factor.
const BETA: f64 = 0.7;
/// `β_cubic` as a fraction, for the window reduction itself: integer math keeps it exact
/// (`84000.0 · 0.7` is a hair under 58800 in binary floating point).
const BETA_RATIO: (u128, u128) = (7, 10);
/// RFC 9438 §4.3: `α_cubic = 3·(1−β)/(1+β)`, the Reno-friendly additive increase that
/// gives the same average rate as Reno's AIMD(1, 0.5) under the same loss rate.
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// RFC 9438 §4.4: the target is at most 1.5 times the current window, so one RTT's growth
/// never more than halves-again the window, however steep the curve.
const MAX_TARGET_RATIO: f64 = 1.5;

/// The current congestion-avoidance epoch (RFC 9438 §4.2: the stage since the last
/// congestion event's recovery ended).
#[derive(Clone, Copy, Debug)]
struct Epoch {
    /// The origin of `t`. It moves forward by the time the sender spent app-limited, so
    /// that time doesn't count toward growth (RFC 9438 §5.8).
    start: Instant,
    /// RFC 9438 `W_est`, in bytes.
    w_est: f64,
}

/// The RFC 9438 CUBIC congestion controller.
#[derive(Clone, Debug)]
pub struct Cubic {
    max_datagram: usize,
    window: usize,
    /// `usize::MAX` until the first congestion event: slow start runs until then.
    ssthresh: usize,
    /// When the current recovery period began; see NewReno.
    recovery_start: Option<Instant>,
    /// RFC 9438 `W_max`, in bytes: the window just before the last reduction (less with
    /// fast convergence). Zero before the first congestion event.
    w_max: f64,
    /// RFC 9438 `K`, in seconds, computed at the congestion event. `None` when the next
    /// epoch does not follow a congestion event (after persistent congestion): it then
    /// starts with `K = 0` and `W_max = cwnd_epoch` (RFC 9438 §4.8).
    k: Option<f64>,
    /// RFC 9438 `cwnd_prior`, in bytes: the window before the last reduction. Once `W_est`
    /// has reached it, Reno-friendly growth uses `α = 1` (§4.3).
    cwnd_prior: f64,
    /// `None` in slow start and in recovery; begins with the first ack after recovery.
    epoch: Option<Epoch>,
    /// The last ack that could grow the window, and whether app-limited acks came after it:
    /// if so, the next growing ack shifts the epoch by the time in between.
    last_growth: Instant,
    app_limited_since_growth: bool,
    /// Growth in bytes not yet added to the window. Near `W_max` the per-ack increase is a
    /// small fraction of a byte; dropping it would stall the window at the plateau.
    pending: f64,
}

impl Cubic {
    /// A controller for datagrams of at most `max_datagram` bytes, starting at the initial
    /// window (RFC 9002 §7.2).
    pub fn new(max_datagram: usize) -> Self {
        Cubic {
            max_datagram,
            window: initial_window(max_datagram),
            ssthresh: usize::MAX,
            recovery_start: None,
            w_max: 0.0,
            k: None,
            cwnd_prior: 0.0,
            epoch: None,
            last_growth: Instant::ZERO,
            app_limited_since_growth: false,
            pending: 0.0,
        }
    }

    /// The slow-start threshold (`usize::MAX` before the first congestion event).
    // Inspection for tests and diagnostics; the send/receive paths do not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }

    fn mss(&self) -> f64 {
        self.max_datagram.max(1) as f64
    }

    /// RFC 9438 Figure 1: `W_cubic(t)` in bytes, `t` in seconds since the epoch began.
    fn w_cubic(&self, t: f64, k: f64) -> f64 {
        let d = t - k;
        C * d * d * d * self.mss() + self.w_max
    }

    /// Congestion avoidance for `bytes` acknowledged at `now`.
    fn grow(&mut self, now: Instant, bytes: usize, rtt: &RttEstimator) {
        let window = self.window as f64;
        let epoch = match self.epoch {
            Some(mut epoch) => {
                if self.app_limited_since_growth {
                    // RFC 9438 §5.8: an app-limited (or idle) stretch must not count in
                    // `t`, or the window would jump to a far point of the curve afterwards.
                    epoch.start += now - self.last_growth;
                }
                epoch
            }
            None => {
                // The epoch begins: RFC 9438 §4.2 `cwnd_epoch` is the window now.
                if self.k.is_none() || self.w_max < window {
                    // Entered congestion avoidance without a congestion event (after
                    // persistent congestion), or the reduction was clamped above `W_max`
                    // by the minimum window: the plateau is where we are (§4.8).
                    self.w_max = self.w_max.max(window);
                    self.k = Some(0.0);
                }
                Epoch {
                    start: now,
                    w_est: window,
                }
            }
        };
        self.last_growth = now;
        self.app_limited_since_growth = false;
        let k = self.k.unwrap_or(0.0);
        let t = (now - epoch.start).as_secs_f64();

        // RFC 9438 §4.3: Reno's window, grown by α segments per window of acked bytes.
        let alpha = if epoch.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        let w_est = epoch.w_est + alpha * self.mss() * bytes as f64 / window;
        self.epoch = Some(Epoch { w_est, ..epoch });

        if self.w_cubic(t, k) < w_est {
            // Reno-friendly region: at least as fast as Reno would be. `max` so that an
            // ack never shrinks the window (the cubic branch may have run ahead of W_est).
            self.window = self.window.max(w_est as usize);
            self.pending = 0.0;
            return;
        }
        // Concave and convex regions (§4.4, §4.5): aim for where the curve will be one
        // RTT from now, and spread the distance over the window's acks.
        let target = self
            .w_cubic(t + rtt.smoothed().as_secs_f64(), k)
            .clamp(window, MAX_TARGET_RATIO * window);
        self.pending += (target - window) * bytes as f64 / window;
        if self.pending >= 1.0 {
            // `as` truncates toward zero and saturates: the whole bytes of a positive value.
            let whole = self.pending as usize;
            self.window = self.window.saturating_add(whole);
            self.pending -= whole as f64;
        }
    }
}

impl Controller for Cubic {
    fn on_sent(&mut self, _now: Instant, _bytes: usize) {
        // Idle periods are excluded from the epoch through the app-limited acks that follow
        // them (see `grow`); nothing to do per packet.
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: usize,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        if self.in_recovery(sent) {
            return;
        }
        if app_limited {
            // No growth (RFC 9438 §5.8, RFC 9002 §7.8); remember to take this stretch out
            // of `t`.
            self.app_limited_since_growth = true;
            return;
        }
        if self.window < self.ssthresh {
            // Slow start as in NewReno (RFC 9438 §4.10).
            self.window = self.window.saturating_add(bytes);
            return;
        }
        self.grow(now, bytes, rtt);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        _lost_bytes: usize,
        persistent: bool,
    ) {
        if !self.in_recovery(sent) {
            self.recovery_start = Some(now);
            let window = self.window as f64;
            // RFC 9438 §4.7 fast convergence: a loss below the previous W_max means another
            // flow is taking capacity; release some by aiming lower.
            self.w_max = if window < self.w_max {
                window * (1.0 + BETA) / 2.0
            } else {
                window
            };
            self.cwnd_prior = window;
            // §4.6. In u128 the product cannot overflow; the quotient is below the window.
            let reduced = self.window as u128 * BETA_RATIO.0 / BETA_RATIO.1;
            self.ssthresh = usize::try_from(reduced).unwrap_or(self.window);
            self.window = self.ssthresh.max(minimum_window(self.max_datagram));
            // §4.2: K is the time the curve takes from `cwnd_epoch` (the reduced window;
            // it cannot change before the epoch starts, since recovery blocks growth) back
            // to W_max.
            let deficit = (self.w_max - self.window as f64).max(0.0) / self.mss();
            self.k = Some(cbrt(deficit / C));
            self.epoch = None;
            self.pending = 0.0;
        }
        if persistent {
            // RFC 9002 §7.6.2: the minimum window, slow start back to ssthresh, and a fresh
            // epoch with K = 0 at that point (RFC 9438 §4.8).
            self.window = minimum_window(self.max_datagram);
            self.recovery_start = None;
            self.k = None;
            self.epoch = None;
            self.pending = 0.0;
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
        "CUBIC"
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

/// The real cube root, for the `K` of RFC 9438 (`f64::cbrt` is std-only).
///
/// A first guess from the exponent bits (dividing the biased exponent by three, with the
/// bias restored — within a few percent), then Newton's iteration
/// `y ← y − (y³ − x)/(3y²)`, which doubles the correct digits each step: four steps reach
/// the last bit from that guess.
fn cbrt(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    if x < 0.0 {
        return -cbrt(-x);
    }
    // The bit trick needs a normal number: scale subnormals up by 2^54 (cube root 2^18).
    if x < f64::MIN_POSITIVE {
        return cbrt(x * 18_014_398_509_481_984.0) / 262_144.0;
    }
    // (bias − bias/3) in the exponent field: 1023·2/3 · 2^52, tuned for the mantissa.
    let mut y = f64::from_bits(x.to_bits() / 3 + 0x2A9F_7893_782D_A1CE);
    for _ in 0..4 {
        y -= (y * y * y - x) / (3.0 * y * y);
    }
    y
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::transport::congestion::CongestionAlgorithm;

    const MSS: usize = 1200;

    fn rtt(d: Duration) -> RttEstimator {
        let mut r = RttEstimator::default();
        r.update(d, Duration::ZERO, Duration::ZERO);
        r
    }

    fn before(t: Instant, d: Duration) -> Instant {
        Instant::from_nanos(t.as_nanos() - d.as_nanos() as u64)
    }

    fn rel_err(a: f64, b: f64) -> f64 {
        let d = if a > b { a - b } else { b - a };
        d / b
    }

    /// Acks `rounds` windows, one per RTT, spread evenly over the RTT, each packet sent one
    /// RTT before its ack. Returns the time after the last round.
    fn run(cc: &mut Cubic, start: Instant, rtt_d: Duration, rounds: usize) -> Instant {
        let r = rtt(rtt_d);
        let mut now = start;
        for _ in 0..rounds {
            let n = (cc.window() / MSS).max(1) as u64;
            let round = now;
            for i in 1..=n {
                let t = round + rtt_d * i as u32 / n as u32;
                cc.on_ack(t, before(t, rtt_d), MSS, false, &r);
            }
            now = round + rtt_d;
        }
        now
    }

    /// A controller that slow-started to `segments` and then took a loss at `at`.
    fn after_loss(segments: usize, at: Instant) -> Cubic {
        let mut cc = Cubic::new(MSS);
        let r = rtt(Duration::from_millis(100));
        while cc.window() < segments * MSS {
            cc.on_ack(at, Instant::ZERO, MSS, false, &r);
        }
        assert_eq!(cc.window(), segments * MSS);
        cc.on_congestion_event(at, at, MSS, false);
        cc
    }

    #[test]
    fn cbrt_is_accurate() {
        for (x, y) in [
            (27.0, 3.0),
            (1000.0, 10.0),
            (2.0, 1.259_921_049_894_873_2),
            (75.0, 4.217_163_326_508_746),
            (0.001, 0.1),
            (1e-300, 1e-100),
            (1e300, 1e100),
            // A subnormal, 2^-1068, whose cube root is 2^-356.
            (f64::from_bits(1 << 6), f64::from_bits((1023 - 356) << 52)),
        ] {
            assert!(
                rel_err(cbrt(x), y) < 1e-14,
                "cbrt({x}) = {} not {y}",
                cbrt(x)
            );
            assert!(rel_err(cbrt(-x), -y) < 1e-14);
        }
        assert_eq!(cbrt(0.0), 0.0);
        assert_eq!(cbrt(1.0), 1.0);
        assert!(cbrt(f64::NAN).is_nan());
        assert_eq!(cbrt(f64::INFINITY), f64::INFINITY);
        // Over many magnitudes, y³ gives x back.
        let mut x = 1e-12;
        while x < 1e15 {
            let y = cbrt(x);
            assert!(rel_err(y * y * y, x) < 1e-14, "cbrt({x}) = {y}");
            x *= 1.37;
        }
    }

    #[test]
    fn constants() {
        assert!(rel_err(ALPHA, 0.529_411_764_705_882_3) < 1e-12);
        let cc = Cubic::new(MSS);
        assert_eq!(cc.window(), initial_window(MSS));
        assert_eq!(cc.name(), "CUBIC");
        assert_eq!(CongestionAlgorithm::Cubic.build(MSS).name(), "CUBIC");
        assert_eq!(CongestionAlgorithm::NewReno.build(MSS).name(), "NewReno");
        assert_eq!(
            CongestionAlgorithm::NewReno.build(MSS).window(),
            initial_window(MSS)
        );
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = Cubic::new(MSS);
        let rtt_d = Duration::from_millis(50);
        let mut now = Instant::ZERO + Duration::from_secs(1);
        for _ in 0..4 {
            let w = cc.window();
            now = run(&mut cc, now, rtt_d, 1);
            assert_eq!(cc.window(), 2 * w);
        }
    }

    #[test]
    fn loss_multiplies_by_beta_once_per_recovery_period() {
        let t = Instant::ZERO + Duration::from_secs(1);
        let cc0 = after_loss(100, t);
        let mut cc = cc0.clone();
        assert_eq!(cc.window(), 70 * MSS);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        // The rest of the flight: no further reduction, no growth from its acks.
        cc.on_congestion_event(
            t + Duration::from_millis(10),
            before(t, Duration::from_millis(1)),
            MSS,
            false,
        );
        cc.on_congestion_event(t + Duration::from_millis(20), t, 5 * MSS, false);
        cc.on_ack(
            t + Duration::from_millis(30),
            t,
            MSS,
            false,
            &rtt(Duration::from_millis(100)),
        );
        assert_eq!(cc.window(), 70 * MSS);
        // A packet sent after the recovery began: a new event, with fast convergence (the
        // loss came below the previous W_max).
        cc.on_congestion_event(
            t + Duration::from_millis(200),
            t + Duration::from_millis(1),
            MSS,
            false,
        );
        assert_eq!(cc.window(), 49 * MSS);
        assert!(rel_err(cc.w_max, 70.0 * 0.85 * MSS as f64) < 1e-12);
    }

    #[test]
    fn k_follows_the_rfc_formula() {
        let cc = after_loss(100, Instant::ZERO + Duration::from_secs(1));
        // K = cbrt(W_max·(1−β)/C) = cbrt(100·0.3/0.4) = cbrt(75) s.
        assert!(rel_err(cc.k.unwrap_or(0.0), 4.217_163_326_508_746) < 1e-12);
    }

    #[test]
    fn window_follows_the_cubic_curve() {
        let rtt_d = Duration::from_millis(100);
        let t0 = Instant::ZERO + Duration::from_secs(1);
        let mut cc = after_loss(200, t0);
        let w_max = 200.0 * MSS as f64;
        let k = cbrt(200.0 * 0.3 / C);
        // The epoch begins with the first ack after recovery (sent after t0).
        let start = t0 + rtt_d;
        let mut now = start;
        let mut samples = alloc::vec::Vec::new();
        while now < start + Duration::from_secs_f64(2.0 * k) {
            samples.push(((now - start).as_secs_f64(), cc.window() as f64));
            now = run(&mut cc, now, rtt_d, 1);
            // The window tracks W_cubic one RTT ahead (it is the next RTT's target).
            let t = (now - start).as_secs_f64();
            let expect = C * (t - k).powi(3) * MSS as f64 + w_max;
            assert!(
                rel_err(cc.window() as f64, expect) < 0.03,
                "t={t:.2}: {} vs {expect}",
                cc.window()
            );
        }
        let at = |t: f64| {
            samples
                .iter()
                .min_by_key(|(s, _)| ((s - t).abs() * 1e6) as u64)
                .map(|&(_, w)| w)
                .unwrap_or(0.0)
        };
        // Back to W_max after K seconds.
        assert!(rel_err(at(k), w_max) < 0.01, "{} vs {w_max}", at(k));
        // Concave, then convex: growth slows down toward W_max, then accelerates past it.
        let (q1, q2) = (at(k / 2.0) - at(0.0), at(k) - at(k / 2.0));
        let (q3, q4) = (at(1.5 * k) - at(k), at(1.95 * k) - at(1.5 * k));
        assert!(q1 > 3.0 * q2, "concave: {q1} then {q2}");
        assert!(q4 > 3.0 * q3, "convex: {q3} then {q4}");
        assert!(at(k / 2.0) < w_max && at(1.5 * k) > w_max);
    }

    #[test]
    fn reno_friendly_region_dominates_on_short_rtts() {
        // 1 ms RTT, 20-segment window: the cubic curve climbs 6 segments in K ≈ 2.5 s;
        // Reno adds one per millisecond.
        let rtt_d = Duration::from_millis(1);
        let t0 = Instant::ZERO + Duration::from_secs(1);
        let mut cc = after_loss(20, t0);
        assert_eq!(cc.window(), 14 * MSS);
        let start = t0 + rtt_d;
        let now = run(&mut cc, start, rtt_d, 100);
        let k = cbrt(20.0 * 0.3 / C);
        let t = (now - start).as_secs_f64();
        let w_cubic = C * (t - k).powi(3) * MSS as f64 + 20.0 * MSS as f64;
        let w_est = cc.epoch.map(|e| e.w_est).unwrap_or(0.0);
        assert!(w_cubic < 15.0 * MSS as f64);
        assert!(cc.window() > 60 * MSS, "window {}", cc.window() / MSS);
        assert_eq!(cc.window(), w_est as usize);
        // α_cubic (≈0.53/RTT) until W_est reached cwnd_prior (20 segments, ~12 RTTs),
        // then 1 per RTT: about 20 + 88 segments after 100 RTTs; Reno-ish, not cubic.
        assert!(
            (90..=115).contains(&(cc.window() / MSS)),
            "window {}",
            cc.window() / MSS
        );
    }

    #[test]
    fn app_limited_acks_neither_grow_nor_advance_the_curve() {
        let rtt_d = Duration::from_millis(100);
        let t0 = Instant::ZERO + Duration::from_secs(1);
        let mut cc = after_loss(200, t0);
        let mut twin = cc.clone();
        let start = t0 + rtt_d;
        let now = run(&mut cc, start, rtt_d, 10);
        let _ = run(&mut twin, start, rtt_d, 10);
        let w = cc.window();
        // Ten seconds of app-limited acks: no growth.
        let r = rtt(rtt_d);
        for i in 0..10_000u64 {
            let t = now + Duration::from_millis(i);
            cc.on_ack(t, before(t, rtt_d), MSS, true, &r);
        }
        assert_eq!(cc.window(), w);
        // Then full-window acks again: the curve resumes where it was (as for the twin that
        // never paused), instead of jumping 10 s ahead on it.
        let later = now + Duration::from_secs(10);
        run(&mut cc, later, rtt_d, 5);
        run(&mut twin, now, rtt_d, 5);
        assert!(
            rel_err(cc.window() as f64, twin.window() as f64) < 0.01,
            "{} vs {}",
            cc.window(),
            twin.window()
        );
        assert!(cc.window() < 200 * MSS);
    }

    #[test]
    fn persistent_congestion_collapses_and_resets_the_epoch() {
        let rtt_d = Duration::from_millis(100);
        let t0 = Instant::ZERO + Duration::from_secs(1);
        let mut cc = after_loss(100, t0);
        let now = run(&mut cc, t0 + rtt_d, rtt_d, 10);
        assert!(cc.epoch.is_some());
        cc.on_congestion_event(now, before(now, rtt_d), 20 * MSS, true);
        assert_eq!(cc.window(), minimum_window(MSS));
        assert!(cc.epoch.is_none() && cc.k.is_none());
        let ssthresh = cc.ssthresh();
        // Slow start back up to ssthresh, then a new epoch with K = 0 at that window.
        let now = run(&mut cc, now + rtt_d, rtt_d, 6);
        assert!(cc.window() >= ssthresh);
        assert_eq!(cc.k, Some(0.0));
        let w = cc.window();
        run(&mut cc, now, rtt_d, 3);
        assert!(cc.window() > w, "grows in congestion avoidance");
        assert!(cc.window() < w + w / 10, "slowly, from the plateau");
    }

    #[test]
    fn never_below_the_minimum_window() {
        let mut cc = Cubic::new(MSS);
        let mut now = Instant::ZERO;
        for _ in 0..20 {
            let sent = now + Duration::from_millis(1);
            now += Duration::from_millis(100);
            cc.on_congestion_event(now, sent, MSS, false);
            assert!(cc.window() >= minimum_window(MSS));
        }
        assert_eq!(cc.window(), minimum_window(MSS));
        // And it grows again from there.
        run(
            &mut cc,
            now + Duration::from_millis(10),
            Duration::from_millis(10),
            50,
        );
        assert!(cc.window() > minimum_window(MSS));
    }

    #[test]
    fn fills_a_pipe() {
        let u = super::super::new_reno::sim::utilization(&mut Cubic::new(MSS));
        assert!(u >= 0.9, "utilization {u}");
    }
}
