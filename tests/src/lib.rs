//! carrier-tests: a deterministic network simulator for carrier-rs and the scenario tests
//! that run on it.
//!
//! - [`netem`]: links with seeded delay, jitter, loss, duplication, reordering, corruption
//!   and an MTU, in virtual time;
//! - [`sim`]: endpoints of carrier-proto talking over a netem, stepped in virtual time.
#![forbid(unsafe_code)]

pub mod netem;
pub mod relay;
pub mod sim;

/// Deterministic pseudo-random bytes (xorshift from `seed`): test payloads that differ
/// everywhere, so a misplaced byte is caught.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
