//! Endpoint input: a connected session (one unreliable, one reliable stream) receives
//! arbitrary datagrams (raw, and with a valid
//! header for the session so they reach the frame parser). Nothing panics, every datagram is
//! counted, and the session still works afterwards.
#![no_main]

use bytes::BytesMut;
use carrier_proto::packet::{Header, PacketType, write_packet};
use carrier_proto::*;
use libfuzzer_sys::fuzz_target;

fn drain(ep: &mut Endpoint, out: &mut Vec<Transmit>) {
    loop {
        match ep.poll_output() {
            Output::Transmit(t) => out.push(t),
            Output::Event(_) => {}
            Output::Timeout(_) => return,
        }
    }
}

/// Two endpoints with a connected session, exchanging datagrams directly.
fn connected() -> (Endpoint, Endpoint, SessionId) {
    let now = Instant::ZERO;
    let mut a = Endpoint::new(Config::default().with_seed([1; 32]));
    let mut b = Endpoint::new(Config::default().with_seed([2; 32]));
    a.add_host_candidate("192.0.2.1:1".parse().unwrap());
    b.add_host_candidate("192.0.2.2:1".parse().unwrap());
    let s1 = a.new_session("b").unwrap();
    a.session(s1).unwrap().add_stream(StreamType::Application, StreamOptions::PLAIN).unwrap();
    // A reliable stream too, so fuzzed frames reach ACK, STREAM and credit handling.
    a.session(s1).unwrap().add_stream(StreamType::Text, StreamOptions::RELIABLE.union(StreamOptions::PLAIN)).unwrap();
    let pending = a.session(s1).unwrap().request(now, "").unwrap();
    let s2 = b.new_session("a").unwrap();
    b.session(s2).unwrap().add_stream(StreamType::Application, StreamOptions::PLAIN).unwrap();
    b.session(s2).unwrap().add_stream(StreamType::Text, StreamOptions::RELIABLE.union(StreamOptions::PLAIN)).unwrap();
    let answer = b.session(s2).unwrap().reply(pending.offer(), Reply::Accept).unwrap();
    b.session(s2).unwrap().start(now).unwrap();
    a.session(s1).unwrap().start_with(now, pending, answer).unwrap();
    let mut wire = Vec::new();
    for _ in 0..4 {
        drain(&mut a, &mut wire);
        drain(&mut b, &mut wire);
        for t in std::mem::take(&mut wire) {
            let to = if t.destination.ip().to_string() == "192.0.2.1" { &mut a } else { &mut b };
            to.handle_input(Input::Receive { now, source: t.source, destination: t.destination, contents: t.contents });
        }
    }
    (a, b, s2)
}

fuzz_target!(|data: &[u8]| {
    let (_a, mut b, s2) = connected();
    let source = "192.0.2.1:1".parse().unwrap();
    let destination = "192.0.2.2:1".parse().unwrap();
    let now = Instant::ZERO;
    let before = b.stats().packets_received;
    b.handle_input(Input::Receive { now, source, destination, contents: data.to_vec().into() });
    let ty = match data.first().map(|b| b % 3) {
        Some(0) => PacketType::Check,
        Some(1) => PacketType::CheckAck,
        _ => PacketType::Data,
    };
    let header = Header { packet_type: ty, destination: s2.as_u64(), packet_number: 7 };
    let mut packet = BytesMut::new();
    write_packet(&mut packet, &header, 4, |o| o.extend_from_slice(data.get(1..).unwrap_or(&[])));
    b.handle_input(Input::Receive { now, source, destination, contents: packet.freeze() });
    let mut out = Vec::new();
    drain(&mut b, &mut out);
    assert_eq!(b.stats().packets_received, before + 2);
    assert!(out.len() <= 4, "one datagram makes at most a few replies");
    b.handle_input(Input::Timeout(now + core::time::Duration::from_secs(1)));
    drain(&mut b, &mut out);
});
