//! Scenario tests of the seed's flow on the simulator: handshake, refusal, request timeout,
//! deactivated streams, datagrams over a lossy link, timeouts, limits and misuse.

use core::time::Duration;

use carrier_proto::{
    CloseReason, Config, Error, Event, NetworkTopology, Reply, RequestOutcome, StateReason,
    StreamOptions as O, StreamState as S, StreamType as T,
};
use carrier_tests::netem::LinkConfig;
use carrier_tests::sim::{Sim, stream_id};

const APP: (T, O) = (T::Application, O::empty());
const FILES: (T, O) = (T::Text, O::RELIABLE.union(O::MULTIPLEXING));

fn states(log: &[(S, Option<StateReason>)]) -> Vec<S> {
    log.iter().map(|(s, _)| *s).collect()
}

#[test]
fn seed_handshake_reaches_connected_with_every_state_reported() {
    let mut sim = Sim::new(1);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(a, b, &[APP, FILES]);
    assert!(sim.run_until_connected(&hs, 2));
    for (p, s) in [(a, hs.offerer), (b, hs.answerer)] {
        for i in 0..2 {
            assert_eq!(
                states(&sim.state_log(p, s, i)),
                [
                    S::Initialized,
                    S::TransportReady,
                    S::Connecting,
                    S::Connected
                ],
                "peer {p} stream {i}"
            );
        }
    }
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let info = sim.session(a, hs.offerer).transport_info(id).unwrap();
    assert_eq!(info.topology, NetworkTopology::Lan);
    assert_eq!(info.local.address, sim.peers[a].addr);
    assert_eq!(info.remote.address, sim.peers[b].addr);
    // The request completed with the answer on the offerer's side.
    assert!(sim.peers[a].events.iter().any(|(_, e)| matches!(
        e,
        Event::RequestComplete {
            outcome: RequestOutcome::Accepted(_),
            ..
        }
    )));
}

#[test]
fn handshake_takes_about_one_round_trip_after_start() {
    let mut sim = Sim::new(2);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    sim.set_link(
        a,
        b,
        LinkConfig::ideal().with_delay(Duration::from_millis(20)),
    );
    let start = sim.now;
    let hs = sim.handshake(a, b, &[APP]);
    assert!(sim.run_until_connected(&hs, 1));
    // Both started at once: each side's check and the ack take one RTT (40 ms).
    assert_eq!(sim.now - start, Duration::from_millis(40));
}

#[test]
fn refusal_reaches_the_offerer_with_status_and_reason() {
    let mut sim = Sim::new(3);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let s1 = sim.ep(a).new_session("bob").unwrap();
    sim.session(a, s1).add_stream(APP.0, APP.1).unwrap();
    let now = sim.now;
    let pending = sim.session(a, s1).request(now, "").unwrap();
    let offer = sim.deliver_offer(b, "alice", &pending.offer().to_sdp_string());
    let s2 = sim.ep(b).new_session("alice").unwrap();
    let refusal = Reply::Refuse {
        status: 3,
        reason: "busy right now".into(),
    };
    let answer = sim.session(b, s2).reply(&offer, refusal).unwrap();
    assert_eq!(
        sim.ep(a).handle_answer(&answer.to_sdp_string()).unwrap(),
        s1
    );
    sim.drain(a);
    let outcome = sim.peers[a].events.iter().find_map(|(_, e)| match e {
        Event::RequestComplete { outcome, .. } => Some(outcome.clone()),
        _ => None,
    });
    match outcome {
        Some(RequestOutcome::Refused(r)) => {
            assert_eq!((r.status, r.reason.as_str()), (3, "busy right now"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        sim.state_log(a, s1, 0).last(),
        Some(&(S::Closed, Some(StateReason::Refused { status: 3 })))
    );
    // A refused session cannot be started.
    let err = sim
        .session(a, s1)
        .start_with(now, pending, answer)
        .unwrap_err();
    assert!(matches!(err, Error::SessionPhase { .. }), "{err:?}");
    // Status 0 is not a refusal.
    let s3 = sim.ep(b).new_session("alice").unwrap();
    let zero = Reply::Refuse {
        status: 0,
        reason: String::new(),
    };
    assert_eq!(
        sim.session(b, s3).reply(&offer, zero),
        Err(Error::ZeroRefusalStatus)
    );
}

#[test]
fn request_without_reply_times_out_after_the_configured_time() {
    let mut sim = Sim::new(4);
    let a = sim.add_peer_with(
        "alice",
        Config::default().with_request_timeout(Duration::from_secs(300)),
    );
    let s1 = sim.ep(a).new_session("nobody").unwrap();
    sim.session(a, s1).add_stream(APP.0, APP.1).unwrap();
    let now = sim.now;
    let _pending = sim.session(a, s1).request(now, "x").unwrap();
    sim.drain(a);
    sim.run_for(Duration::from_secs(299));
    assert!(
        !sim.peers[a]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::RequestComplete { .. }))
    );
    sim.run_for(Duration::from_secs(2));
    let (at, outcome) = sim.peers[a]
        .events
        .iter()
        .find_map(|(t, e)| match e {
            Event::RequestComplete { outcome, .. } => Some((*t, outcome.clone())),
            _ => None,
        })
        .expect("request completed");
    assert_eq!(outcome, RequestOutcome::TimedOut);
    assert_eq!(outcome.status(), RequestOutcome::TIMEOUT_STATUS);
    assert_eq!(at.as_nanos(), 300_000_000_000);
    assert_eq!(
        sim.state_log(a, s1, 0).last(),
        Some(&(S::Failed, Some(StateReason::RequestTimedOut)))
    );
}

#[test]
fn streams_the_answer_lacks_or_changes_are_deactivated() {
    let mut sim = Sim::new(5);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let unreliable_text = (T::Text, O::MULTIPLEXING);
    let hs = sim.handshake_with(a, b, &[APP, FILES, APP], &[APP, unreliable_text]);
    assert!(sim.run_until_connected(&hs, 1));
    assert_eq!(sim.stream_state(a, hs.offerer, 0), S::Connected);
    assert_eq!(
        sim.state_log(a, hs.offerer, 1).last(),
        Some(&(S::Deactivated, Some(StateReason::NotInRemoteDescription)))
    );
    assert_eq!(
        sim.state_log(b, hs.answerer, 1).last(),
        Some(&(S::Deactivated, Some(StateReason::Mismatch)))
    );
    assert_eq!(
        sim.state_log(a, hs.offerer, 2).last(),
        Some(&(S::Deactivated, Some(StateReason::NotInRemoteDescription)))
    );
    // The answerer's extra stream (none here) and its mismatched one never connect.
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.stream_state(b, hs.answerer, 1), S::Deactivated);
}

#[test]
fn datagrams_arrive_with_the_loss_the_link_was_set_to() {
    let mut sim = Sim::new(6);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(a, b, &[APP]);
    assert!(sim.run_until_connected(&hs, 1));
    sim.set_link(a, b, LinkConfig::lan().with_loss(0.10));
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    const N: usize = 5000;
    for i in 0..N {
        let msg = format!("datagram {i}");
        let now = sim.now;
        sim.session(a, hs.offerer)
            .write(now, id, msg.as_bytes())
            .unwrap();
        sim.drain(a);
        sim.run_for(Duration::from_micros(100));
    }
    sim.run_for(Duration::from_secs(1));
    let got = sim.received(b, hs.answerer, 0);
    let lost = 1.0 - got.len() as f64 / N as f64;
    assert!((0.08..=0.12).contains(&lost), "loss {lost}");
    // Every datagram that arrived is one that was sent, once.
    let mut seen = std::collections::HashSet::new();
    for d in &got {
        let s = std::str::from_utf8(d).unwrap();
        let i: usize = s.strip_prefix("datagram ").unwrap().parse().unwrap();
        assert!(i < N && seen.insert(i), "{s}");
    }
}

#[test]
fn corrupted_duplicated_reordered_datagrams_are_dropped_or_delivered_intact() {
    let mut sim = Sim::new(7);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(a, b, &[APP]);
    assert!(sim.run_until_connected(&hs, 1));
    let bad = LinkConfig::lan()
        .with_corrupt(0.2)
        .with_duplicate(0.1)
        .with_reorder(0.2, Duration::from_millis(3));
    sim.set_link(a, b, bad);
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let sent: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_be_bytes().repeat(50)).collect();
    for msg in &sent {
        let now = sim.now;
        sim.session(a, hs.offerer).write(now, id, msg).unwrap();
        sim.drain(a);
        sim.run_for(Duration::from_micros(200));
    }
    sim.run_for(Duration::from_secs(1));
    let got = sim.received(b, hs.answerer, 0);
    let stats = sim.ep(b).stats();
    // The session is protected: a corrupted packet fails its authentication tag.
    assert!(stats.dropped_bad_tag > 300, "{stats:?}");
    for d in &got {
        assert!(
            sent.iter().any(|s| s[..] == d[..]),
            "a corrupted datagram was delivered"
        );
    }
    // Duplicates are delivered as datagrams are (no dedup on an unreliable stream), so
    // more than the uncorrupted share arrives.
    assert!(got.len() > 1500, "{}", got.len());
}

#[test]
fn largest_write_follows_the_mtu_and_larger_is_an_error() {
    let mut sim = Sim::new(8);
    let cfg = Config::default().with_max_udp_payload(1200);
    let (a, b) = (
        sim.add_peer_with("alice", cfg.clone()),
        sim.add_peer_with("bob", cfg),
    );
    sim.set_link(a, b, LinkConfig::lan().with_mtu(1200));
    let hs = sim.handshake(a, b, &[APP]);
    assert!(sim.run_until_connected(&hs, 1));
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let max = sim.session(a, hs.offerer).max_datagram_size(id).unwrap();
    // The longest header 13 (a 4-byte packet number), authentication tag 16 (the session
    // is protected), DATAGRAM frame 4: 1167, as docs/PROTOCOL.md §2.9 says.
    assert_eq!(max, 1200 - 13 - 16 - 4);
    assert_eq!(max, 1167);
    let now = sim.now;
    let too_big = vec![7u8; max + 1];
    let err = sim
        .session(a, hs.offerer)
        .write(now, id, &too_big)
        .unwrap_err();
    assert_eq!(err, Error::PayloadTooLarge { len: max + 1, max });
    let fits = vec![9u8; max];
    assert_eq!(sim.session(a, hs.offerer).write(now, id, &fits), Ok(max));
    sim.drain(a);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.received(b, hs.answerer, 0), [bytes::Bytes::from(fits)]);
    assert_eq!(sim.net.stats().too_big, 0);
}

#[test]
fn misuse_is_a_typed_error() {
    let mut sim = Sim::new(9);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let now = sim.now;
    let s1 = sim.ep(a).new_session("bob").unwrap();
    let st = sim.session(a, s1).add_stream(APP.0, APP.1).unwrap();
    // write before Connected
    let err = sim.session(a, s1).write(now, st, b"x").unwrap_err();
    assert_eq!(
        err,
        Error::StreamState {
            op: "write",
            state: S::Initialized
        }
    );
    // start before reply
    assert!(matches!(
        sim.session(a, s1).start(now),
        Err(Error::SessionPhase { .. })
    ));
    let pending = sim.session(a, s1).request(now, "b").unwrap();
    // add_stream and request after request
    assert!(matches!(
        sim.session(a, s1).add_stream(APP.0, APP.1),
        Err(Error::SessionPhase { .. })
    ));
    assert!(matches!(
        sim.session(a, s1).request(now, "b"),
        Err(Error::SessionPhase { .. })
    ));
    // An answer to a different offer does not start this session.
    let other = sim.ep(a).new_session("carol").unwrap();
    sim.session(a, other).add_stream(APP.0, APP.1).unwrap();
    let other_pending = sim.session(a, other).request(now, "c").unwrap();
    let offer = sim.deliver_offer(b, "alice", &other_pending.offer().to_sdp_string());
    let s2 = sim.ep(b).new_session("alice").unwrap();
    sim.session(b, s2).add_stream(APP.0, APP.1).unwrap();
    let answer = sim.session(b, s2).reply(&offer, Reply::Accept).unwrap();
    assert_eq!(
        sim.session(a, s1).start_with(now, pending, answer),
        Err(Error::AnswerMismatch)
    );
    // Unknown ids
    sim.ep(a).close_session(now, other).unwrap();
    assert!(matches!(
        sim.ep(a).session(other),
        Err(Error::UnknownSession)
    ));
    assert_eq!(
        sim.ep(a).close_session(now, other),
        Err(Error::UnknownSession)
    );
    // An offer is not an answer and vice versa.
    assert!(matches!(
        sim.ep(a)
            .handle_answer(&other_pending.offer().to_sdp_string()),
        Err(Error::WrongDescription { .. })
    ));
    // Malformed SDP names the line.
    let err = sim
        .ep(b)
        .handle_offer("x", "v=0\r\no=garbage\r\n")
        .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    // Limits on what the application passes.
    let long = "x".repeat(10_000);
    assert!(matches!(
        sim.ep(a).new_session(&long),
        Err(Error::Limit { .. })
    ));
}

#[test]
fn no_path_fails_the_streams_after_the_connect_timeout() {
    let mut sim = Sim::new(10);
    let cfg = Config::default().with_connect_timeout(Duration::from_secs(5));
    let (a, b) = (
        sim.add_peer_with("alice", cfg.clone()),
        sim.add_peer_with("bob", cfg),
    );
    sim.partition(a, b, true);
    let start = sim.now;
    let hs = sim.handshake(a, b, &[APP]);
    sim.run_for(Duration::from_secs(10));
    for (p, s) in [(a, hs.offerer), (b, hs.answerer)] {
        assert_eq!(
            sim.state_log(p, s, 0).last(),
            Some(&(S::Failed, Some(StateReason::ConnectTimeout)))
        );
    }
    let failed_at = sim.state_time(a, hs.offerer, 0, S::Failed).unwrap();
    assert_eq!(failed_at - start, Duration::from_secs(5));
    // Nothing is left armed: the simulation goes quiet.
    assert_eq!(sim.next_event_time(), None);
}

#[test]
fn keepalive_holds_an_idle_session_and_silence_closes_it() {
    let mut sim = Sim::new(11);
    // The probe timer would also catch the dead path (see reliable.rs); turn it off to
    // exercise the idle timer.
    let mut transport = carrier_proto::TransportConfig::default();
    transport.recovery.max_ptos = u32::MAX;
    let cfg = Config::default()
        .with_idle(Duration::from_secs(5), Duration::from_secs(20))
        .with_transport(transport);
    let (a, b) = (
        sim.add_peer_with("alice", cfg.clone()),
        sim.add_peer_with("bob", cfg),
    );
    let hs = sim.handshake(a, b, &[APP]);
    assert!(sim.run_until_connected(&hs, 1));
    // Idle but alive: keepalives keep it Connected for far longer than the idle timeout.
    sim.run_for(Duration::from_secs(120));
    assert_eq!(sim.stream_state(a, hs.offerer, 0), S::Connected);
    assert_eq!(sim.stream_state(b, hs.answerer, 0), S::Connected);
    // The path dies: both sides close with IdleTimeout once the idle timeout has passed
    // since the last packet, which may have been in flight at the cut (≤ 1 ms on a LAN).
    sim.partition(a, b, true);
    let cut = sim.now;
    sim.run_for(Duration::from_secs(30));
    for (p, s) in [(a, hs.offerer), (b, hs.answerer)] {
        let log = sim.state_log(p, s, 0);
        assert_eq!(
            log.last(),
            Some(&(S::Closed, Some(StateReason::IdleTimeout)))
        );
        let at = sim.state_time(p, s, 0, S::Closed).unwrap();
        let since_cut = at - cut;
        assert!(
            since_cut >= Duration::from_secs(15) && since_cut <= Duration::from_millis(20_001),
            "{since_cut:?}"
        );
        assert_eq!(sim.ep(p).stats().idle_timeouts, 1);
    }
}

#[test]
fn closing_a_session_or_stream_tells_the_peer() {
    let mut sim = Sim::new(12);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let hs = sim.handshake(a, b, &[APP, APP]);
    assert!(sim.run_until_connected(&hs, 2));
    let s0 = stream_id(&mut sim, a, hs.offerer, 0);
    let now = sim.now;
    sim.session(a, hs.offerer).close_stream(now, s0).unwrap();
    sim.drain(a);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.state_log(b, hs.answerer, 0).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Normal))
        ))
    );
    assert_eq!(sim.stream_state(b, hs.answerer, 1), S::Connected);
    let now = sim.now;
    sim.ep(b).close_session(now, hs.answerer).unwrap();
    sim.drain(b);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.state_log(a, hs.offerer, 1).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Normal))
        ))
    );
    assert_eq!(
        sim.state_log(b, hs.answerer, 1).last(),
        Some(&(S::Closed, Some(StateReason::ClosedLocally)))
    );
}

#[test]
fn one_endpoint_routes_many_sessions_and_drops_garbage() {
    let mut sim = Sim::new(13);
    let hub = sim.add_peer("hub");
    let peers: Vec<_> = (0..20).map(|i| sim.add_peer(&format!("p{i}"))).collect();
    let mut hss = Vec::new();
    for &p in &peers {
        // Two sessions per peer pair, in both directions of offer/answer.
        hss.push(sim.handshake(p, hub, &[APP]));
        hss.push(sim.handshake(hub, p, &[APP]));
    }
    for hs in &hss {
        assert!(sim.run_until_connected(hs, 1));
    }
    // Each session sends its own index; each arrives on the right session only.
    for (i, hs) in hss.iter().enumerate() {
        let id = stream_id(&mut sim, hs.offerer_peer, hs.offerer, 0);
        let now = sim.now;
        let msg = format!("session {i}");
        sim.session(hs.offerer_peer, hs.offerer)
            .write(now, id, msg.as_bytes())
            .unwrap();
        sim.drain(hs.offerer_peer);
    }
    sim.run_for(Duration::from_millis(10));
    for (i, hs) in hss.iter().enumerate() {
        let got = sim.received(hs.answerer_peer, hs.answerer, 0);
        assert_eq!(
            got,
            [bytes::Bytes::from(format!("session {i}"))],
            "session {i}"
        );
    }
    assert_eq!(sim.ep(hub).sessions().count(), 40);
    // Garbage: not Carrier, unknown session, bad checksum. Counted, nothing else happens.
    let before = sim.peers[hub].events.len();
    let from = sim.peers[peers[0]].addr;
    let to = sim.peers[hub].addr;
    let now = sim.now;
    let ep = sim.ep(hub);
    let mut feed = |bytes: Vec<u8>| {
        ep.handle_input(carrier_proto::Input::Receive {
            now,
            source: from,
            destination: to,
            contents: bytes.into(),
        })
    };
    feed(vec![0x00, 0x01, 0x00, 0x00]);
    feed(vec![0xC2; 64]);
    let mut wrong_tag = vec![0xC2, 1];
    wrong_tag.extend_from_slice(&(hss[0].answerer.as_u64() ^ (1 << 40)).to_be_bytes());
    wrong_tag.resize(40, 0);
    feed(wrong_tag);
    let stats = sim.ep(hub).stats();
    assert_eq!(stats.dropped_not_carrier, 1);
    assert_eq!(stats.dropped_unknown_session, 2);
    sim.drain(hub);
    assert_eq!(sim.peers[hub].events.len(), before);
}

#[test]
fn requests_are_routed_by_the_longest_bundle_prefix() {
    let mut sim = Sim::new(14);
    let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let files = sim.ep(b).add_request_handler("file");
    let transfers = sim.ep(b).add_request_handler("filetransfer");
    let _chat = sim.ep(b).add_request_handler("chat");
    let mut route = |bundle: &str| {
        let s = sim.ep(a).new_session("bob").unwrap();
        sim.session(a, s).add_stream(APP.0, APP.1).unwrap();
        let now = sim.now;
        let p = sim.session(a, s).request(now, bundle).unwrap();
        sim.deliver_offer(b, "alice", &p.offer().to_sdp_string());
        sim.peers[b].events.iter().rev().find_map(|(_, e)| match e {
            Event::SessionRequest { handler, offer, .. } => {
                assert_eq!(offer.bundle().unwrap_or(""), bundle);
                Some(*handler)
            }
            _ => None,
        })
    };
    assert_eq!(route("filetransfer/v2"), Some(Some(transfers)));
    assert_eq!(route("files"), Some(Some(files)));
    assert_eq!(route("video"), Some(None));
    assert_eq!(route(""), Some(None));
    sim.ep(b).remove_request_handler(transfers);
    assert_eq!(sim.ep(b).route_bundle("filetransfer"), Some(files));
}

#[test]
fn ipv6_and_dual_stack_peers_pair_by_family() {
    let mut sim = Sim::new(15);
    let a6: std::net::SocketAddr = "[2001:db8::1]:7000".parse().unwrap();
    let b6: std::net::SocketAddr = "[2001:db8::2]:7000".parse().unwrap();
    let b4: std::net::SocketAddr = "192.0.2.2:7000".parse().unwrap();
    let a = sim.add_peer_at("alice", &[a6]);
    let b = sim.add_peer_at("bob", &[b4, b6]);
    let hs = sim.handshake(a, b, &[APP]);
    assert!(sim.run_until_connected(&hs, 1));
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let info = sim.session(a, hs.offerer).transport_info(id).unwrap();
    assert_eq!((info.local.address, info.remote.address), (a6, b6));
    // No address family in common: nothing to pair, the connect timeout fails the stream.
    let c = sim.add_peer_at("carol", &["192.0.2.3:7000".parse().unwrap()]);
    let hs = sim.handshake(a, c, &[APP]);
    sim.run_for(Duration::from_secs(11));
    assert_eq!(
        sim.state_log(a, hs.offerer, 0).last(),
        Some(&(S::Failed, Some(StateReason::ConnectTimeout)))
    );
}
