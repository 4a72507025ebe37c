//! Property tests of `Endpoint::handle_input` with hostile input: arbitrary bytes, packets
//! with a valid header and checksum but arbitrary payloads, and mutations of real packets.
//! The endpoint must never panic, must count every datagram it drops, and must not grow its
//! queues without bound.

use core::time::Duration;

use bytes::{Bytes, BytesMut};
use carrier_proto::packet::{Header, OVERHEAD, PacketType, write_packet};
use carrier_proto::{
    Config, Endpoint, Input, Instant, Output, StreamOptions as O, StreamType as T,
};
use carrier_tests::sim::{Handshake, Sim};
use proptest::prelude::*;

/// Two connected peers; returns the sim, the handshake, and the packets captured on the way.
fn connected() -> (Sim, Handshake) {
    let mut sim = Sim::new(99);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(
        a,
        b,
        &[
            (T::Application, O::PLAIN),
            (T::Text, O::RELIABLE.union(O::PLAIN)),
        ],
    );
    assert!(sim.run_until_connected(&hs, 2));
    (sim, hs)
}

/// Feeds one datagram to the answerer and drains it; returns the events it produced.
fn feed(sim: &mut Sim, hs: &Handshake, contents: Bytes) -> usize {
    let (from, to) = (
        sim.peers[hs.offerer_peer].addr,
        sim.peers[hs.answerer_peer].addr,
    );
    let now = sim.now;
    let ep: &mut Endpoint = sim.ep(hs.answerer_peer);
    ep.handle_input(Input::Receive {
        now,
        source: from,
        destination: to,
        contents,
    });
    let mut events = 0;
    loop {
        match ep.poll_output() {
            Output::Event(_) => events += 1,
            Output::Transmit(_) => {}
            Output::Timeout(_) => return events,
        }
    }
}

fn dropped(ep: &mut Endpoint) -> u64 {
    let s = ep.stats();
    s.dropped_not_carrier
        + s.dropped_unknown_session
        + s.dropped_bad_checksum
        + s.dropped_malformed
        + s.dropped_unexpected
        + s.dropped_after_end
}

fn packet_type() -> impl Strategy<Value = PacketType> {
    prop_oneof![
        Just(PacketType::Check),
        Just(PacketType::CheckAck),
        Just(PacketType::Data)
    ]
}

proptest! {
    // Failures print the minimal input; no regression file (this crate has no lib.rs root
    // for proptest's default persistence to find).
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_counted_and_dropped(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let (mut sim, hs) = connected();
        let before = dropped(sim.ep(hs.answerer_peer));
        let events = feed(&mut sim, &hs, bytes.into());
        prop_assert_eq!(events, 0);
        prop_assert_eq!(dropped(sim.ep(hs.answerer_peer)), before + 1);
    }

    #[test]
    fn valid_header_arbitrary_payload_never_panics(
        ty in packet_type(),
        pn in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let (mut sim, hs) = connected();
        let header = Header { packet_type: ty, destination: hs.answerer.as_u64(), packet_number: pn };
        let mut out = BytesMut::new();
        write_packet(&mut out, &header, 4, |o| o.extend_from_slice(&payload));
        let events = feed(&mut sim, &hs, out.freeze());
        // At most one event per frame, and a frame is at least one byte.
        prop_assert!(events <= payload.len().max(1) * 2);
        // Still alive afterwards: the session keeps working.
        let id = sim.session(hs.offerer_peer, hs.offerer).stream_at(0).unwrap();
        let now = sim.now;
        let _ = sim.session(hs.offerer_peer, hs.offerer).write(now, id, b"after");
        sim.drain(hs.offerer_peer);
        sim.run_for(Duration::from_millis(5));
    }

    #[test]
    fn mutated_real_packets_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), fix_checksum in any::<bool>()) {
        let (mut sim, hs) = connected();
        // A real datagram packet: frames behind a valid header.
        let id = sim.session(hs.offerer_peer, hs.offerer).stream_at(0).unwrap();
        let now = sim.now;
        sim.session(hs.offerer_peer, hs.offerer).write(now, id, b"0123456789").unwrap();
        let Output::Transmit(t) = sim.ep(hs.offerer_peer).poll_output() else { panic!("a transmit") };
        let mut bytes = t.contents.to_vec();
        let body_len = bytes.len() - 4;
        for (at, x) in flips {
            // Keep the header (routing bytes, packet number) so the mutation reaches the
            // session's frame parser.
            let head = carrier_proto::packet::HEADER_LEN;
            let at = head + at % (body_len - head).max(1);
            bytes[at] ^= x;
        }
        if fix_checksum {
            let crc = crc32(&bytes[..body_len]);
            bytes[body_len..].copy_from_slice(&crc.to_be_bytes());
        }
        prop_assert!(bytes.len() >= OVERHEAD);
        feed(&mut sim, &hs, bytes.into());
    }
}

/// CRC-32 (IEEE), bit by bit: an independent check of the packet trailer.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn an_undrained_flood_of_datagrams_is_bounded_by_the_event_limit() {
    let mut sim = Sim::new(5);
    let cfg = Config {
        max_queued_events: 100,
        ..Config::default()
    };
    let (a, b) = (
        sim.add_peer_with("alice", cfg.clone()),
        sim.add_peer_with("bob", cfg),
    );
    let hs = sim.handshake(a, b, &[(T::Application, O::PLAIN)]);
    assert!(sim.run_until_connected(&hs, 1));
    let id = sim.session(a, hs.offerer).stream_at(0).unwrap();
    let mut packets = Vec::new();
    for i in 0..1000u32 {
        let now = sim.now;
        sim.session(a, hs.offerer)
            .write(now, id, &i.to_be_bytes())
            .unwrap();
        while let Output::Transmit(t) = sim.ep(a).poll_output() {
            packets.push(t);
        }
    }
    // Datagrams share the congestion window: what did not fit waits in the sender's
    // datagram queue (nothing is dropped at the sender).
    let n = packets.len() as u64;
    assert!(
        n >= 100,
        "the initial window lets at least 100 small datagrams out ({n})"
    );
    assert_eq!(sim.ep(a).stats().datagrams_queued, 1000 - n);
    assert_eq!(sim.ep(a).stats().datagrams_congestion_dropped, 0);
    assert_eq!(
        sim.session(a, hs.offerer).queued_datagram_bytes() as u64,
        (1000 - n) * 4
    );
    // Bob's application never drains: the queue stops at the limit and the rest is counted.
    let ep = sim.ep(b);
    for t in packets {
        ep.handle_input(Input::Receive {
            now: Instant::ZERO + Duration::from_secs(1),
            source: t.source,
            destination: t.destination,
            contents: t.contents,
        });
    }
    let stats = ep.stats();
    assert_eq!(stats.events_dropped, n - 100, "{stats:?}");
    assert_eq!(stats.datagrams_dropped, n - 100, "{stats:?}");
    let mut queued = 0;
    while let Output::Event(_) = ep.poll_output() {
        queued += 1;
    }
    assert_eq!(queued, 100);
}

#[test]
fn crc_helper_matches_the_wire() {
    let mut out = BytesMut::new();
    let h = Header {
        packet_type: PacketType::Data,
        destination: 1,
        packet_number: 2,
    };
    write_packet(&mut out, &h, 4, |o| o.extend_from_slice(b"x"));
    let n = out.len() - 4;
    assert_eq!(crc32(&out[..n]).to_be_bytes(), out[n..]);
}
