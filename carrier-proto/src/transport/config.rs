//! Transport configuration: congestion control, loss recovery, buffers and windows.

use core::time::Duration;

use super::congestion::CongestionAlgorithm;
use super::recovery::RecoveryConfig;

/// Credit every sender may assume for a stream before the receiver says otherwise.
pub const INITIAL_STREAM_CREDIT: u64 = 64 * 1024;
/// Connection credit every sender may assume before the receiver says otherwise.
pub const INITIAL_CONNECTION_CREDIT: u64 = 256 * 1024;

/// How reliable streams behave. [`TransportConfig::default`] follows RFC 9002;
/// [`TransportConfig::low_latency`] trades bandwidth for latency the way KCP's fast mode does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The congestion controller. BBR by default: measured on a 100 Mbit/s, 40 ms RTT
    /// bottleneck with a one-BDP queue it keeps 0.95 / 0.96 / 0.93 of capacity at 0% / 1% /
    /// 5% random loss, where CUBIC and NewReno fall to 0.03 and 0.01 at 1% and 5% (they read
    /// every loss as congestion). `cargo run --release -p carrier-benches --bin
    /// transport_table` prints the comparison.
    pub congestion: CongestionAlgorithm,
    /// Loss detection and probe timing.
    pub recovery: RecoveryConfig,
    /// The RTT assumed before the first sample.
    pub initial_rtt: Duration,
    /// Send buffer per reliable stream: `write` takes at most this much unacknowledged data.
    pub send_buffer: usize,
    /// Receive window per reliable stream (the credit we grant; at least
    /// [`INITIAL_STREAM_CREDIT`]).
    pub stream_receive_window: u64,
    /// Receive window per session, over all streams (at least [`INITIAL_CONNECTION_CREDIT`]).
    pub receive_window: u64,
    /// Most out-of-order segments held per stream.
    pub max_reassembly_segments: usize,
    /// Send an ACK at once after this many ack-eliciting packets (otherwise within
    /// `recovery.max_ack_delay`).
    pub ack_eliciting_threshold: u32,
    /// Most ranges kept and sent in ACKs.
    pub max_ack_ranges: usize,
    /// Spread packets over the RTT instead of sending the window in a burst (on paths
    /// whose min RTT is at least the 1 ms timer granularity; shorter ones are not paced).
    pub pacing: bool,
    /// Early retransmission for sparse, latency-sensitive traffic: when the sender has
    /// nothing new to send and stream data has gone unacknowledged this long, send it once
    /// more without waiting for loss detection. The copy counts against the congestion
    /// window (so it is still congestion controlled); nothing is declared lost, so the
    /// window does not shrink. `None` (the default) turns it off.
    pub early_retransmit: Option<Duration>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            congestion: CongestionAlgorithm::Bbr,
            recovery: RecoveryConfig::default(),
            initial_rtt: Duration::from_millis(333),
            send_buffer: 4 * 1024 * 1024,
            stream_receive_window: 4 * 1024 * 1024,
            receive_window: 16 * 1024 * 1024,
            max_reassembly_segments: 8192,
            ack_eliciting_threshold: 2,
            max_ack_ranges: 32,
            pacing: true,
            early_retransmit: None,
        }
    }
}

impl TransportConfig {
    /// KCP "fast mode" ideas as configuration: ACK every packet at once, retransmit after
    /// two later packets, back off 1.5× instead of 2×, a 5 ms probe floor, and early
    /// retransmission of idle-time tail data after 5 ms. Still congestion controlled.
    pub fn low_latency() -> Self {
        TransportConfig {
            recovery: RecoveryConfig::low_latency(),
            ack_eliciting_threshold: 1,
            early_retransmit: Some(Duration::from_millis(5)),
            initial_rtt: Duration::from_millis(100),
            ..TransportConfig::default()
        }
    }
}
