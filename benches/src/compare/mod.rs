//! The contenders of the comparison harness (`cargo bench -p carrier-benches --bench compare`):
//! kernel TCP, quinn with its defaults, a raw UDP blast and carrier itself, each moving the
//! same number of bytes over 127.0.0.1 in one process.
//!
//! Every contender is an `async fn` meant to run on a tokio multi-thread runtime (the harness
//! uses 2 workers); each creates its own sockets, so the runs are independent.

pub mod carrier;
pub mod quinn;
pub mod stats;
pub mod tcp;
pub mod udp;

/// The size of the application's writes in the goodput contenders (64 KiB).
pub const WRITE_CHUNK: usize = 64 * 1024;
