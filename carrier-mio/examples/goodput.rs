//! Loopback goodput of one encrypted reliable stream between two drivers, with batched
//! socket IO (GSO/GRO) and without, interleaved, median of 5 runs of 128 MiB each:
//! `cargo run --release -p carrier-mio --example goodput`.

#[path = "../tests/common/mod.rs"]
mod common;
use common::{Peer, config};
use std::time::{Duration, Instant as WallClock};

use carrier_mio::Driver;
use mio::{Events, Poll, Token};

/// One transfer of `total` bytes; returns (bytes/s, send calls per 1000 packets).
fn run(batching: bool, total: u64) -> (f64, f64) {
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    a.set_batching(batching);
    b.set_batching(batching);
    let mut poll = Poll::new().unwrap();
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let (mut sa, mut sb) = (Peer::default(), Peer::default());
    let (s, stream, pending) = common::request_one_stream(&mut a, "b", "");
    b.endpoint()
        .handle_offer("a", &pending.offer().to_sdp_string())
        .unwrap();
    sa.pending = Some(pending);
    b.flush(&mut sb).unwrap();
    a.endpoint()
        .handle_answer(&sb.answer.take().unwrap())
        .unwrap();
    a.flush(&mut sa).unwrap();
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    let mut written = 0u64;
    let mut events = Events::with_capacity(64);
    let mut start = None;
    while sb.received_len < total {
        carrier_mio::turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut sa), (&mut b, &mut sb)],
            Duration::from_millis(1),
        )
        .unwrap();
        if sa.connected && written < total {
            start.get_or_insert_with(WallClock::now);
            let now = a.now();
            let n = (total - written).min(chunk.len() as u64) as usize;
            if let Ok(k) =
                a.endpoint()
                    .session(s)
                    .unwrap()
                    .write_bytes(now, stream, chunk.slice(..n))
            {
                written += k as u64;
            }
            a.flush(&mut sa).unwrap();
        }
    }
    let secs = start.map_or(1.0, |t| t.elapsed().as_secs_f64());
    let packets = a.endpoint().stats().packets_sent as f64;
    (
        total as f64 / secs,
        a.send_calls() as f64 / packets * 1000.0,
    )
}

fn main() {
    let total = 128 << 20;
    let mut rates = [Vec::new(), Vec::new()];
    let mut calls = [0.0, 0.0];
    for _ in 0..5 {
        for (k, batching) in [(0, true), (1, false)] {
            let (r, c) = run(batching, total);
            rates[k].push(r);
            calls[k] = c;
        }
    }
    for r in &mut rates {
        r.sort_by(f64::total_cmp);
    }
    println!(
        "| loopback, one encrypted reliable stream, 128 MiB, median of 5 | goodput | send calls per 1000 packets |"
    );
    println!("|---|---|---|");
    println!(
        "| batched (GSO/GRO) | {:.0} MB/s | {:.0} |",
        rates[0][2] / 1e6,
        calls[0]
    );
    println!(
        "| one datagram per call | {:.0} MB/s | {:.0} |",
        rates[1][2] / 1e6,
        calls[1]
    );
    println!("| gain | {:.2}× | |", rates[0][2] / rates[1][2]);
}
