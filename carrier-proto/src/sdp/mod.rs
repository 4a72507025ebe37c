//! Session descriptions (RFC 8866 SDP) as Carrier uses them for offer/answer.
//!
//! [`SessionDescription`] is the typed form; [`SessionDescription::parse`] is a strict
//! parser that bounds every size by [`SdpLimits`](crate::SdpLimits) and names the offending
//! line in its error; [`SessionDescription::to_sdp_string`] writes CRLF-terminated SDP that
//! parses back to the same value. See docs/PROTOCOL.md for the exact lines.
//!
//! ```
//! use carrier_proto::sdp::{MediaDescription, SessionDescription};
//! use carrier_proto::{Candidate, SdpLimits, StreamOptions, StreamType};
//!
//! let mut desc = SessionDescription::new(0x1234_5678, "abcd", "0123456789abcdef01234567");
//! desc.bundle = Some("filetransfer".into());
//! desc.media.push(MediaDescription {
//!     stream_type: StreamType::Text,
//!     options: StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
//!     rejected: false,
//!     candidates: vec![Candidate::host("192.0.2.7:4000".parse().unwrap(), 65535)],
//! });
//! let text = desc.to_sdp_string();
//! assert!(text.contains("m=text 9 UDP 12\r\n"));
//! assert_eq!(SessionDescription::parse(&text, &SdpLimits::default()).unwrap(), desc);
//! ```

mod error;
mod parse;
#[cfg(test)]
mod tests;
mod write;

pub use error::{SdpError, SdpErrorKind};

use alloc::string::String;
use alloc::vec::Vec;

use crate::types::{Candidate, StreamOptions, StreamType};

/// A refusal carried in an answer: a non-zero status and a human-readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Non-zero status chosen by the refusing application.
    pub status: i32,
    /// Why (UTF-8, no CR/LF).
    pub reason: String,
}

/// One media section (`m=`): one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// The stream type (the `m=` media name).
    pub stream_type: StreamType,
    /// The stream options (the `m=` format token, in decimal).
    pub options: StreamOptions,
    /// An answer rejects a stream with port 0 (RFC 3264 §6).
    pub rejected: bool,
    /// Where this stream's sender can be reached.
    pub candidates: Vec<Candidate>,
}

/// A typed session description: what an offer or an answer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` sess-id: the sender's connection id for this session. Packets to the sender carry
    /// it as their destination id.
    pub session_id: u64,
    /// `o=` sess-version.
    pub session_version: u64,
    /// `a=ice-ufrag` (4–256 `ice-char`s).
    pub ice_ufrag: String,
    /// `a=ice-pwd` (22–256 `ice-char`s).
    pub ice_pwd: String,
    /// `a=x-carrier-bundle`: the offer's bundle string, used to route the request.
    pub bundle: Option<String>,
    /// `a=x-carrier-reply-to`: in an answer, the offer's `session_id`.
    pub reply_to: Option<u64>,
    /// `a=x-carrier-refuse`: in an answer, a refusal (no stream is then accepted).
    pub refusal: Option<Refusal>,
    /// `a=x-carrier-key` (hex): the sender's ephemeral public key (filled by the crypto layer).
    pub key: Option<Vec<u8>>,
    /// `a=x-carrier-identity` (hex): the sender's long-term identity, an Ed25519 public key
    /// (see [`Config::identity`](crate::Config::identity)).
    pub identity: Option<Vec<u8>>,
    /// `a=x-carrier-signature` (hex): the identity's Ed25519 signature over this description
    /// as written without this line.
    pub signature: Option<Vec<u8>>,
    /// One media section per stream, in stream order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A description with no streams and no optional fields.
    pub fn new(session_id: u64, ice_ufrag: impl Into<String>, ice_pwd: impl Into<String>) -> Self {
        SessionDescription {
            session_id,
            session_version: 1,
            ice_ufrag: ice_ufrag.into(),
            ice_pwd: ice_pwd.into(),
            bundle: None,
            reply_to: None,
            refusal: None,
            key: None,
            identity: None,
            signature: None,
            media: Vec::new(),
        }
    }
}
