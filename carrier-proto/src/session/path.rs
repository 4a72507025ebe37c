//! The connectivity path: checks over candidate pairs until one works.
//!
//! On `start`, every local candidate is paired with every remote candidate of the same
//! address family, in RFC 8445 pair-priority order. Checks go out on every pair at once and
//! are retransmitted on a doubling interval (`check_interval_initial` … `check_interval_max`)
//! until an ack arrives or `connect_timeout` passes. The first pair whose check is acked is
//! selected and the session's streams become Connected. A check received from the peer
//! triggers an immediate check of our own on that pair (RFC 8445 §7.3.1.4), which is what
//! makes both sides converge in about one round trip.
//!
//! This is the host-candidate core of ICE; server-reflexive and relayed candidates, consent
//! freshness and nomination by the controlling side come with the ICE layer.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::config::Config;
use crate::packet::TRANSACTION_ID_LEN;
use crate::time::Instant;
use crate::types::{AddressInfo, Candidate, CandidateType, NetworkTopology, TransportInfo};

/// Most distinct peer source addresses remembered as valid for data.
const MAX_KNOWN_SOURCES: usize = 16;

/// A local and a remote candidate, and how checking it went.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub(crate) local: AddressInfo,
    pub(crate) remote: AddressInfo,
    pub(crate) transaction: [u8; TRANSACTION_ID_LEN],
    pub(crate) succeeded: bool,
    /// A triggered check was already sent on this pair.
    triggered: bool,
    priority: u64,
}

impl Pair {
    /// Both ends are loopback addresses (127.0.0.0/8, ::1): a path that never leaves the
    /// host, whose MTU is the loopback interface's (64 KiB on Linux).
    pub(crate) fn is_loopback(&self) -> bool {
        self.local.address.ip().is_loopback() && self.remote.address.ip().is_loopback()
    }
}

/// Checking state and the selected pair.
#[derive(Clone, Debug, Default)]
pub(crate) struct Path {
    pub(crate) pairs: Vec<Pair>,
    selected: Option<usize>,
    running: bool,
    /// [`Config::max_candidate_pairs`], fixed at start.
    max_pairs: usize,
    next_check: Option<Instant>,
    interval: Duration,
    deadline: Option<Instant>,
    /// Peer addresses that proved themselves with a valid check or ack.
    known_sources: Vec<SocketAddr>,
}

fn info(c: &Candidate) -> AddressInfo {
    AddressInfo {
        kind: c.kind,
        address: c.address,
        related: c.related,
    }
}

/// RFC 8445 §6.1.2.3: 2^32·min(G,D) + 2·max(G,D) + (G > D).
fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (u64::from(controlling), u64::from(controlled));
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

impl Path {
    /// Builds the pairs and arms the timers. `controlling` is true on the offerer.
    /// Returns nothing to send yet: the caller's next timeout pass sends the first checks.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        locals: &[Candidate],
        remotes: &[Candidate],
        controlling: bool,
        config: &Config,
        mut transaction: impl FnMut() -> [u8; TRANSACTION_ID_LEN],
    ) {
        self.pairs.clear();
        self.max_pairs = config.max_candidate_pairs;
        for l in locals {
            for r in remotes
                .iter()
                .filter(|r| r.address.is_ipv4() == l.address.is_ipv4())
            {
                if self.pairs.len() >= self.max_pairs {
                    break;
                }
                let (g, d) = if controlling {
                    (l.priority, r.priority)
                } else {
                    (r.priority, l.priority)
                };
                self.pairs.push(Pair {
                    local: info(l),
                    remote: info(r),
                    transaction: transaction(),
                    succeeded: false,
                    triggered: false,
                    priority: pair_priority(g, d),
                });
            }
        }
        // Stable sort: equal priorities keep the deterministic candidate order.
        self.pairs.sort_by_key(|p| core::cmp::Reverse(p.priority));
        self.running = true;
        self.interval = config.check_interval_initial;
        self.next_check = Some(now);
        self.deadline = Some(now + config.connect_timeout);
    }

    /// Stops all checking (the session ended).
    pub(crate) fn stop(&mut self) {
        self.running = false;
        self.next_check = None;
        self.deadline = None;
    }

    pub(crate) fn selected(&self) -> Option<&Pair> {
        self.selected.and_then(|i| self.pairs.get(i))
    }

    /// When the path next needs attention (a retransmission or the connect deadline).
    pub(crate) fn next_timeout(&self) -> Instant {
        if !self.running || self.selected.is_some() {
            return Instant::FAR_FUTURE;
        }
        let check = self.next_check.unwrap_or(Instant::FAR_FUTURE);
        check.min(self.deadline.unwrap_or(Instant::FAR_FUTURE))
    }

    /// True once checking has run out of time without a working pair.
    pub(crate) fn timed_out(&self, now: Instant) -> bool {
        self.running && self.selected.is_none() && self.deadline.is_some_and(|d| now >= d)
    }

    /// If a retransmission round is due, returns the indices of the pairs to check and arms
    /// the next round.
    pub(crate) fn due_checks(&mut self, now: Instant, max_interval: Duration) -> Vec<usize> {
        if !self.running || self.selected.is_some() || self.next_check.is_none_or(|t| now < t) {
            return Vec::new();
        }
        self.next_check = Some(now + self.interval);
        self.interval = (self.interval * 2).min(max_interval);
        (0..self.pairs.len())
            .filter(|&i| !self.pairs[i].succeeded)
            .collect()
    }

    /// The pair (local, remote), if we have it.
    fn find(&self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.local.address == local && p.remote.address == remote)
    }

    /// A valid check arrived from `remote` on `local`: remembers the source, and returns the
    /// pair to send a triggered check on, if one is due. A source that is not among the
    /// remote candidates becomes a peer-reflexive pair (while there is room).
    pub(crate) fn on_check(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        transaction: impl FnOnce() -> [u8; TRANSACTION_ID_LEN],
    ) -> Option<usize> {
        self.remember_source(remote);
        if !self.running || self.selected.is_some() {
            return None;
        }
        let index = match self.find(local, remote) {
            Some(i) => i,
            None if self.pairs.len() < self.max_pairs => {
                let local_kind = self
                    .pairs
                    .iter()
                    .find(|p| p.local.address == local)
                    .map_or(CandidateType::Host, |p| p.local.kind);
                self.pairs.push(Pair {
                    local: AddressInfo {
                        kind: local_kind,
                        address: local,
                        related: None,
                    },
                    remote: AddressInfo {
                        kind: CandidateType::PeerReflexive,
                        address: remote,
                        related: None,
                    },
                    transaction: transaction(),
                    succeeded: false,
                    triggered: false,
                    priority: 0,
                });
                self.pairs.len() - 1
            }
            None => return None,
        };
        let pair = &mut self.pairs[index];
        if pair.succeeded || pair.triggered {
            return None;
        }
        pair.triggered = true;
        Some(index)
    }

    /// An ack arrived: if it matches a pair's check, marks it and selects it when nothing
    /// is selected yet. Returns true when this ack selected the path.
    pub(crate) fn on_ack(
        &mut self,
        transaction: &[u8; TRANSACTION_ID_LEN],
        from: SocketAddr,
    ) -> bool {
        let Some(i) = self
            .pairs
            .iter()
            .position(|p| &p.transaction == transaction && p.remote.address == from)
        else {
            return false;
        };
        self.pairs[i].succeeded = true;
        self.remember_source(from);
        if self.selected.is_none() && self.running {
            self.selected = Some(i);
            return true;
        }
        false
    }

    /// An authenticated packet (sealed with this session's keys) arrived on `local` from
    /// `remote` before our own checks selected a path. If we answered the peer's check on
    /// that pair, the peer's check succeeded there (it is sending on it), so the pair works
    /// both ways: select it rather than drop the peer's first data. Returns true when this
    /// selected the path.
    pub(crate) fn on_authenticated_data(&mut self, local: SocketAddr, remote: SocketAddr) -> bool {
        if self.selected.is_some() || !self.running {
            return false;
        }
        let Some(i) = self.find(local, remote) else {
            return false;
        };
        let pair = &mut self.pairs[i];
        if !(pair.triggered || pair.succeeded) {
            return false;
        }
        pair.succeeded = true;
        self.selected = Some(i);
        true
    }

    fn remember_source(&mut self, addr: SocketAddr) {
        if !self.known_sources.contains(&addr) && self.known_sources.len() < MAX_KNOWN_SOURCES {
            self.known_sources.push(addr);
        }
    }

    /// Whether data from `addr` is from the peer (a remote candidate or a checked source).
    pub(crate) fn is_known_source(&self, addr: SocketAddr) -> bool {
        self.known_sources.contains(&addr) || self.pairs.iter().any(|p| p.remote.address == addr)
    }

    /// The transport info of the selected pair.
    pub(crate) fn transport_info(&self) -> Option<TransportInfo> {
        self.selected().map(|p| TransportInfo {
            topology: NetworkTopology::of_pair(p.local.kind, p.remote.kind),
            local: p.local,
            remote: p.remote,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(initial_ms: u64, timeout_ms: u64) -> Config {
        Config {
            check_interval_initial: Duration::from_millis(initial_ms),
            connect_timeout: Duration::from_millis(timeout_ms),
            ..Config::default()
        }
    }

    fn host(addr: &str) -> Candidate {
        Candidate::host(addr.parse().unwrap(), 65535)
    }

    #[test]
    fn pairs_match_families_and_first_ack_selects() {
        let mut p = Path::default();
        let locals = [host("192.0.2.1:1"), host("[2001:db8::1]:1")];
        let remotes = [
            host("192.0.2.2:2"),
            host("[2001:db8::2]:2"),
            host("198.51.100.2:2"),
        ];
        let mut n = 0u8;
        p.start(
            Instant::ZERO,
            &locals,
            &remotes,
            true,
            &config(100, 10_000),
            || {
                n += 1;
                [n; 12]
            },
        );
        assert_eq!(p.pairs.len(), 3);
        assert_eq!(p.due_checks(Instant::ZERO, Duration::from_secs(1)).len(), 3);
        assert!(
            p.due_checks(Instant::ZERO, Duration::from_secs(1))
                .is_empty()
        );
        let t = p.pairs[1].transaction;
        let from = p.pairs[1].remote.address;
        assert!(
            !p.on_ack(&t, "192.0.2.99:9".parse().unwrap()),
            "ack from the wrong address"
        );
        assert!(p.on_ack(&t, from));
        assert_eq!(p.selected().unwrap().remote.address, from);
        assert_eq!(p.next_timeout(), Instant::FAR_FUTURE);
        assert_eq!(p.transport_info().unwrap().topology, NetworkTopology::Lan);
    }

    #[test]
    fn retransmissions_back_off_and_time_out() {
        let mut p = Path::default();
        p.start(
            Instant::ZERO,
            &[host("192.0.2.1:1")],
            &[host("192.0.2.2:2")],
            false,
            &config(100, 1000),
            || [0; 12],
        );
        let mut sends = Vec::new();
        let mut now = Instant::ZERO;
        while !p.timed_out(now) {
            if !p.due_checks(now, Duration::from_millis(400)).is_empty() {
                sends.push(now.as_nanos() / 1_000_000);
            }
            now = p.next_timeout();
        }
        assert_eq!(sends, [0, 100, 300, 700]);
        assert_eq!(now.as_nanos(), 1_000_000_000);
    }

    #[test]
    fn unknown_source_becomes_peer_reflexive_and_triggers_once() {
        let mut p = Path::default();
        p.start(
            Instant::ZERO,
            &[host("192.0.2.1:1")],
            &[host("192.0.2.2:2")],
            true,
            &config(100, 1000),
            || [1; 12],
        );
        let local = "192.0.2.1:1".parse().unwrap();
        let nat = "203.0.113.5:7777".parse().unwrap();
        assert_eq!(p.on_check(local, nat, || [2; 12]), Some(1));
        assert_eq!(p.on_check(local, nat, || [3; 12]), None);
        assert_eq!(p.pairs[1].remote.kind, CandidateType::PeerReflexive);
        assert!(p.is_known_source(nat));
    }
}
