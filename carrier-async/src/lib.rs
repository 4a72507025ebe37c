//! An async API over [`carrier_proto`] for any runtime, in the seed's terms.
//!
//! - [`Manager`]: one UDP socket's endpoint. Requests session requests arrive on
//!   [`Manager::incoming`] (or [`Manager::incoming_for`] a bundle prefix); new sessions
//!   come from [`Manager::new_session`].
//! - [`Session`]: [`add_stream`](Session::add_stream), then
//!   [`request`](Session::request)`.await` (or [`request_direct`](Session::request_direct)
//!   given just the peer's address) → accepted, or [`Error::Refused`] with the peer's
//!   status and reason, or [`Error::TimedOut`]. The answering side:
//!   [`IncomingRequest::accept`] (new session, streams, reply, start in one call).
//! - [`Stream`]: its state ([`connected`](Stream::connected)`.await`,
//!   [`state_changed`](Stream::state_changed)), datagrams with [`send`](Stream::send) /
//!   [`recv`](Stream::recv) on unreliable streams, `AsyncRead` + `AsyncWrite` on reliable
//!   ones.
//! - [`Channel`]: a flow inside a MULTIPLEXING stream: `AsyncRead` + `AsyncWrite`, a close
//!   reason, pend/resume.
//! - [`Callbacks`]: the callback style of the Carrier SDK (`on_state_changed`,
//!   `on_stream_data`, `on_channel_open`, ...), for ported code.
//!
//! One task, the [`Driver`], owns the socket and the timer and moves the endpoint; the
//! handles reach the endpoint through a short-held lock and wake it. Each driver round has
//! a work budget ([`RECV_BUDGET`], [`STEP_BUDGET`]) so a busy session cannot starve the
//! application's tasks. What waits for a reader is bounded: reliable data by the receive
//! windows (credit returns as the reader reads), datagrams by a queue limit (newer ones
//! dropped and counted in [`DriverStats`]).
//!
//! The runtime glue: tokio (feature `tokio`, or the `carrier-tokio` crate) and async-io
//! (feature `async-io`: async-std and smol; or the `carrier-async-std` crate). Direct
//! signaling and batched socket IO come from `carrier-udp`, shared with `carrier-mio`.

mod callback;
mod channel;
mod driver;
mod error;
mod io;
mod manager;
mod runtime;
mod session;
mod shared;
mod stream;

pub use callback::{CallbackScope, Callbacks};
pub use channel::{Channel, IncomingChannel};
pub use driver::{Driver, RECV_BUDGET, STEP_BUDGET};
pub use error::{Closed, Error};
pub use manager::{DriverStats, IncomingRequest, Manager, Requests};
#[cfg(feature = "async-io")]
pub use runtime::AsyncIoRuntime;
#[cfg(feature = "tokio")]
pub use runtime::TokioRuntime;
pub use runtime::{AsyncTimer, AsyncUdpSocket, Runtime};
pub use session::{Request, Session};
pub use stream::{StateChanges, Stream};

/// The sans-IO core, for the types of the callback style and the lower-level calls.
pub use carrier_proto as proto;
pub use carrier_proto::{
    ChannelId, CloseReason, Config, EndpointStats, SessionId, StateReason, StreamId, StreamOptions,
    StreamState, StreamType,
};
pub use carrier_udp::IoStats;
