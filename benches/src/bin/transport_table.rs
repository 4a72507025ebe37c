//! Prints the reliable-transport benchmark table (figures for the issue notes):
//! in-memory goodput next to memcpy, allocations per packet, ...
//!
//! `cargo run --release -p carrier-benches --bin transport_table`

use std::hint::black_box;
use std::time::{Duration, Instant as WallClock};

use carrier_benches::alloc_counter::{Counting, allocations};
use carrier_benches::bottleneck::bottleneck_ratio;
use carrier_benches::latency::kcp_scenario;
use carrier_benches::pair::Pair;
use carrier_proto::CongestionAlgorithm;
use carrier_proto::{Config, StreamOptions, TransportConfig};

#[global_allocator]
static ALLOC: Counting = Counting;

const TOTAL: u64 = 512 * 1024 * 1024;

fn memcpy_gbps(total: u64) -> f64 {
    let src = vec![7u8; 64 * 1024];
    let mut dst = vec![0u8; 64 * 1024];
    let start = WallClock::now();
    let mut done = 0;
    while done < total {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        done += src.len() as u64;
    }
    total as f64 / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let source = vec![0x5Au8; 256 * 1024];
    println!("| measurement | value |");
    println!("|---|---|");
    // Encrypted (the default) and PLAIN, interleaved, median of 3 each.
    let mut rates = [Vec::new(), Vec::new()];
    let mut last = (0, 0);
    let mut pairs = [
        Pair::connect(Config::default(), StreamOptions::RELIABLE),
        Pair::connect(
            Config::default(),
            StreamOptions::RELIABLE | StreamOptions::PLAIN,
        ),
    ];
    for pair in &mut pairs {
        // Warm up (slow start, buffers) before measuring.
        pair.transfer(64 * 1024 * 1024, &source, Duration::from_micros(1));
    }
    for _ in 0..3 {
        for (k, pair) in pairs.iter_mut().enumerate() {
            let (allocs0, packets0) = (allocations(), pair.packets);
            let start = WallClock::now();
            let got = pair.transfer(TOTAL, &source, Duration::from_micros(1));
            let secs = start.elapsed().as_secs_f64();
            rates[k].push(got as f64 / secs / 1e9);
            if k == 0 {
                last = (allocations() - allocs0, pair.packets - packets0);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let encrypted = median(&mut rates[0]);
    let plain = median(&mut rates[1]);
    let (allocs, packets) = last;
    let memcpy = memcpy_gbps(TOTAL);
    println!(
        "| in-memory goodput, one reliable stream, 1200-byte packets, encrypted (AES-256-GCM) | {encrypted:.2} GB/s |"
    );
    println!("| the same, PLAIN (CRC-32 only) | {plain:.2} GB/s |");
    println!("| encrypted / PLAIN | {:.2} |", encrypted / plain);
    println!("| memcpy of the same bytes (64 KiB blocks) | {memcpy:.2} GB/s |");
    println!("| PLAIN goodput / memcpy | {:.2} |", plain / memcpy);
    println!("| packets per run (data + ACK), encrypted | {packets} |");
    println!(
        "| heap allocations per packet (steady state, encrypted) | {:.4} ({allocs} in {packets}) |",
        allocs as f64 / packets as f64
    );

    for (name, transport) in [
        ("default", TransportConfig::default()),
        ("low-latency", TransportConfig::low_latency()),
    ] {
        let cfg = Config::default().with_transport(transport);
        let l = kcp_scenario(cfg, 1);
        println!(
            "| KCP scenario (10% loss, RTT 60–125 ms, 8 B / 20 ms, 20 s), {name} | avg {:.1} ms, max {:.1} ms ({}/{} echoed) |",
            l.avg.as_secs_f64() * 1e3,
            l.max.as_secs_f64() * 1e3,
            l.echoed,
            l.sent
        );
    }

    for cc in [
        CongestionAlgorithm::Bbr,
        CongestionAlgorithm::Cubic,
        CongestionAlgorithm::NewReno,
    ] {
        for (loss, target) in [(0.0, 0.95), (0.01, 0.85), (0.05, 0.6)] {
            let transport = TransportConfig {
                congestion: cc,
                ..TransportConfig::default()
            };
            let warm = Duration::from_secs(5);
            let run = Duration::from_secs(20);
            let r = bottleneck_ratio(transport, loss, 1, warm, run);
            let verdict = if r >= target { "meets" } else { "MISSES" };
            println!(
                "| 100 Mbit/s, 40 ms RTT, 1-BDP queue, {:.0}% loss, {cc:?} | goodput/capacity {r:.3} ({verdict} ≥ {target}) |",
                loss * 100.0
            );
        }
    }
}
