//! What the async API's calls fail with.

use carrier_proto::{CloseReason, StateReason};

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
    /// The stream ended (Closed, Failed or Deactivated), and why.
    #[error("the stream ended: {0:?}")]
    StreamEnded(Option<StateReason>),
    /// The channel is closed, and why.
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
            Error::StreamEnded(_) | Error::ChannelClosed(_) => ErrorKind::BrokenPipe,
            Error::WrongKind(_) => ErrorKind::Unsupported,
            Error::Stopped(_) => ErrorKind::NotConnected,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}
