//! Congestion control behind one trait, in the manner of quinn-proto's `Controller`.
//!
//! The recovery layer tells the controller what happened (bytes sent, acknowledged, lost)
//! and asks it one thing: how many bytes may be in flight ([`Controller::window`]). Pacing
//! spreads that window over the RTT (see `pacing.rs`).

mod cubic;
mod new_reno;

pub use cubic::Cubic;
pub use new_reno::NewReno;

use alloc::boxed::Box;
use core::fmt::Debug;

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

    /// Bytes that may be in flight.
    fn window(&self) -> usize;

    /// The name, for stats and benchmark tables.
    fn name(&self) -> &'static str;

    /// A copy, as a fresh box.
    fn clone_box(&self) -> Box<dyn Controller>;
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
}

impl CongestionAlgorithm {
    /// A fresh controller of this kind for datagrams of at most `max_datagram` bytes.
    pub fn build(self, max_datagram: usize) -> Box<dyn Controller> {
        match self {
            CongestionAlgorithm::NewReno => Box::new(NewReno::new(max_datagram)),
            CongestionAlgorithm::Cubic => Box::new(Cubic::new(max_datagram)),
        }
    }
}
