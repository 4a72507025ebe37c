//! carrier-tests: a deterministic network simulator for carrier-rs and the scenario tests
//! that run on it.
//!
//! - [`netem`]: links with seeded delay, jitter, loss, duplication, reordering, corruption
//!   and an MTU, in virtual time;
//! - [`sim`]: endpoints of carrier-proto talking over a netem, stepped in virtual time.
#![forbid(unsafe_code)]

pub mod netem;
pub mod sim;
