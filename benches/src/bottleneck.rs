//! Goodput through a simulated bottleneck: 100 Mbit/s, 40 ms RTT, a one-BDP drop-tail queue,
//! with random loss on the data direction. Goodput counts stream bytes delivered in order;
//! capacity is the link rate (so packet and frame headers count against us).

use std::time::Duration;

use carrier_proto::{Config, Event, StreamOptions, StreamType, TransportConfig};
use carrier_tests::netem::LinkConfig;
use carrier_tests::sim::{Sim, stream_id};

/// Link rate, bits per second.
pub const RATE: u64 = 100_000_000;
/// Round-trip propagation delay.
pub const RTT: Duration = Duration::from_millis(40);

/// Goodput as a fraction of the link rate, measured over `run` after `warmup`.
pub fn bottleneck_ratio(
    transport: TransportConfig,
    loss: f64,
    seed: u64,
    warmup: Duration,
    run: Duration,
) -> f64 {
    let bdp = (RATE / 8) as usize * RTT.as_millis() as usize / 1000;
    let config = Config::default().with_transport(transport);
    let mut sim = Sim::new(seed);
    let (a, b) = (
        sim.add_peer_with("a", config.clone()),
        sim.add_peer_with("b", config),
    );
    let hs = sim.handshake(a, b, &[(StreamType::Application, StreamOptions::RELIABLE)]);
    assert!(sim.run_until_connected(&hs, 1));
    let (aa, ba) = (sim.peers[a].addr, sim.peers[b].addr);
    let forward = LinkConfig::ideal()
        .with_delay(RTT / 2)
        .with_bottleneck(RATE, bdp)
        .with_loss(loss)
        .with_mtu(1500);
    let back = LinkConfig::ideal()
        .with_delay(RTT / 2)
        .with_bottleneck(RATE, bdp)
        .with_mtu(1500);
    sim.net.set_link(aa, ba, forward);
    sim.net.set_link(ba, aa, back);
    let id = stream_id(&mut sim, a, hs.offerer, 0);
    let source = vec![0xA5u8; 64 * 1024];
    let start = sim.now;
    let measure_from = start + warmup;
    let end = measure_from + run;
    let mut counted = 0u64;
    while sim.now < end {
        // Keep the send buffer full.
        loop {
            let now = sim.now;
            match sim.session(a, hs.offerer).write(now, id, &source) {
                Ok(n) if n == source.len() => continue,
                _ => break,
            }
        }
        sim.drain(a);
        if !sim.step() {
            break;
        }
        let in_window = sim.now >= measure_from;
        for (_, e) in sim.peers[b].events.drain(..) {
            if let Event::StreamData { data, .. } = e {
                if in_window {
                    counted += data.len() as u64;
                }
            }
        }
        sim.peers[a].events.clear();
    }
    (counted * 8) as f64 / run.as_secs_f64() / RATE as f64
}
