//! Offer/answer: the typed messages two peers exchange to set up a session.
//!
//! The order of the handshake is in the types:
//! - only [`SessionMut::request`](crate::SessionMut::request) makes a [`PendingOffer`], and
//!   only an [`Answer`] to that same offer completes it
//!   ([`SessionMut::start_with`](crate::SessionMut::start_with) consumes both);
//! - an [`Offer`] or [`Answer`] from a peer exists only by parsing (or from the endpoint's
//!   events), so the application cannot start with a description it made up;
//! - an answerer can only [`start`](crate::SessionMut::start) after it
//!   [`reply`](crate::SessionMut::reply)-ed with [`Reply::Accept`].
//!
//! Offers and answers travel as SDP text over the application's own signaling (as the
//! original carried them over friend messages).

use alloc::string::String;

use crate::config::SdpLimits;
use crate::error::Error;
use crate::sdp::{Refusal, SessionDescription};
use crate::types::SessionId;

/// A session request: the offerer's description, with its bundle string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer(pub(crate) SessionDescription);

impl Offer {
    /// Parses an offer received over signaling.
    pub fn parse(text: &str, limits: &SdpLimits) -> Result<Self, Error> {
        let desc = SessionDescription::parse(text, limits)?;
        if desc.reply_to.is_some() || desc.refusal.is_some() {
            return Err(Error::WrongDescription { expected: "offer" });
        }
        crate::crypto::identity::verify(&desc)?;
        Ok(Offer(desc))
    }

    /// The SDP text to carry to the peer.
    pub fn to_sdp_string(&self) -> String {
        self.0.to_sdp_string()
    }

    /// The offerer's long-term identity (an Ed25519 public key), if it signed the offer.
    /// A parsed offer's signature has been verified; decide whether this identity is one
    /// you accept before you [`reply`](crate::SessionMut::reply).
    pub fn identity(&self) -> Option<[u8; 32]> {
        self.0
            .identity
            .as_deref()
            .and_then(|i| <[u8; 32]>::try_from(i).ok())
    }

    /// The bundle string the request was made with (routes it on the answering side).
    pub fn bundle(&self) -> Option<&str> {
        self.0.bundle.as_deref()
    }

    /// The typed description.
    pub fn description(&self) -> &SessionDescription {
        &self.0
    }
}

/// The answerer's reply to an offer: accepting (with its streams) or refusing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer(pub(crate) SessionDescription);

impl Answer {
    /// Parses an answer received over signaling.
    pub fn parse(text: &str, limits: &SdpLimits) -> Result<Self, Error> {
        let desc = SessionDescription::parse(text, limits)?;
        if desc.reply_to.is_none() {
            return Err(Error::WrongDescription { expected: "answer" });
        }
        crate::crypto::identity::verify(&desc)?;
        Ok(Answer(desc))
    }

    /// The SDP text to carry back to the offerer.
    pub fn to_sdp_string(&self) -> String {
        self.0.to_sdp_string()
    }

    /// The answerer's long-term identity (an Ed25519 public key), if it signed the
    /// answer. A parsed answer's signature has been verified; decide whether this identity
    /// is one you accept before you [`start_with`](crate::SessionMut::start_with).
    pub fn identity(&self) -> Option<[u8; 32]> {
        self.0
            .identity
            .as_deref()
            .and_then(|i| <[u8; 32]>::try_from(i).ok())
    }

    /// The refusal, if the answerer refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.0.refusal.as_ref()
    }

    /// The offer's session id this answers.
    pub(crate) fn reply_to(&self) -> Option<u64> {
        self.0.reply_to
    }

    /// The typed description.
    pub fn description(&self) -> &SessionDescription {
        &self.0
    }
}

/// A request in flight: made by [`request`](crate::SessionMut::request), completed by
/// [`start_with`](crate::SessionMut::start_with) together with the peer's [`Answer`].
///
/// It cannot be cloned: one request, one start.
#[derive(Debug, PartialEq, Eq)]
pub struct PendingOffer {
    pub(crate) session: SessionId,
    pub(crate) offer: Offer,
}

impl PendingOffer {
    /// The offer to carry to the peer.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// The session that made the request.
    pub fn session(&self) -> SessionId {
        self.session
    }
}

/// What the answering application decides about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Accept, with the streams added to the answering session.
    Accept,
    /// Refuse with a non-zero status and a reason the offerer will see.
    Refuse {
        /// Non-zero; the Carrier SDK's convention is an application-chosen error code.
        status: i32,
        /// Human-readable; no CR or LF.
        reason: String,
    },
}

/// How a request ended, as the offerer learns it in
/// [`Event::RequestComplete`](crate::Event::RequestComplete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The peer accepted; start with [`start_with`](crate::SessionMut::start_with).
    Accepted(Answer),
    /// The peer refused.
    Refused(Refusal),
    /// No reply came within [`Config::request_timeout`](crate::Config::request_timeout).
    TimedOut,
}

impl RequestOutcome {
    /// The Carrier SDK's status code: 0 accepted, the peer's status if refused, and
    /// [`RequestOutcome::TIMEOUT_STATUS`] on timeout.
    pub fn status(&self) -> i32 {
        match self {
            RequestOutcome::Accepted(_) => 0,
            RequestOutcome::Refused(r) => r.status,
            RequestOutcome::TimedOut => Self::TIMEOUT_STATUS,
        }
    }

    /// The status a timed-out request completes with (ETIMEDOUT's negation, as C APIs do).
    pub const TIMEOUT_STATUS: i32 = -110;
}
