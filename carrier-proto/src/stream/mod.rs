//! Streams: one flow inside a session, with its type, options and state.

mod state;

pub(crate) use state::transition_allowed;
pub use state::{StateReason, TransitionError};

use core::fmt;

use crate::transport::state::Reliable;
use crate::types::{StreamOptions, StreamState, StreamType};

/// A stream's id within its session: its position in the session's media sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub(crate) u8);

impl StreamId {
    /// The stream's 0-based index (its `m=` line in the descriptions).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// A stream's local record.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: StreamId,
    pub(crate) stream_type: StreamType,
    pub(crate) options: StreamOptions,
    pub(crate) state: StreamState,
    /// The reliability state, for RELIABLE streams.
    pub(crate) reliable: Option<Reliable>,
    /// Our CLOSE of this stream was lost: send it again.
    pub(crate) close_pending: Option<crate::types::CloseReason>,
    /// The channels, for MULTIPLEXING streams (created when the session starts).
    pub(crate) mux: Option<alloc::boxed::Box<crate::channel::Mux>>,
    /// Its `stream` span (inside the session's), for its events.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) span: crate::trace::Span,
}

impl Stream {
    pub(crate) fn new(
        id: StreamId,
        stream_type: StreamType,
        options: StreamOptions,
        session: &crate::trace::Span,
    ) -> Self {
        Stream {
            span: crate::trace::stream_span(session, id.0.into(), stream_type, options),
            id,
            stream_type,
            options: options.normalized(),
            state: StreamState::Raw,
            reliable: None,
            close_pending: None,
            mux: None,
        }
    }

    /// Whether a remote media section describes the same kind of stream.
    pub(crate) fn matches(&self, stream_type: StreamType, options: StreamOptions) -> bool {
        self.stream_type == stream_type && self.options == options.normalized()
    }

    pub(crate) fn is_multiplexing(&self) -> bool {
        self.options.contains(StreamOptions::MULTIPLEXING)
    }

    pub(crate) fn is_reliable(&self) -> bool {
        self.options.contains(StreamOptions::RELIABLE)
    }
}
