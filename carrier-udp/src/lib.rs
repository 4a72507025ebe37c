//! The runtime-independent half of every `carrier-proto` driver.
//!
//! A driver owns a UDP socket and a timer; everything else it does is the same whatever
//! runtime it runs on, and lives here:
//!
//! - [`Engine`]: one [`Endpoint`](carrier_proto::Endpoint) with its wall clock, direct
//!   signaling ([`SIGNAL_MAGIC`]) and GSO batching, stepped with [`Engine::poll`];
//! - [`Socket`]: a UDP socket with batched IO (GSO on send, GRO on receive) where the OS has
//!   it, via `quinn-udp`, for any socket type that lends its file descriptor.
//!
//! `carrier-mio` (a blocking loop) and `carrier-async` (tokio, async-std, smol) are built on
//! it.

mod direct;
mod engine;
mod socket;

pub use direct::MAGIC as SIGNAL_MAGIC;
pub use engine::{Engine, IoStats, MAX_BATCH_BYTES, OwnedStep, OwnedTransmit, Step};
pub use socket::{Read, SOCKET_BUFFER, Socket, tune_buffers};
/// Re-exported for [`tune_buffers`].
pub use socket2;
