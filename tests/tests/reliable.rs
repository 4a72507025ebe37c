//! Reliable streams on the simulator: exactly the sender's bytes, in order, whatever the
//! link does; each recovery path by scripted loss; flow control and back-pressure; graceful
//! close; a dead path.

use core::time::Duration;

use carrier_proto::{
    Config, Error, Event, StateReason, StreamOptions as O, StreamState as S, StreamType as T,
    TransportConfig,
};
use carrier_tests::netem::{Datagram, LinkConfig};
use carrier_tests::payload;
use carrier_tests::sim::{Handshake, Sim, stream_id};
use proptest::prelude::*;

const RELIABLE: (T, O) = (T::Application, O::RELIABLE);
/// For scripted losses that read the frames: PLAIN, so they are visible on the wire.
const RELIABLE_PLAIN: (T, O) = (T::Application, O::RELIABLE.union(O::PLAIN));

fn connected(seed: u64, link: LinkConfig, config: Config) -> (Sim, Handshake) {
    connected_with(seed, link, config, RELIABLE)
}

/// [`connected`] with a PLAIN stream (scripted losses look into the packets).
fn connected_plain(seed: u64, link: LinkConfig, config: Config) -> (Sim, Handshake) {
    connected_with(seed, link, config, RELIABLE_PLAIN)
}

fn connected_with(seed: u64, link: LinkConfig, config: Config, stream: (T, O)) -> (Sim, Handshake) {
    let mut sim = Sim::new(seed);
    let (a, b) = (
        sim.add_peer_with("alice", config.clone()),
        sim.add_peer_with("bob", config),
    );
    let hs = sim.handshake(a, b, &[stream]);
    assert!(
        sim.run_until_connected(&hs, 1),
        "seed {seed}: no connection"
    );
    sim.set_link(a, b, link);
    (sim, hs)
}

#[test]
fn a_megabyte_arrives_intact_on_a_clean_link() {
    let (mut sim, hs) = connected(1, LinkConfig::wan(), Config::default());
    let data = payload(1 << 20, 1);
    let t = sim.transfer(&hs, true, 0, &data, 64 * 1024, Duration::from_secs(30));
    assert!(t.complete, "got {} of {}", t.received.len(), data.len());
    assert_eq!(t.received, data);
    assert_eq!(sim.ep(0).stats().dropped_malformed, 0);
}

#[test]
fn a_tiny_reassembly_budget_refuses_packets_but_loses_nothing() {
    // With room for only 16 out-of-order segments, many packets after a loss are refused
    // (left unacknowledged) and sent again: slower, but every byte arrives.
    let config = Config::default().with_transport(TransportConfig {
        max_reassembly_segments: 16,
        ..TransportConfig::default()
    });
    let (mut sim, hs) = connected(21, LinkConfig::wan().with_loss(0.03), config);
    let data = payload(400_000, 21);
    let t = sim.transfer(&hs, true, 0, &data, 64 * 1024, Duration::from_secs(120));

    assert!(t.complete, "got {} of {}", t.received.len(), data.len());
    assert_eq!(t.received, data);
    assert!(sim.ep(1).stats().packets_refused_busy > 0);
}

#[test]
fn both_directions_at_once_over_loss() {
    let (mut sim, hs) = connected(2, LinkConfig::wan().with_loss(0.05), Config::default());
    let up = payload(300_000, 2);
    let down = payload(200_000, 3);
    let s = stream_id(&mut sim, 1, hs.answerer, 0);
    let now = sim.now;
    let n = sim.session(1, hs.answerer).write(now, s, &down).unwrap();
    let t = sim.transfer(&hs, true, 0, &up, 16 * 1024, Duration::from_secs(60));
    assert_eq!(t.received, up);
    // Bob's first write went out alongside; send the rest of it and check.
    let rest = sim.transfer(
        &hs,
        false,
        0,
        &down[n..],
        16 * 1024,
        Duration::from_secs(60),
    );
    // What is still on its way (the first write may have taken it all: then `rest` had
    // nothing to send) arrives too.
    let offerer = hs.offerer;
    let deadline = sim.now + Duration::from_secs(60);
    sim.run_until(deadline, |sim| {
        sim.received(0, offerer, 0)
            .iter()
            .map(|b| b.len())
            .sum::<usize>()
            >= down.len()
    });
    let mut got: Vec<u8> = sim
        .received(0, hs.offerer, 0)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    got.truncate(down.len());
    assert!(rest.complete);
    let first_diff = got.iter().zip(&down).position(|(a, b)| a != b);
    assert!(
        got == down,
        "got {} of {} bytes, first difference at {first_diff:?} (first write took {n})",
        got.len(),
        down.len()
    );
}

fn arbitrary_link() -> impl Strategy<Value = LinkConfig> {
    (
        0u64..60,
        0u64..20,
        prop_oneof![
            (0.0..0.30f64).prop_map(|p| (p, None)),
            // Bursty: mean loss 0.8·gb/(gb+bg), kept at or under 30%.
            (0.01..0.1f64, 0.1..0.5f64)
                .prop_filter("mean loss ≤ 30%", |(gb, bg)| 0.8 * gb / (gb + bg) <= 0.30)
                .prop_map(|(gb, bg)| (0.0, Some((gb, bg)))),
        ],
        0.0..0.1f64,
        0.0..0.2f64,
        0.0..0.05f64,
    )
        .prop_map(|(delay, jitter, (loss, ge), dup, reorder, corrupt)| {
            let mut l = LinkConfig::ideal()
                .with_delay(Duration::from_millis(delay))
                .with_jitter(Duration::from_millis(jitter))
                .with_loss(loss)
                .with_duplicate(dup)
                .with_reorder(reorder, Duration::from_millis(10))
                .with_corrupt(corrupt)
                .with_mtu(1500);
            if let Some((gb, bg)) = ge {
                l = l.with_gilbert_elliott(gb, bg, 0.0, 0.8);
            }
            l
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary writes over an arbitrary seeded link: the receiver gets exactly the bytes.
    #[test]
    fn arbitrary_writes_over_an_arbitrary_link_arrive_exactly(
        seed in any::<u64>(),
        link in arbitrary_link(),
        len in 0usize..200_000,
        chunk in 1usize..20_000,
        low_latency in any::<bool>(),
        cc in prop_oneof![
            Just(carrier_proto::CongestionAlgorithm::Bbr),
            Just(carrier_proto::CongestionAlgorithm::Cubic),
            Just(carrier_proto::CongestionAlgorithm::NewReno),
        ],
    ) {
        // This property is about delivery, so the sender never gives up on the path (the
        // dead-path rule has its own test): netem's bursts count packets, not time, so a
        // burst can outlast many probe timeouts when little is sent.
        // Both presets: the low-latency one adds early retransmission and other thresholds.
        let mut transport = if low_latency { TransportConfig::low_latency() } else { TransportConfig::default() };
        transport.recovery.max_ptos = u32::MAX;
        transport.congestion = cc;
        let (mut sim, hs) = connected(seed, link, Config::default().with_transport(transport));
        let data = payload(len, seed);
        let t = sim.transfer(&hs, true, 0, &data, chunk, Duration::from_secs(600));
        prop_assert!(t.complete, "seed {}: {} of {} bytes", seed, t.received.len(), len);
        prop_assert_eq!(t.received, data);
    }
}

/// Runs a transfer with `drop` deciding which of the sender's / receiver's datagrams vanish,
/// and checks it completes intact.
fn with_scripted_loss(
    drop: impl FnMut(u64, &Datagram, bool) -> bool + 'static,
    data_len: usize,
    close: bool,
) -> Sim {
    let (mut sim, hs) = connected_plain(
        7,
        LinkConfig::ideal().with_delay(Duration::from_millis(20)),
        Config::default(),
    );
    let alice = sim.peers[0].addr;
    let mut drop = drop;
    let mut counter = 0u64;
    sim.drop_filter = Some(Box::new(move |_, d| {
        let from_sender = d.source == alice;
        let i = counter;
        counter += 1;
        drop(i, d, from_sender)
    }));
    let data = payload(data_len, 9);
    let t = sim.transfer(&hs, true, 0, &data, 4096, Duration::from_secs(60));
    assert!(
        t.received == data,
        "got {} of {} bytes (or different ones)",
        t.received.len(),
        data.len()
    );
    if close {
        let id = stream_id(&mut sim, 0, hs.offerer, 0);
        let now = sim.now;
        sim.session(0, hs.offerer).close_stream(now, id).unwrap();
        sim.drain(0);
        let deadline = sim.now + Duration::from_secs(60);
        assert!(
            sim.run_until(deadline, |sim| sim.stream_state(0, hs.offerer, 0)
                == S::Closed
                && sim.stream_state(1, hs.answerer, 0) == S::Closed)
        );
    }
    sim
}

#[test]
fn lost_first_data_packet_is_retransmitted() {
    let mut first = true;
    let sim = with_scripted_loss(
        move |_, d, from_sender| {
            let drop = from_sender && first && d.contents.len() > 100;
            if drop {
                first = false;
            }
            drop
        },
        50_000,
        false,
    );
    assert!(sim.peers[0].endpoint.stats().packets_sent > 0);
}

#[test]
fn lost_acks_are_recovered() {
    // The receiver's first 8 packets (its ACKs, over several probe rounds) are lost.
    let mut n = 0;
    with_scripted_loss(
        move |_, _, from_sender| {
            if !from_sender {
                n += 1;
                return n <= 8;
            }
            false
        },
        100_000,
        false,
    );
}

#[test]
fn a_lost_retransmission_is_retransmitted_again() {
    // The packet carrying offset 0 is lost twice.
    let mut seen = 0;
    with_scripted_loss(
        move |_, d, from_sender| {
            // A STREAM frame at offset 0 on stream 0: type 0x05, stream 0, flags, offset 0.
            let body = plain_payload(&d.contents);
            let carries_offset_zero = from_sender
                && body
                    .windows(4)
                    .any(|w| w[0] == 0x05 && w[1] == 0 && w[2] <= 1 && w[3] == 0);
            if carries_offset_zero && seen < 2 {
                seen += 1;
                return true;
            }
            false
        },
        20_000,
        false,
    );
}

#[test]
fn a_lost_fin_is_resent_and_both_sides_close() {
    let mut dropped = 0;
    let sim = with_scripted_loss(
        move |_, d, from_sender| {
            let body = plain_payload(&d.contents);
            // A STREAM frame with the FIN flag from the sender: lose the first two.
            let has_fin = from_sender
                && body
                    .windows(3)
                    .any(|w| w[0] == 0x05 && w[1] == 0 && w[2] == 1);
            if has_fin && dropped < 2 {
                dropped += 1;
                return true;
            }
            false
        },
        10_000,
        true,
    );
    assert_eq!(
        sim.state_log(1, sim_answerer(&sim), 0).last().map(|x| x.1),
        Some(Some(StateReason::ClosedByPeer(
            carrier_proto::CloseReason::Normal
        )))
    );
}

fn sim_answerer(sim: &Sim) -> carrier_proto::SessionId {
    sim.peers[1]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::StateChanged { session, .. } => Some(*session),
            _ => None,
        })
        .unwrap()
}

#[test]
fn back_pressure_write_takes_what_fits_then_would_block_then_writable() {
    let cfg = Config::default().with_transport(TransportConfig {
        send_buffer: 10_000,
        ..TransportConfig::default()
    });
    let (mut sim, hs) = connected(3, LinkConfig::wan(), cfg);
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let now = sim.now;
    let data = payload(25_000, 4);
    assert_eq!(sim.session(0, hs.offerer).write(now, id, &data), Ok(10_000));
    assert_eq!(
        sim.session(0, hs.offerer).write(now, id, &data[10_000..]),
        Err(Error::WouldBlock)
    );
    assert_eq!(sim.session(0, hs.offerer).writable_bytes(id), Ok(0));
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(5);
    assert!(sim.run_until(deadline, |sim| {
        sim.peers[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Writable { .. }))
    }));
    assert!(sim.session(0, hs.offerer).writable_bytes(id).unwrap() > 0);
}

#[test]
fn a_slow_reader_is_protected_by_flow_control() {
    // A small receive window: the sender never has more than that outstanding unread.
    let cfg = Config::default().with_transport(TransportConfig {
        stream_receive_window: 64 * 1024,
        receive_window: 256 * 1024,
        ..TransportConfig::default()
    });
    let (mut sim, hs) = connected(4, LinkConfig::lan(), cfg);
    let data = payload(2_000_000, 5);
    let t = sim.transfer(&hs, true, 0, &data, 32 * 1024, Duration::from_secs(60));
    assert_eq!(t.received, data);
    assert_eq!(sim.ep(1).stats().flow_control_violations, 0);
}

#[test]
fn a_dead_path_fails_the_stream_with_a_reason() {
    let (mut sim, hs) = connected(5, LinkConfig::wan(), Config::default());
    // Some traffic first, so the sender has measured the RTT.
    let warm = payload(50_000, 2);
    assert!(
        sim.transfer(&hs, true, 0, &warm, 10_000, Duration::from_secs(10))
            .complete
    );
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let now = sim.now;
    sim.session(0, hs.offerer)
        .write(now, id, &payload(5000, 1))
        .unwrap();
    sim.drain(0);
    sim.partition(0, 1, true);
    let cut = sim.now;
    sim.run_for(Duration::from_secs(600));
    let failed = sim
        .state_time(0, hs.offerer, 0, S::Failed)
        .unwrap_or_else(|| {
            panic!(
                "{:?} {:?}",
                sim.state_log(0, hs.offerer, 0),
                sim.ep(0).stats()
            )
        });
    // 7 doubling probe timeouts of ≈ 125 ms on this 80 ms path: well before the idle timeout.
    assert!(failed - cut < Duration::from_secs(40), "{:?}", failed - cut);
    assert_eq!(
        sim.state_log(0, hs.offerer, 0).last(),
        Some(&(S::Failed, Some(StateReason::PathDead)))
    );
    assert_eq!(sim.ep(0).stats().dead_paths, 1);
}

#[test]
fn a_graceful_close_waits_for_the_data_and_closes_both_sides() {
    let (mut sim, hs) = connected(6, LinkConfig::wan().with_loss(0.02), Config::default());
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let data = payload(100_000, 6);
    let now = sim.now;
    let n = sim.session(0, hs.offerer).write(now, id, &data).unwrap();
    assert_eq!(n, data.len());
    sim.session(0, hs.offerer).close_stream(now, id).unwrap();
    assert!(sim.session(0, hs.offerer).write(now, id, b"late").is_err());
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(60);
    assert!(
        sim.run_until(deadline, |sim| sim.stream_state(0, hs.offerer, 0)
            == S::Closed
            && sim.stream_state(1, hs.answerer, 0) == S::Closed)
    );
    let got: Vec<u8> = sim
        .received(1, hs.answerer, 0)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(got, data);
    assert_eq!(
        sim.state_log(0, hs.offerer, 0).last(),
        Some(&(S::Closed, Some(StateReason::ClosedLocally)))
    );
}

#[test]
fn abort_closes_both_sides_at_once_with_error() {
    let (mut sim, hs) = connected(8, LinkConfig::wan(), Config::default());
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let now = sim.now;
    sim.session(0, hs.offerer)
        .write(now, id, &payload(500_000, 8))
        .unwrap();
    sim.drain(0);
    sim.run_for(Duration::from_millis(100));
    let now = sim.now;
    sim.session(0, hs.offerer).abort_stream(now, id).unwrap();
    sim.drain(0);
    assert_eq!(sim.stream_state(0, hs.offerer, 0), S::Closed);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.state_log(1, hs.answerer, 0).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(carrier_proto::CloseReason::Error))
        ))
    );
    // Nothing more is sent for the aborted stream.
    let before = sim.ep(0).stats().bytes_sent;
    sim.run_for(Duration::from_secs(1));
    assert!(
        sim.ep(0).stats().bytes_sent - before < 2000,
        "still sending after abort"
    );
}

#[test]
fn a_lost_stream_close_is_sent_again() {
    let (mut sim, hs) = connected_plain(9, LinkConfig::wan(), Config::default());
    let alice = sim.peers[0].addr;
    let mut dropped = 0;
    sim.drop_filter = Some(Box::new(move |_, d| {
        let body = plain_payload(&d.contents);
        // CLOSE of stream 0 with reason Error: 0x03 0x00 0x02.
        let close = d.source == alice && body.windows(3).any(|w| w == [0x03, 0x00, 0x02]);
        if close && dropped < 2 {
            dropped += 1;
            return true;
        }
        false
    }));
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let now = sim.now;
    sim.session(0, hs.offerer).abort_stream(now, id).unwrap();
    sim.drain(0);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.state_log(1, hs.answerer, 0).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(carrier_proto::CloseReason::Error))
        ))
    );
}

#[test]
fn lost_credit_updates_are_recovered_by_blocked_probes() {
    // A 64 KiB stream window: the sender runs out of credit many times. Bob's first 10
    // packets carrying MAX_STREAM_DATA (0x07) are lost; the sender's STREAM_DATA_BLOCKED
    // (and loss detection) get the credit through, so the transfer completes.
    let cfg = Config::default().with_transport(TransportConfig {
        stream_receive_window: 64 * 1024,
        ..TransportConfig::default()
    });
    let (mut sim, hs) = connected_plain(10, LinkConfig::wan(), cfg);
    let bob = sim.peers[1].addr;
    let dropped = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = dropped.clone();
    sim.drop_filter = Some(Box::new(move |_, d| {
        let body = plain_payload(&d.contents);
        let credit = d.source == bob && body.windows(2).any(|w| w == [0x07, 0x00]);
        if credit && counter.get() < 10 {
            counter.set(counter.get() + 1);
            return true;
        }
        false
    }));
    let data = payload(600_000, 10);
    let t = sim.transfer(&hs, true, 0, &data, 50_000, Duration::from_secs(120));
    assert!(
        t.received == data,
        "got {} of {}",
        t.received.len(),
        data.len()
    );
    assert_eq!(dropped.get(), 10, "the credit updates were really lost");
    assert_eq!(sim.ep(1).stats().flow_control_violations, 0);
}

#[test]
fn with_manual_credit_the_sender_stops_at_the_window_until_the_reader_consumes() {
    // An adapter that queues data for a slow reader runs with manual credit: taking the
    // events out does not let the peer send more; consuming does.
    let window = 256 * 1024;
    let config = Config::default()
        .with_manual_credit(true)
        .with_transport(TransportConfig {
            stream_receive_window: window,
            ..TransportConfig::default()
        });
    let (mut sim, hs) = connected(31, LinkConfig::lan(), config);
    let data = payload(4 * window as usize, 31);
    let t = sim.transfer(&hs, true, 0, &data, 64 * 1024, Duration::from_secs(5));
    assert!(!t.complete, "the sender must stall without consumption");
    let stalled = t.received.len();
    let initial = carrier_proto::INITIAL_STREAM_CREDIT.max(window) as usize;
    assert!(
        stalled <= initial,
        "delivered {stalled} bytes with a {initial}-byte window and nothing consumed"
    );
    assert!(stalled > 0);

    // The reader uses what it has: the peer sends more.
    let id = stream_id(&mut sim, 1, hs.answerer, 0);
    sim.session(1, hs.answerer).consume(id, stalled);
    sim.run_for(Duration::from_secs(2));
    let after = sim
        .received(1, hs.answerer, 0)
        .iter()
        .map(|b| b.len())
        .sum::<usize>();
    assert!(after > stalled, "consuming {stalled} bytes let no more in");
    assert!(after <= stalled + initial);
    // Without manual credit, `consume` is ignored (credit already went back).
    let (mut sim2, hs2) = connected(32, LinkConfig::lan(), Config::default());
    let id2 = stream_id(&mut sim2, 1, hs2.answerer, 0);
    sim2.session(1, hs2.answerer).consume(id2, 1 << 30);
    let t2 = sim2.transfer(&hs2, true, 0, &data, 64 * 1024, Duration::from_secs(30));
    assert!(t2.complete);
    assert_eq!(t2.received, data);
}

#[test]
fn retransmissions_rechunked_at_a_new_packet_size_lose_nothing() {
    // Found by the proptest below once path MTU discovery raised the packet size mid-
    // transfer: a retransmission coalesced two ranges the receiver held in pieces with
    // bytes it lacked, and the receiver dropped those bytes while acknowledging the packet.
    // This link and seed reproduce it (heavy loss and reordering, 1-byte writes).
    let link = LinkConfig::ideal()
        .with_delay(Duration::from_millis(21))
        .with_jitter(Duration::from_millis(2))
        .with_loss(0.227)
        .with_reorder(0.135, Duration::from_millis(10))
        .with_corrupt(0.016);
    for ceiling in [1200, 1452] {
        let mut transport = TransportConfig::low_latency();
        transport.recovery.max_ptos = u32::MAX;
        transport.congestion = carrier_proto::CongestionAlgorithm::NewReno;
        let config = Config::default()
            .with_transport(transport)
            .with_mtu_ceiling(ceiling);
        let seed = 7076321918022260230;
        let (mut sim, hs) = connected(seed, link, config);
        let data = payload(12305, seed);
        let t = sim.transfer(&hs, true, 0, &data, 1, Duration::from_secs(600));
        assert!(
            t.complete,
            "ceiling {ceiling}: {} of {} bytes",
            t.received.len(),
            data.len()
        );
        assert_eq!(t.received, data);
    }
}

#[test]
fn path_mtu_discovery_finds_the_links_size_and_never_exceeds_it() {
    // netem's `mtu` is the largest UDP payload the link carries.
    for (link_mtu, expect) in [(1500, 1452), (1350, 1350), (1200, 1200)] {
        let link = LinkConfig::wan().with_mtu(link_mtu);
        let mut sim = Sim::new(61);
        let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
        sim.set_link(a, b, link);
        let hs = sim.handshake(a, b, &[RELIABLE]);
        assert!(sim.run_until_connected(&hs, 1));
        let data = payload(300_000, 61);
        let t = sim.transfer(&hs, true, 0, &data, 64 * 1024, Duration::from_secs(60));
        assert_eq!(t.received, data, "link mtu {link_mtu}");
        // The search goes on while the session is idle (lost probes are found by the
        // probe timeout's packets).
        sim.run_for(Duration::from_secs(20));
        let found = sim.session(a, hs.offerer).path_mtu();
        assert!(found <= link_mtu, "{found} above the link's {link_mtu}");
        assert!(
            expect - found < 16,
            "link mtu {link_mtu}: found {found}, expected about {expect}"
        );
        let probes = sim.ep(a).stats().mtu_probes_sent;
        assert!(probes <= 24, "{probes} probes");
        if link_mtu < 1452 {
            assert!(
                sim.net.stats().too_big > 0,
                "the too-big probes were dropped"
            );
        }
    }
}

/// Two peers on loopback addresses (127.0.0.1 and 127.0.0.2) joined by `link`, connected
/// with one reliable stream.
fn loopback_pair(seed: u64, link: LinkConfig, config: Config) -> (Sim, Handshake) {
    let mut sim = Sim::new(seed);
    let addr = |last: u8| std::net::SocketAddr::from(([127, 0, 0, last], 7000));
    let a = sim.add_peer_at_with("alice", &[addr(1)], config.clone());
    let b = sim.add_peer_at_with("bob", &[addr(2)], config);
    sim.set_link(a, b, link);
    let hs = sim.handshake(a, b, &[RELIABLE]);
    assert!(
        sim.run_until_connected(&hs, 1),
        "seed {seed}: no connection"
    );
    (sim, hs)
}

#[test]
fn a_loopback_path_is_searched_up_to_the_loopback_ceiling() {
    // Linux's lo carries 64 KiB; macOS's 16 KiB; a ceiling set to the ordinary one keeps
    // loopback at Ethernet sizes.
    let loopback = LinkConfig::ideal().with_delay(Duration::from_micros(20));
    let cases = [
        (65_535, Config::default(), carrier_proto::MAX_UDP_PAYLOAD),
        (16_384, Config::default(), 16_384),
        (
            65_535,
            Config::default().with_loopback_mtu_ceiling(1452),
            1452,
        ),
    ];
    for (link_mtu, config, expect) in cases {
        let (mut sim, hs) = loopback_pair(63, loopback.with_mtu(link_mtu), config);
        let data = payload(2_000_000, 63);
        let t = sim.transfer(&hs, true, 0, &data, 256 * 1024, Duration::from_secs(30));
        assert_eq!(t.received, data, "link mtu {link_mtu}");
        sim.run_for(Duration::from_secs(20));
        let found = sim.session(0, hs.offerer).path_mtu();
        assert!(found <= expect, "{found} above {expect}");
        assert!(
            expect - found < 16,
            "link mtu {link_mtu}: found {found}, expected {expect}"
        );
    }
}

#[test]
fn without_a_ceiling_above_the_base_there_is_no_discovery() {
    let config = Config::default().with_mtu_ceiling(1200);
    let (mut sim, hs) = connected(62, LinkConfig::lan(), config);
    let data = payload(100_000, 62);
    let t = sim.transfer(&hs, true, 0, &data, 64 * 1024, Duration::from_secs(30));
    assert_eq!(t.received, data);
    assert_eq!(sim.session(0, hs.offerer).path_mtu(), 1200);
    assert_eq!(sim.ep(0).stats().mtu_probes_sent, 0);
}

/// The frames of a plain packet (between header and checksum), or nothing if it is not one.
fn plain_payload(datagram: &[u8]) -> &[u8] {
    carrier_proto::packet::Header::parse(datagram, None).map_or(&[], |(_, payload)| payload)
}
