//! Pacing: spreading the congestion window over the RTT (RFC 9002 §7.7).
//!
//! Without pacing, a window's worth of datagrams leaves in one burst whenever acks open
//! it, and the bottleneck queue absorbs (or drops) the burst. A token bucket refilled at
//! `1.25 · window / smoothed_rtt` sends the window evenly instead. The 1.25 keeps the pacer
//! from being what limits throughput: the window stays the limit, pacing only shapes it
//! (RFC 9002 §7.7 suggests N = 1.25, as quinn and Linux's TCP pacing do).
//!
//! All arithmetic is in integer nanoseconds and bytes, widened to `u128` and saturating, so
//! no window, RTT or instant can overflow it.

use core::time::Duration;

use crate::time::Instant;

/// The pacing rate is `RATE.0 / RATE.1` windows per smoothed RTT.
const RATE: (u128, u128) = (5, 4);
/// The bucket holds what the rate earns in this long. A driver's timer wakes it up to
/// about one granularity (1 ms, `rtt::GRANULARITY`) late; if the bucket could hold less
/// than the time it overslept earned, the tokens would overflow and pacing would cut
/// throughput. Two granularities leave room for that.
const BURST_INTERVAL_NANOS: u128 = 2_000_000;
/// Never less than two datagrams: the minimum window, and what a pair of back-to-back
/// packets (as TCP's delayed acks produce) costs the bottleneck anyway. Low rates stay
/// almost perfectly even.
const MIN_BURST_DATAGRAMS: u128 = 2;
/// Never more than 256 datagrams (307 kB at 1200 bytes; quinn's cap too): reached only
/// above ~1.2 Gbit/s, where it is still under 2 ms of the path's rate, so the queue spike
/// it causes is bounded in time as well as in bytes. A smaller cap makes the pacer, not
/// the window, the limit at high rates: a driver whose timer wakes it ~1 ms late can only
/// send one bucket per wake-up. With 64 (this cap before), one encrypted stream over
/// loopback moved 1183 MB/s against 1432 MB/s with 256 and 1551 MB/s with no pacing
/// (medians of 8 interleaved runs, `benches/examples/carrier_goodput.rs`).
const MAX_BURST_DATAGRAMS: u128 = 256;

/// A token bucket that lets the congestion window out evenly over the smoothed RTT.
///
/// Call [`Pacer::delay`] before sending a datagram; if it returns `None`, send and call
/// [`Pacer::on_sent`], else wait until the returned instant.
#[derive(Clone, Debug)]
pub struct Pacer {
    max_datagram: usize,
    /// Bytes that may be sent now.
    tokens: u64,
    /// A fraction of a byte earned but not yet credited, in `1/(RATE.1·rtt_ns)` bytes:
    /// without it, frequent small refills would each round down and the rate would sag.
    remainder: u128,
    /// Tokens are credited up to this instant. `None` before the first call.
    last: Option<Instant>,
}

impl Pacer {
    /// A pacer for datagrams of at most `max_datagram` bytes.
    ///
    /// It starts with the initial window (RFC 9002 §7.2) in tokens: before the first RTT
    /// sample there is no rate to pace at, and RFC 9002 §7.7 lets the initial window go
    /// out as one burst. (Those tokens are spent, never refilled beyond the burst size.)
    pub fn new(max_datagram: usize) -> Self {
        Pacer {
            max_datagram,
            tokens: u64::try_from(initial_burst(max_datagram)).unwrap_or(u64::MAX),
            remainder: 0,
            last: None,
        }
    }

    /// When a datagram of `bytes` may be sent: `None` if now, else the instant (always
    /// later than `now`) when the bucket will hold enough tokens for it.
    ///
    /// `window` is the congestion window and `smoothed_rtt` the RTT estimate; a zero RTT
    /// (or window) gives no rate to pace at, and only the congestion window limits then.
    /// A datagram bigger than the burst size waits for a full bucket, not forever.
    pub fn delay(
        &mut self,
        now: Instant,
        bytes: usize,
        window: usize,
        smoothed_rtt: Duration,
    ) -> Option<Instant> {
        let rtt_ns = smoothed_rtt.as_nanos().min(u128::from(u64::MAX));
        let window = window as u128;
        if rtt_ns == 0 || window == 0 {
            return None;
        }
        let capacity = self.capacity(window, rtt_ns);
        self.refill(now, window, rtt_ns, capacity);
        let need = (bytes as u64).min(capacity);
        if self.tokens >= need {
            return None;
        }
        // Time until `need − tokens` more bytes are earned, counting the remainder already
        // earned, rounded up so that the refill at that instant credits enough.
        let denom = RATE.1 * rtt_ns;
        let owed = u128::from(need - self.tokens)
            .saturating_mul(denom)
            .saturating_sub(self.remainder);
        let per_nano = RATE.0 * window;
        let wait = owed.div_ceil(per_nano).max(1);
        // `last` is at least `now` after a refill, so this is later than `now`; `+`
        // saturates at `Instant::FAR_FUTURE`.
        let from = self.last.map_or(now, |last| last.max(now));
        Some(from + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)))
    }

    /// Path MTU discovery raised the largest datagram to `max_datagram` bytes: the bucket
    /// (a number of datagrams) grows with it.
    pub fn on_mtu_update(&mut self, max_datagram: usize) {
        self.max_datagram = max_datagram;
    }

    /// A datagram of `bytes` was sent at `now`: spend its tokens.
    pub fn on_sent(&mut self, now: Instant, bytes: usize) {
        // Tokens are credited from the first use on, whether that was a send or a query.
        self.last.get_or_insert(now);
        self.tokens = self.tokens.saturating_sub(bytes as u64);
    }

    /// The bucket's size: what the rate earns in [`BURST_INTERVAL_NANOS`], between
    /// [`MIN_BURST_DATAGRAMS`] and [`MAX_BURST_DATAGRAMS`].
    fn capacity(&self, window: u128, rtt_ns: u128) -> u64 {
        let datagram = self.max_datagram as u128;
        let earned = window.saturating_mul(RATE.0 * BURST_INTERVAL_NANOS) / (RATE.1 * rtt_ns);
        let bytes = earned.clamp(
            MIN_BURST_DATAGRAMS.saturating_mul(datagram),
            MAX_BURST_DATAGRAMS.saturating_mul(datagram),
        );
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }

    /// Credits the tokens earned since `last` at the current rate, up to `capacity`.
    fn refill(&mut self, now: Instant, window: u128, rtt_ns: u128, capacity: u64) {
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        if now <= last {
            // Time standing still (or, wrongly, going back) earns nothing.
            return;
        }
        self.last = Some(now);
        let denom = RATE.1 * rtt_ns;
        // The remainder was counted in the previous call's units; if the RTT has shrunk
        // since, keep it below one byte in the new ones.
        let earned = (now - last)
            .as_nanos()
            .saturating_mul(RATE.0 * window)
            .saturating_add(self.remainder.min(denom - 1));
        self.remainder = earned % denom;
        let bytes = u64::try_from(earned / denom).unwrap_or(u64::MAX);
        // Tokens above the capacity (the initial window's) are kept, not refilled.
        if self.tokens < capacity {
            self.tokens = self.tokens.saturating_add(bytes).min(capacity);
        }
        if self.tokens >= capacity {
            // A full bucket earns nothing more, fractions included.
            self.remainder = 0;
        }
    }
}

/// `congestion::initial_window`, saturating instead of overflowing for absurd datagram
/// sizes (the pacer must not panic on any input).
fn initial_burst(max_datagram: usize) -> usize {
    max_datagram
        .saturating_mul(10)
        .min(max_datagram.saturating_mul(2).max(14_720))
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::transport::congestion::initial_window;

    const MSS: usize = 1200;
    const MS: Duration = Duration::from_millis(1);

    /// A greedy sender: sends `count` datagrams as soon as the pacer allows, from `start`.
    /// Returns the send times.
    fn send_all(
        p: &mut Pacer,
        start: Instant,
        count: usize,
        window: usize,
        rtt: Duration,
    ) -> Vec<Instant> {
        let mut now = start;
        let mut times = Vec::new();
        while times.len() < count {
            match p.delay(now, MSS, window, rtt) {
                None => {
                    p.on_sent(now, MSS);
                    times.push(now);
                }
                Some(at) => {
                    assert!(at > now);
                    now = at;
                }
            }
        }
        times
    }

    #[test]
    fn initial_window_goes_out_as_one_burst() {
        let mut p = Pacer::new(MSS);
        let t0 = Instant::from_nanos(5_000_000_000);
        let iw = initial_window(MSS);
        // Before the first sample the RTT estimate is the 333 ms default.
        let times = send_all(&mut p, t0, 11, iw, Duration::from_millis(333));
        assert!(times[..10].iter().all(|&t| t == t0));
        assert!(times[10] > t0);
        // The 11th waits for one datagram at 1.25·IW per 333 ms: 333 ms / 12.5 ≈ 26.6 ms.
        assert_eq!(times[10] - t0, Duration::from_nanos(26_640_000));
    }

    #[test]
    fn spreads_a_window_evenly_over_the_rtt() {
        let mut p = Pacer::new(MSS);
        let window = 100 * MSS;
        let rtt = 100 * MS;
        let t0 = Instant::ZERO + Duration::from_secs(1);
        // Spend the initial burst.
        let burst = send_all(&mut p, t0, 10, window, rtt);
        assert_eq!(*burst.last().unwrap_or(&Instant::FAR_FUTURE), t0);
        let times = send_all(&mut p, t0, 101, window, rtt);
        // 100 datagrams after the first: 100 ms / 1.25 = 80 ms, one every 0.8 ms.
        let span = times[100] - times[0];
        assert!(span >= 78 * MS && span <= 82 * MS, "{span:?}");
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap <= MS, "gap {gap:?}");
        }
        let even = times
            .windows(2)
            .filter(|w| w[1] - w[0] >= MS * 7 / 10)
            .count();
        assert!(even >= 95, "{even} of 100 gaps are about 0.8 ms");
    }

    #[test]
    fn the_rate_does_not_sag_with_frequent_small_refills() {
        // Querying every 10 µs must give the same rate as waiting for the returned times.
        let mut p = Pacer::new(MSS);
        let window = 50 * MSS;
        let rtt = 30 * MS;
        send_all(&mut p, Instant::ZERO, 10, window, rtt);
        let mut now = Instant::ZERO;
        let mut sent = 0;
        while now < Instant::ZERO + Duration::from_secs(3) {
            if p.delay(now, MSS, window, rtt).is_none() {
                p.on_sent(now, MSS);
                sent += 1;
            }
            // 7 µs earns 17.5 bytes: the half bytes must add up, not round away.
            now += Duration::from_micros(7);
        }
        // 1.25 windows per 30 ms over 3 s: 6250 datagrams, plus up to a bucket's worth.
        assert!((6245..=6255).contains(&sent), "{sent}");
    }

    #[test]
    fn idle_time_earns_at_most_a_burst() {
        let mut p = Pacer::new(MSS);
        let window = 100 * MSS;
        let rtt = 100 * MS;
        let t0 = Instant::ZERO;
        send_all(&mut p, t0, 10, window, rtt);
        // A second of silence, then: the bucket holds 2 ms at the rate (3000 bytes), so two
        // datagrams go at once and the third waits.
        let t1 = t0 + Duration::from_secs(1);
        let times = send_all(&mut p, t1, 3, window, rtt);
        assert_eq!((times[0], times[1]), (t1, t1));
        assert!(times[2] > t1);
        // A fast path allows larger bursts, up to the cap (256 datagrams).
        let mut p = Pacer::new(MSS);
        let window = 10_000 * MSS;
        let rtt = 10 * MS;
        send_all(&mut p, t0, 10, window, rtt);
        let cap = MAX_BURST_DATAGRAMS as usize;
        assert_eq!(cap, 256);
        let times = send_all(&mut p, t1, cap + 1, window, rtt);
        assert!(times[..cap].iter().all(|&t| t == t1));
        assert!(times[cap] > t1);
    }

    #[test]
    fn oversized_datagrams_wait_for_a_full_bucket() {
        let mut p = Pacer::new(MSS);
        let window = 20 * MSS;
        let rtt = 100 * MS;
        let now = Instant::ZERO;
        p.on_sent(now, initial_window(MSS));
        let at = p.delay(now, 10 * MSS, window, rtt);
        // Capacity is the 2-datagram minimum; 2400 bytes at 300 bytes/ms is 8 ms.
        assert_eq!(at, Some(now + 8 * MS));
        assert_eq!(p.delay(now + 8 * MS, 10 * MSS, window, rtt), None);
    }

    #[test]
    fn initial_burst_is_the_initial_window() {
        for mss in [1, 1200, 1472, 7360, 9000, 65_527] {
            assert_eq!(initial_burst(mss), initial_window(mss));
        }
        assert_eq!(initial_burst(usize::MAX), usize::MAX);
    }

    #[test]
    fn zero_rtt_or_window_does_not_pace() {
        let mut p = Pacer::new(MSS);
        for i in 0..1000 {
            let now = Instant::from_nanos(i);
            assert_eq!(p.delay(now, MSS, 10 * MSS, Duration::ZERO), None);
            p.on_sent(now, MSS);
            assert_eq!(p.delay(now, MSS, 0, 100 * MS), None);
        }
    }

    #[test]
    fn never_a_time_in_the_past() {
        let mut p = Pacer::new(MSS);
        // A deterministic jumble of times (some going backwards), windows and RTTs.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let now = Instant::from_nanos(x % 10_000_000_000);
            let window = (x >> 20) as usize % (1000 * MSS) + 2 * MSS;
            let rtt = Duration::from_micros((x >> 40) % 500_000);
            match p.delay(now, MSS, window, rtt) {
                None => p.on_sent(now, MSS),
                Some(at) => assert!(at > now, "{at:?} <= {now:?}"),
            }
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        for (window, rtt) in [
            (usize::MAX, Duration::MAX),
            (usize::MAX, Duration::from_nanos(1)),
            (usize::MAX, 100 * MS),
            (1, Duration::MAX),
            (2 * MSS, Duration::from_secs(u64::MAX)),
        ] {
            let mut p = Pacer::new(MSS);
            for now in [
                Instant::ZERO,
                Instant::from_nanos(1),
                Instant::FAR_FUTURE,
                Instant::ZERO,
            ] {
                for bytes in [0, MSS, usize::MAX] {
                    match p.delay(now, bytes, window, rtt) {
                        None => p.on_sent(now, bytes),
                        // Later than `now`, unless saturated at the end of time.
                        Some(at) => assert!(at > now || at == Instant::FAR_FUTURE),
                    }
                }
            }
        }
        let mut p = Pacer::new(usize::MAX);
        assert_eq!(p.delay(Instant::ZERO, MSS, usize::MAX, MS), None);
        p.on_sent(Instant::ZERO, usize::MAX);
        // Nothing left and a huge minimum burst: a far but finite wait, or FAR_FUTURE.
        let at = p.delay(Instant::ZERO, usize::MAX, usize::MAX, Duration::MAX);
        assert!(at.is_some_and(|at| at > Instant::ZERO));
    }
}
