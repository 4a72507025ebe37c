//! Round-trip time estimation (RFC 9002 §5; RFC 6298's smoothing).

use core::time::Duration;

use crate::time::Instant;

/// The RTT assumed before the first sample (RFC 9002 §6.2.2: 333 ms).
pub const INITIAL_RTT: Duration = Duration::from_millis(333);
/// Timer granularity: no loss or probe timer fires sooner than this after its reason.
pub const GRANULARITY: Duration = Duration::from_millis(1);

/// Smoothed RTT, its variation, the latest and the minimum sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    latest: Duration,
    smoothed: Duration,
    var: Duration,
    min: Duration,
    has_sample: bool,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new(INITIAL_RTT)
    }
}

impl RttEstimator {
    /// An estimator that assumes `initial` until the first sample.
    pub fn new(initial: Duration) -> Self {
        RttEstimator {
            latest: initial,
            smoothed: initial,
            var: initial / 2,
            min: initial,
            has_sample: false,
        }
    }

    /// Takes a sample: `rtt` measured from sending a packet to receiving its ack, of which
    /// the peer says it held the ack back for `ack_delay` (capped at `max_ack_delay`).
    pub fn update(&mut self, rtt: Duration, ack_delay: Duration, max_ack_delay: Duration) {
        self.latest = rtt;
        if !self.has_sample {
            self.has_sample = true;
            self.min = rtt;
            self.smoothed = rtt;
            self.var = rtt / 2;
            return;
        }
        self.min = self.min.min(rtt);
        // Subtract the peer's ack delay only when that leaves at least the minimum RTT.
        let ack_delay = ack_delay.min(max_ack_delay);
        let adjusted = if rtt >= self.min + ack_delay {
            rtt - ack_delay
        } else {
            rtt
        };
        let diff = self.smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }

    /// The smoothed RTT.
    pub fn smoothed(&self) -> Duration {
        self.smoothed
    }

    /// The RTT variation.
    pub fn var(&self) -> Duration {
        self.var
    }

    /// The latest sample.
    pub fn latest(&self) -> Duration {
        self.latest
    }

    /// The smallest sample seen.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// Whether any sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.has_sample
    }

    /// The base probe timeout: `smoothed + max(4·var, granularity) + max_ack_delay`
    /// (RFC 9002 §6.2.1), before backoff.
    pub fn pto_base(&self, max_ack_delay: Duration) -> Duration {
        self.smoothed + (self.var * 4).max(GRANULARITY) + max_ack_delay
    }

    /// How long after a later packet was acked an earlier one counts as lost:
    /// `9/8 · max(smoothed, latest)`, at least the granularity (RFC 9002 §6.1.2).
    pub fn loss_delay(&self) -> Duration {
        (self.smoothed.max(self.latest) * 9 / 8).max(GRANULARITY)
    }

    /// When a packet sent at `sent` is considered lost by time, given a later one was acked.
    pub fn lost_after(&self, sent: Instant) -> Instant {
        sent + self.loss_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_sets_everything() {
        let mut r = RttEstimator::default();
        assert_eq!(r.smoothed(), INITIAL_RTT);
        r.update(100 * MS, Duration::ZERO, 25 * MS);
        assert_eq!(
            (r.smoothed(), r.var(), r.min()),
            (100 * MS, 50 * MS, 100 * MS)
        );
        assert_eq!(r.pto_base(25 * MS), 100 * MS + 200 * MS + 25 * MS);
    }

    #[test]
    fn smoothing_and_ack_delay() {
        let mut r = RttEstimator::default();
        r.update(100 * MS, Duration::ZERO, 25 * MS);
        // 140 ms with 20 ms of ack delay counts as 120 ms.
        r.update(140 * MS, 20 * MS, 25 * MS);
        assert_eq!(r.smoothed(), (100 * MS * 7 + 120 * MS) / 8);
        assert_eq!(r.var(), (50 * MS * 3 + 20 * MS) / 4);
        // Ack delay is not subtracted below the minimum RTT.
        r.update(105 * MS, 20 * MS, 25 * MS);
        assert_eq!(r.latest(), 105 * MS);
        assert_eq!(r.min(), 100 * MS);
        assert!(r.loss_delay() >= r.smoothed() * 9 / 8);
    }

    #[test]
    fn converges_to_a_steady_rtt() {
        let mut r = RttEstimator::default();
        for _ in 0..100 {
            r.update(40 * MS, Duration::ZERO, Duration::ZERO);
        }
        assert_eq!(r.smoothed(), 40 * MS);
        assert!(r.var() < MS);
    }
}
