//! In-memory goodput of one reliable stream between two endpoints in one thread (no link
//! limits, 1200-byte packets), next to a plain memcpy of the same bytes.
//! Targets: ≥ 2.5 GB/s PLAIN; ≥ 1.2 GB/s encrypted (the default). The table with allocations per packet and the simulated-link figures
//! is `cargo run --release -p carrier-benches --bin transport_table`.
//!
//! `cargo bench -p carrier-benches --bench transport`

use std::hint::black_box;
use std::time::Duration;

use carrier_benches::pair::Pair;
use carrier_proto::{Config, StreamOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CHUNK: u64 = 16 * 1024 * 1024;

fn goodput(c: &mut Criterion) {
    let source = vec![0x5Au8; 256 * 1024];
    let mut g = c.benchmark_group("reliable_in_memory");
    g.throughput(Throughput::Bytes(CHUNK));
    g.sample_size(20);
    // Encrypted (the default) and PLAIN, in the same run.
    for (name, options) in [
        ("goodput_16MiB_encrypted", StreamOptions::RELIABLE),
        (
            "goodput_16MiB_plain",
            StreamOptions::RELIABLE | StreamOptions::PLAIN,
        ),
    ] {
        let mut pair = Pair::connect(Config::default(), options);
        pair.transfer(64 * 1024 * 1024, &source, Duration::from_micros(1));
        g.bench_function(name, |b| {
            b.iter(|| black_box(pair.transfer(CHUNK, &source, Duration::from_micros(1))))
        });
    }
    let src = vec![7u8; 64 * 1024];
    let mut dst = vec![0u8; 64 * 1024];
    g.bench_function("memcpy_16MiB", |b| {
        b.iter(|| {
            for _ in 0..CHUNK / src.len() as u64 {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, goodput);
criterion_main!(benches);
