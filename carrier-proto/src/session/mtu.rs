//! Path MTU discovery (DPLPMTUD, RFC 8899, simplified): every path is assumed to carry
//! `Config::max_udp_payload`; a session with reliable streams probes for more, up to
//! `Config::mtu_ceiling`, with padded PING packets. A probe that is acknowledged raises the
//! size of the packets that carry stream data; one lost twice lowers the ceiling. Probes do
//! not count against the congestion window and their loss is no congestion signal (they
//! are expected to be lost when too big). Datagrams of unreliable streams keep the base
//! size, so what an application may send on them never shrinks.
//!
//! The search: the ceiling first (most paths carry it or nothing above the base), then
//! halving the gap between the largest size known to work and the smallest known not to.

/// Stop searching when the gap is smaller than this.
const CLOSE_ENOUGH: usize = 16;

/// Losses of one probe size before it is taken as too big (one could be congestion).
const MAX_LOSSES: u8 = 2;

/// One session's search.
#[derive(Debug, Clone)]
pub(crate) struct MtuDiscovery {
    /// The largest UDP payload known to work (what data packets use).
    current: usize,
    /// The largest that might work.
    upper: usize,
    /// The probe in flight, by size.
    in_flight: Option<usize>,
    /// Losses of the size probed last; below [`MAX_LOSSES`] it is probed again.
    losses: u8,
    /// The size to probe again after one loss.
    retry: Option<usize>,
    /// Probes sent.
    pub(crate) probes_sent: u64,
}

impl MtuDiscovery {
    pub(crate) fn new(base: usize, ceiling: usize) -> MtuDiscovery {
        MtuDiscovery {
            current: base,
            upper: ceiling.max(base),
            in_flight: None,
            losses: 0,
            retry: None,
            probes_sent: 0,
        }
    }

    /// Lets the search go up to `ceiling` (the path turned out to allow more than the
    /// configured ceiling: a loopback pair). Only before the first probe, so a search under
    /// way keeps its bounds; never lowers the ceiling.
    pub(crate) fn raise_ceiling(&mut self, ceiling: usize) {
        if self.probes_sent == 0 {
            self.upper = self.upper.max(ceiling);
        }
    }

    /// The largest UDP payload data packets may use.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// The size to probe now, if a probe is due.
    pub(crate) fn next_probe(&self) -> Option<usize> {
        if self.in_flight.is_some() || self.upper < self.current + CLOSE_ENOUGH {
            return None;
        }
        if let Some(size) = self.retry {
            return Some(size);
        }
        if self.probes_sent == 0 {
            return Some(self.upper);
        }
        Some(self.current + (self.upper - self.current).div_ceil(2))
    }

    pub(crate) fn on_probe_sent(&mut self, size: usize) {
        self.in_flight = Some(size);
        self.probes_sent += 1;
    }

    /// The probe of `size` was acknowledged (`true`) or declared lost.
    pub(crate) fn on_probe_fate(&mut self, size: usize, acked: bool) {
        if self.in_flight == Some(size) {
            self.in_flight = None;
        }
        if acked {
            self.current = self.current.max(size);
            self.losses = 0;
            self.retry = None;
        } else {
            self.losses += 1;
            self.retry = Some(size);
            if self.losses >= MAX_LOSSES {
                self.upper = size.saturating_sub(1).max(self.current);
                self.losses = 0;
                self.retry = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a path that carries `mtu`.
    fn search(base: usize, ceiling: usize, mtu: usize) -> (usize, u64) {
        let mut d = MtuDiscovery::new(base, ceiling);
        while let Some(size) = d.next_probe() {
            d.on_probe_sent(size);
            d.on_probe_fate(size, size <= mtu);
            assert!(d.probes_sent < 100, "the search must end");
        }
        (d.current(), d.probes_sent)
    }

    #[test]
    fn the_search_finds_the_path_mtu_within_the_margin() {
        for mtu in [1200, 1250, 1452, 1500, 4000, 9000, 16384] {
            let (found, probes) = search(1200, 16384, mtu);
            assert!(found <= mtu, "{found} above the path's {mtu}");
            assert!(mtu - found < CLOSE_ENOUGH, "{found} far below {mtu}");
            assert!(probes <= 2 * 12 + 1, "{probes} probes for {mtu}");
        }
        assert_eq!(search(1200, 1452, 1500), (1452, 1), "the ceiling at once");
        assert_eq!(search(1200, 1200, 9000), (1200, 0), "no ceiling: no probes");
    }

    #[test]
    fn one_loss_is_not_enough_to_give_up_a_size() {
        let mut d = MtuDiscovery::new(1200, 1452);
        d.on_probe_sent(1452);
        d.on_probe_fate(1452, false);
        assert_eq!(d.next_probe(), Some(1452), "probed again after one loss");
        d.on_probe_sent(1452);
        d.on_probe_fate(1452, false);
        assert_eq!(d.next_probe(), Some(1200 + 126), "two losses: search below");
        assert_eq!(d.current(), 1200);
    }
}
