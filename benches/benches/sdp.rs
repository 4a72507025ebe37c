//! SDP parse and serialize of a 4-stream description with 8 candidates per stream.
//! Target: parse under 5 µs on the 2-core reference machine.
//!
//! `cargo bench -p carrier-benches --bench sdp`

use std::hint::black_box;

use carrier_benches::four_stream_description;
use carrier_proto::SdpLimits;
use carrier_proto::sdp::SessionDescription;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn sdp(c: &mut Criterion) {
    let desc = four_stream_description();
    let text = desc.to_sdp_string();
    let limits = SdpLimits::default();
    assert_eq!(SessionDescription::parse(&text, &limits).unwrap(), desc);

    let mut g = c.benchmark_group("sdp");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse_4x8", |b| {
        b.iter(|| SessionDescription::parse(black_box(&text), &limits).unwrap())
    });
    let mut out = String::with_capacity(text.len());
    g.bench_function("serialize_4x8", |b| {
        b.iter(|| {
            out.clear();
            black_box(&desc).write_to(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("serialize_4x8_new_string", |b| {
        b.iter(|| black_box(&desc).to_sdp_string())
    });
    g.finish();
}

criterion_group!(benches, sdp);
criterion_main!(benches);
