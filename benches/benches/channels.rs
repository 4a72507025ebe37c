//! Channels on one RELIABLE | MULTIPLEXING stream, in memory (two endpoints back to back in
//! one thread, virtual time advancing 1 µs per exchange round, 1200-byte packets):
//!
//! - `channels_goodput/1` and `/1000`: 64 MiB per iteration, spread evenly over 1 or 1000
//!   open channels (default `ChannelConfig`: 1 MiB send buffer and receive window per
//!   channel). Target: 1000 channels ≥ 90% of one channel's goodput. The ratio of the
//!   per-iteration medians of this run is printed after the criterion output.
//! - `channel_open_close`: CPU of one open → peer accepts → opener's `ChannelOpened` →
//!   opener closes (Normal) → peer's `ChannelClosed`, on an idle stream and with 1000 other
//!   channels open.
//!
//! Afterwards (under `cargo bench` only) a Markdown table: both goodputs measured again,
//! interleaved (median of 5), a plain reliable stream for reference, goodput by channel
//! count, the CPU of opening 1000 channels and of an open + close round trip, the round
//! trip in virtual time on three simulated links (in RTTs), and the virtual time to open
//! 1000 channels on a WAN link. Set `CHANNELS_TABLE=0` to skip the table (~3 s).
//!
//! `cargo bench -p carrier-benches --bench channels -- --warm-up-time 2 --measurement-time 5`

use std::cell::RefCell;

use bytes::Bytes;
use std::hint::black_box;
use std::time::{Duration, Instant as WallClock};

use carrier_benches::channels::{ChannelPair, median, print_table};
use carrier_proto::Config;
use criterion::{Criterion, SamplingMode, Throughput};

/// Bytes per iteration.
const TOTAL: u64 = 64 * 1024 * 1024;
/// The many-channel case.
const MANY: usize = 1000;

fn goodput(c: &mut Criterion) {
    let source = Bytes::from(vec![0x5Au8; 256 * 1024]);
    let mut g = c.benchmark_group("channels_goodput");
    g.throughput(Throughput::Bytes(TOTAL));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    for zero_copy in [false, true] {
        let mut medians = Vec::new();
        for n in [1, MANY] {
            let mut cp = ChannelPair::new(Config::default(), n);
            cp.zero_copy = zero_copy;
            // Warm up: slow start, buffers grown.
            cp.transfer(TOTAL, &source);
            let rates = RefCell::new(Vec::new());
            let name = if zero_copy {
                format!("{n}/zero_copy")
            } else {
                format!("{n}")
            };
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut sum = Duration::ZERO;
                    for _ in 0..iters {
                        let start = WallClock::now();
                        black_box(cp.transfer(TOTAL, &source));
                        let d = start.elapsed();
                        rates.borrow_mut().push(TOTAL as f64 / d.as_secs_f64());
                        sum += d;
                    }
                    sum
                })
            });
            medians.push(median(&mut rates.into_inner()));
        }
        if medians.iter().any(|m| m.is_nan()) {
            continue; // filtered out
        }
        let how = if zero_copy {
            "write_channel_bytes"
        } else {
            "write_channel"
        };
        println!(
            "channels_goodput with {how} (this run, per-iteration medians): 1 channel {:.2} GB/s, {MANY} channels {:.2} GB/s, ratio {:.3} (target ≥ 0.9)",
            medians[0] / 1e9,
            medians[1] / 1e9,
            medians[1] / medians[0]
        );
    }
    g.finish();
}

fn open_close(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_open_close");
    for (name, n) in [("idle_stream", 0), ("1000_open", MANY)] {
        let mut cp = ChannelPair::new(Config::default(), n);
        for _ in 0..100 {
            cp.open_close();
        }
        g.bench_function(name, |b| b.iter(|| black_box(cp.open_close())));
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    goodput(&mut c);
    open_close(&mut c);
    c.final_summary();
    // Only under `cargo bench` (which passes `--bench`), not `cargo test` or `--list`.
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list");
    if benching && std::env::var("CHANNELS_TABLE").as_deref() != Ok("0") {
        print_table(MANY);
    }
}
