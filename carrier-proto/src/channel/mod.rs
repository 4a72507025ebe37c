//! Channels: many independent conversations inside one stream (MULTIPLEXING streams).
//!
//! The wire frames ([`ChannelFrame`]), the per-stream state machine ([`ChannelTable`]) and
//! the [`Mux`] that wires them into a session's transport.
//!
//! # What a channel is
//! A channel is a bidirectional byte stream inside a stream, opened with a *cookie* (opaque
//! bytes for the peer's application, e.g. a port-forwarding service name) and closed with a
//! [`CloseReason`](crate::CloseReason). Unlike the Carrier SDK, where all channels shared one
//! reliable byte stream (a loss on one stalled all), each channel's DATA has its own offset
//! space and its own send/receive stream pair.
//!
//! # Ids
//! Both sides open channels at any time, so ids are split by parity to avoid collisions
//! without a round trip: the side that made the offer opens odd ids (1, 3, 5, …), the side
//! that answered opens even ids (2, 4, 6, …). Id 0 is reserved for the stream's plain data
//! (as in the Carrier SDK) and is malformed in a channel frame. Each side's next id only grows,
//! so an id is never reused within a table's lifetime: a late frame for a closed channel
//! cannot be mistaken for a new one.
//!
//! # States
//! ```text
//! open()  → Opening ──ACCEPT (or DATA)──→ Open ──close() / CLOSE──→ removed
//!                   ──CLOSE(Error)──────→ removed   (refused: the app sees Closed{Error})
//! OPEN    → Incoming ──accept()─────────→ Open
//!                    ──refuse()─────────→ removed   (we send CLOSE(Error))
//! ```
//! Any live channel can be closed from either side. Pause flags run in both directions:
//! `local_paused` (we sent PEND: the peer should not send) and `remote_paused` (the peer sent
//! PEND: our sends fail with [`ChannelError::RemotePaused`], so pend really stops a writer).
//! `close_all` ends every channel when the stream or session ends.
//!
//! # Limits
//! [`ChannelLimits`] bound the channels alive at once (2048, the Carrier SDK's), the cookie
//! length (1024) and the opens awaiting an answer (64), for our opens and the peer's alike.
//! A peer OPEN past a limit is refused with CLOSE(Error) and counted, never stored, so an
//! open flood cannot grow memory. A frame for a channel that never existed is answered with
//! CLOSE(Error), so the peer is always told (the Carrier SDK leaked such channels).
//!
//! # Wiring
//! [`Mux`] (`mux.rs`) connects a table to the session's transport: control records travel
//! in an ordered per-stream control stream, each channel has its own send and receive
//! stream, and channels are scheduled round-robin. [`ChannelConfig`] holds the limits.

/// Channel state by id: a hash map with a hasher seeded from the endpoint's randomness, so
/// lookups are O(1) (they happen several times per packet) and a peer choosing ids cannot
/// aim for collisions.
pub(crate) type IdMap<V> = hashbrown::HashMap<u64, V, foldhash::fast::FixedState>;

/// An empty [`IdMap`] hashing with `seed`.
pub(crate) fn id_map<V>(seed: u64) -> IdMap<V> {
    IdMap::with_hasher(foldhash::fast::FixedState::with_seed(seed))
}

mod config;
mod frame;
mod mux;
mod state;

pub use config::{ChannelConfig, INITIAL_CHANNEL_CREDIT, INITIAL_CONTROL_CREDIT};
pub use frame::ChannelFrame;
pub(crate) use frame::{MAX_CHANNEL_ID, is_channel_frame, is_control_record};
pub(crate) use mux::{ControlCall, Mux, MuxError};
pub(crate) use state::Side;
pub use state::{ChannelError, ChannelId, ChannelState};
