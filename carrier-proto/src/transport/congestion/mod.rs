//! Congestion control behind one trait, in the manner of quinn-proto's `Controller`.
//!
//! The recovery layer tells the controller what happened (bytes sent, acknowledged, lost)
//! and asks it one thing: how many bytes may be in flight ([`Controller::window`]). Pacing
//! spreads that window over the RTT (see `pacing.rs`).

mod bbr;
mod cubic;
mod new_reno;

pub use bbr::Bbr;
pub use cubic::Cubic;
pub use new_reno::NewReno;

use alloc::boxed::Box;
use core::fmt::Debug;
use core::time::Duration;

use super::rtt::RttEstimator;
use crate::time::Instant;

/// A congestion controller.
///
/// Byte counts are of ack-eliciting packets that count toward bytes in flight (everything
/// except pure ACKs). The recovery layer calls, in order of events:
/// `on_sent` for each such packet; `on_ack` for each newly acknowledged one; and
/// `on_congestion_event` once per loss detection pass that declared packets lost (with the
/// send time of the newest lost packet, so one flight's losses reduce the window once).
pub trait Controller: Debug + Send {
    /// A packet of `bytes` was sent at `now`.
    fn on_sent(&mut self, now: Instant, bytes: usize);

    /// A packet of `bytes`, sent at `sent`, was acknowledged at `now`. `app_limited` is true
    /// if the sender was not using the whole window when it sent (the window must then not
    /// grow: the ack proves nothing about the path's capacity).
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: usize,
        app_limited: bool,
        rtt: &RttEstimator,
    );

    /// Packets were declared lost at `now`; the newest of them was sent at `sent`.
    /// `lost_bytes` is their total. `persistent` signals persistent congestion (RFC 9002
    /// §7.6): the window collapses to the minimum.
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        lost_bytes: usize,
        persistent: bool,
    );

    /// A delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation), given once per
    /// ACK frame that acknowledged new data, after the `on_ack` calls for it. Model-based
    /// controllers (BBR) live on these; loss-based ones ignore them.
    fn on_rate_sample(&mut self, _now: Instant, _sample: &RateSample) {}

    /// The rate to pace at, in bytes per second, if this controller sets one (BBR). `None`:
    /// the pacer spreads the window over the smoothed RTT.
    fn pacing_rate(&self) -> Option<u64> {
        None
    }

    /// Path MTU discovery raised the largest datagram to `max_datagram` bytes: the window's
    /// units (its minimum, its growth per round) follow it, so a path carrying bigger
    /// packets is not held to the window of small ones.
    fn on_mtu_update(&mut self, max_datagram: usize);

    /// Bytes that may be in flight.
    fn window(&self) -> usize;

    /// The name, for stats and benchmark tables.
    fn name(&self) -> &'static str;

    /// A copy, as a fresh box.
    fn clone_box(&self) -> Box<dyn Controller>;
}

/// One delivery-rate sample: how fast the path delivered data over the last ACKed flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes delivered (acknowledged) per second over `interval`.
    pub delivery_rate: u64,
    /// Bytes delivered over the interval.
    pub delivered: u64,
    /// The interval: the longer of the send and the ACK spans of the sampled flight.
    pub interval: Duration,
    /// Total bytes delivered on the connection so far (after this ACK).
    pub total_delivered: u64,
    /// Total delivered when the newest acknowledged packet was sent (round counting: a round
    /// ends when this reaches the total delivered at the round's start).
    pub prior_delivered: u64,
    /// The sampled flight was sent while the application had too little to send, so the rate
    /// may understate the path (use it only if it raises the estimate).
    pub app_limited: bool,
    /// The RTT of the newest acknowledged packet.
    pub rtt: Duration,
    /// Bytes in flight after this ACK.
    pub bytes_in_flight: usize,
    /// Bytes declared lost by this ACK.
    pub lost: usize,
}

/// RFC 9002 §7.2: the initial window, `min(10·max_datagram, max(14720, 2·max_datagram))`.
pub fn initial_window(max_datagram: usize) -> usize {
    (10 * max_datagram).min(14_720.max(2 * max_datagram))
}

/// RFC 9002 §7.2: the smallest window, two datagrams.
pub fn minimum_window(max_datagram: usize) -> usize {
    2 * max_datagram
}

/// Which controller new sessions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CongestionAlgorithm {
    /// RFC 9002 NewReno.
    NewReno,
    /// RFC 9438 CUBIC.
    Cubic,
    /// BBR version 1 (draft-cardwell-iccrg-bbr-congestion-control): paces at the measured
    /// bottleneck bandwidth and keeps its window through random loss.
    Bbr,
}

impl CongestionAlgorithm {
    /// A fresh controller of this kind for datagrams of at most `max_datagram` bytes.
    pub fn build(self, max_datagram: usize) -> Box<dyn Controller> {
        match self {
            CongestionAlgorithm::NewReno => Box::new(NewReno::new(max_datagram)),
            CongestionAlgorithm::Cubic => Box::new(Cubic::new(max_datagram)),
            CongestionAlgorithm::Bbr => Box::new(Bbr::new(max_datagram)),
        }
    }
}
