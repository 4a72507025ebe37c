//! Packet protection on the simulator: a protected session's packets are sealed, any bit
//! flipped is refused, a replay is refused, another session's or a spoofer's packets are
//! refused, a wrong key never connects, and PLAIN streams go in clear (and still work).

use core::time::Duration;

use bytes::Bytes;
use carrier_proto::packet::{HEADER_LEN, Header, PacketType};
use carrier_proto::{
    Event, Input, StateReason, StreamOptions as O, StreamState as S, StreamType as T,
};
use carrier_tests::netem::LinkConfig;
use carrier_tests::sim::{Handshake, Sim, stream_id};

const SECRET: &[u8] = b"the eagle lands at noon";

/// Two peers with one stream of `options`, connected over a LAN link; every datagram
/// on the wire is recorded in the returned log.
fn connected(
    seed: u64,
    options: O,
) -> (Sim, Handshake, std::rc::Rc<std::cell::RefCell<Vec<Bytes>>>) {
    let mut sim = Sim::new(seed);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let log = record(&mut sim, false);
    let hs = sim.handshake(a, b, &[(T::Application, options)]);
    assert!(
        sim.run_until_connected(&hs, 1),
        "seed {seed}: no connection"
    );
    sim.set_link(a, b, LinkConfig::lan());
    (sim, hs, log)
}

/// The stats counters that mean "dropped", summed.
fn drops(s: carrier_proto::EndpointStats) -> u64 {
    s.dropped_not_carrier
        + s.dropped_unknown_session
        + s.dropped_bad_checksum
        + s.dropped_malformed
        + s.dropped_unexpected
        + s.dropped_after_end
        + s.dropped_bad_tag
        + s.dropped_replay
}

/// Records every datagram put on the wire from now on (and drops them all if `drop`).
fn record(sim: &mut Sim, drop: bool) -> Log {
    let log = Log::default();
    let sink = log.clone();
    sim.drop_filter = Some(Box::new(move |_, d| {
        sink.borrow_mut().push(d.contents.clone());
        drop
    }));
    log
}

/// The datagrams [`record`] saw.
type Log = std::rc::Rc<std::cell::RefCell<Vec<Bytes>>>;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Sends SECRET on the stream from the offerer and returns what the answerer got.
fn send_secret(sim: &mut Sim, hs: &Handshake) -> Vec<u8> {
    let id = stream_id(sim, hs.offerer_peer, hs.offerer, 0);
    let now = sim.now;
    sim.session(hs.offerer_peer, hs.offerer)
        .write(now, id, SECRET)
        .unwrap();
    sim.drain(hs.offerer_peer);
    sim.run_for(Duration::from_millis(100));
    sim.received(hs.answerer_peer, hs.answerer, 0)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect()
}

#[test]
fn protected_payload_is_not_on_the_wire_and_plain_payload_is() {
    for reliable in [false, true] {
        let base = if reliable { O::RELIABLE } else { O::empty() };
        let (mut sim, hs, log) = connected(1, base);
        assert_eq!(send_secret(&mut sim, &hs), SECRET);
        assert!(
            !log.borrow().iter().any(|d| contains(d, SECRET)),
            "a protected stream's bytes never appear on the wire"
        );
        let (mut sim, hs, log) = connected(2, base | O::PLAIN);
        assert_eq!(
            send_secret(&mut sim, &hs),
            SECRET,
            "PLAIN streams interoperate"
        );
        assert!(
            log.borrow().iter().any(|d| contains(d, SECRET)),
            "a PLAIN stream's bytes are in clear"
        );
    }
}

/// The last DATA packet the offerer sent (sealed), as captured on the wire.
fn last_data_packet(log: &[Bytes], destination: u64) -> Bytes {
    log.iter()
        .rev()
        .find(|d| {
            Header::parse_protected(d, 16)
                .is_ok_and(|h| h.packet_type == PacketType::Data && h.destination == destination)
        })
        .cloned()
        .expect("a data packet")
}

#[test]
fn every_bit_flip_and_every_replay_is_refused() {
    let (mut sim, hs, log) = connected(3, O::empty());
    let (bob, bob_session) = (hs.answerer_peer, hs.answerer);
    let id = stream_id(&mut sim, hs.offerer_peer, hs.offerer, 0);
    let now = sim.now;
    // Capture the packet carrying SECRET without delivering it.
    drop(log);
    let rec = record(&mut sim, true);
    sim.session(hs.offerer_peer, hs.offerer)
        .write(now, id, SECRET)
        .unwrap();
    sim.drain(hs.offerer_peer);
    sim.drop_filter = None;
    let packet = last_data_packet(&rec.borrow(), bob_session.as_u64());
    let (from, to) = (sim.peers[hs.offerer_peer].addr, sim.peers[bob].addr);
    let deliver = |sim: &mut Sim, contents: Bytes| {
        let now = sim.now;
        sim.ep(bob).handle_input(Input::Receive {
            now,
            source: from,
            destination: to,
            contents,
        });
        sim.drain(bob);
    };
    let events_before = sim.peers[bob].events.len();
    for bit in 0..packet.len() * 8 {
        let mut bad = packet.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        let before = drops(sim.ep(bob).stats());
        deliver(&mut sim, Bytes::from(bad));
        assert_eq!(
            drops(sim.ep(bob).stats()),
            before + 1,
            "bit {bit} flipped: the packet must be dropped"
        );
    }
    assert_eq!(
        sim.peers[bob].events.len(),
        events_before,
        "nothing got through"
    );
    let flips_in_body = (packet.len() - HEADER_LEN) * 8;
    assert!(sim.ep(bob).stats().dropped_bad_tag >= flips_in_body as u64);
    // The genuine packet is accepted once; the same packet again is a replay.
    // (A flipped packet-number bit can name a number seen before: that counts as a replay.)
    let replays = sim.ep(bob).stats().dropped_replay;
    deliver(&mut sim, packet.clone());
    assert_eq!(sim.ep(bob).stats().dropped_replay, replays);
    let got: Vec<u8> = sim
        .received(bob, bob_session, 0)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(got, SECRET);
    for _ in 0..3 {
        deliver(&mut sim, packet.clone());
    }
    assert_eq!(sim.ep(bob).stats().dropped_replay, replays + 3);
    assert_eq!(sim.received(bob, bob_session, 0).len(), 1, "delivered once");
}

#[test]
fn another_sessions_packets_and_a_spoofers_are_refused() {
    // Two protected sessions between the same peers.
    let mut sim = Sim::new(4);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let rec = record(&mut sim, false);
    let one = sim.handshake(a, b, &[(T::Application, O::empty())]);
    let two = sim.handshake(a, b, &[(T::Application, O::empty())]);
    assert!(sim.run_until_connected(&one, 1) && sim.run_until_connected(&two, 1));
    // A packet of session one, re-addressed to session two (its header rewritten): the
    // header is authenticated, so the tag fails.
    let p1 = last_data_packet(&rec.borrow(), one.answerer.as_u64());
    let mut moved = p1.to_vec();
    moved[1..9].copy_from_slice(&two.answerer.as_u64().to_be_bytes());
    let before = sim.ep(b).stats();
    let (from, to) = (sim.peers[a].addr, sim.peers[b].addr);
    let now = sim.now;
    sim.ep(b).handle_input(Input::Receive {
        now,
        source: from,
        destination: to,
        contents: Bytes::from(moved),
    });
    assert_eq!(
        sim.ep(b).stats().dropped_bad_tag,
        before.dropped_bad_tag + 1
    );
    // A spoofer who knows the session id (it travels in clear) but not the keys: a
    // well-formed packet with a valid CRC, from anywhere, is refused.
    let mut forged = bytes::BytesMut::new();
    let header = Header {
        packet_type: PacketType::Data,
        destination: two.answerer.as_u64(),
        packet_number: 1 << 20,
    };
    carrier_proto::packet::write_packet(&mut forged, &header, 3, |o| {
        o.extend_from_slice(&[0x01; 40])
    });
    let spoofed_from = "203.0.113.9:4444".parse().unwrap();
    sim.ep(b).handle_input(Input::Receive {
        now,
        source: spoofed_from,
        destination: to,
        contents: forged.freeze(),
    });
    assert_eq!(
        sim.ep(b).stats().dropped_bad_tag,
        before.dropped_bad_tag + 2
    );
    // Both sessions still work.
    sim.drain(b);
    assert!(sim.settled(&one) && sim.settled(&two));
}

#[test]
fn a_wrong_key_never_connects() {
    // An attacker on the signaling path swaps the answer's key for its own.
    let attacker = carrier_proto::derive_schedule([7; 32], [8; 32])
        .unwrap()
        .offerer_public;
    let attacker_hex: String = attacker.iter().map(|b| format!("{b:02x}")).collect();
    let mut sim = Sim::new(5);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let streams = [(T::Application, O::RELIABLE)];
    let hs = sim.handshake_tampered(a, b, &streams, &streams, |answer| {
        answer
            .lines()
            .map(|l| {
                if l.starts_with("a=x-carrier-key:") {
                    format!("a=x-carrier-key:{attacker_hex}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    });
    sim.run_for(Duration::from_secs(15));
    for (peer, session) in [(a, hs.offerer), (b, hs.answerer)] {
        let log = sim.state_log(peer, session, 0);
        assert!(
            !log.iter().any(|(s, _)| *s == S::Connected),
            "never Connected: {log:?}"
        );
        assert_eq!(
            log.last(),
            Some(&(S::Failed, Some(StateReason::ConnectTimeout)))
        );
        assert!(sim.ep(peer).stats().dropped_bad_tag > 0);
    }
    assert!(
        !sim.peers[b]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::StreamData { .. }))
    );
}

#[test]
fn signed_offers_and_answers_name_their_peer_and_tampering_is_caught() {
    use carrier_proto::{Answer, Config, Error, Offer, SdpLimits};
    let (alice_id, bob_id) = ([0xA1; 32], [0xB0; 32]);
    let mut sim = Sim::new(6);
    let a = sim.add_peer_with("alice", Config::default().with_identity(alice_id));
    let b = sim.add_peer_with("bob", Config::default().with_identity(bob_id));
    let alice_public = sim.ep(a).identity().unwrap();
    let bob_public = sim.ep(b).identity().unwrap();
    assert_ne!(alice_public, bob_public);
    let limits = SdpLimits::default();

    // The offer carries Alice's identity and a signature over everything, her key too.
    let s1 = sim.ep(a).new_session("bob").unwrap();
    sim.session(a, s1)
        .add_stream(T::Application, O::RELIABLE)
        .unwrap();
    let now = sim.now;
    let pending = sim.session(a, s1).request(now, "").unwrap();
    let offer_text = pending.offer().to_sdp_string();
    let offer = Offer::parse(&offer_text, &limits).unwrap();
    assert_eq!(offer.identity(), Some(alice_public));
    // Any change on the signaling path breaks the signature: a swapped key, another
    // candidate port, a dropped signature line.
    let swapped = rewrite(&offer_text, "a=x-carrier-key:", &hex(&[9; 32]));
    assert_eq!(Offer::parse(&swapped, &limits), Err(Error::BadSignature));
    let moved = offer_text.replace(
        &format!(" {} typ host", sim.peers[a].addr.port()),
        " 9 typ host",
    );
    assert_ne!(moved, offer_text);
    assert_eq!(Offer::parse(&moved, &limits), Err(Error::BadSignature));
    let unsigned: String = offer_text
        .lines()
        .filter(|l| !l.starts_with("a=x-carrier-signature:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    assert_eq!(Offer::parse(&unsigned, &limits), Err(Error::BadSignature));
    // An attacker who re-signs with its own identity is caught by the application's
    // check: the identity is not Alice's.
    let mut mallory = carrier_proto::Endpoint::new(Config::default().with_identity([0x66; 32]));
    let mallory_public = mallory.identity().unwrap();
    mallory.add_host_candidate(sim.peers[a].addr);
    let ms = mallory.new_session("bob").unwrap();
    mallory
        .session(ms)
        .unwrap()
        .add_stream(T::Application, O::RELIABLE)
        .unwrap();
    let mallory_offer = mallory.session(ms).unwrap().request(now, "").unwrap();
    let parsed = Offer::parse(&mallory_offer.offer().to_sdp_string(), &limits).unwrap();
    assert_eq!(parsed.identity(), Some(mallory_public));
    assert_ne!(
        parsed.identity(),
        Some(alice_public),
        "the app sees who really signed"
    );

    // Bob answers (signed), Alice checks Bob's identity before starting; they connect.
    let offer = sim.deliver_offer(b, "alice", &offer_text);
    assert_eq!(offer.identity(), Some(alice_public));
    let s2 = sim.ep(b).new_session("alice").unwrap();
    sim.session(b, s2)
        .add_stream(T::Application, O::RELIABLE)
        .unwrap();
    let answer = sim
        .session(b, s2)
        .reply(&offer, carrier_proto::Reply::Accept)
        .unwrap();
    sim.session(b, s2).start(now).unwrap();
    sim.drain(b);
    let answer_text = answer.to_sdp_string();
    let answer = Answer::parse(&answer_text, &limits).unwrap();
    assert_eq!(answer.identity(), Some(bob_public));
    let tampered = rewrite(&answer_text, "a=x-carrier-key:", &hex(&[9; 32]));
    assert_eq!(Answer::parse(&tampered, &limits), Err(Error::BadSignature));
    sim.session(a, s1).start_with(now, pending, answer).unwrap();
    sim.drain(a);
    let hs = Handshake {
        offerer_peer: a,
        answerer_peer: b,
        offerer: s1,
        answerer: s2,
    };
    assert!(sim.run_until_connected(&hs, 1));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces the value of the line starting with `prefix`.
fn rewrite(sdp: &str, prefix: &str, value: &str) -> String {
    sdp.lines()
        .map(|l| {
            if l.starts_with(prefix) {
                format!("{prefix}{value}\r\n")
            } else {
                format!("{l}\r\n")
            }
        })
        .collect()
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Arbitrary packets addressed to a protected session (valid header, arbitrary body
        /// and packet number): all refused and counted, nothing delivered, no panic, and the
        /// session still carries data afterwards.
        #[test]
        fn forged_packets_never_get_through(
            bodies in proptest::collection::vec(
                (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..200)),
                1..40,
            ),
        ) {
            let (mut sim, hs, _log) = connected(11, O::RELIABLE);
            let (bob, session) = (hs.answerer_peer, hs.answerer);
            let (from, to) = (sim.peers[hs.offerer_peer].addr, sim.peers[bob].addr);
            let before = sim.ep(bob).stats();
            let events = sim.peers[bob].events.len();
            for (i, (pn, body)) in bodies.iter().enumerate() {
                let ty = [PacketType::Check, PacketType::CheckAck, PacketType::Data][i % 3];
                let mut p = vec![0u8; HEADER_LEN];
                Header { packet_type: ty, destination: session.as_u64(), packet_number: *pn }
                    .emit(&mut p, 4);
                p.extend_from_slice(body);
                let now = sim.now;
                sim.ep(bob).handle_input(Input::Receive {
                    now,
                    source: from,
                    destination: to,
                    contents: Bytes::from(p),
                });
                sim.drain(bob);
            }
            let after = sim.ep(bob).stats();
            prop_assert_eq!(drops(after) - drops(before), bodies.len() as u64);
            prop_assert_eq!(sim.peers[bob].events.len(), events);
            prop_assert_eq!(send_secret(&mut sim, &hs), SECRET);
        }
    }
}

#[test]
fn a_session_mixing_plain_and_protected_streams_protects_both() {
    // Protection is per session: one non-PLAIN stream makes every packet sealed, the PLAIN
    // stream's too (stronger, never weaker, than asked).
    let mut sim = Sim::new(12);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let log = record(&mut sim, false);
    let hs = sim.handshake(a, b, &[(T::Application, O::PLAIN), (T::Text, O::RELIABLE)]);
    assert!(sim.run_until_connected(&hs, 2));
    assert_eq!(send_secret(&mut sim, &hs), SECRET);
    assert!(!log.borrow().iter().any(|d| contains(d, SECRET)));
    assert!(sim.ep(b).stats().dropped_bad_tag == 0);
}

#[test]
fn the_first_datagram_after_the_offerer_connects_is_not_lost_when_the_answerers_check_is() {
    // The offerer goes Connected when its check is answered; the answerer only when its own
    // check is. If the answer to the answerer's check is lost, the offerer's first
    // datagrams used to be dropped there. Sealed with the session's keys, they now prove the
    // pair works: the answerer selects it and takes them.
    let mut sim = Sim::new(41);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(a, b, &[(T::Audio, O::empty())]);
    let bob_addr = sim.ep(b).local_candidates()[0].address;
    let dropped = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = dropped.clone();
    // Every CHECK-ACK to Bob is lost: his own checks never succeed.
    sim.drop_filter = Some(Box::new(move |_, d| {
        let ack = d.destination == bob_addr
            && Header::parse_protected(&d.contents, 16)
                .is_ok_and(|h| h.packet_type == PacketType::CheckAck);
        count.set(count.get() + usize::from(ack));
        ack
    }));
    let deadline = sim.now + Duration::from_secs(5);
    assert!(sim.run_until(deadline, |sim| {
        sim.stream_state(a, hs.offerer, 0) == S::Connected
    }));
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let now = sim.now;
    sim.session(a, hs.offerer)
        .write(now, id, b"first words")
        .unwrap();
    sim.run_for(Duration::from_millis(50));
    assert!(dropped.get() > 0, "the scenario needs a lost CHECK-ACK");
    let got = sim.received(b, hs.answerer, 0);
    assert_eq!(got, vec![Bytes::from_static(b"first words")]);
    assert_eq!(sim.stream_state(b, hs.answerer, 0), S::Connected);
    assert_eq!(sim.ep(b).stats().dropped_unexpected, 0);
}

#[test]
fn authentic_copies_raced_in_from_another_address_do_not_shadow_the_originals() {
    // An on-path attacker copies the first 20 DATA packets of a transfer being set up and
    // delivers each copy before the original, from an address of its own. The copies are
    // authentic but not from the peer's address: they are dropped — and must leave no mark
    // in the replay window, or the originals would be refused as replays and the transfer
    // would never start.
    let mut sim = Sim::new(43);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(a, b, &[(T::Application, O::RELIABLE)]);
    assert!(sim.run_until_connected(&hs, 1));
    let bob_addr = sim.ep(b).local_candidates()[0].address;
    let copies: Log = Log::default();
    let sink = copies.clone();
    let taken = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = taken.clone();
    sim.drop_filter = Some(Box::new(move |_, d| {
        let data = d.destination == bob_addr
            && Header::parse_protected(&d.contents, 16)
                .is_ok_and(|h| h.packet_type == PacketType::Data);
        if data && count.get() < 20 {
            count.set(count.get() + 1);
            sink.borrow_mut().push(d.contents.clone());
        }
        false
    }));
    let attacker: std::net::SocketAddr = "203.0.113.66:4444".parse().unwrap();
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let data = carrier_tests::payload(1 << 20, 43);
    let mut written = 0;
    let deadline = sim.now + Duration::from_secs(30);
    while sim
        .received(b, hs.answerer, 0)
        .iter()
        .map(|c| c.len())
        .sum::<usize>()
        < data.len()
    {
        let now = sim.now;
        if written < data.len() {
            if let Ok(n) = sim.session(a, hs.offerer).write(now, id, &data[written..]) {
                written += n;
            }
        }
        sim.drain(a);
        // The copies land first: the originals are still on the (250 µs) link.
        for contents in copies.borrow_mut().drain(..) {
            sim.ep(b).handle_input(Input::Receive {
                now,
                source: attacker,
                destination: bob_addr,
                contents,
            });
        }
        sim.drain(b);
        assert!(sim.step() && sim.now < deadline, "the transfer stalled");
    }
    assert_eq!(taken.get(), 20, "the scenario raced 20 copies");
    let got: Vec<u8> = sim
        .received(b, hs.answerer, 0)
        .iter()
        .flat_map(|c| c.to_vec())
        .collect();
    assert_eq!(got, data);
    let stats = sim.ep(b).stats();
    assert_eq!(stats.dropped_authenticated, 20, "{stats:?}");
    assert_eq!(
        stats.dropped_replay, 0,
        "no original was refused as a replay"
    );
}
