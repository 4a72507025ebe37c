//! The transport: what turns a session's datagram path into reliable, ordered, flow- and
//! congestion-controlled streams (the pieces of RFC 9002 loss recovery, with KCP's
//! low-latency options as configuration).
//!
//! - `varint.rs`: QUIC variable-length integers (frame fields);
//! - `ack.rs`: received packet numbers as ranges, and the ACK frame;
//! - `rtt.rs`: the RTT estimator;
//! - `congestion/`: the `Controller` trait, NewReno and CUBIC;
//! - `pacing.rs`: spreading the window over the RTT.

// The session starts using these as the reliability layer is wired in.
#![allow(dead_code)]

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
