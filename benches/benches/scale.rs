//! What idle sessions cost the endpoint's loop: the per-event cost of one datagram on one
//! active session (`handle_input`, `poll_output` drained on both sides, `next_timeout`),
//! with 1, 1,000 and 100,000 idle connected sessions beside it on the same two endpoints.
//!
//! `cargo bench -p carrier-benches --bench scale` prints the median over rounds for each
//! size and the ratio to the one-session cost (the target: at most 1.3× at 100k).
//! `SCALE_SIZES=1,1000` picks the sizes; `--test` (as `cargo test --benches` passes) runs a
//! quick check that the events move.

use std::time::Instant as WallClock;

use carrier_benches::compare::stats::median;
use carrier_benches::many::Many;

const ROUNDS: usize = 9;
const EVENTS_PER_ROUND: usize = 20_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let sizes: Vec<usize> = match std::env::var("SCALE_SIZES") {
        Ok(s) => s.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) if quick => vec![1, 100],
        Err(_) => vec![1, 1_000, 100_000],
    };
    let (rounds, events) = if quick {
        (1, 200)
    } else {
        (ROUNDS, EVENTS_PER_ROUND)
    };
    println!(
        "per-event cost of one active session's datagram (handle_input + poll_output + next_timeout)"
    );
    println!(
        "{:>10}  {:>12}  {:>12}  {:>8}",
        "sessions", "setup", "ns/event", "ratio"
    );
    let mut base = None;
    for &n in &sizes {
        let start = WallClock::now();
        let mut many = Many::connect(n);
        let setup = start.elapsed();
        // Warm up (caches, the heap's shape).
        for _ in 0..events / 10 {
            many.one_event();
        }
        let mut per_event = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = WallClock::now();
            let mut moved = 0;
            for _ in 0..events {
                moved += many.one_event();
            }
            assert!(
                moved >= events,
                "every event moves its datagram ({moved} of {events})"
            );
            per_event.push(t.elapsed().as_nanos() as f64 / events as f64);
        }
        let ns = median(&mut per_event);
        let ratio = ns / *base.get_or_insert(ns);
        println!("{n:>10}  {:>10.1?}  {ns:>12.0}  {ratio:>7.2}×", setup);
    }
}
