//! Shared fixtures for the carrier-rs benchmarks (the benches themselves are in `benches/`).

pub mod alloc_counter;
pub mod bottleneck;
pub mod channels;
pub mod compare;
pub mod latency;
pub mod many;
pub mod pair;

use std::net::SocketAddr;

use carrier_proto::sdp::{MediaDescription, SessionDescription};
use carrier_proto::{Candidate, CandidateType, StreamOptions, StreamType};

/// The description the SDP benchmark parses: 4 streams with 8 candidates each (host,
/// server-reflexive and relayed; IPv4 and IPv6).
pub fn four_stream_description() -> SessionDescription {
    let mut desc = SessionDescription::new(
        0x0123_4567_89ab_cdef,
        "f00dcafe",
        "0123456789abcdefghijklmnopqrstuv",
    );
    desc.bundle = Some("filetransfer/v1".into());
    let kinds = [
        (StreamType::Video, StreamOptions::empty()),
        (StreamType::Audio, StreamOptions::empty()),
        (
            StreamType::Text,
            StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
        ),
        (
            StreamType::Application,
            StreamOptions::RELIABLE | StreamOptions::PORT_FORWARDING,
        ),
    ];
    for (stream_type, options) in kinds {
        let mut candidates = Vec::new();
        for i in 0..8u16 {
            let (kind, address, related): (_, SocketAddr, Option<SocketAddr>) = match i % 4 {
                0 => (
                    CandidateType::Host,
                    format!("192.0.2.{}:{}", i + 1, 40000 + i).parse().unwrap(),
                    None,
                ),
                1 => (
                    CandidateType::Host,
                    format!("[2001:db8::{}]:{}", i + 1, 40000 + i)
                        .parse()
                        .unwrap(),
                    None,
                ),
                2 => (
                    CandidateType::ServerReflexive,
                    format!("203.0.113.{}:{}", i + 1, 50000 + i)
                        .parse()
                        .unwrap(),
                    Some(format!("192.0.2.{}:{}", i + 1, 40000 + i).parse().unwrap()),
                ),
                _ => (
                    CandidateType::Relayed,
                    format!("198.51.100.{}:{}", i + 1, 3478 + i)
                        .parse()
                        .unwrap(),
                    Some(
                        format!("203.0.113.{}:{}", i + 1, 50000 + i)
                            .parse()
                            .unwrap(),
                    ),
                ),
            };
            candidates.push(Candidate {
                foundation: format!("{}", i % 4 + 1),
                component: 1,
                priority: Candidate::compute_priority(kind, 65535 - i, 1),
                address,
                kind,
                related,
            });
        }
        desc.media.push(MediaDescription {
            stream_type,
            options,
            rejected: false,
            candidates,
        });
    }
    desc
}
