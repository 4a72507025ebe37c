//! KCP's latency scenario on the simulator: 10% loss each way, RTT 60–125 ms (one-way 30 ms
//! plus up to 32.5 ms of jitter), an 8-byte message every 20 ms for 20 s of virtual time,
//! echoed by the peer over the same reliable stream; the round-trip time of each message.

use std::time::Duration;

use carrier_proto::{Config, Event, Instant, StreamOptions, StreamType};
use carrier_tests::netem::LinkConfig;
use carrier_tests::sim::{Sim, stream_id};

/// Average and largest message round trip, and how many of the messages came back.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Mean round trip.
    pub avg: Duration,
    /// Largest round trip.
    pub max: Duration,
    /// Messages echoed back within the run.
    pub echoed: usize,
    /// Messages sent.
    pub sent: usize,
}

/// Runs the scenario with `config` on both peers.
pub fn kcp_scenario(config: Config, seed: u64) -> Latency {
    kcp_scenario_on(config, seed, 0.10, Duration::from_micros(32_500))
}

/// The scenario with another loss rate and jitter (for exploring what costs latency).
pub fn kcp_scenario_on(config: Config, seed: u64, loss: f64, jitter: Duration) -> Latency {
    let mut sim = Sim::new(seed);
    let (a, b) = (
        sim.add_peer_with("a", config.clone()),
        sim.add_peer_with("b", config),
    );
    let hs = sim.handshake(a, b, &[(StreamType::Application, StreamOptions::RELIABLE)]);
    assert!(sim.run_until_connected(&hs, 1));
    let link = LinkConfig::ideal()
        .with_delay(Duration::from_millis(30))
        .with_jitter(jitter)
        .with_loss(loss);
    sim.set_link(a, b, link);
    let (ia, ib) = (
        stream_id(&mut sim, a, hs.offerer, 0),
        stream_id(&mut sim, b, hs.answerer, 0),
    );
    let start = sim.now;
    let messages = 1000; // 20 s at one per 20 ms
    let mut sent_at: Vec<Instant> = Vec::with_capacity(messages);
    let mut rtts: Vec<Duration> = Vec::new();
    let (mut a_seen, mut b_seen) = (sim.peers[a].events.len(), sim.peers[b].events.len());
    let (mut a_buf, mut b_pending) = (Vec::new(), Vec::new());
    let end = start + Duration::from_secs(25);
    while sim.now < end {
        // Send the next message when its time comes.
        let next_send = start + Duration::from_millis(20) * sent_at.len() as u32;
        if sent_at.len() < messages && sim.now >= next_send {
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&(sent_at.len() as u32).to_be_bytes());
            let now = sim.now;
            sim.session(a, hs.offerer)
                .write(now, ia, &msg)
                .expect("write");
            sent_at.push(now);
            sim.drain(a);
        }
        // Bob echoes whatever arrived.
        let events = &sim.peers[b].events;
        for (_, e) in &events[b_seen..] {
            if let Event::StreamData { data, .. } = e {
                b_pending.extend_from_slice(data);
            }
        }
        b_seen = events.len();
        if !b_pending.is_empty() {
            let now = sim.now;
            let n = sim
                .session(b, hs.answerer)
                .write(now, ib, &b_pending)
                .expect("echo");
            b_pending.drain(..n);
            sim.drain(b);
        }
        // Alice collects echoes.
        // Alice collects echoes, timed when they arrived.
        let events = &sim.peers[a].events;
        for (at, e) in &events[a_seen..] {
            if let Event::StreamData { data, .. } = e {
                a_buf.extend_from_slice(data);
                while a_buf.len() >= 8 {
                    let seq = u32::from_be_bytes([a_buf[0], a_buf[1], a_buf[2], a_buf[3]]) as usize;
                    rtts.push(*at - sent_at[seq]);
                    a_buf.drain(..8);
                }
            }
        }
        a_seen = events.len();
        // Advance to the next event or the next message, whichever is first.
        let next_msg = (sent_at.len() < messages)
            .then(|| start + Duration::from_millis(20) * sent_at.len() as u32);
        match (sim.next_event_time(), next_msg) {
            (Some(t), Some(m)) if m < t => sim.now = m,
            (Some(_), _) => {
                sim.step();
            }
            (None, Some(m)) => sim.now = m,
            (None, None) => break,
        }
    }
    let total: Duration = rtts.iter().sum();
    Latency {
        avg: total / rtts.len().max(1) as u32,
        max: rtts.iter().copied().max().unwrap_or_default(),
        echoed: rtts.len(),
        sent: sent_at.len(),
    }
}
