//! Datagram back-pressure on the simulator: writes beyond the congestion window wait in
//! the session's bounded queue and go out at the controller's pace; a full queue refuses
//! the write (`WouldBlock`, then `Writable`) or, by choice, drops the oldest — counted and
//! reported once per episode.

use core::time::Duration;

use carrier_proto::{
    Config, DatagramPolicy, Error, Event, SessionId, StreamOptions as O, StreamType as T,
};
use carrier_tests::netem::LinkConfig;
use carrier_tests::sim::{Handshake, PeerIdx, Sim, stream_id};

const DATAGRAMS: (T, O) = (T::Audio, O::empty());

fn connected(seed: u64, link: LinkConfig, config: Config) -> (Sim, Handshake) {
    let mut sim = Sim::new(seed);
    let (a, b) = (
        sim.add_peer_with("alice", config.clone()),
        sim.add_peer_with("bob", config),
    );
    let hs = sim.handshake(a, b, &[DATAGRAMS]);
    assert!(sim.run_until_connected(&hs, 1));
    sim.set_link(a, b, link);
    (sim, hs)
}

/// The numbers (first 4 bytes) of the datagrams a peer received.
fn numbers(sim: &Sim, peer: PeerIdx, session: SessionId) -> Vec<u32> {
    sim.received(peer, session, 0)
        .iter()
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
        .collect()
}

fn datagram(i: u32) -> Vec<u8> {
    let mut d = vec![0x5a; 1024];
    d[..4].copy_from_slice(&i.to_be_bytes());
    d
}

fn writables(sim: &Sim, peer: PeerIdx) -> usize {
    sim.peers[peer]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Writable { .. }))
        .count()
}

#[test]
fn ten_thousand_unpaced_datagrams_all_arrive() {
    // An in-order path (a jittered link with no rate limit reorders bursts wildly, and a
    // datagram later than 32 ACK ranges is taken for a duplicate).
    let link = LinkConfig::ideal().with_delay(Duration::from_millis(1));
    let (mut sim, hs) = connected(1, link, Config::default());
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let total = 10_000u32;
    let mut next = 0;
    let mut blocked = 0;
    let deadline = sim.now + Duration::from_secs(60);
    while next < total {
        let now = sim.now;
        match sim.session(0, hs.offerer).write(now, id, &datagram(next)) {
            Ok(_) => next += 1,
            Err(Error::WouldBlock) => {
                blocked += 1;
                // Wait for room, as an application would: until Writable.
                let seen = writables(&sim, 0);
                sim.drain(0);
                assert!(sim.run_until(deadline, |sim| writables(sim, 0) > seen));
            }
            Err(e) => panic!("{e}"),
        }
    }
    sim.drain(0);
    sim.run_for(Duration::from_secs(2));
    let got = numbers(&sim, 1, hs.answerer);
    assert_eq!(
        got.len(),
        total as usize,
        "every datagram arrived: {:?} {:?}",
        sim.ep(1).stats(),
        sim.net.stats()
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    let stats = sim.ep(0).stats();
    assert!(stats.datagrams_queued > 0, "{stats:?}");
    assert!(blocked > 0, "the 1 MiB queue filled");
    assert_eq!(stats.datagrams_congestion_dropped, 0);
}

#[test]
fn drop_oldest_takes_every_write_and_reports_each_episode_once() {
    let config = Config {
        datagram_send_buffer: 64 * 1024,
        datagram_policy: DatagramPolicy::DropOldest,
        ..Config::default()
    };
    let (mut sim, hs) = connected(2, LinkConfig::wan(), config);
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let episodes = |sim: &Sim| {
        sim.peers[0]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::DatagramsDropped { .. }))
            .count()
    };
    for round in 0..2u32 {
        let now = sim.now;
        for i in 0..2_000 {
            sim.session(0, hs.offerer)
                .write(now, id, &datagram(round * 10_000 + i))
                .expect("DropOldest takes every write");
        }
        assert!(sim.session(0, hs.offerer).queued_datagram_bytes() <= 64 * 1024);
        sim.drain(0);
        assert_eq!(episodes(&sim), round as usize + 1, "one report per episode");
        sim.run_for(Duration::from_secs(3));
    }
    let stats = sim.ep(0).stats();
    let got = numbers(&sim, 1, hs.answerer);
    // What was not dropped arrived (a lossless link), and the newest always made it.
    assert_eq!(
        got.len() as u64 + stats.datagrams_dropped_oldest,
        4_000,
        "{stats:?}"
    );
    assert!(got.contains(&1_999) && got.contains(&11_999));
}

#[test]
fn a_graceful_session_close_sends_the_queued_datagrams_first() {
    let link = LinkConfig::ideal().with_delay(Duration::from_millis(40));
    let (mut sim, hs) = connected(3, link, Config::default());
    let id = stream_id(&mut sim, 0, hs.offerer, 0);
    let now = sim.now;
    for i in 0..500 {
        sim.session(0, hs.offerer)
            .write(now, id, &datagram(i))
            .unwrap();
    }
    assert!(sim.session(0, hs.offerer).queued_datagram_bytes() > 0);
    sim.ep(0).close_session(now, hs.offerer).unwrap();
    sim.drain(0);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(numbers(&sim, 1, hs.answerer).len(), 500);
    assert!(sim.stream_state(1, hs.answerer, 0).is_terminal());
}
