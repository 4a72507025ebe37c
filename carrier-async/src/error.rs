//! What the async API's calls fail with.

use carrier_proto::{CloseReason, StateReason};

/// Why a stream or channel no longer carries data, for the read or write that found out.
/// The same cause is the same variant on streams and on channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// This side finished writing, or closed it: no more writes (a broken pipe).
    Finished,
    /// This side aborted it, or its session: what was not delivered is gone.
    Aborted,
    /// The peer closed it. A writer's bytes after that are not read; a reader sees this
    /// only if the peer's end never came — the data was cut short.
    ByPeer,
    /// The peer aborted it (reason Error), or refused the channel.
    AbortedByPeer,
    /// Timed out: nothing was heard (idle timeout, an unreliable channel's keepalive), or
    /// a graceful close ran out of its linger before the peer acknowledged everything.
    TimedOut,
    /// The path failed: no acknowledgement (PathDead), no working pair, keys used up, or
    /// the session was refused; with the core's reason.
    Failed(Option<StateReason>),
}

impl Closed {
    /// The cause for a stream that ended with `reason`.
    pub fn from_stream(reason: Option<StateReason>) -> Closed {
        match reason {
            Some(StateReason::ClosedLocally) => Closed::Finished,
            Some(StateReason::AbortedLocally) => Closed::Aborted,
            Some(StateReason::ClosedByPeer(r)) => Closed::from_peer(r),
            Some(StateReason::IdleTimeout | StateReason::CloseTimeout) => Closed::TimedOut,
            other => Closed::Failed(other),
        }
    }

    /// The cause for a close with `reason` by the peer.
    pub fn from_peer(reason: CloseReason) -> Closed {
        match reason {
            CloseReason::Normal => Closed::ByPeer,
            CloseReason::Timeout => Closed::TimedOut,
            _ => Closed::AbortedByPeer,
        }
    }

    /// The cause for a channel closed with `reason`, by this side (`locally`) or not.
    pub fn from_channel(reason: CloseReason, locally: bool) -> Closed {
        match (reason, locally) {
            (CloseReason::Normal, true) => Closed::Finished,
            (CloseReason::Timeout, _) => Closed::TimedOut,
            (_, true) => Closed::Aborted,
            (r, false) => Closed::from_peer(r),
        }
    }

    fn io_kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind;
        match self {
            Closed::Finished => ErrorKind::BrokenPipe,
            Closed::ByPeer | Closed::AbortedByPeer => ErrorKind::ConnectionReset,
            Closed::Aborted | Closed::TimedOut | Closed::Failed(_) => ErrorKind::ConnectionAborted,
        }
    }
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Finished => f.write_str("finished or closed by this side"),
            Closed::Aborted => f.write_str("aborted by this side"),
            Closed::ByPeer => f.write_str("closed by the peer"),
            Closed::AbortedByPeer => f.write_str("aborted by the peer"),
            Closed::TimedOut => f.write_str("timed out"),
            Closed::Failed(Some(r)) => write!(f, "failed: {r:?}"),
            Closed::Failed(None) => f.write_str("failed"),
        }
    }
}

/// Why a call of the async API failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core refused the call (wrong state, a limit, a bad description, ...).
    #[error(transparent)]
    Proto(#[from] carrier_proto::Error),
    /// The peer refused the session request.
    #[error("the peer refused the request: status {status}, {reason:?}")]
    Refused {
        /// The peer's status (non-zero).
        status: i32,
        /// The peer's reason.
        reason: String,
    },
    /// The peer did not reply within the request timeout.
    #[error("the request timed out")]
    TimedOut,
    /// A read or write on a stream or channel that no longer carries data, and why (a
    /// reader gets this instead of the end when the data was cut short).
    #[error("closed: {0}")]
    Closed(Closed),
    /// The stream ended (Closed, Failed or Deactivated) before it was Connected, and why.
    #[error("the stream ended: {0:?}")]
    StreamEnded(Option<StateReason>),
    /// The channel was closed (or refused: reason Error) before it opened, and why.
    #[error("the channel is closed ({0:?})")]
    ChannelClosed(CloseReason),
    /// The call does not apply to this kind of stream (e.g. reading bytes from an
    /// unreliable stream, or channels on a stream without MULTIPLEXING).
    #[error("not for this kind of stream: {0}")]
    WrongKind(&'static str),
    /// The driver stopped (the manager was closed, or its socket failed).
    #[error("the driver stopped: {0}")]
    Stopped(String),
    /// The session's request was already made or its outcome taken.
    #[error("no request is in flight on this session")]
    NoRequest,
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match &e {
            Error::TimedOut => ErrorKind::TimedOut,
            Error::Refused { .. } => ErrorKind::ConnectionRefused,
            Error::Closed(c) => c.io_kind(),
            Error::StreamEnded(_) | Error::ChannelClosed(_) => ErrorKind::BrokenPipe,
            Error::WrongKind(_) => ErrorKind::Unsupported,
            Error::Stopped(_) => ErrorKind::NotConnected,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}
