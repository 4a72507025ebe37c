//! Close, abort and half-close on the simulator: a reader gets every byte then the end
//! (`StreamFinished`) after a graceful close, or no end at all after an abort — never a
//! clean end short of the data; closes complete in about a round trip; a graceful session
//! close flushes streams and channels; a close that cannot flush gives up after the linger.

use core::time::Duration;

use carrier_proto::{
    CloseReason, Config, Event, Instant, SessionId, StateReason, StreamId, StreamOptions as O,
    StreamState as S, StreamType as T,
};
use carrier_tests::netem::LinkConfig;
use carrier_tests::payload;
use carrier_tests::sim::{Handshake, PeerIdx, Sim, stream_id};
use proptest::prelude::*;

const RELIABLE: (T, O) = (T::Application, O::RELIABLE);
const MUX: (T, O) = (T::Application, O::RELIABLE.union(O::MULTIPLEXING));

fn connected(seed: u64, link: LinkConfig, config: Config, streams: &[(T, O)]) -> (Sim, Handshake) {
    let mut sim = Sim::new(seed);
    let (a, b) = (
        sim.add_peer_with("alice", config.clone()),
        sim.add_peer_with("bob", config),
    );
    let hs = sim.handshake(a, b, streams);
    assert!(
        sim.run_until_connected(&hs, streams.len()),
        "seed {seed}: no connection"
    );
    sim.set_link(a, b, link);
    (sim, hs)
}

/// The bytes a peer received on a stream, concatenated.
fn got(sim: &Sim, peer: PeerIdx, session: SessionId, stream: usize) -> Vec<u8> {
    sim.received(peer, session, stream)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect()
}

/// Whether the peer saw `StreamFinished` on the stream, and whether it came after every
/// data event (nothing may follow the end).
fn finished(sim: &Sim, peer: PeerIdx, session: SessionId, stream: usize) -> bool {
    let events = &sim.peers[peer].events;
    let at = events.iter().position(|(_, e)| {
        matches!(e, Event::StreamFinished { session: s, stream: st }
            if *s == session && st.index() == stream)
    });
    let Some(at) = at else {
        return false;
    };
    let data_after = events[at..].iter().any(|(_, e)| {
        matches!(e, Event::StreamData { session: s, stream: st, .. }
            if *s == session && st.index() == stream)
    });
    assert!(!data_after, "data after StreamFinished");
    true
}

/// Writes as much of `data` as the send buffer takes now; returns how much.
fn write_some(
    sim: &mut Sim,
    peer: PeerIdx,
    session: SessionId,
    id: StreamId,
    data: &[u8],
) -> usize {
    let now = sim.now;
    let mut at = 0;
    while at < data.len() {
        match sim.session(peer, session).write(now, id, &data[at..]) {
            Ok(n) => at += n,
            Err(carrier_proto::Error::WouldBlock) => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    sim.drain(peer);
    at
}

fn both_closed(sim: &mut Sim, hs: &Handshake) -> bool {
    sim.stream_state(0, hs.offerer, 0).is_terminal()
        && sim.stream_state(1, hs.answerer, 0).is_terminal()
}

#[test]
fn half_close_request_then_response() {
    let (mut sim, hs) = connected(
        1,
        LinkConfig::wan().with_loss(0.05),
        Config::default(),
        &[RELIABLE],
    );
    let (a, b) = (
        stream_id(&mut sim, 0, hs.offerer, 0),
        stream_id(&mut sim, 1, hs.answerer, 0),
    );
    let request = payload(50_000, 1);
    assert_eq!(
        write_some(&mut sim, 0, hs.offerer, a, &request),
        request.len()
    );
    let now = sim.now;
    sim.session(0, hs.offerer).finish_stream(now, a).unwrap();
    assert_eq!(
        sim.session(0, hs.offerer).write(now, a, b"more"),
        Err(carrier_proto::Error::Finished)
    );
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(30);
    assert!(sim.run_until(deadline, |sim| finished(sim, 1, hs.answerer, 0)));
    assert_eq!(got(&sim, 1, hs.answerer, 0), request);
    // The requester's end is finished, but the stream is open: the answer goes back.
    assert_eq!(sim.stream_state(1, hs.answerer, 0), S::Connected);
    assert_eq!(sim.stream_state(0, hs.offerer, 0), S::Connected);
    let response = payload(80_000, 2);
    let mut sent = 0;
    let deadline = sim.now + Duration::from_secs(30);
    while sent < response.len() {
        sent += write_some(&mut sim, 1, hs.answerer, b, &response[sent..]);
        sim.step();
        assert!(sim.now < deadline);
    }
    let now = sim.now;
    sim.session(1, hs.answerer).finish_stream(now, b).unwrap();
    sim.drain(1);
    let deadline = sim.now + Duration::from_secs(30);
    assert!(sim.run_until(deadline, |sim| both_closed(sim, &hs)));
    assert_eq!(got(&sim, 0, hs.offerer, 0), response);
    assert!(finished(&sim, 0, hs.offerer, 0));
    // The side that finished first closed "locally", the other "by peer".
    assert_eq!(
        sim.state_log(0, hs.offerer, 0).last(),
        Some(&(S::Closed, Some(StateReason::ClosedLocally)))
    );
    assert_eq!(
        sim.state_log(1, hs.answerer, 0).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Normal))
        ))
    );
    for (peer, session) in [(0, hs.offerer), (1, hs.answerer)] {
        let acked = sim.peers[peer].events.iter().any(
            |(_, e)| matches!(e, Event::StreamAcknowledged { session: s, .. } if *s == session),
        );
        assert!(acked, "peer {peer}: StreamAcknowledged");
    }
}

#[test]
fn a_close_completes_on_both_sides_within_two_round_trips() {
    // 20 ms one way: RTT 40 ms. Nothing outstanding, then close: FIN → ACK → CLOSE.
    let link = LinkConfig::ideal().with_delay(Duration::from_millis(20));
    let (mut sim, hs) = connected(2, link, Config::default(), &[RELIABLE]);
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let data = payload(20_000, 2);
    write_some(&mut sim, 0, hs.offerer, id, &data);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(got(&sim, 1, hs.answerer, 0), data);
    let start = sim.now;
    sim.session(0, hs.offerer).close_stream(start, id).unwrap();
    sim.drain(0);
    let deadline = start + Duration::from_secs(20);
    assert!(sim.run_until(deadline, |sim| both_closed(sim, &hs)));
    let rtt = Duration::from_millis(40);
    for (peer, session) in [(0, hs.offerer), (1, hs.answerer)] {
        let at = sim.state_time(peer, session, 0, S::Closed).unwrap();
        assert!(
            at - start <= 2 * rtt + Duration::from_millis(10),
            "peer {peer} closed after {:?}",
            at - start
        );
    }
    assert!(finished(&sim, 1, hs.answerer, 0));
}

#[test]
fn closing_mid_transfer_delivers_every_accepted_byte_then_the_end() {
    let (mut sim, hs) = connected(
        3,
        LinkConfig::wan().with_loss(0.05),
        Config::default(),
        &[RELIABLE],
    );
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let data = payload(3_000_000, 3);
    let n = write_some(&mut sim, 0, hs.offerer, id, &data);
    sim.run_for(Duration::from_millis(150));
    let now = sim.now;
    sim.session(0, hs.offerer).close_stream(now, id).unwrap();
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(deadline, |sim| both_closed(sim, &hs)));
    assert_eq!(got(&sim, 1, hs.answerer, 0), &data[..n]);
    assert!(finished(&sim, 1, hs.answerer, 0));
    assert_eq!(
        sim.state_log(1, hs.answerer, 0).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Normal))
        ))
    );
}

#[test]
fn a_graceful_session_close_flushes_streams_and_channels_first() {
    let (mut sim, hs) = connected(
        4,
        LinkConfig::wan().with_loss(0.05),
        Config::default(),
        &[RELIABLE, MUX],
    );
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let mux = stream_id(&mut sim, 0, hs.offerer, 1);
    let now = sim.now;
    let ch = sim
        .session(0, hs.offerer)
        .open_channel(now, mux, b"file")
        .unwrap();
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(10);
    assert!(sim.run_until(deadline, |sim| {
        sim.peers[1]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelOpen { .. }))
    }));
    let now = sim.now;
    let mux_b = stream_id(&mut sim, 1, hs.answerer, 1);
    sim.session(1, hs.answerer)
        .accept_channel(now, mux_b, ch)
        .unwrap();
    sim.drain(1);
    let deadline = sim.now + Duration::from_secs(10);
    assert!(sim.run_until(deadline, |sim| {
        sim.peers[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelOpened { .. }))
    }));

    let data = payload(400_000, 4);
    let n = write_some(&mut sim, 0, hs.offerer, id, &data);
    let chan_data = payload(200_000, 5);
    let now = sim.now;
    let mut m = 0;
    while let Ok(k) = sim
        .session(0, hs.offerer)
        .write_channel(now, mux, ch, &chan_data[m..])
    {
        m += k;
        if m == chan_data.len() {
            break;
        }
    }
    assert!(m > 0);
    let now = sim.now;
    sim.ep(0).close_session(now, hs.offerer).unwrap();
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(
        deadline,
        |sim| sim.stream_state(1, hs.answerer, 0).is_terminal()
            && sim.stream_state(1, hs.answerer, 1).is_terminal()
    ));
    assert_eq!(got(&sim, 1, hs.answerer, 0), &data[..n]);
    assert!(finished(&sim, 1, hs.answerer, 0));
    let chan: Vec<u8> = sim.peers[1]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChannelData { channel, data, .. } if *channel == ch => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(chan, &chan_data[..m], "the channel's data arrived whole");
    let closes: Vec<CloseReason> = sim.peers[1]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChannelClosed {
                channel, reason, ..
            } if *channel == ch => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(closes, [CloseReason::Normal]);
    // The closing side's streams closed as they flushed, and the id was freed after.
    assert_eq!(
        sim.state_log(0, hs.offerer, 0).last(),
        Some(&(S::Closed, Some(StateReason::ClosedLocally)))
    );
    sim.run_for(Duration::from_millis(200));
    assert!(sim.ep(0).session(hs.offerer).is_err(), "the id is freed");
}

#[test]
fn an_abort_mid_transfer_is_never_a_clean_end() {
    let (mut sim, hs) = connected(
        5,
        LinkConfig::wan().with_loss(0.05),
        Config::default(),
        &[RELIABLE],
    );
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let data = payload(2_000_000, 5);
    write_some(&mut sim, 0, hs.offerer, id, &data);
    sim.run_for(Duration::from_millis(150));
    let now = sim.now;
    sim.ep(0).abort_session(now, hs.offerer).unwrap();
    sim.drain(0);
    sim.run_for(Duration::from_secs(2));
    assert!(!finished(&sim, 1, hs.answerer, 0));
    assert!(got(&sim, 1, hs.answerer, 0).len() < data.len());
    assert_eq!(
        sim.state_log(1, hs.answerer, 0).last(),
        Some(&(
            S::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Error))
        ))
    );
    assert_eq!(
        sim.state_log(0, hs.offerer, 0).last(),
        Some(&(S::Closed, Some(StateReason::AbortedLocally)))
    );
}

#[test]
fn a_close_the_peer_never_answers_gives_up_after_the_linger() {
    let config = Config {
        close_linger: Duration::from_secs(2),
        ..Config::default()
    };
    let (mut sim, hs) = connected(6, LinkConfig::wan(), config, &[RELIABLE]);
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    write_some(&mut sim, 0, hs.offerer, id, &payload(500_000, 6));
    sim.run_for(Duration::from_millis(100));
    sim.partition(0, 1, true);
    let start = sim.now;
    sim.ep(0).close_session(start, hs.offerer).unwrap();
    sim.drain(0);
    assert_eq!(sim.stream_state(0, hs.offerer, 0), S::Connected, "flushing");
    let deadline = start + Duration::from_secs(30);
    assert!(sim.run_until(deadline, |sim| {
        sim.stream_state(0, hs.offerer, 0).is_terminal()
    }));
    let at = sim.state_time(0, hs.offerer, 0, S::Closed).unwrap();
    assert!(at - start >= Duration::from_secs(2) && at - start < Duration::from_secs(3));
    assert_eq!(
        sim.state_log(0, hs.offerer, 0).last(),
        Some(&(S::Closed, Some(StateReason::CloseTimeout)))
    );
    assert_eq!(sim.ep(0).stats().close_lingers_expired, 1);
    assert!(!finished(&sim, 1, hs.answerer, 0));
}

/// How the writer ends its side in the property test.
#[derive(Clone, Copy, Debug)]
enum Ending {
    FinishStream,
    CloseStream,
    CloseSession,
    AbortStream,
    AbortSession,
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::FinishStream),
        Just(Ending::CloseStream),
        Just(Ending::CloseSession),
        Just(Ending::AbortStream),
        Just(Ending::AbortSession),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the close point and the loss: the reader's end (`StreamFinished`) comes
    /// only after exactly the bytes the writer's `write` accepted; a graceful ending always
    /// gets there; an abort never claims a clean end it did not have.
    #[test]
    fn closing_the_writer_never_gives_a_clean_end_short_of_the_data(
        seed in 0u64..10_000,
        size in 1usize..400_000,
        close_after_ms in 0u64..400,
        loss in 0.0f64..0.15,
        burst in any::<bool>(),
        how in ending(),
    ) {
        close_case(seed, size, close_after_ms, loss, burst, how)?;
    }
}

/// Whether either side's stream failed with a dead path.
fn path_died(sim: &Sim, hs: &Handshake) -> bool {
    [(0, hs.offerer), (1, hs.answerer)].iter().any(|&(p, s)| {
        sim.state_log(p, s, 0)
            .last()
            .is_some_and(|(st, r)| *st == S::Failed && *r == Some(StateReason::PathDead))
    })
}

/// One case of the property below (and its regressions).
fn close_case(
    seed: u64,
    size: usize,
    close_after_ms: u64,
    loss: f64,
    burst: bool,
    how: Ending,
) -> Result<(), TestCaseError> {
    let mut link = LinkConfig::wan()
        .with_delay(Duration::from_millis(15))
        .with_loss(loss);
    if burst {
        // Bursty: good→bad 2%, bad→good 20%, 80% loss while bad (mean ≈ 7%).
        link = link.with_gilbert_elliott(0.02, 0.2, 0.0, 0.8);
    }
    let (mut sim, hs) = connected(seed, link, Config::default(), &[RELIABLE]);
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let data = payload(size, seed);
    let mut accepted = 0;
    let stop = sim.now + Duration::from_millis(close_after_ms);
    loop {
        accepted += write_some(&mut sim, 0, hs.offerer, id, &data[accepted..]);
        if sim.now >= stop || !sim.step() {
            break;
        }
    }
    let now = sim.now;
    match how {
        Ending::FinishStream => sim.session(0, hs.offerer).finish_stream(now, id).unwrap(),
        Ending::CloseStream => sim.session(0, hs.offerer).close_stream(now, id).unwrap(),
        Ending::CloseSession => sim.ep(0).close_session(now, hs.offerer).unwrap(),
        Ending::AbortStream => sim.session(0, hs.offerer).abort_stream(now, id).unwrap(),
        Ending::AbortSession => sim.ep(0).abort_session(now, hs.offerer).unwrap(),
    }
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(120);
    sim.run_until(deadline, |sim| {
        finished(sim, 1, hs.answerer, 0) || sim.stream_state(1, hs.answerer, 0).is_terminal()
    });
    let received = got(&sim, 1, hs.answerer, 0);
    prop_assert!(
        data[..accepted].starts_with(&received),
        "seed {}: corrupt data",
        seed
    );
    if finished(&sim, 1, hs.answerer, 0) {
        prop_assert_eq!(
            received.len(),
            accepted,
            "seed {}: an end short of the data",
            seed
        );
    }
    match how {
        // A path that died under the loss (no ACK after `max_ptos` probes) ends the stream
        // Failed: no end, rightly; anything else must reach the end.
        Ending::FinishStream | Ending::CloseStream | Ending::CloseSession
            if !path_died(&sim, &hs) =>
        {
            prop_assert!(
                finished(&sim, 1, hs.answerer, 0),
                "seed {}: no end after a graceful close: {} of {} bytes, at {:?}; offerer {:?}, answerer {:?}",
                seed,
                received.len(),
                accepted,
                sim.now,
                sim.state_log(0, hs.offerer, 0),
                sim.state_log(1, hs.answerer, 0)
            );
        }
        Ending::FinishStream | Ending::CloseStream | Ending::CloseSession => {}
        Ending::AbortStream | Ending::AbortSession => {
            prop_assert!(
                !finished(&sim, 1, hs.answerer, 0),
                "seed {}: a clean end after an abort",
                seed
            );
        }
    }
    // A Normal close by the peer only ever follows the end.
    if let Some((S::Closed, Some(StateReason::ClosedByPeer(CloseReason::Normal)))) =
        sim.state_log(1, hs.answerer, 0).last().copied()
    {
        prop_assert!(finished(&sim, 1, hs.answerer, 0));
    }
    Ok(())
}

#[test]
fn regression_a_path_dead_under_burst_loss_is_no_clean_end() {
    // Bursts of 80% loss killed the path mid-transfer: the reader must not see an end.
    close_case(9090, 183_061, 0, 0.0, true, Ending::FinishStream).unwrap();
}

#[test]
fn a_session_closed_before_it_connected_ends_at_once() {
    let mut sim = Sim::new(7);
    let (a, _b) = (sim.add_peer("alice"), sim.add_peer("bob"));
    let s = sim.ep(a).new_session("bob").unwrap();
    sim.ep(a)
        .session(s)
        .unwrap()
        .add_stream(T::Text, O::RELIABLE)
        .unwrap();
    sim.ep(a).close_session(Instant::ZERO, s).unwrap();
    assert!(sim.ep(a).session(s).is_err());
}

/// Events of one channel on a peer.
fn channel_events(
    sim: &Sim,
    peer: PeerIdx,
    ch: carrier_proto::ChannelId,
) -> (Vec<u8>, bool, Vec<CloseReason>) {
    let mut data = Vec::new();
    let mut fin = false;
    let mut closes = Vec::new();
    for (_, e) in &sim.peers[peer].events {
        match e {
            Event::ChannelData {
                channel, data: d, ..
            } if *channel == ch => {
                assert!(!fin, "data after ChannelFinished");
                data.extend_from_slice(d);
            }
            Event::ChannelFinished { channel, .. } if *channel == ch => fin = true,
            Event::ChannelClosed {
                channel, reason, ..
            } if *channel == ch => closes.push(*reason),
            _ => {}
        }
    }
    (data, fin, closes)
}

#[test]
fn a_channel_half_closes_for_a_request_and_its_response() {
    let (mut sim, hs) = connected(
        8,
        LinkConfig::wan().with_loss(0.05),
        Config::default(),
        &[MUX],
    );
    let (sa, sb) = (
        stream_id(&mut sim, 0, hs.offerer, 0),
        stream_id(&mut sim, 1, hs.answerer, 0),
    );
    let now = sim.now;
    let ch = sim
        .session(0, hs.offerer)
        .open_channel(now, sa, b"rpc")
        .unwrap();
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(10);
    assert!(sim.run_until(deadline, |sim| {
        sim.peers[1]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelOpen { .. }))
    }));
    let now = sim.now;
    sim.session(1, hs.answerer)
        .accept_channel(now, sb, ch)
        .unwrap();
    sim.drain(1);
    assert!(sim.run_until(deadline, |sim| {
        sim.peers[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelOpened { .. }))
    }));

    let request = payload(30_000, 8);
    let now = sim.now;
    assert_eq!(
        sim.session(0, hs.offerer)
            .write_channel(now, sa, ch, &request)
            .unwrap(),
        request.len()
    );
    sim.session(0, hs.offerer)
        .finish_channel(now, sa, ch)
        .unwrap();
    assert_eq!(
        sim.session(0, hs.offerer)
            .write_channel(now, sa, ch, b"more"),
        Err(carrier_proto::Error::Finished)
    );
    sim.drain(0);
    let deadline = sim.now + Duration::from_secs(30);
    assert!(sim.run_until(deadline, |sim| channel_events(sim, 1, ch).1));
    assert_eq!(channel_events(&sim, 1, ch).0, request);
    assert!(
        channel_events(&sim, 1, ch).2.is_empty(),
        "still open for the answer"
    );

    let response = payload(20_000, 9);
    let now = sim.now;
    assert_eq!(
        sim.session(1, hs.answerer)
            .write_channel(now, sb, ch, &response)
            .unwrap(),
        response.len()
    );
    sim.session(1, hs.answerer)
        .finish_channel(now, sb, ch)
        .unwrap();
    sim.drain(1);
    let deadline = sim.now + Duration::from_secs(30);
    assert!(
        sim.run_until(deadline, |sim| !channel_events(sim, 0, ch).2.is_empty()
            && !channel_events(sim, 1, ch).2.is_empty())
    );
    let (got, fin, closes) = channel_events(&sim, 0, ch);
    assert_eq!(got, response);
    assert!(fin);
    assert_eq!(closes, [CloseReason::Normal]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(channel_events(&sim, 1, ch).2, [CloseReason::Normal]);
    assert_eq!(channel_events(&sim, 0, ch).2, [CloseReason::Normal]);
}
