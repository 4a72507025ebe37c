//! Channels: many independent conversations inside one stream (MULTIPLEXING streams).
//!
//! Wired into sessions by the channels issue's next step; this module is the groundwork,
//! pure and tested on its own: the wire frames ([`ChannelFrame`]) and the per-stream state
//! machine ([`ChannelTable`]).
//!
//! # What a channel is
//! A channel is a bidirectional byte stream inside a stream, opened with a *cookie* (opaque
//! bytes for the peer's application, e.g. a port-forwarding service name) and closed with a
//! [`CloseReason`](crate::CloseReason). Unlike the original, where all channels shared one
//! reliable byte stream (a loss on one stalled all), each channel's DATA has its own offset
//! space, so the next step can give every channel its own send/receive stream pair.
//!
//! # Ids
//! Both sides open channels at any time, so ids are split by parity to avoid collisions
//! without a round trip: the side that made the offer opens odd ids (1, 3, 5, …), the side
//! that answered opens even ids (2, 4, 6, …). Id 0 is reserved for the stream's plain data
//! (as in the original) and is malformed in a channel frame. Each side's next id only grows,
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
//! [`ChannelLimits`] bound the channels alive at once (2048, the original's), the cookie
//! length (1024) and the opens awaiting an answer (64), for our opens and the peer's alike.
//! A peer OPEN past a limit is refused with CLOSE(Error) and counted, never stored, so an
//! open flood cannot grow memory. A frame for a channel that never existed is answered with
//! CLOSE(Error), so the peer is always told (the original leaked such channels).
//!
//! # Not wired yet
//! Nothing calls this module yet: the frame loop does not dispatch types 0x0A–0x10, sessions
//! hold no tables, and no per-channel streams exist. The next step must carry the control
//! frames (OPEN, ACCEPT, CLOSE, PEND, RESUME) reliably and in order per stream; the table
//! relies on that order (e.g. the peer's ids arrive increasing).

mod config;
mod frame;
mod mux;
mod state;

pub use config::{ChannelConfig, INITIAL_CHANNEL_CREDIT};
pub use frame::ChannelFrame;
pub(crate) use frame::{MAX_CHANNEL_ID, is_channel_frame, is_control_record};
pub(crate) use mux::{Mux, MuxError};
pub(crate) use state::Side;
pub use state::{ChannelError, ChannelId, ChannelState};
