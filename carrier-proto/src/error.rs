//! Errors returned to the application for calls it made.
//!
//! Input from the network never produces an [`Error`]: a bad datagram is counted in
//! [`EndpointStats`](crate::EndpointStats) and dropped. Descriptions the application hands
//! in (offers, answers) can be malformed, and that is [`Error::Sdp`].

use crate::channel::ChannelError;
use crate::sdp::SdpError;
use crate::types::StreamState;

/// What went wrong with a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No session with this id (never existed, or closed and removed).
    #[error("unknown session")]
    UnknownSession,
    /// No stream with this id in the session.
    #[error("unknown stream")]
    UnknownStream,
    /// The session is not in a phase that allows the call (e.g. `start` before `reply`).
    #[error("`{op}` is not allowed while the session is {phase}")]
    SessionPhase {
        /// The call.
        op: &'static str,
        /// The session's phase, for the message.
        phase: &'static str,
    },
    /// The stream is not in a state that allows the call (e.g. `write` before Connected).
    #[error("`{op}` is not allowed on a stream in state {state}")]
    StreamState {
        /// The call.
        op: &'static str,
        /// The stream's state.
        state: StreamState,
    },
    /// A datagram write larger than the path allows; nothing was sent.
    #[error("a write of {len} bytes exceeds the {max}-byte maximum for this stream")]
    PayloadTooLarge {
        /// Bytes given.
        len: usize,
        /// Largest payload one write can carry ([`max_datagram_size`](crate::SessionMut::max_datagram_size)).
        max: usize,
    },
    /// The stream's send buffer is full: nothing was taken. An
    /// [`Event::Writable`](crate::Event::Writable) follows when room frees up.
    #[error("the send buffer is full; wait for a Writable event")]
    WouldBlock,
    /// A write after this side finished (or closed) the stream's writing half.
    #[error("the stream was finished: no more writes")]
    Finished,
    /// The call needs a RELIABLE stream.
    #[error("`{0}` needs a RELIABLE stream")]
    NotReliable(&'static str),
    /// A configured limit would be exceeded.
    #[error("limit exceeded: {what} (max {max})")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its configured value.
        max: usize,
    },
    /// The endpoint has no local candidates: add one with `add_host_candidate` first.
    #[error("no local candidates; add a host candidate first")]
    NoCandidates,
    /// The answer does not belong to this request (its reply-to id differs).
    #[error("the answer is not a reply to this session's offer")]
    AnswerMismatch,
    /// The description is not an offer (it carries answer fields) or not an answer.
    #[error("expected an {expected}, got something else")]
    WrongDescription {
        /// "offer" or "answer".
        expected: &'static str,
    },
    /// A refusal needs a non-zero status (0 means accepted).
    #[error("a refusal needs a non-zero status")]
    ZeroRefusalStatus,
    /// A string the application gave is invalid for the wire (bundle, reason, peer id).
    #[error("invalid {0}")]
    InvalidText(&'static str),
    /// A protected session needs the peer's ephemeral key (`a=x-carrier-key`, 32 bytes),
    /// and the description lacks it or carries an unusable one.
    #[error("the peer's description has no usable key for a protected session")]
    MissingKey,
    /// A description's identity signature does not verify (or one of identity and
    /// signature is missing): it was altered on the way, or not made by that identity.
    #[error("the description's identity signature does not verify")]
    BadSignature,
    /// A description could not be parsed.
    #[error("bad session description: {0}")]
    Sdp(#[from] SdpError),
    /// A channel call failed (unknown channel, wrong state, a channel limit).
    #[error("channel: {0}")]
    Channel(#[from] ChannelError),
}
