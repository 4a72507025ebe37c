//! The transport: what turns a session's datagram path into reliable, ordered, flow- and
//! congestion-controlled streams (the pieces of RFC 9002 loss recovery, with KCP's
//! low-latency options as configuration).
//!
//! - `varint.rs`: QUIC variable-length integers (frame fields);
//! - `ack.rs`: received packet numbers as ranges, and the ACK frame;
//! - `rtt.rs`: the RTT estimator;
//! - `recovery.rs`: sent packets, loss detection, probe timeouts, delivery-rate samples;
//! - `congestion/`: the `Controller` trait, NewReno, CUBIC and BBR;
//! - `pacing.rs`: spreading the window over the RTT (or the controller's rate);
//! - `send_stream.rs` / `recv_stream.rs` / `range_set.rs`: a reliable stream's two halves;
//! - `state.rs`: one session's transport state; `config.rs`: [`TransportConfig`].
//!
//! The session drives all of it (`session/reliable.rs`).

pub(crate) mod ack;
pub(crate) mod config;
pub(crate) mod congestion;
pub(crate) mod pacing;
pub(crate) mod range_set;
pub(crate) mod recovery;
pub(crate) mod recv_stream;
pub(crate) mod rtt;
pub(crate) mod send_stream;
pub(crate) mod state;
pub(crate) mod varint;

pub use config::TransportConfig;
