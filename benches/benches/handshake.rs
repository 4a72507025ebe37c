//! The full handshake to Connected in virtual time: offer, answer, start, connectivity
//! checks over a LAN-like simulated link, two streams.
//!
//! `cargo bench -p carrier-benches --bench handshake`

use std::hint::black_box;

use carrier_proto::{StreamOptions, StreamType};
use carrier_tests::sim::Sim;
use criterion::{Criterion, criterion_group, criterion_main};

fn handshake(c: &mut Criterion) {
    let streams = [
        (StreamType::Application, StreamOptions::empty()),
        (
            StreamType::Text,
            StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
        ),
    ];
    let plain = streams.map(|(t, o)| (t, o | StreamOptions::PLAIN));
    let mut g = c.benchmark_group("handshake");
    // Encrypted (the default: X25519 and the key schedule on both sides, every packet
    // sealed) and PLAIN, to show what protection adds.
    for (name, streams) in [
        ("two_peers_to_connected", streams),
        ("two_peers_to_connected_plain", plain),
    ] {
        g.bench_function(name, |b| {
            let mut seed = 0;
            b.iter(|| {
                seed += 1;
                let mut sim = Sim::new(seed);
                let (a, p) = (sim.add_peer("alice"), sim.add_peer("bob"));
                let hs = sim.handshake(a, p, &streams);
                assert!(sim.run_until_connected(&hs, 2));
                black_box(sim.now)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
