//! Shared helpers for the carrier-rs benchmarks (the benches live in `benches/`).
